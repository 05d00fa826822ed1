"""Diagnostic plots: corner plots, coverage, TARP, SBC rank histograms, training curves.

matplotlib is a core dependency, imported inside each function so that ``import jaxdm``
stays light; every function returns the matplotlib ``Figure``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._args import check_int

__all__ = ["corner", "coverage_plot", "sbc_rank_hist", "tarp_plot", "training_curves"]


def _plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        err.add_note("jaxdm.plots needs matplotlib: pip install matplotlib")
        raise
    return plt


def _finite(arr: np.ndarray, name: str) -> np.ndarray:
    """Raise if any entry is NaN or inf, naming the rows: plots never drop data."""
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = bad.reshape(bad.shape[0], -1).any(axis=1) if arr.ndim else bad[None]
        idx = np.flatnonzero(rows)
        shown = ", ".join(str(i) for i in idx[:10]) + (", ..." if idx.size > 10 else "")
        raise ValueError(
            f"`{name}` has NaN or inf entries in {idx.size} of {rows.size} rows: "
            f"rows [{shown}]. Plots never drop rows silently: remove them explicitly "
            f"(e.g. `{name}[np.isfinite({name}).all(axis=-1)]`) and say so."
        )
    return arr


def _as_array(a, name: str) -> np.ndarray:
    try:
        return np.asarray(a, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"`{name}` must be a numeric array; got {type(a).__name__}."
        ) from err


def _as_2d(a, name: str) -> np.ndarray:
    arr = _as_array(a, name)
    if arr.ndim != 2:
        raise ValueError(f"`{name}` must have shape (n, d); got {arr.shape}.")
    if arr.shape[0] == 0:
        raise ValueError(f"`{name}` must have at least one row; got {arr.shape}.")
    return _finite(arr, name)


def _check_labels(labels, k: int, name: str = "labels"):
    if labels is not None and (isinstance(labels, str) or len(labels) != k):
        got = repr(labels) if isinstance(labels, str) else f"length {len(labels)}"
        raise ValueError(f"`{name}` must be a sequence of {k} names; got {got}.")


def corner(
    samples,
    *,
    truth=None,
    labels: Sequence[str] | None = None,
    bins: int = 40,
    limits=None,
    color: str = "C0",
    fig=None,
):
    """Corner plot of posterior samples: 1-D histograms and 2-D pairwise histograms.

    Args:
        samples: Samples, shape (n, d), or a sequence of such arrays (overlaid, one
            colour each). NaN or inf rows raise ValueError naming them (never
            dropped silently); so do NaN entries in the other array arguments.
        truth: Optional true parameter vector, shape (d,), drawn as lines and markers.
        labels: Parameter names, length d.
        bins: Histogram bins per axis.
        limits: Optional (d, 2) array of axis ranges; default the samples' range.
        color: Colour of the first sample set.
        fig: Existing figure to draw into.

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    if isinstance(samples, list | tuple):
        if not samples:
            raise ValueError("`samples` must hold at least one sample set; got none.")
        sets = [_as_2d(s, f"samples[{i}]") for i, s in enumerate(samples)]
    else:
        sets = [_as_2d(samples, "samples")]
    d = sets[0].shape[1]
    for i, s in enumerate(sets):
        if s.shape[1] != d:
            raise ValueError(
                f"`samples[{i}]` must have {d} columns like `samples[0]`; got "
                f"shape {s.shape}."
            )
    _check_labels(labels, d)
    bins = check_int(bins, "bins", minimum=1)
    if truth is not None:
        truth = _as_array(truth, "truth")
        if truth.shape != (d,):
            raise ValueError(f"`truth` must have shape ({d},); got {truth.shape}.")
        _finite(truth, "truth")
    if limits is None:
        allv = np.concatenate(sets)
        lo, hi = allv.min(0), allv.max(0)
        pad = np.where(hi > lo, 0.0, 0.5 * np.maximum(np.abs(lo), 1.0))
        limits = np.stack([lo - pad, hi + pad], axis=1)
    else:
        limits = _as_array(limits, "limits")
        if limits.shape != (d, 2):
            raise ValueError(f"`limits` must have shape ({d}, 2); got {limits.shape}.")
        _finite(limits, "limits")
        if np.any(limits[:, 1] <= limits[:, 0]):
            raise ValueError(f"`limits` must have low < high per row; got {limits}.")
    fig = fig or plt.figure(figsize=(2.2 * d, 2.2 * d))
    axes = fig.subplots(d, d, squeeze=False)
    colors = [color] + [f"C{i}" for i in range(1, len(sets))]
    for i in range(d):
        for j in range(d):
            ax = axes[i, j]
            if j > i:
                ax.axis("off")
                continue
            for s, c in zip(sets, colors, strict=False):
                if i == j:
                    ax.hist(
                        s[:, i],
                        bins=bins,
                        range=limits[i],
                        histtype="step",
                        color=c,
                        density=True,
                    )
                else:
                    h, xe, ye = np.histogram2d(
                        s[:, j], s[:, i], bins=bins, range=[limits[j], limits[i]]
                    )
                    ax.contour(
                        0.5 * (xe[1:] + xe[:-1]),
                        0.5 * (ye[1:] + ye[:-1]),
                        h.T,
                        levels=4,
                        colors=c,
                        linewidths=0.8,
                    )
            if truth is not None:
                ax.axvline(truth[j], color="k", lw=0.8)
                if i != j:
                    ax.axhline(truth[i], color="k", lw=0.8)
                    ax.plot(truth[j], truth[i], "s", color="k", ms=3)
            ax.set_xlim(limits[j])
            if i != j:
                ax.set_ylim(limits[i])
            if labels is not None and i == d - 1:
                ax.set_xlabel(labels[j])
            if labels is not None and j == 0 and i > 0:
                ax.set_ylabel(labels[i])
    return fig


