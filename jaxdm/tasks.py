"""Benchmark tasks: prior, simulator and reference posterior (sbibm definitions).

The four tasks follow the definitions of the SBI benchmark suite (Lueckmann et al.
2021, "Benchmarking Simulation-Based Inference", AISTATS, sbibm
``sbibm/tasks/<task>/task.py``):

* ``gaussian_linear``: 10-D, prior N(0, 0.1 I), x ~ N(theta, 0.1 I); analytic posterior.
* ``two_moons``: prior U[-1, 1]^2, the crescent simulator; exact posterior by inverting
  the simulator's noise (two branches) plus rejection on the prior box, as in sbibm.
* ``slcp``: prior U[-3, 3]^5, four draws from a 2-D Gaussian with mean (t0, t1), scales
  t2^2, t3^2 and correlation tanh(t4); reference posterior by numpyro NUTS on the
  tractable likelihood (several chains, importance-resampled starts, exact sign
  symmetrisation of t2 and t3).
* ``gaussian_mixture``: prior U[-10, 10]^2, x ~ 0.5 N(theta, I) + 0.5 N(theta, 0.01 I);
  exact posterior: the same mixture centred on x truncated to the prior box (rejection).

sbibm ships ten fixed observations per task as files; jaxdm does not. Use
:func:`observation` to draw ``(theta_true, x_obs)`` from the joint with a key.

All quantities are dimensionless toy variables.

Bad inputs: shapes, types and counts are checked eagerly (ValueError/TypeError naming
the argument). Values use the raise policy of ``jaxdm._checks``: a NaN or inf in
``theta``, ``x`` or ``x_obs`` raises ValueError eagerly and, under ``jit``/``vmap``,
``equinox.EquinoxRuntimeError`` naming the argument when the program runs. The four
simulators are defined for every finite theta, so a theta outside the prior's support
is simulated, not refused; :meth:`Task.log_prob_unnormalized` is -inf there.
"""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from ._checks import check_array, check_key, guard_finite

__all__ = [
    "GaussianLinear",
    "GaussianMixture",
    "SLCP",
    "Task",
    "TwoMoons",
    "gaussian_linear",
    "gaussian_mixture",
    "get_task",
    "observation",
    "slcp",
    "two_moons",
]


