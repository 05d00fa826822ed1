r"""Signal injection and counting discovery significance after a score cut.

A search selects the tail of an anomaly score above a threshold calibrated on
background (a background efficiency :math:`\epsilon_B`), then counts. With background
and signal rates :math:`R_B, R_S` [events per unit exposure] and exposure :math:`T`,
the expected counts in the tail are :math:`b = R_B T \epsilon_B` and
:math:`s = R_S T \epsilon_S`. Their discovery significance is the Asimov one of Cowan,
Cranmer, Gross & Vitells (2011, arXiv:1007.1727, Eq. 97),

.. math::  Z_A = \sqrt{2\left((s + b)\ln(1 + s/b) - s\right)},

and an observed count :math:`n` has the Poisson p-value :math:`p = P(N \ge n \mid b)`
and :math:`Z = \Phi^{-1}(1 - p)`. :func:`injected_tail_counts` draws such counts
(the Poisson tail count of a Poisson-thinned mixture is Poisson with mean
:math:`b + s`), for significance curves against exposure and injected rate as in
Herrero-Garcia, Patrick & Scaffidi (arXiv:2110.12248).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array
from jax.scipy.special import gammainc, ndtri

from .._checks import check_key, guard_finite, guard_in_range, guard_positive
from .metrics import _check_scores, signal_efficiency

__all__ = [
    "asimov_significance",
    "discovery_significance",
    "injected_tail_counts",
    "poisson_p_value",
    "poisson_significance",
    "tail_threshold",
]


def asimov_significance(s, b) -> Array:
    """Cowan et al. (2011) Eq. 97 discovery significance of s signal on b background.

    Args:
        s: Expected signal counts (>= 0), any shape.
        b: Expected background counts (> 0), broadcastable with ``s``.

    Returns:
        Z_A, the broadcast shape.
    """
    s = guard_positive(s, "s", allow_zero=True)
    b = guard_positive(b, "b")
    s, b = jnp.broadcast_arrays(s, b)
    z2 = 2.0 * ((s + b) * jnp.log1p(s / b) - s)
    return jnp.sqrt(jnp.maximum(z2, 0.0))


def poisson_p_value(n, b) -> Array:
    """P(N >= n | Poisson mean b): the upper-tail p-value of a count n.

    Uses P(N >= n) = P(n, b), the regularised lower incomplete gamma function, for
    n >= 1 (and 1 for n = 0).
    """
    n = guard_positive(n, "n", allow_zero=True)
    b = guard_positive(b, "b")
    n, b = jnp.broadcast_arrays(n, b)
    n = n.astype(b.dtype)
    return jnp.where(n <= 0, 1.0, gammainc(jnp.maximum(n, 1.0), b))


def poisson_significance(n, b) -> Array:
    """One-sided Z = Phi^-1(1 - p) of a count n over background mean b (0 if p >= 0.5).

    Computed as -ndtri(p), accurate for very small p.
    """
    p = poisson_p_value(n, b)
    return jnp.maximum(-ndtri(p), 0.0)


def tail_threshold(background, eps_b) -> Array:
    """Score threshold passing a fraction ``eps_b`` of ``background`` (quantile).

    Args:
        background: Background scores (n_b,) (a calibration sample).
        eps_b: Background efficiency in [1/n_b, 1).

    Returns:
        The (1 - eps_b) empirical quantile (linear interpolation).
    """
    background, _ = _check_scores(background, background)
    eps_b = guard_in_range(jnp.asarray(eps_b, background.dtype), "eps_b",
                           1.0 / background.shape[0], 1.0, closed="left")  # fmt: skip
    return jnp.quantile(background, 1.0 - eps_b)


def discovery_significance(
    background, signal, *, eps_b, background_rate, signal_rate, exposure
) -> Array:
    """Asimov significance of a score-tail counting search.

    Args:
        background: Calibration background scores (n_b,).
        signal: Signal scores (n_s,).
        eps_b: Background efficiency of the cut (scalar), in [1/n_b, 1).
        background_rate: Background rate before the cut [events / exposure unit].
        signal_rate: Injected signal rate before the cut [events / exposure unit];
            broadcasts with ``exposure``.
        exposure: Exposure(s) [e.g. tonne year], any shape.

    Returns:
        Z_A of s = signal_rate * exposure * eps_S against
        b = background_rate * exposure * eps_b, the broadcast shape.
    """
    eps_s = signal_efficiency(background, signal, eps_b)
    rb = guard_positive(background_rate, "background_rate")
    rs = guard_positive(signal_rate, "signal_rate", allow_zero=True)
    t = guard_positive(exposure, "exposure")
    return asimov_significance(rs * t * eps_s, rb * t * jnp.asarray(eps_b))


def injected_tail_counts(key, *, eps_b, eps_s, background_rate, signal_rate, exposure,
                         n_experiments: int) -> Array:  # fmt: skip
    """Poisson counts in the score tail for ``n_experiments`` pseudo-experiments.

    Args:
        key: Typed PRNG key.
        eps_b: Background efficiency of the cut.
        eps_s: Signal efficiency of the cut.
        background_rate: Background rate [events / exposure unit].
        signal_rate: Injected signal rate [events / exposure unit] (>= 0).
        exposure: Exposure (scalar).
        n_experiments: Number of pseudo-experiments (static int).

    Returns:
        Counts (n_experiments,), Poisson with mean exposure * (R_B eps_B + R_S eps_S).
    """
    check_key(key)
    mean = guard_finite(
        jnp.asarray(exposure) * (jnp.asarray(background_rate) * jnp.asarray(eps_b)
                                 + jnp.asarray(signal_rate) * jnp.asarray(eps_s)),
        "exposure",
    )  # fmt: skip
    mean = guard_positive(mean, "expected tail count", allow_zero=True)
    return jax.random.poisson(key, mean, (int(n_experiments),))
