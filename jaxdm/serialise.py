"""Save and load trained estimators: equinox leaves plus a JSON of hyperparameters.

File layout: one JSON header line (format tag, version, the factory's name, its keyword
arguments and a SHA-256 checksum) followed by ``eqx.tree_serialise_leaves`` bytes.
Loading verifies the checksum, rebuilds the skeleton with the same factory and keyword
arguments, then reads the leaves into it, so a file can only be loaded into a model of
exactly the saved structure, and a flipped or truncated byte is an error
(:class:`ChecksumError`), never a silently different model.

The checksum is ``sha256(canonical_header + newline + leaves)``, where the canonical
header is the header without its ``"sha256"`` entry, written as compact JSON with sorted
keys. Files of format version 1 (jaxdm before the checksum was added) have none: they
load with a ``UserWarning`` saying so; saving them again adds one.

Writes are atomic: the bytes go to ``path + ".tmp"``, are flushed to disk (``fsync``)
and renamed over ``path`` (``os.replace``), so an interrupted save never leaves a
truncated file. The same writer and reader serve the training checkpoints of
:func:`jaxdm.train.fit`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["ChecksumError", "load", "read_header", "save"]

_FORMAT = "jaxdm-estimator"
_VERSION = 2
_UNCHECKED_VERSIONS = (1,)  # written before checksums existed: load with a warning


class ChecksumError(ValueError):
    """A file's bytes do not match the checksum recorded when it was written."""


def _canonical(header: dict) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def _digest(header: dict, payload: bytes) -> str:
    return hashlib.sha256(_canonical(header) + b"\n" + payload).hexdigest()


def _check_writable(path, name: str) -> str:
    """Fail early, naming ``name``, if ``path`` cannot be written."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"`{name}` must be a file path (str or os.PathLike); got "
            f"{type(path).__name__}."
        )
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"`{name}` {path!r}: directory {directory!r} does not exist."
        )
    if os.path.isdir(path):
        raise IsADirectoryError(f"`{name}` {path!r} is a directory, not a file.")
    if not os.access(directory, os.W_OK):
        raise PermissionError(
            f"`{name}` {path!r}: directory {directory!r} is not writable."
        )
    return path


def _write_atomic(path, data: bytes, name: str) -> None:
    path = _check_writable(path, name)
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        if os.path.exists(tmp):
            os.remove(tmp)
        # OSError(errno, msg) picks the matching subclass (PermissionError, ...).
        raise OSError(
            err.errno, f"`{name}` {path!r} could not be written: {err.strerror}"
        ) from err


def _write_checked(path, header: dict, tree, *, name: str = "path") -> None:
    """Atomically write ``header`` (plus checksum) and the leaves of ``tree``."""
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, tree)
    payload = buf.getvalue()
    line = _canonical({**header, "sha256": _digest(header, payload)})
    _write_atomic(path, line + b"\n" + payload, name)


def _read_checked(
    path, *, fmt: str, versions: tuple[int, ...], name: str = "path", what: str
) -> tuple[dict, bytes]:
    """Read a file of format ``fmt``; verify its checksum; return (header, leaves)."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"`{name}` must be a file path (str or os.PathLike); got "
            f"{type(path).__name__}."
        )
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"`{name}` {path!r} does not exist.")
    if os.path.isdir(path):
        raise IsADirectoryError(f"`{name}` {path!r} is a directory, not a file.")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise OSError(
            err.errno, f"`{name}` {path!r} could not be read: {err.strerror}"
        ) from err
    line, _, payload = data.partition(b"\n")
    try:
        header = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        if fmt.encode() in line:  # ours, with a damaged header
            raise ChecksumError(
                f"`{name}` {path!r} is corrupt: its header line is not valid JSON "
                "(flipped or truncated bytes). Restore it from a copy."
            ) from err
        raise ValueError(
            f"`{name}` {path!r} is not a {what} (its header line is not JSON)."
        ) from err
    if not isinstance(header, dict) or header.get("format") != fmt:
        raise ValueError(f"`{name}` {path!r} is not a {what} (format tag).")
    version = header.get("version")
    if version not in versions and version not in _UNCHECKED_VERSIONS:
        raise ValueError(
            f"`{name}` {path!r} has format version {version}; this jaxdm reads "
            f"versions {sorted({*versions, *_UNCHECKED_VERSIONS})}."
        )
    digest = header.pop("sha256", None)
    if digest is None:
        if version not in _UNCHECKED_VERSIONS:
            raise ChecksumError(
                f"`{name}` {path!r} has lost its checksum (version {version} files "
                "carry one): the file is corrupt."
            )
        warnings.warn(
            f"`{name}` {path!r} was written without a checksum (format version "
            f"{version}); its integrity cannot be verified. Save it again to add one.",
            UserWarning,
            stacklevel=3,
        )
    elif _digest(header, payload) != digest:
        raise ChecksumError(
            f"`{name}` {path!r} is corrupt: its SHA-256 checksum does not match its "
            "contents (flipped or truncated bytes). Restore it from a copy."
        )
    return header, payload


