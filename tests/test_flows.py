"""Tests for jaxdm.flows: bijectivity, log-det, normalisation, support, jit/vmap."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm.flows import Box, Positive, Real, make_maf, make_nsf


def _perturb(flow, key, scale=0.1):
    """Move trainable leaves (not masks or support bounds) off the identity init."""

    def f(path, a):
        name = jax.tree_util.keystr(path)
        if "mask" in name or "support" in name or not eqx.is_inexact_array(a):
            return a
        k = jax.random.fold_in(key, len(jax.tree_util.keystr(path)) + a.size)
        return a + scale * jax.random.normal(k, a.shape, a.dtype)

    return jax.tree_util.tree_map_with_path(f, flow)


def _flows(key, theta_dim, context_dim):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    box = Box(-jnp.ones(theta_dim), 2.0 * jnp.ones(theta_dim))
    kw = dict(theta_dim=theta_dim, context_dim=context_dim, n_layers=2, hidden=(16,))
    out = {
        "maf": make_maf(k1, **kw),
        "nsf_ar_box": make_nsf(k2, **kw, n_bins=4, support=box, autoregressive=True),
        "maf_pos": make_maf(k3, **kw, support=Positive()),
    }
    if theta_dim > 1:
        out["nsf_coupling"] = make_nsf(k4, **kw, n_bins=4, autoregressive=False)
    return {
        n: _perturb(f, jax.random.fold_in(key, i))
        for i, (n, f) in enumerate(out.items())
    }


@pytest.mark.x64
def test_inverse_forward_and_logdet_jacobian(getkey):
    """inverse(forward(z)) == z; log|det J| equals jax.jacobian's (float64, 1e-10)."""
    context = jnp.array([0.3, -1.2])
    for theta_dim in (1, 3):
        for name, flow in _flows(getkey(), theta_dim, 2).items():
            z = jax.random.normal(getkey(), (theta_dim,))
            theta, ld = flow.forward_and_log_det(z, context)
            z2, ild = flow.inverse_and_log_det(theta, context)
            np.testing.assert_allclose(z2, z, atol=1e-10, err_msg=name)
            np.testing.assert_allclose(ld, -ild, atol=1e-10, err_msg=name)
            jac = jax.jacobian(
                lambda zz, f=flow: f.forward_and_log_det(zz, context)[0]
            )(z)
            np.testing.assert_allclose(ld, jnp.linalg.slogdet(jac)[1], atol=1e-9)
            # log_prob is consistent with the change of variables.
            lp = flow.log_prob(theta, context)
            base = jnp.sum(jax.scipy.stats.norm.logpdf(z))
            np.testing.assert_allclose(lp, base - ld, atol=1e-10, err_msg=name)


@pytest.mark.x64
def test_linear_skip_keeps_the_triangular_jacobian(getkey):
    """Direct input-to-output connections start at zero (same map as without them)
    and respect the autoregressive/coupling masks: after perturbing them, log|det J|
    still equals jax.jacobian's and inverse(forward(z)) == z (a skip from an
    output's own or a later dimension breaks both)."""
    context = jnp.array([0.3, -1.2])
    z = jax.random.normal(getkey(), (3,))
    kw = dict(theta_dim=3, context_dim=2, n_layers=2, hidden=(16,))
    for make, extra in ((make_maf, {}), (make_nsf, dict(n_bins=4))):
        key = getkey()
        plain = make(key, **kw, **extra)
        skip = make(key, **kw, **extra, linear_skip=True)
        np.testing.assert_array_equal(
            skip.forward_and_log_det(z, context)[0],
            plain.forward_and_log_det(z, context)[0],
        )
        flow = _perturb(skip, getkey(), scale=0.5)
        theta, ld = flow.forward_and_log_det(z, context)
        jac = jax.jacobian(lambda zz, f=flow: f.forward_and_log_det(zz, context)[0])(z)
        np.testing.assert_allclose(ld, jnp.linalg.slogdet(jac)[1], atol=1e-9)
        np.testing.assert_allclose(
            flow.inverse_and_log_det(theta, context)[0], z, atol=1e-10
        )
        cols = flow._forward_columns(jnp.stack([z, -z]), context)[0]
        np.testing.assert_allclose(cols[0], theta, atol=1e-10)


