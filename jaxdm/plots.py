"""Diagnostic plots: corner plots, coverage, TARP, SBC rank histograms, training curves.

matplotlib is an optional dependency (``pip install jaxdm[plots]``) imported inside each
function; every function returns the matplotlib ``Figure``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["corner", "coverage_plot", "sbc_rank_hist", "tarp_plot", "training_curves"]


def _plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        err.add_note("jaxdm.plots needs matplotlib: pip install jaxdm[plots]")
        raise
    return plt


def _as_2d(a, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"`{name}` must have shape (n, d); got {arr.shape}.")
    return arr


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
            colour each).
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
    sets = samples if isinstance(samples, list | tuple) else [samples]
    sets = [_as_2d(s, "samples") for s in sets]
    d = sets[0].shape[1]
    if any(s.shape[1] != d for s in sets):
        raise ValueError("all sample sets must have the same dimension.")
    if labels is not None and len(labels) != d:
        raise ValueError(f"`labels` must have length {d}; got {len(labels)}.")
    if truth is not None:
        truth = np.asarray(truth, dtype=float)
        if truth.shape != (d,):
            raise ValueError(f"`truth` must have shape ({d},); got {truth.shape}.")
    if limits is None:
        allv = np.concatenate(sets)
        limits = np.stack([allv.min(0), allv.max(0)], axis=1)
    limits = np.asarray(limits, dtype=float)
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
    lv = np.asarray(levels, dtype=float)
    cov = np.asarray(coverage, dtype=float).reshape(lv.shape[0], -1)
    err = None if error is None else np.asarray(error, dtype=float).reshape(cov.shape)
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
    fig = coverage_plot(alpha, ecp, error=None, ax=ax)
    ax = fig.axes[0] if ax is None else ax
    if ecp_std is not None:
        a, e, s = (np.asarray(v, dtype=float) for v in (alpha, ecp, ecp_std))
        ax.fill_between(a, e - s, e + s, alpha=0.2)
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
    L = int(r.max()) if n_posterior_samples is None else int(n_posterior_samples)
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
