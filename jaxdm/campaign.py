"""Simulation campaigns on Dask: batches of a bank simulated by many workers at once.

:func:`run_campaign` fills the absolute rows ``[first_row, first_row + n_total)`` of a
:class:`jaxdm.sharded_store.ShardedStore` by fanning batches of ``batch_size`` rows
out to the workers of a ``dask.distributed`` cluster (a ``LocalCluster`` by default;
any cluster through ``client``, e.g. ``dask_jobqueue.SLURMCluster``, see
``docs/scaling.md``). It builds no scheduler of its own: Dask places the tasks and
re-runs those of a worker that dies.

Determinism. The batch starting at absolute row ``s`` uses the key
``fold_in(key, s)``, split into a theta key and a simulation key exactly as
:func:`jaxdm.store.simulate_into` does, so the bank does not depend on the number of
workers, on which worker ran a batch, or on how often it was re-run; for
``first_row = 0`` it is bitwise equal to ``simulate_into`` into an empty
single-file store.

Fault tolerance. A worker commits a batch only after its shard is on disk
(:meth:`ShardedStore.write_shard`); a worker killed mid-batch leaves the batch
uncommitted, Dask re-runs it elsewhere, and committing it is idempotent: 0 rows lost,
0 duplicated. Calling :func:`run_campaign` again after the client itself died skips
the committed batches (resume).

Dask is an optional dependency: ``pip install 'jaxdm[scale]'``.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np

from ._args import check_int
from ._checks import check_key
from .sharded_store import ShardedStore

__all__ = ["CampaignReport", "run_campaign", "uniform_box"]


class CampaignReport(NamedTuple):
    """Summary of one :func:`run_campaign` call.

    Attributes:
        rows: Absolute rows ``(first_row, first_row + n_total)`` now committed.
        n_batches: Batches in the campaign.
        n_computed: Batches simulated by this call (the others were committed).
        seconds: Wall time of the call (s).
        rows_per_second: Rows simulated by this call per second of wall time.
    """

    rows: tuple[int, int]
    n_batches: int
    n_computed: int
    seconds: float
    rows_per_second: float


def uniform_box(key, n: int, low, high) -> jax.Array:
    """Draw ``n`` points uniformly in the box ``[low, high]``, shape (n, dim)."""
    low = np.asarray(low, np.float32).reshape(1, -1)
    high = np.asarray(high, np.float32).reshape(1, -1)
    u = jax.random.uniform(key, (n, low.shape[1]), dtype=jax.numpy.float32)
    # The clip only undoes float32 rounding above `high` (a store refuses such rows).
    return jax.numpy.clip(low + (high - low) * u, low, high)


def _require_distributed():
    try:
        import distributed
    except ImportError as err:  # pragma: no cover - exercised without dask only
        raise ImportError(
            "run_campaign needs dask.distributed: pip install 'jaxdm[scale]' "
            "(or pip install 'dask[distributed]')."
        ) from err
    return distributed


class _Simulator:
    """The per-worker compiled simulator of a campaign (cached by content hash)."""

    def __init__(self, simulate, sample_theta):
        self.sample_theta = sample_theta
        self.sim = jax.jit(jax.vmap(simulate))


@functools.lru_cache(maxsize=8)
def _compiled(token: str, payload: bytes) -> _Simulator:
    # One compiled simulator per worker process and campaign: the functions arrive
    # pickled with every task, and jit caches by function identity.
    import cloudpickle

    return _Simulator(*cloudpickle.loads(payload))


def _run_batch(token, payload, path, key_data, key_impl, start, n, region, low, high):
    """Simulate and commit the absolute rows ``[start, start + n)`` (on a worker)."""
    sim = _compiled(token, payload)
    key = jax.random.wrap_key_data(np.asarray(key_data), impl=key_impl)
    k_th, k_x = jax.random.split(jax.random.fold_in(key, start))
    theta = np.asarray(sim.sample_theta(k_th, n, np.asarray(low), np.asarray(high)))
    x = np.asarray(sim.sim(jax.random.split(k_x, n), theta))
    store = ShardedStore.open(path, "r+")
    try:
        store.write_shard(start, theta, x, region)
    except ValueError as err:
        raise ValueError(
            f"batch [{start}, {start + n}) from `simulate`/`sample_theta` does not "
            f"fit the bank: {err}"
        ) from err
    return start, n


def run_campaign(
    key,
    store: ShardedStore,
    simulate: Callable,
    sample_theta: Callable,
    n_total: int,
    *,
    low,
    high,
    batch_size: int = 1024,
    first_row: int = 0,
    client=None,
    n_workers: int = 2,
    progress: bool = True,
) -> CampaignReport:
    """Simulate the rows ``[first_row, first_row + n_total)`` of ``store`` on Dask.

    Args:
        key: Typed PRNG key (batch keys ``fold_in(key, start_row)``).
        store: A writable :class:`ShardedStore` on a file system every worker sees.
        simulate: ``simulate(key, theta) -> x`` for ONE theta (vmapped per batch);
            pickled to the workers (cloudpickle).
        sample_theta: ``sample_theta(key, n, low, high) -> (n, theta_dim)``, e.g.
            :func:`uniform_box`.
        n_total: Rows to simulate.
        low: Lower corner of the prior box, shape (theta_dim,).
        high: Upper corner, shape (theta_dim,).
        batch_size: Rows per task (and per shard file).
        first_row: Absolute index of the campaign's first row.
        client: A ``distributed.Client``; default a ``LocalCluster`` of
            ``n_workers`` single-threaded processes, closed on return.
        n_workers: Workers of the default ``LocalCluster``.
        progress: Show a tqdm bar of rows with the throughput (rows/s).

    Returns:
        A :class:`CampaignReport`.

    Raises:
        ImportError: Without dask.distributed (with the install hint).
        ValueError: For bad sizes, a range overlapping committed rows of another
            batch grid, or a batch whose theta/x do not fit the bank's schema.
    """
    check_key(key)
    n_total = check_int(n_total, "n_total", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    first_row = check_int(first_row, "first_row", minimum=0)
    n_workers = check_int(n_workers, "n_workers", minimum=1)
    if not isinstance(store, ShardedStore):
        raise TypeError(
            f"`store` must be a jaxdm.sharded_store.ShardedStore (concurrent "
            f"writers); got {type(store).__name__}."
        )
    distributed = _require_distributed()
    import cloudpickle

    region = store.add_region(low, high)
    stop = first_row + n_total
    starts = range(first_row, stop, batch_size)
    batches = [(s, min(batch_size, stop - s)) for s in starts]
    store.refresh()
    done = set(store.committed_ranges())
    todo = [(s, n) for s, n in batches if (s, s + n) not in done]

    payload = cloudpickle.dumps((simulate, sample_theta))
    token = hashlib.sha256(payload).hexdigest()
    key_data = np.asarray(jax.random.key_data(key))
    key_impl = str(jax.random.key_impl(key))
    low_l = np.asarray(low, np.float64).tolist()
    high_l = np.asarray(high, np.float64).tolist()

    own = client is None
    cluster = None
    if own:
        cluster = distributed.LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True,
            dashboard_address=None,
        )  # fmt: skip
        client = distributed.Client(cluster)
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=n_total, initial=n_total - sum(n for _, n in todo),
            desc="campaign", unit="sim", unit_scale=True, leave=False,
        )  # fmt: skip
    try:
        futures = [
            client.submit(
                _run_batch,
                token,
                payload,
                store.path,
                key_data,
                key_impl,
                s,
                n,
                region,
                low_l,
                high_l,
                key=f"jaxdm-batch-{token[:16]}-{s}-{n}",
            )  # fmt: skip
            for s, n in todo
        ]
        for fut in distributed.as_completed(futures):
            _, n = fut.result()
            if bar is not None:
                bar.update(n)
    finally:
        if bar is not None:
            bar.close()
        if own:
            client.close()
            cluster.close()
    seconds = time.perf_counter() - t0
    store.refresh()
    computed = sum(n for _, n in todo)
    return CampaignReport(
        rows=(first_row, stop),
        n_batches=len(batches),
        n_computed=len(todo),
        seconds=seconds,
        rows_per_second=computed / seconds if seconds > 0 else float("nan"),
    )
