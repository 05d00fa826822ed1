"""Tests for jaxdm.nn: shapes, jit/vmap, invariances, frozen standardisation, flax."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxdm.nn import (
    MLP,
    CNNEmbedding,
    DeepSetEmbedding,
    FlaxEmbedding,
    ResidualMLP,
    Standardizer,
    Whitener,
)
from jaxdm.train import fit


def test_mlp_and_residual_shapes_jit_vmap(getkey, jit):
    """(in,) -> (out,); vmap over a batch equals the per-example loop; jit == eager."""
    x = jax.random.normal(getkey(), (5, 3))
    for net in (
        MLP(3, 2, width=8, depth=2, key=getkey()),
        MLP(3, 2, depth=0, key=getkey()),
        ResidualMLP(3, 2, width=8, n_blocks=2, key=getkey()),
    ):
        y = jit(jax.vmap(net))(x)
        assert y.shape == (5, 2)
        loop = jnp.stack([net(xi) for xi in x])
        np.testing.assert_allclose(y, loop, rtol=1e-5, atol=1e-6)


def test_mlp_depth0_is_affine(getkey):
    """depth=0 is a single linear map: f(a x + b y) = a f(x) + b f(y) - (a+b-1) f(0)."""
    net = MLP(3, 2, depth=0, key=getkey())
    x, y = jax.random.normal(getkey(), (2, 3))
    lhs = net(2.0 * x - 0.5 * y)
    rhs = 2.0 * net(x) - 0.5 * net(y) - 0.5 * net(jnp.zeros(3))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-5, atol=1e-5)


def test_cnn_embedding_channels_and_shape(getkey, jit):
    """Single- and multi-channel images embed to (out,), batched with vmap."""
    one = CNNEmbedding(1, 4, image_shape=(9, 12), channels=(4, 8), key=getkey())
    imgs = jax.random.normal(getkey(), (3, 9, 12))
    out = jit(jax.vmap(one))(imgs)
    assert out.shape == (3, 4)
    np.testing.assert_allclose(out[1], one(imgs[1][None]), rtol=1e-5, atol=1e-6)
    two = CNNEmbedding(2, 5, image_shape=(8, 8), channels=(4,), key=getkey())
    assert two(jnp.ones((2, 8, 8))).shape == (5,)
    with pytest.raises(ValueError, match="`x` must have shape"):
        two(jnp.ones((3, 8, 8)))


def test_deepset_permutation_and_padding(getkey, jit):
    """Event order and padded rows (mask 0, any content) do not change the output."""
    net = DeepSetEmbedding(2, 3, width=8, depth=1, key=getkey())
    ev = jax.random.normal(getkey(), (4, 2))
    x = jnp.concatenate([ev, jnp.ones((4, 1))], axis=1)
    pad = jnp.concatenate([1e3 * jnp.ones((3, 2)), jnp.zeros((3, 1))], axis=1)
    base = jit(net)(x)
    perm = jit(net)(x[jnp.array([2, 0, 3, 1])])
    np.testing.assert_allclose(perm, base, rtol=1e-5, atol=1e-6)
    padded = net(jnp.concatenate([pad[:1], x, pad[1:]]))
    np.testing.assert_allclose(padded, base, rtol=1e-5, atol=1e-6)
    # The set size enters (log(1+n)): dropping an event changes the output.
    assert not np.allclose(net(x[:3]), base)
    for pooling in ("sum", "max"):
        m = DeepSetEmbedding(2, 3, width=8, depth=1, pooling=pooling, key=getkey())
        np.testing.assert_allclose(
            m(jnp.concatenate([x, pad])), m(x[::-1]), rtol=1e-5, atol=1e-6
        )


def test_standardizer_fit_inverse_and_frozen(getkey):
    """Fitted stats give zero mean/unit std; fit() never moves them (not even decay)."""
    data = 3.0 + 2.0 * jax.random.normal(getkey(), (400, 2))
    st = Standardizer.fit(data)
    z = jax.vmap(st)(data)
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.std(0), 1.0, atol=1e-5)
    np.testing.assert_allclose(jax.vmap(st.inverse)(z), data, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(st.log_abs_det_jacobian(), -jnp.log(st.std).sum())
    glob = Standardizer.fit(data, scope="global")
    assert glob.mean.shape == (2,)
    np.testing.assert_allclose(glob.mean, float(np.mean(data)), rtol=1e-5)
    np.testing.assert_allclose(glob.std, float(np.std(data)), rtol=1e-5)

    class Net(eqx.Module):
        st: Standardizer
        lin: eqx.nn.Linear

    net = Net(st, eqx.nn.Linear(2, 1, key=getkey()))
    y = data[:, :1] * 0.5

    def loss(m, batch, key):
        del key
        pred = jax.vmap(lambda x: m.lin(m.st(x)))(batch["x"])
        return jnp.mean((pred - batch["y"]) ** 2)

    trained, _ = fit(
        getkey(),
        net,
        loss,
        {"x": data, "y": y},
        batch_size=100,
        max_epochs=3,
        progress=False,
    )
    np.testing.assert_array_equal(trained.st.mean, st.mean)
    np.testing.assert_array_equal(trained.st.std, st.std)
    assert not np.allclose(trained.lin.weight, net.lin.weight)


def test_whitener_is_the_symmetric_inverse_square_root(getkey, jit):
    """ZCA: W is symmetric with W Sigma W = 1 (which fixes W = Sigma^-1/2 uniquely
    among symmetric positive-definite matrices; Kessy, Lewin & Strimmer 2018), the
    whitened sample has mean 0 and unit covariance, and the inverse and log|det|
    are exact. Under jit and vmap."""
    cov = np.array([[4.0, 1.9, 0.0], [1.9, 1.0, 0.3], [0.0, 0.3, 2.0]])
    data = np.random.default_rng(0).multivariate_normal([1.0, -2.0, 5.0], cov, 5000)
    w = Whitener.fit(data)
    sample_cov = np.cov(data, rowvar=False, bias=True)
    m = np.asarray(w.matrix, np.float64)
    np.testing.assert_allclose(m, m.T, atol=1e-6)  # symmetric: ZCA, not PCA whitening
    np.testing.assert_allclose(m @ sample_cov @ m, np.eye(3), atol=1e-5)
    assert np.all(np.linalg.eigvalsh(m) > 0)
    z = np.asarray(jit(jax.vmap(w))(jnp.asarray(data, jnp.float32)))
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.cov(z, rowvar=False, bias=True), np.eye(3),
                               atol=1e-4)  # fmt: skip
    back = jit(jax.vmap(w.inverse))(jnp.asarray(z))
    np.testing.assert_allclose(back, data, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        w.log_abs_det_jacobian(), -0.5 * np.linalg.slogdet(sample_cov)[1], rtol=1e-5
    )
    # a constant feature is scaled by 1 / min_std (no NaN), as Standardizer does
    flat = np.column_stack([data[:, :2], np.full(len(data), 7.0)])
    wf = Whitener.fit(flat)
    assert np.all(np.isfinite(np.asarray(wf.matrix)))
    np.testing.assert_allclose(np.asarray(jax.vmap(wf)(jnp.asarray(flat[:5])))[:, 2],
                               0.0, atol=1e-3)  # fmt: skip
    ident = Whitener.identity(3)
    np.testing.assert_array_equal(ident(jnp.arange(3.0)), jnp.arange(3.0))


def test_flax_linen_and_nnx_adapters(getkey):
    """A flax linen / nnx module serves as an embedding and trains through fit()."""
    import flax.linen as nn
    from flax import nnx

    lin = nn.Dense(3)
    x = jax.random.normal(getkey(), (64, 2))
    emb = FlaxEmbedding(lin, lin.init(getkey(), x[0]))
    np.testing.assert_allclose(
        jax.vmap(emb)(x), lin.apply(emb.params, x), rtol=1e-5, atol=1e-6
    )
    target = x @ jnp.array([[1.0, 0.0, 2.0], [0.5, -1.0, 0.0]])

    def loss(m, batch, key):
        del key
        return jnp.mean((jax.vmap(m)(batch["x"]) - batch["y"]) ** 2)

    before = float(loss(emb, {"x": x, "y": target}, None))
    trained, _ = fit(
        getkey(),
        emb,
        loss,
        {"x": x, "y": target},
        optax.adam(0.05),
        batch_size=32,
        max_epochs=20,
        val_fraction=0.25,
        progress=False,
    )
    assert float(loss(trained, {"x": x, "y": target}, None)) < 0.5 * before
    nmod = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    emb2 = FlaxEmbedding.from_nnx(nmod)
    np.testing.assert_allclose(emb2(x[0]), nmod(x[0]), rtol=1e-5, atol=1e-6)


@pytest.mark.x64
def test_gradients_match_finite_differences(getkey):
    """check_grads through MLP, CNN and DeepSet w.r.t. their inputs (float64)."""
    from jax.test_util import check_grads

    # Each network is jitted once (eager evaluation re-dispatched every op per step).
    mlp = MLP(3, 2, width=4, depth=1, key=getkey())
    check_grads(
        eqx.filter_jit(lambda x: mlp(x)),
        (jnp.array([0.1, -0.3, 0.7]),),
        order=1,
        modes=("rev",),
    )
    cnn = CNNEmbedding(1, 2, image_shape=(4, 4), channels=(2,), key=getkey())
    check_grads(
        eqx.filter_jit(lambda x: cnn(x)),
        (jax.random.normal(getkey(), (1, 4, 4)),),
        order=1,
        modes=("rev",),
    )
    ds = DeepSetEmbedding(2, 2, width=4, depth=1, key=getkey())
    ev = jnp.concatenate([jax.random.normal(getkey(), (3, 2)), jnp.ones((3, 1))], 1)
    check_grads(
        eqx.filter_jit(lambda e: ds(ev.at[:, :2].set(e))),
        (ev[:, :2],),
        order=1,
        modes=("rev",),
    )


def test_bad_input(getkey):
    """Bad sizes and options raise errors naming the argument."""
    with pytest.raises(ValueError, match="in_size"):
        MLP(0, 2, key=getkey())
    with pytest.raises(ValueError, match="depth"):
        MLP(2, 2, depth=-1, key=getkey())
    with pytest.raises(ValueError, match="image_shape"):
        CNNEmbedding(1, 2, image_shape=(4,), key=getkey())
    with pytest.raises(ValueError, match="pooling"):
        DeepSetEmbedding(2, 2, pooling="median", key=getkey())
    with pytest.raises(ValueError, match="`x` must have shape"):
        DeepSetEmbedding(2, 2, key=getkey())(jnp.ones((3, 2)))
    with pytest.raises(ValueError, match="data"):
        Standardizer.fit(jnp.ones((0, 2)))
    with pytest.raises(ValueError, match="scope"):
        Standardizer.fit(jnp.ones((3, 2)), scope="pixel")
    # NaN/inf rows would give NaN statistics that poison every later call.
    for bad in (jnp.nan, jnp.inf):
        with pytest.raises(ValueError, match="`data` has 1 of 3 rows with NaN/inf"):
            Standardizer.fit(jnp.ones((3, 2)).at[1, 0].set(bad))
        with pytest.raises(ValueError, match="`data` has 1 of 3 rows"):
            Standardizer.fit(jnp.ones((3, 4, 4)).at[2, 3, 1].set(bad), scope="global")
    with pytest.raises(TypeError, match="module_or_apply"):
        FlaxEmbedding(3, {})
