"""Input validation at the API boundary: clear errors naming the argument."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def check_key(key, name: str = "key", *, batch: bool = False) -> None:
    """Raise TypeError unless ``key`` is a new-style typed JAX PRNG key.

    Legacy ``jax.random.PRNGKey`` arrays (uint32 of shape (2,)) are rejected, as in
    flowjax, because mixing the two silently changes random streams. By default one
    key (shape ``()``) is expected: a batch of keys, such as the output of
    ``jax.random.split(key, n)``, is rejected (pass one key, or ``jax.vmap`` over the
    batch). The shape is static, so this check also runs under ``jit``.

    Args:
        key: The object to check.
        name: The argument name used in the error message.
        batch: Accept a key array of any shape (for functions that take a batch of
            keys).

    Raises:
        TypeError: If ``key`` is missing, a legacy uint32 key, or not a key at all.
        ValueError: If ``batch`` is False and ``key`` is a batch of keys (shape not
            ``()``).
    """
    if key is None:
        raise TypeError(f"`{name}` is required: pass a key from jax.random.key(seed).")
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if not batch and key.shape != ():
            raise ValueError(
                f"`{name}` must be one PRNG key (shape ()); got a batch of keys of "
                f"shape {tuple(key.shape)}. Pass a single key (e.g. keys[0]) or "
                "jax.vmap the function over the batch."
            )
        return
    if hasattr(key, "dtype") and key.dtype == jnp.uint32:
        raise TypeError(
            f"`{name}` is a legacy uint32 PRNGKey (shape {tuple(key.shape)}); "
            "expected a typed key from jax.random.key(seed). "
            "Convert with jax.random.wrap_key_data(key)."
        )
    raise TypeError(
        f"`{name}` must be a typed PRNG key from jax.random.key(seed); "
        f"got {type(key).__name__}."
    )


def _is_traced(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def check_array(
    x,
    name: str,
    *,
    shape: Sequence[int | None] | None = None,
    ndim: int | None = None,
    finite: bool = True,
):
    """Convert ``x`` to a floating JAX array and validate its shape and values.

    Traced values skip the value (finiteness) check, which cannot run under ``jit``.

    Args:
        x: Array-like input.
        name: The argument name used in error messages.
        shape: Expected shape; ``None`` entries match any size.
        ndim: Expected number of dimensions (when ``shape`` is not given).
        finite: Whether to require all entries to be finite (concrete inputs only).

    Returns:
        ``x`` as a JAX array with a floating dtype.

    Raises:
        ValueError: If the shape, rank or finiteness check fails.
    """
    arr = jnp.asarray(x)
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    if shape is not None:
        ok = arr.ndim == len(shape) and all(
            s is None or s == a for s, a in zip(shape, arr.shape, strict=False)
        )
        if not ok:
            want = ", ".join("*" if s is None else str(s) for s in shape)
            want = f"({want},)" if len(shape) == 1 else f"({want})"
            raise ValueError(f"`{name}` must have shape {want}; got {arr.shape}.")
    elif ndim is not None and arr.ndim != ndim:
        raise ValueError(
            f"`{name}` must have {ndim} dimensions; got shape {arr.shape}."
        )
    if finite and not _is_traced(arr):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(np.asarray(arr))))
        if bad:
            raise ValueError(f"`{name}` has {bad} non-finite entries (NaN or inf).")
    return arr


def check_positive(value, name: str, *, allow_zero: bool = False) -> None:
    """Raise ValueError unless a concrete scalar/array is (strictly) positive.

    Traced inputs are not checked (the caller documents NaN semantics instead).

    Args:
        value: Scalar or array to check.
        name: Argument name for the message.
        allow_zero: Accept zero as well.

    Raises:
        ValueError: If any entry is negative (or zero when not allowed) or non-finite.
    """
    if _is_traced(value):
        return
    arr = np.asarray(value)
    bad = ~np.isfinite(arr) | ((arr < 0) if allow_zero else (arr <= 0))
    if np.any(bad):
        rel = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be finite and {rel}; got {value}.")


def check_in_range(value, name: str, low: float, high: float, *, closed: str = "both"):
    """Raise ValueError unless a concrete value lies in the interval [low, high].

    Args:
        value: Scalar or array.
        name: Argument name for the message.
        low: Lower bound.
        high: Upper bound.
        closed: Which ends are closed: "both", "left", "right" or "neither".

    Raises:
        ValueError: If any entry is outside the interval or non-finite.
    """
    if _is_traced(value):
        return
    arr = np.asarray(value)
    lo_ok = arr >= low if closed in ("both", "left") else arr > low
    hi_ok = arr <= high if closed in ("both", "right") else arr < high
    if not np.all(np.isfinite(arr) & lo_ok & hi_ok):
        lb = "[" if closed in ("both", "left") else "("
        rb = "]" if closed in ("both", "right") else ")"
        raise ValueError(f"`{name}` must lie in {lb}{low}, {high}{rb}; got {value}.")


# ---------------------------------------------------------------------------
# Value guards that also run inside traced code.
#
# The ``check_*`` functions above skip traced values. The ``guard_*`` functions below
# return their input and must be used downstream (``x = guard_positive(x, "x")``): for
# concrete inputs they raise ValueError at once; for traced inputs they attach
# ``equinox.error_if``, which raises ``equinox.EquinoxRuntimeError`` with the same
# message when the compiled program runs (under vmap: if any row is bad). The data
# dependency on the returned value is what keeps XLA from removing the check.
# Inside a public function decorated with ``jaxdm._poison.poison_policy`` they
# instead record the condition and return ``x`` with bad entries replaced by a safe
# value; the function's outputs are then poisoned (NaN, -1, False) where it holds.


def _guard(x, bad, message: str, safe=None):
    """Check ``bad``: raise eagerly; traced, record it (poison) or attach error_if.

    ``safe``: an in-range value that replaces the bad entries of ``x`` when a
    poison-policy scope takes the condition (``jaxdm._poison``), so that downstream
    code never runs on the bad value; ``None`` keeps ``x`` as is.
    """
    if _is_traced(x) or _is_traced(bad):
        from . import _poison

        if _poison.record(bad):
            if safe is None:
                return x
            return jnp.where(bad, jnp.asarray(safe, jnp.result_type(x)), x)
        import equinox as eqx

        return eqx.error_if(x, bad, message)
    if np.any(np.asarray(bad)):
        raise ValueError(message)
    return x


def _inside(low: float, high: float) -> float:
    """A point inside [low, high] (safe fill of an interval check)."""
    if np.isfinite(low) and np.isfinite(high):
        return 0.5 * (low + high)
    if np.isfinite(low):
        return low + 1.0
    if np.isfinite(high):
        return high - 1.0
    return 0.0


def _describe(x) -> str:
    if _is_traced(x):
        return "a traced value"
    arr = np.asarray(x)
    return str(arr) if arr.size <= 8 else f"an array of shape {arr.shape}"


def guard_finite(x, name: str):
    """Return ``x``; error (eagerly or under ``jit``) if any entry is NaN or inf.

    Args:
        x: Array-like (a JAX array is returned unchanged when valid).
        name: The public argument name used in the message.

    Returns:
        ``x`` as a JAX array, carrying the check when traced.

    Raises:
        ValueError: For concrete input with a non-finite entry.
        equinox.EquinoxRuntimeError: At run time of a compiled program, likewise.
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        return x
    return _guard(
        x, ~jnp.isfinite(x), f"`{name}` must be finite; got {_describe(x)}.", safe=0.0
    )


