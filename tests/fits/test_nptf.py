"""NPTF likelihood: Poisson limit, Monte Carlo histograms, flux, jit/vmap/grad.

References: the PGF and the recursion are eqs. 2.5-2.13 of Mishra-Sharma, Rodd & Safdi
2017 (NPTFit, arXiv:1612.03173) and eqs. 4-9 of Lee et al. 2016 (arXiv:1412.6099).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxdm.fits import (
    PointSourcePopulation,
    nptf_log_likelihood,
    nptf_log_pmf,
    psf_correction_from_kernel,
    psf_correction_gaussian,
)
from jaxdm.simulators import gamma as g

POP = PointSourcePopulation(
    jnp.asarray(2e11), jnp.asarray([10.0, -0.5]), jnp.asarray([1e-10])
)
EXPO = 1e11  # cm^2 s: 10 counts at the break
KERNEL = g.cartesian_kernels((0.8,), 1.0)[0]  # sigma 0.8 pixel
PSF = psf_correction_from_kernel(KERNEL)


def chi2_pvalue(obs, exp, min_expected=5.0):
    o, e, co, ce = [], [], 0.0, 0.0
    for a, b in zip(obs, exp, strict=True):
        co, ce = co + a, ce + b
        if ce >= min_expected:
            o.append(co)
            e.append(ce)
            co = ce = 0.0
    o[-1] += co
    e[-1] += ce
    o, e = np.array(o), np.array(e)
    c = float(((o - e) ** 2 / e).sum())
    return stats.chi2.sf(c, len(o) - 1)


def test_no_population_is_poisson():
    mu = jnp.asarray([0.3, 2.0, 7.5])
    counts = jnp.asarray([0.0, 3.0, 12.0])
    ll = nptf_log_likelihood(counts, mu, [], jnp.zeros((0, 3)), np.full(3, EXPO), PSF)
    ref = stats.poisson.logpmf(np.asarray(counts), np.asarray(mu)).sum()
    np.testing.assert_allclose(float(ll), ref, rtol=1e-5)


def test_reduces_to_poisson_as_source_flux_goes_to_zero():
    # Flux per source -> 0 at fixed total flux: the sources become a Poisson term of
    # the same mean (many faint sources); at fixed norm, the PS term vanishes.
    mu = jnp.asarray([1.0, 4.0])
    w = jnp.asarray([[0.01, 0.02]])
    counts = jnp.asarray([2.0, 9.0])
    scale = 1e-4
    faint = PointSourcePopulation(
        POP.norm / scale**2, POP.indices, POP.breaks * scale
    )  # same total flux
    flux = float(g.expected_flux(faint.norm, faint.indices, faint.breaks))
    ll = nptf_log_likelihood(counts, mu, [faint], w, np.full(2, EXPO), PSF)
    mean = np.asarray(mu) + np.asarray(w[0]) * flux * EXPO
    ref = stats.poisson.logpmf(np.asarray(counts), mean).sum()
    np.testing.assert_allclose(float(ll), ref, rtol=2e-3)
    bright = nptf_log_likelihood(counts, mu, [POP], w, np.full(2, EXPO), PSF)
    ref_b = stats.poisson.logpmf(
        np.asarray(counts),
        np.asarray(mu)
        + np.asarray(w[0])
        * float(g.expected_flux(POP.norm, POP.indices, POP.breaks))
        * EXPO,
    ).sum()
    assert abs(float(bright) - ref_b) > 0.05  # bright sources are not Poissonian


def test_mean_counts_conserve_flux():
    mu, w = jnp.asarray([2.0]), jnp.asarray([[0.03]])
    p = np.exp(np.asarray(nptf_log_pmf(mu, [POP], w, np.array([EXPO]), PSF, 200)[0]))
    flux = float(g.expected_flux(POP.norm, POP.indices, POP.breaks))
    np.testing.assert_allclose(p.sum(), 1.0, atol=1e-4)
    np.testing.assert_allclose(
        (np.arange(201) * p).sum(), 2.0 + 0.03 * flux * EXPO, rtol=2e-3
    )


def simulate_pixel(seed, n_maps, mu, w_per_pixel):
    """Counts of a central pixel: sources uniform over the PSF patch, kernel spill."""
    rng = np.random.default_rng(seed)
    kk = np.asarray(KERNEL)
    n_patch = kk.size
    n_tot = float(g.expected_number(POP.norm, POP.indices, POP.breaks))
    ns = rng.poisson(n_tot * w_per_pixel * n_patch, n_maps)
    fl = np.asarray(
        g.sample_fluxes(jax.random.key(seed), (int(ns.sum()),), POP.indices, POP.breaks)
    )
    frac = kk.ravel()[rng.integers(0, n_patch, fl.size)]
    lam = np.bincount(np.repeat(np.arange(n_maps), ns), weights=frac * fl * EXPO,
                      minlength=n_maps)  # fmt: skip
    return rng.poisson(lam + mu)


def test_histogram_matches_monte_carlo_with_psf():
    mu, w = 1.5, 0.004
    c = simulate_pixel(0, 40_000, mu, w)
    k_max = int(c.max())
    p = np.exp(np.asarray(nptf_log_pmf(
        jnp.asarray([mu]), [POP], jnp.asarray([[w]]), np.array([EXPO]), PSF, k_max
    )[0]))  # fmt: skip
    obs = np.bincount(c, minlength=k_max + 1)
    assert chi2_pvalue(obs, p * c.size) > 1e-3
    # A Poisson law with the same mean fails the same test.
    pois = stats.poisson.pmf(np.arange(k_max + 1), c.mean()) * c.size
    assert chi2_pvalue(obs, pois) < 1e-6


def test_gaussian_psf_correction_conserves_flux_and_matches_kernel_limit():
    psf = psf_correction_gaussian(0.8, n_sources=2000)
    np.testing.assert_allclose(float(jnp.sum(psf.fractions * psf.weights)), 1.0, 1e-6)
    mu, w = jnp.asarray([2.0]), jnp.asarray([[0.03]])
    pa = nptf_log_pmf(mu, [POP], w, np.array([EXPO]), psf, 60)
    pb = nptf_log_pmf(mu, [POP], w, np.array([EXPO]), PSF, 60)
    # Random sub-pixel positions vs pixel centres: close but not identical laws.
    np.testing.assert_allclose(np.exp(pa), np.exp(pb), atol=0.01)


def loglike(theta, counts, mu, w, method="fft"):
    pop = PointSourcePopulation(
        10.0 ** theta[0], jnp.stack([theta[1], theta[2]]), (10.0 ** theta[3])[None]
    )
    return nptf_log_likelihood(
        counts, mu, [pop], w, np.full(mu.shape, EXPO), PSF, k_max=40, method=method
    )


THETA = jnp.asarray([11.3, 10.0, -0.5, -10.0])
COUNTS = jnp.asarray([0.0, 3.0, 17.0, 5.0])
MU = jnp.asarray([0.5, 2.0, 3.0, 4.0])
W = jnp.asarray([[0.01, 0.002, 0.05, 0.02]])


def test_jit_and_vmap_match_eager():
    eager = loglike(THETA, COUNTS, MU, W)
    jitted = jax.jit(loglike)(THETA, COUNTS, MU, W)
    np.testing.assert_allclose(float(jitted), float(eager), rtol=1e-5)
    thetas = jnp.stack([THETA, THETA + jnp.asarray([0.1, 0.5, 0.2, 0.1])])
    vm = jax.vmap(loglike, in_axes=(0, None, None, None))(thetas, COUNTS, MU, W)
    np.testing.assert_allclose(float(vm[0]), float(eager), rtol=1e-5)
    assert float(vm[1]) != float(vm[0])


@pytest.mark.x64
def test_gradient_matches_finite_differences():
    th = THETA.astype(jnp.float64)
    mu, w = MU.astype(jnp.float64), W.astype(jnp.float64)
    grad = jax.grad(loglike)(th, COUNTS, mu, w)
    assert np.all(np.isfinite(np.asarray(grad)))
    eps = 1e-5
    for i in range(4):
        e = jnp.zeros(4).at[i].set(eps)
        fd = (loglike(th + e, COUNTS, mu, w) - loglike(th - e, COUNTS, mu, w)) / (
            2 * eps
        )
        np.testing.assert_allclose(float(grad[i]), float(fd), rtol=1e-4, atol=1e-6)


def test_closed_form_vjp_matches_autodiff_through_the_recursion():
    # d log p_c / d log x_n = x_n p_{c-n} / p_c (from dP/dx_n = t^n P, NPTFit eq. 2.9's
    # PGF) must equal reverse-mode autodiff through the recursion (eq. 2.11) itself.
    from jaxdm.fits.nptf import _log_pmf_at, _log_pmf_table

    k = 12
    key_a, key_b = jax.random.split(jax.random.key(3))
    log_x = jax.random.normal(key_a, (5, k)) - jnp.arange(k)[None, :] * 0.3
    log_tot = jnp.log(jnp.sum(jnp.exp(log_x), 1) + jax.random.uniform(key_b, (5,)))
    c = jnp.asarray([0, 1, 5, 11, 12])
    wts = jnp.asarray([1.0, -2.0, 0.5, 3.0, 1.5])

    def custom(lx, lt):
        return jnp.sum(wts * _log_pmf_at(lx, lt, c, k))

    def plain(lx, lt):
        tab = _log_pmf_table(lx, lt, k)
        return jnp.sum(wts * jnp.take_along_axis(tab, c[:, None], 1)[:, 0])

    np.testing.assert_allclose(custom(log_x, log_tot), plain(log_x, log_tot), 1e-6)
    ga = jax.grad(custom, argnums=(0, 1))(log_x, log_tot)
    gb = jax.grad(plain, argnums=(0, 1))(log_x, log_tot)
    for a, b in zip(ga, gb, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=1e-6)


def test_tilted_fft_matches_the_recursion_in_the_bulk_and_far_tail():
    # p_c read off the exponentially tilted PGF by an FFT (Daniels 1954; Abate & Whitt
    # 1992) must equal NPTFit's recursion (eq. 2.11), value and gradient, including
    # counts far in either tail (c = 0, c = K, c << mean) and a pixel with no source.
    from jaxdm.fits.nptf import _log_pmf_at
    from jaxdm.fits.nptf_fft import log_pmf_fft

    k = 40
    key_a, key_b = jax.random.split(jax.random.key(5))
    log_x = jax.random.normal(key_a, (7, k)) - jnp.arange(k)[None, :] * 0.3 - 1.0
    # pixel 4: c = K far in the tail; 5: c << mean; 6: no source, p_0 = 1.
    log_x = log_x.at[4].add(-6.0).at[5].add(4.0).at[6].set(-jnp.inf)
    log_tot = jnp.log(jnp.sum(jnp.exp(log_x), 1) + jax.random.uniform(key_b, (7,)))
    log_tot = log_tot.at[6].set(-jnp.inf)
    c = jnp.asarray([0, 1, 7, 25, 40, 3, 0])
    wts = jnp.asarray([1.0, -2.0, 0.5, 3.0, 1.5, 0.7, 1.0])

    def fft(lx, lt):  # gradients on the 6 pixels with sources
        return jnp.sum(wts[:6] * log_pmf_fft(lx, lt, c[:6], 8))

    def rec(lx, lt):
        return jnp.sum(wts[:6] * _log_pmf_at(lx, lt, c[:6], k))

    a = log_pmf_fft(log_x, log_tot, c, 8)
    b = _log_pmf_at(log_x, log_tot, c, k)
    assert float(b[4]) < -15.0
    assert float(b[5]) < -100.0
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-4)
    ga = jax.jit(jax.grad(fft, argnums=(0, 1)))(log_x[:6], log_tot[:6])
    gb = jax.grad(rec, argnums=(0, 1))(log_x[:6], log_tot[:6])
    for u, v in zip(ga, gb, strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-3, atol=1e-4)


def test_public_fft_method_matches_the_recursion():
    vg = {
        m: jax.jit(jax.value_and_grad(lambda t, m=m: loglike(t, COUNTS, MU, W, m)))
        for m in ("fft", "recursion")
    }
    a, b = vg["fft"](THETA), vg["recursion"](THETA)
    np.testing.assert_allclose(float(a[0]), float(b[0]), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(a[1]), np.asarray(b[1]), rtol=1e-3)


def test_traced_counts_give_the_bucketed_value_and_gradient():
    traced = jax.jit(jax.value_and_grad(loglike))(THETA, COUNTS, MU, W)
    concrete = jax.jit(jax.value_and_grad(lambda t: loglike(t, COUNTS, MU, W)))(THETA)
    np.testing.assert_allclose(float(traced[0]), float(concrete[0]), rtol=1e-5)
    np.testing.assert_allclose(traced[1], concrete[1], rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_histogram_matches_simulated_gamma_maps():
    from scipy.ndimage import binary_erosion

    from jaxdm.fits import nptf_inputs

    cfg = g.GammaConfig(
        geometry="cartesian", npix=16, half_width_deg=8.0, energy_edges=(2.0, 20.0),
        psf_sigma_2gev_deg=0.6, n_los=8, ps_template="thick_disk", max_sources=400,
    )  # fmt: skip
    params = g.GammaParams(
        dm_sigma_v=0.0, iso_norm=1e-7, bubbles_norm=0.0, pi0_norm=0.0, ic_norm=0.0,
        ps_norm=5e11, ps_indices=(10.0, -0.5), ps_breaks=(2e-10,),
    )  # fmt: skip
    inp = nptf_inputs(params, cfg, names=("iso",))
    pop = PointSourcePopulation(params.ps_norm, params.ps_indices, params.ps_breaks)
    keys = jax.random.split(jax.random.key(0), 200)
    sim = jax.jit(jax.vmap(lambda k: g.simulate(k, params, cfg).counts[0].ravel()))(
        keys
    )
    sim = np.asarray(sim)[:, inp.pixels].astype(int)
    k_max = int(sim.max())
    mu = inp.templates["iso"] * 1e-7
    p = np.exp(np.asarray(nptf_log_pmf(
        mu, [pop], inp.source_fractions, inp.exposure, inp.psf, k_max
    )))  # fmt: skip
    geom = g.geometry(cfg)
    roi = np.asarray(geom.roi).reshape(geom.shape)
    inner = binary_erosion(roi, iterations=2, border_value=0).ravel()[inp.pixels]
    obs = sum(
        np.bincount(sim[:, i], minlength=k_max + 1) for i in np.flatnonzero(inner)
    )
    exp = p[inner].sum(0) * sim.shape[0]
    assert chi2_pvalue(obs, exp) > 1e-3
    mean = (
        mu
        + inp.source_fractions[0]
        * float(g.expected_flux(pop.norm, pop.indices, pop.breaks))
        * inp.exposure
    )
    pois = (
        sum(stats.poisson.pmf(np.arange(k_max + 1), m) for m in np.asarray(mean)[inner])
        * sim.shape[0]
    )
    assert chi2_pvalue(obs, pois) < 1e-6
