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
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, runtime_checkable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ._checks import check_key

__all__ = [
    "ChunkSource",
    "History",
    "default_optimizer",
    "fit",
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
    """

    train_loss: np.ndarray
    val_loss: np.ndarray
    best_epoch: int
    stopped_early: bool
    n_nonfinite_steps: int


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


def _leading_size(data, name: str) -> int:
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError(f"`{name}` holds no arrays.")
    sizes = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in leaves}
    if None in sizes or len(sizes) != 1:
        shapes = [np.shape(leaf) for leaf in leaves]
        raise ValueError(
            f"every array in `{name}` must share the same leading (row) axis; "
            f"got shapes {shapes}."
        )
    return sizes.pop()


def _check_finite_rows(data, name: str) -> None:
    bad = None
    for leaf in jax.tree.leaves(data):
        arr = np.asarray(leaf)
        if not np.issubdtype(arr.dtype, np.floating):
            continue
        row_bad = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
        bad = row_bad if bad is None else bad | row_bad
    if bad is not None and bad.any():
        idx = np.flatnonzero(bad)
        raise ValueError(
            f"`{name}` has {idx.size} rows with NaN/inf values (first rows: "
            f"{idx[:5].tolist()}); remove them explicitly (e.g. "
            "jaxdm.inference.drop_nonfinite) rather than training on them."
        )


def _make_sharding(devices):
    devices = jax.devices() if devices is None else list(devices)
    mesh = Mesh(np.asarray(devices), ("batch",))
    return (
        len(devices),
        NamedSharding(mesh, PartitionSpec("batch")),
        NamedSharding(mesh, PartitionSpec()),
    )


def _sgd_step(params, static, opt_state, data, rows, key, loss_fn, optimizer, shard):
    """One optimiser step on the rows ``rows`` of ``data``."""
    batch = jax.tree.map(lambda a: a[rows], data)
    batch = jax.lax.with_sharding_constraint(batch, shard)

    def objective(p):
        return loss_fn(eqx.combine(p, static), batch, key)

    loss, grads = jax.value_and_grad(objective)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return eqx.apply_updates(params, updates), opt_state, loss


@eqx.filter_jit
def _train_epoch(params, static, opt_state, data, idx, key, loss_fn, optimizer, shard):
    """One epoch: a scan over minibatch index rows ``idx`` (n_batches, batch_size)."""

    def step(carry, inputs):
        rows, k = inputs
        params, opt_state, loss = _sgd_step(
            *carry[:1], static, carry[1], data, rows, k, loss_fn, optimizer, shard
        )
        return (params, opt_state), loss

    keys = jax.random.split(key, idx.shape[0])
    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), (idx, keys))
    return params, opt_state, losses


_train_step = eqx.filter_jit(_sgd_step)


def _run_epoch(params, static, opt_state, data, idx, key, loss_fn, optimizer, shard, *,
               scan: bool):  # fmt: skip
    """An epoch as one compiled scan, or as one compiled call per step (same keys)."""
    if scan:
        return _train_epoch(
            params, static, opt_state, data, idx, key, loss_fn, optimizer, shard
        )
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
        validation_data: Explicit validation pytree (required for a chunk source unless
            ``val_fraction == 0``).
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

    Returns:
        ``(model, history)``: the trained model and a :class:`History`.

    Raises:
        TypeError: For a legacy or missing key.
        ValueError: For mismatched row counts, non-finite rows, too little data, or bad
            hyperparameters; the message names the argument.
    """
    check_key(key)
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1; got {batch_size}.")
    if max_epochs < 1:
        raise ValueError(f"`max_epochs` must be >= 1; got {max_epochs}.")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"`val_fraction` must lie in [0, 1); got {val_fraction}.")
    if patience < 1:
        raise ValueError(f"`patience` must be >= 1; got {patience}.")

    n_dev, batch_shard, replicated = _make_sharding(devices)
    batch_size = int(math.ceil(batch_size / n_dev) * n_dev)
    optimizer = default_optimizer() if optimizer is None else optimizer
    k_split, k_train = jax.random.split(key)

    streaming = isinstance(data, ChunkSource) and not isinstance(data, dict | tuple)
    if streaming:
        n_train = int(data.n_rows)
        if validation_data is None and val_fraction > 0:
            raise ValueError(
                "`validation_data` is required when `data` is a chunk source (or pass "
                "val_fraction=0 to train without early stopping)."
            )
        train_data = None
    else:
        n_rows = _leading_size(data, "data")
        _check_finite_rows(data, "data")
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
            train_data = jax.tree.map(lambda a: np.asarray(a)[train_idx], data)
        else:
            train_data = data
        n_train = _leading_size(train_data, "data")
        train_data = jax.device_put(jax.tree.map(jnp.asarray, train_data), replicated)

    val_chunk = 0
    if validation_data is not None:
        n_val = _leading_size(validation_data, "validation_data")
        _check_finite_rows(validation_data, "validation_data")
        val_chunk = _val_chunk(n_val, batch_size, n_dev)
        validation_data = jax.device_put(
            jax.tree.map(jnp.asarray, validation_data), replicated
        )

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
    opt_state = jax.device_put(optimizer.init(params), replicated)

    best_params, best_val, best_epoch, wait = params, np.inf, 0, 0
    train_hist, val_hist, n_nonfinite, stopped = [], [], 0, False
    bar = _progress(max_epochs, enabled=progress)
    for epoch in range(max_epochs):
        k_epoch, k_val = jax.random.split(jax.random.fold_in(k_train, epoch))
        losses = []
        if streaming:
            for c, chunk in enumerate(data.iter_chunks(k_epoch, chunk_size)):
                chunk = jax.device_put(jax.tree.map(jnp.asarray, chunk), replicated)
                n_chunk = _leading_size(chunk, "chunk")
                nb = n_chunk // batch_size
                if nb == 0:
                    continue
                idx = jax.random.permutation(jax.random.fold_in(k_epoch, c), n_chunk)
                idx = idx[: nb * batch_size].reshape(nb, batch_size)
                k_steps = jax.random.fold_in(k_epoch, 1_000_000 + c)
                params, opt_state, lc = _run_epoch(
                    params, static, opt_state, chunk, idx, k_steps, loss_fn, optimizer,
                    batch_shard, scan=scan_epochs,
                )  # fmt: skip
                losses.append(lc)
        else:
            nb = n_train // batch_size
            k_perm, k_steps = jax.random.split(k_epoch)
            idx = jax.random.permutation(k_perm, n_train)[: nb * batch_size]
            params, opt_state, lc = _run_epoch(
                params, static, opt_state, train_data, idx.reshape(nb, batch_size),
                k_steps, loss_fn, optimizer, batch_shard, scan=scan_epochs,
            )  # fmt: skip
            losses.append(lc)
        step_losses = np.concatenate([np.asarray(x) for x in losses])
        finite = np.isfinite(step_losses)
        n_nonfinite += int((~finite).sum())
        train_loss = float(step_losses[finite].mean()) if finite.any() else np.nan
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
        if validation_data is not None and wait >= patience:
            stopped = epoch + 1 < max_epochs
            break
    if bar is not None:
        bar.close()

    final = best_params if restore_best else params
    history = History(
        train_loss=np.asarray(train_hist),
        val_loss=np.asarray(val_hist),
        best_epoch=best_epoch,
        stopped_early=stopped,
        n_nonfinite_steps=n_nonfinite,
    )
    return eqx.combine(final, static), history


def _progress(total: int, *, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="fit", unit="epoch", leave=False)
