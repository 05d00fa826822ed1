"""Multi-process helpers around ``jax.distributed``: start-up, rows, barrier.

JAX runs one Python process per host (or per GPU); :func:`initialize` connects them
through JAX's coordination service, after which ``jax.devices()`` lists the devices of
every process and :func:`jaxdm.train.fit` trains data-parallel over all of them
without any change to the calling code: the minibatch is sharded over the global
device mesh, the parameters are replicated, every process computes the same
(replicated) training and validation losses, so early stopping and the best-model
restore agree, and only process 0 writes checkpoints (see ``docs/scaling.md`` for
launching on Slurm).

Why a wrapper: ``jax.distributed.initialize`` on a process whose coordinator never
answers aborts the whole interpreter (``SIGABRT`` from a C++ ``CHECK`` after
``initialization_timeout``, measured with jax 0.10.2), which a Python caller cannot
catch. :func:`initialize` first waits, up to ``timeout`` seconds, for the coordinator's
TCP port to accept a connection and raises a ``TimeoutError`` naming the address
otherwise; CPU collectives go through gloo (``jax_cpu_collectives_implementation``),
without which a multi-process CPU computation fails.
"""

from __future__ import annotations

import socket
import time

import jax

from ._args import check_int, check_real

__all__ = ["barrier", "initialize", "is_main_process", "process_rows"]


def _parse_address(address: str) -> tuple[str, int]:
    if not isinstance(address, str) or ":" not in address:
        raise ValueError(
            "`coordinator_address` must be 'host:port' (e.g. '10.0.0.1:12355'); "
            f"got {address!r}."
        )
    host, _, port = address.rpartition(":")
    try:
        port_int = int(port)
    except ValueError:
        port_int = -1
    if not host or not 0 < port_int < 65536:
        raise ValueError(
            "`coordinator_address` must be 'host:port' with a port in [1, 65535]; "
            f"got {address!r}."
        )
    return host.strip("[]"), port_int


def wait_for_coordinator(coordinator_address: str, timeout: float) -> float:
    """Wait until ``coordinator_address`` accepts TCP connections.

    Args:
        coordinator_address: ``"host:port"`` of process 0's coordination service.
        timeout: Seconds to keep trying.

    Returns:
        The seconds left of ``timeout``.

    Raises:
        TimeoutError: If nothing answers within ``timeout`` seconds.
    """
    host, port = _parse_address(coordinator_address)
    deadline = time.monotonic() + timeout
    last = None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(
                f"`coordinator_address` {coordinator_address!r} did not answer within "
                f"{timeout:g} s (last error: {last}). Is process 0 running, is the "
                "address reachable from this host and the port open? Raise `timeout` "
                "if process 0 starts late."
            )
        try:
            with socket.create_connection((host, port), timeout=min(1.0, left)):
                return deadline - time.monotonic()
        except OSError as err:
            last = f"{type(err).__name__}: {err}"
            time.sleep(min(0.2, max(left, 0.0)))


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    timeout: float = 300.0,
    cpu_collectives: str = "gloo",
) -> None:
    """Connect this process to the others (``jax.distributed.initialize``, guarded).

    Call it once per process, before any other JAX call. Without arguments JAX
    detects the cluster itself (Slurm, Open MPI, Kubernetes ...); the coordinator
    is then not probed first.

    Args:
        coordinator_address: ``"host:port"`` of process 0 (it hosts the service).
        num_processes: Total number of processes.
        process_id: This process's index in ``[0, num_processes)``.
        timeout: Seconds to wait for the coordinator (processes other than 0) and
            for all processes to register (``initialization_timeout``).
        cpu_collectives: CPU collectives implementation (``"gloo"``; ``"mpi"`` needs
            an MPI build). Ignored by GPU/TPU computations.

    Raises:
        ValueError: For a malformed address or inconsistent ids.
        TimeoutError: If the coordinator does not answer within ``timeout`` seconds.
    """
    timeout = check_real(timeout, "timeout")
    if not timeout > 0:
        raise ValueError(f"`timeout` must be > 0 seconds; got {timeout}.")
    if coordinator_address is None:
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
        jax.distributed.initialize(initialization_timeout=int(timeout))
        return
    _parse_address(coordinator_address)
    num_processes = check_int(num_processes, "num_processes", minimum=1)
    process_id = check_int(process_id, "process_id", minimum=0)
    if process_id >= num_processes:
        raise ValueError(
            f"`process_id` must be in [0, {num_processes}) (`num_processes`); "
            f"got {process_id}."
        )
    jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    left = timeout
    if process_id != 0:
        left = wait_for_coordinator(coordinator_address, timeout)
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=max(1, int(left)),
    )


def is_main_process() -> bool:
    """Whether this is process 0 (the one that writes checkpoints and reports)."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process reaches the barrier ``name`` (no-op for one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def process_rows(n_rows: int, process_index=None, process_count=None) -> slice:
    """The contiguous block of ``n_rows`` rows that one process owns.

    Blocks differ in size by at most one row and tile ``[0, n_rows)`` in process
    order, so the processes together cover every row exactly once.

    Args:
        n_rows: Number of rows to split.
        process_index: Default ``jax.process_index()``.
        process_count: Default ``jax.process_count()``.

    Returns:
        ``slice(start, stop)``.
    """
    n_rows = check_int(n_rows, "n_rows", minimum=0)
    count = jax.process_count() if process_count is None else process_count
    count = check_int(count, "process_count", minimum=1)
    index = jax.process_index() if process_index is None else process_index
    index = check_int(index, "process_index", minimum=0)
    if index >= count:
        raise ValueError(f"`process_index` must be in [0, {count}); got {index}.")
    base, extra = divmod(n_rows, count)
    start = index * base + min(index, extra)
    return slice(start, start + base + (index < extra))
