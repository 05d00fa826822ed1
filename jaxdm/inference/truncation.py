r"""Truncated marginal neural ratio estimation (TMNRE): sequential box truncation.

Each round trains marginal ratio estimators on simulations drawn from the prior
truncated to a box, then shrinks the box: along every parameter that has a 1-D marginal
head, the new bounds are the smallest interval holding all grid points where the
estimated marginal ratio exceeds ``epsilon`` times its maximum,
:math:`\log r(\theta_i, x_o) - \max \log r > \log \epsilon` (Miller et al. 2021,
arXiv 2107.01214, Sec. 3; Anau Montel et al. 2022, arXiv 2205.09126, Sec. 3), widened
by one grid cell and intersected with the previous box, so the boxes are nested by
construction. Rounds stop when the box volume shrinks by less than a factor
``stop_ratio`` or after ``max_rounds``. Simulations from earlier rounds that fall inside
the new box are draws from the prior truncated to it, so they are reused (in memory or
through a :class:`jaxdm.store.SimulationStore`), and every round's box, simulations and
trained estimator are returned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_array, check_key
from .nre import RatioEstimator, train_ratio_estimator

__all__ = ["Box", "Round", "run_tmnre", "truncate_box", "uniform_box_sampler"]


class Box(NamedTuple):
    """An axis-aligned box of parameter space.

    Attributes:
        low: Lower corner, shape (theta_dim,).
        high: Upper corner, shape (theta_dim,).
    """

    low: np.ndarray
    high: np.ndarray

    def volume(self) -> float:
        """Product of the side lengths."""
        return float(np.prod(np.asarray(self.high) - np.asarray(self.low)))

    def contains(self, theta) -> np.ndarray:
        """Whether each theta (..., theta_dim) lies inside (boundaries included)."""
        theta = np.asarray(theta)
        return np.all((theta >= self.low) & (theta <= self.high), axis=-1)


class Round(NamedTuple):
    """One TMNRE round.

    Attributes:
        box: The box simulations of this round were drawn from.
        theta: Training parameters used in this round, (n, theta_dim).
        x: Training observations, (n, *x_shape).
        model: The estimator trained in this round.
        history: Its ``jaxdm.train.History``.
        new_box: The box after truncation with this round's estimator.
    """

    box: Box
    theta: np.ndarray
    x: np.ndarray
    model: RatioEstimator
    history: Any
    new_box: Box


def uniform_box_sampler(key, n: int, low, high) -> jax.Array:
    """Draw ``n`` points uniformly in ``[low, high]`` (a truncated uniform prior).

    Returns:
        Shape (n, theta_dim).
    """
    low = jnp.asarray(low, jnp.float32)
    high = jnp.asarray(high, jnp.float32)
    return jax.random.uniform(key, (int(n), low.shape[0]), minval=low, maxval=high)


def truncate_box(
    model: RatioEstimator, x_obs, box: Box, *, epsilon: float = 1e-6, n_grid: int = 512
) -> Box:
    """Shrink ``box`` to where each 1-D marginal ratio exceeds epsilon times its max.

    Args:
        model: Trained estimator; its 1-D heads define the truncation.
        x_obs: The observation, shape (x_shape); must be finite (ValueError naming
            ``x_obs`` otherwise).
        box: Current box.
        epsilon: Relative threshold in (0, 1).
        n_grid: Grid points per parameter.

    Returns:
        The new box, inside ``box``; parameters without a 1-D head keep their bounds.
    """
    if not 0 < epsilon < 1:
        raise ValueError(f"`epsilon` must lie in (0, 1); got {epsilon}.")
    x_obs = _check_x_obs(model, x_obs)
    low = np.asarray(box.low, np.float64).copy()
    high = np.asarray(box.high, np.float64).copy()
    new_low, new_high = low.copy(), high.copy()
    feat = model.features(jnp.asarray(x_obs))
    centre = jnp.asarray((low + high) / 2, feat.dtype)
    for h, m in enumerate(model.marginals):
        if len(m) != 1:
            continue
        i = m[0]
        grid = np.linspace(low[i], high[i], n_grid)
        th = (
            jnp.broadcast_to(centre, (n_grid, model.theta_dim))
            .at[:, i]
            .set(jnp.asarray(grid, feat.dtype))
        )
        lr = np.asarray(jax.vmap(lambda t, h=h: model.head_logits(t, feat)[h])(th))
        keep = np.nonzero(lr - lr.max() > np.log(epsilon))[0]
        step = grid[1] - grid[0]
        new_low[i] = max(low[i], grid[keep.min()] - step)
        new_high[i] = min(high[i], grid[keep.max()] + step)
    return Box(new_low, new_high)


def _check_x_obs(model: RatioEstimator, x_obs):
    """One finite observation of the model's shape; errors name ``x_obs``."""
    x_obs = check_array(x_obs, "x_obs", finite=False)
    if x_obs.shape != model.x_shape:
        raise ValueError(f"`x_obs` must have shape {model.x_shape}; got {x_obs.shape}.")
    return _check_x_obs_finite(x_obs)


