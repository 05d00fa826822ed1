r"""Soft (differentiable) histograms and cuts with a documented softness.

A hard histogram counts :math:`\mathbb{1}[e_i \le x_k < e_{i+1}]`; its derivative
with respect to the events or the bin edges is zero almost everywhere. Here each
event is smeared by a Gaussian kernel of standard deviation ``softness`` (in the
units of ``x``) before binning, so the count in bin ``i`` is

.. math::

    n_i = \sum_k w_k \left[\Phi\!\left(\frac{e_{i+1} - x_k}{\tau}\right)
          - \Phi\!\left(\frac{e_i - x_k}{\tau}\right)\right],

with :math:`\tau` = ``softness`` and :math:`\Phi` the standard normal CDF. This is
the bin integral of a Gaussian kernel density estimate, as in neos (Simpson &
Heinrich, arXiv:2203.05570, their ``relaxed.hist``), and the per-event sum over bins
telescopes to the probability of landing inside the outer edges. As
:math:`\tau \to 0` it converges to the hard histogram (for events not exactly on an
edge): the error per event falls like :math:`\Phi(-d/\tau)`, ``d`` the distance to the
nearest edge (tested). Choose :math:`\tau` well below the bin width (a quarter of it
or less) so the soft objective tracks the hard one, and well above the spacing at
which the gradient is needed to be non-zero. INFERNO (de Castro & Dorigo,
arXiv:1806.04743) uses a softmax over network outputs instead; :func:`softmax_bins`
gives that form with temperature ``softness``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr

from .._checks import guard_finite, guard_positive

__all__ = ["hard_histogram", "soft_cut", "soft_histogram", "softmax_bins"]


def _edges(edges):
    e = jnp.asarray(edges)
    if e.ndim != 1 or e.shape[0] < 2:
        raise ValueError(
            f"`edges` must be a 1-D array of >= 2 bin edges; got shape {e.shape}."
        )
    return guard_finite(e, "edges")


def soft_histogram(x, edges, softness, weights=None):
    r"""Gaussian-smeared histogram of ``x``, differentiable in ``x``, edges, weights.

    Args:
        x: Event values, shape (n,), in any unit ``[u]``.
        edges: Bin edges ``[u]``, increasing, shape (B + 1,).
        softness: Kernel standard deviation :math:`\tau` ``[u]``, > 0 (scalar or
            traced).
        weights: Optional event weights, shape (n,) (default 1).

    Returns:
        Soft counts per bin, shape (B,).
    """
    x = guard_finite(jnp.asarray(x), "x")
    if x.ndim != 1:
        raise ValueError(f"`x` must be 1-D (n,); got shape {x.shape}.")
    e = _edges(edges)
    tau = guard_positive(jnp.asarray(softness), "softness")
    cdf = ndtr((e[None, :] - x[:, None]) / tau)  # (n, B + 1)
    per_event = cdf[:, 1:] - cdf[:, :-1]
    if weights is None:
        return jnp.sum(per_event, axis=0)
    w = guard_finite(jnp.asarray(weights), "weights")
    if w.shape != x.shape:
        raise ValueError(
            f"`weights` must have the shape of `x` {x.shape}; got {w.shape}."
        )
    return w @ per_event


def hard_histogram(x, edges, weights=None):
    """Ordinary histogram (left-closed bins), the ``softness -> 0`` limit.

    Args:
        x: Event values, shape (n,).
        edges: Increasing bin edges, shape (B + 1,).
        weights: Optional event weights, shape (n,).

    Returns:
        Counts per bin, shape (B,) (no gradient with respect to ``x`` or edges).
    """
    x = jnp.asarray(x)
    e = _edges(edges)
    inside = (x[:, None] >= e[None, :-1]) & (x[:, None] < e[None, 1:])
    w = jnp.ones_like(x) if weights is None else jnp.asarray(weights)
    return w @ inside.astype(x.dtype)


def soft_cut(x, threshold, softness):
    r"""Smooth acceptance of ``x > threshold``: :math:`\Phi((x - t)/\tau)`.

    Args:
        x: Values ``[u]``, any shape.
        threshold: Cut value ``[u]`` (differentiable).
        softness: Kernel standard deviation :math:`\tau` ``[u]``, > 0.

    Returns:
        Acceptance in [0, 1], shape of ``x``.
    """
    tau = guard_positive(jnp.asarray(softness), "softness")
    return ndtr((jnp.asarray(x) - threshold) / tau)


def softmax_bins(logits, softness=1.0, weights=None):
    """INFERNO-style soft histogram: softmax of per-event logits over bins.

    Args:
        logits: Network outputs, shape (n, B).
        softness: Softmax temperature (> 0); -> 0 gives the argmax (hard) assignment.
        weights: Optional event weights, shape (n,).

    Returns:
        Soft counts per bin, shape (B,).
    """
    logits = jnp.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"`logits` must have shape (n, B); got {logits.shape}.")
    tau = guard_positive(jnp.asarray(softness), "softness")
    p = jax.nn.softmax(logits / tau, axis=-1)
    if weights is None:
        return jnp.sum(p, axis=0)
    return jnp.asarray(weights) @ p
