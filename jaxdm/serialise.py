"""Save and load trained estimators: equinox leaves plus a JSON of hyperparameters.

File layout: one JSON header line (format tag, version, the factory's name and its
keyword arguments) followed by ``eqx.tree_serialise_leaves`` bytes. Loading rebuilds
the skeleton with the same factory and keyword arguments, then reads the leaves into it,
so a file can only be loaded into a model of exactly the saved structure.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax

__all__ = ["load", "read_header", "save"]

_FORMAT = "jaxdm-estimator"
_VERSION = 1


def save(path: str | os.PathLike, model, *, factory: str, hyperparams: dict) -> None:
    """Write ``model`` and the hyperparameters that rebuild its skeleton.

    Args:
        path: Destination file. Written to ``path + ".tmp"`` first and renamed, so an
            interrupted save never leaves a truncated file at ``path``.
        model: An equinox module.
        factory: Name of the factory that builds the skeleton (recorded for checks).
        hyperparams: JSON-serialisable keyword arguments of that factory.

    Raises:
        TypeError: If ``hyperparams`` is not JSON-serialisable.
    """
    try:
        header = json.dumps(
            {
                "format": _FORMAT,
                "version": _VERSION,
                "factory": factory,
                "hyperparams": hyperparams,
            }
        )
    except TypeError as err:
        raise TypeError(f"`hyperparams` must be JSON-serialisable: {err}") from err
    tmp = os.fspath(path) + ".tmp"
    with open(tmp, "wb") as f:
        f.write(header.encode() + b"\n")
        eqx.tree_serialise_leaves(f, model)
    os.replace(tmp, path)


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """Return the JSON header (format, version, factory, hyperparams) of a saved file.

    Raises:
        ValueError: If the file is not a jaxdm estimator file.
    """
    with open(path, "rb") as f:
        line = f.readline()
    try:
        header = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{os.fspath(path)!r} is not a jaxdm estimator file.") from err
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise ValueError(f"{os.fspath(path)!r} is not a jaxdm estimator file.")
    if header.get("version") != _VERSION:
        raise ValueError(
            f"{os.fspath(path)!r} has format version {header.get('version')}; "
            f"this jaxdm reads version {_VERSION}."
        )
    return header


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
        ValueError: If the file is not a jaxdm file, was saved by another factory, or
            its leaves do not fit the rebuilt skeleton.
    """
    header = read_header(path)
    if factory is not None and header["factory"] != factory:
        raise ValueError(
            f"{os.fspath(path)!r} holds a {header['factory']!r} model; "
            f"expected {factory!r}."
        )
    skeleton = build(jax.random.key(0), **header["hyperparams"])
    with open(path, "rb") as f:
        f.readline()
        try:
            return eqx.tree_deserialise_leaves(f, skeleton)
        except Exception as err:  # equinox raises several types for a mismatch
            raise ValueError(
                f"{os.fspath(path)!r} does not match the structure rebuilt from its "
                f"hyperparameters: {err}"
            ) from err
