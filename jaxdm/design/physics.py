r"""Physics-informed losses: PDE residuals of neural fields, shape penalties, symmetry.

- :func:`pde_residual` / :func:`residual_penalty` turn a differential operator,
  written with :func:`gradient`, :func:`laplacian` (``jax.grad``, ``jax.hessian``) or
  any ``jax.jacfwd`` composition, into residuals at collocation points and a mean
  squared penalty on a neural field (physics-informed neural networks, Raissi,
  Perdikaris & Karniadakis, J. Comput. Phys. 378, 686 (2019)).
- :func:`lensing_poisson_residual`: the lens equation's Poisson equation
  :math:`\nabla^2\psi = 2\kappa` for a lens potential :math:`\psi` [arcsec^2] and a
  convergence :math:`\kappa` (Schneider, Ehlers & Falco, *Gravitational Lenses*,
  1992, eq. 5.8; the deflection is :math:`\alpha = \nabla\psi`).
- :func:`positivity_penalty`, :func:`monotonicity_penalty`,
  :func:`normalisation_penalty` for learned spectra and efficiency curves.
- :class:`DihedralInvariant`: group averaging over the 8 rotations/reflections of
  the square pixel grid (the dihedral group D4), which makes any embedding exactly
  invariant (up to float round-off) to those symmetries of lens images; the
  group-averaging construction of Reynolds operators, as in e.g. Cohen & Welling,
  arXiv:1602.07576 (group-equivariant CNNs pool over the same group).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from .._checks import guard_finite

__all__ = [
    "DihedralInvariant",
    "dihedral_images",
    "gradient",
    "laplacian",
    "lensing_poisson_residual",
    "monotonicity_penalty",
    "normalisation_penalty",
    "pde_residual",
    "PotentialBatch",
    "positivity_penalty",
    "potential_loss",
    "residual_penalty",
    "scalar_field",
]


def scalar_field(module) -> Callable:
    """Wrap a module mapping (d,) -> (1,) (e.g. ``jaxdm.nn.MLP``) as (d,) -> scalar."""

    def field(x):
        return jnp.reshape(module(x), ())

    return field


def gradient(field: Callable) -> Callable:
    """``x -> grad field(x)`` for a scalar field of one point ``x`` (d,)."""
    return jax.grad(field)


def laplacian(field: Callable) -> Callable:
    r"""``x -> \nabla^2 field(x)``: the trace of ``jax.hessian`` (fwd-over-rev)."""

    def lap(x):
        return jnp.trace(jax.hessian(field)(x))

    return lap


def pde_residual(field: Callable, operator: Callable, points) -> jax.Array:
    """Residual of ``operator(field, x) = 0`` at each collocation point.

    Args:
        field: Scalar field ``field(x) -> scalar`` of one point ``x`` (d,).
        operator: ``operator(field, x) -> residual`` (scalar or vector), built from
            :func:`gradient`, :func:`laplacian`, ``jax.jacfwd``, ``jax.hessian``.
        points: Collocation points, shape (n, d).

    Returns:
        Residuals, shape (n,) or (n, ...).
    """
    points = guard_finite(jnp.asarray(points), "points")
    if points.ndim != 2:
        raise ValueError(f"`points` must have shape (n, d); got {points.shape}.")
    return jax.vmap(lambda x: operator(field, x))(points)


def residual_penalty(field: Callable, operator: Callable, points) -> jax.Array:
    """Mean squared residual of :func:`pde_residual` (a loss term), scalar."""
    r = pde_residual(field, operator, points)
    return jnp.mean(jnp.reshape(r, (r.shape[0], -1)) ** 2)


def lensing_poisson_residual(potential: Callable, convergence: Callable, points):
    r"""Residual :math:`\nabla^2\psi(x) - 2\kappa(x)` of the lens Poisson equation.

    Args:
        potential: Lens potential :math:`\psi(x)` [arcsec^2] of one image-plane
            position ``x`` (2,) [arcsec].
        convergence: :math:`\kappa(x)` (dimensionless) of one position.
        points: Collocation points [arcsec], shape (n, 2); keep them away from
            singular centres (an SIS has :math:`\kappa \propto 1/r`).

    Returns:
        Residuals, shape (n,) (dimensionless).
    """

    def op(psi, x):
        return laplacian(psi)(x) - 2.0 * convergence(x)

    return pde_residual(potential, op, points)


def positivity_penalty(values) -> jax.Array:
    """Mean of ``min(values, 0)^2``: zero iff every value is >= 0."""
    v = jnp.asarray(values)
    return jnp.mean(jnp.minimum(v, 0.0) ** 2)


def monotonicity_penalty(values, *, increasing: bool = True) -> jax.Array:
    """Mean squared violation of monotonicity along the last axis (a grid), scalar.

    Args:
        values: Curve on an ordered grid, shape (..., n) (e.g. an efficiency curve
            on increasing energies).
        increasing: Penalise decreases (True) or increases (False).
    """
    d = jnp.diff(jnp.asarray(values), axis=-1)
    d = d if increasing else -d
    return jnp.mean(jnp.minimum(d, 0.0) ** 2)


def normalisation_penalty(values, grid, *, target: float = 1.0) -> jax.Array:
    """``(trapezoid integral of values over grid - target)^2`` (e.g. a density).

    Args:
        values: Function values on ``grid``, shape (n,).
        grid: Increasing abscissae, shape (n,) [unit u]; ``values`` in [1/u] for a
            density normalised to ``target``.
        target: Required integral.
    """
    integral = jnp.trapezoid(jnp.asarray(values), jnp.asarray(grid))
    return (integral - target) ** 2


def dihedral_images(image) -> jax.Array:
    """The 8 images of the dihedral group D4 acting on a square image.

    Args:
        image: Shape (H, W) with H == W, or (C, H, W).

    Returns:
        Shape (8, *image.shape): the 4 rotations by 90 degrees, then the 4 rotations
        of the transposed image.
    """
    image = jnp.asarray(image)
    h, w = image.shape[-2:]
    if h != w:
        raise ValueError(f"`image` must be square for D4; got {image.shape}.")
    axes = (image.ndim - 2, image.ndim - 1)
    rots = [jnp.rot90(image, k, axes=axes) for k in range(4)]
    flipped = jnp.swapaxes(image, *axes)
    rots += [jnp.rot90(flipped, k, axes=axes) for k in range(4)]
    return jnp.stack(rots)


class DihedralInvariant(eqx.Module):
    r"""Embedding averaged over D4: :math:`\bar f(x) = \frac18\sum_{g} f(g x)`.

    Invariant by construction: :math:`\bar f(h x) = \bar f(x)` for every
    :math:`h \in D_4` (rotations by 90 degrees and reflections of the pixel grid),
    since :math:`g \mapsto g h` permutes the group. Trains through
    ``jaxdm.train.fit`` like the wrapped module.

    Attributes:
        module: Embedding of one image (e.g. ``jaxdm.nn.CNNEmbedding``).
    """

    module: eqx.Module

    def __call__(self, image):
        """Average of ``module`` over the 8 transformed images."""
        return jnp.mean(jax.vmap(self.module)(dihedral_images(image)), axis=0)


class PotentialBatch(eqx.Module):
    """Training rows for a neural lens potential (one row per position).

    Attributes:
        x: Image-plane positions [arcsec], shape (n, 2).
        alpha: Observed deflection at ``x`` [arcsec], shape (n, 2).
        kappa: Convergence at ``x`` (dimensionless), shape (n,).
        alpha_weight: 1 where ``alpha`` was measured, 0 for collocation-only rows
            (the Poisson term uses every row), shape (n,).
    """

    x: jax.Array
    alpha: jax.Array
    kappa: jax.Array
    alpha_weight: jax.Array


def potential_loss(module, batch: PotentialBatch, key=None, *, poisson_weight=1.0):
    r"""Loss of a neural lens potential: deflection misfit plus Poisson residual.

    :math:`\langle|\nabla\psi_{NN}(x) - \alpha(x)|^2\rangle_{\rm measured}
    + w\,\langle(\nabla^2\psi_{NN}(x) - 2\kappa(x))^2\rangle`; with
    ``poisson_weight = 0`` it is a plain fit of the deflection field. Use with
    ``jaxdm.train.fit`` as
    ``lambda m, b, k: potential_loss(m, b, k, poisson_weight=w)``.

    Args:
        module: Network mapping a position (2,) [arcsec] to (1,) [arcsec^2].
        batch: :class:`PotentialBatch` (or any object with ``x``, ``alpha``,
            ``kappa``).
        key: Unused (the loss is deterministic); accepted for ``fit``'s signature.
        poisson_weight: Weight ``w`` of the physics term (>= 0).

    Returns:
        Scalar loss [arcsec^2].
    """
    del key
    psi = scalar_field(module)
    grad_psi = jax.vmap(gradient(psi))(batch.x)
    w = batch.alpha_weight
    sq = jnp.sum((grad_psi - batch.alpha) ** 2, axis=-1)
    misfit = jnp.sum(w * sq) / jnp.maximum(jnp.sum(w), 1.0)
    if isinstance(poisson_weight, int | float) and poisson_weight == 0:
        return misfit
    lap = jax.vmap(laplacian(psi))(batch.x)
    return misfit + poisson_weight * jnp.mean((lap - 2.0 * batch.kappa) ** 2)
