r"""Gradient-based optimisation of experiment designs with optax.

:func:`optimise_design` minimises (or maximises) a differentiable scalar objective of a
pytree of design parameters inside box bounds, under optional cost/budget
constraints, and returns the whole path. Box bounds are enforced by a smooth
reparameterisation (no clipping, no projection): a leaf bounded on both sides is
``low + (high - low) * sigmoid(u)``, one bounded below only ``low + softplus(u)``,
above only ``high - softplus(u)``, an unbounded one ``u`` itself; the optimiser
moves ``u``. Constraints ``g(params) <= 0`` (or ``== 0``) enter through a quadratic
penalty or an augmented Lagrangian (Powell-Hestenes-Rockafellar multipliers, Nocedal
& Wright, *Numerical Optimization*, 2nd ed., section 17.4), updated once per step.

Non-finite gradients are reported and never followed: the step is skipped (the
parameters stay where they were), counted in :attr:`DesignResult.n_skipped`, warned
about, and ``max_nonfinite`` consecutive ones raise :class:`FloatingPointError`. A
non-finite objective or gradient at ``init`` is a ValueError. After the run the path
is inspected for the instabilities TomOpt reports for detector optimisation (Strong
et al., arXiv:2309.14027): a flat objective (no change along the path, gradients
vanishing) gives :class:`FlatObjectiveWarning`, an objective that gets worse in many
steps (noise or a step size too large) :class:`NoisyObjectiveWarning`.

A hand-written loop rather than optimistix: the per-step path history, skipped
non-finite steps, multiplier updates and progress bar are the point here, and
optimistix's minimisers expose none of them per step.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from .._args import check_choice, check_int, check_real

__all__ = [
    "Constraint",
    "DesignResult",
    "FlatObjectiveWarning",
    "GradientCheck",
    "NoisyObjectiveWarning",
    "NonFiniteGradientWarning",
    "check_gradient",
    "from_unconstrained",
    "optimise_design",
    "to_unconstrained",
]


class FlatObjectiveWarning(UserWarning):
    """The objective barely changed along the optimisation path."""


class NoisyObjectiveWarning(UserWarning):
    """The objective got worse in many steps: noisy objective or step too large."""


class NonFiniteGradientWarning(UserWarning):
    """A step had a NaN/inf objective or gradient and was skipped."""


class Constraint(NamedTuple):
    """A cost or budget constraint ``fn(params) <= 0`` (``kind="le"``) or ``== 0``.

    Attributes:
        fn: ``fn(params) -> scalar`` in the units of the constraint (e.g. cost minus
            budget).
        kind: ``"le"`` (inequality) or ``"eq"`` (equality).
        weight: Penalty strength rho (> 0) in 1/(constraint unit)^2 per objective
            unit.
    """

    fn: Callable[[Any], jax.Array]
    kind: str = "le"
    weight: float = 100.0


class DesignResult(NamedTuple):
    """Outcome of :func:`optimise_design`.

    Attributes:
        params: Final design (pytree like ``init``), inside the bounds.
        value: Objective at ``params`` (scalar, the user's sign).
        path: Designs along the path, each leaf stacked on a leading axis of
            ``steps + 1`` (entry 0 is ``init``).
        values: Objective along the path, shape (steps + 1,).
        grad_norms: Norm of the gradient in the unconstrained coordinates, shape
            (steps + 1,) (NaN where it was not finite).
        constraint_values: Constraint functions along the path, shape
            (steps + 1, n_constraints).
        multipliers: Final Lagrange multipliers, shape (n_constraints,) (zero for
            ``method="penalty"``).
        n_skipped: Steps skipped because the objective or gradient was not finite.
    """

    params: Any
    value: jax.Array
    path: Any
    values: np.ndarray
    grad_norms: np.ndarray
    constraint_values: np.ndarray
    multipliers: np.ndarray
    n_skipped: int


class GradientCheck(NamedTuple):
    """Outcome of :func:`check_gradient`.

    Attributes:
        analytic: Gradient by autodiff, flattened, shape (n,).
        numeric: Central finite differences, shape (n,).
        max_abs_error: ``max |analytic - numeric|``.
        max_rel_error: ``max |analytic - numeric| / (atol + rtol |numeric|)`` scaled
            to 1: the check passes when it is <= 1.
        ok: Whether every component agrees within ``atol + rtol |numeric|``.
    """

    analytic: np.ndarray
    numeric: np.ndarray
    max_abs_error: float
    max_rel_error: float
    ok: bool


def _leaves_bounds(init, bounds, *, inside=True):
    leaves, treedef = jax.tree_util.tree_flatten(init)
    if bounds is None:
        return [(-np.inf, np.inf)] * len(leaves), treedef
    if not (isinstance(bounds, tuple | list) and len(bounds) == 2):
        raise ValueError(
            "`bounds` must be None or a pair (low, high) of pytrees shaped like "
            f"`init`; got {type(bounds).__name__}."
        )
    out = []
    for side, tree in zip(("low", "high"), bounds, strict=True):
        b_leaves, b_def = jax.tree_util.tree_flatten(tree)
        if b_def != treedef:
            raise ValueError(
                f"`bounds` {side} must have the structure of `init` ({treedef}); "
                f"got {b_def}."
            )
        out.append(b_leaves)
    pairs = []
    for i, (x, lo, hi) in enumerate(zip(leaves, out[0], out[1], strict=True)):
        x = np.asarray(x, dtype=float)
        lo = np.broadcast_to(np.asarray(lo, dtype=float), x.shape)
        hi = np.broadcast_to(np.asarray(hi, dtype=float), x.shape)
        if np.any(np.isnan(lo)) or np.any(np.isnan(hi)) or np.any(lo >= hi):
            raise ValueError(
                f"`bounds` must have low < high for every element; leaf {i} has "
                f"low={lo.tolist()}, high={hi.tolist()}."
            )
        if inside and (np.any(x <= lo) or np.any(x >= hi)):
            raise ValueError(
                f"`init` must lie strictly inside `bounds`; leaf {i} is {x.tolist()} "
                f"with low={lo.tolist()}, high={hi.tolist()}."
            )
        pairs.append((lo, hi))
    return pairs, treedef


def _to_u(x, lo, hi):
    x = np.asarray(x, dtype=float)
    both = np.isfinite(lo) & np.isfinite(hi)
    only_lo = np.isfinite(lo) & ~np.isfinite(hi)
    only_hi = ~np.isfinite(lo) & np.isfinite(hi)
    with np.errstate(all="ignore"):
        t = (x - lo) / (hi - lo)
        u_both = np.log(t) - np.log1p(-t)
        d_lo = x - lo
        u_lo = d_lo + np.log(-np.expm1(-d_lo))  # inverse softplus
        d_hi = hi - x
        u_hi = d_hi + np.log(-np.expm1(-d_hi))
    return np.where(both, u_both, np.where(only_lo, u_lo, np.where(only_hi, u_hi, x)))


def _from_u(u, lo, hi):
    both = np.isfinite(lo) & np.isfinite(hi)
    only_lo = np.isfinite(lo) & ~np.isfinite(hi)
    only_hi = ~np.isfinite(lo) & np.isfinite(hi)
    lo_f = jnp.asarray(np.where(np.isfinite(lo), lo, 0.0), u.dtype)
    hi_f = jnp.asarray(np.where(np.isfinite(hi), hi, 1.0), u.dtype)
    x_both = lo_f + (hi_f - lo_f) * jax.nn.sigmoid(u)
    x_lo = lo_f + jax.nn.softplus(u)
    x_hi = hi_f - jax.nn.softplus(u)
    return jnp.where(
        both, x_both, jnp.where(only_lo, x_lo, jnp.where(only_hi, x_hi, u))
    )


def to_unconstrained(params, bounds):
    """Map a design inside ``bounds`` to the optimiser's unconstrained coordinates.

    Args:
        params: Design pytree (leaves arrays or floats).
        bounds: ``None`` or ``(low, high)`` pytrees shaped like ``params``; infinite
            entries are unbounded sides.

    Returns:
        Pytree like ``params`` of unconstrained coordinates.
    """
    pairs, treedef = _leaves_bounds(params, bounds)
    leaves = jax.tree_util.tree_leaves(params)
    dtype = jnp.result_type(float)
    return jax.tree_util.tree_unflatten(
        treedef,
        [
            jnp.asarray(_to_u(x, lo, hi), dtype)
            for x, (lo, hi) in zip(leaves, pairs, strict=True)
        ],
    )


def from_unconstrained(u, bounds, *, like=None):
    """Inverse of :func:`to_unconstrained` (smooth, differentiable in ``u``)."""
    ref = u if like is None else like
    pairs, treedef = _leaves_bounds(ref, bounds, inside=False)
    leaves = jax.tree_util.tree_leaves(u)
    return jax.tree_util.tree_unflatten(
        treedef, [_from_u(x, lo, hi) for x, (lo, hi) in zip(leaves, pairs, strict=True)]
    )


def _scalar_objective(objective, params, name="objective"):
    val = objective(params)
    shape = jnp.shape(val)
    if shape != ():
        raise ValueError(
            f"`{name}` must return a scalar; got an output of shape {shape}."
        )
    return val


def _check_inputs(objective, init, constraints, method):
    if not callable(objective):
        raise TypeError(
            f"`objective` must be callable; got {type(objective).__name__}."
        )
    leaves = jax.tree_util.tree_leaves(init)
    if not leaves:
        raise ValueError("`init` must contain at least one array leaf.")
    for i, x in enumerate(leaves):
        a = np.asarray(x)
        if not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(
            a.dtype, np.integer
        ):
            raise TypeError(f"`init` leaf {i} must be numeric; got dtype {a.dtype}.")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"`init` leaf {i} must be finite; got {a.tolist()}.")
    method = check_choice(method, "method", ("penalty", "lagrangian"))
    cons = tuple(constraints)
    for i, c in enumerate(cons):
        if not isinstance(c, Constraint):
            raise TypeError(
                f"`constraints[{i}]` must be a Constraint; got {type(c).__name__}."
            )
        check_choice(c.kind, f"constraints[{i}].kind", ("le", "eq"))
        if not check_real(c.weight, f"constraints[{i}].weight") > 0:
            raise ValueError(f"`constraints[{i}].weight` must be > 0; got {c.weight}.")
    return cons, method


def optimise_design(
    objective: Callable[[Any], jax.Array],
    init,
    bounds=None,
    *,
    optimizer: optax.GradientTransformation | None = None,
    steps: int = 200,
    constraints: Sequence[Constraint] = (),
    method: str = "penalty",
    multiplier_every: int = 50,
    maximize: bool = False,
    max_nonfinite: int = 3,
    flat_rtol: float = 1e-6,
    noisy_fraction: float = 0.3,
    progress: bool = True,
) -> DesignResult:
    r"""Optimise a differentiable design objective inside box bounds.

    Minimises :math:`f(x(u)) + \text{constraint terms}` over unconstrained ``u``,
    with ``x(u)`` the smooth map of the module docstring, so every iterate is inside
    the open box. With ``method="penalty"`` an inequality adds
    :math:`\tfrac{\rho}{2}\max(0, g)^2` and an equality :math:`\tfrac{\rho}{2} h^2`
    (the optimum violates the constraint by O(1/rho)); with ``"lagrangian"`` the
    augmented Lagrangian :math:`\tfrac{1}{2\rho}(\max(0, \lambda + \rho g)^2 -
    \lambda^2)` (inequality) or :math:`\lambda h + \tfrac{\rho}{2} h^2` (equality) is
    used and the multipliers step :math:`\lambda \leftarrow \max(0, \lambda + \rho g)`
    (resp. :math:`\lambda + \rho h`) every ``multiplier_every`` steps (the inner
    problem is solved approximately in between, as in the classical method), which
    removes the O(1/rho) bias.

    Args:
        objective: ``objective(params) -> scalar``, differentiable (jit-compatible).
        init: Initial design, a pytree of float arrays strictly inside ``bounds``.
        bounds: ``None`` (unbounded) or ``(low, high)``, pytrees shaped like
            ``init`` (leaves broadcast to the leaf's shape; +-inf for an open side).
        optimizer: optax transformation on the unconstrained coordinates (default
            ``optax.adam(0.05)``).
        steps: Number of optimiser steps.
        constraints: :class:`Constraint` s ``g(params) <= 0`` or ``== 0``.
        method: ``"penalty"`` or ``"lagrangian"`` (see above).
        multiplier_every: Optimiser steps between multiplier updates (Lagrangian).
        maximize: Maximise ``objective`` instead (e.g. a discovery significance).
        max_nonfinite: Consecutive skipped (non-finite) steps that raise.
        flat_rtol: :class:`FlatObjectiveWarning` when the objective changes by less
            than ``flat_rtol * max(|f(init)|, 1e-12)`` along the whole path.
        noisy_fraction: :class:`NoisyObjectiveWarning` when the (penalised)
            objective got worse, by more than 1e-2 of its range along the path, in
            more than this fraction of the steps of the second half of the path.
        progress: Show a tqdm progress bar.

    Returns:
        A :class:`DesignResult` with the final design and the path history.

    Raises:
        ValueError: ``bounds`` with low >= high, ``init`` outside ``bounds``, a
            non-scalar objective, a non-finite objective or gradient at ``init``.
        TypeError: A non-callable objective or a constraint of the wrong type.
        FloatingPointError: ``max_nonfinite`` consecutive non-finite gradients.
    """
    constraints, method = _check_inputs(objective, init, constraints, method)
    steps = check_int(steps, "steps", minimum=1)
    multiplier_every = check_int(multiplier_every, "multiplier_every", minimum=1)
    max_nonfinite = check_int(max_nonfinite, "max_nonfinite", minimum=1)
    flat_rtol = check_real(flat_rtol, "flat_rtol")
    noisy_fraction = check_real(noisy_fraction, "noisy_fraction")
    pairs, _ = _leaves_bounds(init, bounds)
    u0 = to_unconstrained(init, bounds)
    _scalar_objective(objective, init)
    optimizer = optax.adam(0.05) if optimizer is None else optimizer
    sign = -1.0 if maximize else 1.0
    n_c = len(constraints)
    rho = jnp.asarray([c.weight for c in constraints], jnp.result_type(float))
    is_eq = np.array([c.kind == "eq" for c in constraints], bool)
    lagrangian = method == "lagrangian"

    def unpack(u):
        return from_unconstrained(u, bounds, like=init)

    def g_values(x):
        if n_c == 0:
            return jnp.zeros((0,), jnp.result_type(float))
        return jnp.stack([jnp.asarray(c.fn(x)).reshape(()) for c in constraints])

    def loss(u, lam):
        x = unpack(u)
        f = jnp.asarray(objective(x))
        g = g_values(x)
        if n_c:
            ineq = (jnp.maximum(0.0, lam + rho * g) ** 2 - lam**2) / (2 * rho)
            eq = lam * g + 0.5 * rho * g**2
            ineq_pen = 0.5 * rho * jnp.maximum(0.0, g) ** 2
            pen = jnp.where(is_eq, eq, ineq if lagrangian else ineq_pen)
            total = sign * f + jnp.sum(pen)
        else:
            total = sign * f
        return total, (f, g)

    @eqx.filter_jit
    def evaluate(u, lam):
        (total, (f, g)), grad = jax.value_and_grad(loss, has_aux=True)(u, lam)
        flat, _ = ravel_pytree(grad)
        return total, f, g, grad, jnp.sqrt(jnp.sum(flat**2))

    @eqx.filter_jit
    def step(u, opt_state, lam, update_lam):
        total, f, g, grad, gnorm = evaluate(u, lam)
        finite = jnp.isfinite(total) & jnp.isfinite(gnorm)
        safe_grad = jax.tree_util.tree_map(
            lambda t: jnp.where(finite, t, jnp.zeros_like(t)), grad
        )
        updates, new_state = optimizer.update(safe_grad, opt_state, u)
        new_u = optax.apply_updates(u, updates)
        new_u = jax.tree_util.tree_map(lambda a, b: jnp.where(finite, a, b), new_u, u)
        new_state = jax.tree_util.tree_map(
            lambda a, b: jnp.where(finite, a, b), new_state, opt_state
        )
        if n_c and lagrangian:
            lam_new = jnp.where(is_eq, lam + rho * g, jnp.maximum(0.0, lam + rho * g))
            lam = jnp.where(finite & update_lam, lam_new, lam)
        scalars = (total, f, g, gnorm, finite)
        return new_u, new_state, lam, scalars, unpack(new_u)

    lam = jnp.zeros((n_c,), jnp.result_type(float))
    total0, f0, g0, _, gn0 = evaluate(u0, lam)
    if not (np.isfinite(float(f0)) and np.isfinite(float(gn0))):
        raise ValueError(
            "`objective` or its gradient is not finite at `init` "
            f"(objective={float(f0)}, gradient norm={float(gn0)}); choose another "
            "starting design."
        )
    opt_state = optimizer.init(u0)
    u = u0
    path = [init]
    values = [float(f0)]
    totals = [float(total0)]
    gnorms = [float(gn0)]
    gvals = [np.asarray(g0)]
    n_skipped = 0
    run_bad = 0
    bar = _progress(steps, enabled=progress)
    try:
        for i in range(steps):
            u, opt_state, lam, scalars, x = step(
                u, opt_state, lam, jnp.asarray((i + 1) % multiplier_every == 0)
            )
            total, f, g, gnorm, finite = jax.device_get(scalars)
            if not bool(finite):
                n_skipped += 1
                run_bad += 1
                warnings.warn(
                    f"optimise_design: step {i} had a non-finite objective or "
                    f"gradient (objective={float(f)}, gradient norm={float(gnorm)}); "
                    "the step was skipped.",
                    NonFiniteGradientWarning,
                    stacklevel=2,
                )
                if run_bad >= max_nonfinite:
                    raise FloatingPointError(
                        f"optimise_design: {run_bad} consecutive steps had a "
                        f"non-finite `objective` gradient (last at step {i}); the "
                        "optimiser stopped at the last finite design."
                    )
            else:
                run_bad = 0
            if bar is not None:
                bar.update(1)
                bar.set_postfix(objective=f"{float(f):.5g}")
            path.append(x)
            # Record the objective at the new point on the next evaluation; here the
            # value is the one at the point where the gradient was taken.
            values.append(float(f))
            totals.append(float(total))
            gnorms.append(float(gnorm) if bool(finite) else float("nan"))
            gvals.append(np.asarray(g))
    finally:
        if bar is not None:
            bar.close()
    total_end, f_end, g_end, _, gn_end = evaluate(u, lam)
    # Shift so that values[k] is the objective at path[k].
    values = np.asarray(values[1:] + [float(f_end)])
    totals = np.asarray(totals[1:] + [float(total_end)])
    gnorms = np.asarray(gnorms[1:] + [float(gn_end)])
    gvals = np.stack(gvals[1:] + [np.asarray(g_end)]).reshape(steps + 1, n_c)
    _diagnose(values, totals, gnorms, flat_rtol, noisy_fraction)
    return DesignResult(
        params=unpack(u),
        value=f_end,
        path=jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *path),
        values=values,
        grad_norms=gnorms,
        constraint_values=gvals,
        multipliers=np.asarray(lam),
        n_skipped=n_skipped,
    )


def _diagnose(values, totals, gnorms, flat_rtol, noisy_fraction):
    ok = np.isfinite(values)
    v = values[ok]
    if v.size >= 2:
        scale = max(abs(float(v[0])), 1e-12)
        if float(np.max(v) - np.min(v)) <= flat_rtol * scale:
            warnings.warn(
                "optimise_design: the objective is flat along the path (range "
                f"{float(np.max(v) - np.min(v)):.3g} over {v.size} points, gradient "
                f"norm at the end {gnorms[-1]:.3g}); the design is not constrained "
                "by this objective or the gradient vanishes (check soft cuts' "
                "softness and the bounds).",
                FlatObjectiveWarning,
                stacklevel=3,
            )
            return
    t = totals[np.isfinite(totals)]
    half = t[t.size // 2 :]
    if half.size >= 6:
        # Dithering of an adaptive optimiser at convergence is not noise: count
        # only increases above 1e-2 of the objective's range along the path.
        d = np.diff(half)
        tol = 1e-2 * float(np.max(t) - np.min(t)) + 1e-12 * float(np.max(np.abs(t)))
        worse = float(np.mean(d > tol))
        if worse > noisy_fraction:
            warnings.warn(
                f"optimise_design: the objective got worse in {100 * worse:.0f}% of "
                "the steps of the second half of the path; it is noisy (e.g. "
                "Monte-Carlo estimated, or hard cuts) or the step size is too large.",
                NoisyObjectiveWarning,
                stacklevel=3,
            )


def _progress(total, *, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="optimise_design", unit="step", leave=False)


def check_gradient(
    objective: Callable[[Any], jax.Array],
    params,
    *,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
) -> GradientCheck:
    """Compare ``jax.grad(objective)`` with central finite differences.

    Run it in float64 (``jax.config.update("jax_enable_x64", True)``): in float32
    the round-off of a central difference with step ``eps`` is ~1e-7 / eps relative.
    The step is scaled per component: ``h_i = eps * max(1, |x_i|)``.

    Args:
        objective: ``objective(params) -> scalar``.
        params: Design pytree where the gradient is checked.
        eps: Relative finite-difference step.
        rtol: Relative tolerance.
        atol: Absolute tolerance (objective units per parameter unit).

    Returns:
        A :class:`GradientCheck`.

    Raises:
        ValueError: A non-scalar objective.
    """
    eps = check_real(eps, "eps")
    _scalar_objective(objective, params)
    flat, unravel = ravel_pytree(params)
    flat = jnp.asarray(flat, jnp.result_type(float))

    def f(v):
        return jnp.asarray(objective(unravel(v)))

    analytic = np.asarray(jax.jit(jax.grad(f))(flat), dtype=float)
    x = np.asarray(flat, dtype=float)
    h = eps * np.maximum(1.0, np.abs(x))
    f_jit = jax.jit(f)
    numeric = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h[i]
        plus = float(f_jit(jnp.asarray(x + e, flat.dtype)))
        minus = float(f_jit(jnp.asarray(x - e, flat.dtype)))
        numeric[i] = (plus - minus) / (2 * h[i])
    err = np.abs(analytic - numeric)
    scaled = err / (atol + rtol * np.abs(numeric))
    return GradientCheck(
        analytic=analytic,
        numeric=numeric,
        max_abs_error=float(np.max(err)),
        max_rel_error=float(np.max(scaled)),
        ok=bool(np.all(np.isfinite(scaled)) and np.all(scaled <= 1.0)),
    )