def guard_positive(x, name: str, *, allow_zero: bool = False):
    """Return ``x``; error (eagerly or under ``jit``) unless finite and > 0 (>= 0).

    Args:
        x: Array-like.
        name: The public argument name used in the message.
        allow_zero: Accept zero as well.

    Returns:
        ``x`` as a JAX array, carrying the check when traced.

    Raises:
        ValueError: For concrete invalid input (message names ``name``).
        equinox.EquinoxRuntimeError: At run time of a compiled program, likewise.
    """
    x = jnp.asarray(x)
    bad = ~jnp.isfinite(x) | ((x < 0) if allow_zero else (x <= 0))
    rel = ">= 0" if allow_zero else "> 0"
    return _guard(
        x, bad, f"`{name}` must be finite and {rel}; got {_describe(x)}.", safe=1.0
    )


def guard_in_range(x, name: str, low: float, high: float, *, closed: str = "both"):
    """Return ``x``; error (eagerly or under ``jit``) unless finite and in the interval.

    Args:
        x: Array-like.
        name: The public argument name used in the message.
        low: Lower bound.
        high: Upper bound.
        closed: Which ends are closed: "both", "left", "right" or "neither".

    Returns:
        ``x`` as a JAX array, carrying the check when traced.

    Raises:
        ValueError: For concrete invalid input (message names ``name``).
        equinox.EquinoxRuntimeError: At run time of a compiled program, likewise.
    """
    x = jnp.asarray(x)
    lo_ok = x >= low if closed in ("both", "left") else x > low
    hi_ok = x <= high if closed in ("both", "right") else x < high
    bad = ~(jnp.isfinite(x) & lo_ok & hi_ok)
    lb = "[" if closed in ("both", "left") else "("
    rb = "]" if closed in ("both", "right") else ")"
    return _guard(
        x,
        bad,
        f"`{name}` must lie in {lb}{low}, {high}{rb}; got {_describe(x)}.",
        safe=_inside(low, high),
    )


