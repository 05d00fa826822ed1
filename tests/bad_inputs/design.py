"""Bad inputs to ``jaxdm.design`` (host-level optimiser: eager mode only)."""

import jax.numpy as jnp

from jaxdm import design
from tests.bad_inputs.case import Case


def _quad(p):
    return jnp.sum((p["x"] - 0.2) ** 2)


def _nan_grad(p):
    # Finite value, NaN gradient at every point (sqrt at 0 has an infinite slope,
    # times 0).
    return jnp.sum(p["x"]) + 0.0 * jnp.sqrt(jnp.sum(p["x"]) - jnp.sum(p["x"]))


_KW = {"steps": 2, "progress": False}

CASES = [
    Case(
        "design.optimise_design: bounds low >= high",
        design.optimise_design,
        (_quad, {"x": jnp.array(0.5)}, ({"x": 1.0}, {"x": 0.0})),
        _KW,
        match=r"`bounds` must have low < high",
        modes=("eager",),
    ),
    Case(
        "design.optimise_design: init outside bounds",
        design.optimise_design,
        (_quad, {"x": jnp.array(2.0)}, ({"x": 0.0}, {"x": 1.0})),
        _KW,
        match=r"`init` must lie strictly inside `bounds`",
        modes=("eager",),
    ),
    Case(
        "design.optimise_design: non-scalar objective",
        design.optimise_design,
        (lambda p: p["x"] ** 2, {"x": jnp.array([0.5, 0.1])}, None),
        _KW,
        match=r"`objective` must return a scalar; got an output of shape \(2,\)",
        modes=("eager",),
    ),
    Case(
        "design.optimise_design: NaN gradient at init",
        design.optimise_design,
        (_nan_grad, {"x": jnp.array(0.5)}, None),
        _KW,
        match=r"`objective` or its gradient is not finite at `init`",
        modes=("eager",),
    ),
    Case(
        "design.optimise_design: NaN in init",
        design.optimise_design,
        (_quad, {"x": jnp.array(jnp.nan)}, None),
        _KW,
        match=r"`init` leaf 0 must be finite",
        modes=("eager",),
    ),
    Case(
        "design.optimise_design: constraint kind",
        design.optimise_design,
        (_quad, {"x": jnp.array(0.5)}, None),
        {**_KW, "constraints": [design.Constraint(_quad, "ge")]},
        match=r"constraints\[0\]\.kind",
        modes=("eager",),
    ),
    Case(
        "design.check_gradient: non-scalar objective",
        design.check_gradient,
        (lambda p: p * 2.0, jnp.array([0.5, 0.1])),
        match=r"`objective` must return a scalar",
        modes=("eager",),
    ),
]

CASES += [
    Case(
        "design.soft_histogram: negative softness",
        design.soft_histogram,
        (jnp.array([0.1, 0.2]), jnp.array([0.0, 0.5, 1.0]), jnp.array(-0.1)),
        match="softness",
    ),
    Case(
        "design.soft_histogram: NaN event",
        design.soft_histogram,
        (jnp.array([0.1, jnp.nan]), jnp.array([0.0, 0.5, 1.0]), jnp.array(0.1)),
        match="`x`",
    ),
    Case(
        "design.marginal_error: index out of range",
        design.marginal_error,
        (jnp.eye(2), 2),
        match="`index`",
    ),
]
