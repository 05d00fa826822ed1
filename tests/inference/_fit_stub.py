"""A stand-in for ``jaxdm.train.fit`` in ``train_npe``'s retraining-rule tests.

The rules (learning-rate back-off, overfitting fallback) choose between runs by their
histories, so the tests hand ``train_npe`` prepared histories instead of training.
"""

import numpy as np

import jaxdm.inference.npe as npe_mod
from jaxdm.train import History

N, STEPS, EPOCHS = 100, (100 - 10) // 10, 40


def history(best_epoch, best_val):
    """A ``History`` of ``EPOCHS`` epochs, best validation loss at ``best_epoch``."""
    val = np.full(EPOCHS, best_val + 1.0)
    val[best_epoch] = best_val
    return History(np.zeros(EPOCHS), val, best_epoch, False, 0)


def stub_fit(monkeypatch, runs, model_out=lambda model, i: model):
    """Replace ``fit``: call i returns ``(model_out(model, i), runs[i])``.

    Returns the list of ``(model, optimizer)`` the calls received.
    """
    calls = []

    def fit(key, model, loss, data, optimizer, **kw):
        calls.append((model, optimizer))
        return model_out(model, len(calls) - 1), runs[len(calls) - 1]

    monkeypatch.setattr(npe_mod, "fit", fit)
    return calls
