"""The one training loop every learned component in jaxdm goes through.

``fit`` trains an equinox model by minimising ``loss_fn(model, batch, key)`` over
minibatches: each epoch is one jit-compiled ``lax.scan`` over pre-shuffled minibatch
indices (no retracing per step), followed by a validation pass; early stopping restores
the best-validation model. Training is data parallel over every device JAX sees: the
minibatch is sharded along its leading axis and the parameters are replicated, so the
same code runs on one CPU, several CPU devices and a GPU.

Data larger than memory is passed as a *chunk source*: any object with an integer
attribute ``n_rows`` and a method ``iter_chunks(key, chunk_size)`` that yields pytrees
of arrays (leading axis <= ``chunk_size``) covering every row exactly once per call, in
an order shuffled by ``key`` (``jaxdm.store`` simulation banks implement it).

Bad rows. In-memory data with NaN/inf rows is refused (drop them explicitly). A chunk
source cannot be cleaned up front, so each chunk is screened as it is read: rows with
NaN/inf are left out of the minibatches (``nonfinite_rows="skip"``, the default) or are
an error (``"raise"``); either way their number is reported in
:attr:`History.n_nonfinite_rows` and by a warning. Rows with extreme finite values
(robust z-score above ``outlier_z``, see :func:`screen_rows`) are reported likewise and,
with ``outliers="skip"`` or ``"raise"``, left out or refused. An epoch in which no
optimiser step had a finite loss is an error, and so is a non-finite model at the end:
``fit`` never returns a NaN model.

Checkpoints. With ``checkpoint=path`` the whole training state (trainable parameters,
optimiser state, completed epochs, early-stopping state, best parameters, the key and
the history) is written every ``every`` epochs and at the end, atomically (temporary
file, ``fsync``, ``os.replace``) with a SHA-256 checksum (``jaxdm.serialise``). Calling
``fit`` again with the same arguments resumes from it; the epoch keys are
``fold_in(key, epoch)``, so a resumed run ends bitwise equal to an uninterrupted one on
the same devices.

Several processes (``jax.distributed``, see :mod:`jaxdm.distributed`). ``devices``
defaults to ``jax.devices()``, which then lists the devices of every process: every
process calls ``fit`` with the same arguments, each minibatch is sharded over the
global mesh, the parameters are replicated and the losses are global reductions, so
every process sees the same losses and takes the same early-stopping and best-model
decisions. Only process 0 writes the checkpoint (the others wait for it at a barrier
and read it on resuming, so ``checkpoint`` must be on a shared file system). Every
process passes the same ``data`` (the full arrays, e.g. memory-mapped, or the same
store). In-memory training rows are *sharded*, not replicated: after one pass over
all rows for the row screens (which every process must see alike), each process
copies to its devices only their blocks of the rows (one contiguous block of
``n_train / n_devices`` rows per device, after the validation split, which every
process draws alike) and the global array is assembled with
``jax.make_array_from_process_local_data``; each compiled step then gathers its
minibatch from the blocks (each device picks the rows it holds, a reduce-scatter
delivers each device its slice: ``batch_size`` rows cross the network per step, next
to the gradient all-reduce), so the minibatches, hence the results, are those of one
process up to float summation order. Validation rows stay replicated (a tenth of the
data by default). From a ``jaxdm.store`` bank each process reads only its block of
every chunk and the blocks are gathered into the chunk (the shuffle and the row
screen see every row of it, as in one process); other chunk sources are read whole by
every process. One process keeps its in-memory rows replicated over its devices, as
before. The returned model lives on one device (:func:`_on_one_device`).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, runtime_checkable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from . import serialise
from ._args import check_choice, check_int, check_real
from ._checkpoint import (
    all_finite,
    key_fingerprint,
    load_checkpoint,
    save_checkpoint,
    trees_equal,
)
from ._checks import check_key
from .screening import (
    RowScreen,
    _check_finite_rows,
    _check_same_structure,
    _leading_size,
    _outlier_message,
    _report_rows,
    _screen_outliers,
    screen_rows,
)

__all__ = [
    "ChunkSource",
    "History",
    "RowScreen",
    "default_optimizer",
    "fit",
    "screen_rows",
    "trainable_filter",
]


class History(NamedTuple):
    """Record of one call to :func:`fit`.

    Attributes:
        train_loss: Mean training loss per epoch, shape (n_epochs,).
        val_loss: Validation loss per epoch, shape (n_epochs,) (NaN without validation).
        best_epoch: Index of the epoch whose model was returned.
        stopped_early: Whether training stopped before ``max_epochs``.
        n_nonfinite_steps: Optimiser steps whose loss was NaN/inf (their updates are
            skipped by the default optimiser's ``optax.apply_if_finite``).
        n_nonfinite_rows: Rows of a chunk source with NaN/inf values, left out of
            training (per epoch: every epoch reads every row once; the largest count
            over the epochs). Always 0 for in-memory data, where such rows raise.
        n_outlier_rows: Rows whose robust z-score exceeds ``outlier_z`` (see
            :func:`screen_rows`); trained on with ``outliers="warn"``, left out with
            ``"skip"``. For a chunk source, the largest count over the epochs.
    """

    train_loss: np.ndarray
    val_loss: np.ndarray
    best_epoch: int
    stopped_early: bool
    n_nonfinite_steps: int
    n_nonfinite_rows: int = 0
    n_outlier_rows: int = 0


@runtime_checkable
class ChunkSource(Protocol):
    """Training data streamed in chunks (for data larger than memory)."""

    n_rows: int

    def iter_chunks(self, key, chunk_size: int):
        """Yield shuffled chunks (pytrees of arrays) covering every row once."""
        ...


@functools.lru_cache(maxsize=32)
def default_optimizer(
    learning_rate: float | optax.Schedule = 5e-4,
    *,
    weight_decay: float = 1e-5,
    clip_norm: float = 5.0,
    max_consecutive_nonfinite: int = 20,
) -> optax.GradientTransformation:
    """AdamW with global-norm gradient clipping and NaN/inf-skipping.

    Args:
        learning_rate: Constant rate or an ``optax`` schedule (step -> rate).
        weight_decay: Decoupled weight decay of AdamW.
        clip_norm: Maximum global gradient norm.
        max_consecutive_nonfinite: Updates with non-finite gradients are skipped; after
            this many in a row the parameters are updated anyway (and become NaN), so a
            diverged run is visible rather than silently frozen.

    Returns:
        An ``optax.GradientTransformation`` (cached per arguments, so repeated ``fit``
        calls reuse the compiled epoch).
    """
    return optax.apply_if_finite(
        optax.chain(
            optax.clip_by_global_norm(clip_norm),
            optax.adamw(learning_rate, weight_decay=weight_decay),
        ),
        max_consecutive_errors=max_consecutive_nonfinite,
    )


def trainable_filter(model) -> Any:
    """Filter spec selecting the trainable leaves of ``model``.

    Trainable leaves are the floating-point arrays, except those inside modules whose
    class sets ``__jaxdm_frozen__ = True`` (fitted standardisation statistics), which
    the optimiser must not move (not even by weight decay).

    Args:
        model: An equinox module (any pytree).

    Returns:
        A pytree prefix of booleans for ``eqx.partition``.
    """

    def frozen(node) -> bool:
        return bool(getattr(type(node), "__jaxdm_frozen__", False))

    return jax.tree.map(
        lambda node: False if frozen(node) else eqx.is_inexact_array(node),
        model,
        is_leaf=frozen,
    )


def _make_sharding(devices):
    devices = jax.devices() if devices is None else list(devices)
    mesh = Mesh(np.asarray(devices), ("batch",))
    return (
        len(devices),
        NamedSharding(mesh, PartitionSpec("batch")),
        NamedSharding(mesh, PartitionSpec()),
    )


class _ShardedRows(eqx.Module):
    """Training rows spread over the devices of every process (several processes).

    ``arrays`` is a pytree of global arrays of ``n_pad`` rows (the training rows, then
    zero padding to a multiple of the device count) sharded along rows over the mesh
    ``shard.mesh``: each device holds one contiguous block of ``n_pad / n_dev`` rows,
    so each process holds only its devices' blocks.
    """

    arrays: Any
    shard: NamedSharding = eqx.field(static=True)


def _shard_rows(data, shard: NamedSharding, rows=None) -> _ShardedRows:
    """Put this process's blocks of the rows ``data[rows]`` on its devices.

    Every process passes the same host arrays (``rows``: the training rows, default
    all); each reads and keeps only the rows of its own devices' blocks, and the
    global array is assembled with ``jax.make_array_from_process_local_data`` (no
    data moves between processes).
    """
    n = _leading_size(data, "data") if rows is None else len(rows)
    n_dev = shard.mesh.size
    n_pad = -(-n // n_dev) * n_dev
    shape = (n_pad,)
    index_map = shard.addressable_devices_indices_map(shape)
    starts = sorted(idx[0].start or 0 for idx in index_map.values())
    per = n_pad // n_dev
    lo, hi = starts[0], starts[-1] + per
    if hi - lo != per * len(starts):
        raise ValueError(
            "`devices`: this process's devices must be consecutive in the device "
            f"list for row sharding; got row blocks starting at {starts}."
        )

    def put(a):
        local = a[lo : min(hi, n)] if rows is None else a[rows[lo : min(hi, n)]]
        local = np.asarray(local)
        if local.shape[0] < hi - lo:  # this process's blocks reach into the padding
            pad = np.zeros((hi - lo - local.shape[0], *local.shape[1:]), local.dtype)
            local = np.concatenate([local, pad])
        return jax.make_array_from_process_local_data(
            shard, local, (n_pad, *local.shape[1:])
        )

    return _ShardedRows(jax.tree.map(put, data), shard)


def _take_rows(data, rows, shard):
    """The minibatch ``data[rows]``, sharded along rows over ``shard``'s devices.

    For :class:`_ShardedRows` each device picks the requested rows it holds (zeros
    for the others) and a reduce-scatter sums the blocks, giving each device its
    slice of the minibatch: per step, ``batch_size`` rows cross the network, and no
    device ever holds all the training rows.
    """
    if not isinstance(data, _ShardedRows):
        batch = jax.tree.map(lambda a: a[rows], data)
        return jax.lax.with_sharding_constraint(batch, shard)
    mesh = data.shard.mesh
    (axis,) = mesh.axis_names

    def local(arrays, rows):
        block = jax.tree.leaves(arrays)[0].shape[0]
        where = rows - jax.lax.axis_index(axis) * block
        mine = (where >= 0) & (where < block)
        where = jnp.clip(where, 0, block - 1)

        def pick(a):
            picked = a[where]
            mask = mine.reshape(-1, *([1] * (a.ndim - 1)))
            if a.dtype == jnp.bool_:
                picked = jnp.where(mask, picked, False).astype(jnp.uint8)
                out = jax.lax.psum_scatter(picked, axis, tiled=True)
                return out.astype(jnp.bool_)
            picked = jnp.where(mask, picked, jnp.zeros((), a.dtype))
            return jax.lax.psum_scatter(picked, axis, tiled=True)

        return jax.tree.map(pick, arrays)

    spec = PartitionSpec(axis)
    batch = jax.shard_map(
        local, mesh=mesh, in_specs=(spec, PartitionSpec()), out_specs=spec
    )(data.arrays, rows)
    return jax.lax.with_sharding_constraint(batch, shard)


def _sgd_step(params, static, opt_state, data, rows, key, loss_fn, optimizer, shard):
    """One optimiser step on the rows ``rows`` of ``data``."""
    batch = _take_rows(data, rows, shard)

    def objective(p):
        return loss_fn(eqx.combine(p, static), batch, key)

    loss, grads = jax.value_and_grad(objective)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return eqx.apply_updates(params, updates), opt_state, loss


def _scan_epoch(params, static, opt_state, data, idx, key, loss_fn, optimizer, shard):
    """One epoch (traced): a scan over minibatch index rows ``idx`` (n_batches, bs)."""

    def step(carry, inputs):
        rows, k = inputs
        params, opt_state, loss = _sgd_step(
            *carry[:1], static, carry[1], data, rows, k, loss_fn, optimizer, shard
        )
        return (params, opt_state), loss

    keys = jax.random.split(key, idx.shape[0])
    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), (idx, keys))
    return params, opt_state, losses


_train_epoch = eqx.filter_jit(_scan_epoch)
_train_step = eqx.filter_jit(_sgd_step)


@functools.cache
def _epoch_program(compiler_options: tuple = ()):
    """The compiled epoch scan for XLA ``compiler_options`` ((name, value) pairs).

    One jitted function per distinct set of options, so that each compiles once per
    model structure, like ``_train_epoch``.
    """
    if not compiler_options:
        return _train_epoch
    return eqx.filter_jit(_scan_epoch, compiler_options=dict(compiler_options))


def _check_compiler_options(options) -> tuple:
    """``compiler_options`` as sorted (name, value) pairs, or a clear error."""
    if options is None:
        return ()
    if not isinstance(options, dict):
        raise TypeError(
            "`compiler_options` must be a dict of XLA option names to bool/int/float/"
            f"str values or None; got {type(options).__name__}."
        )
    for name, value in options.items():
        if not isinstance(name, str) or not isinstance(value, bool | int | float | str):
            raise TypeError(
                "`compiler_options` must map option names (str) to bool/int/float/str "
                f"values; got {name!r}: {value!r}."
            )
    return tuple(sorted(options.items()))


class _Shuffle(NamedTuple):
    """An in-memory epoch whose keys and minibatch rows are drawn when it runs.

    ``fold_in(key, epoch)`` splits into the epoch's key and the validation key; the
    epoch's key into the permutation key and the step key; the first
    ``n_batches * batch_size`` rows of ``permutation(n_train)`` are the minibatches.
    """

    n_train: int
    n_batches: int
    batch_size: int


def _epoch_plan(key, epoch, plan: _Shuffle):
    """(idx (n_batches, batch_size), step key, validation key) of epoch ``epoch``."""
    k_epoch, k_val = jax.random.split(jax.random.fold_in(key, epoch))
    k_perm, k_steps = jax.random.split(k_epoch)
    idx = jax.random.permutation(k_perm, plan.n_train)
    idx = idx[: plan.n_batches * plan.batch_size]
    return idx.reshape(plan.n_batches, plan.batch_size), k_steps, k_val


_epoch_plan_jit = eqx.filter_jit(_epoch_plan)


@eqx.filter_jit
def _init_optimizer(optimizer, params):
    """``optimizer.init(params)`` as one compiled call (not one per eager op)."""
    return optimizer.init(params)


def _run_epoch(params, static, opt_state, data, idx, key, loss_fn, optimizer, shard, *,
               scan: bool, epoch=None, program=_train_epoch):  # fmt: skip
    """An epoch as one compiled scan, or as one compiled call per step (same keys).

    With ``idx`` a :class:`_Shuffle`, ``key`` is ``fit``'s training key and
    ``epoch`` the epoch number: the epoch's keys and rows are drawn from them (in
    the compiled scan when ``scan``) and the validation key is returned as a
    fourth output. ``program`` is the jitted scan (``_epoch_program``).
    """
    if isinstance(idx, _Shuffle):
        # The epoch's keys and rows come from their own compiled program (``epoch``
        # traced: one program for every epoch), not fused into the epoch's scan: it
        # depends only on the row and batch counts, so every model trained on data
        # of the same size reuses it. Its compilation (the permutation's threefry
        # and sorts) was ~1/3 of the fused epoch's; with one program per eager
        # random op instead it was ~1/3 of a first small ``fit`` (RESULTS.md,
        # anomaly5 and anomaly7). Same keys and rows either way.
        epoch = np.asarray(epoch, np.uint32)
        idx, k_steps, k_val = _epoch_plan_jit(key, epoch, idx)
        run = program if scan else _step_by_step
        out = run(params, static, opt_state, data, idx, k_steps, loss_fn, optimizer,
                  shard)  # fmt: skip
        return (*out, k_val)
    if scan:
        return program(
            params, static, opt_state, data, idx, key, loss_fn, optimizer, shard
        )
    return _step_by_step(
        params, static, opt_state, data, idx, key, loss_fn, optimizer, shard
    )


def _step_by_step(params, static, opt_state, data, idx, key, loss_fn, optimizer,
                  shard):  # fmt: skip
    """An epoch as one compiled call per minibatch (keys as in the scan)."""
    keys = jax.random.split(key, idx.shape[0])
    losses = []
    for rows, k in zip(idx, keys, strict=True):
        params, opt_state, loss = _train_step(
            params, static, opt_state, data, rows, k, loss_fn, optimizer, shard
        )
        losses.append(loss)
    return params, opt_state, jnp.stack(losses)


def _has_conv(model) -> bool:
    def is_conv(node):
        return isinstance(node, eqx.nn.Conv)

    return any(is_conv(n) for n in jax.tree.leaves(model, is_leaf=is_conv))


@eqx.filter_jit
def _chunk_loss(params, static, batch, key, loss_fn, shard):
    batch = jax.lax.with_sharding_constraint(batch, shard)
    return loss_fn(eqx.combine(params, static), batch, key)


def _eval_loss(params, static, data, key, loss_fn, chunk: int, shard, *, scan=True):
    """Mean loss over all rows of ``data``.

    Sharded chunks of ``chunk`` rows plus the remainder, weighted by row count (exact
    when ``loss_fn`` is a mean over rows). ``scan=False`` evaluates the chunks in a
    Python loop of compiled calls instead of one compiled scan.
    """
    if scan:
        return _eval_loss_scan(params, static, data, key, loss_fn, chunk, shard)
    n = _leading_size(data, "validation_data")
    n_chunks = n // chunk if chunk else 0
    k_full, k_rest = jax.random.split(key)
    keys = jax.random.split(k_full, max(n_chunks, 1))
    total = jnp.zeros(())
    for c in range(n_chunks):
        batch = jax.tree.map(lambda a, c=c: a[c * chunk : (c + 1) * chunk], data)
        total = total + chunk * _chunk_loss(
            params, static, batch, keys[c], loss_fn, shard
        )
    n_rest = n - n_chunks * chunk
    if n_rest:
        rest = jax.tree.map(lambda a: a[n_chunks * chunk :], data)
        total = total + n_rest * _chunk_loss(
            params, static, rest, k_rest, loss_fn, shard
        )
    return total / n


@eqx.filter_jit
def _eval_loss_scan(params, static, data, key, loss_fn, chunk: int, shard):
    n = _leading_size(data, "validation_data")
    n_chunks = n // chunk if chunk else 0
    model = eqx.combine(params, static)
    k_full, k_rest = jax.random.split(key)
    total = jnp.zeros(())
    if n_chunks:
        full = jax.tree.map(
            lambda a: a[: n_chunks * chunk].reshape(n_chunks, chunk, *a.shape[1:]), data
        )

        def body(_, inputs):
            batch, k = inputs
            batch = jax.lax.with_sharding_constraint(batch, shard)
            return None, loss_fn(model, batch, k)

        keys = jax.random.split(k_full, n_chunks)
        _, losses = jax.lax.scan(body, None, (full, keys))
        total = total + chunk * jnp.sum(losses)
    n_rest = n - n_chunks * chunk
    if n_rest:
        rest = jax.tree.map(lambda a: a[n_chunks * chunk :], data)
        total = total + n_rest * loss_fn(model, rest, k_rest)
    return total / n


def _canonical(tree):
    """``tree``'s arrays as host arrays of JAX's dtypes, for ``jax.device_put``.

    What ``jnp.asarray`` does (float64 -> float32 unless x64), but on the host:
    in jax 0.10 ``jnp.asarray`` of a host array compiles a staging program per
    shape, an XLA compilation in every first ``fit`` call.
    """

    def host(a):
        if isinstance(a, jax.Array):
            return a
        a = np.asarray(a)
        return a.astype(jax.dtypes.canonicalize_dtype(a.dtype), copy=False)

    return jax.tree.map(host, tree)


def _val_chunk(n_val: int, batch_size: int, n_dev: int) -> int:
    chunk = min(max(batch_size, 1024), n_val)
    return chunk - chunk % n_dev


def fit(
    key,
    model,
    loss_fn: Callable[[Any, Any, Any], jax.Array],
    data,
    optimizer: optax.GradientTransformation | None = None,
    *,
    batch_size: int = 256,
    max_epochs: int = 200,
    val_fraction: float = 0.1,
    validation_data=None,
    patience: int = 20,
    min_delta: float = 0.0,
    restore_best: bool = True,
    chunk_size: int = 65_536,
    devices=None,
    progress: bool = True,
    scan_epochs: bool | None = None,
    nonfinite_rows: str = "skip",
    outliers: str = "warn",
    outlier_z: float | None = 1e6,
    checkpoint: str | os.PathLike | None = None,
    every: int = 1,
    compiler_options: dict | None = None,
):
    """Train ``model`` by minibatch gradient descent on ``loss_fn``.

    Args:
        key: Typed PRNG key; the result is a deterministic function of it.
        model: An equinox module (any pytree whose trainable leaves are float arrays).
        loss_fn: ``loss_fn(model, batch, key) -> scalar``, the mean loss over the rows
            of ``batch`` (a pytree like ``data`` with ``batch_size`` rows).
        data: A pytree of arrays sharing a leading row axis, or a :class:`ChunkSource`
            for data larger than memory.
        optimizer: An optax transformation; default :func:`default_optimizer`.
        batch_size: Rows per optimiser step; rounded up to a multiple of the number of
            devices so that the batch shards evenly. Each epoch reshuffles, so the
            ``n_train % batch_size`` rows left out of one epoch differ between epochs.
        max_epochs: Maximum number of passes over the training rows.
        val_fraction: Fraction of in-memory ``data`` held out for validation and early
            stopping (ignored when ``validation_data`` is given). 0 disables both.
        validation_data: Explicit validation pytree, with the structure of ``data``
            (required for a chunk source unless ``val_fraction == 0``).
        patience: Epochs without improvement of the validation loss before stopping.
        min_delta: Minimum decrease of the validation loss that counts as improvement.
        restore_best: Return the best-validation model rather than the last one.
        chunk_size: Rows read at once from a chunk source.
        devices: Devices to shard batches over (default: all of ``jax.devices()``).
        progress: Show a tqdm progress bar with train/validation losses.
        scan_epochs: Run each epoch as one compiled ``lax.scan`` over minibatches
            (True) or as one compiled call per minibatch (False); both give the same
            result. Default: scan, except for models with convolutions on CPU, where
            XLA:CPU runs convolutions inside loops ~20x slower than at top level
            (measured with jax 0.10.2; a per-step call costs ~0.1 ms of dispatch).
        nonfinite_rows: Chunk sources only: ``"skip"`` leaves rows with NaN/inf out of
            the minibatches (counted in :attr:`History.n_nonfinite_rows`, with a
            warning); ``"raise"`` makes them an error. In-memory data with such rows
            always raises (drop them explicitly).
        outliers: What to do with rows whose robust z-score exceeds ``outlier_z``
            (:func:`screen_rows`): ``"warn"`` (train on them; counted and warned),
            ``"skip"`` (leave them out; counted and warned) or ``"raise"``.
        outlier_z: Outlier threshold; ``None`` disables the outlier screen.
        checkpoint: Path of a checkpoint file. If it exists, training resumes from it
            (it must come from a run with the same key, data size and settings);
            the state is saved there every ``every`` epochs and at the end.
        every: Epochs between checkpoints.
        compiler_options: XLA options for compiling the epoch's scan (``jax.jit``'s
            ``compiler_options``; e.g. ``{"xla_cpu_use_fusion_emitters": False}``
            shortens the first fit of a small bias-free MLP on the CPU by ~7 %
            and lengthens an NSF flow's; RESULTS.md, eighth session). ``None``:
            XLA's defaults. They change how the program is compiled, not what it
            computes (to float rounding).

    Returns:
        ``(model, history)``: the trained model and a :class:`History`. The model's
        trained arrays live on one device (this process's first of ``devices``), not
        replicated over the mesh, so later jitted calls on it run on one device.

    Raises:
        TypeError: For a legacy or missing key, or a hyperparameter of the wrong type
            (e.g. ``batch_size="64"``).
        ValueError: For empty data, mismatched row counts or validation structure,
            non-finite rows in in-memory data, too little data, bad hyperparameters or
            a checkpoint of another run; the message names the argument.
        FloatingPointError: If every optimiser step of an epoch had a non-finite loss,
            or the final model is not finite (``fit`` never returns a NaN model).
        serialise.ChecksumError: If ``checkpoint`` is corrupt.
    """
    check_key(key)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    max_epochs = check_int(max_epochs, "max_epochs", minimum=1)
    patience = check_int(patience, "patience", minimum=1)
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    every = check_int(every, "every", minimum=1)
    program = _epoch_program(_check_compiler_options(compiler_options))
    val_fraction = check_real(val_fraction, "val_fraction")
    min_delta = check_real(min_delta, "min_delta")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"`val_fraction` must lie in [0, 1); got {val_fraction}.")
    nonfinite_rows = check_choice(nonfinite_rows, "nonfinite_rows", ("skip", "raise"))
    outliers = check_choice(outliers, "outliers", ("warn", "skip", "raise"))
    if outlier_z is not None and not check_real(outlier_z, "outlier_z") > 0:
        raise ValueError(f"`outlier_z` must be > 0 or None; got {outlier_z}.")
    if checkpoint is not None:
        serialise._check_writable(checkpoint, "checkpoint")

    n_dev, batch_shard, replicated = _make_sharding(devices)
    batch_size = int(math.ceil(batch_size / n_dev) * n_dev)
    optimizer = default_optimizer() if optimizer is None else optimizer
    k_split, k_train = jax.random.split(key)

    streaming = isinstance(data, ChunkSource) and not isinstance(data, dict | tuple)
    n_outlier_rows = 0
    if streaming:
        n_train = check_int(data.n_rows, "data.n_rows", minimum=0)
        if n_train == 0:
            raise ValueError("`data` is empty: the chunk source has n_rows = 0.")
        if validation_data is None and val_fraction > 0:
            raise ValueError(
                "`validation_data` is required when `data` is a chunk source (or pass "
                "val_fraction=0 to train without early stopping)."
            )
        train_data = None
    else:
        n_rows = _leading_size(data, "data")
        if n_rows == 0:
            raise ValueError("`data` is empty: its arrays have 0 rows.")
        _check_finite_rows(data, "data")
        if validation_data is not None:
            _check_same_structure(validation_data, data, "validation_data", "data")
        data = _screen_outliers(data, n_rows, outliers, outlier_z)
        n_outlier_rows = data[1]
        data = data[0]
        n_rows = _leading_size(data, "data")
        if validation_data is None and val_fraction > 0:
            perm = np.asarray(jax.random.permutation(k_split, n_rows))
            n_val = int(round(val_fraction * n_rows))
            if n_val < 1 or n_rows - n_val < 1:
                raise ValueError(
                    f"`data` has {n_rows} rows: too few for "
                    f"val_fraction={val_fraction}."
                )
            val_idx, train_idx = perm[:n_val], np.sort(perm[n_val:])
            validation_data = jax.tree.map(lambda a: np.asarray(a)[val_idx], data)
        else:
            train_idx = None
        n_train = n_rows if train_idx is None else train_idx.size
        if jax.process_count() > 1:  # each process keeps its own block of rows
            train_data = _shard_rows(data, batch_shard, train_idx)
        else:
            if train_idx is not None:
                data = jax.tree.map(lambda a: np.asarray(a)[train_idx], data)
            train_data = jax.device_put(_canonical(data), replicated)

    val_chunk = n_val = 0
    if validation_data is not None:
        n_val = _leading_size(validation_data, "validation_data")
        if n_val == 0:
            raise ValueError("`validation_data` is empty: its arrays have 0 rows.")
        _check_finite_rows(validation_data, "validation_data")
        val_chunk = _val_chunk(n_val, batch_size, n_dev)
        validation_data = jax.device_put(_canonical(validation_data), replicated)

    if n_train < batch_size:
        batch_size = max(n_dev, n_train - n_train % n_dev)
        if n_train < n_dev:
            raise ValueError(
                f"`data` has {n_train} training rows; need at least {n_dev} (devices)."
            )

    if scan_epochs is None:
        platform = (jax.devices() if devices is None else list(devices))[0].platform
        scan_epochs = not (platform == "cpu" and _has_conv(model))
    params, static = eqx.partition(model, trainable_filter(model))
    params = jax.device_put(params, replicated)
    opt_state = jax.device_put(_init_optimizer(optimizer, params), replicated)

    best_params, best_val, best_epoch, wait = params, np.inf, 0, 0
    train_hist, val_hist, n_nonfinite, stopped = [], [], 0, False
    n_bad_rows, start = 0, 0
    config = {
        "key": key_fingerprint(key),
        "streaming": streaming,
        "n_train": n_train,
        "n_val": n_val,
        "batch_size": batch_size,
        "val_fraction": val_fraction,
        "patience": patience,
        "min_delta": min_delta,
        "chunk_size": chunk_size if streaming else None,
        "n_devices": n_dev,
    }
    frozen = eqx.filter(static, eqx.is_array)
    if checkpoint is not None and os.path.exists(checkpoint):
        like = {"params": params, "opt": opt_state, "best": params, "frozen": frozen}
        state, arrays = load_checkpoint(checkpoint, like, config)
        if not trees_equal(arrays["frozen"], frozen):
            raise ValueError(
                f"`checkpoint` {os.fspath(checkpoint)!r} holds other frozen leaves "
                "(fitted standardisers) than `model`: was it trained on other data?"
            )
        params = jax.device_put(arrays["params"], replicated)
        opt_state = jax.device_put(arrays["opt"], replicated)
        best_params = jax.device_put(arrays["best"], replicated)
        start, wait, best_epoch = state["epoch"], state["wait"], state["best_epoch"]
        best_val, stopped = float(state["best_val"]), bool(state["stopped"])
        train_hist = [float(v) for v in state["train_loss"]]
        val_hist = [float(v) for v in state["val_loss"]]
        n_nonfinite = int(state["n_nonfinite_steps"])
        n_bad_rows = int(state["n_nonfinite_rows"])
        n_outlier_rows = max(n_outlier_rows, int(state["n_outlier_rows"]))
        if start > max_epochs:
            raise ValueError(
                f"`checkpoint` {os.fspath(checkpoint)!r} holds {start} completed "
                f"epochs, more than `max_epochs` = {max_epochs}."
            )

    def save(epoch_done: int) -> None:
        nonlocal saved_at
        saved_at = epoch_done
        arrays = {
            "params": params, "opt": opt_state, "best": best_params, "frozen": frozen
        }  # fmt: skip
        state = {
            "config": config,
            "epoch": epoch_done,
            "wait": wait,
            "best_epoch": best_epoch,
            "best_val": float(best_val),
            "stopped": stopped,
            "train_loss": train_hist,
            "val_loss": val_hist,
            "n_nonfinite_steps": n_nonfinite,
            "n_nonfinite_rows": n_bad_rows,
            "n_outlier_rows": n_outlier_rows,
        }
        if jax.process_index() == 0:  # one writer under jax.distributed
            save_checkpoint(checkpoint, arrays, state)
        if jax.process_count() > 1:  # the file exists on return, for every process
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(f"jaxdm.fit.checkpoint.{epoch_done}")

    saved_at = start
    warned = n_bad_rows > 0 or (streaming and n_outlier_rows > 0)
    bar = _progress(max_epochs, enabled=progress, initial=start)
    epoch = start
    done = stopped or (validation_data is not None and wait >= patience)
    while epoch < max_epochs and not done:
        losses = []
        if streaming:
            k_epoch, k_val = jax.random.split(jax.random.fold_in(k_train, epoch))
            ep_bad = ep_out = 0
            for c, chunk in enumerate(_iter_chunks(data, k_epoch, chunk_size)):
                chunk = jax.tree.map(np.asarray, chunk)
                n_chunk = _leading_size(chunk, "data")
                if validation_data is not None and c == 0:
                    _check_same_structure(
                        validation_data, chunk, "validation_data", "data"
                    )
                screen = screen_rows(chunk, outlier_z=outlier_z)
                n_bad, n_out = int(screen.nonfinite.sum()), int(screen.outlier.sum())
                if n_bad and nonfinite_rows == "raise":
                    raise ValueError(
                        f"`data` has rows with NaN/inf ({n_bad} in a chunk of "
                        f"{n_chunk}); pass nonfinite_rows='skip' to train without "
                        "them."
                    )
                if n_out and outliers == "raise":
                    raise ValueError(_outlier_message(n_out, n_chunk, outlier_z))
                ep_bad, ep_out = ep_bad + n_bad, ep_out + n_out
                keep = ~screen.nonfinite
                if outliers == "skip":
                    keep &= ~screen.outlier
                nb = int(keep.sum()) // batch_size
                if nb == 0:
                    continue
                # Shuffle all rows of the chunk (one compiled permutation per chunk
                # size), then drop the screened-out ones: clean chunks train exactly
                # as without the screen.
                perm = np.asarray(
                    jax.random.permutation(jax.random.fold_in(k_epoch, c), n_chunk)
                )
                perm = perm[keep[perm]][: nb * batch_size]
                idx = jax.device_put(perm.reshape(nb, batch_size))
                chunk = jax.device_put(_canonical(chunk), replicated)
                k_steps = jax.random.fold_in(k_epoch, 1_000_000 + c)
                params, opt_state, lc = _run_epoch(
                    params, static, opt_state, chunk, idx, k_steps, loss_fn, optimizer,
                    batch_shard, scan=scan_epochs, program=program,
                )  # fmt: skip
                losses.append(lc)
            n_bad_rows = max(n_bad_rows, ep_bad)
            n_outlier_rows = max(n_outlier_rows, ep_out)
            if not warned and (ep_bad or ep_out):
                warned = True
                if ep_bad:
                    _report_rows(
                        ep_bad, n_train, "NaN/inf values",
                        "they are left out of training (History.n_nonfinite_rows)",
                    )  # fmt: skip
                if ep_out:
                    _report_rows(
                        ep_out, n_train, f"robust |z| > {outlier_z:g}",
                        "they are left out of training (outliers='skip')"
                        if outliers == "skip"
                        else "training uses them (outliers='skip' leaves them out, "
                        "'raise' refuses them)",
                    )  # fmt: skip
            if not losses:
                raise ValueError(
                    f"`data` gave no complete minibatch in epoch {epoch}: "
                    f"{n_train - ep_bad} finite rows of {n_train}, chunks of at most "
                    f"{chunk_size} rows (`chunk_size`), minibatches of {batch_size} "
                    "(`batch_size`)."
                )
        else:
            plan = _Shuffle(n_train, n_train // batch_size, batch_size)
            params, opt_state, lc, k_val = _run_epoch(
                params, static, opt_state, train_data, plan, k_train, loss_fn,
                optimizer, batch_shard, scan=scan_epochs, epoch=epoch, program=program,
            )  # fmt: skip
            losses.append(lc)
        step_losses = np.concatenate([np.asarray(x) for x in losses])
        finite = np.isfinite(step_losses)
        n_nonfinite += int((~finite).sum())
        if not finite.any():
            raise FloatingPointError(
                f"every one of the {step_losses.size} optimiser steps of epoch {epoch} "
                "had a non-finite loss: training diverged (lower the learning rate) "
                "or `loss_fn` returns NaN/inf for this data. No model is returned."
            )
        train_loss = float(step_losses[finite].mean())
        train_hist.append(train_loss)

        if validation_data is None:
            val_hist.append(np.nan)
            best_params, best_epoch = params, epoch
        else:
            val = float(
                _eval_loss(
                    params, static, validation_data, k_val, loss_fn, val_chunk,
                    batch_shard, scan=scan_epochs,
                )
            )  # fmt: skip
            val_hist.append(val)
            if np.isfinite(val) and val < best_val - min_delta:
                best_params, best_val, best_epoch, wait = params, val, epoch, 0
            else:
                wait += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(train=f"{train_loss:.4g}", val=f"{val_hist[-1]:.4g}")
        epoch += 1
        if validation_data is not None and wait >= patience:
            stopped = epoch < max_epochs
            done = True
        if checkpoint is not None and (done or epoch % every == 0):
            save(epoch)
    if bar is not None:
        bar.close()
    if checkpoint is not None and saved_at != epoch:
        save(epoch)

    final = best_params if restore_best else params
    if not all_finite(final):
        raise FloatingPointError(
            "the trained model has NaN/inf parameters (training diverged); no model is "
            "returned. Lower the learning rate or check `loss_fn`."
        )
    history = History(
        train_loss=np.asarray(train_hist),
        val_loss=np.asarray(val_hist),
        best_epoch=best_epoch,
        stopped_early=stopped,
        n_nonfinite_steps=n_nonfinite,
        n_nonfinite_rows=n_bad_rows,
        n_outlier_rows=n_outlier_rows,
    )
    return eqx.combine(_on_one_device(final), static), history


def _on_one_device(tree):
    """Each array of ``tree`` as its copy on this process's first device.

    ``fit`` trains on replicated parameters (one copy per device, across processes
    under ``jax.distributed``). Returned that way, every later jitted call on the
    model would run on the whole mesh: a check that fails inside it
    (``eqx.error_if``) then leaves a collective half-joined, and XLA:CPU aborts the
    interpreter after a 40 s rendezvous timeout (jax 0.10.2; seen on a CPU split into
    2 devices), and under ``jax.distributed`` each evaluation would be a
    cross-process computation. The replicas are equal, so one local copy is exact.
    """

    def local(a):
        if isinstance(a, jax.Array) and len(a.sharding.device_set) > 1:
            return a.addressable_data(0)
        return a

    return jax.tree.map(local, tree)


def _iter_chunks(data, key, chunk_size: int):
    """A chunk source's chunks; under ``jax.distributed`` each process reads a part.

    With several processes and a source that offers ``iter_chunk_blocks`` (the
    ``jaxdm.store`` banks), every process reads only its block of each chunk from disk
    and the blocks are gathered (``process_allgather``, built on
    ``jax.make_array_from_process_local_data``), so each process holds the same chunk
    as a single process would, in the same order: the screen, the shuffle and the
    minibatches are unchanged, and the disk reads are split over the processes.
    """
    count = jax.process_count()
    if count == 1 or not hasattr(data, "iter_chunk_blocks"):
        yield from data.iter_chunks(key, chunk_size)
        return
    from jax.experimental import multihost_utils

    for block, n in data.iter_chunk_blocks(key, chunk_size, jax.process_index(), count):
        m = -(-n // count)  # blocks padded to one size for the gather
        padded = jax.tree.map(
            lambda a: np.concatenate(
                [a, np.zeros((m - a.shape[0], *a.shape[1:]), a.dtype)]
            ),
            block,
        )
        full = multihost_utils.process_allgather(padded, tiled=True)
        base, extra = divmod(n, count)
        keep = np.concatenate(
            [i * m + np.arange(base + (i < extra)) for i in range(count)]
        )
        yield jax.tree.map(lambda a: np.asarray(a)[keep], full)


def _progress(total: int, *, enabled: bool, initial: int = 0):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="fit", unit="epoch", leave=False)
