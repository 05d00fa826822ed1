"""MAP and Laplace start for NUTS: a starting point and a dense inverse mass matrix.

NUTS from a prior draw spends its first warmup iterations at the maximum tree depth
(1,023 leapfrog steps) while the step size and mass matrix are still wrong; with an
expensive likelihood (the NPTF of a Galactic Centre map, ~0.1 s per gradient) that
alone costs hours. :func:`laplace_start` instead finds the posterior mode in numpyro's
unconstrained space by Adam (optax) and returns the inverse Hessian there (the
Laplace approximation, e.g. Gelman et al., *Bayesian Data Analysis*, 3rd ed., sec.
4.1) as NUTS's dense inverse mass matrix, so that sampling can start at the mode with
a whitened geometry (``run_nuts(init_params=..., inverse_mass_matrix=...)``).

The Hessian is a central difference of the jitted gradient (2 d gradient calls)
rather than ``jax.hessian``: the NPTF likelihood's count probabilities carry a
``custom_vjp`` (closed-form reverse mode), which forward mode cannot differentiate.
Its eigenvalues are floored at ``min_eigenvalue`` so that a direction the data leave
flat (or a mode the optimiser stopped short of) still gives a positive-definite
matrix; NUTS is exact for any mass matrix, this one only sets its efficiency.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._args import check_int, check_real
from .._checks import check_key
from .compiled import CompiledPotential, compile_potential

__all__ = ["LaplaceStart", "laplace_start"]


class LaplaceStart(NamedTuple):
    """Result of :func:`laplace_start`.

    Attributes:
        init_params: ``{site: value}`` at the mode, in the model's (constrained)
            parameter space, as ``run_nuts(init_params=)`` takes it.
        inverse_mass_matrix: Laplace covariance in numpyro's unconstrained space,
            (d, d), sites flattened in numpyro's order (sorted site names).
        neg_log_density: Potential (- log joint, unconstrained) at the mode.
        hessian_eigenvalues: Eigenvalues of the symmetrised Hessian before flooring.
    """

    init_params: dict
    inverse_mass_matrix: np.ndarray
    neg_log_density: float
    hessian_eigenvalues: np.ndarray


def laplace_start(
    key,
    model: Callable,
    data: Mapping | None = None,
    *,
    steps: int = 200,
    learning_rate: float = 0.05,
    step: float = 1e-2,
    min_eigenvalue: float = 1e-2,
    potential: CompiledPotential | None = None,
) -> LaplaceStart:
    """Posterior mode and Laplace covariance of a numpyro model (unconstrained space).

    Args:
        key: PRNG key (``jax.random.key``) of numpyro's initialisation (median of
            each prior, so the key only matters for models without one).
        model: numpyro model, called as ``model(**data)``.
        data: Its keyword arguments.
        steps: Adam steps (gradient norm clipped at 100; non-finite gradient entries
            are zeroed rather than stepped on).
        learning_rate: Adam learning rate in unconstrained units.
        step: Central-difference step of the Hessian (unconstrained units).
        min_eigenvalue: Floor of the Hessian's eigenvalues (a variance <= 1 / floor).
        potential: Optional :func:`~jaxdm.fits.compile_potential` of the same model
            and data: its once-compiled batched value and gradient then serves the
            Adam steps (``num_batch`` starts at once, the prior medians and
            ``num_batch - 1`` points jittered by 0.3 around them with ``key``; the
            best end point is kept) and the Hessian's 2 d gradients, and pass the
            same object to :func:`~jaxdm.fits.run_nuts` so that nothing compiles the
            likelihood again. ``model`` and ``data`` are then not traced again.

    Returns:
        :class:`LaplaceStart`.
    """
    check_key(key)
    steps = check_int(steps, "steps", minimum=1)
    learning_rate = check_real(learning_rate, "learning_rate")
    step = check_real(step, "step")
    min_eigenvalue = check_real(min_eigenvalue, "min_eigenvalue")
    if not (learning_rate > 0 and step > 0 and min_eigenvalue > 0):
        raise ValueError(
            "`learning_rate`, `step` and `min_eigenvalue` must be > 0; got "
            f"{learning_rate}, {step}, {min_eigenvalue}."
        )
    data = dict(data or {})
    if potential is None:  # traced, compiled once (never run eagerly)
        potential = compile_potential(key, model, data, num_batch=1)
    if not isinstance(potential, CompiledPotential):
        raise TypeError(
            "`potential` must be a CompiledPotential (fits.compile_potential); "
            f"got {type(potential).__name__}."
        )
    batch_vg = potential.value_and_grad
    # One Adam start per compiled row (a padded row would cost the same): the
    # prior medians and num_batch - 1 points jittered around them by `key`.
    jit = 0.3 * np.asarray(
        jax.random.normal(key, (potential.num_batch - 1, potential.dim))
    )
    starts = np.concatenate([potential.init_z[None], potential.init_z + jit])
    z = jnp.asarray(starts)
    opt = optax.chain(optax.clip_by_global_norm(100.0), optax.adam(learning_rate))
    # vmap over starts: each start's gradient norm is clipped on its own.
    update = jax.jit(jax.vmap(lambda g, s, z: opt.update(g, s, z)))
    apply = jax.jit(optax.apply_updates)
    state = jax.vmap(opt.init)(z)
    for _ in range(steps):
        _, g = batch_vg(np.asarray(z))
        g = np.where(np.isfinite(g), g, 0.0).astype(g.dtype)
        upd, state = update(jnp.asarray(g), state, z)
        z = apply(z, upd)
    vals, _ = batch_vg(np.asarray(z))
    best = int(np.nanargmin(np.where(np.isfinite(vals), vals, np.nan)))
    z = np.asarray(z)[best]
    val = float(vals[best])
    d = z.shape[0]
    e = step * np.eye(d, dtype=z.dtype)
    g = np.asarray(batch_vg(np.concatenate([z + e, z - e]))[1], float)
    hess = ((g[:d] - g[d:]) / (2 * step)).T  # column i: d grad / d z_i
    hess = 0.5 * (hess + hess.T)
    if not np.all(np.isfinite(hess)):
        raise ValueError(
            "the Hessian at the optimum is not finite; the model's log density is "
            "not finite near the mode found (check `data` and the priors)."
        )
    w, v = np.linalg.eigh(hess)
    cov = (v / np.maximum(w, min_eigenvalue)) @ v.T
    init = {k: v[0] for k, v in potential.constrain(z[None]).items()}
    return LaplaceStart(init, cov, val, w)
