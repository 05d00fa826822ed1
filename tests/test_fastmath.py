"""Float32 arctan/artanh polynomials against float64 references."""

import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest

from jaxdm._fastmath import arctan, arctanh


def _grid(hi):
    lin = np.linspace(-hi, hi, 200_001)
    logs = np.logspace(-10, np.log10(hi), 4_000)
    return np.concatenate([lin, logs, -logs, [0.0]])


def test_arctan_float32_accuracy():
    """Max abs error <= 2e-7 on [-1e6, 1e6] (XLA's own float32 arctan: 1.9e-7);
    inf maps to pi/2. A wrong coefficient or range-reduction branch gives >= 1e-5."""
    x = _grid(1e6).astype(np.float32)
    got = np.asarray(arctan(jnp.asarray(x)), np.float64)
    ref = np.arctan(x.astype(np.float64))
    assert np.max(np.abs(got - ref)) < 2e-7
    # Relative accuracy for tiny arguments (the SIE's q -> 1 limit divides by e).
    small = np.abs(ref) > 0
    assert np.max(np.abs(got - ref)[small] / np.abs(ref[small])) < 2e-7
    np.testing.assert_allclose(
        np.asarray(arctan(jnp.array([np.inf, -np.inf], jnp.float32))),
        [np.pi / 2, -np.pi / 2],
        rtol=1e-7,
    )


def test_arctanh_float32_accuracy():
    """Max rel error <= 2e-7 on (-1, 1) including tiny arguments; +-1 gives +-inf."""
    x = np.concatenate([_grid(0.999999), [0.5, -0.5, 0.4999999]]).astype(np.float32)
    x = x[np.abs(x) < 1]
    got = np.asarray(arctanh(jnp.asarray(x)), np.float64)
    ref = np.arctanh(x.astype(np.float64))
    nz = ref != 0
    assert np.max(np.abs(got - ref)[nz] / np.abs(ref[nz])) < 2e-7
    assert np.all(got[~nz] == 0)
    assert np.isposinf(float(arctanh(jnp.float32(1.0))))


def test_gradients_are_exact_and_jit_vmap():
    x = jnp.linspace(-3.0, 3.0, 13, dtype=jnp.float32)
    g = jax.vmap(jax.grad(arctan))(x)
    np.testing.assert_allclose(g, 1 / (1 + x**2), rtol=1e-6)
    u = jnp.linspace(-0.9, 0.9, 13, dtype=jnp.float32)
    g2 = jax.jit(jax.vmap(jax.grad(arctanh)))(u)
    np.testing.assert_allclose(g2, 1 / (1 - u**2), rtol=1e-6)
    np.testing.assert_array_equal(jax.jit(arctan)(x), arctan(x))


@pytest.mark.x64
def test_float64_is_exact():
    """float64 inputs use jnp.arctan/arctanh unchanged (bitwise)."""
    x = jnp.asarray(_grid(50.0))
    assert x.dtype == jnp.float64
    np.testing.assert_array_equal(arctan(x), jnp.arctan(x))
    u = x / 51
    np.testing.assert_array_equal(arctanh(u), jnp.arctanh(u))
    jax.test_util.check_grads(arctan, (jnp.array([0.3, -2.0, 7.0]),), order=2)
