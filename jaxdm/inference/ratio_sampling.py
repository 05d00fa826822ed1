r"""Posterior samples from a ratio estimator that do not repeat: resample-move MCMC.

Sampling-importance-resampling (:func:`jaxdm.inference.nre.resample`) repeats prior
draws once the number of samples approaches the weights' effective sample size. Here
each resampled draw instead seeds one Metropolis chain on the target
:math:`\log \pi(\theta) = \log p(\theta) + \log r(\theta_M, x)` and the chains' states
after ``num_steps`` steps are returned: the resample-move scheme of Gilks & Berzuini
(2001, JRSS B 63, 127) and of SMC samplers (Del Moral, Doucet & Jasra 2006, JRSS B 68,
411; Chopin 2002). If the starting points are distributed as the posterior, every
Metropolis step leaves that law invariant, so the returned states are posterior draws;
a continuous proposal separates chains that started from the same prior draw at their
first accepted move, and the steps also correct part of the importance-sampling error
when the ESS is small.

The kernel is random-walk Metropolis with a Gaussian proposal whose covariance is the
weighted covariance of the importance samples, scaled by :math:`2.38^2/d` (Roberts,
Gelman & Gilks 1997) times :math:`4^{-(t \bmod 3)}` at step ``t``: a fixed cycle of
three scales, so that both a broad posterior and a thin or multimodal one (two_moons'
crescents) see a move size that is accepted, with no adaptation that could break
invariance. A proposal outside the box ``[low, high]`` is rejected (the prior's
support is respected exactly; no sample ever leaves it).

Why hand-written rather than numpyro or blackjax: numpyro's MCMC runs one potential
(vectorised chains share the adaptation machinery of NUTS/HMC, with warm-up per
chain), whereas here 10^4 chains per observation each take a few cheap steps, for a
batch of observations in one compiled ``lax.scan``; blackjax is not a dependency. The
kernel is 20 lines and tested against analytic posteriors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from .._checks import check_array, check_key, guard_finite
from .nre import (
    RatioEstimator,
    _check_pos_int,
    _checked_observations,
    _poison_rows,
    _resample_indices,
    _weighted_log_ratios,
)

__all__ = ["MCMCSamples", "sample_mcmc"]


class MCMCSamples(NamedTuple):
    """Result of :func:`sample_mcmc`.

    Attributes:
        samples: Posterior draws, shape (num_samples, theta_dim) or (m, num_samples,
            theta_dim) for a batch of observations; NaN for invalid observations.
        acceptance: Mean Metropolis acceptance rate over chains and steps, () or (m,).
        moved: Fraction of chains that accepted at least one move (the others still
            sit on their resampled prior draw), () or (m,).
        ess: Kish effective sample size of the importance weights that seeded the
            chains, () or (m,).
        valid: Whether each observation was finite (see
            :func:`jaxdm.inference.nre.observation_mask`), () or (m,).
    """

    samples: jax.Array
    acceptance: jax.Array
    moved: jax.Array
    ess: jax.Array
    valid: jax.Array


_SCALES = (1.0, 0.25, 0.0625)


def _run(
    key,
    model,
    theta_prior,
    xs,
    num_samples,
    num_steps,
    marginal,
    low,
    high,
    log_prior,
    chunk_size,
):
    lw, ess = _weighted_log_ratios(model, theta_prior, xs, chunk_size)
    lw = lw[..., marginal]  # (m, n)
    d = model.theta_dim
    boxed = low is not None
    lp_prior = (lambda t: jnp.zeros((), t.dtype)) if log_prior is None else log_prior

    def one(args):
        k, x, lwi = args
        k_init, k_steps = jax.random.split(k)
        feat = model.features(x)

        def log_target(t):
            lt = lp_prior(t) + model.head_logits(t, feat)[marginal]
            if boxed:
                inside = jnp.all((t >= low) & (t <= high))
                lt = jnp.where(inside, lt, -jnp.inf)
            return lt

        w = jax.nn.softmax(lwi)
        mean = w @ theta_prior
        dev = theta_prior - mean[None, :]
        cov = (dev * w[:, None]).T @ dev
        cov = cov + 1e-6 * jnp.mean(jnp.diag(cov)) * jnp.eye(d, dtype=cov.dtype)
        chol = jnp.linalg.cholesky(cov) * (2.38 / jnp.sqrt(d))
        idx = _resample_indices(k_init, lwi, num_samples)
        t0 = theta_prior[idx]
        lt0 = jax.vmap(log_target)(t0)
        scales = jnp.asarray(_SCALES, cov.dtype)

        def step(carry, inp):
            t, lt, acc, moved = carry
            ks, i = inp
            k_prop, k_acc = jax.random.split(ks)
            z = jax.random.normal(k_prop, t.shape, t.dtype)
            prop = t + scales[i % len(_SCALES)] * z @ chol.T
            lp = jax.vmap(log_target)(prop)
            log_u = jnp.log(jax.random.uniform(k_acc, lt.shape, lt.dtype))
            ok = log_u < lp - lt
            t = jnp.where(ok[:, None], prop, t)
            lt = jnp.where(ok, lp, lt)
            return (t, lt, acc + ok.astype(acc.dtype), moved | ok), None

        zeros = jnp.zeros(num_samples, t0.dtype)
        init = (t0, lt0, zeros, jnp.zeros(num_samples, bool))
        inputs = (jax.random.split(k_steps, num_steps), jnp.arange(num_steps))
        (t, _, acc, moved), _ = jax.lax.scan(step, init, inputs)
        return t, jnp.mean(acc) / num_steps, jnp.mean(moved.astype(t.dtype))

    keys = jax.random.split(key, xs.shape[0])
    samples, acc, moved = jax.lax.map(one, (keys, xs, lw))
    return samples, acc, moved, ess[:, marginal]


_run_jit = eqx.filter_jit(_run)


def sample_mcmc(
    key,
    model: RatioEstimator,
    theta_prior,
    x,
    num_samples: int,
    *,
    low=None,
    high=None,
    log_prior: Callable | None = None,
    num_steps: int = 30,
    marginal: int = 0,
    chunk_size: int = 4096,
) -> MCMCSamples:
    """Posterior draws by resample-move: SIR-seeded random-walk Metropolis chains.

    ``theta_prior`` is weighted by the ratio (as
    :func:`jaxdm.inference.nre.importance_samples`), ``num_samples`` draws are
    resampled from it, and each seeds one Metropolis chain on ``log_prior + log r``
    that runs ``num_steps`` steps (see the module docstring for the kernel); the final
    states are returned. Unlike SIR the draws do not repeat (except chains that never
    moved: ``moved`` reports their complement). Everything, for all observations,
    is one compiled program (compiled once per model structure and shapes).

    The target is ``p(theta) r_M(theta_M, x)`` over the full theta; its ``theta_M``
    marginal is head ``marginal``'s posterior. The other entries follow the prior.

    Observations are guarded: eagerly a non-finite row raises ValueError naming the
    rows; under ``jit`` that row's ``samples``, ``acceptance``, ``moved`` and ``ess``
    are NaN and ``valid`` False, the other rows unaffected.

    Args:
        key: Typed PRNG key.
        model: Trained estimator.
        theta_prior: Prior draws (n, theta_dim), all inside the support and finite
            (a non-finite draw raises, under ``jit`` too).
        x: One observation (x_shape) or a batch (m, *x_shape).
        num_samples: Draws (= chains) per observation.
        low: Lower corner of the prior's box support (theta_dim,); proposals outside
            ``[low, high]`` are rejected. Pass the box of a uniform or truncated
            prior: numpyro's ``Uniform.log_prob`` is finite outside its support.
        high: Upper corner (theta_dim,); ``high > low`` is checked (under ``jit`` by
            ``eqx.error_if``).
        log_prior: ``(theta_dim,) -> scalar`` log prior density, up to a constant;
            default uniform (then ``low``/``high`` are required). It is a static
            argument of the compiled program: pass the same function object across
            calls (not a fresh lambda or ``dist.log_prob`` of a new distribution) to
            avoid recompiling.
        num_steps: Metropolis steps per chain (a multiple of 3 cycles all scales).
        marginal: Head index (default 0, the joint head of a default estimator).
        chunk_size: Prior draws evaluated at once in the importance step.

    Returns:
        :class:`MCMCSamples`.
    """
    check_key(key)
    # check_array checks a concrete theta_prior on the host; guard_finite (traced
    # only) would compile its kernels eagerly for every new shape.
    theta_prior = check_array(theta_prior, "theta_prior", shape=(None, model.theta_dim))
    if isinstance(theta_prior, jax.core.Tracer):
        theta_prior = guard_finite(theta_prior, "theta_prior")
    num_samples = _check_pos_int(num_samples, "num_samples")
    num_steps = _check_pos_int(num_steps, "num_steps")
    chunk_size = _check_pos_int(chunk_size, "chunk_size")
    marginal = int(marginal)
    if not 0 <= marginal < model.n_marginals:
        raise ValueError(
            f"`marginal` must lie in [0, {model.n_marginals}); got {marginal}."
        )
    if (low is None) != (high is None):
        raise ValueError("`low` and `high` must be given together.")
    if low is None and log_prior is None:
        raise ValueError(
            "`low`/`high` (the prior's box) or `log_prior` is required: without "
            "either the target is not a posterior."
        )
    if low is not None:
        low = check_array(low, "low", shape=(model.theta_dim,))
        high = check_array(high, "high", shape=(model.theta_dim,))
        low, high = guard_finite(low, "low"), guard_finite(high, "high")
        ordered = jnp.all(high > low)
        msg = "`high` must exceed `low` elementwise"
        if isinstance(ordered, jax.core.Tracer):
            high = eqx.error_if(high, ~ordered, msg + ".")
        elif not bool(ordered):
            raise ValueError(f"{msg}; got low={low}, high={high}.")
    x, valid = _checked_observations(model, x, "x")
    batched = x.ndim == len(model.x_shape) + 1
    xs = x if batched else x[None]
    samples, acc, moved, ess = _run_jit(
        key,
        model,
        theta_prior,
        xs,
        num_samples,
        num_steps,
        marginal,
        low,
        high,
        log_prior,
        chunk_size,
    )
    vb = valid if batched else valid[None]
    out = [_poison_rows(a, vb) for a in (samples, acc, moved, ess)]
    if not batched:
        out = [a[0] for a in out]
    return MCMCSamples(*out, valid)
