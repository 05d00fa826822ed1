"""Information kept by a summary: Fisher information of mu and mutual information.

- ``fisher_information_binned``: for Poisson bins ``nu_b = mu s_b + b_b`` the Fisher
  information of the signal strength is ``I(mu) = sum_b s_b^2 / nu_b`` (Cramér-Rao:
  ``sigma(mu_hat) >= I^-1/2``). Any function of the events (a compression) can only
  lose it: ``I_after <= I_before`` for the same events (data-processing inequality
  of Fisher information, Zamir 1998, IEEE Trans. Inf. Theory 44, 1246), up to binning.
- ``profiled_fisher_information``: the same with nuisances profiled, from the Hessian
  of the Asimov negative log-likelihood, ``1 / [H^-1]_{mu mu}``.
- ``mutual_information``: plug-in (histogram) estimate of ``I(Y; T)`` in nats between
  the class label ``Y`` (signal/background) and a binned statistic ``T``, with the
  Miller-Madow bias correction of each entropy, ``(m - 1) / 2N`` for ``m`` occupied
  cells (Miller 1955; Paninski 2003, Neural Comput. 15, 1191). The same estimator on
  the multi-dimensional histogram before compression and on the 1-D histogram after
  measures what the compression keeps (up to the binning of each).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._checks import guard_positive
from .._typing import Array

__all__ = [
    "fisher_information_binned",
    "mutual_information",
    "profiled_fisher_information",
]


def fisher_information_binned(signal, background, mu=0.0) -> Array:
    """``sum_b s_b^2 / (mu s_b + b_b)`` over all bins (any shape), scalar.

    Bins with zero expectation carry no information and are skipped.

    Args:
        signal: Expected signal counts at ``mu = 1`` (any shape), >= 0.
        background: Expected background counts (same shape), >= 0.
        mu: Signal strength at which to evaluate (>= 0).
    """
    s = guard_positive(jnp.asarray(signal), "signal", allow_zero=True)
    b = guard_positive(jnp.asarray(background, s.dtype), "background", allow_zero=True)
    if s.shape != b.shape:
        raise ValueError(
            f"`background` must have the shape of `signal` {s.shape}; got {b.shape}."
        )
    nu = mu * s + b
    return jnp.sum(jnp.where(nu > 0, s**2 / jnp.where(nu > 0, nu, 1.0), 0.0))


def profiled_fisher_information(model, mu=0.0, t=None) -> Array:
    """Fisher information of ``mu`` with the nuisances profiled (Asimov Hessian).

    Args:
        model: A binned model of :mod:`.likelihood`.
        mu: Signal strength of the Asimov data.
        t: Nuisances of the Asimov data (default nominal).
    """
    t = model.nominal_aux() if t is None else jnp.asarray(t)
    data = model.asimov(jnp.asarray(mu, t.dtype), t)
    y = jnp.concatenate([jnp.atleast_1d(jnp.asarray(mu, t.dtype)), t])
    h = jax.hessian(lambda v: model.nll(v[0], v[1:], data))(y)
    return 1.0 / jnp.linalg.inv(h)[0, 0]


def _entropy_mm(counts):
    n = jnp.sum(counts)
    p = counts / n
    h = -jnp.sum(jnp.where(counts > 0, p * jnp.log(jnp.where(counts > 0, p, 1.0)), 0.0))
    m = jnp.sum(counts > 0)
    return h + (m - 1) / (2.0 * n)


def mutual_information(joint_counts) -> Array:
    """Miller-Madow-corrected plug-in ``I(Y; T)`` [nats] from a contingency table.

    Args:
        joint_counts: Event counts, shape (n_classes, n_bins...) (class label first;
            the remaining axes are the statistic's bins, flattened), >= 0.

    Returns:
        ``H(Y) + H(T) - H(Y, T)`` with each entropy bias-corrected, scalar.
    """
    c = guard_positive(jnp.asarray(joint_counts), "joint_counts", allow_zero=True)
    if c.ndim < 2:
        raise ValueError(
            f"`joint_counts` must have shape (n_classes, n_bins...); got {c.shape}."
        )
    c = c.reshape(c.shape[0], -1)
    return _entropy_mm(jnp.sum(c, 1)) + _entropy_mm(jnp.sum(c, 0)) - _entropy_mm(c)
