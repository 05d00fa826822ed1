"""Type checks of Python-level hyperparameters (ints, reals, choices) at the boundary.

Unlike ``jaxdm._checks`` (array values, traced or not), these guard static arguments
such as ``batch_size`` or ``chunk_rows``: a string or float where an int goes is a
TypeError that names the public argument, not a failed comparison deep inside.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["check_choice", "check_int", "check_real"]


def check_int(value, name: str, *, minimum: int | None = None) -> int:
    """Return ``value`` as an int; TypeError unless it is an integer (not a bool).

    Args:
        value: The argument (``int`` or a NumPy integer; ``"64"``, ``64.0`` and
            ``True`` are refused).
        name: The public argument name used in messages.
        minimum: Smallest accepted value (ValueError below it).

    Raises:
        TypeError: For a non-integer.
        ValueError: For a value below ``minimum``.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"`{name}` must be an int; got {value!r} ({type(value).__name__})."
        )
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}; got {value}.")
    return value


def check_real(value, name: str) -> float:
    """Return ``value`` as a float; TypeError unless it is a real number (not a bool).

    Raises:
        TypeError: For a string, a bool or another non-real object.
        ValueError: For NaN.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{name}` must be a real number; got {value!r} ({type(value).__name__})."
        )
    value = float(value)
    if np.isnan(value):
        raise ValueError(f"`{name}` must not be NaN.")
    return value


def check_choice(value, name: str, choices: tuple[str, ...]) -> str:
    """Raise ValueError unless ``value`` is one of ``choices``; return it."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}; got {value!r}.")
    return value
