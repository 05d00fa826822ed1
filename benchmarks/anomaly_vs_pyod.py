"""jaxdm's AE, VAE and Deep SVDD against PyOD's (PyTorch CPU) on LXe summary features.

Data: ``jaxdm.simulators.xenon`` LZ-like events, features (cS1, log10 cS2, r, z, S2
width) of events passing the S1/S2 thresholds with 3 < cS1 < 80 phd. Training:
electronic-recoil background only (flat 0.5-20 keV); test: held-out background and
50 GeV WIMP nuclear recoils. Measured in interleaved rounds (jaxdm, then PyOD, per
model and round; median ratio over rounds):

- ROC AUC on the test set, mean and sample sd over rounds (each round trains
  with another seed on both sides: jaxdm keys, PyOD ``random_state``);
- training wall-clock. jaxdm's first round ("cold") includes the JIT compilation
  of ``fit``'s epoch; later rounds train fresh models of the same structure and
  reuse the compiled epoch ("warm"; ``fit_score`` passes one module-level loss).
  The speed-up is the median over rounds of PyOD time / jaxdm time, given for the
  warm rounds and for the cold round separately;
- events scored per second (warm, compiled jaxdm ``scores``; PyOD
  ``decision_function``), for every jaxdm score.

Recipe (same epochs and batch size on both sides, no early stopping in jaxdm:
``val_fraction=0``; learning rates are PyOD's defaults: 1e-3 for the AE and VAE,
1e-4 for Deep SVDD): AE 5-64-64-3-64-64-5 with dropout 0.2 (jaxdm's default;
latent 3 chosen on a separate validation split, ``anomaly_validation.py``) vs PyOD
``AutoEncoder`` (hidden 64, 32, its batch norm and dropout 0.2 defaults); VAE
latent 2, beta 1, dropout 0.2 (jaxdm: arXiv:2110.12248 loss; dropout chosen on
the validation split) vs PyOD ``VAE`` (encoder 128-64-32, dropout 0.2, its
defaults; with its default ``capacity=0`` its KL term is clamped to 0, so it trains
on the reconstruction alone); Deep SVDD bias-free 5-64-32 (jaxdm's default, PyOD's
network) vs PyOD ``DeepSVDD`` (hidden 64, 32, its defaults). Both standardise the
features. Run in a venv with pyod and CPU torch::

    /work/venv-pyod/bin/python benchmarks/anomaly_vs_pyod.py --rounds 3
"""

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxdm import anomaly as an
from jaxdm.simulators import xenon
from jaxdm.train import default_optimizer


def features(key, spectrum, n):
    ev = xenon.simulate_events(key, spectrum, xenon.lz_like(), n)
    cols = (ev.cs1, jnp.log10(jnp.maximum(ev.cs2, 1.0)), ev.r, ev.z, ev.s2_width)
    x = np.stack([np.asarray(c) for c in cols], axis=1)
    keep = np.asarray(ev.passed) & (x[:, 0] > 3.0) & (x[:, 0] < 80.0)
    return x[keep].astype(np.float32)


def jaxdm_models(key, dim):
    k = jax.random.split(key, 3)
    return {
        "AE": an.make_autoencoder(k[0], dim=dim, latent_dim=3),
        "VAE": an.make_vae(k[1], dim=dim, latent_dim=2, beta=1.0, dropout=0.2),
        "DeepSVDD": an.make_deep_svdd(k[2], dim=dim),
    }


def pyod_model(name, dim, epochs, batch, seed):
    if name == "AE":
        from pyod.models.auto_encoder import AutoEncoder

        return AutoEncoder(epoch_num=epochs, batch_size=batch, verbose=0,
                           random_state=seed)  # fmt: skip
    if name == "VAE":
        from pyod.models.vae import VAE

        return VAE(epoch_num=epochs, batch_size=batch, verbose=0, random_state=seed)
    from pyod.models.deep_svdd import DeepSVDD

    return DeepSVDD(n_features=dim, hidden_neurons=[64, 32], epochs=epochs,
                    batch_size=batch, verbose=0, random_state=seed)  # fmt: skip


