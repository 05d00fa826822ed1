"""Posterior calibration diagnostics: SBC ranks, expected coverage, TARP and C2ST.

References:
    Talts et al. 2018, "Validating Bayesian Inference Algorithms with Simulation-Based
    Calibration", arXiv:1804.06788 (SBC ranks).
    Hermans et al. 2022, "A Trust Crisis in Simulation-Based Inference? Your Posterior
    Approximations Can Be Unfaithful", TMLR, arXiv:2110.06581 (expected coverage by
    highest-posterior-density ranking).
    Lemos et al. 2023, "Sampling-Based Accuracy Testing of Posterior Estimators for
    General Inference", ICML, arXiv:2302.03026 (TARP).
    Lopez-Paz & Oquab 2017, "Revisiting Classifier Two-Sample Tests", ICLR; Lueckmann
    et al. 2021, AISTATS (C2ST as used by sbibm).

Non-finite inputs (one policy for the whole module; see ``docs/architecture.md``):

* Eagerly (concrete arrays), a row of ``theta``, ``x``, ``samples`` or a log-density
  with a NaN or inf entry (log-densities: NaN only, since -inf is a legitimate value
  outside a posterior's support) raises ValueError naming the argument, the number
  of bad rows and their indices. Nothing is dropped.
* Under ``jit`` (traced arrays, where no message can be raised), the per-row outputs
  (SBC ranks, credibilities, TARP's per-row coverage) are NaN in exactly the bad
  rows, and the aggregate statistics (coverage, its error, TARP's ECP) are computed
  over the valid rows only; the result reports which rows those are (``valid``, a
  boolean mask of shape (n_sims,)) and how many were excluded (``n_invalid``). Rows
  are never silently averaged over. :func:`finite_rows` gives the same mask from the
  inputs (or from the ranks) before or after the call. Bad input rows are not passed
  to ``sample_fn``/``log_prob_fn`` (the first valid row stands in, and its output is
  discarded), so a callable with its own checks does not abort the whole batch.
* Host-side functions (:func:`sbc_uniformity`, :func:`c2st`) always raise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import _is_traced, check_array, check_key, finite_rows, guard_in_range

__all__ = [
    "CoverageResult",
    "SBCUniformity",
    "TARPResult",
    "c2st",
    "expected_coverage",
    "expected_coverage_from_log_probs",
    "finite_rows",
    "marginal_coverage",
    "sbc_ranks",
    "sbc_ranks_from_samples",
    "sbc_uniformity",
    "tarp",
]


def _check_int(n, name: str, low: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < low:
        raise ValueError(f"`{name}` must be an integer >= {low}; got {n!r}.")
    return int(n)


def _check_pairs(theta, x):
    theta = check_array(theta, "theta", ndim=2, finite=False)
    x = jnp.asarray(x)
    if x.ndim < 1 or x.shape[0] != theta.shape[0]:
        raise ValueError(
            f"`x` must have a leading axis of {theta.shape[0]} rows (one per theta); "
            f"got shape {x.shape}."
        )
    return theta, x


def _bad_rows(a, *, nan_only: bool = False) -> jax.Array:
    """Boolean (n,): rows of ``a`` (leading axis) with a NaN (or inf) entry."""
    a = jnp.asarray(a)
    if not jnp.issubdtype(a.dtype, jnp.inexact):
        return jnp.zeros(a.shape[:1], bool)
    bad = jnp.isnan(a) if nan_only else ~jnp.isfinite(a)
    return bad.reshape(a.shape[0], -1).any(axis=1)


def _row_list(bad: np.ndarray) -> str:
    idx = np.flatnonzero(bad)
    shown = ", ".join(str(i) for i in idx[:10])
    return f"[{shown}{', ...' if idx.size > 10 else ''}]"


def _screen(bad, name: str, what: str = "non-finite (NaN or inf)") -> jax.Array:
    """Eagerly raise if any row is bad; under jit return the mask (poison later).

    Args:
        bad: Boolean (n,) mask of bad rows.
        name: Public argument (or callable) the rows came from.
        what: What is wrong with the entries.

    Returns:
        ``bad`` (all False when concrete, since otherwise this raises).
    """
    if _is_traced(bad):
        return bad
    b = np.asarray(bad)
    if b.any():
        raise ValueError(
            f"`{name}` has {what} entries in {int(b.sum())} of {b.size} rows: "
            f"rows {_row_list(b)}. Fix or drop these rows (e.g. with "
            "`jaxdm.inference.diagnostics.finite_rows`); nothing is dropped silently. "
            "Under jit the diagnostics instead return NaN for exactly these rows and "
            "report them in `valid`/`n_invalid`."
        )
    return bad


def _fill_bad_rows(a, bad):
    """Replace the flagged rows of ``a`` by its first valid row.

    Under ``jit`` known-bad rows are not passed to user callables (whose own checks may
    raise, or whose output could look valid); their outputs are set to NaN afterwards.
    """
    first = jnp.argmax(~bad)
    mask = bad.reshape(bad.shape + (1,) * (a.ndim - 1))
    return jnp.where(mask, a[first][None], a)


def _nan_rows(values, bad):
    """Set the rows of ``values`` (leading axis) flagged in ``bad`` to NaN."""
    values = values.astype(jnp.result_type(values.dtype, float))
    mask = bad.reshape(bad.shape + (1,) * (values.ndim - 1))
    return jnp.where(mask, jnp.nan, values)


# ----------------------------------------------------------------------------- SBC


def sbc_ranks_from_samples(samples, theta) -> jax.Array:
    """SBC rank statistics from precomputed posterior samples.

    Args:
        samples: Posterior samples, shape (n_sims, n_posterior_samples, d), one set per
            simulated observation.
        theta: The true parameters that generated each observation, shape (n_sims, d).

    Returns:
        Ranks in {0, ..., n_posterior_samples}, shape (n_sims, d): the number of
        posterior samples below the true value, per dimension. They are integer-valued
        floats (the samples' dtype) so that a bad row can hold NaN under ``jit``.

    Raises:
        ValueError: Wrong shapes; eagerly, rows of ``theta`` or ``samples`` with a NaN
            or inf entry (named with their indices). Under ``jit`` those rows' ranks
            are NaN instead (mask: ``finite_rows(ranks)``).
    """
    samples = check_array(samples, "samples", ndim=3, finite=False)
    theta = check_array(
        theta, "theta", shape=(samples.shape[0], samples.shape[2]), finite=False
    )
    bad = _screen(_bad_rows(theta), "theta") | _screen(_bad_rows(samples), "samples")
    ranks = jnp.sum(samples < theta[:, None, :], axis=1).astype(samples.dtype)
    return _nan_rows(ranks, bad)


def sbc_ranks(
    key,
    sample_fn: Callable,
    theta,
    x,
    *,
    n_posterior_samples: int = 100,
) -> jax.Array:
    """Simulation-based calibration ranks (Talts et al. 2018).

    For pairs (theta_i, x_i) drawn from the joint, rank_i = #{posterior samples given
    x_i below theta_i}, per dimension. For a calibrated posterior each rank is uniform
    on {0, ..., n_posterior_samples}; test with :func:`sbc_uniformity`.

    Args:
        key: Typed PRNG key.
        sample_fn: ``sample_fn(key, x, n) -> (n, d)`` posterior samples for ONE
            observation; must be jax-traceable (it is vmapped over observations). For a
            non-traceable sampler use :func:`sbc_ranks_from_samples`.
        theta: True parameters, shape (n_sims, d).
        x: Observations, shape (n_sims, ...).
        n_posterior_samples: Posterior samples per observation (L).

    Returns:
        Ranks of shape (n_sims, d), integer-valued floats in [0, L].

    Raises:
        ValueError: Eagerly, for rows of ``theta`` or ``x`` with NaN or inf entries, or
            rows where ``sample_fn`` returned non-finite samples (row indices in the
            message). Under ``jit`` those rows' ranks are NaN instead, and only those
            (mask: ``finite_rows(ranks)``).
    """
    check_key(key)
    theta, x = _check_pairs(theta, x)
    n = _check_int(n_posterior_samples, "n_posterior_samples")
    bad = _screen(_bad_rows(theta), "theta") | _screen(_bad_rows(x), "x")
    keys = jax.random.split(key, theta.shape[0])
    x_in = _fill_bad_rows(x, bad)
    samples = jax.vmap(lambda k, xi: sample_fn(k, xi, n))(keys, x_in)
    if samples.ndim != 3 or samples.shape[2] != theta.shape[1]:
        raise ValueError(
            f"`sample_fn` must return samples of shape ({n}, {theta.shape[1]}) for one "
            f"observation; got {samples.shape[1:]}."
        )
    # Rows already known to be bad are not blamed on sample_fn.
    bad = bad | _screen(_bad_rows(samples) & ~bad, "sample_fn (returned samples)")
    ranks = jnp.sum(samples < theta[:, None, :], axis=1).astype(samples.dtype)
    return _nan_rows(ranks, bad)


class SBCUniformity(NamedTuple):
    """Per-dimension uniformity tests of SBC ranks.

    Attributes:
        chi2_pvalue: Pearson chi^2 p-value of the binned rank histogram, shape (d,).
        ks_pvalue: Kolmogorov-Smirnov p-value of (rank + 0.5) / (L + 1) against U(0, 1),
            shape (d,).
        n_bins: Number of histogram bins used for chi^2.
    """

    chi2_pvalue: np.ndarray
    ks_pvalue: np.ndarray
    n_bins: int


def sbc_uniformity(ranks, n_posterior_samples: int, *, n_bins: int | None = None):
    """Test SBC ranks for uniformity on {0, ..., L}, per dimension (host computation).

    Expected bin counts are exact for any bin count: rank value k falls in bin
    floor(k * n_bins / (L + 1)), and each of the L + 1 values has probability 1/(L + 1).

    Args:
        ranks: Integer-valued ranks, shape (n_sims, d). NaN rows (from a compiled
            :func:`sbc_ranks`) raise: drop them explicitly with
            ``ranks[finite_rows(ranks)]``.
        n_posterior_samples: L, the number of posterior samples used for the ranks.
        n_bins: Histogram bins for chi^2; default min(L + 1, max(2, n_sims // 10)) so
            that the expected count per bin is about 10.

    Returns:
        An :class:`SBCUniformity` with p-values per dimension.

    Raises:
        ValueError: NaN rows (indices named), non-integer ranks, ranks outside
            [0, L], or a bad ``n_bins``.
    """
    from scipy import stats

    r = np.asarray(ranks)
    if r.ndim != 2:
        raise ValueError(f"`ranks` must have shape (n_sims, d); got {r.shape}.")
    _screen(~np.asarray(finite_rows(r)), "ranks")
    if np.any(r != np.round(r)):
        raise ValueError("`ranks` must be integer-valued.")
    L = _check_int(n_posterior_samples, "n_posterior_samples")
    if r.min() < 0 or r.max() > L:
        raise ValueError(f"`ranks` must lie in [0, {L}]; got [{r.min()}, {r.max()}].")
    n_sims = r.shape[0]
    if n_bins is None:
        n_bins = min(L + 1, max(2, n_sims // 10))
    n_bins = _check_int(n_bins, "n_bins", 2)
    if n_bins > L + 1:
        raise ValueError(f"`n_bins` must be <= L + 1 = {L + 1}; got {n_bins}.")
    values = np.arange(L + 1)
    bin_of = values * n_bins // (L + 1)
    expected = n_sims * np.bincount(bin_of, minlength=n_bins) / (L + 1)
    chi2_p, ks_p = [], []
    for j in range(r.shape[1]):
        obs = np.bincount(bin_of[r[:, j].astype(int)], minlength=n_bins)
        chi2_p.append(stats.chisquare(obs, expected).pvalue)
        u = (r[:, j] + 0.5) / (L + 1)
        ks_p.append(stats.kstest(u, "uniform").pvalue)
    return SBCUniformity(np.asarray(chi2_p), np.asarray(ks_p), n_bins)


# ------------------------------------------------------------------------- coverage


class CoverageResult(NamedTuple):
    """Expected coverage of credible regions at nominal levels.

    Attributes:
        levels: Nominal credibility levels, shape (n_levels,).
        coverage: Empirical coverage (fraction of true parameters inside the region)
            over the valid rows, shape (n_levels,) or (n_levels, d) for marginals.
        error: Binomial standard error sqrt(c (1 - c) / n_valid), same shape as
            coverage.
        credibility: Per-simulation credibility of the truth (the smallest level whose
            region contains it), shape (n_sims,) or (n_sims, d); NaN in invalid rows.
        valid: Boolean mask of the rows used, shape (n_sims,). All True for eager
            calls (which raise on bad rows); under ``jit`` False for rows with
            non-finite inputs.
        n_invalid: Number of rows excluded from ``coverage`` (scalar int).
    """

    levels: jax.Array
    coverage: jax.Array
    error: jax.Array
    credibility: jax.Array
    valid: jax.Array
    n_invalid: jax.Array


def _levels(levels):
    if levels is None:
        return jnp.linspace(0.0, 1.0, 21)
    lv = check_array(levels, "levels", ndim=1, finite=False)
    return guard_in_range(lv, "levels", 0.0, 1.0)


def _coverage(credibility, levels, bad):
    valid = ~bad
    n_valid = jnp.sum(valid)
    cred = _nan_rows(credibility, bad)
    lv = levels.reshape(levels.shape + (1,) * credibility.ndim)
    keep = valid.reshape(valid.shape + (1,) * (credibility.ndim - 1))
    inside = (credibility[None] <= lv) & keep[None]
    cov = (jnp.sum(inside, axis=1) / n_valid).astype(cred.dtype)
    err = jnp.sqrt(cov * (1 - cov) / n_valid)
    n_invalid = credibility.shape[0] - n_valid
    return CoverageResult(levels, cov, err, cred, valid, n_invalid)


def expected_coverage_from_log_probs(log_prob_samples, log_prob_true, *, levels=None):
    """Expected HPD coverage from precomputed log-densities (Hermans et al. 2022).

    The credibility of theta_true is the posterior mass of the highest-density region
    whose boundary passes through theta_true, estimated as the fraction of posterior
    samples with log q(theta_s | x) > log q(theta_true | x). theta_true lies in the
    level-gamma HPD region iff its credibility is <= gamma.

    Args:
        log_prob_samples: log q(theta_s | x_i) of posterior samples, shape (n_sims, L).
        log_prob_true: log q(theta_i | x_i) of the truths, shape (n_sims,). -inf (a
            truth outside the approximate posterior's support) is allowed; NaN is not.
        levels: Nominal levels in [0, 1], shape (n_levels,); default 0, 0.05, ..., 1.

    Returns:
        A :class:`CoverageResult`.

    Raises:
        ValueError: Eagerly, rows with a NaN log-density (indices named). Under ``jit``
            those rows' credibility is NaN, they are excluded from ``coverage`` and
            counted in ``n_invalid`` (mask ``valid``).
    """
    lps = check_array(log_prob_samples, "log_prob_samples", ndim=2, finite=False)
    lpt = check_array(
        log_prob_true, "log_prob_true", shape=(lps.shape[0],), finite=False
    )
    bad = _screen(_bad_rows(lps, nan_only=True), "log_prob_samples", "NaN") | _screen(
        _bad_rows(lpt, nan_only=True), "log_prob_true", "NaN"
    )
    cred = jnp.mean((lps > lpt[:, None]).astype(lps.dtype), axis=1)
    return _coverage(cred, _levels(levels), bad)


def expected_coverage(
    key,
    log_prob_fn: Callable,
    sample_fn: Callable,
    theta,
    x,
    *,
    n_posterior_samples: int = 100,
    levels=None,
) -> CoverageResult:
    """Expected coverage of highest-posterior-density regions (Hermans et al. 2022).

    Args:
        key: Typed PRNG key.
        log_prob_fn: ``log_prob_fn(theta, x) -> scalar`` posterior log-density for one
            theta (d,) and one x (jax-traceable; vmapped).
        sample_fn: ``sample_fn(key, x, n) -> (n, d)`` for one x (jax-traceable).
        theta: True parameters, shape (n_sims, d).
        x: Observations, shape (n_sims, ...).
        n_posterior_samples: Posterior samples per observation.
        levels: Nominal levels, shape (n_levels,); default 0, 0.05, ..., 1.

    Returns:
        A :class:`CoverageResult`; a calibrated posterior has coverage ~= levels,
        an over-confident one coverage < levels, a conservative one coverage > levels.

    Raises:
        ValueError: Eagerly, rows of ``theta`` or ``x`` with NaN or inf, or rows where
            ``sample_fn``/``log_prob_fn`` gave NaN (indices named). Under ``jit`` those
            rows' credibility is NaN, they are excluded from ``coverage`` and counted
            in ``n_invalid`` (mask ``valid``).
    """
    check_key(key)
    theta, x = _check_pairs(theta, x)
    n = _check_int(n_posterior_samples, "n_posterior_samples")
    bad = _screen(_bad_rows(theta), "theta") | _screen(_bad_rows(x), "x")

    def one(k, th, xi):
        s = sample_fn(k, xi, n)
        lps = jax.vmap(log_prob_fn, (0, None))(s, xi)
        return s, lps, log_prob_fn(th, xi)

    keys = jax.random.split(key, theta.shape[0])
    theta_in, x_in = _fill_bad_rows(theta, bad), _fill_bad_rows(x, bad)
    samples, lps, lpt = jax.vmap(one)(keys, theta_in, x_in)
    # Rows already known to be bad are not blamed on the callables.
    bad = bad | _screen(_bad_rows(samples) & ~bad, "sample_fn (returned samples)")
    bad = bad | _screen(
        (_bad_rows(lps, nan_only=True) | _bad_rows(lpt, nan_only=True)) & ~bad,
        "log_prob_fn (returned log-densities)",
        "NaN",
    )
    cred = jnp.mean((lps > lpt[:, None]).astype(lps.dtype), axis=1)
    return _coverage(cred, _levels(levels), bad)


def marginal_coverage(samples, theta, *, levels=None) -> CoverageResult:
    """Coverage of central (equal-tailed) 1-D marginal credible intervals.

    With q = fraction of marginal samples below the truth, theta_j lies in the central
    level-gamma interval iff |2 q - 1| <= gamma, so the credibility is |2 q - 1|.

    Args:
        samples: Posterior samples, shape (n_sims, L, d).
        theta: Truths, shape (n_sims, d).
        levels: Nominal levels, shape (n_levels,).

    Returns:
        A :class:`CoverageResult` with coverage and error of shape (n_levels, d).

    Raises:
        ValueError: Eagerly, rows of ``samples`` or ``theta`` with NaN or inf (indices
            named). Under ``jit`` those rows' credibility is NaN, they are excluded
            from ``coverage`` and counted in ``n_invalid`` (mask ``valid``).
    """
    samples = check_array(samples, "samples", ndim=3, finite=False)
    theta = check_array(
        theta, "theta", shape=(samples.shape[0], samples.shape[2]), finite=False
    )
    bad = _screen(_bad_rows(theta), "theta") | _screen(_bad_rows(samples), "samples")
    q = jnp.mean((samples < theta[:, None, :]).astype(samples.dtype), axis=1)
    return _coverage(jnp.abs(2 * q - 1), _levels(levels), bad)


# ----------------------------------------------------------------------------- TARP


class TARPResult(NamedTuple):
    """TARP expected coverage probability curve.

    Attributes:
        alpha: Credibility levels, shape (n_bins + 1,), from 0 to 1.
        ecp: Expected coverage probability at each alpha (mean over reference sets of
            the mean over valid rows), shape (n_bins + 1,).
        ecp_std: Standard deviation of the ECP over the ``n_refs`` reference sets.
        max_deviation: max |ecp - alpha| (0 for a calibrated posterior, up to sampling
            noise).
        valid: Boolean mask of the rows used, shape (n_sims,) (all True eagerly).
        n_invalid: Number of rows excluded (non-finite under ``jit``), scalar int.
    """

    alpha: jax.Array
    ecp: jax.Array
    ecp_std: jax.Array
    max_deviation: jax.Array
    valid: jax.Array
    n_invalid: jax.Array


def tarp(key, samples, theta, *, n_refs: int = 10, n_bins: int = 50, normalize=True):
    """Tests of Accuracy with Random Points (Lemos et al. 2023).

    For each simulation a random reference point theta_r is drawn (uniform on the box
    spanned by the truths); f_i = fraction of posterior samples closer to theta_r than
    theta_i is. ECP(alpha) = mean_i[f_i < alpha] equals alpha for every alpha iff the
    posterior is calibrated (for almost any reference distribution). Averaging the
    curve over ``n_refs`` independent reference sets reduces its variance.

    Args:
        key: Typed PRNG key.
        samples: Posterior samples, shape (n_sims, L, d).
        theta: Truths, shape (n_sims, d).
        n_refs: Number of independent reference sets.
        n_bins: Number of alpha intervals on [0, 1].
        normalize: Rescale each dimension to [0, 1] using the truths' min and max
            (as the reference ``tarp`` package does) before measuring distances.

    Returns:
        A :class:`TARPResult`.

    Raises:
        ValueError: Eagerly, rows of ``samples`` or ``theta`` with NaN or inf (indices
            named). Under ``jit`` those rows are left out of the truths' box and of the
            ECP, and counted in ``n_invalid`` (mask ``valid``); with no valid row the
            ECP is NaN.
    """
    check_key(key)
    samples = check_array(samples, "samples", ndim=3, finite=False)
    theta = check_array(
        theta, "theta", shape=(samples.shape[0], samples.shape[2]), finite=False
    )
    n_refs = _check_int(n_refs, "n_refs")
    n_bins = _check_int(n_bins, "n_bins")
    bad = _screen(_bad_rows(theta), "theta") | _screen(_bad_rows(samples), "samples")
    valid = ~bad
    n_valid = jnp.sum(valid)
    # Bad rows are replaced by a valid-row value (their f is discarded below), so that
    # neither the truths' box nor any distance sees a NaN.
    theta = _fill_bad_rows(theta, bad)
    samples = jnp.where(valid[:, None, None], samples, theta[:, None, :])
    lo = jnp.min(jnp.where(valid[:, None], theta, jnp.inf), axis=0)
    hi = jnp.max(jnp.where(valid[:, None], theta, -jnp.inf), axis=0)
    if normalize:
        scale = jnp.where(hi > lo, hi - lo, 1.0)
        samples = (samples - lo[None, None, :]) / scale[None, None, :]
        theta = (theta - lo[None, :]) / scale[None, :]
        lo, hi = jnp.zeros_like(lo), jnp.ones_like(hi)
    u = jax.random.uniform(key, (n_refs, *theta.shape), theta.dtype)
    refs = lo[None, None, :] + (hi - lo)[None, None, :] * u

    def f_of(ref):
        d_s = jnp.linalg.norm(samples - ref[:, None, :], axis=-1)
        d_t = jnp.linalg.norm(theta - ref, axis=-1)  # both (n_sims, d)
        return jnp.mean((d_s < d_t[:, None]).astype(theta.dtype), axis=1)

    f = jax.vmap(f_of)(refs)  # (n_refs, n_sims)
    alpha = jnp.linspace(0.0, 1.0, n_bins + 1, dtype=theta.dtype)
    below = (f[:, :, None] < alpha[None, None, :]) & valid[None, :, None]
    ecp = (jnp.sum(below, axis=1) / n_valid).astype(theta.dtype)  # (n_refs, n_bins+1)
    ecp = ecp.at[:, -1].set(jnp.where(n_valid > 0, 1.0, jnp.nan))
    mean = ecp.mean(0)
    return TARPResult(
        alpha,
        mean,
        ecp.std(0),
        jnp.max(jnp.abs(mean - alpha)),
        valid,
        theta.shape[0] - n_valid,
    )


# ----------------------------------------------------------------------------- C2ST


def c2st(
    key,
    samples_p,
    samples_q,
    *,
    n_folds: int = 5,
    width: int | None = None,
    depth: int = 2,
    max_epochs: int = 100,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    patience: int = 10,
) -> jax.Array:
    """Classifier two-sample test accuracy, k-fold cross-validated (sbibm's C2ST).

    Both sample sets are standardised with the pooled mean and standard deviation, an
    MLP classifier (``jaxdm.nn.MLP``, width 10 * dim and two hidden layers as sbibm's
    sklearn classifier) is trained with ``jaxdm.train.fit`` on the binary cross-entropy
    in each of ``n_folds`` folds, and the held-out accuracies are averaged. 0.5 means
    indistinguishable, 1.0 perfectly separable.

    Args:
        key: Typed PRNG key.
        samples_p: Samples of the first distribution, shape (n_p, dim).
        samples_q: Samples of the second distribution, shape (n_q, dim).
        n_folds: Number of cross-validation folds (>= 2).
        width: Hidden width; default 10 * dim.
        depth: Number of hidden layers.
        max_epochs: Maximum training epochs per fold.
        batch_size: Minibatch size.
        learning_rate: Adam learning rate.
        patience: Early-stopping patience (on a 10% validation split of the fold's
            training rows).

    Returns:
        Mean held-out classification accuracy (scalar).

    Raises:
        ValueError: Rows of ``samples_p`` or ``samples_q`` with NaN or inf (indices
            named), wrong shapes, or too few samples.
        TypeError: Under ``jit`` (a host-side training loop).
    """
    check_key(key)
    p = check_array(samples_p, "samples_p", ndim=2, finite=False)
    q = check_array(samples_q, "samples_q", shape=(None, p.shape[1]), finite=False)
    if _is_traced(p) or _is_traced(q):
        raise TypeError(
            "c2st trains a classifier in a host loop and cannot run under jit; call "
            "it eagerly with concrete `samples_p` and `samples_q`."
        )
    _screen(_bad_rows(p), "samples_p")
    _screen(_bad_rows(q), "samples_q")
    n_folds = _check_int(n_folds, "n_folds", 2)

    import optax

    from ..nn import MLP
    from ..train import fit

    dim = p.shape[1]
    width = 10 * dim if width is None else _check_int(width, "width")
    X = jnp.concatenate([p, q])
    y = jnp.concatenate([jnp.zeros(p.shape[0]), jnp.ones(q.shape[0])]).astype(X.dtype)
    n = X.shape[0]
    if n < 2 * n_folds:
        raise ValueError(f"need at least {2 * n_folds} samples in total; got {n}.")
    std = jnp.where(X.std(0) > 0, X.std(0), 1.0)
    X = (X - X.mean(0)[None, :]) / std[None, :]

    k_perm, k_folds = jax.random.split(key)
    perm = np.asarray(jax.random.permutation(k_perm, n))
    folds = np.array_split(perm, n_folds)

    def loss_fn(model, batch, _key):
        logits = jax.vmap(model)(batch[0])[:, 0]
        return optax.sigmoid_binary_cross_entropy(logits, batch[1]).mean()

    accs = []
    for i, k in enumerate(jax.random.split(k_folds, n_folds)):
        k_init, k_fit = jax.random.split(k)
        test = folds[i]
        train = np.concatenate([f for j, f in enumerate(folds) if j != i])
        model = MLP(
            dim, 1, width=width, depth=depth, activation=jax.nn.relu, key=k_init
        )
        model, _ = fit(
            k_fit,
            model,
            loss_fn,
            (X[train], y[train]),
            optax.adam(learning_rate),
            batch_size=batch_size,
            max_epochs=max_epochs,
            val_fraction=0.1,
            patience=patience,
            progress=False,
        )
        logits = jax.vmap(model)(X[test])[:, 0]
        accs.append(jnp.mean((logits > 0) == (y[test] > 0.5)))
    return jnp.mean(jnp.stack(accs))
