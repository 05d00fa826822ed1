"""Gaussian kernel density estimates: Scott, Silverman and cross-validated bandwidths.

``GaussianKDE`` follows scipy.stats.gaussian_kde's definition: the kernel covariance
is the (weighted) data covariance times ``factor^2``, with Scott's rule
``factor = n_eff^(-1/(d+4))`` (Scott 1992, Multivariate Density Estimation, eq. 6.42)
or Silverman's ``(n_eff (d+2)/4)^(-1/(d+4))`` (Silverman 1986, Density Estimation,
eq. 4.15), ``n_eff = (sum w)^2 / sum w^2`` for weighted data (Kish's effective sample
size). ``cv_factor`` maximises the leave-one-out log-likelihood (Duin 1976; Silverman
1986, sec. 3.4.4) over ``log factor`` with optimistix BFGS. All of it is pure JAX:
``log_prob`` is jit/vmap/grad-able in the query point, the data and the bandwidth.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx
from jax.scipy.special import logsumexp

from .._checks import guard_finite, guard_positive
from .._typing import Array

__all__ = [
    "BANDWIDTHS",
    "GaussianKDE",
    "cv_factor",
    "effective_size",
    "gaussian_kde",
    "loo_log_likelihood",
    "scott_factor",
    "silverman_factor",
]

BANDWIDTHS = ("scott", "silverman", "cv")


def effective_size(weights) -> Array:
    """Kish's effective sample size ``(sum w)^2 / sum w^2``."""
    return jnp.sum(weights) ** 2 / jnp.sum(weights**2)


def scott_factor(n_eff, d: int) -> Array:
    """Scott's rule ``n_eff^(-1/(d+4))``."""
    return jnp.asarray(n_eff) ** (-1.0 / (d + 4))


def silverman_factor(n_eff, d: int) -> Array:
    """Silverman's rule ``(n_eff (d+2)/4)^(-1/(d+4))``."""
    return (jnp.asarray(n_eff) * (d + 2) / 4.0) ** (-1.0 / (d + 4))


class GaussianKDE(eqx.Module):
    """Weighted Gaussian KDE with a full kernel covariance.

    Attributes:
        data: Points, shape (n, d) [units of x].
        weights: Normalised weights, shape (n,) (sum 1).
        factor: Bandwidth factor (dimensionless).
        data_cov: Weighted data covariance, shape (d, d) [units of x^2].
    """

    data: Array
    weights: Array
    factor: Array
    data_cov: Array

    @property
    def covariance(self) -> Array:
        """Kernel covariance ``factor^2 * data_cov``, shape (d, d)."""
        return self.factor**2 * self.data_cov

    def _log_kernel(self, x, points):
        d = self.data.shape[1]
        chol = jnp.linalg.cholesky(self.covariance)
        z = jax.scipy.linalg.solve_triangular(chol, (x[None] - points).T, lower=True)
        log_det = 2.0 * jnp.sum(jnp.log(jnp.diag(chol)))
        return -0.5 * jnp.sum(z * z, axis=0) - 0.5 * (d * jnp.log(2 * jnp.pi) + log_det)

    def log_prob(self, x) -> Array:
        """Log density at one point ``x`` of shape (d,) [log 1/units^d]; vmap it."""
        lk = self._log_kernel(jnp.asarray(x, self.data.dtype), self.data)
        return logsumexp(lk, b=self.weights)

    def sample(self, key, n: int) -> Array:
        """``n`` draws, shape (n, d): a data point by weight, plus kernel noise."""
        k1, k2 = jax.random.split(key)
        idx = jax.random.choice(k1, self.data.shape[0], (n,), p=self.weights)
        chol = jnp.linalg.cholesky(self.covariance)
        eps = jax.random.normal(k2, (n, self.data.shape[1]), self.data.dtype)
        return self.data[idx] + eps @ chol.T


def _prepare(data, weights):
    data = jnp.asarray(data)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or data.shape[0] < 2:
        raise ValueError(
            f"`data` must have shape (n, d) or (n,) with n >= 2; got {data.shape}."
        )
    data = guard_finite(data, "data")
    if weights is None:
        weights = jnp.ones(data.shape[0], data.dtype)
    weights = jnp.asarray(weights, data.dtype)
    if weights.shape != (data.shape[0],):
        raise ValueError(
            f"`weights` must have shape ({data.shape[0]},); got {weights.shape}."
        )
    weights = guard_positive(weights, "weights", allow_zero=True)
    weights = weights / jnp.sum(weights)
    mean = weights @ data
    c = data - mean[None]
    cov = (c * weights[:, None]).T @ c / (1.0 - jnp.sum(weights**2))
    return data, weights, cov


def loo_log_likelihood(kde: GaussianKDE) -> Array:
    """Weighted leave-one-out log-likelihood ``sum_j w_j log p_{-j}(x_j)`` / sum w."""
    lk = jax.vmap(lambda x: kde._log_kernel(x, kde.data))(kde.data)  # (n, n)
    n = kde.data.shape[0]
    logw = jnp.where(jnp.eye(n, dtype=bool), -jnp.inf, jnp.log(kde.weights)[None, :])
    lse = logsumexp(lk + logw, axis=1) - jnp.log1p(-kde.weights)
    return jnp.sum(kde.weights * lse)


def cv_factor(data, *, weights=None, start=None) -> Array:
    """Bandwidth factor maximising the leave-one-out log-likelihood (BFGS on log).

    Args:
        data: Points, shape (n, d) or (n,).
        weights: Optional non-negative weights, shape (n,).
        start: Starting factor (default Scott's).
    """
    data, w, cov = _prepare(data, weights)
    if start is None:
        start = scott_factor(effective_size(w), data.shape[1])

    def neg(logf, _):
        return -loo_log_likelihood(GaussianKDE(data, w, jnp.exp(logf), cov))

    sol = optx.minimise(
        neg,
        optx.BFGS(rtol=1e-6, atol=1e-6),
        jnp.log(jnp.asarray(start, data.dtype)),
        max_steps=100,
        throw=False,
    )
    return jnp.exp(sol.value)


def gaussian_kde(data, *, weights=None, bandwidth="scott") -> GaussianKDE:
    """Build a Gaussian KDE.

    Args:
        data: Points, shape (n, d) or (n,) (n >= 2, finite).
        weights: Optional non-negative weights, shape (n,) (not all 0).
        bandwidth: "scott", "silverman", "cv" (leave-one-out likelihood) or a
            positive factor (scalar) multiplying the data covariance's square root.

    Raises:
        ValueError: naming ``data``, ``weights`` or ``bandwidth``.
    """
    data, w, cov = _prepare(data, weights)
    d = data.shape[1]
    if isinstance(bandwidth, str):
        if bandwidth not in BANDWIDTHS:
            raise ValueError(
                f"`bandwidth` must be one of {list(BANDWIDTHS)} or a positive number; "
                f"got {bandwidth!r}."
            )
        if bandwidth == "scott":
            factor = scott_factor(effective_size(w), d)
        elif bandwidth == "silverman":
            factor = silverman_factor(effective_size(w), d)
        else:
            factor = cv_factor(data, weights=w)
    else:
        factor = guard_positive(jnp.asarray(bandwidth, data.dtype), "bandwidth")
    return GaussianKDE(data, w, jnp.asarray(factor, data.dtype), cov)
