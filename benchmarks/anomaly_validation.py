"""Validation-split choice of the AE / VAE / Deep SVDD settings used against PyOD.

Same data recipe as ``benchmarks/anomaly_vs_pyod.py`` (LZ-like summary features,
ER training background, 50 GeV WIMP NR as the anomaly) but drawn with a different
seed (``--seed 7``), so that the benchmark's test set plays no part in the choice.
Each variant is trained ``--repeats`` times (different keys) for 5 and 20 epochs
and its validation AUC printed (``--only VAE --epochs 5`` runs a subset); the
benchmark then uses the best variant whose AUC holds up from 5 to 20 epochs.
~5 minutes on a quiet 2-core CPU::

    PYTHONPATH=. python benchmarks/anomaly_validation.py

At the benchmark's default size (``--n 20000 --epochs 20 --only VAE``) the VAE
variants were compared with 3 repeats each (``benchmarks/RESULTS.md``, anomaly6).
"""

import argparse
import sys
from pathlib import Path

import jax
import numpy as np

from jaxdm import anomaly as an
from jaxdm.simulators import xenon
from jaxdm.train import default_optimizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from anomaly_vs_pyod import features  # noqa: E402


def variants(d):
    ae, vae, svdd = an.make_autoencoder, an.make_vae, an.make_deep_svdd
    return {  # name: (factory(key), learning rate)
        "AE latent 2, no dropout": (lambda k: ae(k, dim=d, dropout=0.0), 1e-3),
        "AE latent 2": (lambda k: ae(k, dim=d), 1e-3),
        "AE latent 3, no dropout": (
            lambda k: ae(k, dim=d, latent_dim=3, dropout=0.0), 1e-3),
        "AE latent 3": (lambda k: ae(k, dim=d, latent_dim=3), 1e-3),
        "AE latent 4": (lambda k: ae(k, dim=d, latent_dim=4), 1e-3),
        "AE 64-32 code (PyOD-like)": (
            lambda k: ae(k, dim=d, latent_dim=32, depth=1), 1e-3),
        "VAE latent 2": (lambda k: vae(k, dim=d, latent_dim=2), 1e-3),
        "VAE latent 3": (lambda k: vae(k, dim=d, latent_dim=3), 1e-3),
        "VAE recon. score": (
            lambda k: vae(k, dim=d, score_terms="reconstruction"), 1e-3),
        "VAE dropout 0.2": (lambda k: vae(k, dim=d, dropout=0.2), 1e-3),
        "VAE dropout 0.2, recon.": (
            lambda k: vae(k, dim=d, dropout=0.2, score_terms="reconstruction"),
            1e-3),
        "VAE beta 0.1, dropout 0.2": (
            lambda k: vae(k, dim=d, beta=0.1, dropout=0.2), 1e-3),
        "VAE beta 0, drop. 0.2, recon.": (  # PyOD's effective VAE (capacity 0)
            lambda k: vae(k, dim=d, beta=0.0, dropout=0.2,
                          score_terms="reconstruction"), 1e-3),
        # beta * D > 1 (standardised features) collapses the latent: see make_vae
        "VAE latent 3, beta 0.1": (
            lambda k: vae(k, dim=d, latent_dim=3, beta=0.1), 1e-3),
        "VAE latent 3, beta 0.03": (  # the benchmark's
            lambda k: vae(k, dim=d, latent_dim=3, beta=0.03), 1e-3),
        "VAE latent 3, beta 0.01": (
            lambda k: vae(k, dim=d, latent_dim=3, beta=0.01), 1e-3),
        "VAE latent 3, beta 0.01, drop. 0.2": (
            lambda k: vae(k, dim=d, latent_dim=3, beta=0.01, dropout=0.2), 1e-3),
        "SVDD 64-64-8": (lambda k: svdd(k, dim=d, rep_dim=8, depth=2), 1e-4),
        "SVDD 64-32 (PyOD's)": (lambda k: svdd(k, dim=d), 1e-4),
        "SVDD 64-32, lr 1e-3": (lambda k: svdd(k, dim=d), 1e-3),
    }  # fmt: skip


def main(args):
    key = jax.random.key(args.seed)
    k_b, k_t, k_s = jax.random.split(key, 3)
    er = xenon.flat_er_spectrum(1.0, e_min=0.5, e_max=20.0)
    x_tr = features(k_b, er, args.n)
    x_bg = features(k_t, er, args.n)
    x_sig = features(k_s, xenon.wimp_spectrum(50.0, 1e-46, e_max=60.0), args.n)
    x_val = np.concatenate([x_bg, x_sig])
    print(f"train {len(x_tr)} ER; validation {len(x_bg)} ER + {len(x_sig)} NR")
    print(f"{'variant':28s} {'epochs':>6s}  validation AUC per repeat")
    for name, (make, lr) in variants(x_tr.shape[1]).items():
        if args.only and not name.startswith(args.only):
            continue
        for epochs in args.epochs:
            aucs = []
            for r in range(args.repeats):
                m, _ = an.fit_score(
                    jax.random.key(r), make(jax.random.key(10 + r)), x_tr,
                    optimizer=default_optimizer(lr), max_epochs=epochs,
                    batch_size=64, val_fraction=0.0, progress=False,
                )  # fmt: skip
                s = np.asarray(m.scores(x_val))
                aucs.append(float(an.auc(s[: len(x_bg)], s[len(x_bg) :])))
            print(f"{name:28s} {epochs:6d}  " + " ".join(f"{a:.3f}" for a in aucs),
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--epochs", type=int, nargs="+", default=[5, 20])
    p.add_argument("--only", default="", help="run the variants starting with this")
    main(p.parse_args())
