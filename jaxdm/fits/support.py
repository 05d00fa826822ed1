"""Support guard for numpyro models: an invalid parameter point has log density -inf.

NUTS moves in numpyro's unconstrained space; a leapfrog step that overflows gives a
non-finite unconstrained position, whose constrained value is NaN (or a bound, after
float rounding). A likelihood that checks its arguments with traced guards
(:mod:`jaxdm._checks`, ``eqx.error_if``) would then raise inside the sampler instead
of rejecting the proposal. :func:`guard_support` is the model-side fix (the policy of
``jaxdm.fits.wimp``'s models): under tracing, a point with any non-finite or
out-of-support value adds ``numpyro.factor(site, -inf)`` (NUTS counts it as a
divergent transition and rejects it) and the downstream likelihood is evaluated at a
fallback point inside the support; with concrete values (e.g. ``init_params``,
``Predictive`` with given samples) it raises ValueError naming the parameter. Data
checks inside the likelihood stay errors.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import numpyro

__all__ = ["guard_support"]


def guard_support(
    values: Mapping,
    bounds: Mapping,
    *,
    site: str = "outside_support",
    fallback: Mapping | None = None,
) -> dict:
    """Map a non-finite or out-of-support parameter point to log density -inf.

    Must be called inside a numpyro model, after the ``numpyro.sample`` sites.

    Args:
        values: ``{name: array}`` sampled parameter values (constrained space).
        bounds: ``{name: (low, high)}`` closed support of each value, concrete
            (Python or NumPy scalars or arrays broadcasting with the value; static
            model configuration, not traced); every name of ``values`` needs one.
        site: Name of the ``numpyro.factor`` site added under tracing.
        fallback: Optional ``{name: value}`` inside the support used instead of the
            midpoint for the names it holds (e.g. a nuisance's nominal value).

    Returns:
        ``{name: array}``: the values where the whole point is valid; otherwise (all
        entries) the fallback values (default the support midpoints), so that the
        likelihood downstream sees a valid point while the density is -inf.

    Raises:
        ValueError: A name without bounds, bounds with ``low >= high`` or not finite,
            or (concrete values only) a value that is non-finite or outside its
            support, naming the parameter, the support and the value.
    """
    lo, hi = {}, {}
    for k in values:
        if k not in bounds:
            raise ValueError(f"`bounds` has no entry for parameter {k!r}.")
        a, b = (np.asarray(x, float) for x in bounds[k])
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b)) and np.all(a < b)):
            raise ValueError(
                f"`bounds[{k!r}]` must be finite with low < high; got {a}, {b}."
            )
        lo[k], hi[k] = a, b
    traced = any(isinstance(v, jax.core.Tracer) for v in values.values())
    if not traced:
        for k, v in values.items():
            v = np.asarray(v)
            if not (np.all(np.isfinite(v)) and np.all((v >= lo[k]) & (v <= hi[k]))):
                raise ValueError(
                    f"`{k}` = {v} is outside its prior support [{lo[k]}, {hi[k]}]."
                )
        return dict(values)
    inside = [
        jnp.all(jnp.isfinite(v) & (v >= lo[k]) & (v <= hi[k]))
        for k, v in values.items()
    ]
    valid = jnp.all(jnp.stack(inside))
    numpyro.factor(site, jnp.where(valid, 0.0, -jnp.inf))
    fb = {k: 0.5 * (lo[k] + hi[k]) for k in values}
    fb.update({k: np.asarray(v, float) for k, v in (fallback or {}).items()})
    return {
        k: jnp.where(valid, v, jnp.asarray(fb[k], jnp.result_type(v)))
        for k, v in values.items()
    }