def coverage_plot(levels, coverage, *, error=None, labels=None, ax=None):
    """Empirical vs nominal coverage with the diagonal and optional error band.

    Args:
        levels: Nominal levels, shape (n_levels,).
        coverage: Empirical coverage, shape (n_levels,) or (n_levels, k) for k curves.
        error: Standard errors, same shape as ``coverage`` (shaded +-2 sigma).
        labels: Curve labels, length k.
        ax: Existing axes.

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    lv = _as_array(levels, "levels")
    if lv.ndim != 1:
        raise ValueError(f"`levels` must have shape (n_levels,); got {lv.shape}.")
    _finite(lv, "levels")
    cov = _as_array(coverage, "coverage")
    if cov.ndim not in (1, 2) or cov.shape[0] != lv.shape[0]:
        raise ValueError(
            f"`coverage` must have shape ({lv.shape[0]},) or ({lv.shape[0]}, k), one "
            f"row per level; got {cov.shape}."
        )
    _finite(cov, "coverage")
    cov = cov.reshape(lv.shape[0], -1)
    err = None
    if error is not None:
        err = _as_array(error, "error")
        if err.size != cov.size or err.shape[0] != lv.shape[0]:
            raise ValueError(
                f"`error` must have the shape of `coverage` {np.shape(coverage)}; got "
                f"{err.shape}."
            )
        err = _finite(err, "error").reshape(cov.shape)
    _check_labels(labels, cov.shape[1])
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    for k in range(cov.shape[1]):
        lab = None if labels is None else labels[k]
        (line,) = ax.plot(lv, cov[:, k], label=lab)
        if err is not None:
            ax.fill_between(
                lv,
                cov[:, k] - 2 * err[:, k],
                cov[:, k] + 2 * err[:, k],
                color=line.get_color(),
                alpha=0.2,
            )
    ax.set_xlabel("credibility level")
    ax.set_ylabel("empirical coverage")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    if labels is not None:
        ax.legend()
    return fig


def tarp_plot(alpha, ecp, *, ecp_std=None, ax=None):
    """TARP expected coverage probability against credibility level alpha.

    Args:
        alpha: Levels, shape (n,).
        ecp: Expected coverage probability, shape (n,).
        ecp_std: Optional standard deviation over reference sets (shaded +-1 sigma).
        ax: Existing axes.

    Returns:
        The matplotlib Figure.
    """
    a, e = _as_array(alpha, "alpha"), _as_array(ecp, "ecp")
    if a.ndim != 1 or e.shape != a.shape:
        raise ValueError(
            f"`alpha` and `ecp` must have the same shape (n,); got {a.shape} and "
            f"{e.shape}."
        )
    _finite(a, "alpha")
    _finite(e, "ecp")
    sd = None
    if ecp_std is not None:
        sd = _as_array(ecp_std, "ecp_std")
        if sd.shape != a.shape:
            raise ValueError(f"`ecp_std` must have shape {a.shape}; got {sd.shape}.")
        _finite(sd, "ecp_std")
    fig = coverage_plot(a, e, error=None, ax=ax)
    ax = fig.axes[0] if ax is None else ax
    if sd is not None:
        ax.fill_between(a, e - sd, e + sd, alpha=0.2)
    ax.set_ylabel("expected coverage probability")
    return fig


def sbc_rank_hist(ranks, *, n_posterior_samples=None, n_bins: int = 20, labels=None):
    """SBC rank histograms, one panel per dimension, with the uniform 99% band.

    Args:
        ranks: Integer ranks, shape (n_sims, d).
        n_posterior_samples: L (ranks lie in [0, L]); default max(ranks).
        n_bins: Histogram bins.
        labels: Parameter names, length d.

    Returns:
        The matplotlib Figure.
    """
    from scipy import stats

    plt = _plt()
    r = _as_2d(ranks, "ranks")
    n_sims, d = r.shape
    n_bins = check_int(n_bins, "n_bins", minimum=1)
    _check_labels(labels, d)
    if n_posterior_samples is None:
        L = int(r.max())
    else:
        L = check_int(n_posterior_samples, "n_posterior_samples", minimum=1)
    if r.min() < 0 or r.max() > L:
        raise ValueError(
            f"`ranks` must lie in [0, n_posterior_samples = {L}]; got "
            f"[{r.min()}, {r.max()}]."
        )
    fig, axes = plt.subplots(1, d, figsize=(2.5 * d, 2.2), squeeze=False)
    expected = n_sims / n_bins
    lo, hi = stats.binom.interval(0.99, n_sims, 1 / n_bins)
    for j in range(d):
        ax = axes[0, j]
        ax.axhspan(lo, hi, color="0.85")
        ax.axhline(expected, color="0.5", lw=0.8)
        ax.hist(r[:, j], bins=n_bins, range=(0, L + 1), histtype="step", color="C0")
        ax.set_xlabel("rank" if labels is None else labels[j])
    return fig


def training_curves(history, *, ax=None, log_scale: bool = False):
    """Training and validation loss per epoch.

    Args:
        history: An object with ``train_loss`` and ``val_loss`` arrays (e.g.
            ``jaxdm.train.History``).
        ax: Existing axes.
        log_scale: Use a symmetric-log y axis.

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    if not hasattr(history, "train_loss") or not hasattr(history, "val_loss"):
        raise TypeError(
            "`history` must have `train_loss` and `val_loss` fields; "
            f"got {type(history).__name__}."
        )
    tr = np.asarray(history.train_loss, dtype=float)
    va = np.asarray(history.val_loss, dtype=float)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 3.5))
    ax.plot(np.arange(1, tr.size + 1), tr, label="train")
    if np.isfinite(va).any():
        ax.plot(np.arange(1, va.size + 1), va, label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if log_scale:
        ax.set_yscale("symlog")
    ax.legend()
    return fig


__all__ += ["calibration_bins", "expected_calibration_error", "reliability_diagram"]


def calibration_bins(probs, labels, *, n_bins: int = 10):
    """Per-bin confidence, accuracy and counts of binary predictions.

    Bins of equal width in the predicted probability of class 1 (Guo et al. 2017,
    arXiv:1706.04599, section 2; here for the positive-class probability).

    Args:
        probs: Predicted P(y = 1), shape (N,), in [0, 1].
        labels: True labels in {0, 1}, shape (N,).
        n_bins: Number of equal-width bins on [0, 1].

    Returns:
        ``(mean_prob (B,), frac_pos (B,), counts (B,))``; empty bins give NaN means
        and count 0.
    """
    n_bins = check_int(n_bins, "n_bins", minimum=1)
    p = _finite(_as_array(probs, "probs").ravel(), "probs")
    y = _finite(_as_array(labels, "labels").ravel(), "labels")
    if p.shape != y.shape:
        raise ValueError(
            f"`labels` must have the shape of `probs` {p.shape}; got {y.shape}."
        )
    if np.any((p < 0) | (p > 1)):
        raise ValueError("`probs` must lie in [0, 1].")
    if np.any((y != 0) & (y != 1)):
        raise ValueError("`labels` must be 0 or 1.")
    idx = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(idx, weights=p, minlength=n_bins) / counts
        frac = np.bincount(idx, weights=y, minlength=n_bins) / counts
    return mean_p, frac, counts


def expected_calibration_error(probs, labels, *, n_bins: int = 10) -> float:
    """ECE = sum_b (n_b / N) |frac_pos_b - mean_prob_b| (Naeini et al. 2015, AAAI).

    Args:
        probs: Predicted P(y = 1), shape (N,).
        labels: True labels in {0, 1}, shape (N,).
        n_bins: Number of equal-width bins.

    Returns:
        The expected calibration error, in [0, 1].
    """
    mean_p, frac, counts = calibration_bins(probs, labels, n_bins=n_bins)
    ok = counts > 0
    return float(np.sum(counts[ok] / counts.sum() * np.abs(frac[ok] - mean_p[ok])))


def reliability_diagram(probs, labels, *, n_bins: int = 10, ax=None, label=None):
    """Reliability diagram: observed frequency of class 1 against predicted probability.

    Args:
        probs: Predicted P(y = 1), shape (N,).
        labels: True labels in {0, 1}, shape (N,).
        n_bins: Number of equal-width bins.
        ax: Optional matplotlib axes to draw on.
        label: Legend label; the ECE is appended.

    Returns:
        The matplotlib ``Figure``.
    """
    plt = _plt()
    mean_p, frac, counts = calibration_bins(probs, labels, n_bins=n_bins)
    ece = expected_calibration_error(probs, labels, n_bins=n_bins)
    if ax is None:
        fig, ax = plt.subplots(figsize=(4, 4))
    else:
        fig = ax.figure
    ok = counts > 0
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.plot(mean_p[ok], frac[ok], "o-",
            label=f"{label + ', ' if label else ''}ECE = {ece:.3f}")  # fmt: skip
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed frequency")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    return fig
