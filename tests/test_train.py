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


# ----------------------------------------------------------- streaming bad rows


class DictSource:
    """Chunk source of ``{"theta", "x"}`` dicts over in-memory arrays."""

    def __init__(self, theta, x, *, sleep=0.0):
        self.theta, self.x = np.asarray(theta), np.asarray(x)
        self.n_rows = len(self.x)
        self.sleep = sleep

    def iter_chunks(self, key, chunk_size):
        import time

        time.sleep(self.sleep)
        perm = np.asarray(jax.random.permutation(key, self.n_rows))
        for s in range(0, self.n_rows, chunk_size):
            rows = perm[s : s + chunk_size]
            yield {"theta": self.theta[rows], "x": self.x[rows]}


def _nre_data(n, seed=0):
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    x = (theta + 0.1 * rng.normal(size=(n, 1))).astype(np.float32)
    return theta, x


def test_streaming_nre_with_nan_rows_trains_on_finite_rows_and_reports(getkey):
    """Issue #12.3: 1% NaN rows in a streamed bank; never a NaN model."""
    from jaxdm.inference import nre

    theta, x = _nre_data(1000)
    bad = np.random.default_rng(1).choice(1000, 10, replace=False)  # 1%
    x[bad[:5], 0] = np.nan
    theta[bad[5:], 0] = np.inf
    val_theta, val_x = _nre_data(200, seed=2)
    model = nre.make_ratio_estimator(getkey(), theta_dim=1, x_shape=(1,), width=16)
    with pytest.warns(UserWarning, match="10 of 1000 rows with NaN/inf"):
        trained, hist = nre.train_ratio_estimator(
            getkey(), model, source=DictSource(theta, x),
            validation={"theta": val_theta, "x": val_x}, batch_size=64,
            max_epochs=3, chunk_size=500, learning_rate=1e-2,
        )  # fmt: skip
    assert hist.n_nonfinite_rows == 10
    assert hist.n_nonfinite_steps == 0  # no NaN row reached a minibatch
    chex.assert_tree_all_finite(eqx.filter(trained, eqx.is_inexact_array))
    # The standardisations were fitted on finite rows: close to U(-1, 1)'s mean/std.
    assert abs(float(trained.theta_norm.mean[0])) < 0.1
    np.testing.assert_allclose(trained.theta_norm.std, 1 / np.sqrt(3), rtol=0.1)
    # It learned something: the ratio is larger at the true theta than far from it.
    lr = trained.log_ratio(jnp.array([[0.5], [-0.9]]), jnp.array([0.5]))
    assert float(lr[0, 0]) > float(lr[1, 0])
    # Strict mode refuses the same source.
    with pytest.raises(ValueError, match="nonfinite_rows"):
        nre.train_ratio_estimator(
            getkey(), model, source=DictSource(theta, x),
            validation={"theta": val_theta, "x": val_x}, batch_size=64,
            max_epochs=1, chunk_size=500, nonfinite_rows="raise",
        )  # fmt: skip


def test_streaming_all_nan_raises_never_returns_nan_model():
    x, y = _data(256)
    src = ListSource(np.full_like(np.asarray(x), np.nan), y)
    with pytest.warns(UserWarning, match="NaN/inf"):
        with pytest.raises(ValueError, match="no complete minibatch"):
            fit(jax.random.key(0), _linear(), _mse, src, batch_size=32,
                val_fraction=0.0, chunk_size=64, progress=False)  # fmt: skip

    def nan_loss(model, batch, key):
        return jnp.nan * _mse(model, batch, key)

    for data in (ListSource(x, y), (x, y)):
        with pytest.raises(FloatingPointError, match="every one of the"):
            fit(jax.random.key(0), _linear(), nan_loss, data, batch_size=32,
                val_fraction=0.0, max_epochs=2, progress=False)  # fmt: skip


