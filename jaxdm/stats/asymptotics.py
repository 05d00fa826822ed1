"""Asymptotic distributions, p-values and CLs of the test statistics (CCGV 2011).

In the asymptotic (Wald) limit ``mu_hat`` is Gaussian with width ``sigma``, estimated
from the Asimov data set of signal strength ``mu' = 0``: ``sigma^2 = mu^2 / q_mu,A``
(Cowan, Cranmer, Gross & Vitells 2011, arXiv:1007.1727, eq. 30-32). With
``t = sqrt(q)`` (and, for ``q~_mu`` above ``q_A``, ``t = (q + q_A) / (2 sqrt(q_A))``,
eq. 66), the statistic is a unit Gaussian centred on 0 under the tested ``mu`` and on
``sqrt(q_A)`` under the background-only hypothesis, so

- ``CLs+b = p_mu = 1 - Phi(t)``, ``CLb = 1 - p_b = Phi(sqrt(q_A) - t)``,
  ``CLs = CLs+b / CLb`` (Read 2002, J. Phys. G 28, 2693; Junk 1999);
- the expected ``CLs`` at ``N`` standard deviations of the background-only
  distribution is ``(1 - Phi(sqrt(q_A) - N)) / Phi(N)`` (eq. 89 generalised to CLs,
  the convention of pyhf's ``expected_pvalues``): ``N = +1`` is the weaker (upper)
  edge of the 68% band.

Distribution functions (``cdf_*``) give ``P(q <= x | mu')`` for a tested ``mu`` when
the truth is ``mu'`` (eq. 52, 57, 65-66), for calibration against toys.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax.scipy.special import ndtr, ndtri

from .._typing import Array

__all__ = [
    "CLs",
    "N_SIGMA",
    "cdf_q0",
    "cdf_q_mu",
    "cdf_qtilde_mu",
    "cls_from_q",
    "expected_cls",
    "p_value_q0",
    "significance",
    "sigma_from_asimov",
]

#: Order of the expected bands everywhere in jaxdm.stats: -2, -1, 0, +1, +2 sigma.
N_SIGMA = (-2.0, -1.0, 0.0, 1.0, 2.0)


class CLs(eqx.Module):
    """CLs and its parts at one hypothesis.

    Attributes:
        cls: ``CLs = CLs+b / CLb``.
        clsb: ``CLs+b`` (the p-value of the signal-plus-background hypothesis).
        clb: ``CLb = 1 - p_b``.
    """

    cls: Array
    clsb: Array
    clb: Array


def _t(q, q_asimov, statistic):
    sq = jnp.sqrt(jnp.maximum(q, 0.0))
    sqa = jnp.sqrt(jnp.maximum(q_asimov, 0.0))
    if statistic == "q":
        return sq, sqa
    safe = jnp.maximum(sqa, jnp.finfo(sqa.dtype).tiny)
    return jnp.where(sq <= sqa, sq, (q + q_asimov) / (2.0 * safe)), sqa


def cls_from_q(q, q_asimov, *, statistic: str = "qtilde") -> CLs:
    """Asymptotic CLs, CLs+b and CLb from the observed and the Asimov statistic.

    Args:
        q: Observed ``q_mu`` or ``q~_mu`` (>= 0).
        q_asimov: The same statistic on the Asimov data of ``mu' = 0`` (``q_mu,A``).
        statistic: "qtilde" or "q".
    """
    t, sqa = _t(q, q_asimov, statistic)
    clsb = 1.0 - ndtr(t)
    clb = ndtr(sqa - t)
    return CLs(clsb / clb, clsb, clb)


def expected_cls(q_asimov, n_sigma=N_SIGMA) -> CLs:
    """Expected CLs at ``n_sigma`` standard deviations of the background-only toys.

    Args:
        q_asimov: ``q_mu,A`` (Asimov data of ``mu' = 0``), scalar.
        n_sigma: Band positions, default ``(-2, -1, 0, 1, 2)``.

    Returns:
        :class:`CLs` with a trailing axis over ``n_sigma``.
    """
    n = jnp.asarray(n_sigma, jnp.result_type(q_asimov, float))
    sqa = jnp.sqrt(jnp.maximum(jnp.asarray(q_asimov), 0.0))[..., None]
    clsb = 1.0 - ndtr(sqa - n)
    clb = ndtr(n) * jnp.ones_like(sqa)
    return CLs(clsb / clb, clsb, clb)


def p_value_q0(q0) -> Array:
    """Asymptotic discovery p-value ``p0 = 1 - Phi(sqrt(q0))`` (CCGV eq. 53)."""
    return 1.0 - ndtr(jnp.sqrt(jnp.maximum(q0, 0.0)))


def significance(p_value) -> Array:
    """One-sided Gaussian significance ``Z = Phi^-1(1 - p)``."""
    return -ndtri(jnp.asarray(p_value))


def sigma_from_asimov(mu, q_asimov) -> Array:
    """Width of ``mu_hat`` from the Asimov statistic, ``sigma = mu / sqrt(q_mu,A)``."""
    return jnp.abs(mu) / jnp.sqrt(q_asimov)


def cdf_q0(x, mu_prime, sigma) -> Array:
    """``P(q0 <= x | mu')`` for ``x >= 0`` (CCGV eq. 52).

    ``Phi(sqrt(x) - mu' / sigma)``.
    """
    return ndtr(jnp.sqrt(jnp.maximum(x, 0.0)) - mu_prime / sigma)


def cdf_q_mu(x, mu, mu_prime, sigma) -> Array:
    """``P(q_mu <= x | mu')`` for ``x >= 0`` (CCGV eq. 57)."""
    return ndtr(jnp.sqrt(jnp.maximum(x, 0.0)) - (mu - mu_prime) / sigma)


def cdf_qtilde_mu(x, mu, mu_prime, sigma) -> Array:
    """``P(q~_mu <= x | mu')`` for ``x >= 0`` (CCGV eq. 65-66)."""
    x = jnp.maximum(x, 0.0)
    qa = (mu / sigma) ** 2
    low = ndtr(jnp.sqrt(x) - (mu - mu_prime) / sigma)
    high = ndtr((x - (mu**2 - 2.0 * mu * mu_prime) / sigma**2) / (2.0 * mu / sigma))
    return jnp.where(x <= qa, low, high)
