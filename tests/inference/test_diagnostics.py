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


# ------------------------------------------------------------- non-finite rows policy

BAD = np.array([1, 4])  # rows poisoned below
N_SMALL = 8


def _small(key=0):
    """Eight (theta, x) pairs from gaussian_linear(2) and 50 exact posterior samples."""
    theta, x = TASK.sample_joint(jax.random.key(key), N_SMALL)
    keys = jax.random.split(jax.random.key(key + 1), N_SMALL)
    s = jax.vmap(lambda k, xx: _posterior(1.0)[0](k, xx, 50))(keys, x)
    return theta, x, s


def _poison(a, rows=BAD, value=jnp.nan):
    idx = (jnp.asarray(rows),) + (0,) * (a.ndim - 1)
    return a.at[idx].set(value)


def _keep(a, rows=BAD):
    return a[np.setdiff1d(np.arange(a.shape[0]), rows)]


@pytest.mark.parametrize("which", ["theta", "samples"])
def test_marginal_coverage_nonfinite_rows(which):
    """Eager: ValueError names the argument and rows 1 and 4. jit: credibility NaN in
    exactly those rows, coverage equal to the eager result on the other six rows."""
    theta, _, s = _small()
    args = {"theta": theta, "samples": s}
    args[which] = _poison(args[which], value=jnp.inf if which == "samples" else jnp.nan)
    lv = jnp.array([0.5, 0.9])
    with pytest.raises(ValueError, match=rf"`{which}`.*2 of 8 rows: rows \[1, 4\]"):
        D.marginal_coverage(args["samples"], args["theta"], levels=lv)
    res = jax.jit(D.marginal_coverage)(args["samples"], args["theta"], levels=lv)
    bad_rows = np.asarray(jnp.any(jnp.isnan(res.credibility), axis=1))
    np.testing.assert_array_equal(np.flatnonzero(bad_rows), BAD)
    assert bool(jnp.all(jnp.isnan(res.credibility[BAD])))
    np.testing.assert_array_equal(res.valid, ~np.isin(np.arange(N_SMALL), BAD))
    assert int(res.n_invalid) == 2
    ref = D.marginal_coverage(_keep(s), _keep(theta), levels=lv)
    np.testing.assert_allclose(res.coverage, ref.coverage, rtol=1e-6)
    np.testing.assert_allclose(res.error, ref.error, rtol=1e-6)
    assert int(ref.n_invalid) == 0
    assert bool(jnp.all(ref.valid))


def test_expected_coverage_from_log_probs_nonfinite_rows():
    """NaN log-density rows raise eagerly; under jit they are excluded and counted.
    -inf (truth outside the support) is a legitimate value: credibility 1."""
    lps = jax.random.normal(jax.random.key(5), (6, 20))
    lpt = jax.random.normal(jax.random.key(6), (6,))
    bad_lps = lps.at[2, 3].set(jnp.nan)
    with pytest.raises(ValueError, match=r"`log_prob_samples`.*rows \[2\]"):
        D.expected_coverage_from_log_probs(bad_lps, lpt)
    with pytest.raises(ValueError, match=r"`log_prob_true`.*rows \[0\]"):
        D.expected_coverage_from_log_probs(lps, lpt.at[0].set(jnp.nan))
    lv = jnp.array([0.25, 0.5, 0.75])
    res = jax.jit(D.expected_coverage_from_log_probs)(bad_lps, lpt, levels=lv)
    np.testing.assert_array_equal(np.flatnonzero(np.isnan(res.credibility)), [2])
    assert int(res.n_invalid) == 1
    keep = np.array([0, 1, 3, 4, 5])
    ref = D.expected_coverage_from_log_probs(lps[keep], lpt[keep], levels=lv)
    np.testing.assert_allclose(res.coverage, ref.coverage, rtol=1e-6)
    out = D.expected_coverage_from_log_probs(lps, lpt.at[0].set(-jnp.inf))
    assert float(out.credibility[0]) == 1.0
    assert int(out.n_invalid) == 0


def test_expected_coverage_and_sbc_nonfinite_x_eager():
    """A NaN observation or truth row: ValueError naming the argument and the rows."""
    theta, x, _ = _small()
    s, lp = _posterior(1.0)
    key = jax.random.key(7)
    bad_x = _poison(x, rows=[3])
    with pytest.raises(ValueError, match=r"`x`.*1 of 8 rows: rows \[3\]"):
        D.expected_coverage(key, lp, s, theta, bad_x, n_posterior_samples=30)
    with pytest.raises(ValueError, match=r"`x`.*rows \[3\]"):
        D.sbc_ranks(key, s, theta, bad_x, n_posterior_samples=30)
    with pytest.raises(ValueError, match=r"`theta`.*rows \[1, 4\]"):
        D.sbc_ranks(key, s, _poison(theta), x, n_posterior_samples=30)
    with pytest.raises(ValueError, match=r"`theta`.*rows \[1, 4\]"):
        D.expected_coverage(key, lp, s, _poison(theta), x, n_posterior_samples=30)