def test_diverged_model_is_never_returned():
    # Without apply_if_finite a single NaN gradient poisons the parameters; the
    # steps before it were finite, so the epoch check alone would not catch it.
    import optax

    def loss(model, batch, key):
        x, y = batch
        poison = jnp.where(jnp.any(x[:, 0] > 3.0), jnp.nan, 1.0)
        return poison * _mse(model, batch, key)

    x, y = _data(512)
    x = x.at[-1, 0].set(4.0)  # one poisoned row
    with pytest.raises(FloatingPointError, match="NaN/inf parameters"):
        fit(jax.random.key(0), _linear(), loss, (x, y), optax.sgd(0.01),
            batch_size=32, max_epochs=1, val_fraction=0.0, restore_best=False,
            progress=False)  # fmt: skip


def test_screen_rows_flags_nonfinite_and_extreme_rows():
    from jaxdm.train import screen_rows

    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (5000, 3))
    sparse = (rng.uniform(size=5000) < 0.01).astype(float)  # MAD = 0 column
    data = {"x": x, "counts": sparse[:, None], "ids": np.arange(5000)}
    s = screen_rows(data)
    assert not s.nonfinite.any()
    assert not s.outlier.any()
    data["x"] = x.copy()
    data["x"][7, 1] = 3.0 + 2.0 * 2e6  # 2e6 sigma: flagged
    data["x"][8, 2] = 3.0 + 2.0 * 5e5  # 5e5 sigma: kept
    data["x"][9, 0] = np.nan
    data["counts"] = data["counts"].copy()
    data["counts"][11] = 1e9  # far beyond a 0/1 column
    s = screen_rows(data)
    assert np.flatnonzero(s.nonfinite).tolist() == [9]
    assert np.flatnonzero(s.outlier).tolist() == [7, 11]
    assert not screen_rows(data, outlier_z=None).outlier.any()


def test_outlier_rows_are_reported_skipped_or_refused():
    x, y = _data(512)
    x = x.at[5, 0].set(1e30)
    kw = dict(batch_size=32, max_epochs=12, progress=False)
    with pytest.warns(UserWarning, match="1 of 512 rows with robust"):
        m, h = fit(jax.random.key(0), _linear(), _mse, (x, y), FAST, **kw)
    assert h.n_outlier_rows == 1
    assert h.n_nonfinite_steps > 0  # (1e30)^2 overflows: those steps were skipped
    with pytest.raises(ValueError, match="outliers="):
        fit(jax.random.key(0), _linear(), _mse, (x, y), outliers="raise", **kw)
    with pytest.warns(UserWarning, match="left out"):
        m, h = fit(
            jax.random.key(0), _linear(), _mse, (x, y), FAST, outliers="skip", **kw
        )
    assert h.n_outlier_rows == 1
    assert h.n_nonfinite_steps == 0  # the 1e30 row never entered a minibatch
    assert h.train_loss[-1] < 0.05  # noise variance 0.01


# --------------------------------------------------------------- checkpoints


def test_checkpoint_resume_equals_uninterrupted_run(tmp_path):
    """A run extended from its checkpoint is bitwise the uninterrupted run."""
    kw = dict(batch_size=64, patience=50, progress=False)
    ref, h_ref = fit(jax.random.key(4), _linear(), _mse, _data(512), max_epochs=6, **kw)
    ck = tmp_path / "run.ckpt"
    fit(jax.random.key(4), _linear(), _mse, _data(512), max_epochs=3,
        checkpoint=ck, every=2, **kw)  # fmt: skip
    m, h = fit(jax.random.key(4), _linear(), _mse, _data(512), max_epochs=6,
               checkpoint=ck, every=2, **kw)  # fmt: skip
    np.testing.assert_array_equal(m.w, ref.w)
    np.testing.assert_array_equal(m.b, ref.b)
    np.testing.assert_array_equal(h.train_loss, h_ref.train_loss)
    np.testing.assert_array_equal(h.val_loss, h_ref.val_loss)
    assert h.best_epoch == h_ref.best_epoch
    # A finished run's checkpoint returns the same result without training.
    m2, h2 = fit(jax.random.key(4), _linear(), _mse, _data(512), max_epochs=6,
                 checkpoint=ck, **kw)  # fmt: skip
    np.testing.assert_array_equal(m2.w, ref.w)
    assert len(h2.train_loss) == 6


