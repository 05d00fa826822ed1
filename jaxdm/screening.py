"""Screening of training rows: NaN/inf rows and extreme finite outliers.

:func:`screen_rows` flags the rows of a pytree of arrays (shared leading row axis) that
hold a NaN/inf, or an entry more than ``outlier_z`` robust standard deviations from
its element's median. :func:`jaxdm.train.fit` uses it to keep bad rows of a chunk
source out of training and to report, skip or refuse outliers; it is public so that a
user can inspect a bank before training.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import numpy as np

__all__ = ["RowScreen", "screen_rows"]


class RowScreen(NamedTuple):
    """Rows flagged by :func:`screen_rows`.

    Attributes:
        nonfinite: Rows with a NaN/inf entry in any floating leaf, bool (n,).
        outlier: Finite rows with an entry whose robust z-score exceeds the
            threshold, bool (n,).
    """

    nonfinite: np.ndarray
    outlier: np.ndarray


def _leading_size(data, name: str) -> int:
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError(f"`{name}` holds no arrays (empty).")
    sizes = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in leaves}
    if None in sizes or len(sizes) != 1:
        shapes = [np.shape(leaf) for leaf in leaves]
        raise ValueError(
            f"every array in `{name}` must share the same leading (row) axis; "
            f"got shapes {shapes}."
        )
    return sizes.pop()


def _check_finite_rows(data, name: str) -> None:
    bad = None
    for leaf in jax.tree.leaves(data):
        arr = np.asarray(leaf)
        if not np.issubdtype(arr.dtype, np.floating):
            continue
        row_bad = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
        bad = row_bad if bad is None else bad | row_bad
    if bad is not None and bad.any():
        idx = np.flatnonzero(bad)
        raise ValueError(
            f"`{name}` has {idx.size} rows with NaN/inf values (first rows: "
            f"{idx[:5].tolist()}); remove them explicitly (e.g. "
            "jaxdm.inference.drop_nonfinite) rather than training on them."
        )


_MAD_TO_SIGMA = 1.482602218505602  # 1 / Phi^-1(3/4): MAD -> sigma for a Gaussian


def _robust_scale(ref: np.ndarray, med: np.ndarray) -> np.ndarray:
    """Per-column robust scale of ``ref`` (m, d) about ``med`` (d,); inf if none.

    The median absolute deviation, scaled to sigma for a Gaussian. Where it is 0 (a
    column equal to its median in most rows: sparse counts, mask columns), the median
    of the non-zero absolute deviations (the typical size of a deviation when there is
    one); where the column has none, the same over the whole leaf; a leaf constant
    over the reference rows is not screened (inf scale).
    """
    dev = np.abs(ref - med)
    scale = _MAD_TO_SIGMA * np.median(dev, axis=0)
    zero = scale == 0
    if zero.any():
        nz = np.where(dev[:, zero] > 0, dev[:, zero], np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            scale[zero] = np.nanmedian(nz, axis=0)
            glob = np.nanmedian(nz) if np.isfinite(nz).any() else np.inf
        scale[zero & ~np.isfinite(scale)] = glob
    return scale


def screen_rows(
    data, *, outlier_z: float | None = 1e6, max_reference_rows: int = 4096
) -> RowScreen:
    """Flag rows with NaN/inf and rows with extreme finite outliers.

    A row is an *outlier* when any of its floating-point entries lies more than
    ``outlier_z`` robust standard deviations from that element's median:
    ``|x - median| / (1.4826 MAD) > outlier_z``, with the median and the median
    absolute deviation (MAD) of each element estimated on at most
    ``max_reference_rows`` evenly spaced finite rows (see ``_robust_scale`` for
    elements whose MAD is 0). The default threshold, 10^6, is far beyond the tail of
    any well-scaled distribution (a Gaussian's 10^6-sigma probability is zero; a
    Cauchy's is 6e-7 per element): it is meant for overflowed or uninitialised
    numbers. A quantity spanning many decades in linear units (a log-uniform prior
    over 20 decades) can exceed it legitimately: pass such quantities in log space,
    as training wants anyway. Integer leaves are not screened.

    Args:
        data: Pytree of arrays sharing a leading row axis (n, ...).
        outlier_z: Threshold on the robust z-score; ``None`` skips the outlier screen.
        max_reference_rows: Rows used to estimate the medians and MADs.

    Returns:
        A :class:`RowScreen` of boolean row masks, shape (n,).
    """
    n = _leading_size(data, "data")
    flat = []
    for leaf in jax.tree.leaves(data):
        arr = np.asarray(leaf)
        if np.issubdtype(arr.dtype, np.floating):
            flat.append(arr.reshape(n, -1))
    nonfinite = np.zeros(n, bool)
    for arr in flat:
        nonfinite |= ~np.isfinite(arr).all(axis=1)
    outlier = np.zeros(n, bool)
    good = np.flatnonzero(~nonfinite)
    if outlier_z is None or good.size == 0 or not flat:
        return RowScreen(nonfinite, outlier)
    m = min(good.size, int(max_reference_rows))
    ref_rows = good[np.unique(np.linspace(0, good.size - 1, m).astype(np.int64))]
    block = 4096
    for arr in flat:
        ref = arr[ref_rows].astype(np.float64)
        med = np.median(ref, axis=0)
        scale = _robust_scale(ref, med)
        for start in range(0, good.size, block):
            rows = good[start : start + block]
            z = np.abs(arr[rows].astype(np.float64) - med) / scale
            outlier[rows] |= (z > outlier_z).any(axis=1)
    return RowScreen(nonfinite, outlier)


def _check_same_structure(val, ref, val_name: str, ref_name: str) -> None:
    """Raise ValueError naming ``val_name`` unless ``val`` has ``ref``'s layout."""
    if isinstance(val, dict) and isinstance(ref, dict):
        missing = sorted(set(ref) - set(val), key=str)
        extra = sorted(set(val) - set(ref), key=str)
        if missing or extra:
            raise ValueError(
                f"`{val_name}` must have the keys of `{ref_name}`: missing "
                f"{missing}, unexpected {extra}."
            )
    if jax.tree.structure(val) != jax.tree.structure(ref):
        raise ValueError(
            f"`{val_name}` must have the same structure as `{ref_name}`; got "
            f"{jax.tree.structure(val)} and {jax.tree.structure(ref)}."
        )
    flat = jax.tree_util.tree_flatten_with_path(val)[0]
    for (path, v), r in zip(flat, jax.tree.leaves(ref), strict=True):
        if np.shape(v)[1:] != np.shape(r)[1:]:
            where = jax.tree_util.keystr(path)
            raise ValueError(
                f"`{val_name}{where}` has rows of shape {np.shape(v)[1:]}; "
                f"`{ref_name}{where}` has rows of shape {np.shape(r)[1:]}."
            )


def _report_rows(n_bad: int, n_rows: int, what: str, action: str) -> None:
    warnings.warn(
        f"`data` has {n_bad} of {n_rows} rows with {what}; {action}.",
        UserWarning,
        stacklevel=3,
    )


def _outlier_message(n_out: int, n_rows: int, outlier_z) -> str:
    return (
        f"`data` has {n_out} of {n_rows} rows with extreme values (robust |z| > "
        f"{outlier_z:g}, see jaxdm.train.screen_rows); pass outliers='skip' to leave "
        "them out or outliers='warn' to train on them."
    )


def _screen_outliers(data, n_rows: int, outliers: str, outlier_z):
    """In-memory data: report, drop or refuse outlier rows; return (data, count)."""
    if outlier_z is None:
        return data, 0
    out = screen_rows(data, outlier_z=outlier_z).outlier
    n_out = int(out.sum())
    if n_out == 0:
        return data, 0
    if outliers == "raise":
        raise ValueError(_outlier_message(n_out, n_rows, outlier_z))
    if outliers == "skip":
        _report_rows(
            n_out, n_rows, f"robust |z| > {outlier_z:g}",
            "they are left out of training (outliers='skip')",
        )  # fmt: skip
        keep = np.flatnonzero(~out)
        return jax.tree.map(lambda a: np.asarray(a)[keep], data), n_out
    _report_rows(
        n_out, n_rows, f"robust |z| > {outlier_z:g}",
        "training uses them (outliers='skip' leaves them out, 'raise' refuses them)",
    )  # fmt: skip
    return data, n_out