def finite_rows(*arrays, event_ndim: int | None = None):
    """Row mask: True where a row is finite in every array (works under jit/vmap).

    This is the one row mask of jaxdm's guarded estimators and diagnostics: under
    ``jit`` they return NaN exactly in the rows where it is False (eagerly they raise
    a ValueError naming those rows). Use it to drop bad rows explicitly, e.g.
    ``ranks[finite_rows(ranks)]``.

    Args:
        *arrays: One or more arrays. In each, the trailing ``event_ndim`` axes form
            one row; the leading shapes (the row index) must agree. Integer and
            boolean arrays count as finite.
        event_ndim: Axes per row, the same for every array; default: all axes after
            the first (rows along the leading axis). For an estimator with
            observations of shape ``x_shape`` use ``len(x_shape)``; a single
            observation then gives a mask of shape ().

    Returns:
        Boolean array of the common leading shape.

    Raises:
        ValueError: If no array is given, ``event_ndim`` exceeds an array's rank, or
            the leading shapes differ.
    """
    if not arrays:
        raise ValueError("finite_rows needs at least one array.")
    if event_ndim is not None and (
        isinstance(event_ndim, bool)
        or not isinstance(event_ndim, int | np.integer)
        or event_ndim < 0
    ):
        raise TypeError(f"`event_ndim` must be an integer >= 0; got {event_ndim!r}.")
    masks = []
    for i, a in enumerate(arrays):
        a = jnp.asarray(a)
        k = max(a.ndim - 1, 0) if event_ndim is None else int(event_ndim)
        if k > a.ndim:
            raise ValueError(
                f"`event_ndim` must be <= the rank of arrays[{i}] ({a.ndim}); got {k}."
            )
        axes = tuple(range(a.ndim - k, a.ndim))
        if jnp.issubdtype(a.dtype, jnp.inexact):
            masks.append(jnp.all(jnp.isfinite(a), axis=axes))
        else:
            masks.append(jnp.ones(a.shape[: a.ndim - k], bool))
    lead = masks[0].shape
    for i, m in enumerate(masks[1:], start=1):
        if m.shape != lead:
            raise ValueError(
                f"`arrays[{i}]` must have leading shape {lead} (one entry per row); "
                f"got {m.shape}."
            )
    out = masks[0]
    for m in masks[1:]:
        out = out & m
    return out