def test_checkpoint_of_another_run_or_corrupt_is_refused(tmp_path):
    from jaxdm.serialise import ChecksumError

    ck = tmp_path / "run.ckpt"
    kw = dict(batch_size=64, max_epochs=2, progress=False, checkpoint=ck)
    fit(jax.random.key(4), _linear(), _mse, _data(512), **kw)
    with pytest.raises(ValueError, match="`key` differs"):
        fit(jax.random.key(5), _linear(), _mse, _data(512), **kw)
    with pytest.raises(ValueError, match="batch_size: checkpoint 64, now 32"):
        fit(jax.random.key(4), _linear(), _mse, _data(512), **{**kw, "batch_size": 32})
    raw = bytearray(ck.read_bytes())
    raw[-20] ^= 0x01
    ck.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match="`checkpoint`.*corrupt"):
        fit(jax.random.key(4), _linear(), _mse, _data(512), **kw)
    with pytest.raises(FileNotFoundError, match="`checkpoint`.*does not exist"):
        fit(jax.random.key(4), _linear(), _mse, _data(512),
            **{**kw, "checkpoint": tmp_path / "nodir" / "c.ckpt"})  # fmt: skip


_KILLED_RUN = """
import sys
import jax, jax.numpy as jnp, numpy as np
from jaxdm.nn import MLP
from jaxdm.train import fit, default_optimizer
sys.path.insert(0, {tests!r})
from test_train import DictSource

rng = np.random.default_rng(0)
theta = rng.uniform(-1, 1, (256, 2)).astype(np.float32)
x = np.sin(3 * theta).sum(1, keepdims=True).astype(np.float32)
val = {{"theta": theta[:64], "x": x[:64]}}


def loss(model, batch, key):
    return jnp.mean((jax.vmap(model)(batch["theta"]) - batch["x"]) ** 2)


def run(checkpoint, sleep):
    model = MLP(2, 1, width=8, depth=1, key=jax.random.key(1))
    return fit(jax.random.key(7), model, loss, DictSource(theta[64:], x[64:],
               sleep=sleep), default_optimizer(0.01), batch_size=32, max_epochs=8,
               patience=100, validation_data=val, chunk_size=96, progress=False,
               checkpoint=checkpoint, every=1)


if __name__ == "__main__":
    run(sys.argv[1], 0.25)
"""


