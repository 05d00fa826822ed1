"""Traced-aware parameter checks of the lensing package (policy: raise).

Every public lensing function checks its physical parameters eagerly *and* under
``jit``/``vmap`` through :mod:`jaxdm._checks`' ``guard_*`` helpers: a concrete bad
value raises ValueError at once, a traced one raises
``equinox.EquinoxRuntimeError`` when the compiled program runs. Messages name the
public argument (``SIEParams.theta_e``, ``sub_norm``, ``image`` ...).

A params class lists its rules in a ``_RULES`` class attribute, field name ->
rule; fields without a rule must be finite. Rules:

- ``(">=0",)`` finite and >= 0; ``(">0",)`` finite and > 0;
- ``("range", low, high, closed)`` finite and in the interval;
- ``(">0|inf",)`` > 0, ``+inf`` allowed (a WDM mass: inf is CDM), NaN not;
- ``("not-nan|-inf",)`` anything but NaN and ``-inf`` (log10 of such a mass).

Checks run once per public call, on the parameters (scalars or per-subhalo
arrays), never inside the per-pixel ray-shooting loop: the hot paths call the
unchecked implementations (``fn.__wrapped__``).
"""

from __future__ import annotations

import dataclasses
import functools

import equinox as eqx
import jax.numpy as jnp

from jaxdm._checks import (
    _describe,
    _guard,
    guard_finite,
    guard_in_range,
    guard_positive,
)


def guard_positive_or_inf(x, name: str):
    """Return ``x``; error unless every entry is > 0 (``+inf`` allowed, NaN not).

    Args:
        x: Array-like.
        name: Public argument name for the message.

    Returns:
        ``x`` as a JAX array, carrying the check when traced.
    """
    x = jnp.asarray(x)
    bad = jnp.isnan(x) | (x <= 0)
    return _guard(x, bad, f"`{name}` must be > 0 (inf allowed); got {_describe(x)}.")


def _guard_log_mass(x, name: str):
    x = jnp.asarray(x)
    bad = jnp.isnan(x) | (x == -jnp.inf)
    return _guard(x, bad, f"`{name}` must not be NaN or -inf; got {_describe(x)}.")


def guard_value(x, name: str, rule=None):
    """Apply one rule (see the module docstring) to an array; return it."""
    if rule is None:
        return guard_finite(x, name)
    kind = rule[0]
    if kind == ">=0":
        return guard_positive(x, name, allow_zero=True)
    if kind == ">0":
        return guard_positive(x, name)
    if kind == "range":
        _, low, high, closed = rule
        return guard_in_range(x, name, low, high, closed=closed)
    if kind == ">0|inf":
        return guard_positive_or_inf(x, name)
    if kind == "not-nan|-inf":
        return _guard_log_mass(x, name)
    raise AssertionError(f"unknown rule {rule!r}")


def guard_module(p, owner: str | None = None):
    """Return ``p`` with every non-static field checked by its class's rules.

    Nested modules (a ``SubhaloPopulation``'s profile) are checked recursively;
    names read ``Class.field`` (``SubhaloPopulation.profile.kappa_s``).

    Args:
        p: An ``eqx.Module`` of parameters.
        owner: Name prefix (default: the class name).

    Returns:
        The same module with guarded arrays (the checks stay attached under jit).
    """
    prefix = owner or type(p).__name__
    rules = getattr(type(p), "_RULES", {})
    names, values = [], []
    for f in dataclasses.fields(p):
        if f.metadata.get("static", False):
            continue
        v = getattr(p, f.name)
        if v is None:
            continue
        if isinstance(v, eqx.Module):
            new = guard_module(v, f"{prefix}.{f.name}")
        elif hasattr(v, "dtype") or isinstance(v, int | float):
            new = guard_value(v, f"{prefix}.{f.name}", rules.get(f.name))
        else:
            continue
        names.append(f.name)
        values.append(new)
    if not names:
        return p
    return eqx.tree_at(lambda m: [getattr(m, n) for n in names], p, values)


def guard_components(components):
    """Guard one params module or a tuple/list of them (None and unknowns kept)."""
    if isinstance(components, tuple | list):
        return type(components)(guard_components(c) for c in components)
    if isinstance(components, eqx.Module):
        return guard_module(components)
    return components


def checked_profile(fn):
    """Wrap ``fn(x, y, params, ...)``: check x, y finite and the params, then call.

    The unchecked function stays available as ``wrapper.__wrapped__``.
    """

    @functools.wraps(fn)
    def wrapper(x, y, params, *args, **kwargs):
        x = guard_finite(x, "x")
        y = guard_finite(y, "y")
        return fn(x, y, guard_components(params), *args, **kwargs)

    return wrapper
