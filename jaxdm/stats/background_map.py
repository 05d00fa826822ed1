"""Data-driven background probability maps by kernel regression over the sky.

Calore, Serpico & Zaldivar (2018), arXiv:1803.05508, estimate the probability
distribution of the background counts at a target (a dwarf galaxy) from counts in many
blank-sky regions, weighting each region by a Gaussian kernel in its distance to the
target (a generalised regression network, Specht 1991, IEEE Trans. Neural Netw. 2,
568) with the kernel width optimised on the data's likelihood. Here:

    p(n | x) = sum_i w_i(x) N(n; n_i, h_n^2),
    w_i(x) ∝ v_i exp(-|x - x_i|^2 / 2 h_x^2)

with optional prior weights ``v_i`` (exposure, masks), a position bandwidth ``h_x``
and a count bandwidth ``h_n`` chosen by maximising the leave-one-out predictive
log-likelihood of the regions' own counts (:func:`fit_bandwidths`), which is the
"optimisation of the interpolation weights" of that paper. Positions are flat
coordinates (degrees on a small patch, or unit vectors for the whole sphere, where
``|x - x'|`` is the chord length).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx
from jax.scipy.special import logsumexp

from .._checks import guard_finite, guard_positive
from .._typing import Array

__all__ = ["BackgroundMap", "background_map", "fit_bandwidths"]


class BackgroundMap(eqx.Module):
    """Kernel-regression model of background counts over positions.

    Attributes:
        positions: Blank-region positions, shape (N, D).
        counts: Counts in each region, shape (N,).
        prior_weights: Non-negative region weights, shape (N,).
        h_x: Position bandwidth [units of positions].
        h_n: Count bandwidth [counts].
    """

    positions: Array
    counts: Array
    prior_weights: Array
    h_x: Array
    h_n: Array

    def weights(self, x, *, exclude=None) -> Array:
        """Normalised kernel weights of the regions at position ``x`` (D,), (N,)."""
        d2 = jnp.sum((self.positions - x[None]) ** 2, axis=1)
        logw = -0.5 * d2 / self.h_x**2 + jnp.log(self.prior_weights)
        if exclude is not None:
            logw = jnp.where(jnp.arange(logw.shape[0]) == exclude, -jnp.inf, logw)
        return jax.nn.softmax(logw)

    def log_prob(self, n, x) -> Array:
        """Log density of background counts ``n`` at position ``x``, scalar."""
        w = self.weights(x)
        z = (n - self.counts) / self.h_n
        return logsumexp(-0.5 * z**2, b=w) - jnp.log(self.h_n * jnp.sqrt(2 * jnp.pi))

    def mean(self, x) -> Array:
        """Expected background counts at ``x`` (the Nadaraya-Watson estimate)."""
        return self.weights(x) @ self.counts

    def std(self, x) -> Array:
        """Standard deviation of the background counts at ``x``."""
        w = self.weights(x)
        m = w @ self.counts
        return jnp.sqrt(w @ (self.counts - m) ** 2 + self.h_n**2)


def _loo(positions, counts, prior, log_h):
    m = BackgroundMap(positions, counts, prior, jnp.exp(log_h[0]), jnp.exp(log_h[1]))

    def one(j):
        w = m.weights(positions[j], exclude=j)
        z = (counts[j] - counts) / m.h_n
        return logsumexp(-0.5 * z**2, b=w) - jnp.log(m.h_n * jnp.sqrt(2 * jnp.pi))

    return jnp.mean(jax.vmap(one)(jnp.arange(counts.shape[0])))


def fit_bandwidths(positions, counts, *, prior_weights=None, start=(1.0, 1.0)):
    """``(h_x, h_n)`` maximising the leave-one-out predictive log-likelihood.

    Args:
        positions: Region positions, shape (N, D).
        counts: Region counts, shape (N,).
        prior_weights: Optional region weights, shape (N,).
        start: Starting ``(h_x, h_n)``.
    """
    positions, counts, prior = _check(positions, counts, prior_weights)
    y0 = jnp.log(jnp.asarray(start, counts.dtype))
    sol = optx.minimise(
        lambda y, _: -_loo(positions, counts, prior, y),
        optx.BFGS(rtol=1e-6, atol=1e-6),
        y0,
        max_steps=200,
        throw=False,
    )
    return jnp.exp(sol.value[0]), jnp.exp(sol.value[1])


def _check(positions, counts, prior_weights):
    positions = jnp.asarray(positions)
    if positions.ndim == 1:
        positions = positions[:, None]
    counts = jnp.asarray(counts, positions.dtype)
    if counts.shape != positions.shape[:1] or counts.shape[0] < 2:
        raise ValueError(
            f"`counts` must have shape ({positions.shape[0]},) matching `positions` "
            f"(N >= 2); got {counts.shape}."
        )
    positions = guard_finite(positions, "positions")
    counts = guard_positive(counts, "counts", allow_zero=True)
    if prior_weights is None:
        prior_weights = jnp.ones_like(counts)
    prior_weights = guard_positive(
        jnp.asarray(prior_weights, counts.dtype), "prior_weights", allow_zero=True
    )
    return positions, counts, prior_weights


def background_map(
    positions, counts, *, prior_weights=None, h_x=None, h_n=None
) -> BackgroundMap:
    """Build a :class:`BackgroundMap`; missing bandwidths from :func:`fit_bandwidths`.

    Args:
        positions: Blank-region positions, shape (N, D) (or (N,)).
        counts: Their background counts, shape (N,), >= 0.
        prior_weights: Optional non-negative region weights, shape (N,).
        h_x: Position bandwidth (> 0), or None to fit.
        h_n: Count bandwidth (> 0), or None to fit.
    """
    positions, counts, prior = _check(positions, counts, prior_weights)
    if h_x is None or h_n is None:
        fx, fn = fit_bandwidths(positions, counts, prior_weights=prior)
        h_x = fx if h_x is None else h_x
        h_n = fn if h_n is None else h_n
    h_x = guard_positive(jnp.asarray(h_x, counts.dtype), "h_x")
    h_n = guard_positive(jnp.asarray(h_n, counts.dtype), "h_n")
    return BackgroundMap(positions, counts, prior, h_x, h_n)
