"""``train_npe``'s learning-rate back-off for runs that overfit (issue #20 item 4).

``jaxdm.train.fit`` is replaced by a stub that returns prepared histories, so the
decision rule (back off while the best validation epoch lies in the first quarter of
``max_epochs``; keep the lowest best validation loss) and the rates handed to ``fit``
are checked without training. The benchmark evidence is in RESULTS.md ("sbi5").
"""

import jax
import numpy as np
import pytest

import jaxdm.inference.npe as npe_mod
from jaxdm.inference import make_npe, train_npe
from tests.inference._fit_stub import EPOCHS, STEPS, N, history, stub_fit


def _stub(monkeypatch, runs):
    """``fit`` stub: call i returns ("run i", runs[i]); logs (model, optimizer)."""
    return stub_fit(monkeypatch, runs, model_out=lambda model, i: f"run {i}")


@pytest.fixture(scope="module")
def setup():
    npe = make_npe(jax.random.key(0), theta_dim=2, x_shape=3, flow="maf", flow_layers=1)
    theta = np.asarray(jax.random.normal(jax.random.key(1), (N, 2)))
    x = np.asarray(jax.random.normal(jax.random.key(2), (N, 3)))
    return npe, theta, x


def _train(setup, **kw):
    # The overfitting run's MAF fallback has its own tests (test_npe_fallback.py).
    npe, theta, x = setup
    kw.setdefault("overfit_fallback", False)
    return train_npe(
        jax.random.key(3), npe, theta, x, batch_size=10, max_epochs=EPOCHS,
        progress=False, **kw,
    )  # fmt: skip


def test_overfitting_runs_back_off_twice_and_the_best_is_kept(monkeypatch, setup):
    # best epochs 2 and 5 < 40 // 4 = 10: two back-offs; the middle run is best.
    runs = [history(2, -1.0), history(5, -1.5), history(30, -1.2)]
    calls = _stub(monkeypatch, runs)
    model, hist = _train(setup, learning_rate=4e-3)
    assert len(calls) == 3
    expect = [
        npe_mod.default_schedule_optimizer(r, STEPS, EPOCHS)
        for r in (4e-3, 1e-3, 2.5e-4)
    ]
    assert all(o is e for (_, o), e in zip(calls, expect, strict=True))
    assert model == "run 1"
    assert hist is runs[1]


def test_backoff_stops_once_a_run_peaks_late(monkeypatch, setup):
    runs = [history(3, -1.0), history(10, -0.9), history(30, -2.0)]
    calls = _stub(monkeypatch, runs)
    model, _ = _train(setup)
    assert len(calls) == 2  # the second run's best epoch 10 is not < 10
    assert model == "run 0"


@pytest.mark.parametrize(
    ("kw", "n_calls"),
    [
        ({}, 1),  # best epoch 25: no overfitting
        ({"lr_backoffs": 0}, 1),
        ({"val_fraction": 0.0}, 1),  # no validation split: nothing to judge by
        ({"patience": 30}, 1),  # early stopping asked for: no back-off
        ({"optimizer": npe_mod.default_schedule_optimizer(1e-3, 9, EPOCHS)}, 1),
    ],
)
def test_single_run_when_not_overfitting_off_or_user_optimizer(
    monkeypatch, setup, kw, n_calls
):
    late = history(25, -1.0)
    early = history(1, -1.0)
    runs = [late if not kw else early] + [history(30, -3.0)] * 2
    calls = _stub(monkeypatch, runs)
    _train(setup, **kw)
    assert len(calls) == n_calls


def test_lr_backoffs_is_checked(setup):
    with pytest.raises(TypeError, match="lr_backoffs"):
        _train(setup, lr_backoffs=1.5)
    with pytest.raises(ValueError, match="lr_backoffs"):
        _train(setup, lr_backoffs=-1)
