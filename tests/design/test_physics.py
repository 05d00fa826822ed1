"""Physics-informed losses: PINN residuals, penalties, D4-invariant embeddings."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm import design, nn
from jaxdm.simulators import lensing


def _ring_points(n=64, r_min=0.3, r_max=2.0):
    k1, k2 = jax.random.split(jax.random.key(3))
    r = jax.random.uniform(k1, (n,), minval=r_min, maxval=r_max)
    t = jax.random.uniform(k2, (n,), maxval=2 * jnp.pi)
    return jnp.stack([r * jnp.cos(t), r * jnp.sin(t)], axis=-1)


@pytest.mark.x64
def test_poisson_residual_of_sis_vanishes_and_perturbed_does_not():
    """SIS: psi = theta_E r, nabla^2 psi = theta_E / r = 2 kappa (SEF 1992 eq. 8.34)."""
    p = lensing.SISParams(theta_e=1.2, x0=0.1, y0=-0.05)

    def psi(x):
        return lensing.sis_potential(x[0], x[1], p)

    def kappa(x):
        return lensing.sis_convergence(x[0], x[1], p)

    pts = _ring_points()
    res = design.lensing_poisson_residual(psi, kappa, pts)
    assert float(jnp.max(jnp.abs(res))) < 1e-10

    # A harmonic perturbation (x^2 - y^2) leaves the residual 0; x^2 + y^2 does not.
    def harmonic(x):
        return psi(x) + 0.1 * (x[0] ** 2 - x[1] ** 2)

    def bumped(x):
        return psi(x) + 0.1 * (x[0] ** 2 + x[1] ** 2)

    assert (
        float(jnp.max(jnp.abs(design.lensing_poisson_residual(harmonic, kappa, pts))))
        < 1e-10
    )
    res_b = design.lensing_poisson_residual(bumped, kappa, pts)
    np.testing.assert_allclose(res_b, 0.4, rtol=1e-10)  # laplacian of 0.1 r^2


@pytest.mark.x64
def test_pde_residual_generic_operator_and_penalty():
    # u = exp(x) sin(y) solves Laplace's equation; u = x^3 gives nabla^2 u = 6x.
    pts = _ring_points(16)

    def lap_op(f, x):
        return design.laplacian(f)(x)

    harm = design.pde_residual(lambda x: jnp.exp(x[0]) * jnp.sin(x[1]), lap_op, pts)
    assert float(jnp.max(jnp.abs(harm))) < 1e-12
    cubic = design.pde_residual(lambda x: x[0] ** 3, lap_op, pts)
    np.testing.assert_allclose(cubic, 6 * pts[:, 0], rtol=1e-12)
    pen = design.residual_penalty(lambda x: x[0] ** 3, lap_op, pts)
    np.testing.assert_allclose(pen, jnp.mean((6 * pts[:, 0]) ** 2), rtol=1e-12)


def test_shape_penalties():
    grid = jnp.linspace(0.0, 1.0, 101)
    assert float(design.positivity_penalty(grid)) == 0.0
    assert float(design.positivity_penalty(grid - 0.5)) > 0.0
    assert float(design.monotonicity_penalty(grid)) == 0.0
    assert float(design.monotonicity_penalty(grid[::-1])) > 0.0
    assert float(design.monotonicity_penalty(grid[::-1], increasing=False)) == 0.0
    assert float(design.normalisation_penalty(jnp.ones_like(grid), grid)) < 1e-12
    np.testing.assert_allclose(
        design.normalisation_penalty(2 * jnp.ones_like(grid), grid), 1.0, rtol=1e-5
    )


def test_dihedral_invariant_embedding(getkey):
    """Rotated/reflected inputs give equal outputs to 1e-5; a plain CNN does not."""
    cnn = nn.CNNEmbedding(1, 4, image_shape=(8, 8), channels=(4, 8), key=getkey())
    inv = design.DihedralInvariant(cnn)
    img = jax.random.normal(getkey(), (8, 8))
    outs = jax.jit(jax.vmap(inv))(design.dihedral_images(img))
    np.testing.assert_allclose(outs, jnp.broadcast_to(inv(img), outs.shape), atol=1e-5)
    # The group average is what makes it invariant: the wrapped CNN is not.
    assert float(jnp.max(jnp.abs(cnn(jnp.rot90(img)) - cnn(img)))) > 1e-3
    # jit and vmap agree with eager.
    batch = jnp.stack([img, jnp.rot90(img)])
    out = jax.jit(jax.vmap(inv))(batch)
    np.testing.assert_allclose(out[0], out[1], atol=1e-5)
    with pytest.raises(ValueError, match="square"):
        design.dihedral_images(jnp.ones((3, 4)))


@pytest.mark.slow
def test_neural_potential_with_poisson_loss_reproduces_sie_deflection(getkey):
    """MLP psi trained through fit on noisy alpha + nabla^2 psi = 2 kappa.

    Stated error: relative RMS of grad psi vs the SIE deflection (Kormann, Schneider &
    Bartelmann 1994, as in jaxdm.simulators.lensing.sie_deflection) below 5% on the
    annulus 0.3-2.5 arcsec, from 64 deflections with 0.02 arcsec noise.
    """
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "experiments" / "lensing_pinn_potential.py"
    spec = importlib.util.spec_from_file_location("lensing_pinn_potential", path)
    exp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exp)

    class Args:
        n_data, n_colloc, noise, poisson_weight = 64, 960, 0.02, 1.0
        width, epochs, seed, out = 64, 400, 0, "outputs/test_pinn"

    errors = exp.main(Args)
    assert errors["data + Poisson"] < 0.05