def _check_x_obs_finite(x_obs):
    if not isinstance(x_obs, jax.core.Tracer):
        bad = int(np.size(x_obs) - np.count_nonzero(np.isfinite(np.asarray(x_obs))))
        if bad:
            raise ValueError(
                f"`x_obs` has {bad} non-finite entries (NaN or inf) of "
                f"{np.size(x_obs)}; TMNRE truncates around one finite observation."
            )
    return x_obs


def run_tmnre(
    key,
    simulate: Callable,
    x_obs,
    box: Box,
    make_model: Callable[[Any], RatioEstimator],
    *,
    sample_theta: Callable = uniform_box_sampler,
    n_sims: int = 2000,
    max_rounds: int = 5,
    epsilon: float = 1e-6,
    stop_ratio: float = 0.9,
    store=None,
    simulate_batch: int = 1024,
    train_kwargs: dict | None = None,
) -> list[Round]:
    """Run TMNRE rounds until the box stops shrinking.

    Args:
        key: Typed PRNG key.
        simulate: ``simulate(key, theta) -> x`` for one theta (vmapped, jitted).
        x_obs: The observation to truncate around (a non-finite entry raises
            ValueError naming ``x_obs`` before any simulation).
        box: Initial box (the prior's support or a box covering its bulk).
        make_model: ``make_model(key) -> RatioEstimator`` with 1-D heads; a fresh
            estimator is trained each round.
        sample_theta: ``sample_theta(key, n, low, high)``: draws from the prior
            truncated to the box (default uniform).
        n_sims: Training simulations per round (reused ones included).
        max_rounds: Maximum rounds.
        epsilon: Truncation threshold (see :func:`truncate_box`).
        stop_ratio: Stop when new volume / old volume exceeds this.
        store: Optional writable ``jaxdm.store.SimulationStore``; simulations are then
            appended to it (resumable) and reused across rounds from it.
        simulate_batch: Simulations per vmapped call / store commit.
        train_kwargs: Keyword arguments of :func:`train_ratio_estimator`.

    Returns:
        The list of :class:`Round`; ``rounds[-1].new_box`` is the final box.
    """
    from ..store import simulate_into

    check_key(key)
    x_obs = _check_x_obs_finite(check_array(x_obs, "x_obs", finite=False))
    if max_rounds < 1:
        raise ValueError(f"`max_rounds` must be >= 1; got {max_rounds}.")
    if not 0 < stop_ratio <= 1:
        raise ValueError(f"`stop_ratio` must lie in (0, 1]; got {stop_ratio}.")
    train_kwargs = dict(train_kwargs or {})
    box = Box(np.asarray(box.low, np.float64), np.asarray(box.high, np.float64))
    sim = jax.jit(jax.vmap(simulate))
    bank_theta = np.zeros((0, box.low.shape[0]), np.float32)
    bank_x = None
    rounds: list[Round] = []
    for r in range(max_rounds):
        k_sim, k_model, k_train = jax.random.split(jax.random.fold_in(key, r), 3)
        if store is not None:
            rows = simulate_into(
                k_sim,
                store,
                simulate,
                sample_theta,
                n_sims,
                low=box.low,
                high=box.high,
                batch_size=simulate_batch,
            )
            data = store.read(rows)
            theta, x = data["theta"], data["x"]
        else:
            inside = (
                box.contains(bank_theta) if bank_x is not None else np.zeros(0, bool)
            )
            theta = bank_theta[inside]
            x = bank_x[inside] if bank_x is not None else None
            n_new = max(0, n_sims - theta.shape[0])
            if n_new:
                k_th, k_x = jax.random.split(k_sim)
                th_new = np.asarray(sample_theta(k_th, n_new, box.low, box.high))
                x_new = np.asarray(sim(jax.random.split(k_x, n_new), th_new))
                bank_theta = np.concatenate(
                    [bank_theta, th_new.astype(bank_theta.dtype)]
                )
                bank_x = x_new if bank_x is None else np.concatenate([bank_x, x_new])
                theta = np.concatenate([theta, th_new.astype(theta.dtype)])
                x = x_new if x is None else np.concatenate([x, x_new])
            theta, x = theta[:n_sims], x[:n_sims]
        model, hist = train_ratio_estimator(
            k_train, make_model(k_model), theta, x, **train_kwargs
        )
        new_box = truncate_box(model, x_obs, box, epsilon=epsilon)
        rounds.append(Round(box, theta, x, model, hist, new_box))
        if new_box.volume() / box.volume() > stop_ratio:
            break
        box = new_box
    return rounds
