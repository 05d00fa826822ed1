r"""Figures of merit of a score: ROC, AUC, efficiencies, SIC, total improvement.

All functions take the scores of background events (n_b,) and of signal events
(n_s,) (larger = more anomalous), are pure ``jnp`` with static shapes and so run under
``jit`` and ``vmap`` over a stack of signals (n_signals, n_s).

- ROC: background efficiency :math:`\epsilon_B(t) = \#\{b \ge t\}/n_b` against
  signal efficiency :math:`\epsilon_S(t)`; AUC is the Mann-Whitney probability
  :math:`P(s > b) + \tfrac12 P(s = b)` (ties count one half, as in scikit-learn).
- :func:`signal_efficiency`: :math:`\epsilon_S` at a background efficiency
  :math:`\epsilon_B`, by linear interpolation of the ROC between the working points
  that pass exactly :math:`k` and :math:`k+1` background events
  (:math:`k \le \epsilon_B n_b < k+1`).
- :func:`significance_improvement`: the SIC :math:`\epsilon_S/\sqrt{\epsilon_B}`
  (the factor by which a cut improves :math:`S/\sqrt{B}`).
- :func:`total_improvement`: the DarkMachines summary (Aarrestad et al. 2021,
  arXiv:2105.14027, Sec. 6; the challenge's ``04-SignificanceImprovement``
  notebook): for each signal the largest SIC over the working points
  :math:`\epsilon_B \in \{10^{-2}, 10^{-3}, 10^{-4}\}` and over the channels it
  appears in is its *total improvement* (TI); a model is summarised by the minimum,
  median and maximum TI over the signals.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax import Array

from .._checks import guard_finite, guard_in_range

__all__ = [
    "DARKMACHINES_EPS_B",
    "TotalImprovement",
    "auc",
    "roc_curve",
    "signal_efficiency",
    "significance_improvement",
    "significance_improvements",
    "total_improvement",
]

DARKMACHINES_EPS_B = (1e-2, 1e-3, 1e-4)
"""Background efficiencies of the DarkMachines figures of merit (arXiv:2105.14027)."""


def _check_scores(background, signal):
    background = jnp.asarray(background)
    signal = jnp.asarray(signal)
    for name, a in (("background", background), ("signal", signal)):
        if a.ndim != 1 or a.shape[0] == 0:
            raise ValueError(
                f"`{name}` must be a non-empty 1-D array of scores (n,) (vmap for "
                f"several signals); got shape {tuple(a.shape)}."
            )
    dt = jnp.result_type(background.dtype, signal.dtype, float)
    background = guard_finite(background.astype(dt), "background")
    signal = guard_finite(signal.astype(dt), "signal")
    return background, signal


def auc(background, signal) -> Array:
    """Area under the ROC curve, P(s > b) + P(s = b)/2 (scalar).

    Args:
        background: Background scores (n_b,).
        signal: Signal scores (n_s,).
    """
    background, signal = _check_scores(background, signal)
    b = jnp.sort(background)
    lo = jnp.searchsorted(b, signal, side="left")
    hi = jnp.searchsorted(b, signal, side="right")
    # lo + hi = 2 #{b < s} + #{b = s}: exact per event; one division at the end.
    num = jnp.sum((lo + hi).astype(b.dtype))
    return num / (2.0 * b.shape[0] * signal.shape[0])


def roc_curve(background, signal) -> tuple[Array, Array, Array]:
    """ROC points at every distinct event score (static size n_b + n_s + 1).

    Args:
        background: Background scores (n_b,).
        signal: Signal scores (n_s,).

    Returns:
        ``(eps_b, eps_s, thresholds)``, each (n_b + n_s + 1,): efficiencies of the
        selection score >= threshold, thresholds descending from +inf (eps 0).
        Tied scores repeat a point.
    """
    background, signal = _check_scores(background, signal)
    t = jnp.sort(jnp.concatenate([background, signal]))[::-1]
    t = jnp.concatenate([jnp.array([jnp.inf], t.dtype), t])
    b, s = jnp.sort(background), jnp.sort(signal)
    dt = t.dtype
    eps_b = 1.0 - jnp.searchsorted(b, t, side="left").astype(dt) / b.shape[0]
    eps_s = 1.0 - jnp.searchsorted(s, t, side="left").astype(dt) / s.shape[0]
    return eps_b, eps_s, t


def signal_efficiency(background, signal, eps_b) -> Array:
    """Signal efficiency at background efficiency ``eps_b`` (ROC interpolation).

    Args:
        background: Background scores (n_b,).
        signal: Signal scores (n_s,).
        eps_b: Background efficiency in [1/n_b, 1) (scalar or array; traced OK).

    Returns:
        eps_S, the shape of ``eps_b``.

    Raises:
        ValueError: (eagerly; ``EquinoxRuntimeError`` under jit) if ``eps_b`` is not
            in [1/n_b, 1): outside (0, 1), or too small to be calibrated by n_b
            background events.
    """
    background, signal = _check_scores(background, signal)
    n_b = background.shape[0]
    eps_b = guard_in_range(
        jnp.asarray(eps_b, background.dtype), "eps_b", 1.0 / n_b, 1.0, closed="left"
    )
    desc = jnp.sort(background)[::-1]
    s = jnp.sort(signal)
    # Passing k background events: the threshold lies just above desc[k].
    k = eps_b * n_b
    k0 = jnp.floor(k).astype(jnp.int32)
    frac = k - k0.astype(k.dtype)

    def eff_at(k_pass):
        thr = jnp.where(k_pass < n_b, desc[jnp.minimum(k_pass, n_b - 1)], -jnp.inf)
        passed = jnp.searchsorted(s, thr, side="right").astype(s.dtype)
        return 1.0 - passed / s.shape[0]

    return (1.0 - frac) * eff_at(k0) + frac * eff_at(k0 + 1)


def significance_improvement(background, signal, eps_b) -> Array:
    """SIC eps_S / sqrt(eps_B) at background efficiency ``eps_b``."""
    return signal_efficiency(background, signal, eps_b) / jnp.sqrt(
        jnp.asarray(eps_b, jnp.result_type(float))
    )


def significance_improvements(background, signal, eps_b=DARKMACHINES_EPS_B) -> Array:
    """SIC at each working point of ``eps_b`` (default 1e-2, 1e-3, 1e-4), (n_wp,)."""
    return significance_improvement(background, signal, jnp.asarray(eps_b))


class TotalImprovement(NamedTuple):
    """The DarkMachines total-improvement summary (arXiv:2105.14027).

    Attributes:
        per_signal: TI of each signal (n_signals,).
        minimum: Smallest TI over the signals.
        median: Median TI over the signals.
        maximum: Largest TI over the signals.
    """

    per_signal: Array
    minimum: Array
    median: Array
    maximum: Array


def total_improvement(sic) -> TotalImprovement:
    """Summarise SICs as in the DarkMachines challenge (module docstring).

    Args:
        sic: Significance improvements of shape (n_signals, n_wp) or
            (n_signals, n_channels, n_wp), e.g. ``jax.vmap(significance_improvements,
            (None, 0))(background, signals)``; NaN marks a signal absent from a
            channel.

    Returns:
        :class:`TotalImprovement`: per signal the maximum over channels and working
        points, then its minimum, median and maximum over signals.
    """
    sic = jnp.asarray(sic)
    if sic.ndim not in (2, 3):
        raise ValueError(
            "`sic` must have shape (n_signals, n_wp) or (n_signals, n_channels, "
            f"n_wp); got {tuple(sic.shape)}."
        )
    ti = jnp.nanmax(sic.reshape(sic.shape[0], -1), axis=1)
    return TotalImprovement(ti, jnp.min(ti), jnp.median(ti), jnp.max(ti))
