"""The lensing package's traced poison policy (issue #12): coverage and hot paths.

Every exported lensing function carries ``jaxdm._poison.poison_policy``; the hot
programs (ray shooting with and without a subhalo scan, the likelihood, the subhalo
draw) hold no host callback, at the throughput benchmark's settings
(``benchmarks/lensing_guard_cost.py``: 100 x 100 pixels, supersampling 2, 50 tNFW
subhalos), so the checks cost no callback per image. Tracing only (make_jaxpr), no
compilation.
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm._poison import host_callbacks, with_valid
from jaxdm.simulators import lensing as L
from jaxdm.simulators.lensing._guards import unchecked

CFG = L.ObservationConfig(
    n_pix=100, pixel_scale=0.05, supersampling=2, psf=L.GaussianPSF(fwhm=0.1)
)
N_SUB = 50


def test_every_exported_function_has_the_poison_policy():
    functions = [n for n in L.__all__ if inspect.isfunction(getattr(L, n))]
    assert len(functions) >= 65
    missing = [
        n
        for n in functions
        if getattr(getattr(L, n), "__jaxdm_policy__", "") != "poison"
    ]
    assert not missing, f"lensing functions without @poison_policy: {missing}"


def test_unchecked_is_the_bare_implementation():
    fn = unchecked(L.sie_deflection)
    assert not hasattr(fn, "__jaxdm_policy__")
    x = jnp.linspace(-1.0, 1.0, 4)
    p = L.SIEParams(theta_e=1.0, q=0.8)
    np.testing.assert_allclose(fn(x, x, p), L.sie_deflection(x, x, p))
    with pytest.raises(TypeError, match="not a checked profile"):
        unchecked(L.expected_image)


def _batch(with_subs: bool, batch: int = 2):
    rng = np.random.default_rng(0)
    tn = L.TNFWParams(
        kappa_s=jnp.asarray(rng.uniform(0.01, 0.1, N_SUB), jnp.float32),
        theta_s=jnp.asarray(rng.uniform(0.01, 0.1, N_SUB), jnp.float32),
        tau=jnp.full(N_SUB, 6.0, jnp.float32),
        x0=jnp.asarray(rng.uniform(-2.0, 2.0, N_SUB), jnp.float32),
        y0=jnp.asarray(rng.uniform(-2.0, 2.0, N_SUB), jnp.float32),
    )

    def params(theta_e):
        lens = [
            L.SIEParams(theta_e=theta_e, q=0.75, phi=0.4, x0=0.02, y0=-0.03),
            L.ShearParams(gamma1=0.03, gamma2=-0.02),
        ]
        if with_subs:
            lens.append(L.SubhaloPopulation(profile=tn, mask=jnp.ones(N_SUB)))
        src = L.SersicParams(amplitude=20.0, r_e=0.25, n=4.0, q=0.7, phi=-0.5)
        return L.LensingParams(lens=tuple(lens), source=(src,))

    return jax.vmap(params)(jnp.linspace(1.2, 1.21, batch, dtype=jnp.float32))


@pytest.mark.parametrize("with_subs", [False, True], ids=["plain", "subhalos"])
def test_hot_programs_hold_no_host_callback(with_subs):
    b = _batch(with_subs)
    keys = jax.random.split(jax.random.key(0), 2)
    image = jnp.zeros((CFG.n_pix, CFG.n_pix))
    render = jax.vmap(lambda p: L.expected_image(p, CFG))
    draw = jax.vmap(lambda k, p: L.simulate(k, p, CFG))
    loglike = jax.vmap(lambda p: L.log_likelihood(image, p, CFG))
    assert host_callbacks(render, b) == 0
    assert host_callbacks(draw, keys, b) == 0
    assert host_callbacks(loglike, b) == 0
    # The validity flag costs no callback either.
    assert (
        host_callbacks(jax.vmap(with_valid(L.expected_image), (0, None)), b, CFG) == 0
    )


def test_subhalo_draws_hold_no_host_callback():
    sub = L.SubhaloConfig(max_n=64, normalization="mass", tau=6.0)
    keys = jax.random.split(jax.random.key(1), 2)
    draw = jax.vmap(lambda k, s, m: L.sample_subhalos(k, s, m, sub))
    assert host_callbacks(draw, keys, jnp.full(2, 1e8), jnp.full(2, 3.0)) == 0
    scenes = jax.vmap(lambda lm: L.SceneParams(log10_m_wdm=lm, sub_norm=1e8))(
        jnp.asarray([0.5, 3.0])
    )
    small = L.ObservationConfig(n_pix=8, pixel_scale=0.2, supersampling=1)
    image = jax.vmap(lambda k, s: L.simulate_population_image(k, s, small, sub))
    assert host_callbacks(image, keys, scenes) == 0
