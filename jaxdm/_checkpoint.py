"""Training checkpoints of :func:`jaxdm.train.fit`: atomic, checksummed, resumable.

A checkpoint is a ``jaxdm.serialise`` file (JSON header with a SHA-256 checksum, then
equinox leaves) of format ``jaxdm-checkpoint``: the header holds the run's settings
(for refusing a checkpoint of another run), the completed epochs, the early-stopping
state and the history; the leaves are the trainable parameters, the optimiser state,
the best parameters and the frozen leaves.
"""

from __future__ import annotations

import io
import os

import equinox as eqx
import jax
import numpy as np

from . import serialise

__all__ = [
    "all_finite",
    "key_fingerprint",
    "load_checkpoint",
    "save_checkpoint",
    "trees_equal",
]


_FORMAT = "jaxdm-checkpoint"
_VERSION = 1


def key_fingerprint(key) -> dict:
    return {
        "impl": str(jax.random.key_impl(key)),
        "data": np.asarray(jax.random.key_data(key)).ravel().tolist(),
    }


def save_checkpoint(path, arrays, state: dict) -> None:
    header = {"format": _FORMAT, "version": _VERSION, **state}
    serialise._write_checked(path, header, arrays, name="checkpoint")


def load_checkpoint(path, like, config: dict):
    """Read a checkpoint written by :func:`fit`; check it belongs to this run."""
    header, payload = serialise._read_checked(
        path,
        fmt=_FORMAT,
        versions=(_VERSION,),
        name="checkpoint",
        what="jaxdm training checkpoint",
    )
    saved = header["config"]
    diff = sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k))
    if diff:
        detail = "; ".join(
            f"{k}: checkpoint {saved.get(k)!r}, now {config.get(k)!r}"
            for k in diff
            if k != "key"
        )
        if "key" in diff:
            detail = "the `key` differs" + (f"; {detail}" if detail else "")
        raise ValueError(
            f"`checkpoint` {os.fspath(path)!r} was written by a different training "
            f"run ({detail}); pass the same arguments to resume, or another path."
        )
    try:
        arrays = eqx.tree_deserialise_leaves(io.BytesIO(payload), like)
    except Exception as err:  # equinox raises several types for a mismatch
        raise ValueError(
            f"`checkpoint` {os.fspath(path)!r} does not fit this model and optimiser "
            f"(different architecture or optimiser?): {err}"
        ) from err
    return header, arrays


def all_finite(tree) -> bool:
    return all(
        bool(np.all(np.isfinite(np.asarray(leaf))))
        for leaf in jax.tree.leaves(tree)
        if eqx.is_inexact_array(leaf)
    )


def trees_equal(a, b) -> bool:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(
        np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
        for x, y in zip(la, lb, strict=True)
    )