def _check_n(n, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        got = "a traced array" if isinstance(n, jax.core.Tracer) else repr(n)
        raise TypeError(
            f"`{name}` must be a Python int (a static count); got {got} of type "
            f"{type(n).__name__}."
        )
    if n < 1:
        raise ValueError(f"`{name}` must be a positive integer; got {n!r}.")
    return int(n)


def _check_vector(v, name: str, size: int, what: str):
    """Shape (size,) floating array; a hint for scalars (indices) and batches."""
    if isinstance(v, int | np.integer) and not isinstance(v, bool) and size != 1:
        hint = (
            " jaxdm ships no numbered observations (as sbibm does): draw one with "
            "jaxdm.tasks.observation(key, task)."
            if what == "one observation"
            else ""
        )
        raise TypeError(
            f"`{name}` must be {what} of shape ({size},); got the int {v!r}.{hint}"
        )
    arr = jnp.asarray(v)
    if arr.ndim == 2 and arr.shape[1] == size:
        raise ValueError(
            f"`{name}` must be {what} of shape ({size},); got a batch of shape "
            f"{arr.shape}: use jax.vmap over the rows."
        )
    return check_array(arr, name, shape=(size,), finite=False)


class Task(eqx.Module):
    """Base class of a benchmark task: prior, simulator, likelihood, reference.

    Subclasses set the static fields and implement ``prior``, ``simulate``,
    ``log_likelihood`` and ``reference_posterior``.

    Attributes:
        name: Task name as in sbibm.
        theta_dim: Number of parameters.
        x_dim: Dimension of one simulated data vector.
        parameter_names: Names of the parameters, length ``theta_dim``.
    """

    name: str = eqx.field(static=True)
    theta_dim: int = eqx.field(static=True)
    x_dim: int = eqx.field(static=True)
    parameter_names: tuple[str, ...] = eqx.field(static=True)

    def prior(self) -> dist.Distribution:
        """Return the prior as a numpyro distribution with event shape (theta_dim,)."""
        raise NotImplementedError

    @property
    def support(self) -> Any:
        """The prior support as a ``jaxdm.flows`` object (``Box`` or ``Real``)."""
        raise NotImplementedError

    def simulate(self, key, theta) -> jax.Array:
        """Simulate one x, shape (x_dim,), for one theta, shape (theta_dim,)."""
        raise NotImplementedError

    def log_likelihood(self, theta, x) -> jax.Array:
        """Exact log p(x | theta) for one theta (theta_dim,) and one x (x_dim,)."""
        raise NotImplementedError

    def reference_posterior(self, key, x_obs, n: int) -> jax.Array:
        """Draw ``n`` reference-posterior samples, shape (n, theta_dim), given x_obs."""
        raise NotImplementedError

    def log_prob_unnormalized(self, theta, x) -> jax.Array:
        """Unnormalised log posterior log p(x | theta) + log p(theta) (one pair).

        -inf outside the prior's support, without numpyro's out-of-support warning
        (numpyro's ``validate_sample`` also gives -inf there, and warns eagerly).
        """
        theta = self._check_theta(theta)
        prior = self.prior()
        inside = prior.support(theta)
        # log_prob at an inside point (the prior mean) avoids numpyro's out-of-support
        # warning; the value is discarded there.
        safe = jnp.where(inside, theta, prior.mean.astype(theta.dtype))
        lp = self.log_likelihood(theta, x) + prior.log_prob(safe)
        return jnp.where(inside, lp, -jnp.inf)

    def _check_theta(self, theta, name: str = "theta"):
        """Shape (theta_dim,), finite (raise policy, also under jit)."""
        theta = _check_vector(theta, name, self.theta_dim, "one parameter vector")
        return guard_finite(theta, name)

    def _check_x(self, x, name: str = "x"):
        """Shape (x_dim,), finite (raise policy, also under jit)."""
        x = _check_vector(x, name, self.x_dim, "one observation")
        return guard_finite(x, name)

    def sample_prior(self, key, n: int) -> jax.Array:
        """Draw ``n`` prior samples, shape (n, theta_dim) (vmapped single draws).

        Args:
            key: Typed PRNG key.
            n: Number of samples.

        Returns:
            Prior samples of shape (n, theta_dim).
        """
        check_key(key)
        n = _check_n(n)
        prior = self.prior()
        return jax.vmap(lambda k: prior.sample(k))(jax.random.split(key, n))

    def sample_joint(self, key, n: int) -> tuple[jax.Array, jax.Array]:
        """Draw ``n`` pairs from the joint p(theta) p(x | theta).

        Args:
            key: Typed PRNG key.
            n: Number of pairs.

        Returns:
            ``(theta, x)`` with shapes (n, theta_dim) and (n, x_dim).
        """
        check_key(key)
        n = _check_n(n)
        k_prior, k_sim = jax.random.split(key)
        theta = self.sample_prior(k_prior, n)
        x = jax.vmap(self.simulate)(jax.random.split(k_sim, n), theta)
        return theta, x


def observation(key, task: Task) -> tuple[jax.Array, jax.Array]:
    """Draw one ``(theta_true, x_obs)`` pair from the task's joint distribution.

    sbibm distributes ten fixed observations per task as CSV files generated from fixed
    seeds; jaxdm does not ship those files, so a test observation is a joint draw that
    is reproducible from ``key``.

    Args:
        key: Typed PRNG key.
        task: A :class:`Task`.

    Returns:
        ``(theta_true, x_obs)`` with shapes (theta_dim,) and (x_dim,).
    """
    if not isinstance(task, Task):
        raise TypeError(
            f"`task` must be a jaxdm.tasks.Task; got {type(task).__name__}."
        )
    theta, x = task.sample_joint(key, 1)
    return theta[0], x[0]


def _box(low, high):
    from .flows import Box  # lazy: flows sits above tasks in the layering

    return Box(low, high)


def _rejection_loop(key, propose, n: int, theta_dim: int, max_rounds: int = 1000):
    """Collect ``n`` accepted draws from ``propose(key) -> (samples, accepted)``."""
    out, total = [], 0
    for _ in range(max_rounds):
        key, sub = jax.random.split(key)
        samples, ok = propose(sub)
        acc = samples[np.asarray(ok)]
        out.append(acc)
        total += acc.shape[0]
        if total >= n:
            return jnp.concatenate(out)[:n]
    raise RuntimeError(
        f"rejection sampler accepted only {total} of {n} requested samples after "
        f"{max_rounds} rounds; the observation is probably far outside the prior "
        "predictive."
    )


class GaussianLinear(Task):
    """Gaussian linear task: theta ~ N(0, prior_var I), x ~ N(theta, noise_var I).

    Attributes:
        prior_var: Prior variance per dimension (sbibm ``prior_scale`` = 0.1).
        noise_var: Simulator noise variance per dimension (sbibm ``simulator_scale``
            = 0.1).
    """

    prior_var: float = eqx.field(static=True, default=0.1)
    noise_var: float = eqx.field(static=True, default=0.1)

    def prior(self) -> dist.Distribution:
        """Return N(0, prior_var I) with event shape (theta_dim,)."""
        loc = jnp.zeros(self.theta_dim)
        return dist.Normal(loc, jnp.full_like(loc, math.sqrt(self.prior_var))).to_event(
            1
        )

    @property
    def support(self):
        """Unbounded support ``jaxdm.flows.Real()``."""
        from .flows import Real

        return Real()

    def simulate(self, key, theta) -> jax.Array:
        """Return x = theta + sqrt(noise_var) * eps, eps ~ N(0, I), shape (x_dim,)."""
        check_key(key)
        theta = self._check_theta(theta)
        return theta + math.sqrt(self.noise_var) * jax.random.normal(
            key, theta.shape, theta.dtype
        )

    def log_likelihood(self, theta, x) -> jax.Array:
        """Return log N(x; theta, noise_var I)."""
        theta, x = self._check_theta(theta), self._check_x(x)
        scale = jnp.full_like(theta, math.sqrt(self.noise_var))
        return dist.Normal(theta, scale).to_event(1).log_prob(x)

    def posterior_moments(self, x_obs) -> tuple[jax.Array, jax.Array]:
        """Closed-form posterior mean (theta_dim,) and per-dimension variance.

        With prior N(0, a I) and noise N(0, b I) the posterior is
        N(a / (a + b) x, a b / (a + b) I); for sbibm's a = b = 0.1: N(x / 2, 0.05 I).
        """
        x_obs = self._check_x(x_obs, "x_obs")
        a, b = self.prior_var, self.noise_var
        var = jnp.full(self.theta_dim, a * b / (a + b), x_obs.dtype)
        return a / (a + b) * x_obs, var

    def posterior_log_prob(self, theta, x_obs) -> jax.Array:
        """Exact normalised log posterior density log p(theta | x_obs)."""
        mean, var = self.posterior_moments(x_obs)
        theta = self._check_theta(theta)
        return dist.Normal(mean, jnp.sqrt(var)).to_event(1).log_prob(theta)

    def reference_posterior(self, key, x_obs, n: int) -> jax.Array:
        """Exact posterior samples, shape (n, theta_dim) (jit- and vmap-compatible)."""
        check_key(key)
        n = _check_n(n)
        mean, var = self.posterior_moments(x_obs)
        eps = jax.random.normal(key, (n, self.theta_dim), mean.dtype)
        return mean[None, :] + jnp.sqrt(var)[None, :] * eps


_TM_A_HALF = math.pi / 2.0
_TM_OFFSET = 0.25
_TM_R_LOC = 0.1
_TM_R_SCALE = 0.01
_TM_C = math.cos(-math.pi / 4.0)
_TM_S = math.sin(-math.pi / 4.0)


class TwoMoons(Task):
    """Two-moons task (sbibm): prior U[-1, 1]^2, crescent-shaped likelihood.

    Simulator: a ~ U(-pi/2, pi/2), r ~ N(0.1, 0.01^2), p = (r cos a + 0.25, r sin a),
    z = R(-pi/4) theta, x = p + (-|z_0|, z_1).
    """

    def prior(self) -> dist.Distribution:
        """Return U[-1, 1]^2."""
        return dist.Uniform(-jnp.ones(2), jnp.ones(2)).to_event(1)

    @property
    def support(self):
        """``jaxdm.flows.Box(-1, 1)`` in each dimension."""
        return _box(-jnp.ones(2), jnp.ones(2))

    @staticmethod
    def _shift(theta):
        z0 = _TM_C * theta[..., 0] - _TM_S * theta[..., 1]
        z1 = _TM_S * theta[..., 0] + _TM_C * theta[..., 1]
        return jnp.stack([-jnp.abs(z0), z1], axis=-1)

    def simulate(self, key, theta) -> jax.Array:
        """Simulate one x, shape (2,), for theta of shape (2,)."""
        check_key(key)
        theta = self._check_theta(theta)
        k_a, k_r = jax.random.split(key)
        a = jax.random.uniform(k_a, (), theta.dtype, -_TM_A_HALF, _TM_A_HALF)
        r = _TM_R_LOC + _TM_R_SCALE * jax.random.normal(k_r, (), theta.dtype)
        p = jnp.stack([r * jnp.cos(a) + _TM_OFFSET, r * jnp.sin(a)])
        return p + self._shift(theta)

    def log_likelihood(self, theta, x) -> jax.Array:
        """Exact log p(x | theta) of the simulator.

        p = x - shift(theta) has polar coordinates (r, a) about (0.25, 0) with density
        N(r; 0.1, 0.01^2) / (pi r) for u = p_0 - 0.25 > 0 and zero otherwise. (sbibm's
        ``_likelihood`` omits the 1 / (pi r) Jacobian; its reference sampler, like this
        class's, samples the exact posterior.)
        """
        theta, x = self._check_theta(theta), self._check_x(x)
        p = x - self._shift(theta)
        u, v = p[0] - _TM_OFFSET, p[1]
        r = jnp.sqrt(u**2 + v**2)
        logn = dist.Normal(_TM_R_LOC, _TM_R_SCALE).log_prob(r)
        ll = logn - jnp.log(math.pi * r)
        return jnp.where(u > 0, ll, -jnp.inf)

    def reference_posterior(self, key, x_obs, n: int, *, batch_size: int = 4096):
        """Exact posterior samples by inverting the simulator (sbibm's method).

        Draw the noise p from the simulator, solve x_obs = p + (-|z_0|, z_1) for z with
        a random sign for z_0 (the map theta -> shift is a 2-to-1 isometry, so this is
        exact under the uniform prior), rotate back and reject draws outside the prior
        box. Runs eagerly (data-dependent number of rounds).

        Args:
            key: Typed PRNG key.
            x_obs: Observation, shape (2,).
            n: Number of samples.
            batch_size: Proposals per rejection round.

        Returns:
            Samples of shape (n, 2).
        """
        check_key(key)
        n = _check_n(n)
        x_obs = self._check_x(x_obs, "x_obs")

        def propose(k):
            k_sim, k_sign = jax.random.split(k)
            p = jax.vmap(self.simulate, (0, None))(
                jax.random.split(k_sim, batch_size), jnp.zeros(2, x_obs.dtype)
            )
            z0 = p[:, 0] - x_obs[0]
            z0 = jnp.where(jax.random.bernoulli(k_sign, 0.5, (batch_size,)), -z0, z0)
            z1 = x_obs[1] - p[:, 1]
            # theta = R(+pi/4) z
            t0 = _TM_C * z0 + _TM_S * z1
            t1 = -_TM_S * z0 + _TM_C * z1
            theta = jnp.stack([t0, t1], axis=-1)
            return theta, jnp.all(jnp.abs(theta) <= 1.0, axis=-1)

        return _rejection_loop(key, propose, n, 2)


class SLCP(Task):
    """Simple likelihood, complex posterior (sbibm ``slcp``, Papamakarios et al. 2019).

    theta ~ U[-3, 3]^5; m = (t0, t1), s1 = t2^2, s2 = t3^2, rho = tanh(t4),
    S = [[s1^2 + eps, rho s1 s2], [rho s1 s2, s2^2 + eps]] with eps = 1e-6 as in sbibm;
    x = four iid draws from N(m, S), flattened to shape (8,).
    """

    num_data: int = eqx.field(static=True, default=4)

    def prior(self) -> dist.Distribution:
        """Return U[-3, 3]^5."""
        return dist.Uniform(-3.0 * jnp.ones(5), 3.0 * jnp.ones(5)).to_event(1)

    @property
    def support(self):
        """``jaxdm.flows.Box(-3, 3)`` in each dimension."""
        return _box(-3.0 * jnp.ones(5), 3.0 * jnp.ones(5))

    @staticmethod
    def _mean_cov(theta):
        m = theta[:2]
        s1, s2 = theta[2] ** 2, theta[3] ** 2
        rho = jnp.tanh(theta[4])
        eps = 1e-6
        cov = jnp.stack(
            [
                jnp.stack([s1**2 + eps, rho * s1 * s2]),
                jnp.stack([rho * s1 * s2, s2**2 + eps]),
            ]
        )
        return m, cov

    def simulate(self, key, theta) -> jax.Array:
        """Simulate x, shape (8,): four 2-D Gaussian draws, flattened."""
        check_key(key)
        theta = self._check_theta(theta)
        m, cov = self._mean_cov(theta)
        chol = jnp.linalg.cholesky(cov)
        eps = jax.random.normal(key, (self.num_data, 2), theta.dtype)
        return (m[None, :] + eps @ chol.T).reshape(-1)

    def log_likelihood(self, theta, x) -> jax.Array:
        """Exact log p(x | theta): sum of four bivariate normal log densities."""
        theta, x = self._check_theta(theta), self._check_x(x)
        return self._log_likelihood(theta, x)

    def _log_likelihood(self, theta, x) -> jax.Array:
        """Unchecked likelihood, for inner loops with inputs finite by construction."""
        m, cov = self._mean_cov(theta)
        pts = x.reshape(self.num_data, 2)
        mvn = dist.MultivariateNormal(m, cov)
        return jax.vmap(mvn.log_prob)(pts).sum()

    def reference_posterior(
        self,
        key,
        x_obs,
        n: int,
        *,
        num_chains: int = 8,
        num_warmup: int = 500,
        n_init_proposals: int = 20_000,
    ) -> jax.Array:
        """Reference posterior samples by NUTS on the exact likelihood.

        The box is mapped to R^5 by theta = 3 tanh(z) (log-Jacobian added). Chains start
        at prior draws importance-resampled by the likelihood (sampling-importance-
        resampling, as sbibm's SIR proposal). The likelihood depends on t2, t3 only
        through their squares and the prior is symmetric, so each draw's signs of t2 and
        t3 are re-drawn uniformly: exact, and it balances the four posterior modes that
        single chains rarely cross between.

        Args:
            key: Typed PRNG key.
            x_obs: Observation, shape (8,).
            n: Number of samples.
            num_chains: Number of NUTS chains (vectorised).
            num_warmup: Warm-up (adaptation) steps per chain.
            n_init_proposals: Prior draws for the importance-resampled starting points.

        Returns:
            Samples of shape (n, 5).
        """
        from numpyro.infer import MCMC, NUTS

        check_key(key)
        n = _check_n(n)
        num_chains = _check_n(num_chains, "num_chains")
        x_obs = self._check_x(x_obs, "x_obs")
        k_init, k_pick, k_mcmc, k_sign = jax.random.split(key, 4)

        def potential(z):
            theta = 3.0 * jnp.tanh(z)
            log_jac = jnp.sum(jnp.log(3.0) + jnp.log1p(-(jnp.tanh(z) ** 2)))
            return -(self._log_likelihood(theta, x_obs) + log_jac)

        cand = self.sample_prior(k_init, n_init_proposals)
        logw = jax.vmap(self._log_likelihood, (0, None))(cand, x_obs)
        logw = jnp.where(jnp.isfinite(logw), logw, -jnp.inf)
        idx = jax.random.categorical(k_pick, logw, shape=(num_chains,))
        theta0 = jnp.clip(cand[idx], -2.999, 2.999)
        z0 = jnp.arctanh(theta0 / 3.0)

        per_chain = -(-n // num_chains)
        mcmc = MCMC(
            NUTS(potential_fn=potential),
            num_warmup=num_warmup,
            num_samples=per_chain,
            num_chains=num_chains,
            chain_method="vectorized",
            progress_bar=False,
        )
        mcmc.run(k_mcmc, init_params=z0)
        theta = 3.0 * jnp.tanh(mcmc.get_samples())[:n]
        signs = jnp.where(jax.random.bernoulli(k_sign, 0.5, (n, 2)), -1.0, 1.0)
        return theta.at[:, 2:4].multiply(signs.astype(theta.dtype))


class GaussianMixture(Task):
    """Gaussian mixture task (sbibm): prior U[-10, 10]^2.

    x ~ 0.5 N(theta, I) + 0.5 N(theta, 0.01 I).
    """

    def prior(self) -> dist.Distribution:
        """Return U[-10, 10]^2."""
        return dist.Uniform(-10.0 * jnp.ones(2), 10.0 * jnp.ones(2)).to_event(1)

    @property
    def support(self):
        """``jaxdm.flows.Box(-10, 10)`` in each dimension."""
        return _box(-10.0 * jnp.ones(2), 10.0 * jnp.ones(2))

    def simulate(self, key, theta) -> jax.Array:
        """Simulate one x, shape (2,): scale 1 or 0.1 with probability 1/2 each."""
        check_key(key)
        theta = self._check_theta(theta)
        k_c, k_n = jax.random.split(key)
        scale = jnp.where(jax.random.bernoulli(k_c, 0.5), 1.0, 0.1).astype(theta.dtype)
        return theta + scale * jax.random.normal(k_n, (2,), theta.dtype)

    def log_likelihood(self, theta, x) -> jax.Array:
        """Return log(0.5 N(x; theta, I) + 0.5 N(x; theta, 0.01 I))."""
        theta, x = self._check_theta(theta), self._check_x(x)
        lp = jnp.stack(
            [
                dist.Normal(theta, jnp.ones_like(theta)).to_event(1).log_prob(x),
                dist.Normal(theta, jnp.full_like(theta, 0.1)).to_event(1).log_prob(x),
            ]
        )
        return jax.nn.logsumexp(lp) + jnp.log(0.5)

    def reference_posterior(self, key, x_obs, n: int, *, batch_size: int = 4096):
        """Exact posterior samples, shape (n, 2).

        The likelihood is symmetric in x - theta and the prior uniform, so the posterior
        is the same mixture centred on x_obs, truncated to the box: sampled by
        rejection.
        """
        check_key(key)
        n = _check_n(n)
        x_obs = self._check_x(x_obs, "x_obs")

        def propose(k):
            k_c, k_n = jax.random.split(k)
            scale = jnp.where(jax.random.bernoulli(k_c, 0.5, (batch_size, 1)), 1.0, 0.1)
            theta = x_obs[None, :] + scale.astype(x_obs.dtype) * jax.random.normal(
                k_n, (batch_size, 2), x_obs.dtype
            )
            return theta, jnp.all(jnp.abs(theta) <= 10.0, axis=-1)

        return _rejection_loop(key, propose, n, 2)


def gaussian_linear(dim: int = 10) -> GaussianLinear:
    """Return the sbibm ``gaussian_linear`` task (10-D by default)."""
    dim = _check_n(dim, "dim")
    names = tuple(f"theta_{i}" for i in range(dim))
    return GaussianLinear("gaussian_linear", dim, dim, names)


def two_moons() -> TwoMoons:
    """Return the sbibm ``two_moons`` task."""
    return TwoMoons("two_moons", 2, 2, ("theta_0", "theta_1"))


def slcp() -> SLCP:
    """Return the sbibm ``slcp`` task (without distractors)."""
    return SLCP("slcp", 5, 8, ("mean_0", "mean_1", "scale_0", "scale_1", "corr"))


def gaussian_mixture() -> GaussianMixture:
    """Return the sbibm ``gaussian_mixture`` task."""
    return GaussianMixture("gaussian_mixture", 2, 2, ("theta_0", "theta_1"))


_TASKS = {
    "gaussian_linear": gaussian_linear,
    "two_moons": two_moons,
    "slcp": slcp,
    "gaussian_mixture": gaussian_mixture,
}


def get_task(name: str) -> Task:
    """Return the task called ``name`` (one of the sbibm names above)."""
    if not isinstance(name, str) or name not in _TASKS:
        raise ValueError(f"`name` must be one of {sorted(_TASKS)}; got {name!r}.")
    return _TASKS[name]()
