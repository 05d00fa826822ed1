"""Amortised posteriors for many observations, streamed from one store into another.

:func:`sample_posteriors_into` reads observations in chunks from a simulation bank
(:class:`jaxdm.store.SimulationStore`, :class:`jaxdm.sharded_store.ShardedStore` or an
in-memory array), draws ``n_samples`` posterior samples for each with a trained
estimator (anything with ``sample_and_log_prob(key, x, n)`` for one observation, e.g.
:class:`jaxdm.inference.NPE`) and appends them to an HDF5 *posterior bank*:

* ``samples`` (n_obs, n_samples, theta_dim)  posterior draws (units of theta),
* ``log_q``   (n_obs, n_samples)             their log-density under the estimator,

with Fletcher32 checksums and the commit protocol of :mod:`jaxdm.store` (write, flush,
then raise the ``n_committed`` attribute), so memory stays bounded by one chunk and a
killed run resumes where it stopped: calling again with the same arguments continues
from the first uncommitted observation. Observation ``i`` always uses the key
``fold_in(key, i)``, so the bank does not depend on ``chunk_size`` or on how often the
run was interrupted.
"""

from __future__ import annotations

import os
import time

import equinox as eqx
import h5py
import jax
import jax.numpy as jnp
import numpy as np

from .._args import check_int
from .._checkpoint import key_fingerprint
from .._checks import check_key
from .._h5recover import clear_killed_writer_flag
from ..serialise import ChecksumError

__all__ = ["read_posterior_samples", "sample_posteriors_into"]

_FORMAT = "jaxdm-posterior-bank"
_VERSION = 1


@eqx.filter_jit
def _sample_chunk(estimator, key, rows, x, n: int):
    keys = jax.vmap(lambda r: jax.random.fold_in(key, r))(rows)
    return jax.vmap(lambda k, xi: estimator.sample_and_log_prob(k, xi, n))(keys, x)


def _observations(observations):
    """(n_obs, read(start, stop) -> x chunk) for a store or an array."""
    if hasattr(observations, "read") and hasattr(observations, "n_rows"):
        n = int(observations.n_rows)
        return n, lambda a, b: observations.read(np.arange(a, b))["x"]
    arr = np.asarray(observations)
    if arr.ndim < 2:
        raise ValueError(
            f"`observations` must be a store or an array (n_obs, *x_shape); got shape "
            f"{arr.shape}."
        )
    return arr.shape[0], lambda a, b: arr[a:b]


