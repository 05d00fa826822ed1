r"""General search over data-derived signal regions, with toy look-elsewhere correction.

Following the ATLAS general search (arXiv:1807.07447), many signal regions are
scanned and the most significant deviation is judged against background-only
pseudo-experiments. Here the regions are derived from an anomaly score and the event
categories (e.g. detector regions or event classes):

- **Cells**: within each category :math:`c`, the score axis is cut at the background
  quantiles :math:`q_1 < \dots < q_J` of that category (calibrated on a background
  sample), giving :math:`J + 1` disjoint cells per category. The expected background
  in a cell is :math:`N_B` times the calibration fraction in it.
- **Regions**: for each category and each :math:`q_j`, the tail "score above
  :math:`q_j` in category :math:`c`", plus (for several categories) the same tail
  over all categories: :math:`(C + 1) J` nested, overlapping regions, each a union of
  cells.
- **Local p-value** of a region with :math:`n` observed events. The expected
  background comes from :math:`m` of the :math:`M` calibration events falling in the
  region, so it is uncertain when the calibration sample is not much larger than the
  data. By default (``calibration_uncertainty=True``) the p-value is the on/off
  ratio test, conditional on :math:`n + m`: under the background hypothesis
  :math:`n \sim \mathrm{Binomial}(n + m, \rho)` with
  :math:`\rho = N_B / (N_B + M)`, so :math:`p = P(X \ge n) = I_\rho(n, m + 1)`
  (Cousins, Linnemann & Tucker 2008, NIM A 595, 480, "Z_Bi"). With
  ``calibration_uncertainty=False`` the calibration fractions are taken as exact and
  :math:`p = P(N \ge n \mid b)` (Poisson, :math:`b = N_B m / M`), valid only for
  :math:`M \gg N_B`: with :math:`M = N_B` its global p-value is anti-conservative
  (``tests/anomaly/test_search.py``).
- **Global p-value**: background-only toys, run ``vmap``-ed, draw every data cell
  count from its Poisson law (independent cells: the overlaps between regions are
  kept exactly) and, with the calibration uncertainty, a new calibration sample of
  :math:`M` events (multinomial); the cell fractions are the background-only fit to
  data and calibration together (their pooled fractions). :math:`p_{\rm global}` is
  the (Monte Carlo, +1-corrected) fraction of toys whose smallest local p-value is at
  most the observed smallest one. Following arXiv:1807.07447 a region is
  *interesting* when its p-value is below the 5% quantile of the toys' smallest
  p-values (it beats 95% of them).
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.scipy.special import betainc, ndtri

from .._args import check_int
from .._checks import check_key, guard_finite, guard_positive
from .injection import poisson_p_value

__all__ = [
    "SearchRegions",
    "SearchResult",
    "cell_counts",
    "define_regions",
    "general_search",
    "local_p_values",
    "search_cells",
]


class SearchRegions(eqx.Module):
    """Signal regions calibrated on background.

    Attributes:
        thresholds: Score thresholds per category (n_categories, J), ascending.
        cell_fraction: Background fraction per cell (n_cells,), cells ordered
            category-major, (J + 1) score bins each; sums to 1.
        membership: 0/1 matrix (n_regions, n_cells): which cells form a region.
        quantiles: The background quantiles q_j (static).
        n_categories: Number of categories (static).
        n_calibration: Number M of calibration events (static).
    """

    thresholds: Array
    cell_fraction: Array
    membership: Array
    quantiles: tuple[float, ...] = eqx.field(static=True)
    n_categories: int = eqx.field(static=True)
    n_calibration: int = eqx.field(static=True)

    @property
    def region_names(self) -> list[str]:
        """Readable names, one per region (row of ``membership``)."""
        names = [f"category {c}, score > q{q:g}" for c in range(self.n_categories)
                 for q in self.quantiles]  # fmt: skip
        if self.n_categories > 1:
            names += [f"all categories, score > q{q:g}" for q in self.quantiles]
        return names


def _check_flag(value, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"`{name}` must be True or False; got {value!r}.")
    return bool(value)


def _check_categories(categories, n_categories, n, name):
    cat = np.asarray(categories)
    if cat.shape != (n,):
        raise ValueError(f"`{name}` must have shape ({n},), one per event; got "
                         f"{cat.shape}.")  # fmt: skip
    if (
        not np.issubdtype(cat.dtype, np.integer)
        or cat.min() < 0
        or (cat.max() >= n_categories)
    ):
        raise ValueError(
            f"`{name}` must hold integers in [0, {n_categories}); got values "
            f"{np.unique(cat)[:10]}."
        )
    return cat


def define_regions(background_scores, background_categories, *, n_categories: int,
                   quantiles=(0.9, 0.99, 0.999)) -> SearchRegions:  # fmt: skip
    """Calibrate the signal regions on a background sample (module docstring).

    Args:
        background_scores: Background anomaly scores (n,), independent of the data.
        background_categories: Their categories, integers in [0, n_categories).
        n_categories: Number of categories.
        quantiles: Increasing background quantiles in (0, 1) cutting the score axis.

    Returns:
        :class:`SearchRegions`.
    """
    n_categories = check_int(n_categories, "n_categories", minimum=1)
    s = np.asarray(background_scores, np.float64)
    if s.ndim != 1 or s.size == 0 or not np.isfinite(s).all():
        raise ValueError("`background_scores` must be a non-empty finite 1-D array; "
                         f"got shape {s.shape}.")  # fmt: skip
    cat = _check_categories(background_categories, n_categories, s.size,
                            "background_categories")  # fmt: skip
    q = np.asarray(quantiles, np.float64)
    if (
        q.ndim != 1
        or q.size == 0
        or not ((q > 0) & (q < 1)).all()
        or (np.diff(q) <= 0).any()
    ):
        raise ValueError(f"`quantiles` must be increasing values in (0, 1); got {q}.")
    thr = np.empty((n_categories, q.size))
    for c in range(n_categories):
        sc = s[cat == c]
        if sc.size < 1.0 / (1.0 - q[-1]):
            raise ValueError(
                f"category {c} has {sc.size} background events: too few to "
                f"calibrate the {q[-1]} quantile (need >= {int(1 / (1 - q[-1]))})."
            )
        thr[c] = np.quantile(sc, q)
    nb = q.size + 1
    bins = np.array([np.searchsorted(thr[c], v, side="right") for c, v in zip(cat, s,
                     strict=True)])  # fmt: skip
    cells = cat * nb + bins
    frac = np.bincount(cells, minlength=n_categories * nb) / s.size
    rows = []
    for c in range(n_categories):
        for j in range(q.size):
            m = np.zeros(n_categories * nb)
            m[c * nb + j + 1 : (c + 1) * nb] = 1
            rows.append(m)
    if n_categories > 1:
        for j in range(q.size):
            m = np.zeros((n_categories, nb))
            m[:, j + 1 :] = 1
            rows.append(m.ravel())
    dt = jnp.result_type(float)
    return SearchRegions(
        thresholds=jnp.asarray(thr, dt),
        cell_fraction=jnp.asarray(frac, dt),
        membership=jnp.asarray(np.stack(rows), dt),
        quantiles=tuple(float(v) for v in q),
        n_categories=n_categories,
        n_calibration=int(s.size),
    )


def cell_counts(regions: SearchRegions, scores, categories) -> Array:
    """Observed events per cell (n_cells,) of data ``scores`` (n,) and ``categories``.

    Categories are integers in [0, n_categories) (checked eagerly).
    """
    scores = guard_finite(jnp.asarray(scores), "scores")
    if scores.ndim != 1:
        raise ValueError(f"`scores` must be 1-D (n,); got shape {scores.shape}.")
    if not isinstance(categories, jax.core.Tracer):
        _check_categories(categories, regions.n_categories, scores.shape[0],
                          "categories")  # fmt: skip
    cat = jnp.asarray(categories)
    thr = regions.thresholds[cat]  # (n, J)
    bins = jnp.sum(scores[:, None] >= thr, axis=1)
    cells = cat * (len(regions.quantiles) + 1) + bins
    return jnp.bincount(cells, length=regions.cell_fraction.shape[0])


def local_p_values(regions: SearchRegions, counts, n_expected, *,
                   calibration_uncertainty: bool = True) -> Array:  # fmt: skip
    """p-value of every region (n_regions,) (module docstring).

    Args:
        regions: The calibrated regions.
        counts: Observed events per cell (n_cells,).
        n_expected: Expected total number of background events in the data.
        calibration_uncertainty: On/off ratio test with the calibration counts
            (default), or Poisson with the calibration fractions taken as exact.
    """
    calibration_uncertainty = _check_flag(calibration_uncertainty,
                                          "calibration_uncertainty")  # fmt: skip
    n_expected = guard_positive(n_expected, "n_expected")
    calib = regions.n_calibration * regions.cell_fraction
    return _region_p_values(regions, counts, calib, n_expected,
                            calibration_uncertainty)  # fmt: skip


def _region_p_values(regions, counts, calib_counts, n_expected, with_calibration):
    """Region p-values from data and calibration cell counts (module docstring)."""
    dt = regions.membership.dtype
    n = regions.membership @ jnp.asarray(counts, dt)
    m = jnp.round(regions.membership @ jnp.asarray(calib_counts, dt))
    n_cal = regions.n_calibration
    if not with_calibration:
        return poisson_p_value(n, n_expected * m / n_cal)
    rho = n_expected / (n_expected + n_cal)
    # P(X >= n), X ~ Binomial(n + m, rho), is I_rho(n, m + 1); 1 for n = 0
    return jnp.where(n > 0, betainc(jnp.maximum(n, 1.0), m + 1.0, rho), 1.0)


class SearchResult(NamedTuple):
    """Outcome of :func:`general_search`.

    Attributes:
        local_p: Local p-value of every region (n_regions,).
        observed: Observed events per region (n_regions,).
        expected: Expected background per region (n_regions,).
        best_region: Index of the region with the smallest local p-value.
        min_local_p: That p-value.
        global_p: Monte Carlo p-value (1 + #toys with a smaller or equal minimum
            local p-value) / (1 + n_toys) (Davison & Hinkley 1997, Eq. 4.11); at
            least 1 / (1 + n_toys).
        global_z: Phi^-1(1 - global_p) (one-sided).
        threshold_p: 5% quantile of the toys' smallest local p-values.
        interesting: Whether min_local_p < threshold_p (arXiv:1807.07447 rule).
    """

    local_p: Array
    observed: Array
    expected: Array
    best_region: Array
    min_local_p: Array
    global_p: Array
    global_z: Array
    threshold_p: Array
    interesting: Array


def search_cells(key, regions: SearchRegions, counts, *, n_expected,
                 n_toys: int = 10_000,
                 calibration_uncertainty: bool = True) -> SearchResult:  # fmt: skip
    """Scan every region given the observed cell counts; correct for look-elsewhere.

    The count-level core of :func:`general_search`, pure and ``vmap``-able over
    pseudo-experiments (stack ``counts`` and keys).

    Args:
        key: Typed PRNG key for the toys.
        regions: Regions calibrated on background (:func:`define_regions`).
        counts: Observed events per cell (n_cells,) (:func:`cell_counts`).
        n_expected: Expected total background events in the data (> 0).
        n_toys: Number of background-only pseudo-experiments (static int >= 20).
        calibration_uncertainty: Account for the finite calibration sample
            (default; module docstring), or take its fractions as exact (only for a
            calibration sample much larger than the data).

    Returns:
        :class:`SearchResult`.
    """
    n_toys = check_int(n_toys, "n_toys", minimum=20)
    calibration_uncertainty = _check_flag(calibration_uncertainty,
                                          "calibration_uncertainty")  # fmt: skip
    counts = jnp.asarray(counts)
    if counts.shape != regions.cell_fraction.shape:
        raise ValueError(
            f"`counts` must have shape {tuple(regions.cell_fraction.shape)} (one per "
            f"cell); got {tuple(counts.shape)}."
        )
    n_expected = guard_positive(n_expected, "n_expected")
    n_cal = regions.n_calibration
    calib = n_cal * regions.cell_fraction
    p_obs = _region_p_values(regions, counts, calib, n_expected,
                             calibration_uncertainty)  # fmt: skip
    if calibration_uncertainty:
        # background-only fit to data and calibration together: pooled fractions
        pooled = (counts + calib) / (jnp.sum(counts) + n_cal)
    else:
        pooled = regions.cell_fraction

    def toy_min_p(k):
        k_data, k_cal = jax.random.split(k)
        c = jax.random.poisson(k_data, n_expected * pooled)
        cal = (jax.random.multinomial(k_cal, n_cal, pooled)
               if calibration_uncertainty else calib)  # fmt: skip
        return jnp.min(_region_p_values(regions, c, cal, n_expected,
                                        calibration_uncertainty))  # fmt: skip

    p_toys = jax.vmap(toy_min_p)(jax.random.split(key, n_toys))
    p_min = jnp.min(p_obs)
    global_p = (1.0 + jnp.sum(p_toys <= p_min)) / (1.0 + n_toys)
    thr = jnp.quantile(p_toys, 0.05)
    membership = regions.membership
    return SearchResult(
        local_p=p_obs,
        observed=membership @ counts.astype(membership.dtype),
        expected=jnp.asarray(n_expected) * (membership @ regions.cell_fraction),
        best_region=jnp.argmin(p_obs),
        min_local_p=p_min,
        global_p=global_p,
        global_z=-ndtri(global_p),
        threshold_p=thr,
        interesting=p_min < thr,
    )


def general_search(key, regions: SearchRegions, scores, categories, *, n_expected,
                   n_toys: int = 10_000,
                   calibration_uncertainty: bool = True) -> SearchResult:  # fmt: skip
    """Scan every region of ``regions`` in the data and correct for look-elsewhere.

    Args:
        key: Typed PRNG key for the toys.
        regions: Regions calibrated on background (:func:`define_regions`).
        scores: Anomaly scores of the data events (n,).
        categories: Their categories (n,), integers in [0, n_categories).
        n_expected: Expected total background events in the data (> 0).
        n_toys: Number of background-only pseudo-experiments (static int >= 20).
        calibration_uncertainty: As for :func:`search_cells`.

    Returns:
        :class:`SearchResult`.
    """
    check_key(key)
    counts = cell_counts(regions, scores, categories)
    return search_cells(key, regions, counts, n_expected=n_expected, n_toys=n_toys,
                        calibration_uncertainty=calibration_uncertainty)  # fmt: skip
