"""The traced "poison" policy: bad parameters give NaN outputs and a validity flag.

Issue #12 lets each package choose how a bad physical parameter is reported when it
is only known at run time (under ``jit``/``vmap``): *raise* (``equinox.error_if``,
an error naming the argument) or *poison* (NaN in every output of that call or
``vmap`` row, plus a validity flag). Raising needs a host callback in the compiled
program, and on XLA:CPU its mere presence slows the per-event work of the xenon and
lensing simulators by 7-19 % (``benchmarks/guard_cost_paired.py --diagnose``); a
``jnp.where`` costs nothing measurable. Packages whose hot paths matter use this
module.

How it works. A public function is decorated with :func:`poison_policy`. While it
traces, the value guards of :mod:`jaxdm._checks` (``guard_finite``,
``guard_positive``, ``guard_in_range`` and the packages' rule checkers) *record*
their traced "bad" condition in the function's scope instead of attaching an error,
and replace bad entries by a safe in-range value (so that no sampler loops forever
on a NaN rate). When the function returns, every leaf of its output is poisoned
where any recorded condition holds:

- floating leaves (real or complex): NaN;
- signed integer leaves (counts, indices): -1, which no count or index takes;
  unsigned: the dtype's maximum;
- boolean leaves: False;
- PRNG keys and non-array leaves: unchanged.

Under ``vmap`` the condition, and so the poison, is per row. Eagerly (concrete
values) the guards raise ``ValueError`` naming the argument at once, exactly as
under the raise policy; the policy only changes traced behaviour.

A function whose outputs are many per-event arrays can poison them itself at the
source (``poison_policy(poisons_itself=True)`` and :func:`pending`): masking each
output at the end makes XLA:CPU keep both the unmasked intermediate (for its other
consumers) and the masked copy, which cost ``xenon.simulate_events`` 10-13 % per
event; NaN injected into the chain's inputs reaches every output in one write.

The flag: :func:`with_valid` wraps a public function so that it returns
``(output, valid)``; ``jax.jit(with_valid(xenon.simulate_events))`` and its
``vmap`` give one flag per call or row. NaN in a floating output is itself a signal
(``jnp.isnan``), but integer and boolean outputs need the flag.

Nested public calls in the same trace forward their conditions to the caller, so the
outermost call's outputs are poisoned too; the nested call's own outputs are left
unpoisoned (computed from the sanitised values), since the caller uses them as
intermediates (e.g. a checked parameter object handed to a sampler). A guard or
public call traced in an inner trace of its caller (inside a ``lax.scan``/``lax.map``
body or an inner ``jit``/``vmap`` the caller sets up) cannot hand a traced condition
out of that trace; it falls back to the raise policy there (``equinox.error_if``),
so nothing is ever silent. Hot paths should check outside such loops (tests can
assert it with :func:`host_callbacks`).
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import get_opaque_trace_state

__all__ = [
    "host_callbacks",
    "pending",
    "poison",
    "poison_policy",
    "record",
    "with_valid",
]


@dataclasses.dataclass
class _Scope:
    trace: object
    flags: list = dataclasses.field(default_factory=list)
    # A guard or nested public call ran in another trace and could not hand its
    # condition to this scope (it fell back to raising there).
    crossed: bool = False
    # The call poisons its own outputs (no caller in this trace does it for it).
    outermost: bool = True
    # with_valid's scope: it only collects; its direct callee poisons itself.
    collector: bool = False
    # Conditions of callees that already poisoned their outputs (collector only).
    done: list = dataclasses.field(default_factory=list)
    # len(flags) when the function took the condition itself (see pending()).
    consumed: int = -1


_SCOPE: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar(
    "jaxdm_poison_scope", default=None
)


def _trace_state():
    return get_opaque_trace_state(convention="jaxdm")


def record(bad) -> bool:
    """Record a traced bad-condition in the active poison scope.

    Args:
        bad: Boolean array (any shape); the call is bad where any entry is True.

    Returns:
        True if a scope of the current trace took it (the caller then returns its
        value sanitised instead of attaching an error); False if no poison scope is
        active, or it belongs to an outer trace (the caller must raise instead).
    """
    scope = _SCOPE.get()
    if scope is None:
        return False
    if scope.trace != _trace_state():
        scope.crossed = True
        return False
    scope.flags.append(jnp.any(jnp.asarray(bad)))
    return True


def _poison_leaf(leaf, bad):
    if not isinstance(leaf, jax.Array | np.ndarray | np.generic):
        return leaf
    dtype = leaf.dtype
    if jnp.issubdtype(dtype, jax.dtypes.prng_key):
        return leaf
    if jnp.issubdtype(dtype, jnp.inexact):
        fill = jnp.nan
    elif jnp.issubdtype(dtype, jnp.bool_):
        fill = False
    elif jnp.issubdtype(dtype, jnp.signedinteger):
        fill = -1
    elif jnp.issubdtype(dtype, jnp.unsignedinteger):
        fill = jnp.iinfo(dtype).max
    else:
        return leaf
    return jnp.where(bad, jnp.asarray(fill, dtype), leaf)


def poison(tree, bad):
    """Return ``tree`` with every array leaf replaced by its poison value where ``bad``.

    Args:
        tree: Pytree of outputs.
        bad: Boolean scalar (per call; per row under ``vmap``).

    Returns:
        The same structure: NaN / -1 / False (see the module docstring) if ``bad``.
    """
    return jax.tree_util.tree_map(lambda leaf: _poison_leaf(leaf, bad), tree)


def pending():
    """The condition recorded so far by the running outermost public call, or None.

    For a function decorated with ``poison_policy(poisons_itself=True)``: it calls
    this after its checks and makes every output poisoned where the returned
    condition holds (e.g. NaN injected at the source of a per-event chain, so that
    XLA writes each output once instead of materialising it twice, once for its
    other consumers and once masked). The decorator then skips its own output
    ``where``, unless a condition was recorded after this call. Returns None when
    nothing was recorded, outside a poison scope, or in a nested call (whose caller
    poisons), in which case the function must not poison anything.
    """
    scope = _SCOPE.get()
    if scope is None or not scope.flags or not scope.outermost:
        return None
    if scope.trace != _trace_state():
        return None
    scope.consumed = len(scope.flags)
    return functools.reduce(jnp.logical_or, scope.flags)


def poison_policy(fn=None, *, poisons_itself: bool = False):
    """Decorate a public function with the traced poison policy (module docstring).

    The wrapped function behaves as ``fn`` eagerly; traced, its guards record their
    conditions and its outputs are poisoned where any holds.

    Args:
        fn: The public function.
        poisons_itself: ``fn`` poisons its outputs itself with the condition from
            :func:`pending` (tests must show every output poisoned).
    """
    if fn is None:
        return functools.partial(poison_policy, poisons_itself=poisons_itself)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        parent = _SCOPE.get()
        here = _trace_state()
        if parent is not None and parent.trace != here:
            # Called inside a loop body or inner transform of another public call:
            # a condition cannot leave this trace, so the raise policy applies here
            # (each guard raises with its own message).
            parent.crossed = True
            token = _SCOPE.set(None)
            try:
                return fn(*args, **kwargs)
            finally:
                _SCOPE.reset(token)
        outermost = parent is None or parent.collector
        scope = _Scope(trace=here, outermost=outermost)
        token = _SCOPE.set(scope)
        try:
            out = fn(*args, **kwargs)
        finally:
            _SCOPE.reset(token)
        if not scope.flags:
            return out
        bad = functools.reduce(jnp.logical_or, scope.flags)
        if not outermost:
            # The caller poisons its own outputs; a nested call's outputs are its
            # intermediates and stay computed from sanitised values (a NaN handed to
            # the caller's samplers could make them loop or misbehave).
            parent.flags.append(bad)
            return out
        if not (poisons_itself and scope.consumed == len(scope.flags)):
            out = poison(out, bad)
        if parent is not None:
            parent.done.append(bad)
        return out

    wrapper.__jaxdm_policy__ = "poison"
    return wrapper


def with_valid(fn):
    """Wrap a public function of a poison-policy package to return ``(out, valid)``.

    Args:
        fn: A public function (e.g. ``xenon.simulate_events``), not a jitted wrapper of
            one: ``jax.jit(with_valid(fn))``, not ``with_valid(jax.jit(fn))``.

    Returns:
        ``g(*args, **kwargs) -> (out, valid)``: ``valid`` is a boolean scalar (one per
        row under ``vmap``), False exactly where the outputs are poisoned. Eagerly it
        is always True (bad values raise ValueError instead).

    Raises:
        ValueError: At trace time, if ``fn`` traced its checks in an inner trace
            (e.g. it was jitted before wrapping), where the flag cannot be read.
            (A pre-jitted function whose trace jax has cached runs no Python and
            cannot be detected: wrap first, then jit.)
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        scope = _Scope(trace=_trace_state(), outermost=False, collector=True)
        token = _SCOPE.set(scope)
        try:
            out = fn(*args, **kwargs)
        finally:
            _SCOPE.reset(token)
        if scope.crossed:
            raise ValueError(
                f"with_valid({getattr(fn, '__name__', fn)!r}): its checks ran in an "
                "inner trace (was it jitted or vmapped before wrapping?); wrap the "
                "public function first: jax.jit(with_valid(fn))."
            )
        if scope.flags:
            # Guards that ran directly in ``fn`` (not a decorated function).
            out = poison(out, functools.reduce(jnp.logical_or, scope.flags))
        conds = scope.flags + scope.done  # ``done``: callees poisoned their outputs
        if not conds:
            return out, jnp.asarray(True)
        return out, ~functools.reduce(jnp.logical_or, conds)

    return wrapper


def host_callbacks(fn, *args, **kwargs) -> int:
    """Number of host callbacks in ``fn``'s traced program (tests of hot paths).

    A raise-policy check adds a ``pure_callback``; under the poison policy a public
    function's program should hold none.
    """
    jaxpr = jax.make_jaxpr(fn)(*args, **kwargs)
    return str(jaxpr).count("callback[")
