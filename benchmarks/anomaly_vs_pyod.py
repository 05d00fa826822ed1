"""jaxdm's AE, VAE and Deep SVDD against PyOD's (PyTorch CPU) on LXe summary features.

Data: ``jaxdm.simulators.xenon`` LZ-like events, features (cS1, log10 cS2, r, z, S2
width) of events passing the S1/S2 thresholds with 3 < cS1 < 80 phd. Training:
electronic-recoil background only (flat 0.5-20 keV); test: held-out background and
50 GeV WIMP nuclear recoils. Measured in interleaved rounds (jaxdm, then PyOD, per
model and round; median ratio over rounds):

- ROC AUC on the test set, mean and sample sd over rounds (each round trains
  with another seed on both sides: jaxdm keys, PyOD ``random_state``);
- training time, wall-clock and CPU (``time.process_time``: all threads of the
  process, torch's included), per model and round. Two comparisons, both printed:

  * **warm**: steady-state training, compilation excluded. jaxdm's rounds 2+ train
    fresh models of the same structure and reuse the compiled epoch
    (``fit_score`` passes one module-level loss); PyOD's rounds 2+. The warm
    speed-up is the median over rounds 2+ of PyOD time / jaxdm time.
  * **cold**: round 1, the first fit of that model in this process. jaxdm's
    includes the JIT compilation of ``fit``'s epoch (the process has already
    started JAX's backend to simulate the data); PyOD's first AE fit includes
    torch's lazy start-up, its first VAE and Deep SVDD fits do not (torch is
    already warm by then), so the cold ratio of the AE is the fresh-process one.

  Timings are only meaningful on a quiet machine: on a loaded 2-core CPU torch's
  two threads thrash and PyOD's times grow 100-1000x (``benchmarks/RESULTS.md``,
  sixth session); ``--skip-pyod`` then times jaxdm alone. The load average is
  printed after every round;
- events scored per second (warm, compiled jaxdm ``scores``; PyOD
  ``decision_function``), for every jaxdm score.

Recipe (same epochs and batch size on both sides, no early stopping in jaxdm:
``val_fraction=0``; learning rates are PyOD's defaults: 1e-3 for the AE and VAE,
1e-4 for Deep SVDD): AE 5-64-64-3-64-64-5 with dropout 0.2 (jaxdm's default;
latent 3 chosen on a separate validation split, ``anomaly_validation.py``) vs PyOD
``AutoEncoder`` (hidden 64, 32, its batch norm and dropout 0.2 defaults); VAE
5-64-64-(3+3)-64-64-5, latent 3, beta 0.03, no dropout (jaxdm: arXiv:2110.12248
loss, also the score; chosen on the validation split at this size and at 2,000
events, ``anomaly_validation.py``: with beta 1 the latent collapses, see
``make_vae``) vs PyOD ``VAE`` (its defaults: encoder 128-64-32, latent 2, ReLU,
dropout 0.2, Adam with weight decay 1e-5; with its default ``capacity=0`` its KL
term is clamped to 0, so it trains on the reconstruction alone, and it scores the
Euclidean reconstruction distance); Deep SVDD bias-free 5-64-32, jaxdm's default
network (leaky ReLU, linear output) or with ``--svdd-network pyod`` PyOD's (ReLU hidden
and output: ``make_deep_svdd(activation="relu", output_activation="relu")``; on
validation data +0.007 AUC at the default size, -0.036 at 2,000 events x 5 epochs,
``benchmarks/RESULTS.md`` anomaly7) vs PyOD ``DeepSVDD`` (hidden 64, 32, its
defaults: Adam lr 1e-4 with L2 0.5e-6, no dropout with two layers; jaxdm's AdamW +
clipping gives bitwise the same Deep SVDD weights as plain Adam here). Inputs: the AE
and VAE standardise each feature on both sides; jaxdm's Deep SVDD ZCA-whitens them on
the training background (its default, ``nn.Whitener``), PyOD's standardises each
feature. ``--svdd-input standardized`` gives jaxdm's Deep SVDD PyOD's preprocessing,
``--svdd-input whitened`` feeds PyOD the whitened features (both sides whitened), so
that the preprocessing's share of an AUC difference can be read off. Run in a venv
with pyod and CPU torch; the quiet re-run (10 seeds, so that Deep SVDD's AUC
difference resolves ~0.01; the first 5 rounds are the 5-seed run)::

    PYTHONPATH=. /work/venv-pyod/bin/python benchmarks/anomaly_vs_pyod.py --rounds 10

(``--skip-extra`` leaves out the scoring-throughput table of the other scores).
"""

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxdm import anomaly as an
from jaxdm.nn import Whitener
from jaxdm.simulators import xenon
from jaxdm.train import default_optimizer