@pytest.mark.x64
def test_density_integrates_to_one(getkey):
    """1-D (Box support) and 2-D densities integrate to 1 by trapezoid quadrature.

    The 1-D Box case is integrated in logit coordinates u (theta = sigmoid(u)), with the
    Jacobian dtheta/du = s(1-s), so the grid resolves the boundary layers. Tails beyond
    |u| = 12 carry < 1e-6 mass for these near-Gaussian flows; trapezoid error on these
    grids is < 1e-4, hence tolerance 2e-3 (a missing Jacobian term fails by O(1)).
    """
    context = jnp.array([0.5])
    k1, k2 = jax.random.split(getkey())
    f1 = _perturb(
        make_nsf(
            k1,
            theta_dim=1,
            context_dim=1,
            n_layers=2,
            n_bins=4,
            hidden=(16,),
            support=Box(jnp.array([0.0]), jnp.array([1.0])),
        ),
        k1,
    )
    u = jnp.linspace(-12.0, 12.0, 2001)
    s = jax.nn.sigmoid(u)
    p = jnp.exp(jax.vmap(lambda t: f1.log_prob(t[None], context))(s)) * s * (1 - s)
    assert abs(float(jnp.trapezoid(p, u)) - 1.0) < 2e-3
    f2 = _perturb(
        make_nsf(
            k2,
            theta_dim=2,
            context_dim=1,
            n_layers=2,
            n_bins=4,
            hidden=(16,),
            autoregressive=False,
        ),
        k2,
    )
    g = jnp.linspace(-9.0, 9.0, 241)
    xx, yy = jnp.meshgrid(g, g, indexing="ij")
    pts = jnp.stack([xx.ravel(), yy.ravel()], -1)
    p2 = jnp.exp(jax.vmap(lambda t: f2.log_prob(t, context))(pts)).reshape(xx.shape)
    p2, g = np.asarray(p2), np.asarray(g)
    total = np.trapezoid(np.trapezoid(p2, g, axis=1), g)
    assert abs(float(total) - 1.0) < 2e-3


def test_samples_inside_support_and_outside_is_neg_inf(getkey):
    """Samples never leave Box/Positive supports; log_prob is -inf outside."""
    context = jnp.array([0.3, -1.2])
    flows = _flows(getkey(), 2, 2)
    for name in ("nsf_ar_box", "maf_pos"):
        flow = flows[name]
        s = flow.sample(getkey(), 5.0 * context, (500,))
        assert s.shape == (500, 2)
        assert bool(jnp.all(jax.vmap(flow.support.contains)(s))), name
    assert flows["nsf_ar_box"].log_prob(jnp.array([3.0, 0.0]), context) == -jnp.inf
    assert flows["maf_pos"].log_prob(jnp.array([-1.0, 1.0]), context) == -jnp.inf
    assert bool(Real().contains(jnp.zeros(2)))


