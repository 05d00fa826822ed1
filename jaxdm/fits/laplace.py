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
from jax.flatten_util import ravel_pytree
from numpyro.infer import init_to_median
from numpyro.infer.util import initialize_model

from .._args import check_int, check_real
from .._checks import check_key

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
    with jax.numpy_rank_promotion("allow"):
        info, potential_fn, postprocess_fn, _ = initialize_model(
            key,
            model,
            model_kwargs=data,
            init_strategy=init_to_median,
        )
    z0, unravel = ravel_pytree(info.z)

    def potential(z):
        return potential_fn(unravel(z))

    vg = jax.jit(jax.value_and_grad(potential))
    opt = optax.chain(optax.clip_by_global_norm(100.0), optax.adam(learning_rate))

    @jax.jit
    def update(z, state):
        val, g = vg(z)
        g = jnp.where(jnp.isfinite(g), g, 0.0)
        upd, state = opt.update(g, state, z)
        return optax.apply_updates(z, upd), state, val

    z, state = z0, opt.init(z0)
    for _ in range(steps):
        z, state, _ = update(z, state)
    val = float(vg(z)[0])
    d = z.shape[0]
    cols = []
    for i in range(d):
        e = jnp.zeros(d, z.dtype).at[i].set(step)
        g_hi = np.asarray(vg(z + e)[1], float)
        g_lo = np.asarray(vg(z - e)[1], float)
        cols.append((g_hi - g_lo) / (2 * step))
    hess = np.stack(cols, 1)
    hess = 0.5 * (hess + hess.T)
    if not np.all(np.isfinite(hess)):
        raise ValueError(
            "the Hessian at the optimum is not finite; the model's log density is "
            "not finite near the mode found (check `data` and the priors)."
        )
    w, v = np.linalg.eigh(hess)
    cov = (v / np.maximum(w, min_eigenvalue)) @ v.T
    with jax.numpy_rank_promotion("allow"):
        constrained = postprocess_fn(unravel(z))
    init = {k: np.asarray(constrained[k]) for k in info.z}
    return LaplaceStart(init, cov, val, w)
