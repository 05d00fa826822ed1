"""Tests of jaxdm.train.fit: convergence, determinism, sharding, retracing, guards."""

import chex
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm.train import History, default_optimizer, fit, trainable_filter

FAST = default_optimizer(0.03)

W_TRUE = jnp.array([1.0, -2.0, 0.5])


def _data(n=1024, noise=0.1):
    x = jax.random.normal(jax.random.key(0), (n, 3))
    y = x @ W_TRUE + noise * jax.random.normal(jax.random.key(1), (n,))
    return x, y


class Linear(eqx.Module):
    w: jax.Array
    b: jax.Array

    def __call__(self, x):
        return x @ self.w + self.b


class Frozen(eqx.Module):
    __jaxdm_frozen__ = True
    shift: jax.Array


class WithFrozen(eqx.Module):
    lin: Linear
    frozen: Frozen

    def __call__(self, x):
        return self.lin(x - self.frozen.shift)


def _mse(model, batch, key):
    x, y = batch
    return jnp.mean((jax.vmap(model)(x) - y) ** 2)


def _linear():
    return Linear(jnp.zeros(3), jnp.zeros(()))


def test_fit_recovers_linear_weights():
    model, hist = fit(
        jax.random.key(0), _linear(), _mse, _data(), FAST, batch_size=64, max_epochs=40,
        progress=False,
    )  # fmt: skip
    assert isinstance(hist, History)
    # Noise 0.1 with ~900 rows: least-squares error on w is ~0.1/30 per component.
    np.testing.assert_allclose(model.w, W_TRUE, atol=0.03)
    # The final validation MSE must approach the noise variance 0.01.
    assert hist.val_loss[hist.best_epoch] < 0.015
    assert hist.best_epoch == int(np.nanargmin(hist.val_loss))


def test_fit_is_deterministic_and_key_dependent():
    kw = dict(batch_size=64, max_epochs=3, progress=False)
    m1, h1 = fit(jax.random.key(5), _linear(), _mse, _data(), **kw)
    m2, h2 = fit(jax.random.key(5), _linear(), _mse, _data(), **kw)
    m3, _ = fit(jax.random.key(6), _linear(), _mse, _data(), **kw)
    np.testing.assert_array_equal(m1.w, m2.w)
    np.testing.assert_array_equal(h1.train_loss, h2.train_loss)
    assert not np.array_equal(np.asarray(m1.w), np.asarray(m3.w))


def test_sharded_equals_single_device():
    assert len(jax.devices()) == 4, "conftest forces 4 CPU devices"
    kw = dict(batch_size=64, max_epochs=3, progress=False)
    m4, h4 = fit(jax.random.key(2), _linear(), _mse, _data(), **kw)
    m1, h1 = fit(
        jax.random.key(2), _linear(), _mse, _data(), devices=jax.devices()[:1], **kw
    )
    # Same arithmetic, different reduction order across devices: float32 round-off.
    np.testing.assert_allclose(m4.w, m1.w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h4.val_loss, h1.val_loss, rtol=1e-5)


def test_no_retracing_across_epochs():
    # One trace in the training scan and two in the validation pass (sharded chunks
    # plus the remainder rows), however many epochs run; a retrace per epoch would
    # trip the counter.
    loss = chex.assert_max_traces(_mse, n=3)
    fit(
        jax.random.key(0), _linear(), loss, _data(256), batch_size=32, max_epochs=6,
        patience=10, progress=False,
    )  # fmt: skip


def test_per_step_epochs_equal_scanned_epochs():
    """scan_epochs=False (one compiled call per step) gives the scanned result."""
    kw = dict(batch_size=64, max_epochs=3, progress=False)
    ms, hs = fit(jax.random.key(3), _linear(), _mse, _data(), scan_epochs=True, **kw)
    mp, hp = fit(jax.random.key(3), _linear(), _mse, _data(), scan_epochs=False, **kw)
    np.testing.assert_allclose(mp.w, ms.w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hp.train_loss, hs.train_loss, rtol=1e-5)
    np.testing.assert_allclose(hp.val_loss, hs.val_loss, rtol=1e-5)
    # Per-step mode compiles the step once too: no retrace per step or epoch.
    loss = chex.assert_max_traces(_mse, n=3)
    fit(
        jax.random.key(0), _linear(), loss, _data(256), batch_size=32, max_epochs=4,
        scan_epochs=False, progress=False,
    )  # fmt: skip


