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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_array, check_key

__all__ = [
    "CoverageResult",
    "SBCUniformity",
    "TARPResult",
    "c2st",
    "expected_coverage",
    "expected_coverage_from_log_probs",
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
    theta = check_array(theta, "theta", ndim=2)
    x = jnp.asarray(x)
    if x.ndim < 1 or x.shape[0] != theta.shape[0]:
        raise ValueError(
            f"`x` must have a leading axis of {theta.shape[0]} rows (one per theta); "
            f"got shape {x.shape}."
        )
    return theta, x


# ----------------------------------------------------------------------------- SBC


def sbc_ranks_from_samples(samples, theta) -> jax.Array:
    """SBC rank statistics from precomputed posterior samples.

    Args:
        samples: Posterior samples, shape (n_sims, n_posterior_samples, d), one set per
            simulated observation.
        theta: The true parameters that generated each observation, shape (n_sims, d).

    Returns:
        Integer ranks in {0, ..., n_posterior_samples}, shape (n_sims, d): the number of
        posterior samples below the true value, per dimension.
    """
    samples = check_array(samples, "samples", ndim=3)
    theta = check_array(theta, "theta", shape=(samples.shape[0], samples.shape[2]))
    return jnp.sum(samples < theta[:, None, :], axis=1)


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
        Ranks of shape (n_sims, d), integers in [0, L].
    """
    check_key(key)
    theta, x = _check_pairs(theta, x)
    n = _check_int(n_posterior_samples, "n_posterior_samples")
    keys = jax.random.split(key, theta.shape[0])
    samples = jax.vmap(lambda k, xi: sample_fn(k, xi, n))(keys, x)
    return sbc_ranks_from_samples(samples, theta)


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
        ranks: Integer ranks, shape (n_sims, d).
        n_posterior_samples: L, the number of posterior samples used for the ranks.
        n_bins: Histogram bins for chi^2; default min(L + 1, max(2, n_sims // 10)) so
            that the expected count per bin is about 10.

    Returns:
        An :class:`SBCUniformity` with p-values per dimension.
    """
    from scipy import stats

    r = np.asarray(ranks)
    if r.ndim != 2:
        raise ValueError(f"`ranks` must have shape (n_sims, d); got {r.shape}.")
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
        coverage: Empirical coverage (fraction of true parameters inside the region),
            shape (n_levels,) or (n_levels, d) for marginals.
        error: Binomial standard error sqrt(c (1 - c) / n_sims), same shape as coverage.
        credibility: Per-simulation credibility of the truth (the smallest level whose
            region contains it), shape (n_sims,) or (n_sims, d).
    """

    levels: jax.Array
    coverage: jax.Array
    error: jax.Array
    credibility: jax.Array


def _levels(levels):
    if levels is None:
        return jnp.linspace(0.0, 1.0, 21)
    lv = check_array(levels, "levels", ndim=1)
    if not bool(jnp.all((lv >= 0) & (lv <= 1))):
        raise ValueError(f"`levels` must lie in [0, 1]; got {levels}.")
    return lv


def _coverage(credibility, levels, *, axis_extra: bool):
    n = credibility.shape[0]
    if axis_extra:
        inside = credibility[None, :, :] <= levels[:, None, None]
    else:
        inside = credibility[None, :] <= levels[:, None]
    cov = jnp.mean(inside, axis=1)
    return CoverageResult(levels, cov, jnp.sqrt(cov * (1 - cov) / n), credibility)


def expected_coverage_from_log_probs(log_prob_samples, log_prob_true, *, levels=None):
    """Expected HPD coverage from precomputed log-densities (Hermans et al. 2022).

    The credibility of theta_true is the posterior mass of the highest-density region
    whose boundary passes through theta_true, estimated as the fraction of posterior
    samples with log q(theta_s | x) > log q(theta_true | x). theta_true lies in the
    level-gamma HPD region iff its credibility is <= gamma.

    Args:
        log_prob_samples: log q(theta_s | x_i) of posterior samples, shape (n_sims, L).
        log_prob_true: log q(theta_i | x_i) of the truths, shape (n_sims,).
        levels: Nominal levels in [0, 1], shape (n_levels,); default 0, 0.05, ..., 1.

    Returns:
        A :class:`CoverageResult`.
    """
    lps = check_array(log_prob_samples, "log_prob_samples", ndim=2, finite=False)
    lpt = check_array(
        log_prob_true, "log_prob_true", shape=(lps.shape[0],), finite=False
    )
    cred = jnp.mean(lps > lpt[:, None], axis=1)
    return _coverage(cred, _levels(levels), axis_extra=False)


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
    """
    check_key(key)
    theta, x = _check_pairs(theta, x)
    n = _check_int(n_posterior_samples, "n_posterior_samples")

    def one(k, th, xi):
        s = sample_fn(k, xi, n)
        lps = jax.vmap(log_prob_fn, (0, None))(s, xi)
        return lps, log_prob_fn(th, xi)

    keys = jax.random.split(key, theta.shape[0])
    lps, lpt = jax.vmap(one)(keys, theta, x)
    return expected_coverage_from_log_probs(lps, lpt, levels=levels)


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
    """
    samples = check_array(samples, "samples", ndim=3)
    theta = check_array(theta, "theta", shape=(samples.shape[0], samples.shape[2]))
    q = jnp.mean(samples < theta[:, None, :], axis=1)
    return _coverage(jnp.abs(2 * q - 1), _levels(levels), axis_extra=True)


# ----------------------------------------------------------------------------- TARP


class TARPResult(NamedTuple):
    """TARP expected coverage probability curve.

    Attributes:
        alpha: Credibility levels, shape (n_bins + 1,), from 0 to 1.
        ecp: Expected coverage probability at each alpha (mean over reference sets),
            shape (n_bins + 1,).
        ecp_std: Standard deviation of the ECP over the ``n_refs`` reference sets.
        max_deviation: max |ecp - alpha| (0 for a calibrated posterior, up to sampling
            noise).
    """

    alpha: jax.Array
    ecp: jax.Array
    ecp_std: jax.Array
    max_deviation: jax.Array


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
    """
    check_key(key)
    samples = check_array(samples, "samples", ndim=3)
    theta = check_array(theta, "theta", shape=(samples.shape[0], samples.shape[2]))
    n_refs = _check_int(n_refs, "n_refs")
    n_bins = _check_int(n_bins, "n_bins")
    lo, hi = theta.min(0), theta.max(0)
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
        return jnp.mean(d_s < d_t[:, None], axis=1)

    f = jax.vmap(f_of)(refs)  # (n_refs, n_sims)
    alpha = jnp.linspace(0.0, 1.0, n_bins + 1, dtype=theta.dtype)
    ecp = jnp.mean(f[:, :, None] < alpha[None, None, :], axis=1)  # (n_refs, n_bins + 1)
    ecp = ecp.at[:, -1].set(1.0)
    mean = ecp.mean(0)
    return TARPResult(alpha, mean, ecp.std(0), jnp.max(jnp.abs(mean - alpha)))


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
    """
    check_key(key)
    p = check_array(samples_p, "samples_p", ndim=2)
    q = check_array(samples_q, "samples_q", shape=(None, p.shape[1]))
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