def features(key, spectrum, n):
    ev = xenon.simulate_events(key, spectrum, xenon.lz_like(), n)
    cols = (ev.cs1, jnp.log10(jnp.maximum(ev.cs2, 1.0)), ev.r, ev.z, ev.s2_width)
    x = np.stack([np.asarray(c) for c in cols], axis=1)
    keep = np.asarray(ev.passed) & (x[:, 0] > 3.0) & (x[:, 0] < 80.0)
    return x[keep].astype(np.float32)


def jaxdm_models(key, dim, svdd_network="default", svdd_input="default"):
    k = jax.random.split(key, 3)
    svdd = {}
    if svdd_network == "pyod":
        svdd.update(activation="relu", output_activation="relu")
    if svdd_input == "standardized":
        svdd.update(standardize=True)
    return {
        "AE": an.make_autoencoder(k[0], dim=dim, latent_dim=3),
        "VAE": an.make_vae(k[1], dim=dim, latent_dim=3, beta=0.03, dropout=0.0),
        "DeepSVDD": an.make_deep_svdd(k[2], dim=dim, **svdd),
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


def _ratio(p, j):
    """(cold ratio, median warm ratio) of PyOD / jaxdm times per round."""
    if not p:
        return np.nan, np.nan
    ratio = np.asarray(p) / np.asarray(j)
    return ratio[0], (np.median(ratio[1:]) if ratio.size > 1 else np.nan)


def report(rows, args):
    """Times (wall and CPU, cold = round 1, warm = median of rounds 2+), ratios, AUC."""
    head = ("model", "clock", "jaxdm cold", "jaxdm warm", "PyOD r1", "PyOD warm",
            "x cold", "x warm")  # fmt: skip
    print("\n" + " ".join(f"{h:>{w}s}" for h, w in zip(head, (9, 5, 10, 10, 8, 9, 7, 7),
                                                        strict=True)))  # fmt: skip
    for name, v in rows.items():
        for clock, j, p in (("wall", v["t"], v["t_p"]), ("CPU", v["c"], v["c_p"])):
            xc, xw = _ratio(p, j)
            jw = np.median(j[1:]) if len(j) > 1 else np.nan
            pc = p[0] if p else np.nan
            pw = np.median(p[1:]) if len(p) > 1 else np.nan
            print(f"{name:9s} {clock:5s} {j[0]:10.2f} {jw:10.2f} {pc:8.2f} {pw:9.2f} "
                  f"{xc:7.1f} {xw:7.1f}")  # fmt: skip
    for name, v in rows.items():
        a, b = np.asarray(v["auc"]), np.asarray(v["auc_p"])
        sa, sb = (np.std(c, ddof=1) if c.size > 1 else 0.0 for c in (a, b))
        pyod = f"  PyOD {b.mean():.4f} +- {sb:.4f}" if b.size else ""
        if a.size > 1 and b.size == a.size:  # difference, standard error of the means
            se = np.sqrt((sa**2 + sb**2) / a.size)
            pyod += f"  diff {a.mean() - b.mean():+.4f} +- {se:.4f} (s.e.)"
        print(f"AUC {name:9s} jaxdm {a.mean():.4f} +- {sa:.4f}{pyod}  (mean +- sd, "
              f"{a.size} seeds; per round jaxdm {np.round(a, 3).tolist()}, PyOD "
              f"{np.round(b, 3).tolist()})")  # fmt: skip
    rates = [f"{n} {v['r_j']:.3g} / {v['r_p']:.3g}" for n, v in rows.items()]
    print("events scored per second (compiled jaxdm scores / PyOD "
          "decision_function): " + ", ".join(rates))  # fmt: skip


def cpu_model():
    """The CPU's model name (Linux), else the platform's processor string."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(args):
    t_start = time.perf_counter()
    if args.skip_pyod:
        pyod = torch = type("absent", (), {"__version__": "not run"})
    else:
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
    white = Whitener.fit(x_tr)  # for --svdd-input whitened (PyOD's inputs)
    print(f"jax {jax.__version__}, pyod {pyod.__version__}, torch {torch.__version__}, "
          f"python {platform.python_version()}")  # fmt: skip
    print(f"CPU {cpu_model()}, {os.cpu_count()} logical cores; load average at start "
          + ", ".join(f"{v:.1f}" for v in os.getloadavg()))  # fmt: skip
    print(
        f"train {len(x_tr)} ER, test {len(x_bt)} ER + {len(x_sig)} NR (50 GeV); "
        f"{args.epochs} epochs, batch {args.batch}, {args.rounds} rounds (seeds); "
        f"jaxdm Deep SVDD network: {args.svdd_network}, inputs: {args.svdd_input}"
    )
    rows = {n: {"auc": [], "t": [], "c": [], "auc_p": [], "t_p": [], "c_p": [],
                "r_j": 0, "r_p": 0} for n in args.models}  # fmt: skip
    lrs = {"AE": 1e-3, "VAE": 1e-3, "DeepSVDD": 1e-4}  # PyOD's defaults
    trained = {}
    for r in range(args.rounds):
        models = jaxdm_models(jax.random.fold_in(key, r), x_tr.shape[1],
                              args.svdd_network, args.svdd_input)  # fmt: skip
        for name in args.models:
            model = models[name]
            t, c = time.perf_counter(), time.process_time()
            m, _ = an.fit_score(jax.random.fold_in(key, 100 + r), model, x_tr,
                                optimizer=default_optimizer(lrs[name]),
                                max_epochs=args.epochs,
                                batch_size=args.batch, val_fraction=0.0,
                                progress=False)  # fmt: skip
            jax.block_until_ready(m)
            rows[name]["t"].append(time.perf_counter() - t)
            rows[name]["c"].append(time.process_time() - c)
            s = np.asarray(m.scores(x_te))
            rows[name]["auc"].append(float(an.auc(s[: len(x_bt)], s[len(x_bt) :])))
            trained[name] = m
            if r == args.rounds - 1:
                rows[name]["r_j"] = rate(lambda m=m: jax.block_until_ready(
                    m.scores(x_te)), len(x_te))  # fmt: skip
            if args.skip_pyod:
                continue
            p = pyod_model(name, x_tr.shape[1], args.epochs, args.batch, r)
            xp_tr, xp_te = x_tr, x_te
            if name == "DeepSVDD" and args.svdd_input == "whitened":
                xp_tr, xp_te = (np.asarray(jax.vmap(white)(v)) for v in (x_tr, x_te))
            t, c = time.perf_counter(), time.process_time()
            p.fit(xp_tr)
            rows[name]["t_p"].append(time.perf_counter() - t)
            rows[name]["c_p"].append(time.process_time() - c)
            sp = p.decision_function(xp_te)
            rows[name]["auc_p"].append(float(an.auc(sp[: len(x_bt)], sp[len(x_bt) :])))
            if r == args.rounds - 1:
                rows[name]["r_p"] = rate(lambda p=p: p.decision_function(xp_te),
                                         len(x_te))  # fmt: skip
        load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
        jx = [f"{v['t'][-1]:.2f} ({v['c'][-1]:.2f})" for v in rows.values()]
        py = [f"{v['t_p'][-1]:.2f} ({v['c_p'][-1]:.2f})" for v in rows.values()
              if v["t_p"]]  # fmt: skip
        print(f"round {r + 1}/{args.rounds} done; wall (CPU) [s] jaxdm {jx}, PyOD "
              f"{py or 'not run'}; load average {load}", flush=True)  # fmt: skip
    report(rows, args)
    print(f"benchmark wall time {time.perf_counter() - t_start:.0f} s")
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
        "--svdd-network",
        choices=["default", "pyod"],
        default="default",
        help="jaxdm's Deep SVDD network: the library default (leaky ReLU, linear "
        "output) or PyOD's (ReLU hidden and output)",
    )
    p.add_argument(
        "--svdd-input",
        choices=["default", "standardized", "whitened"],
        default="default",
        help="Deep SVDD inputs. default: each library's own preprocessing (jaxdm ZCA-"
        "whitens on background, PyOD standardises each feature); standardized: "
        "jaxdm with standardize=True, PyOD's preprocessing on both sides; whitened: "
        "PyOD fed jaxdm's Whitener(x_train) output too (whitening on both sides)",
    )
    p.add_argument(
        "--skip-extra",
        action="store_true",
        help="skip the scoring-throughput table of the other scores",
    )
    p.add_argument(
        "--skip-pyod",
        action="store_true",
        help="time jaxdm only (PyOD's torch timings are meaningless on a loaded CPU)",
    )
    main(p.parse_args())
