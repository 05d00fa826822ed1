"""Training sets (theta, x) from a prior and a simulator, in memory-bounded chunks."""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

from .._checks import check_key

__all__ = ["drop_nonfinite", "simulate_dataset"]


def _prior_sampler(prior) -> Callable:
    """``(key, n) -> (n, theta_dim)`` from a callable or a numpyro distribution."""
    if hasattr(prior, "sample") and hasattr(prior, "event_shape"):
        # Vmapped single draws: batched numpyro sampling trips rank_promotion='raise'
        # in some distributions and gives the same law.
        return lambda k, n: jax.vmap(prior.sample)(jax.random.split(k, n))
    if callable(prior):
        return prior
    raise TypeError(
        "`sample_prior` must be a callable (key, n) -> theta or a numpyro "
        f"distribution; got {type(prior).__name__}."
    )


def simulate_dataset(
    key,
    sample_prior,
    simulator: Callable,
    n: int,
    *,
    chunk_size: int = 4096,
    progress: bool = False,
):
    """Draw ``n`` pairs ``theta ~ prior``, ``x ~ simulator(key, theta)``.

    The simulator acts on one parameter vector; it is vmapped and jit-compiled once,
    and run over chunks of ``chunk_size`` draws (the last chunk padded and trimmed)
    so that memory stays bounded and there is a single compilation.

    Args:
        key: Typed PRNG key.
        sample_prior: ``sample_prior(key, n) -> theta`` of shape (n, theta_dim) (e.g.
            ``task.sample_prior``), or a numpyro distribution with event shape
            ``(theta_dim,)``.
        simulator: ``simulator(key, theta) -> x`` for one ``theta`` of shape
            ``(theta_dim,)``; ``x`` may be any array or pytree of arrays.
        n: Number of simulations.
        chunk_size: Simulations per compiled call.
        progress: Show a tqdm bar over chunks.

    Returns:
        ``(theta, x)`` with leading axis ``n`` (NumPy arrays on the host).

    Raises:
        TypeError: For a legacy or missing key.
        ValueError: For ``n < 1`` or ``chunk_size < 1``.
    """
    check_key(key)
    draw = _prior_sampler(sample_prior)
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"`n` must be >= 1; got {n}.")
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, int)
        or chunk_size < 1
    ):
        raise ValueError(f"`chunk_size` must be >= 1; got {chunk_size}.")
    chunk_size = min(chunk_size, n)

    @jax.jit
    def run(k):
        k_theta, k_sim = jax.random.split(k)
        theta = draw(k_theta, chunk_size)
        x = jax.vmap(simulator)(jax.random.split(k_sim, chunk_size), theta)
        return theta, x

    n_chunks = -(-n // chunk_size)
    chunks = range(n_chunks)
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc="simulate", unit="chunk", leave=False)
    out = [jax.device_get(run(jax.random.fold_in(key, c))) for c in chunks]
    return jax.tree.map(lambda *parts: np.concatenate(parts)[:n], *out)


def drop_nonfinite(theta, x):
    """Remove rows with NaN/inf in ``theta`` or ``x``, and say how many were removed.

    This is the explicit opt-in for simulators that occasionally fail; training code
    never filters rows by itself.

    Args:
        theta: Parameters, shape (n, theta_dim).
        x: Observations, array or pytree of arrays with leading axis n.

    Returns:
        ``(theta, x, n_dropped)``.
    """
    theta = np.asarray(theta)
    ok = np.isfinite(theta.reshape(len(theta), -1)).all(axis=1)
    for leaf in jax.tree.leaves(x):
        leaf = np.asarray(leaf)
        if np.issubdtype(leaf.dtype, np.floating):
            ok &= np.isfinite(leaf.reshape(len(leaf), -1)).all(axis=1)
    n_dropped = int((~ok).sum())
    return theta[ok], jax.tree.map(lambda a: np.asarray(a)[ok], x), n_dropped
