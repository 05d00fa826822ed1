"""Two-word Threefry uniforms/normals: bitwise JAX's hash, correct distributions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from jax.extend.random import threefry_2x32

from jaxdm._random import _bits, normal, uniform


@pytest.mark.parametrize("size", [1, 2, 7, 1000, 4097])
def test_bits_equal_jax_threefry(size):
    """The unrolled rounds give jax.extend.random.threefry_2x32's words bitwise, odd
    sizes included (a wrong rotation, key schedule or counter layout breaks this)."""
    key = jax.random.key(size)
    ref = threefry_2x32(jax.random.key_data(key), jax.lax.iota(np.uint32, size))
    np.testing.assert_array_equal(_bits(key, size), ref)
    np.testing.assert_array_equal(jax.jit(_bits, static_argnums=1)(key, size), ref)


def test_distributions_and_shapes():
    """KS against U(0, 1) and N(0, 1) at 2e5 draws (fixed key); moments; range."""
    key = jax.random.key(7)
    u = np.asarray(uniform(key, (400, 500)))
    g = np.asarray(normal(jax.random.fold_in(key, 1), (200_000,)))
    assert u.shape == (400, 500)
    assert u.dtype == np.float32
    assert 0.0 <= u.min()
    assert u.max() < 1.0
    assert scipy.stats.kstest(u.ravel(), "uniform").pvalue > 1e-3
    assert scipy.stats.kstest(g, "norm").pvalue > 1e-3
    assert abs(g.mean()) < 0.01
    assert abs(g.std() - 1) < 0.01
    # Successive words are uncorrelated (the two halves come from one hash).
    assert abs(np.corrcoef(u.ravel()[:-1], u.ravel()[1:])[0, 1]) < 0.01
    v = uniform(key, (1000,), minval=-2.0, maxval=3.0)
    assert -2.0 <= float(v.min())
    assert float(v.max()) < 3.0
    # Different keys, different streams; same key, same stream under jit.
    assert not np.array_equal(u, np.asarray(uniform(jax.random.key(8), (400, 500))))
    np.testing.assert_array_equal(jax.jit(lambda k: uniform(k, (400, 500)))(key), u)


def test_fallbacks():
    """Non-threefry keys and float64 go through jax.random unchanged."""
    key = jax.random.key(3, impl="rbg")
    np.testing.assert_array_equal(
        uniform(key, (5,)), jax.random.uniform(key, (5,), jnp.float32)
    )
    k = jax.random.key(3)
    with jax.enable_x64(True):
        np.testing.assert_array_equal(
            normal(k, (5,), jnp.float64), jax.random.normal(k, (5,), jnp.float64)
        )