def test_jit_vmap_keys(getkey):
    """jit == eager, vmap over observations == loop, same key -> same samples."""
    flows = _flows(getkey(), 2, 2)
    ctx = jax.random.normal(getkey(), (3, 2))
    theta = jax.random.normal(getkey(), (3, 2))
    key = getkey()
    for name, flow in flows.items():
        if name == "maf_pos":
            th = jnp.abs(theta) + 0.1
        elif name == "nsf_ar_box":
            th = jnp.clip(theta, -0.9, 1.9)
        else:
            th = theta
        lp = eqx.filter_jit(lambda t, c, f=flow: jax.vmap(f.log_prob)(t, c))(th, ctx)
        loop = jnp.stack([flow.log_prob(t, c) for t, c in zip(th, ctx, strict=True)])
        np.testing.assert_allclose(lp, loop, rtol=1e-5, atol=1e-5, err_msg=name)
        samp = eqx.filter_jit(lambda c, f=flow: f.sample_and_log_prob(key, c, (4,)))
        s1, l1 = samp(ctx[0])
        s2, l2 = flow.sample_and_log_prob(key, ctx[0], (4,))
        np.testing.assert_allclose(s1, s2, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(l1, l2, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(
            jax.vmap(flow.log_prob)(s2, jnp.broadcast_to(ctx[0], (4, 2))),
            l2,
            rtol=1e-3,
            atol=1e-3,
        )
        s3 = flow.sample(key, ctx[0], (4,))
        np.testing.assert_array_equal(s3, s2)
        vs = jax.vmap(lambda c, f=flow: f.sample(key, c, (2,)))(ctx)
        assert vs.shape == (3, 2, 2)
        np.testing.assert_allclose(vs[1], flow.sample(key, ctx[1], (2,)), atol=1e-5)


@pytest.mark.x64
def test_column_sampling_path_equals_vmapped_forward(getkey):
    """Sampling runs on the transposed (theta_dim, n) state with ``MADE.columns``; a
    batch of n must give what vmapping the one-sample ``forward_and_log_det`` gives
    (float64, so mixing up samples, parameter rows or dimensions differs by >> 1e-10;
    the inverse round trip above checks the path against ``MADE.__call__``)."""
    ctx = jax.random.normal(getkey(), (2,))
    relu = make_nsf(
        getkey(), theta_dim=3, context_dim=2, hidden=(16,), activation="relu"
    )
    for theta_dim in (1, 3):
        flows = _flows(getkey(), theta_dim, 2)
        if theta_dim == 3:
            flows["nsf_relu"] = relu
        for name, flow in flows.items():
            flow = _perturb(flow, getkey(), scale=0.3)
            z = jax.random.normal(getkey(), (64, theta_dim))
            ref, got = eqx.filter_jit(
                lambda f: (
                    jax.vmap(lambda zz: f.forward_and_log_det(zz, ctx))(z),
                    f._forward_columns(z, ctx),
                )
            )(flow)
            for a, b in zip(got, ref, strict=True):
                np.testing.assert_allclose(
                    a, b, rtol=1e-10, atol=1e-10, err_msg=f"{name}, d={theta_dim}"
                )


def test_identity_init():
    """Freshly built flows start close to the identity map (z -> theta)."""
    z = jnp.array([0.3, -0.7, 1.1])
    for flow in (
        make_maf(jax.random.key(0), theta_dim=3, context_dim=1, hidden=(16,)),
        make_nsf(jax.random.key(0), theta_dim=3, context_dim=1, hidden=(16,)),
    ):
        theta, ld = flow.forward_and_log_det(z, jnp.ones(1))
        # n_layers=5 reversals: odd count leaves the order reversed.
        np.testing.assert_allclose(theta, z[::-1], atol=0.05)
        assert abs(float(ld)) < 0.1


@pytest.mark.x64
def test_gradients(getkey):
    """log_prob gradients w.r.t. theta and context match finite differences."""
    from jax.test_util import check_grads

    flow = _flows(getkey(), 2, 2)["nsf_coupling"]
    check_grads(
        flow.log_prob,
        (jnp.array([0.2, -0.4]), jnp.array([0.1, 0.5])),
        order=1,
        modes=("rev",),
    )


def test_bad_input():
    """Bad arguments raise ValueError/TypeError naming the argument."""
    k = jax.random.key(0)
    with pytest.raises(ValueError, match="theta_dim"):
        make_maf(k, theta_dim=0, context_dim=1)
    with pytest.raises(TypeError, match="support"):
        make_nsf(k, theta_dim=1, context_dim=1, support="box")
    with pytest.raises(ValueError, match="high"):
        Box(jnp.ones(2), jnp.zeros(2))
    with pytest.raises(ValueError, match="`activation` must be one of"):
        make_nsf(k, theta_dim=2, context_dim=1, activation="elu")
    flow = make_maf(k, theta_dim=2, context_dim=1, hidden=(8,))
    with pytest.raises(ValueError, match="theta"):
        flow.log_prob(jnp.zeros(3), jnp.zeros(1))
    with pytest.raises(ValueError, match="context"):
        flow.sample(k, jnp.zeros(2), (3,))
