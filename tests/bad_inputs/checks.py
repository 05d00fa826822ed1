"""Bad inputs to the shared traced guards in ``jaxdm._checks``."""

import jax.numpy as jnp

from jaxdm import _checks
from tests.bad_inputs.case import Case

CASES = [
    Case(
        "checks.guard_positive: negative",
        _checks.guard_positive,
        (jnp.array([1.0, -1.0]), "theta_e"),
        match="theta_e",
    ),
    Case(
        "checks.guard_finite: NaN",
        _checks.guard_finite,
        (jnp.array([1.0, jnp.nan]), "x"),
        match="`x`",
    ),
    Case(
        "checks.guard_in_range: g1 > 1",
        _checks.guard_in_range,
        (jnp.array(1.2), "g1", 0.0, 1.0),
        match="g1",
    ),
]
CASES += [
    Case(
        "checks.finite_rows: leading shapes differ",
        _checks.finite_rows,
        (jnp.ones((3, 2)), jnp.ones(4)),
        match=r"arrays\[1\]",
    ),
    Case(
        "checks.finite_rows: event_ndim above the rank",
        _checks.finite_rows,
        (jnp.ones(3),),
        {"event_ndim": 2},
        match="event_ndim",
    ),
]
