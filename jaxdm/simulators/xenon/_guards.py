"""Value checks of the xenon package that also run inside traced code.

Policy (docs/architecture.md, "Xenon bad-value policy: poison"): every public xenon
core function checks its physical inputs eagerly (ValueError naming the public
argument). Traced (``jit``/``vmap``/``grad``), inside a function decorated with
:func:`jaxdm._poison.poison_policy`, the checks *record* their condition: the
function's outputs are poisoned (NaN / -1 / False, per ``vmap`` row) where it holds,
and :func:`jaxdm._poison.with_valid` gives the flag. Before any downstream use the
bad entries of a rule-checked field are replaced by a safe in-range value (each
rule's ``bad.safe``: finite 0, nonnegative and positive 1, in_range a point inside;
per field the strictest rule's), so that no sampler runs on a NaN; cross-field
relations are recorded but cannot be sanitised per field. Outside a poison scope of
the current trace (a check inside a loop body or inner transform, or a caller
without the decorator) they fall back to ``equinox.error_if``
(``EquinoxRuntimeError`` with the same message). Nothing is clipped or replaced
silently: a sanitised value always comes with a poisoned output.

:func:`guard_rules` checks a whole parameter object (Detector, YieldParams, HaloModel,
...) against a list of rules with one fused predicate (``eqx.branched_error_if`` on
all of its leaves, so that using any leaf downstream keeps the check); the message of
the first failing rule is reported. Scalar parameters cost a handful of scalar
operations per call; per-event arrays (energies) one elementwise pass and a reduction.

A public function that checks several objects can fuse their traced checks into
one: pass the same list as ``deferred=`` to each :func:`guard_rules` (or to
``check_detector``, ``check_yields``, ``check_spectrum``, :func:`guard_relation`),
which then record their conditions and messages instead of attaching them, and
call :func:`attach_to_leaves` once on all of the checked objects. The program then
holds one ``branched_error_if`` (one conditional, one host callback) per call
instead of one per object, with the message of the first failing condition.
Eager calls raise at once either way. (Attaching it to the PRNG key instead was
tried: XLA then split two per-event elementwise chains into separately
materialised fusions; on the parameter leaves the per-event fusions of
``simulate_events`` are the same as without checks.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ... import _checks, _poison
from ..._checks import _describe, _is_traced

# A rule: (field name or None, bad(xp, obj) -> bool array, message without the value).
Rule = tuple[str | None, Callable, str]


# Safe values (poison policy): a rule's ``bad`` function may carry ``bad.safe =
# (rank, value)``, an in-range value that replaces the field's bad entries when a
# poison scope takes the condition; a field checked by several rules gets the value
# of the highest rank (the strictest rule: finite 0 < nonnegative 1 < positive 2 <
# in_range 3). Rules without it (and cross-field relations) are not sanitised.
_FINITE, _NONNEGATIVE, _POSITIVE, _IN_RANGE = 0, 1, 2, 3


def _with_safe(bad, rank: int, value: float):
    bad.safe = (rank, float(value))
    return bad


def finite(field: str) -> Rule:
    """``field`` must be finite (safe value 0)."""
    bad = _with_safe(lambda xp, v: ~xp.isfinite(v), _FINITE, 0.0)
    return field, bad, "must be finite"


def positive(field: str) -> Rule:
    """``field`` must be finite and > 0 (safe value 1)."""
    bad = _with_safe(lambda xp, v: ~xp.isfinite(v) | (v <= 0), _POSITIVE, 1.0)
    return field, bad, "must be finite and > 0"


def nonnegative(field: str) -> Rule:
    """``field`` must be finite and >= 0 (safe value 1)."""
    bad = _with_safe(lambda xp, v: ~xp.isfinite(v) | (v < 0), _NONNEGATIVE, 1.0)
    return field, bad, "must be finite and >= 0"


def in_range(field: str, low: float, high: float, closed: str = "both") -> Rule:
    """``field`` must be finite and lie in the interval (``closed`` as in _checks).

    Safe value: a point inside (the midpoint of a finite interval).
    """

    def bad(xp, v):
        lo_ok = v >= low if closed in ("both", "left") else v > low
        hi_ok = v <= high if closed in ("both", "right") else v < high
        return ~(xp.isfinite(v) & lo_ok & hi_ok)

    _with_safe(bad, _IN_RANGE, _checks._inside(low, high))

    lb = "[" if closed in ("both", "left") else "("
    rb = "]" if closed in ("both", "right") else ")"
    return field, bad, f"must lie in {lb}{low}, {high}{rb}"


def _any(xp, b):
    return xp.any(xp.asarray(b))


def guard_rules(obj, rules: Sequence[Rule], name: str, *, relation=None, deferred=None):
    """Return ``obj`` with every rule checked (eagerly: ValueError; traced: error_if).

    Args:
        obj: A pytree whose attributes the rules name (an equinox Module), or an
            array when every rule's field is ``None``.
        rules: ``(field, bad, text)``: ``bad(xp, value)`` is True where invalid
            (``xp`` is numpy eagerly, jax.numpy when traced); ``field=None`` passes
            the whole object.
        name: Public argument name (messages read "`name.field` must ...").
        relation: Optional extra rules ``(None, bad(xp, obj), full message)`` whose
            message is used as is (cross-field conditions).
        deferred: Optional list: when traced, the conditions are appended to it as
            ``(flags, messages)`` and ``obj`` is returned unchanged; the caller must
            then apply :func:`attach_to_leaves` (or :func:`attach`) with that list.

    Returns:
        ``obj``, carrying the checks when traced.
    """
    leaves, treedef = jax.tree_util.tree_flatten(obj)
    traced = any(_is_traced(leaf) for leaf in leaves)
    xp = jnp if traced else np

    def value(field):
        v = obj if field is None else getattr(obj, field)
        return v if traced else np.asarray(v)

    checks = []
    for field, bad, text in rules:
        v = value(field)
        label = name if field is None else f"{name}.{field}"
        checks.append((bad(xp, v), f"`{label}` {text}; got {_describe(v)}."))
    for _, bad, message in relation or ():
        checks.append((bad(xp, obj if traced else _NumpyView(obj)), message))
    if not traced:
        for flag, message in checks:
            if np.any(flag):
                raise ValueError(message)
        return obj
    flags = jnp.stack([_any(jnp, b) for b, _ in checks])
    if deferred is not None:
        deferred.append((flags, [m for _, m in checks]))
        # Under the poison policy the deferred flags are recorded by ``attach``;
        # the values are sanitised now, before any downstream use.
        return _sanitise(obj, rules, checks) if _poison_active() else obj
    if _poison.record(flags):
        return _sanitise(obj, rules, checks)
    # Python/NumPy scalars among the leaves become arrays, so that every field
    # carries the check (an unconverted scalar would bypass it when used alone).
    leaves = [
        jnp.asarray(leaf)
        if isinstance(leaf, float | int | np.ndarray | np.generic)
        else leaf
        for leaf in leaves
    ]
    leaves = eqx.branched_error_if(
        leaves, jnp.any(flags), jnp.argmax(flags), [m for _, m in checks]
    )
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _poison_active() -> bool:
    """True if a poison scope of the current trace will take recorded conditions."""
    scope = _poison._SCOPE.get()
    return scope is not None and scope.trace == _poison._trace_state()


def _sanitise(obj, rules, checks):
    """``obj`` with each rule-checked traced field's bad entries set to a safe value.

    The value per field is that of its strictest rule (``bad.safe``); the entries
    replaced are those where any of the field's rules fails. Cross-field relations
    cannot be sanitised per field; no xenon code loops on their values (samplers
    read only rule-checked, sanitised fields).
    """
    best = {}
    for (field, bad, _), (mask, _) in zip(rules, checks, strict=False):
        safe = getattr(bad, "safe", None)
        if safe is None:
            continue
        if field in best:
            rank, value, m = best[field]
            best[field] = (*max((rank, value), safe), m | mask)
        else:
            best[field] = (*safe, mask)
    for field, (_, value, mask) in best.items():
        v = obj if field is None else getattr(obj, field)
        if not _is_traced(v):
            continue
        v = jnp.asarray(v)
        dtype = v.dtype if jnp.issubdtype(v.dtype, jnp.inexact) else None
        if dtype is None:
            continue  # integer fields: no in-range float to write; left as is
        new = jnp.where(mask, jnp.asarray(value, dtype), v)
        if field is None:
            obj = new
        else:
            obj = eqx.tree_at(lambda o, f=field: getattr(o, f), obj, new)
    return obj


class _NumpyView:
    """Attribute access to an object's fields as numpy arrays (eager relations)."""

    def __init__(self, obj):
        self._obj = obj

    def __getattr__(self, item):
        return np.asarray(getattr(self._obj, item))


