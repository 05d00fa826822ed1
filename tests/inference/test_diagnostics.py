"""Tests for jaxdm.inference.diagnostics: SBC, expected coverage, TARP and C2ST.

Calibration checks use the 2-D gaussian_linear task, whose posterior N(x/2, 0.05 I) is
exact; miscalibrated posteriors scale its width by 0.5 (over-confident) or 2 (under-
confident). Keys are fixed, so the statistical tolerances are deterministic.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm import tasks
from jaxdm.inference import diagnostics as D

N_SIMS, L = 300, 99
TASK = tasks.gaussian_linear(dim=2)


def _posterior(width):
    """Posterior sampler and log-density with the exact mean and std scaled by width."""

    def sample_fn(key, x, n):
        mean, var = TASK.posterior_moments(x)
        eps = jax.random.normal(key, (n, 2))
        return mean[None, :] + width * jnp.sqrt(var)[None, :] * eps

    def log_prob_fn(theta, x):
        mean, var = TASK.posterior_moments(x)
        z = (theta - mean) / (width * jnp.sqrt(var))
        return -0.5 * jnp.sum(z**2) - jnp.sum(jnp.log(width * jnp.sqrt(var)))

    return sample_fn, log_prob_fn


@pytest.fixture(scope="module")
def joint():
    return TASK.sample_joint(jax.random.key(0), N_SIMS)


def test_sbc_calibrated_and_miscalibrated(joint, jit):
    """Exact posterior: chi^2 and KS p-values > 1e-3 in every dimension; widths 0.5 and
    2 give U- and hump-shaped rank histograms with p < 1e-6 (300 sims, L = 99)."""
    theta, x = joint
    key = jax.random.key(1)
    ranks = {}
    for w in (1.0, 0.5, 2.0):
        fn = _posterior(w)[0]
        ranks[w] = jit(
            lambda k, t, xx, fn=fn: D.sbc_ranks(k, fn, t, xx, n_posterior_samples=L)
        )(key, theta, x)
        assert ranks[w].shape == (N_SIMS, 2)
        assert int(ranks[w].min()) >= 0
        assert int(ranks[w].max()) <= L
    good = D.sbc_uniformity(ranks[1.0], L)
    assert np.all(good.chi2_pvalue > 1e-3)
    assert np.all(good.ks_pvalue > 1e-3)
    for w in (0.5, 2.0):
        bad = D.sbc_uniformity(ranks[w], L)
        assert np.all(bad.chi2_pvalue < 1e-6)
    # same key -> same ranks
    again = D.sbc_ranks(key, _posterior(1.0)[0], theta, x, n_posterior_samples=L)
    np.testing.assert_array_equal(again, ranks[1.0])


def test_expected_coverage(joint):
    """HPD coverage: exact posterior within 4 binomial sigma + 0.01 of the diagonal;
    over-confident coverage at level 0.5 below 0.3, under-confident above 0.8 (for a
    2-D Gaussian the true coverages are 1 - 2^(-4) ^ ... i.e. 1-(1-0.5)^(1/w^2))."""
    theta, x = joint
    levels = jnp.linspace(0.1, 0.9, 9)
    res = {}
    for w in (1.0, 0.5, 2.0):
        s, lp = _posterior(w)
        res[w] = D.expected_coverage(
            jax.random.key(2), lp, s, theta, x, n_posterior_samples=200, levels=levels
        )
    c = res[1.0]
    assert c.coverage.shape == (9,)
    assert c.credibility.shape == (N_SIMS,)
    assert bool(jnp.all(jnp.abs(c.coverage - levels) <= 4 * c.error + 0.01))
    # For a 2-D Gaussian scaled by w, the level-g region covers 1 - (1 - g)^(1/w^2).
    assert float(res[0.5].coverage[4]) < 0.3  # exact 1 - 0.5^4 = 0.06
    assert float(res[2.0].coverage[4]) > 0.8  # exact 1 - 0.5^0.25 = 0.16 -> 0.84
    lps = jnp.zeros((3, 5))
    with pytest.raises(ValueError, match="log_prob_true"):
        D.expected_coverage_from_log_probs(lps, jnp.zeros(4))


def test_marginal_coverage_and_tarp(joint):
    """Central-interval marginal coverage and TARP separate calibrated from
    over-confident posteriors (TARP max deviation < 0.1 vs > 0.15, 300 sims)."""
    theta, x = joint
    keys = jax.random.split(jax.random.key(3), N_SIMS)
    out = {}
    for w in (1.0, 0.5):
        fn = _posterior(w)[0]
        s = jax.vmap(lambda k, xx, fn=fn: fn(k, xx, 200))(keys, x)
        mc = D.marginal_coverage(s, theta, levels=jnp.array([0.5, 0.9]))
        assert mc.coverage.shape == (2, 2)
        t = D.tarp(jax.random.key(4), s, theta, n_refs=5, n_bins=20)
        assert t.ecp.shape == (21,)
        assert float(t.ecp[0]) == 0.0
        out[w] = (mc, t)
    mc, t = out[1.0]
    assert bool(jnp.all(jnp.abs(mc.coverage - jnp.array([[0.5], [0.9]])) <= 0.1))
    assert float(t.max_deviation) < 0.1
    mc, t = out[0.5]
    assert bool(jnp.all(mc.coverage[0] < 0.35))  # exact 2 Phi(0.337) - 1 = 0.26
    # TARP is less sensitive than HPD coverage (distances to random references mix
    # dimensions), so the over-confident deviation is ~0.19, not ~0.3.
    assert float(t.max_deviation) > 0.15


def test_errors(getkey):
    with pytest.raises(TypeError, match="legacy"):
        D.tarp(jax.random.PRNGKey(0), jnp.zeros((3, 4, 2)), jnp.zeros((3, 2)))
    with pytest.raises(ValueError, match="theta"):
        D.marginal_coverage(jnp.zeros((3, 4, 2)), jnp.zeros((3, 3)))
    with pytest.raises(ValueError, match="`x`"):
        D.sbc_ranks(getkey(), _posterior(1.0)[0], jnp.zeros((3, 2)), jnp.zeros((4, 2)))
    with pytest.raises(ValueError, match="ranks"):
        D.sbc_uniformity(np.full((5, 2), 120), 99)
    with pytest.raises(ValueError, match="samples_q"):
        D.c2st(getkey(), jnp.zeros((10, 2)), jnp.zeros((10, 3)))
    with pytest.raises(ValueError, match="levels"):
        D.expected_coverage_from_log_probs(
            jnp.zeros((3, 5)), jnp.zeros(3), levels=jnp.array([1.5])
        )


def test_c2st(getkey):
    """C2ST accuracy ~0.5 for identical 2-D Gaussians (|acc - 0.5| < 0.1 with 400 test
    points over folds: 2.5 sigma of a binomial) and > 0.95 for means 6 sigma apart."""
    pytest.importorskip("jaxdm.nn")
    p = jax.random.normal(getkey(), (200, 2))
    q = jax.random.normal(getkey(), (200, 2))
    kw = dict(n_folds=2, max_epochs=30, batch_size=64)
    same = D.c2st(getkey(), p, q, **kw)
    far = D.c2st(getkey(), p, q + 6.0, **kw)
    assert abs(float(same) - 0.5) < 0.1
    assert float(far) > 0.95
