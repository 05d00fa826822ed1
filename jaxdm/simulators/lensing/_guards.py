"""Traced-aware parameter checks of the lensing package (policy: poison).

Every public lensing function checks its physical parameters eagerly *and* under
``jit``/``vmap`` through :mod:`jaxdm._checks`' ``guard_*`` helpers. A concrete bad
value raises ValueError at once, naming the public argument (``SIEParams.theta_e``,
``sub_norm``, ``image`` ...). Traced, the package follows the *poison* policy of
:mod:`jaxdm._poison` (issue #12): every public function is decorated with
``poison_policy``, so a bad value makes every output of that call (of that row under
``vmap``) NaN (integer outputs -1, boolean False), and ``jaxdm._poison.with_valid``
returns the per-call/per-row validity flag. No host callback enters the compiled
program (a raise-policy check costs 7-19 % per image on XLA:CPU). Bad entries are
replaced by a safe in-range value before use (each rule below has one), so no
sampler (``jax.random.poisson``) ever runs on them. A public function traced inside
a loop body or inner transform of another public call falls back to raising
(``equinox.EquinoxRuntimeError``); the hot paths avoid that by calling the unchecked
implementations (:func:`unchecked`).

A params class lists its rules in a ``_RULES`` class attribute, field name ->
rule; fields without a rule must be finite. Rules:

- ``(">=0",)`` finite and >= 0; ``(">0",)`` finite and > 0 (safe value 1);
- ``("range", low, high, closed)`` finite and in the interval (safe: its middle);
- ``(">0|inf",)`` > 0, ``+inf`` allowed (a WDM mass: inf is CDM), NaN not (safe:
  ``+inf``, the CDM limit);
- ``("not-nan|-inf",)`` anything but NaN and ``-inf`` (log10 of such a mass; safe:
  ``+inf``).
Unruled fields must be finite (safe: 0).

Checks run once per public call, on the parameters (scalars or per-subhalo
arrays), never inside the per-pixel ray-shooting loop or the subhalo scan: the hot
paths call the unchecked implementations (``unchecked(sie_deflection)``).
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
from jaxdm._poison import poison_policy


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
    return _guard(
        x,
        bad,
        f"`{name}` must be > 0 (inf allowed); got {_describe(x)}.",
        safe=jnp.inf if jnp.issubdtype(x.dtype, jnp.inexact) else 1,
    )


def _guard_log_mass(x, name: str):
    x = jnp.asarray(x)
    bad = jnp.isnan(x) | (x == -jnp.inf)
    return _guard(
        x,
        bad,
        f"`{name}` must not be NaN or -inf; got {_describe(x)}.",
        safe=jnp.inf if jnp.issubdtype(x.dtype, jnp.inexact) else 0,
    )


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

    The result is a public function under the poison policy (``poison_policy``
    outermost); the unchecked ``fn`` stays available as ``unchecked(result)``.
    """

    @functools.wraps(fn)
    def checked(x, y, params, *args, **kwargs):
        x = guard_finite(x, "x")
        y = guard_finite(y, "y")
        return fn(x, y, guard_components(params), *args, **kwargs)

    public = poison_policy(checked)
    public.__jaxdm_unchecked__ = fn
    return public


def unchecked(public_fn):
    """The unchecked implementation of a :func:`checked_profile` function.

    Hot paths (ray shooting, the subhalo scan) call it on parameters that their
    public caller has already checked, so that no guard runs per pixel or per scan
    step (a guard traced inside a scan body would fall back to raising).

    Raises:
        TypeError: If ``public_fn`` was not made by :func:`checked_profile`.
    """
    try:
        return public_fn.__jaxdm_unchecked__
    except AttributeError:
        raise TypeError(
            f"{getattr(public_fn, '__name__', public_fn)!r} is not a checked profile."
        ) from None
