"""CWoLa: a classifier of two mixtures approaches the supervised one (1708.02949)."""

import jax
import numpy as np
import pytest

from jaxdm import anomaly as an
from jaxdm.train import default_optimizer


def _mixture(rng, n, f):
    """n events: a fraction f of signal N((1, 1), 0.6^2 I), the rest N(0, I)."""
    n_s = int(round(f * n))
    bkg = rng.standard_normal((n - n_s, 2))
    sig = 0.6 * rng.standard_normal((n_s, 2)) + 1.0
    return np.concatenate([bkg, sig]).astype(np.float32)


def _train(x, y, w, seed):
    m = an.make_classifier(jax.random.key(seed), dim=2, width=16)
    m, _ = an.fit_score(
        jax.random.key(seed + 1), m, x, labels=y, weights=w,
        optimizer=default_optimizer(1e-2), max_epochs=12, patience=4,
        batch_size=128, progress=False,
    )  # fmt: skip
    return m


@pytest.mark.slow
def test_cwola_approaches_supervised():
    """AUC on pure signal vs background, for f1 - f2 = 0.02 and 0.6 (f2 = 0.05).

    The AUC grows with the fraction difference and at 0.6 is within 0.01 of the
    fully supervised classifier trained on the same number of events; at 0.02 it is
    clearly worse (a classifier ignoring the labels, or one trained on mislabelled
    mixtures, fails one of the two).
    """
    rng = np.random.default_rng(0)
    n = 3000
    b_test = rng.standard_normal((4000, 2)).astype(np.float32)
    s_test = (0.6 * rng.standard_normal((4000, 2)) + 1.0).astype(np.float32)

    def test_auc(m):
        return float(an.auc(m.scores(b_test), m.scores(s_test)))

    x, y, w = an.cwola_training_set(_mixture(rng, n, 1.0), _mixture(rng, n, 0.0))
    sup = test_auc(_train(x, y, w, 0))
    aucs = []
    for i, f1 in enumerate((0.07, 0.65)):
        x, y, w = an.cwola_training_set(_mixture(rng, n, f1), _mixture(rng, n, 0.05))
        aucs.append(test_auc(_train(x, y, w, 10 + i)))
    assert aucs[0] < aucs[1], aucs
    assert aucs[1] == pytest.approx(sup, abs=0.01), (aucs, sup)
    assert sup - aucs[0] > 0.02, (aucs, sup)


def test_hyperclass_and_cwola_weights_balance():
    rng = np.random.default_rng(1)
    b = rng.standard_normal((100, 2))
    sigs = [rng.standard_normal((k, 2)) for k in (10, 30)]
    x, y, w = an.hyperclass_training_set(b, sigs)
    assert x.shape == (140, 2)
    assert w[y == 0].sum() == pytest.approx(w[y == 1].sum())
    assert w[100:110].sum() == pytest.approx(w[110:].sum())
    assert w.mean() == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"signals\[1\]"):
        an.hyperclass_training_set(b, [sigs[0], np.ones((3, 5))])
    x, y, w = an.cwola_training_set(b, sigs[0])
    assert w[y == 1].sum() == pytest.approx(w[y == 0].sum())
