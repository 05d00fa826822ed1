"""Subhalo populations: mass function, WDM suppression, half-mode mass."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from jaxdm._poison import with_valid
from jaxdm.simulators import lensing as L


def test_half_mode_mass_scaling_and_reference():
    """M_hm ∝ m_wdm^(-3.33) (3 x 1.11, Schneider et al. 2012 eqs. 7-8); for 1 keV,
    h=0.7, Omega_m=0.3 hand evaluation gives 1.6e10 M_sun (rtol 5%)."""
    m1, m2 = (float(L.half_mode_mass(m)) for m in (2.0, 4.0))
    np.testing.assert_allclose(np.log(m1 / m2) / np.log(2), 3.33, rtol=1e-4)
    assert float(L.half_mode_mass(jnp.inf)) == 0.0
    c = L.Cosmology(h0=70.0, omega_m=0.3)
    alpha = 0.049 * (0.25 / 0.25) ** 0.11 / 0.7
    lam = 2 * np.pi * alpha * (2 ** (1.12 / 5) - 1) ** (-1 / 2.24)
    rho = 0.3 * 2.77536627e11 * 0.49  # M_sun/Mpc^3
    want = 4 * np.pi / 3 * rho * (lam / 2) ** 3
    np.testing.assert_allclose(
        float(L.half_mode_mass(1.0, c, omega_dm=0.25)), want, rtol=1e-4
    )


def test_counts_and_mass_spectrum_match_mass_function():
    """KS test of drawn masses against the truncated power law CDF, and the mean count
    against the expected number; fixed key, p-value threshold 1e-4."""
    cfg = L.SubhaloConfig(
        max_n=400, m_min=1e6, m_max=1e10, alpha=1.9, normalization="number"
    )
    draws = jax.vmap(lambda k: L.sample_subhalos(k, 200.0, jnp.inf, cfg))(
        jax.random.split(jax.random.key(3), 40)
    )
    m = np.asarray(draws.mass)[np.asarray(draws.mask) > 0]
    e = 1 - 1.9

    def cdf(x):
        return (x**e - 1e6**e) / (1e10**e - 1e6**e)

    assert stats.kstest(m, cdf).pvalue > 1e-4
    counts = np.asarray(draws.mask).sum(1)
    # 40 Poisson(200) draws: mean error sigma = sqrt(200/40) = 2.2; allow 5 sigma.
    assert abs(counts.mean() - 200) < 11.2


def test_wdm_suppression_removes_expected_fraction():
    """Fraction of CDM subhalos below m_hm removed by thinning equals
    1 - <S(m)> over the mass function below m_hm (binomial 5-sigma tolerance)."""
    cfg = L.SubhaloConfig(
        max_n=450, m_min=1e6, m_max=1e10, alpha=1.9, normalization="number"
    )
    m_wdm = 5.0
    m_hm = float(L.half_mode_mass(m_wdm))
    draws = jax.vmap(lambda k: L.sample_subhalos(k, 300.0, m_wdm, cfg))(
        jax.random.split(jax.random.key(5), 40)
    )
    m = np.asarray(draws.mass)
    cdm = np.asarray(draws.cdm_mask) > 0
    kept = np.asarray(draws.mask) > 0
    below = cdm & (m < m_hm)
    frac_removed = 1 - kept[below].sum() / below.sum()

    def w(x):
        return x**-1.9

    def s(x):
        return w(x) * (1 + m_hm / x) ** -1.16

    want = 1 - integrate.quad(s, 1e6, m_hm)[0] / integrate.quad(w, 1e6, m_hm)[0]
    sig = np.sqrt(want * (1 - want) / below.sum())
    assert abs(frac_removed - want) < 5 * sig, (frac_removed, want, sig)
    assert want > 0.5  # the check is about real suppression


def test_population_is_padded_and_jittable(getkey, jit):
    cfg = L.SubhaloConfig(max_n=32)
    scene = L.SceneParams(sub_norm=3e8)
    f = jit(lambda k: L.sample_scene(k, scene, cfg))
    p = f(jax.random.key(0))
    pop = p.lens[2]
    assert pop.mask.shape == (32,)
    assert pop.profile.kappa_s.shape == (32,)
    p2 = L.sample_scene(jax.random.key(0), scene, cfg)
    np.testing.assert_allclose(pop.profile.x0, p2.lens[2].profile.x0, rtol=1e-6)
    assert np.all(np.isfinite(np.asarray(pop.profile.kappa_s)))


def test_concentration_duffy():
    """Duffy et al. 2008: c(2e12/h, z=0) = 5.71."""
    c = L.Cosmology()
    np.testing.assert_allclose(
        float(L.concentration_duffy08(2e12 / 0.6766, 0.0, c)), 5.71, rtol=1e-5
    )


def test_bad_subhalo_config():
    with pytest.raises(ValueError, match="`m_min`"):
        L.SubhaloConfig(m_min=1e9, m_max=1e8)
    with pytest.raises(ValueError, match="`z_source`"):
        L.SubhaloConfig(z_lens=1.0, z_source=0.5)
    with pytest.raises(ValueError, match="`positions`"):
        L.SubhaloConfig(positions="ring")


@pytest.mark.slow
def test_mass_function_binned_chi2_large():
    """Binned chi^2 of 20000 masses with WDM suppression vs the suppressed mass
    function (10 log bins, p > 1e-4)."""
    cfg = L.SubhaloConfig(max_n=2000, m_min=1e6, m_max=1e10, normalization="number")
    m_hm = float(L.half_mode_mass(3.0))
    draws = jax.vmap(lambda k: L.sample_subhalos(k, 1000.0, 3.0, cfg))(
        jax.random.split(jax.random.key(9), 40)
    )
    m = np.asarray(draws.mass)[np.asarray(draws.mask) > 0]
    edges = np.logspace(6, 10, 11)
    obs, _ = np.histogram(m, edges)

    def dn(x):
        return x**-1.9 * (1 + m_hm / x) ** -1.16

    p = np.array(
        [
            integrate.quad(dn, a, b)[0]
            for a, b in zip(edges[:-1], edges[1:], strict=False)
        ]
    )
    exp = p / p.sum() * obs.sum()
    chi2 = ((obs - exp) ** 2 / exp).sum()
    assert stats.chi2.sf(chi2, 9) > 1e-4


def test_overflow_is_an_error_not_a_truncation():
    """More CDM draws than max_n slots raise (concrete) or poison the draw (traced,
    NaN arrays and ``with_valid`` False), never truncate."""
    cfg = L.SubhaloConfig(max_n=8)
    mean_n = float(L.expected_cdm_number(3e9, cfg))  # ~33 expected subhalos
    assert L.required_max_n(mean_n) > 8
    assert L.required_max_n(mean_n) <= L.required_max_n(mean_n, tail=1e-12)
    with pytest.raises(ValueError, match="max_n"):
        L.sample_subhalos(jax.random.key(0), 3e9, jnp.inf, cfg)
    traced = eqx.filter_jit(
        lambda k, s: with_valid(L.sample_subhalos)(k, s, jnp.inf, cfg)
    )
    over, valid = traced(jax.random.key(0), jnp.asarray(3e9))
    assert not bool(valid)
    for leaf in (over.mass, over.x, over.y, over.mask, over.cdm_mask):
        assert np.all(np.isnan(np.asarray(leaf)))
    ok, valid = traced(jax.random.key(0), jnp.asarray(1e8))  # ~1 expected: fits
    assert bool(valid)
    assert ok.mask.shape == (8,)
    assert np.all(np.isfinite(np.asarray(ok.mask)))
