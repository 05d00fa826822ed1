"""Batched rational-quadratic splines against distrax's bijector and exact limits."""

import distrax
import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest

from jaxdm._rqspline import rq_forward, rq_inverse, rq_knots

BOUND = 3.0
K = 6


def _inputs(key, n, dtype, scale=1.0):
    kp, kx = jax.random.split(key)
    params = (jax.random.normal(kp, (n, 3 * K + 1)) * scale).astype(dtype)
    # Inside, outside and exactly on the interval ends.
    x = jnp.concatenate(
        [
            jax.random.uniform(kx, (n - 4,), minval=-1.2 * BOUND, maxval=1.2 * BOUND),
            jnp.array([-BOUND, BOUND, -10.0, 10.0]),
        ]
    ).astype(dtype)
    return params, x


def _distrax(params, bound=BOUND):
    return distrax.RationalQuadraticSpline(
        params, range_min=-bound, range_max=bound, boundary_slopes="identity"
    )


@pytest.mark.x64
def test_equals_distrax_in_float64(getkey):
    """Same parameterisation as distrax: forward, inverse and both log-dets agree to
    1e-12 (a different bin-size floor, slope offset or bin search gives >= 1e-5)."""
    params, x = _inputs(getkey(), 2000, jnp.float64)
    y_ref, ld_ref = _distrax(params).forward_and_log_det(x)
    y, ld = rq_forward(x, params, BOUND)
    np.testing.assert_allclose(y, y_ref, atol=1e-12)
    np.testing.assert_allclose(ld, ld_ref, atol=1e-12)
    xi_ref, ldi_ref = _distrax(params).inverse_and_log_det(y_ref)
    xi, ldi = rq_inverse(y_ref, params, BOUND)
    np.testing.assert_allclose(xi, xi_ref, atol=1e-12)
    np.testing.assert_allclose(ldi, ldi_ref, atol=1e-12)
    np.testing.assert_allclose(xi, x, atol=1e-9)
    np.testing.assert_allclose(ldi, -ld, atol=1e-9)


def test_float32_close_to_distrax_and_round_trip(getkey):
    params, x = _inputs(getkey(), 4000, jnp.float32, scale=0.5)
    y_ref, ld_ref = _distrax(params).forward_and_log_det(x)
    y, ld = jax.jit(rq_forward, static_argnums=2)(x, params, BOUND)
    np.testing.assert_allclose(y, y_ref, atol=2e-5)
    np.testing.assert_allclose(ld, ld_ref, atol=2e-4)
    xi, ldi = jax.jit(rq_inverse, static_argnums=2)(y, params, BOUND)
    np.testing.assert_allclose(xi, x, atol=2e-4)
    np.testing.assert_allclose(ldi, -ld, atol=2e-3)


def test_knots_and_limits():
    """Knots span [-B, B] monotonically with unit end slopes; zero params give the
    identity everywhere; outside [-B, B] the map is the identity with log-det 0."""
    params = jax.random.normal(jax.random.key(3), (5, 3 * K + 1))
    x_pos, y_pos, slopes = rq_knots(params, BOUND)
    for pos in (x_pos, y_pos):
        np.testing.assert_allclose(pos[:, 0], -BOUND)
        np.testing.assert_allclose(pos[:, -1], BOUND)
        assert np.all(np.diff(np.asarray(pos), axis=-1) >= 1e-4 * 0.99)
    np.testing.assert_allclose(slopes[:, [0, -1]], 1.0)
    assert np.all(np.asarray(slopes) > 0)
    x = jnp.linspace(-5.0, 5.0, 41)
    y, ld = rq_forward(x, jnp.zeros((41, 3 * K + 1)), BOUND)
    np.testing.assert_allclose(y, x, atol=1e-6)
    np.testing.assert_allclose(ld, 0.0, atol=1e-6)
    out = jnp.array([-7.0, -BOUND, BOUND, 7.0])
    y, ld = rq_forward(out, params[:4], BOUND)
    np.testing.assert_array_equal(y, out)
    np.testing.assert_array_equal(ld, 0.0)


@pytest.mark.x64
def test_derivative_and_gradients(getkey):
    """log f'(x) is the log of the autodiff derivative; check_grads in the params (small
    eps: a finite step that moves a knot across x sees the bin change)."""
    params, _ = _inputs(getkey(), 64, jnp.float64)
    x = jnp.linspace(-2.9, 2.9, 64)
    _, ld = rq_forward(x, params, BOUND)
    dfdx = jax.vmap(jax.grad(lambda xi, p: rq_forward(xi, p, BOUND)[0]))(x, params)
    np.testing.assert_allclose(ld, np.log(dfdx), atol=1e-10)
    jax.test_util.check_grads(
        lambda p: rq_forward(x, p, BOUND), (params,), order=1, modes=("rev",), eps=1e-6
    )
    y = rq_forward(x, params, BOUND)[0]
    jax.test_util.check_grads(
        lambda p: rq_inverse(y, p, BOUND), (params,), order=1, modes=("rev",), eps=1e-6
    )


def test_vmap_matches_batched(getkey):
    params, x = _inputs(getkey(), 32, jnp.float32)
    batched = rq_forward(x, params, BOUND)
    mapped = jax.vmap(lambda xi, p: rq_forward(xi, p, BOUND))(x, params)
    for a, b in zip(batched, mapped, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_forward_parameter_axis(getkey):
    """``axis`` only says where the parameters sit: leading-axis params give the same
    spline as last-axis ones."""
    params, x = _inputs(getkey(), 40, jnp.float32)
    ref = rq_forward(x, params, BOUND)
    got = rq_forward(x, params.T, BOUND, axis=0)
    got3 = rq_forward(x.reshape(4, 10), params.T.reshape(-1, 4, 10), BOUND, axis=0)
    for a, b, c in zip(got, ref, got3, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(c.reshape(-1), b)


def test_bad_params_shape():
    for f in (
        lambda: rq_knots(jnp.zeros((5, 11)), BOUND),
        lambda: rq_forward(jnp.zeros(5), jnp.zeros((5, 11)), BOUND),
    ):
        with pytest.raises(ValueError, match="3\\*K\\+1"):
            f()