def test_killed_run_resumes_bitwise(tmp_path):
    """Issue #12.4: SIGKILL a training run at a random epoch, resume, compare."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    tests = str(Path(__file__).resolve().parent)
    root = str(Path(__file__).resolve().parent.parent)
    script = tmp_path / "killed_run.py"
    script.write_text(_KILLED_RUN.format(tests=tests))
    ck = tmp_path / "run.ckpt"
    # Epochs done before the kill; the child sleeps 0.25 s per epoch, which leaves
    # >= 1 s for this loop to notice the checkpoint before the run could finish.
    target = int(np.random.default_rng().integers(1, 4))
    env = {**os.environ, "PYTHONPATH": root}
    log = tmp_path / "stderr.txt"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(ck)], env=env, stderr=err
        )
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            if ck.exists():
                with open(ck, "rb") as f:
                    if json.loads(f.readline())["epoch"] >= target:
                        break
            assert proc.poll() is None, log.read_text()[-2000:]
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    with open(ck, "rb") as f:
        killed_at = json.loads(f.readline())["epoch"]
    assert target <= killed_at < 8, (target, killed_at)

    namespace = {}
    exec(compile(_KILLED_RUN.format(tests=tests), "killed_run", "exec"), namespace)
    resumed, h_res = namespace["run"](ck, 0.0)
    ref, h_ref = namespace["run"](None, 0.0)
    chex.assert_trees_all_equal(resumed, ref)  # bitwise
    np.testing.assert_array_equal(h_res.train_loss, h_ref.train_loss)
    np.testing.assert_array_equal(h_res.val_loss, h_ref.val_loss)
    assert len(h_ref.train_loss) == 8


# ------------------------------------------------------------------ messages


def test_messages_name_the_argument(tmp_path):
    x, y = _data(128)
    key = jax.random.key(0)
    with pytest.raises(TypeError, match="`batch_size` must be an int; got '64'"):
        fit(key, _linear(), _mse, (x, y), batch_size="64", progress=False)
    with pytest.raises(TypeError, match="`max_epochs` must be an int"):
        fit(key, _linear(), _mse, (x, y), max_epochs=2.5, progress=False)
    with pytest.raises(TypeError, match="`val_fraction` must be a real"):
        fit(key, _linear(), _mse, (x, y), val_fraction="0.1", progress=False)
    with pytest.raises(ValueError, match="`data` is empty"):
        fit(key, _linear(), _mse, (x[:0], y[:0]), progress=False)
    with pytest.raises(ValueError, match="`data` holds no arrays"):
        fit(key, _linear(), _mse, {}, progress=False)
    with pytest.raises(ValueError, match="`data` is empty"):
        fit(key, _linear(), _mse, ListSource(x[:0], y[:0]), val_fraction=0.0,
            progress=False)  # fmt: skip
    data = {"theta": np.asarray(x), "x": np.asarray(y)}
    with pytest.raises(ValueError, match=r"`validation_data` must have the keys.*'x'"):
        fit(key, _linear(), _mse, data, validation_data={"theta": x},
            progress=False)  # fmt: skip
    with pytest.raises(ValueError, match=r"`validation_data\['theta'\]` has rows"):
        fit(key, _linear(), _mse, data, validation_data={"theta": x[:, :2], "x": y},
            progress=False)  # fmt: skip
    src = DictSource(x, y[:, None])
    with pytest.raises(ValueError, match=r"`validation_data` must have the keys"):
        fit(key, _linear(), _mse, src, validation_data={"x": y}, progress=False)
    with pytest.raises(ValueError, match="`outliers` must be one of"):
        fit(key, _linear(), _mse, (x, y), outliers="drop", progress=False)


def test_streamed_outliers_are_counted_and_skipped():
    x, y = _data(512)
    x = np.array(x)
    x[[3, 300], 1] = 1e30
    kw = dict(batch_size=32, max_epochs=1, val_fraction=0.0, chunk_size=256,
              progress=False)  # fmt: skip
    with pytest.warns(UserWarning, match="2 of 512 rows with robust"):
        _, h = fit(jax.random.key(0), _linear(), _mse, ListSource(x, y), **kw)
    assert h.n_outlier_rows == 2
    assert h.n_nonfinite_steps > 0  # trained on them: (1e30)^2 overflowed
    with pytest.warns(UserWarning, match="left out"):
        _, h = fit(jax.random.key(0), _linear(), _mse, ListSource(x, y),
                   outliers="skip", **kw)  # fmt: skip
    assert h.n_outlier_rows == 2
    assert h.n_nonfinite_steps == 0
    with pytest.raises(ValueError, match="outliers="):
        fit(jax.random.key(0), _linear(), _mse, ListSource(x, y), outliers="raise",
            **kw)  # fmt: skip


def test_estimator_trainers_pass_checkpoints_through(monkeypatch, tmp_path):
    """train_npe and train_ratio_estimator hand checkpoint/every on to fit."""
    from jaxdm.inference import npe as npe_mod, nre as nre_mod

    seen = {}

    def fake_fit(key, model, loss_fn, data, optimizer=None, **kw):
        seen.update(kw)
        return model, None

    monkeypatch.setattr(npe_mod, "fit", fake_fit)
    monkeypatch.setattr(nre_mod, "fit", fake_fit)
    theta = np.asarray(jax.random.normal(jax.random.key(0), (16, 1)))
    ck = tmp_path / "c.ckpt"
    m = npe_mod.make_npe(jax.random.key(0), theta_dim=1, x_shape=(1,),
                         embedding="identity", flow="maf", flow_layers=1,
                         flow_hidden=(4,))  # fmt: skip
    npe_mod.train_npe(jax.random.key(1), m, theta, theta, checkpoint=ck, every=3)
    assert seen["checkpoint"] == ck
    assert seen["every"] == 3
    seen.clear()
    r = nre_mod.make_ratio_estimator(jax.random.key(0), theta_dim=1, x_shape=(1,),
                                     width=4, depth=1)  # fmt: skip
    nre_mod.train_ratio_estimator(jax.random.key(1), r, theta, theta,
                                  checkpoint=ck, every=2)  # fmt: skip
    assert seen["checkpoint"] == ck
    assert seen["every"] == 2