def test_expected_coverage_and_sbc_nonfinite_x_jit():
    """Under jit a NaN observation row gives NaN ranks and credibility in that row
    only; the other rows equal the clean eager run (same per-row keys), and coverage is
    the mean over the seven valid rows, with n_invalid = 1. The posterior functions
    call TASK.posterior_moments, which raises under jit on a NaN x_obs: this also
    checks that the bad row is never passed to sample_fn/log_prob_fn."""
    theta, x, _ = _small()
    s, lp = _posterior(1.0)
    key = jax.random.key(7)
    bad_x = _poison(x, rows=[3])
    lv = jnp.array([0.5, 0.9])
    clean_cov = D.expected_coverage(key, lp, s, theta, x, n_posterior_samples=30)
    clean_rank = D.sbc_ranks(key, s, theta, x, n_posterior_samples=30)
    assert clean_rank.dtype == theta.dtype
    cov = jax.jit(
        lambda k, t, xx: D.expected_coverage(
            k, lp, s, t, xx, n_posterior_samples=30, levels=lv
        )
    )(key, theta, bad_x)
    np.testing.assert_array_equal(np.flatnonzero(np.isnan(cov.credibility)), [3])
    np.testing.assert_array_equal(
        np.delete(cov.credibility, 3), np.delete(clean_cov.credibility, 3)
    )
    assert int(cov.n_invalid) == 1
    want = np.mean(np.delete(clean_cov.credibility, 3)[None] <= lv[:, None], axis=1)
    np.testing.assert_allclose(cov.coverage, want, rtol=1e-6)
    ranks = jax.jit(lambda k, t, xx: D.sbc_ranks(k, s, t, xx, n_posterior_samples=30))(
        key, theta, bad_x
    )
    np.testing.assert_array_equal(np.flatnonzero(~D.finite_rows(ranks)), [3])
    np.testing.assert_array_equal(np.delete(ranks, 3, 0), np.delete(clean_rank, 3, 0))


def test_sample_fn_returning_nan_is_named():
    """A sampler that returns NaN for one observation is blamed, with the row."""
    theta, x, _ = _small()
    good, lp = _posterior(1.0)

    def broken(key, xx, n):
        out = good(key, xx, n)
        return jnp.where(xx[0] == x[5, 0], jnp.nan, out)

    key = jax.random.key(8)
    with pytest.raises(ValueError, match=r"`sample_fn.*rows \[5\]"):
        D.sbc_ranks(key, broken, theta, x, n_posterior_samples=10)
    with pytest.raises(ValueError, match=r"`sample_fn.*rows \[5\]"):
        D.expected_coverage(key, lp, broken, theta, x, n_posterior_samples=10)
    ranks = jax.jit(lambda t, xx: D.sbc_ranks(key, broken, t, xx))(theta, x)
    np.testing.assert_array_equal(np.flatnonzero(~D.finite_rows(ranks)), [5])


def test_sbc_from_samples_and_uniformity_nonfinite():
    """sbc_ranks_from_samples follows the policy; sbc_uniformity (host) refuses NaN
    rows with their indices and accepts them once dropped with finite_rows."""
    theta, _, s = _small()
    with pytest.raises(ValueError, match=r"`samples`.*rows \[1, 4\]"):
        D.sbc_ranks_from_samples(_poison(s), theta)
    ranks = jax.jit(D.sbc_ranks_from_samples)(_poison(s), theta)
    np.testing.assert_array_equal(np.flatnonzero(~D.finite_rows(ranks)), BAD)
    np.testing.assert_array_equal(
        _keep(ranks), D.sbc_ranks_from_samples(_keep(s), _keep(theta))
    )
    with pytest.raises(ValueError, match=r"`ranks`.*rows \[1, 4\]"):
        D.sbc_uniformity(ranks, 50, n_bins=2)
    out = D.sbc_uniformity(ranks[D.finite_rows(ranks)], 50, n_bins=2)
    assert out.chi2_pvalue.shape == (2,)
    with pytest.raises(ValueError, match="integer-valued"):
        D.sbc_uniformity(jnp.full((4, 2), 0.5), 50)


