"""Pseudo-experiments: toy distributions of the statistics, toy CLs, limit coverage.

Toys follow the frequentist convention of RooStats and pyhf: the nuisances of the
generating model are the conditional best fit to the observed data at the generating
``mu`` (``t_hat_hat(mu)``), counts are Poisson and the auxiliary measurements are
re-drawn, ``a ~ N(t_hat_hat, 1)`` (Cowan, Cranmer, Gross & Vitells 2011,
arXiv:1007.1727, sec. 3; Cranmer 2015, arXiv:1503.07622, sec. 6). Every toy's statistic
comes from its own fits, vmapped: ``n_toys`` toys are one compiled call. Toy p-values
count ``q_toy >= q_obs`` and carry binomial Monte Carlo errors.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from .._args import check_choice, check_int, check_real
from .._checks import check_key, guard_positive
from .._typing import Array
from .limits import METHODS, _upper_limit
from .profile import DEFAULT_FITTER, Fitter, fit_conditional
from .test_statistics import STATISTICS, profile_statistic

__all__ = ["Coverage", "ToyTest", "coverage", "sample_toys", "toy_hypotest", "toy_q0"]


def sample_toys(key, model, mu, t, n_toys: int):
    """``n_toys`` pseudo-experiments of ``model`` at ``(mu, t)``.

    Args:
        key: PRNG key.
        model: A binned model (needs ``sample``).
        mu: Generating signal strength (>= 0).
        t: Generating nuisances, shape (P,).
        n_toys: Number of toys (static int >= 1).

    Returns:
        Batched data (every leaf has a leading axis of ``n_toys``).
    """
    check_key(key)
    n_toys = check_int(n_toys, "n_toys", minimum=1)
    mu = guard_positive(jnp.asarray(mu, model.signal.dtype), "mu", allow_zero=True)
    return jax.vmap(lambda k: model.sample(k, mu, t))(jax.random.split(key, n_toys))


def _frac_ge(samples, value):
    n = samples.shape[0]
    p = jnp.mean((samples >= value).astype(jnp.result_type(samples, float)))
    return p, jnp.sqrt(jnp.maximum(p * (1.0 - p), 1.0 / n) / n)


class ToyTest(eqx.Module):
    """Toy-based test of one signal strength.

    Attributes:
        q_obs: Observed statistic.
        q_sb: Statistic of the signal-plus-background toys, shape (n_toys,).
        q_b: Statistic of the background-only toys, shape (n_toys,).
        clsb, clb, cls: Toy p-values ``P(q >= q_obs)`` under s+b and b, and their
            ratio.
        clsb_error, clb_error, cls_error: Binomial MC errors (propagated for CLs).
    """

    q_obs: Array
    q_sb: Array
    q_b: Array
    clsb: Array
    clb: Array
    cls: Array
    clsb_error: Array
    clb_error: Array
    cls_error: Array


def toy_hypotest(
    key,
    mu,
    model,
    data,
    *,
    n_toys: int,
    statistic: str = "qtilde",
    fitter: Fitter = DEFAULT_FITTER,
) -> ToyTest:
    """CLs, CLs+b and CLb of ``mu`` from toys (vmapped), with MC errors.

    Args:
        key: PRNG key.
        mu: Tested signal strength (>= 0).
        model: A binned model.
        data: Observed data.
        n_toys: Toys per hypothesis (s+b and b-only each), static int >= 1.
        statistic: "qtilde" or "q".
        fitter: Minimiser settings.
    """
    check_key(key)
    n_toys = check_int(n_toys, "n_toys", minimum=1)
    check_choice(statistic, "statistic", STATISTICS)
    return _toy_hypotest(key, mu, model, data, n_toys, statistic, fitter)


@eqx.filter_jit
def _toy_hypotest(key, mu, model, data, n_toys, statistic, fitter):
    mu = guard_positive(jnp.asarray(mu, data.aux.dtype), "mu", allow_zero=True)
    k_sb, k_b = jax.random.split(key)
    cond = fit_conditional(model, mu, data, fitter=fitter)
    zero = fit_conditional(model, 0.0, data, fitter=fitter)

    def stat(d):
        return profile_statistic(mu, model, d, statistic=statistic, fitter=fitter)

    q_obs = stat(data)
    toys_sb = jax.vmap(lambda k: model.sample(k, mu, cond.t))(
        jax.random.split(k_sb, n_toys)
    )
    toys_b = jax.vmap(lambda k: model.sample(k, 0.0 * mu, zero.t))(
        jax.random.split(k_b, n_toys)
    )
    q_sb = jax.vmap(stat)(toys_sb)
    q_b = jax.vmap(stat)(toys_b)
    clsb, e_sb = _frac_ge(q_sb, q_obs)
    clb, e_b = _frac_ge(q_b, q_obs)
    cls = clsb / clb
    e_cls = cls * jnp.sqrt((e_sb / jnp.maximum(clsb, 1e-300)) ** 2 + (e_b / clb) ** 2)
    return ToyTest(q_obs, q_sb, q_b, clsb, clb, cls, e_sb, e_b, e_cls)


def toy_q0(key, model, data, *, n_toys: int, fitter: Fitter = DEFAULT_FITTER):
    """Discovery p-value from background-only toys: ``(q0_obs, p0, p0_error, q0_toys)``.

    Args:
        key: PRNG key.
        model: A binned model.
        data: Observed data.
        n_toys: Number of toys (static int >= 1).
        fitter: Minimiser settings.
    """
    check_key(key)
    n_toys = check_int(n_toys, "n_toys", minimum=1)
    return _toy_q0(key, model, data, n_toys, fitter)


@eqx.filter_jit
def _toy_q0(key, model, data, n_toys, fitter):
    from .test_statistics import q0

    zero = fit_conditional(model, 0.0, data, fitter=fitter)
    toys = jax.vmap(lambda k: model.sample(k, jnp.zeros_like(zero.mu), zero.t))(
        jax.random.split(key, n_toys)
    )
    q_toys = jax.vmap(lambda d: q0(model, d, fitter=fitter))(toys)
    q_obs = q0(model, data, fitter=fitter)
    p, e = _frac_ge(q_toys, q_obs)
    return q_obs, p, e, q_toys


class Coverage(eqx.Module):
    """Coverage of upper limits over pseudo-experiments.

    Attributes:
        coverage: Fraction of toys whose observed limit is >= the true ``mu``.
        error: Its binomial MC error.
        limits: The toys' observed limits, shape (n_toys,).
        converged: Per-toy convergence flags, shape (n_toys,).
    """

    coverage: Array
    error: Array
    limits: Array
    converged: Array


def coverage(
    key,
    model,
    mu_true,
    *,
    n_toys: int,
    t_true=None,
    cl: float = 0.95,
    statistic: str = "qtilde",
    method: str = "cls",
    fitter: Fitter = DEFAULT_FITTER,
) -> Coverage:
    """Frequentist coverage of the asymptotic upper limits of :func:`.upper_limit`.

    Args:
        key: PRNG key.
        model: A binned model.
        mu_true: True signal strength of the toys (>= 0).
        n_toys: Number of pseudo-experiments (static int >= 1).
        t_true: True nuisances (default 0, the nominal model).
        cl: Confidence level of the limits.
        statistic: "qtilde" or "q".
        method: "cls" (conservative: coverage >= cl expected) or "clsb".
        fitter: Minimiser settings.
    """
    check_key(key)
    n_toys = check_int(n_toys, "n_toys", minimum=1)
    check_choice(statistic, "statistic", STATISTICS)
    check_choice(method, "method", METHODS)
    cl = check_real(cl, "cl")
    if not 0.0 < cl < 1.0:
        raise ValueError(f"`cl` must lie in (0, 1); got {cl}.")
    t_true = model.nominal_aux() if t_true is None else jnp.asarray(t_true)
    toys = sample_toys(key, model, mu_true, t_true, n_toys)
    lims = jax.vmap(
        lambda d: _upper_limit(model, d, cl, statistic, method, fitter, None, 80)
    )(toys)
    covered = lims.observed >= mu_true
    p, e = _frac_ge(covered.astype(lims.observed.dtype), 1.0)
    return Coverage(p, e, lims.observed, lims.converged)