def test_conv_models_train_per_step_on_cpu():
    """Auto mode avoids convolutions inside a compiled loop on CPU (slow in XLA)."""
    from jaxdm.train import _has_conv

    conv = eqx.nn.Conv2d(1, 2, 3, key=jax.random.key(0))
    assert _has_conv({"a": [conv]})
    assert not _has_conv(_linear())


def test_frozen_leaves_are_not_trained():
    model = WithFrozen(_linear(), Frozen(jnp.full(3, 0.3)))
    spec = trainable_filter(model)
    assert spec.frozen is False
    trained, _ = fit(
        jax.random.key(0), model, _mse, _data(256), batch_size=32, max_epochs=3,
        progress=False,
    )  # fmt: skip
    np.testing.assert_array_equal(trained.frozen.shift, model.frozen.shift)
    assert not np.array_equal(np.asarray(trained.lin.w), np.zeros(3))


def test_early_stopping_stops_and_restores_best():
    # Pure-noise targets: validation loss cannot keep improving.
    x = jax.random.normal(jax.random.key(0), (256, 3))
    y = jax.random.normal(jax.random.key(1), (256,))
    model, hist = fit(
        jax.random.key(0), _linear(), _mse, (x, y), batch_size=16, max_epochs=300,
        patience=3, progress=False,
    )  # fmt: skip
    assert hist.stopped_early
    assert len(hist.train_loss) < 300
    assert hist.best_epoch == int(np.argmin(hist.val_loss))


def test_nonfinite_loss_steps_are_skipped():
    def loss(model, batch, key):
        x, y = batch
        bad = jax.random.bernoulli(key, 0.3)
        return jnp.where(bad, jnp.nan, _mse(model, batch, key))

    model, hist = fit(
        jax.random.key(0), _linear(), loss, _data(512), batch_size=32, max_epochs=3,
        val_fraction=0.0, progress=False,
    )  # fmt: skip
    assert hist.n_nonfinite_steps > 0
    chex.assert_tree_all_finite(model)


class ListSource:
    """Minimal chunk source over in-memory arrays, counting rows served."""

    def __init__(self, x, y):
        self.x, self.y = np.asarray(x), np.asarray(y)
        self.n_rows = len(self.x)
        self.served = []

    def iter_chunks(self, key, chunk_size):
        perm = np.asarray(jax.random.permutation(key, self.n_rows))
        for s in range(0, self.n_rows, chunk_size):
            rows = perm[s : s + chunk_size]
            self.served.append(rows)
            yield self.x[rows], self.y[rows]


def test_fit_streams_chunk_source():
    x, y = _data(1024)
    src = ListSource(x[:896], y[:896])
    model, hist = fit(
        jax.random.key(0), _linear(), _mse, src, FAST, batch_size=64, max_epochs=20,
        chunk_size=256, validation_data=(x[896:], y[896:]), progress=False,
    )  # fmt: skip
    np.testing.assert_allclose(model.w, W_TRUE, atol=0.05)
    epoch0 = np.concatenate(src.served[:4])
    assert np.array_equal(np.sort(epoch0), np.arange(896))


def test_chunk_source_requires_validation():
    x, y = _data(128)
    with pytest.raises(ValueError, match="validation_data"):
        fit(jax.random.key(0), _linear(), _mse, ListSource(x, y), progress=False)


def test_bad_inputs_raise():
    x, y = _data(128)
    with pytest.raises(TypeError, match="legacy"):
        fit(jax.random.PRNGKey(0), _linear(), _mse, (x, y), progress=False)
    with pytest.raises(ValueError, match="leading"):
        fit(jax.random.key(0), _linear(), _mse, (x, y[:-1]), progress=False)
    with pytest.raises(ValueError, match="1 rows with NaN"):
        fit(jax.random.key(0), _linear(), _mse, (x.at[3, 1].set(jnp.nan), y))
    with pytest.raises(ValueError, match="batch_size"):
        fit(jax.random.key(0), _linear(), _mse, (x, y), batch_size=0)