def save(path: str | os.PathLike, model, *, factory: str, hyperparams: dict) -> None:
    """Write ``model`` and the hyperparameters that rebuild its skeleton.

    Args:
        path: Destination file. Written to ``path + ".tmp"`` first, flushed and
            renamed, so an interrupted save never leaves a truncated file at ``path``.
        model: An equinox module.
        factory: Name of the factory that builds the skeleton (recorded for checks).
        hyperparams: JSON-serialisable keyword arguments of that factory.

    Raises:
        TypeError: If ``hyperparams`` is not JSON-serialisable or ``path`` is not a
            path.
        FileNotFoundError: If the directory of ``path`` does not exist.
        PermissionError / OSError: If ``path`` cannot be written (message names it).
    """
    header = {
        "format": _FORMAT,
        "version": _VERSION,
        "factory": factory,
        "hyperparams": hyperparams,
    }
    try:
        _canonical(header)
    except TypeError as err:
        raise TypeError(f"`hyperparams` must be JSON-serialisable: {err}") from err
    _write_checked(path, header, model, name="path")


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """Return the JSON header (format, version, factory, hyperparams) of a saved file.

    The checksum of the whole file is verified first.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is not a jaxdm estimator file.
        ChecksumError: If its bytes do not match its checksum.
    """
    header, _ = _read_checked(
        path, fmt=_FORMAT, versions=(_VERSION,), what="jaxdm estimator file"
    )
    return header


def _deserialise_leaf(f, like):
    """Read one leaf; boolean leaves (MADE masks) accept 0/1 floats from old files.

    Estimators saved before the masks became boolean (so that no optimiser can move
    them) stored them as float 0/1; they are read back as exact booleans.
    """
    if isinstance(like, jax.Array | np.ndarray) and like.dtype == np.bool_:
        stored = np.load(f)
        if stored.dtype != np.bool_:
            if not np.all((stored == 0) | (stored == 1)):
                raise ValueError("a boolean leaf (mask) holds values other than 0/1")
            stored = stored.astype(bool)
        return jnp.asarray(stored)
    return eqx.default_deserialise_filter_spec(f, like)


def load(
    path: str | os.PathLike,
    build: Callable[..., Any],
    *,
    factory: str | None = None,
):
    """Load a model saved with :func:`save`.

    Args:
        path: File written by :func:`save`.
        build: Callable ``build(key, **hyperparams)`` that returns a skeleton of the
            saved structure (usually the estimator's ``make_*`` factory).
        factory: If given, the factory name the file must have been saved with.

    Returns:
        The model with the saved leaves.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ChecksumError: If the file's bytes do not match its checksum (corruption).
        ValueError: If the file is not a jaxdm file, was saved by another factory, or
            its leaves do not fit the rebuilt skeleton.

    Warns:
        UserWarning: For a file of format version 1 (no checksum to verify).
    """
    header, payload = _read_checked(
        path, fmt=_FORMAT, versions=(_VERSION,), what="jaxdm estimator file"
    )
    path = os.fspath(path)
    if factory is not None and header["factory"] != factory:
        raise ValueError(
            f"`path` {path!r} holds a {header['factory']!r} model; "
            f"expected {factory!r}."
        )
    skeleton = build(jax.random.key(0), **header["hyperparams"])
    try:
        return eqx.tree_deserialise_leaves(
            io.BytesIO(payload), skeleton, filter_spec=_deserialise_leaf
        )
    except Exception as err:  # equinox raises several types for a mismatch
        raise ValueError(
            f"`path` {path!r} does not match the structure rebuilt from its "
            f"hyperparameters: {err}"
        ) from err