def sample_posteriors_into(
    key,
    estimator,
    observations,
    path: str | os.PathLike,
    n_samples: int,
    *,
    chunk_size: int = 1024,
    progress: bool = True,
) -> dict:
    """Sample the posterior of every observation into an HDF5 bank (resumable).

    Args:
        key: Typed PRNG key; observation ``i`` uses ``fold_in(key, i)``.
        estimator: Trained estimator with ``sample_and_log_prob(key, x, n)`` and
            ``theta_dim``, e.g. an :class:`~jaxdm.inference.NPE`.
        observations: A store (its ``x`` rows, in order) or an array
            (n_obs, *x_shape).
        path: The posterior bank (``.h5``); created, or resumed if it exists.
        n_samples: Posterior samples per observation.
        chunk_size: Observations per compiled call and per commit (memory bound:
            ``chunk_size * n_samples * theta_dim`` floats).
        progress: Show a tqdm bar (observations/s).

    Returns:
        ``{"n_obs", "n_resumed", "seconds", "obs_per_second"}`` for this call.

    Raises:
        ValueError: If an existing ``path`` belongs to another run (key, sizes) or
            the observations are not finite.
    """
    check_key(key)
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    n_obs, read = _observations(observations)
    d = int(estimator.theta_dim)
    meta = {
        "format": _FORMAT,
        "version": _VERSION,
        "n_obs": n_obs,
        "n_samples": n_samples,
        "theta_dim": d,
        "key": str(key_fingerprint(key)),
    }
    path = os.fspath(path)
    if os.path.exists(path):
        try:
            f = h5py.File(path, "r+")
        except OSError as err:  # a killed run: clear HDF5's "open for write" flag
            if "consistency flags" not in str(err) or not clear_killed_writer_flag(
                path
            ):
                raise
            f = h5py.File(path, "r+")
        for k, v in meta.items():
            have = f.attrs.get(k)
            if have != v:
                f.close()
                raise ValueError(
                    f"`path` {path!r} holds a posterior bank of another run ({k}: "
                    f"{have!r} there, {v!r} now); pass another path."
                )
    else:
        f = h5py.File(path, "w", libver=("v110", "v110"))
        f.attrs.update(meta)
        f.attrs["n_committed"] = 0
        rows = max(1, min(chunk_size, n_obs))
        f.create_dataset("samples", (n_obs, n_samples, d), np.float32,
                         chunks=(rows, n_samples, d), fletcher32=True)  # fmt: skip
        f.create_dataset("log_q", (n_obs, n_samples), np.float32,
                         chunks=(rows, n_samples), fletcher32=True)  # fmt: skip
        f.flush()
    start = n0 = int(f.attrs["n_committed"])
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_obs, initial=start, desc="posteriors", unit="obs",
                   leave=False)  # fmt: skip
    t0 = time.perf_counter()
    try:
        while start < n_obs:
            stop = min(start + chunk_size, n_obs)
            x = np.asarray(read(start, stop))
            bad = ~np.all(np.isfinite(x.reshape(x.shape[0], -1)), axis=1)
            if bad.any():
                raise ValueError(
                    f"`observations` rows {start + np.nonzero(bad)[0][:5]} are not "
                    "finite; no posterior is sampled for them."
                )
            pad = chunk_size - x.shape[0]  # one compiled shape for every chunk
            xp = np.concatenate([x, np.repeat(x[-1:], pad, 0)]) if pad else x
            rows = jnp.arange(start, start + chunk_size)
            theta, log_q = _sample_chunk(estimator, key, rows, jnp.asarray(xp),
                                         n_samples)  # fmt: skip
            f["samples"][start:stop] = np.asarray(theta)[: stop - start]
            f["log_q"][start:stop] = np.asarray(log_q)[: stop - start]
            f.flush()
            f.attrs["n_committed"] = stop
            f.flush()
            if bar is not None:
                bar.update(stop - start)
            start = stop
    finally:
        f.close()
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    return {
        "n_obs": n_obs,
        "n_resumed": n0,
        "seconds": seconds,
        "obs_per_second": (n_obs - n0) / seconds if seconds > 0 else float("nan"),
    }


def read_posterior_samples(path: str | os.PathLike, rows=None):
    """Read committed posterior samples: ``(samples, log_q)`` for ``rows``.

    Args:
        path: A bank written by :func:`sample_posteriors_into`.
        rows: A slice or sorted indices of observations (default: all committed).

    Returns:
        ``samples`` (m, n_samples, theta_dim) and ``log_q`` (m, n_samples).

    Raises:
        ValueError: If ``path`` is not a posterior bank, or ``rows`` reach beyond
            the committed observations.
        jaxdm.serialise.ChecksumError: If a chunk fails its Fletcher32 checksum.
    """
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != _FORMAT:
            raise ValueError(f"`path` {os.fspath(path)!r} is not a posterior bank.")
        n = int(f.attrs["n_committed"])
        rows = slice(0, n) if rows is None else rows
        idx = np.arange(n)[rows] if isinstance(rows, slice) else np.asarray(rows)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(
                f"`rows` must lie in [0, {n}) (committed observations); got {rows}."
            )
        try:
            return f["samples"][rows], f["log_q"][rows]
        except OSError as err:
            raise ChecksumError(
                f"posterior bank {os.fspath(path)!r}: a chunk failed its Fletcher32 "
                f"checksum ({err}); the file is corrupt."
            ) from err
