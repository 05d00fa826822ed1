r"""Fisher information of a simulator's differentiable expectation, and its summaries.

For binned Poisson data with expected counts :math:`\mu_b(\theta)` the Fisher
information is :math:`F_{ij} = \sum_b \partial_i\mu_b\,\partial_j\mu_b / \mu_b`; for
Gaussian data with variance :math:`\sigma_b^2` (independent of :math:`\theta`, or
evaluated at the fiducial point) it is :math:`\sum_b \partial_i\mu_b\,\partial_j\mu_b
/ \sigma_b^2` (Cowan, *Statistical Data Analysis*, 1998, ch. 6; the Asimov-data
form of Cowan, Cranmer, Gross & Vitells, arXiv:1007.1727, section 3.8). The Jacobian
comes from ``jax.jacfwd`` through the simulators' ``expected_*`` functions
(``xenon.expected_histogram``, ``lensing.expected_image``, ``gamma.expected_counts``),
so every quantity here is differentiable in the design parameters that shape the
expectation. Design criteria: D-optimality (:func:`log_det_fisher`) and the marginal
(profiled) error of one parameter, :math:`\sqrt{(F^{-1})_{ii}}`
(:func:`marginal_error`), the Cramer-Rao bound after profiling the others.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .._checks import guard_finite

__all__ = ["gaussian_fisher", "log_det_fisher", "marginal_error", "poisson_fisher"]


def _jacobian(expected_fn, theta):
    flat, unravel = ravel_pytree(theta)

    def f(v):
        return jnp.ravel(jnp.asarray(expected_fn(unravel(v))))

    mu = f(flat)
    jac = jax.jacfwd(f)(flat)  # (n_bins, n_params)
    return mu, jac


def poisson_fisher(expected_fn: Callable, theta, *, min_count: float = 0.0):
    r"""Fisher information of Poisson counts with mean ``expected_fn(theta)``.

    Args:
        expected_fn: ``expected_fn(theta) -> counts`` (any shape; events per bin).
        theta: Parameters (a pytree; flattened in ``ravel_pytree`` order).
        min_count: Bins with :math:`\mu_b \le` ``min_count`` are left out (they
            carry no information unless their derivative is non-zero, where the
            Fisher information is infinite).

    Returns:
        :math:`F`, shape (n_params, n_params), in 1 / (parameter unit)^2.
    """
    mu, jac = _jacobian(expected_fn, theta)
    mu = guard_finite(mu, "expected_fn(theta)")
    keep = mu > min_count
    inv = jnp.where(keep, 1.0 / jnp.where(keep, mu, 1.0), 0.0)
    return jac.T @ (inv[:, None] * jac)


def gaussian_fisher(expected_fn: Callable, theta, variance):
    r"""Fisher information of Gaussian data with mean ``expected_fn(theta)``.

    Args:
        expected_fn: ``expected_fn(theta) -> mean`` (any shape).
        theta: Parameters (pytree).
        variance: Per-element variance (shape of the mean, or broadcastable), or a
            callable ``variance(mean) -> variance`` (e.g. the lensing shot noise
            ``mean / t + sigma_bkg**2``); treated as fixed (no derivative term).

    Returns:
        :math:`F`, shape (n_params, n_params).
    """
    mu, jac = _jacobian(expected_fn, theta)
    var = (
        variance(mu)
        if callable(variance)
        else jnp.ravel(
            jnp.broadcast_to(jnp.asarray(variance), jnp.shape(expected_fn(theta)))
        )
    )
    var = guard_finite(jnp.asarray(var), "variance")
    return jac.T @ (jac / var[:, None])


def log_det_fisher(fisher):
    """Log det F (D-optimality criterion; larger is better), via ``slogdet``.

    Args:
        fisher: Symmetric positive-definite matrix, shape (n, n).

    Returns:
        Scalar; -inf for a singular F.
    """
    sign, logdet = jnp.linalg.slogdet(jnp.asarray(fisher))
    return jnp.where(sign > 0, logdet, -jnp.inf)


def marginal_error(fisher, index: int):
    r"""Marginal (profiled) 1-sigma error :math:`\sqrt{(F^{-1})_{ii}}` of one parameter.

    Args:
        fisher: Fisher matrix, shape (n, n).
        index: Parameter index (static int) in the flattened order.

    Returns:
        Scalar error, in the parameter's unit.
    """
    f = jnp.asarray(fisher)
    n = f.shape[0]
    if not (isinstance(index, int) and 0 <= index < n):
        raise ValueError(f"`index` must be an int in [0, {n}); got {index!r}.")
    e = jnp.zeros((n,), f.dtype).at[index].set(1.0)
    return jnp.sqrt(jnp.linalg.solve(f, e)[index])
