"""train_npe's flow-family selection on the validation split (issue #20 item 4)."""

import equinox as eqx
import jax
import numpy as np
import pytest

from jaxdm.inference import npe as npe_mod
from jaxdm.inference.npe import make_npe, train_npe
from jaxdm.train import History

_SMALL = dict(
    theta_dim=2, x_shape=3, embedding_dim=4, embedding_width=8, flow_layers=1,
    flow_hidden=(8,), n_bins=4,
)  # fmt: skip


def _data(n):
    k1, k2 = jax.random.split(jax.random.key(0))
    theta = np.asarray(jax.random.normal(k1, (n, 2)))
    x = np.asarray(jax.random.normal(k2, (n, 3))) + theta[:, :1]
    return theta, x


def test_maf_twin_keeps_hyperparameters_and_standardisers():
    nsf = make_npe(jax.random.key(1), **_SMALL)
    nsf = npe_mod._fit_standardizers(nsf, *_data(50))
    twin = npe_mod._maf_twin(jax.random.key(2), nsf)
    h_nsf, h_twin = dict(nsf.hyperparams), dict(twin.hyperparams)
    assert (h_nsf["flow"], h_twin["flow"]) == ("nsf", "maf")
    assert twin.flow.kind == "maf"
    assert {k: v for k, v in h_twin.items() if k != "flow"} == {
        k: v for k, v in h_nsf.items() if k != "flow"
    }
    for a, b in [(twin.x_standardizer, nsf.x_standardizer),
                 (twin.theta_standardizer, nsf.theta_standardizer)]:  # fmt: skip
        np.testing.assert_array_equal(a.mean, b.mean)
        np.testing.assert_array_equal(a.std, b.std)
    assert not np.allclose(nsf.x_standardizer.std, 1.0)  # fitted, so copied
    maf = make_npe(jax.random.key(1), **(_SMALL | {"flow": "maf"}))
    assert npe_mod._maf_twin(jax.random.key(2), maf) is None
    custom = make_npe(jax.random.key(1), **_SMALL, embedding=eqx.nn.Identity())
    assert npe_mod._maf_twin(jax.random.key(2), custom) is None


def _history(val):
    val = np.asarray(val, float)
    return History(val, val, int(np.nanargmin(val)), False, 0)


@pytest.fixture
def fake_fit(monkeypatch):
    """fit replaced by a stub whose best validation loss is set per flow family."""
    calls = []
    vals = {}

    def fit(key, model, loss_fn, data, optimizer=None, **kw):
        kind = dict(model.hyperparams)["flow"]
        calls.append((kind, kw.get("checkpoint")))
        return model, _history(vals[kind])

    monkeypatch.setattr(npe_mod, "fit", fit)
    return calls, vals


@pytest.mark.parametrize(
    ("nsf_val", "maf_val", "chosen"),
    [([0.5, 0.2, 0.3], [0.4, 0.3, 0.25], "nsf"),
     ([0.5, 0.2, 0.3], [0.4, 0.1, np.nan], "maf")],
)  # fmt: skip
def test_selection_keeps_the_lower_best_validation_loss(
    fake_fit, tmp_path, nsf_val, maf_val, chosen
):
    calls, vals = fake_fit
    vals.update(nsf=nsf_val, maf=maf_val)
    npe = make_npe(jax.random.key(1), **_SMALL)
    theta, x = _data(200)
    ck = tmp_path / "run.ckpt"
    out, hist = train_npe(
        jax.random.key(3), npe, theta, x, select_flow=True, checkpoint=ck,
        progress=False, lr_backoffs=0,
    )  # fmt: skip
    assert dict(out.hyperparams)["flow"] == chosen
    assert out.flow.kind == chosen
    np.testing.assert_array_equal(hist.val_loss, np.asarray(vals[chosen], float))
    assert calls == [("maf", str(ck) + ".maf"), ("nsf", ck)]


def test_selection_is_off_by_default(fake_fit):
    """Default: only the given NSF trains; select_flow=True adds the MAF twin."""
    calls, vals = fake_fit
    vals.update(nsf=[0.2], maf=[0.1])
    npe = make_npe(jax.random.key(1), **_SMALL)
    theta, x = _data(200)
    # (lr_backoffs=0: these stub histories peak early, which would back off.)
    out, _ = train_npe(jax.random.key(3), npe, theta, x, progress=False,
                       lr_backoffs=0)  # fmt: skip
    assert [c[0] for c in calls] == ["nsf"]
    assert out.flow.kind == "nsf"
    calls.clear()
    out, _ = train_npe(jax.random.key(3), npe, theta, x, select_flow=True,
                       progress=False, lr_backoffs=0)  # fmt: skip
    assert [c[0] for c in calls] == ["maf", "nsf"]
    assert out.flow.kind == "maf"
