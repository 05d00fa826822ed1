"""Look-elsewhere effect: global discovery significance across masses from toys.

A search over ``M`` signal hypotheses (WIMP masses, say) quotes the largest local
excess, ``max_m q0_m``. Its global p-value is the probability that background alone
gives a largest excess at least as big anywhere: estimated here from background-only
toys, each fitted at every mass (one vmapped call over toys x masses), as
``p_global = P(max_m q0_m(toy) >= max_m q0_m(obs))``. The trials factor is
``p_global / p_local``, with ``p_local = 1 - Phi(sqrt(max q0))`` (asymptotic; Gross &
Vitells 2010, arXiv:1005.1891, whose upcrossing formula extrapolates what these toys
measure directly).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from .._args import check_int
from .._checks import check_key
from .._typing import Array
from .asymptotics import p_value_q0, significance
from .profile import DEFAULT_FITTER, Fitter, fit_conditional
from .test_statistics import q0

__all__ = ["GlobalSignificance", "look_elsewhere"]


class GlobalSignificance(eqx.Module):
    """Local and global discovery significance of a multi-hypothesis search.

    Attributes:
        q0_local: Observed ``q0`` per hypothesis, shape (M,).
        best: Index of the hypothesis with the largest ``q0``.
        p_local, z_local: Asymptotic local p-value and significance at ``best``.
        p_global, p_global_error: Global p-value from toys and its binomial error.
        z_global: Global significance ``Phi^-1(1 - p_global)``.
        trials_factor: ``p_global / p_local``.
        max_q0_toys: Largest ``q0`` over hypotheses in each toy, shape (n_toys,).
    """

    q0_local: Array
    best: Array
    p_local: Array
    z_local: Array
    p_global: Array
    p_global_error: Array
    z_global: Array
    trials_factor: Array
    max_q0_toys: Array


def look_elsewhere(
    key, model, signals, data, *, n_toys: int, fitter: Fitter = DEFAULT_FITTER
) -> GlobalSignificance:
    """Global significance of the largest excess over ``M`` signal templates.

    Args:
        key: PRNG key.
        model: A binned model (its own ``signal`` is replaced by each template).
        signals: Signal templates, shape (M, B) (expected counts at ``mu = 1``).
        data: Observed data.
        n_toys: Background-only toys (static int >= 1); the global p-value resolves
            down to about ``1 / n_toys``.
        fitter: Minimiser settings.
    """
    check_key(key)
    n_toys = check_int(n_toys, "n_toys", minimum=1)
    signals = jnp.asarray(signals, model.signal.dtype)
    if signals.ndim != 2 or signals.shape[1] != model.signal.shape[0]:
        raise ValueError(
            f"`signals` must have shape (M, {model.signal.shape[0]}); "
            f"got {signals.shape}."
        )
    return _look_elsewhere(key, model, signals, data, n_toys, fitter)


@eqx.filter_jit
def _look_elsewhere(key, model, signals, data, n_toys, fitter):
    def q0_all(d):
        def one(s):
            m = eqx.tree_at(lambda x: x.signal, model, s)
            return q0(m, d, fitter=fitter)

        return jax.vmap(one)(signals)

    zero = fit_conditional(model, 0.0, data, fitter=fitter)
    toys = jax.vmap(lambda k: model.sample(k, jnp.zeros_like(zero.mu), zero.t))(
        jax.random.split(key, n_toys)
    )
    q_obs = q0_all(data)
    max_toys = jnp.max(jax.vmap(q0_all)(toys), axis=1)
    best = jnp.argmax(q_obs)
    q_max = q_obs[best]
    p_local = p_value_q0(q_max)
    p_global = jnp.mean(max_toys >= q_max)
    err = jnp.sqrt(jnp.maximum(p_global * (1 - p_global), 1.0 / n_toys) / n_toys)
    return GlobalSignificance(
        q_obs,
        best,
        p_local,
        significance(p_local),
        p_global,
        err,
        significance(p_global),
        p_global / p_local,
        max_toys,
    )
