"""Rendering API: jit == eager, vmap, keys, gradients, likelihood."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxdm._poison import with_valid
from jaxdm.simulators import lensing as L

CFG = L.ObservationConfig(
    n_pix=16,
    pixel_scale=0.15,
    supersampling=2,
    psf=L.GaussianPSF(fwhm=0.2),
    exposure_time=500.0,
    background_sigma=0.05,
)


def _params(theta_e=1.0, dtype=jnp.float32):
    def a(v):
        return jnp.asarray(v, dtype)

    return L.LensingParams(
        lens=(
            L.SIEParams(
                theta_e=a(theta_e), q=a(0.75), phi=a(0.3), x0=a(0.02), y0=a(-0.03)
            ),
            L.ShearParams(gamma1=a(0.03), gamma2=a(-0.02)),
            L.SubhaloPopulation(
                profile=L.TNFWParams(
                    kappa_s=a([0.05, 0.08]),
                    theta_s=a([0.05, 0.03]),
                    tau=a([5.0, 5.0]),
                    x0=a([0.8, -0.4]),
                    y0=a([0.3, 0.9]),
                ),
                mask=a([1.0, 1.0]),
            ),
        ),
        source=(
            L.SersicParams(
                amplitude=a(3.0),
                r_e=a(0.2),
                n=a(1.5),
                q=a(0.7),
                phi=a(-0.5),
                x0=a(0.05),
                y0=a(0.08),
            ),
        ),
        lens_light=(L.GaussianParams(flux=a(2.0), sigma=a(0.3)),),
    )


def test_jit_equals_eager_and_keys(jit):
    p = _params()
    img = jit(L.expected_image)(p, CFG)
    assert img.shape == (16, 16)
    assert img.dtype == jnp.float32
    np.testing.assert_allclose(img, L.expected_image(p, CFG), rtol=1e-5, atol=1e-7)
    sim = jit(L.simulate)
    a = sim(jax.random.key(1), p, CFG)
    b = sim(jax.random.key(1), p, CFG)
    c = sim(jax.random.key(2), p, CFG)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert np.all(np.isfinite(np.asarray(a)))


def test_vmap_over_parameter_batch():
    thetas = jnp.array([0.8, 1.0, 1.2])
    batch = jax.vmap(lambda t: _params(t))(thetas)
    imgs = eqx.filter_jit(jax.vmap(L.expected_image, in_axes=(0, None)))(batch, CFG)
    for i, t in enumerate(thetas):
        np.testing.assert_allclose(
            imgs[i], L.expected_image(_params(t), CFG), rtol=1e-4, atol=1e-6
        )


def test_mask_removes_subhalo():
    p = _params()
    pop = p.lens[2]
    off = eqx.tree_at(lambda s: s.mask, pop, jnp.zeros(2))
    p_off = eqx.tree_at(lambda q: q.lens, p, (p.lens[0], p.lens[1], off))
    p_none = eqx.tree_at(lambda q: q.lens, p, (p.lens[0], p.lens[1]))
    np.testing.assert_allclose(
        L.expected_image(p_off, CFG), L.expected_image(p_none, CFG), atol=1e-7
    )


@pytest.mark.x64
def test_check_grads_expected_image():
    """Reverse-mode gradients of expected_image w.r.t. every parameter (float64).

    The SIE core s is set off its boundary (s = 0): check_grads steps every leaf
    by +-eps, and a negative core radius is an error."""
    p = _params(dtype=jnp.float64)
    p = eqx.tree_at(lambda t: t.lens[0].s, p, jnp.asarray(0.01, jnp.float64))
    cfg = L.ObservationConfig(
        n_pix=8, pixel_scale=0.3, supersampling=1, psf=L.GaussianPSF(fwhm=0.4)
    )

    def f(q):
        return jnp.sum(L.expected_image(q, cfg) * jnp.arange(64.0).reshape(8, 8))

    check_grads(f, (p,), order=1, modes=("rev",), atol=1e-5, rtol=1e-5, eps=1e-6)


def test_log_likelihood_peaks_at_truth():
    p = _params()
    img = L.simulate(jax.random.key(0), p, CFG)

    def ll(t):
        return L.log_likelihood(img, _params(t), CFG)

    assert float(ll(1.0)) > float(ll(0.9))
    assert float(ll(1.0)) > float(ll(1.1))
    with pytest.raises(ValueError, match="`image`"):
        L.log_likelihood(jnp.zeros((3, 3)), p, CFG)


def test_simulate_population_image_vmap():
    sub = L.SubhaloConfig(max_n=24)
    # 3e8 M_sun of CDM subhalos: ~3.3 expected, well inside 24 slots.
    scenes = jax.vmap(lambda lm: L.SceneParams(log10_m_wdm=lm, sub_norm=3e8))(
        jnp.array([0.5, 1.0, 3.0])
    )
    keys = jax.random.split(jax.random.key(0), 3)
    imgs = eqx.filter_jit(
        jax.vmap(lambda k, s: L.simulate_population_image(k, s, CFG, sub))
    )(keys, scenes)
    assert imgs.shape == (3, 16, 16)
    assert np.all(np.isfinite(np.asarray(imgs)))
    with pytest.raises(TypeError, match="legacy"):
        L.simulate(jax.random.PRNGKey(0), _params(), CFG)


def test_traced_checks_under_vmap_and_grad():
    """Parameter checks run under jit + vmap with the poison policy: one bad row
    (negative Einstein radius) is NaN exactly in that row and ``with_valid`` is False
    exactly there; eagerly the error names theta_e. A good batch renders
    and differentiates as before (the checks are transparent to jax.grad); a
    negative sub_norm inside a vmapped population draw poisons that row only."""
    cfg = L.ObservationConfig(n_pix=8, pixel_scale=0.2, supersampling=1)

    def render(theta_e):
        return jnp.sum(L.expected_image(_params(theta_e), cfg))

    f = jax.jit(jax.vmap(render))
    good = f(jnp.asarray([0.8, 1.0]))
    assert np.all(np.isfinite(good))
    bad = np.asarray(f(jnp.asarray([0.8, -1.0])))
    np.testing.assert_array_equal(np.isnan(bad), [False, True])
    flag = jax.jit(jax.vmap(lambda t: with_valid(L.expected_image)(_params(t), cfg)[1]))
    np.testing.assert_array_equal(flag(jnp.asarray([0.8, -1.0])), [True, False])
    with pytest.raises(ValueError, match="theta_e"):
        render(jnp.asarray(-1.0))
    g = jax.grad(render)(jnp.asarray(1.0))
    h = 1e-2
    fd = (render(jnp.asarray(1.0 + h)) - render(jnp.asarray(1.0 - h))) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=5e-2)
    sub = L.SubhaloConfig(max_n=32, normalization="number")

    def draw(key, sub_norm):
        return with_valid(L.sample_subhalos)(key, sub_norm, jnp.inf, sub)

    keys = jax.random.split(jax.random.key(0), 2)
    d = jax.jit(jax.vmap(draw))
    out, valid = d(keys, jnp.asarray([3.0, 5.0]))
    assert out.mask.shape == (2, 32)
    assert np.all(np.asarray(valid))
    out, valid = d(keys, jnp.asarray([3.0, -5.0]))
    np.testing.assert_array_equal(valid, [True, False])
    assert np.all(np.isnan(np.asarray(out.mask)[1]))
    assert np.all(np.isfinite(np.asarray(out.mask)[0]))
