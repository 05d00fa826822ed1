"""Profile-likelihood-ratio test statistics q0, q_mu and q~_mu (CCGV 2011).

Definitions (Cowan, Cranmer, Gross & Vitells 2011, arXiv:1007.1727; equation numbers of
the EPJC version), with ``lambda(mu) = L(mu, t_hat_hat(mu)) / L(mu_hat, t_hat)``:

- discovery, eq. (12): ``q0 = -2 log lambda(0)`` if ``mu_hat >= 0``, else 0;
- upper limits, eq. (14): ``q_mu = -2 log lambda(mu)`` if ``mu_hat <= mu``, else 0;
- upper limits with ``mu >= 0``, eq. (16): ``q~_mu = -2 log [L(mu, t_hat_hat(mu)) /
  L(0, t_hat_hat(0))]`` if ``mu_hat < 0``, ``q_mu`` if ``0 <= mu_hat <= mu``, else 0.

Every function is pure and acts on one hypothesis and one data set: ``jax.vmap`` over
``mu`` (a scan) or over toy data (a batch) compiles to one program. Minimiser noise can
make ``-2 log lambda`` a few ulps negative; those values are set to 0 (``q >= 0`` by
definition), which is the only clamping done.
"""

from __future__ import annotations

import jax.numpy as jnp

from .._typing import Array
from .profile import DEFAULT_FITTER, FitResult, Fitter, fit_conditional, fit_free

__all__ = ["STATISTICS", "q0", "q_mu", "qtilde_mu", "profile_statistic", "from_fits"]

STATISTICS = ("qtilde", "q")


def from_fits(
    statistic: str, mu, cond: FitResult, free: FitResult, zero: FitResult
) -> Array:
    """``q_mu`` or ``q~_mu`` from fits already done (the limit search reuses them).

    Args:
        statistic: "q" (``q_mu``) or "qtilde" (``q~_mu``).
        mu: Tested signal strength.
        cond: Conditional fit at ``mu``.
        free: Unconditional fit.
        zero: Conditional fit at ``mu = 0`` (used by "qtilde" when ``mu_hat < 0``).
    """
    if statistic == "qtilde":
        ref = jnp.where(free.mu < 0, zero.nll, free.nll)
    elif statistic == "q":
        ref = free.nll
    else:
        raise ValueError(
            f"`statistic` must be one of {list(STATISTICS)}; got {statistic!r}."
        )
    q = 2.0 * (cond.nll - ref)
    return jnp.where(free.mu <= mu, jnp.maximum(q, 0.0), 0.0)


def q0(model, data, *, fitter: Fitter = DEFAULT_FITTER) -> Array:
    """Discovery statistic ``q0`` (CCGV eq. 12), scalar.

    Asymptotically ``Z = sqrt(q0)``.
    """
    free = fit_free(model, data, fitter=fitter)
    zero = fit_conditional(model, 0.0, data, fitter=fitter)
    q = 2.0 * (zero.nll - free.nll)
    return jnp.where(free.mu >= 0, jnp.maximum(q, 0.0), 0.0)


def q_mu(mu, model, data, *, fitter: Fitter = DEFAULT_FITTER) -> Array:
    """One-sided upper-limit statistic ``q_mu`` (CCGV eq. 14), scalar."""
    return profile_statistic(mu, model, data, statistic="q", fitter=fitter)


def qtilde_mu(mu, model, data, *, fitter: Fitter = DEFAULT_FITTER) -> Array:
    """Upper-limit statistic ``q~_mu`` for ``mu >= 0`` (CCGV eq. 16), scalar."""
    return profile_statistic(mu, model, data, statistic="qtilde", fitter=fitter)


def profile_statistic(
    mu, model, data, *, statistic: str = "qtilde", fitter: Fitter = DEFAULT_FITTER
):
    """``q_mu`` ("q") or ``q~_mu`` ("qtilde") at one ``mu`` for one data set."""
    if statistic not in STATISTICS:
        raise ValueError(
            f"`statistic` must be one of {list(STATISTICS)}; got {statistic!r}."
        )
    free = fit_free(model, data, fitter=fitter)
    cond = fit_conditional(model, mu, data, fitter=fitter)
    zero = (
        fit_conditional(model, 0.0, data, fitter=fitter)
        if statistic == "qtilde"
        else free
    )
    return from_fits(statistic, mu, cond, free, zero)
