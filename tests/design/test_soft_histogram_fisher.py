"""Soft histograms (convergence to hard ones) and Fisher-information objectives."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm import design
from jaxdm.simulators import lensing, xenon


def _events():
    k1, k2 = jax.random.split(jax.random.key(0))
    sig = 0.5 * jax.random.normal(k1, (400,))
    bkg = jax.random.uniform(k2, (2000,), minval=-3.0, maxval=3.0)
    return sig, bkg


def _z2(s, b):
    # Large-sample binned significance^2 (sum s^2 / b), a design objective.
    return jnp.sum(s**2 / b)


@pytest.mark.x64
def test_soft_histogram_converges_to_hard():
    """Per-event error ~ Phi(-d / tau): histogram and objective converge as tau -> 0."""
    sig, bkg = _events()
    edges = jnp.linspace(-3.0, 3.0, 13)  # bin width 0.5
    hard = design.hard_histogram(sig, edges)
    hard_obj = _z2(design.hard_histogram(sig, edges), design.hard_histogram(bkg, edges))
    errs, obj_errs = [], []
    for tau in (0.1, 0.01, 0.001, 1e-4, 1e-5):
        soft = design.soft_histogram(sig, edges, tau)
        errs.append(float(jnp.sum(jnp.abs(soft - hard))))
        obj = _z2(soft, design.soft_histogram(bkg, edges, tau))
        obj_errs.append(abs(float(obj - hard_obj)) / float(hard_obj))
    # Signal histogram: L1 error falls with tau (events within ~tau of an edge).
    assert all(a > b for a, b in zip(errs[:3], errs[1:4], strict=True))
    assert errs[2] < 0.1  # tau = bin / 500: < 0.1 of 400 events misplaced
    # Objective: converges (not monotonically: signed errors of s and b bins mix);
    # the uniform background ends exactly at the outer edges, where half of the
    # events within ~tau are lost, an O(tau) bias.
    assert obj_errs[-1] < 1e-6
    assert obj_errs[3] < 1e-3 < obj_errs[1]
    assert max(obj_errs[2:]) < 2e-3


@pytest.mark.x64
def test_soft_histogram_gradients_match_finite_differences():
    sig, bkg = _events()

    def obj(p):
        edges = jnp.concatenate([jnp.array([-3.0]), p["inner"], jnp.array([3.0])])
        s = design.soft_histogram(sig, edges, p["tau"])
        b = design.soft_histogram(bkg, edges, p["tau"])
        return _z2(s, b)

    res = design.check_gradient(obj, {"inner": jnp.array([-0.5, 0.5]), "tau": 0.2})
    assert res.ok, res


def test_soft_histogram_jit_vmap_and_softness_guard():
    sig, _ = _events()
    edges = jnp.linspace(-3.0, 3.0, 7)
    h = jax.jit(design.soft_histogram)(sig, edges, 0.1)
    np.testing.assert_allclose(h, design.soft_histogram(sig, edges, 0.1), rtol=1e-5)
    batched = jax.vmap(design.soft_histogram, in_axes=(0, None, None))(
        jnp.stack([sig, -sig]), edges, 0.1
    )
    np.testing.assert_allclose(batched[1], design.soft_histogram(-sig, edges, 0.1))
    with pytest.raises(ValueError, match="softness"):
        design.soft_histogram(sig, edges, -0.1)


@pytest.mark.x64
def test_poisson_fisher_closed_form_and_marginal_error():
    """mu_b = theta_0 s_b + theta_1 b_b: F_ij = sum d_i mu d_j mu / mu (Cowan 1998)."""
    s = jnp.array([1.0, 5.0, 2.0])
    b = jnp.array([10.0, 3.0, 8.0])
    theta = jnp.array([2.0, 1.5])

    def mu(t):
        return t[0] * s + t[1] * b

    f = design.poisson_fisher(mu, theta)
    m = mu(theta)
    expect = jnp.array(
        [
            [jnp.sum(s * s / m), jnp.sum(s * b / m)],
            [jnp.sum(s * b / m), jnp.sum(b * b / m)],
        ]
    )
    np.testing.assert_allclose(f, expect, rtol=1e-12)
    # sigma_0 after profiling theta_1 = sqrt(F11 / det F).
    det = expect[0, 0] * expect[1, 1] - expect[0, 1] ** 2
    np.testing.assert_allclose(
        design.marginal_error(f, 0), jnp.sqrt(expect[1, 1] / det), rtol=1e-12
    )
    np.testing.assert_allclose(design.log_det_fisher(f), jnp.log(det), rtol=1e-12)


def _xenon_model(wimp_scale, er_scale):
    e = jnp.linspace(3.0, 40.0, 12)
    nr = xenon.tabulated_spectrum(e, wimp_scale * 0.5 * jnp.exp(-e / 10.0), "NR")
    er = xenon.flat_er_spectrum(er_scale * 2.0, e_min=1.0, e_max=15.0, n_grid=12)
    return xenon.XenonModel(sources=(nr, er), exposure=1.0)


@pytest.mark.slow  # ~70 s of compilation (grad of jacfwd of the 2-D histogram)
@pytest.mark.x64
def test_xenon_fisher_marginal_error_gradient_in_g1():
    """d sigma(WIMP scale) / d g1 through expected_histogram, vs finite differences."""
    bins = (jnp.linspace(2.0, 60.0, 7), jnp.linspace(2.5, 4.5, 6))

    def sigma_wimp(design_p):
        det = eqx.tree_at(lambda d: d.g1, xenon.lz_like(), design_p["g1"])

        def mu(t):
            return xenon.expected_histogram(
                _xenon_model(t[0], t[1]), det, bins, n_depth=2, n_gl=3
            )

        f = design.poisson_fisher(mu, jnp.array([1.0, 1.0]))
        return design.marginal_error(f, 0)

    res = design.check_gradient(sigma_wimp, {"g1": jnp.array(0.1136)}, rtol=1e-4)
    assert res.ok, res
    assert np.isfinite(res.analytic).all()


@pytest.mark.x64
def test_lensing_fisher_exposure_time_gradient():
    """D-optimality of theta_e and x0 vs exposure time t (variance mu/t + bkg^2)."""
    cfg = lensing.ObservationConfig(n_pix=12, pixel_scale=0.2, supersampling=1)

    def mu(t):
        params = lensing.LensingParams(
            lens=(lensing.SIEParams(theta_e=t[0], q=0.8, phi=0.3, x0=t[1], y0=0.0),),
            source=(
                lensing.SersicParams(
                    amplitude=5.0, r_e=0.3, n=1.5, q=0.9, phi=0.0, x0=0.05, y0=0.0
                ),
            ),
        )
        return lensing.expected_image(params, cfg)

    theta = jnp.array([1.0, 0.02])

    def objective(p):
        f = design.gaussian_fisher(
            mu, theta, lambda m: jnp.maximum(m, 0.0) / p["t"] + 0.01**2
        )
        return design.log_det_fisher(f)

    res = design.check_gradient(objective, {"t": jnp.array(200.0)}, rtol=1e-4)
    assert res.ok, res
    assert res.analytic[0] > 0  # more exposure, more information
