"""Constraint terms and normalisation modifiers of nuisance parameters.

Every nuisance parameter ``t`` is expressed in units of its own standard deviation, with
a unit Gaussian auxiliary measurement ``a`` (the global observable, nominally 0):
``-log p(a | t) = (t - a)^2 / 2 + log(2 pi) / 2``. What ``t`` does to the expected
counts sets the type of constraint on the physical quantity it moves:

- ``"normal"``: factor ``1 + sigma t``, a Gaussian constraint on the normalisation
  (pyhf's ``histosys`` with linear interpolation, ``lo/hi = 1 -/+ sigma``);
- ``"lognormal"``: factor ``(1 + sigma)^t = exp(t log(1 + sigma))``, a log-normal
  constraint (pyhf's ``normsys`` with exponential interpolation, code 1, and
  ``lo = 1/(1 + sigma)``, ``hi = 1 + sigma``);
- Monte Carlo template statistics (Barlow & Beeston 1993, Comput. Phys. Commun. 77,
  219, in the "lite" form of Conway, arXiv:1103.0354, and pyhf's ``staterror``): one
  factor ``gamma_b = 1 + delta_b t_b`` per bin on the total template, with
  ``delta_b = sqrt(sum_i w_i^2) / sum_i w_i`` the relative MC uncertainty of that bin
  (:func:`mc_relative_uncertainty`).

Parameterising all constraints as unit Gaussians in ``t`` makes toys uniform: the
auxiliary data of a toy are ``a ~ N(t_gen, 1)``.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from .._checks import guard_positive
from .._typing import Array

__all__ = [
    "CONSTRAINTS",
    "constraint_nll",
    "mc_relative_uncertainty",
    "normalisation_factor",
]

CONSTRAINTS = ("normal", "lognormal")
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def normalisation_factor(t, sigma, kind: str) -> Array:
    """Multiplicative factor on a sample's expected counts.

    Args:
        t: Nuisance parameter(s) in units of the constraint width (dimensionless).
        sigma: Relative uncertainty(ies) of the normalisation (>= 0, broadcasts).
        kind: "normal" (``1 + sigma t``) or "lognormal" (``(1 + sigma)^t``).

    Returns:
        The factor, broadcast shape of ``t`` and ``sigma``.
    """
    if kind == "normal":
        return 1.0 + sigma * t
    if kind == "lognormal":
        return jnp.exp(t * jnp.log1p(sigma))
    raise ValueError(f"`kind` must be one of {list(CONSTRAINTS)}; got {kind!r}.")


def constraint_nll(t, aux) -> Array:
    """Negative log-density of unit Gaussian constraints, summed: scalar.

    Args:
        t: Nuisance parameters, shape (P,).
        aux: Auxiliary measurements (global observables), shape (P,).
    """
    d = jnp.atleast_1d(jnp.asarray(t) - jnp.asarray(aux))
    return 0.5 * jnp.sum(d * d) + d.shape[-1] * _HALF_LOG_2PI


def mc_relative_uncertainty(sum_w, sum_w2) -> Array:
    """Relative MC uncertainty per bin, ``sqrt(sum w^2) / sum w`` (Barlow-Beeston-lite).

    Args:
        sum_w: Sum of MC event weights per bin (expected counts), shape (B,), >= 0.
        sum_w2: Sum of squared weights per bin, shape (B,), >= 0.

    Returns:
        ``delta_b``, shape (B,); 0 in bins without MC events (no uncertainty can be
        assigned there: such bins keep their nominal content).
    """
    sum_w = guard_positive(sum_w, "sum_w", allow_zero=True)
    sum_w2 = guard_positive(sum_w2, "sum_w2", allow_zero=True)
    safe = jnp.where(sum_w > 0, sum_w, 1.0)
    return jnp.where(sum_w > 0, jnp.sqrt(sum_w2) / safe, 0.0)