def guard_values(x, name: str, *, low=None, allow_equal=True, upper=None):
    """Guard an array argument: finite, ``>= low`` (``> low``), ``<= upper``.

    Returns ``x`` as a floating JAX array, carrying the check when traced.
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    text = "must be finite"
    if low is not None:
        text += f" and {'>=' if allow_equal else '>'} {low}"
    if upper is not None:
        text += f" and <= {upper}"

    def bad(xp, v):
        b = ~xp.isfinite(v)
        if low is not None:
            b = b | ((v < low) if allow_equal else (v <= low))
        if upper is not None:
            b = b | (v > upper)
        return b

    lo = -np.inf if low is None else low
    hi = np.inf if upper is None else upper
    _with_safe(bad, _IN_RANGE, _checks._inside(lo, hi))
    return guard_rules(x, [(None, bad, text)], name)


def guard_relation(x, bad, message: str, *, deferred=None):
    """Return ``x``; raise ``message`` eagerly, or attach ``error_if``, if ``bad``.

    With a ``deferred`` list (see :func:`guard_rules`) a traced condition is
    recorded there instead of attached.
    """
    if deferred is not None and (_is_traced(x) or _is_traced(bad)):
        deferred.append((jnp.any(bad)[None], [message]))
        return x
    return _checks._guard(x, bad, message)


def attach(x, deferred):
    """Return ``x`` carrying every deferred check as one ``branched_error_if``.

    Args:
        x: Pytree of arrays that the call's outputs depend on.
        deferred: The list filled by ``deferred=`` calls (empty: ``x`` unchanged).

    Returns:
        ``x`` (carrying the fused check when ``deferred`` is not empty).
    """
    if not deferred:
        return x
    flags = jnp.concatenate([f for f, _ in deferred])
    if _poison.record(flags):
        return x
    messages = [m for _, ms in deferred for m in ms]
    return eqx.branched_error_if(x, jnp.any(flags), jnp.argmax(flags), messages)


def attach_to_leaves(tree, deferred):
    """:func:`attach` on every leaf of ``tree`` (Python scalars made arrays).

    Using any of the returned leaves downstream keeps the one fused check.
    """
    if not deferred:
        return tree
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    leaves = [
        jnp.asarray(leaf)
        if isinstance(leaf, float | int | np.ndarray | np.generic)
        else leaf
        for leaf in leaves
    ]
    return jax.tree_util.tree_unflatten(treedef, attach(leaves, deferred))