def rate(fn, n, repeats=3):
    fn()
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def main(args):
    import pyod
    import torch

    torch.set_num_threads(2)
    key = jax.random.key(args.seed)
    k_b, k_t, k_s = jax.random.split(key, 3)
    er = xenon.flat_er_spectrum(1.0, e_min=0.5, e_max=20.0)
    x_tr = features(k_b, er, args.n_train)
    x_bt = features(k_t, er, args.n_test)
    x_sig = features(k_s, xenon.wimp_spectrum(50.0, 1e-46, e_max=60.0), args.n_test)
    x_te = np.concatenate([x_bt, x_sig])
    print(f"jax {jax.__version__}, pyod {pyod.__version__}, torch {torch.__version__}, "
          f"python {platform.python_version()}")  # fmt: skip
    print(f"train {len(x_tr)} ER, test {len(x_bt)} ER + {len(x_sig)} NR (50 GeV)")
    rows = {n: {"auc": [], "t": [], "auc_p": [], "t_p": [], "r_j": 0, "r_p": 0}
            for n in args.models}  # fmt: skip
    lrs = {"AE": 1e-3, "VAE": 1e-3, "DeepSVDD": 1e-4}  # PyOD's defaults
    trained = {}
    for r in range(args.rounds):
        models = jaxdm_models(jax.random.fold_in(key, r), x_tr.shape[1])
        for name in args.models:
            model = models[name]
            t = time.perf_counter()
            m, _ = an.fit_score(jax.random.fold_in(key, 100 + r), model, x_tr,
                                optimizer=default_optimizer(lrs[name]),
                                max_epochs=args.epochs,
                                batch_size=args.batch, val_fraction=0.0,
                                progress=False)  # fmt: skip
            jax.block_until_ready(m)
            rows[name]["t"].append(time.perf_counter() - t)
            s = np.asarray(m.scores(x_te))
            rows[name]["auc"].append(float(an.auc(s[: len(x_bt)], s[len(x_bt) :])))
            trained[name] = m
            p = pyod_model(name, x_tr.shape[1], args.epochs, args.batch, r)
            t = time.perf_counter()
            p.fit(x_tr)
            rows[name]["t_p"].append(time.perf_counter() - t)
            sp = p.decision_function(x_te)
            rows[name]["auc_p"].append(float(an.auc(sp[: len(x_bt)], sp[len(x_bt) :])))
            if r == args.rounds - 1:
                rows[name]["r_j"] = rate(lambda m=m: jax.block_until_ready(
                    m.scores(x_te)), len(x_te))  # fmt: skip
                rows[name]["r_p"] = rate(lambda p=p: p.decision_function(x_te),
                                         len(x_te))  # fmt: skip
        load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
        print(f"round {r + 1}/{args.rounds} done; times jaxdm "
              f"{[round(v['t'][-1], 2) for v in rows.values()]}, PyOD "
              f"{[round(v['t_p'][-1], 2) for v in rows.values()]} [s]; "
              f"load average {load}", flush=True)  # fmt: skip
    print(f"\n{'model':9s} {'AUC jaxdm':>9s} {'AUC PyOD':>9s} {'jaxdm cold':>10s} "
          f"{'jaxdm warm':>10s} {'PyOD [s]':>9s} {'x cold':>7s} {'x warm':>7s} "
          f"{'ev/s jaxdm':>11s} {'ev/s PyOD':>10s}")  # fmt: skip
    for name, v in rows.items():
        ratio = np.asarray(v["t_p"]) / np.asarray(v["t"])
        warm = ratio[1:] if len(ratio) > 1 else np.full(1, np.nan)
        t_warm = np.median(v["t"][1:]) if len(ratio) > 1 else np.nan
        print(f"{name:9s} {np.median(v['auc']):9.4f} {np.median(v['auc_p']):9.4f} "
              f"{v['t'][0]:10.2f} {t_warm:10.2f} {np.median(v['t_p']):9.2f} "
              f"{ratio[0]:7.1f} {np.median(warm):7.1f} "
              f"{v['r_j']:11.3g} {v['r_p']:10.3g}")  # fmt: skip
    print("AUC per round [jaxdm, PyOD]:", {n: [np.round(v["auc"], 3).tolist(),
                                              np.round(v["auc_p"], 3).tolist()]
                                          for n, v in rows.items()})  # fmt: skip
    for name, v in rows.items():
        a, b = np.asarray(v["auc"]), np.asarray(v["auc_p"])
        sa, sb = (np.std(c, ddof=1) if c.size > 1 else 0.0 for c in (a, b))
        print(f"AUC {name:9s} jaxdm {a.mean():.4f} +- {sa:.4f}  PyOD "
              f"{b.mean():.4f} +- {sb:.4f}  (mean +- sd, {a.size} seeds)")  # fmt: skip
    if args.skip_extra or "DeepSVDD" not in trained:
        return
    # scoring throughput of the other jaxdm scores (trained briefly; speed only)
    d = x_tr.shape[1]
    k = jax.random.split(key, 4)
    extra = {
        "flow": an.make_flow_density(k[0], dim=d, n_layers=3, hidden=(64, 64)),
        "aware": None,
        "classifier": an.make_classifier(k[1], dim=d),
    }
    kw = dict(max_epochs=2, batch_size=args.batch, val_fraction=0.0, progress=False)
    extra["flow"], _ = an.fit_score(k[2], extra["flow"], x_tr, **kw)
    y = np.r_[np.zeros(len(x_tr)), np.ones(len(x_sig))]
    xa = np.concatenate([x_tr, x_sig])
    extra["aware"], _ = an.fit_score(k[3], an.make_anomaly_aware(k[3], dim=d), xa,
                                     labels=y, **kw)  # fmt: skip
    extra["classifier"], _ = an.fit_score(k[1], extra["classifier"], xa, labels=y,
                                          **kw)  # fmt: skip
    extra["rare+different"] = an.combine_rare_different(
        extra["flow"], trained["DeepSVDD"], x_bt
    )
    print("\nevents scored per second (jaxdm, compiled, batch of "
          f"{len(x_te)}):")  # fmt: skip
    for name, m in {**trained, **extra}.items():
        r = rate(lambda m=m: jax.block_until_ready(m.scores(x_te)), len(x_te))
        print(f"  {name:15s} {r:10.3g}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-train", type=int, default=20_000)
    p.add_argument("--n-test", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", nargs="+", default=["AE", "VAE", "DeepSVDD"],
                   choices=["AE", "VAE", "DeepSVDD"])  # fmt: skip
    p.add_argument(
        "--skip-extra",
        action="store_true",
        help="skip the scoring-throughput table of the other scores",
    )
    main(p.parse_args())