def test_tarp_nonfinite_rows():
    """Eager: error names the argument and rows. jit: the ECP equals a NumPy
    re-computation on the valid rows with the same reference draws; n_invalid = 2."""
    theta, _, s = _small()
    key = jax.random.key(9)
    with pytest.raises(ValueError, match=r"`theta`.*rows \[1, 4\]"):
        D.tarp(key, s, _poison(theta))
    with pytest.raises(ValueError, match=r"`samples`.*rows \[1, 4\]"):
        D.tarp(key, _poison(s), theta)
    n_refs, n_bins = 3, 7  # alpha = j/7 never equals f = k/50 (no float ties)
    res = jax.jit(lambda ss, t: D.tarp(key, ss, t, n_refs=n_refs, n_bins=n_bins))(
        _poison(s), theta
    )
    assert int(res.n_invalid) == 2
    np.testing.assert_array_equal(np.flatnonzero(~np.asarray(res.valid)), BAD)
    # NumPy reference on the valid rows (same uniforms: drawn for all 8 rows).
    u = np.asarray(jax.random.uniform(key, (n_refs, N_SMALL, 2)))
    keep = np.setdiff1d(np.arange(N_SMALL), BAD)
    t, ss = np.asarray(theta)[keep], np.asarray(s)[keep]
    lo, hi = t.min(0), t.max(0)
    t, ss = (t - lo) / (hi - lo), (ss - lo) / (hi - lo)
    alpha = np.linspace(0, 1, n_bins + 1)
    ecps = []
    for r in range(n_refs):
        ref = u[r, keep]
        d_s = np.linalg.norm(ss - ref[:, None], axis=-1)
        d_t = np.linalg.norm(t - ref, axis=-1)
        f = np.mean(d_s < d_t[:, None], axis=1)
        e = np.mean(f[:, None] < alpha[None], axis=0)
        e[-1] = 1.0
        ecps.append(e)
    np.testing.assert_allclose(res.ecp, np.mean(ecps, 0), atol=1e-6)
    assert bool(jnp.all(jnp.isfinite(res.ecp)))


def test_c2st_nonfinite_rows(getkey):
    p = jnp.zeros((10, 2)).at[7, 1].set(jnp.nan)
    with pytest.raises(ValueError, match=r"`samples_p`.*rows \[7\]"):
        D.c2st(getkey(), p, jnp.zeros((10, 2)))
    with pytest.raises(ValueError, match=r"`samples_q`.*10 of 10 rows: rows \[0, 1, 2"):
        D.c2st(getkey(), jnp.zeros((10, 2)), jnp.full((10, 2), jnp.inf))


def test_finite_rows_and_levels():
    mask = D.finite_rows(jnp.array([[0.0, 1.0], [jnp.inf, 0.0]]), jnp.array([1, 2]))
    np.testing.assert_array_equal(mask, [True, False])
    with pytest.raises(ValueError, match=r"arrays\[1\]"):
        D.finite_rows(jnp.zeros((3, 2)), jnp.zeros(4))
    lps, lpt = jnp.zeros((3, 5)), jnp.zeros(3)
    with pytest.raises(ValueError, match="levels"):
        D.expected_coverage_from_log_probs(lps, lpt, levels=jnp.array([jnp.nan]))
    import equinox as eqx

    with pytest.raises(eqx.EquinoxRuntimeError, match="levels"):
        eqx.filter_jit(
            lambda lv: D.expected_coverage_from_log_probs(lps, lpt, levels=lv)
        )(jnp.array([0.5, 1.5]))


def test_batch_of_keys_is_rejected():
    """check_key: one key expected; a batch of keys names the argument (eager, jit)."""
    from jaxdm._checks import check_key

    keys = jax.random.split(jax.random.key(0), 3)
    with pytest.raises(ValueError, match=r"`key` must be one PRNG key.*\(3,\)"):
        D.tarp(keys, jnp.zeros((3, 4, 2)), jnp.zeros((3, 2)))
    with pytest.raises(ValueError, match="`key` must be one PRNG key"):
        jax.jit(lambda k: D.tarp(k, jnp.zeros((3, 4, 2)), jnp.zeros((3, 2))))(keys)
    check_key(keys, batch=True)
    check_key(keys[0])


@pytest.mark.x64
def test_float64_nan_rows():
    """In float64 ranks, credibility and coverage stay float64, NaN rows included."""
    theta = jax.random.normal(jax.random.key(0), (5, 2), jnp.float64)
    s = jax.random.normal(jax.random.key(1), (5, 7, 2), jnp.float64)
    s = s.at[0, 0, 0].set(jnp.nan)
    ranks = jax.jit(D.sbc_ranks_from_samples)(s, theta)
    assert ranks.dtype == jnp.float64
    np.testing.assert_array_equal(np.flatnonzero(~D.finite_rows(ranks)), [0])
    res = jax.jit(D.marginal_coverage)(s, theta)
    assert res.credibility.dtype == res.coverage.dtype == jnp.float64
    assert int(res.n_invalid) == 1
    t = jax.jit(lambda a, b: D.tarp(jax.random.key(2), a, b, n_bins=5))(s, theta)
    assert t.ecp.dtype == jnp.float64
    assert int(t.n_invalid) == 1
    lps = jnp.zeros((5, 7), jnp.float64)
    c = D.expected_coverage_from_log_probs(lps, jnp.zeros(5, jnp.float64))
    assert c.credibility.dtype == jnp.float64
