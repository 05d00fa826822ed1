"""Shared Gaussian data and trained scores for the anomaly tests (trained once)."""

import jax
import numpy as np
import pytest

from jaxdm import anomaly as an
from jaxdm.train import default_optimizer

D = 3
CORR = np.full((D, D), 0.8) + 0.2 * np.eye(D)
SIGNAL_MEAN = np.array([2.0, -2.0, 0.0])
FIT = dict(max_epochs=15, patience=4, batch_size=64, progress=False)


def gaussian_data(seed, n_bkg, n_sig):
    """Correlated Gaussian background N(0, CORR); signal N(SIGNAL_MEAN, 0.25 I)."""
    rng = np.random.default_rng(seed)
    chol = np.linalg.cholesky(CORR)
    bkg = rng.standard_normal((n_bkg, D)) @ chol.T
    sig = 0.5 * rng.standard_normal((n_sig, D)) + SIGNAL_MEAN
    return bkg.astype(np.float32), sig.astype(np.float32)


@pytest.fixture(scope="session")
def gauss():
    """Training background, held-out background and signal."""
    bkg, sig = gaussian_data(0, 4000, 1000)
    return {"train": bkg[:2000], "test": bkg[2000:], "signal": sig}


@pytest.fixture(scope="session")
def trained(gauss):
    """Every score trained on the Gaussian background (shared by the tests)."""
    opt = default_optimizer(1e-2)
    x = gauss["train"]
    keys = iter(jax.random.split(jax.random.key(0), 32))
    out = {}
    makers = {
        "flow": lambda k: an.make_flow_density(k, dim=D, n_layers=2, hidden=(32, 32)),
        "ae": lambda k: an.make_autoencoder(k, dim=D, latent_dim=1, width=32),
        "vae": lambda k: an.make_vae(k, dim=D, latent_dim=1, width=32, beta=0.01),
        "svdd": lambda k: an.make_deep_svdd(k, dim=D, rep_dim=4, width=32),
    }
    for name, make in makers.items():
        o = default_optimizer(3e-3) if name == "flow" else opt
        out[name], _ = an.fit_score(next(keys), make(next(keys)), x, optimizer=o,
                                   **FIT)  # fmt: skip
    # anomaly awareness: known anomalies in another direction than the signal
    rng = np.random.default_rng(7)
    known = (0.5 * rng.standard_normal((200, D)) + [-2.0, 2.0, 1.0]).astype("f4")
    xa = np.concatenate([x, known])
    ya = np.r_[np.zeros(len(x)), np.ones(len(known))]
    out["aware"], _ = an.fit_score(
        next(keys), an.make_anomaly_aware(next(keys), dim=D, latent_dim=1, width=32),
        xa, labels=ya, optimizer=opt, **FIT,
    )  # fmt: skip
    # hyperclass: signals at other positions than the test signal
    signals = [
        (0.5 * rng.standard_normal((300, D)) + m).astype("f4")
        for m in ([3.0, -1.0, 0.0], [1.0, -3.0, 1.0], [0.0, 0.0, 3.5])
    ]
    xh, yh, wh = an.hyperclass_training_set(x, signals)
    out["hyperclass"], _ = an.fit_score(
        next(keys), an.make_classifier(next(keys), dim=D, width=32), xh, labels=yh,
        weights=wh, optimizer=opt, **FIT,
    )  # fmt: skip
    out["combined"] = an.combine_rare_different(
        out["flow"], out["svdd"], gaussian_data(11, 2000, 1)[0]
    )
    return out
