"""jaxdm NPE against sbi's NPE (NPE_C, PyTorch CPU) at 10,000 simulations.

Head to head (``--sbi-tasks``, default two_moons and slcp): both estimators are trained
on the same simulations (drawn with ``jaxdm.tasks``, numpy -> torch float32), one after
the other in one process, and compared on

- training wall-clock (jaxdm's includes its JIT compilation);
- posterior sampling time for 10,000 samples of one observation, the median of
  ``--repeats`` warm calls on different observations (jaxdm: an ``eqx.filter_jit``-ed
  sampler, compile time reported separately; sbi: ``DirectPosterior.sample``, which
  includes sbi's rejection of samples outside the prior box);
- amortized sampling, 1,000 observations x 1,000 samples in one call (jaxdm: one
  vmapped call; sbi: ``DirectPosterior.sample_batched``);
- C2ST against the task's reference posterior: sbi's ``c2st`` with
  ``classifier="mlp"`` (sbibm's sklearn MLP, 5 folds), 10,000 posterior vs 10,000
  reference samples, identical for both estimators, averaged over ``--n-obs``
  observations ``jaxdm.tasks.observation(fold_in(key, i), task)``.

Published comparison (all ``--tasks``): the same mean C2ST for jaxdm's NPE against the
values of Lueckmann et al. (2021) for NPE at 10^4 simulations.

Recipe. Both sides: neural spline flow (rational-quadratic coupling/autoregressive
splines), 5 transforms, batch 200, 10 % validation, early stopping after 20 epochs
without improvement of the validation loss, Adam(W) with learning rate 5e-4, x
standardised per element, no embedding network (``embedding="identity"`` in jaxdm,
``nn.Identity`` in sbi). Differences (not hidden):

- jaxdm's NSF conditioners are MLPs with hidden sizes ``--flow-hidden`` (default
  64, 64) and ``--n-bins`` bins (default 10); sbi's ``posterior_nn("nsf")`` uses
  nflows' residual nets with 50 hidden features, 2 blocks, 10 bins (sbi defaults);
- jaxdm maps a box prior support with a bijector (samples never leave it, no
  rejection); sbi z-scores theta, trains an unbounded flow and rejects samples outside
  the prior at sampling time;
- jaxdm's default optimiser is AdamW (weight decay 1e-5 as set in
  ``jaxdm.train.default_optimizer``) with gradient clipping; sbi uses Adam with
  gradient-norm clipping at 5;
- jaxdm caps training at ``--max-epochs`` (default 1000); sbi has no cap;
- ``--schedule cosine`` (jaxdm only; sbi keeps its constant 5e-4 and patience 20):
  warm-up (5 epochs from 1e-4) then cosine decay from ``--peak-lr`` to 1e-5 over
  ``--max-epochs``, trained to the end (no early stopping), the model with the best
  validation loss restored. On this machine it gained 0.2-0.26 nats of held-out
  mean log q on two_moons and slcp over the constant rate; ``--schedule constant`` is
  the sbi-matched recipe above.

``--flow-activation`` sets the conditioners' nonlinearity (default GELU), per task if
wanted: ``gelu,slcp=relu``. Chosen on held-out mean log q (20,000 fresh simulations,
cosine recipe, two training seeds) before any C2ST: slcp -4.81/-4.82 with GELU against
-4.46/-4.39 with ReLU; two_moons 3.58/3.58 with GELU against 3.55/3.51 with ReLU.

``--linear-skip`` gives the conditioners direct input-to-output connections (MADE's
"direct connections", Germain et al. 2015). On gaussian_linear (constant recipe, MAF)
held-out mean log q went 0.718 -> 0.729 with GELU and 0.732 -> 0.738 with SiLU (the
analytic posterior scores 0.789); it is used there only.

``--flow auto`` (used for the published comparison only) trains an NSF and a MAF with
the same recipe and keeps the one with the lower validation loss: model selection on
held-out simulations, never on the reference posterior.

``--defaults`` trains jaxdm exactly as a user who tunes nothing:
``make_npe(key, theta_dim=..., x_shape=..., support=task.support)`` and
``train_npe(key, npe, theta, x)``; every recipe option above is ignored
(``--select-flow`` adds ``select_flow=True``: NSF vs MAF on the validation split).
Without sbi installed (``--sbi-tasks ""``), C2ST falls back to ``c2st_sklearn``, which
reimplements the settings of sbi's ``c2st(..., classifier="mlp")`` in scikit-learn
(z-scored by the first sample set, MLP ``(10 d, 10 d)`` ReLU, Adam, early stopping
after 50 iterations, 5-fold shuffled cross-validated accuracy), so the numbers stay
comparable.

Reference posterior samples are cached per task/seed/observation in
``<out>/refs/*.npz`` (slcp's NUTS reference is slow), so re-runs only retrain.

Run (benchmark venv only; sbi and torch are not jaxdm dependencies):
    /work/bench-sbi/bin/python benchmarks/npe_vs_sbi.py
Defaults only, without sbi/torch (scikit-learn needed for the C2ST):
    python benchmarks/npe_vs_sbi.py --defaults --sbi-tasks "" \
        --tasks two_moons,slcp,gaussian_linear
"""

import argparse
import json
import os
import time

import equinox as eqx
import jax
import numpy as np
import optax

import jaxdm
from jaxdm.inference import make_npe, train_npe
from jaxdm.tasks import get_task, observation
from jaxdm.train import default_optimizer

# Mean C2ST of NPE over 10 observations at 10^4 simulations (Lueckmann et al. 2021).
PUBLISHED = {
    "two_moons": 0.61,
    "slcp": 0.90,
    "gaussian_linear": 0.55,
    "gaussian_mixture": 0.66,
}
# Uniform prior boxes of the sbibm tasks (for sbi's BoxUniform prior).
BOUNDS = {"two_moons": (-1.0, 1.0), "slcp": (-3.0, 3.0), "gaussian_mixture": (-10, 10)}


def tnp(a):
    """A JAX/numpy array as a float32 torch tensor."""
    import torch

    return torch.as_tensor(np.asarray(a, dtype=np.float32))


def timed(f, *args):
    t0 = time.perf_counter()
    out = jax.block_until_ready(f(*args))
    return out, time.perf_counter() - t0


def median_time(f, args_list):
    """Median wall time of ``f(*args)`` over the argument tuples (warm calls)."""
    return float(np.median([timed(f, *args)[1] for args in args_list]))


def c2st_mlp(samples, ref, seed):
    try:
        from sbi.utils.metrics import c2st
    except ImportError:
        return c2st_sklearn(samples, ref, seed)
    return float(c2st(tnp(samples), tnp(ref), seed=seed, classifier="mlp"))


def c2st_sklearn(x, y, seed, n_folds=5):
    """C2ST as sbi's ``c2st(x, y, seed, classifier="mlp")`` (sbi 0.27), sklearn only.

    BLAS runs single-threaded (``threadpoolctl``; ``C2ST_THREADS`` overrides): the
    MLP's matrices are small (10 d wide), and on a machine shared by other jobs
    multi-threaded BLAS spends its time waiting for cores.
    """
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.float32)
    mean, std = x.mean(0), x.std(0, ddof=1)
    std[std < 1e-14] = 1.0
    x, y = (x - mean) / std, (y - mean) / std
    d = x.shape[1]
    clf = MLPClassifier(
        activation="relu",
        hidden_layer_sizes=(10 * d, 10 * d),
        max_iter=1000,
        solver="adam",
        early_stopping=True,
        n_iter_no_change=50,
        random_state=seed,
    )
    data = np.concatenate([x, y])
    target = np.concatenate([np.zeros(len(x)), np.ones(len(y))])
    cv = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with threadpool_limits(int(os.environ.get("C2ST_THREADS", "1"))):
        return float(np.mean(cross_val_score(clf, data, target, cv=cv)))


def reference(task, name, key, x_obs, n, path):
    """Reference samples for one observation, cached in ``path`` (.npz)."""
    if os.path.exists(path):
        d = np.load(path)
        if d["ref"].shape[0] >= n and np.allclose(d["x_obs"], np.asarray(x_obs)):
            return d["ref"][:n], 0.0
    ref, dt = timed(task.reference_posterior, key, x_obs, n)
    np.savez(path, ref=np.asarray(ref), x_obs=np.asarray(x_obs))
    return np.asarray(ref), dt


def activation_for(spec, task_name):
    """The conditioner activation for ``task_name`` from ``--flow-activation``."""
    default, per_task = "gelu", {}
    for item in filter(None, spec.split(",")):
        name, _, act = item.rpartition("=")
        if name:
            per_task[name] = act
        else:
            default = act
    return per_task.get(task_name, default)


def train_jaxdm(key, task, theta, x, a):
    """Train jaxdm's NPE (``--flow auto``: see the module docstring).

    With ``auto`` the reported time and epochs are those of both trainings.
    """
    if a.flow != "auto":
        npe, t, ep, _ = _train_one(key, task, theta, x, a, a.flow)
        return npe, t, ep, a.flow
    fits = {f: _train_one(key, task, theta, x, a, f) for f in ("nsf", "maf")}
    best = min(fits, key=lambda f: fits[f][3])
    t = sum(v[1] for v in fits.values())
    ep = sum(v[2] for v in fits.values())
    return fits[best][0], t, ep, best


def _train_one(key, task, theta, x, a, flow):
    k_init, k_train = jax.random.split(key)
    t0 = time.perf_counter()
    if a.defaults:
        npe = make_npe(
            k_init,
            theta_dim=task.theta_dim,
            x_shape=(task.x_dim,),
            support=task.support,
        )
        npe, hist = train_npe(
            k_train, npe, theta, x, progress=False, select_flow=a.select_flow
        )
        npe = jax.block_until_ready(npe)
        best_val = float(np.nanmin(hist.val_loss))
        hp = dict(npe.hyperparams)
        print(f"defaults: {hp['flow']} (embedding {hp['embedding']}, linear skip "
              f"{hp['flow_linear_skip']}) chosen, best val loss "
              f"{best_val:.4f} at epoch {hist.best_epoch}", flush=True)  # fmt: skip
        return npe, time.perf_counter() - t0, len(hist.train_loss), best_val
    npe = make_npe(
        k_init,
        theta_dim=task.theta_dim,
        x_shape=(task.x_dim,),
        support=task.support,
        embedding=a.embedding,
        flow=flow,
        flow_layers=a.flow_layers,
        flow_hidden=tuple(int(h) for h in a.flow_hidden.split(",")),
        flow_activation=activation_for(a.flow_activation, task.name),
        flow_linear_skip=a.linear_skip,
        n_bins=a.n_bins,
    )
    kw = {"patience": 20}
    if a.schedule == "cosine":
        steps = int(round(len(theta) * 0.9)) // a.batch_size
        sched = optax.warmup_cosine_decay_schedule(
            1e-4, a.peak_lr, 5 * steps, a.max_epochs * steps, 1e-5
        )
        kw = {"patience": a.max_epochs, "optimizer": default_optimizer(sched)}
    npe, hist = train_npe(
        k_train,
        npe,
        theta,
        x,
        batch_size=a.batch_size,
        max_epochs=a.max_epochs,
        **kw,
        val_fraction=0.1,
        progress=False,
    )
    npe = jax.block_until_ready(npe)
    best_val = float(np.nanmin(hist.val_loss))
    return npe, time.perf_counter() - t0, len(hist.train_loss), best_val


def train_sbi(name, theta, x, a):
    import torch
    from sbi.inference import NPE_C
    from sbi.neural_nets import posterior_nn
    from sbi.utils import BoxUniform

    low, high = BOUNDS[name]
    d = theta.shape[1]
    prior = BoxUniform(low * torch.ones(d), high * torch.ones(d))
    t0 = time.perf_counter()
    inf = NPE_C(
        prior=prior,
        density_estimator=posterior_nn(model=a.flow, num_transforms=a.flow_layers),
        show_progress_bars=False,
    )
    est = inf.append_simulations(tnp(theta), tnp(x)).train(
        training_batch_size=a.batch_size,
        learning_rate=5e-4,
        validation_fraction=0.1,
        stop_after_epochs=20,
        max_num_epochs=a.sbi_max_epochs,
    )
    t_train = time.perf_counter() - t0
    posterior = inf.build_posterior(est)
    return posterior, t_train, int(inf.summary["epochs_trained"][-1])


def sbi_sample(posterior, x_obs, n):
    import torch

    with torch.no_grad():
        return posterior.sample((n,), x=tnp(x_obs)[None], show_progress_bars=False)


def sbi_sample_batched(posterior, xs, n):
    import torch

    with torch.no_grad():
        return posterior.sample_batched((n,), x=tnp(xs), show_progress_bars=False)


def run_task(name, a, key, log):
    task = get_task(name)
    ks = jax.random.split(jax.random.fold_in(key, sum(map(ord, name))), 8)
    theta, x = task.sample_joint(ks[0], a.n_sims)
    theta, x = np.asarray(theta), np.asarray(x)
    res = {"task": name, "published_npe_c2st": PUBLISHED.get(name)}

    npe, t_jax, ep_jax, flow = train_jaxdm(ks[1], task, theta, x, a)
    act = activation_for(a.flow_activation, name)
    if a.defaults:
        # train_npe may have chosen the flow family on the validation split
        flow, act = f"defaults ({dict(npe.hyperparams)['flow']})", "defaults"
    res["jaxdm"] = {"train_s": t_jax, "epochs": ep_jax, "flow": flow, "activation": act}
    log(f"[{name}] jaxdm trained ({flow}, {act}): {t_jax:.1f} s, {ep_jax} epochs")

    sample10k = eqx.filter_jit(lambda m, k, xo: m.sample(k, xo, a.n_samples))
    sample_amort = eqx.filter_jit(lambda m, k, xs: m.sample(k, xs, a.amort_samples))
    _, x_amort = task.sample_joint(ks[2], a.amort_obs)
    x_amort = np.asarray(x_amort)
    _, t_c = timed(sample10k, npe, ks[3], x[0])
    t_s = median_time(
        sample10k,
        [(npe, jax.random.fold_in(ks[4], i), x[1 + i]) for i in range(a.repeats)],
    )
    _, t_ac = timed(sample_amort, npe, ks[3], x_amort)
    _, t_a = timed(sample_amort, npe, ks[4], x_amort)
    res["jaxdm"].update(
        sample10k_s=t_s,
        sample10k_first_call_s=t_c,
        amort_s=t_a,
        amort_first_call_s=t_ac,
    )
    log(
        f"[{name}] jaxdm sampling 10k: {t_s * 1e3:.1f} ms (first call {t_c:.2f} s); "
        f"{a.amort_obs}x{a.amort_samples}: {t_a:.2f} s (first call {t_ac:.2f} s)"
    )

    posterior = None
    if name in a.sbi_tasks:
        posterior, t_sbi, ep_sbi = train_sbi(name, theta, x, a)
        res["sbi"] = {"train_s": t_sbi, "epochs": ep_sbi}
        log(f"[{name}] sbi trained: {t_sbi:.1f} s, {ep_sbi} epochs")
        sbi_sample(posterior, x[0], 100)  # warm-up
        t_ss = median_time(
            sbi_sample, [(posterior, x[1 + i], a.n_samples) for i in range(a.repeats)]
        )
        _, t_sa = timed(sbi_sample_batched, posterior, x_amort, a.amort_samples)
        res["sbi"].update(sample10k_s=t_ss, amort_s=t_sa)
        log(
            f"[{name}] sbi sampling 10k: {t_ss * 1e3:.1f} ms; "
            f"{a.amort_obs}x{a.amort_samples}: {t_sa:.2f} s"
        )

    os.makedirs(os.path.join(a.out, "refs"), exist_ok=True)
    c_jax, c_sbi = [], []
    for i in range(a.n_obs):
        k_obs = jax.random.fold_in(ks[5], i)
        _, x_o = observation(k_obs, task)
        path = os.path.join(a.out, "refs", f"{name}_seed{a.seed}_obs{i}.npz")
        ref, t_ref = reference(
            task, name, jax.random.fold_in(ks[6], i), x_o, a.n_samples, path
        )
        s_jax = sample10k(npe, jax.random.fold_in(ks[7], i), x_o)
        c_jax.append(c2st_mlp(s_jax, ref, a.seed))
        msg = f"[{name}] obs {i}: ref {t_ref:.1f} s, C2ST jaxdm {c_jax[-1]:.3f}"
        if posterior is not None:
            import torch

            torch.manual_seed(a.seed + i)
            c_sbi.append(c2st_mlp(sbi_sample(posterior, x_o, a.n_samples), ref, a.seed))
            msg += f", sbi {c_sbi[-1]:.3f}"
        log(msg)
    res["jaxdm"]["c2st"] = c_jax
    res["jaxdm"]["c2st_mean"] = float(np.mean(c_jax))
    if c_sbi:
        res["sbi"]["c2st"] = c_sbi
        res["sbi"]["c2st_mean"] = float(np.mean(c_sbi))
    res["n_obs"] = a.n_obs
    return res


def table(results):
    rows = [
        "| task | n_obs | C2ST jaxdm | C2ST sbi | published NPE "
        "| train jaxdm / sbi (s) | ratio (<= 0.33) | sample 10k jaxdm / sbi (ms) "
        "| speed-up (>= 10x) "
        "| 1000x1000 jaxdm / sbi (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        j, s = r["jaxdm"], r.get("sbi")
        if s is None:
            rows.append(
                f"| {r['task']} | {r['n_obs']} | {j['c2st_mean']:.3f} | - | "
                f"{r['published_npe_c2st']} | {j['train_s']:.1f} / - | - | "
                f"{j['sample10k_s'] * 1e3:.1f} / - | - | {j['amort_s']:.2f} / - |"
            )
            continue
        rows.append(
            f"| {r['task']} | {r['n_obs']} | {j['c2st_mean']:.3f} | "
            f"{s['c2st_mean']:.3f} | {r['published_npe_c2st']} | "
            f"{j['train_s']:.1f} / {s['train_s']:.1f} | "
            f"{j['train_s'] / s['train_s']:.2f} | "
            f"{j['sample10k_s'] * 1e3:.1f} / {s['sample10k_s'] * 1e3:.1f} | "
            f"{s['sample10k_s'] / j['sample10k_s']:.0f}x | "
            f"{j['amort_s']:.2f} / {s['amort_s']:.2f} |"
        )
    return "\n".join(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="two_moons,slcp,gaussian_linear,gaussian_mixture")
    p.add_argument("--sbi-tasks", default="two_moons,slcp")
    p.add_argument("--n-sims", type=int, default=10_000)
    p.add_argument("--n-obs", type=int, default=10)
    p.add_argument("--n-samples", type=int, default=10_000)
    p.add_argument("--amort-obs", type=int, default=1_000)
    p.add_argument("--amort-samples", type=int, default=1_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--repeats", type=int, default=5, help="timed 10k-sample calls (median)"
    )
    p.add_argument(
        "--defaults",
        action="store_true",
        help="jaxdm with make_npe/train_npe defaults only (recipe options ignored)",
    )
    p.add_argument("--flow", default="nsf", choices=("nsf", "maf", "auto"))
    p.add_argument("--flow-layers", type=int, default=5)
    p.add_argument("--flow-hidden", default="64,64")
    p.add_argument(
        "--flow-activation",
        default="gelu",
        help="conditioner nonlinearity: one name, or per task, e.g. "
        "'gelu,slcp=relu' (the first bare name is the default)",
    )
    p.add_argument(
        "--linear-skip",
        action="store_true",
        help="direct input-to-output connections in the flow conditioners",
    )
    p.add_argument(
        "--select-flow",
        action="store_true",
        help="with --defaults: train_npe(select_flow=True), NSF vs MAF on validation",
    )
    p.add_argument("--n-bins", type=int, default=10)
    p.add_argument("--embedding", default="identity")
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument("--max-epochs", type=int, default=1000)
    p.add_argument("--schedule", default="constant", choices=("constant", "cosine"))
    p.add_argument("--peak-lr", type=float, default=2e-3)
    p.add_argument("--sbi-max-epochs", type=int, default=2**31 - 1)
    p.add_argument("--out", default="outputs/npe_vs_sbi")
    a = p.parse_args()
    a.sbi_tasks = [t for t in a.sbi_tasks.split(",") if t]
    os.makedirs(a.out, exist_ok=True)
    key = jax.random.key(a.seed)

    def log(msg):
        print(time.strftime("%H:%M:%S"), msg, flush=True)

    meta = {
        "jax": jax.__version__,
        "jaxdm": getattr(jaxdm, "__version__", "?"),
        "args": vars(a),
    }
    try:
        import sbi
        import torch
    except ImportError:
        if a.sbi_tasks:
            raise
        import sklearn

        meta["c2st"] = f"c2st_sklearn (scikit-learn {sklearn.__version__})"
    else:
        torch.manual_seed(a.seed)
        meta.update(sbi=sbi.__version__, torch=torch.__version__)
    results = []
    for name in a.tasks.split(","):
        results.append(run_task(name, a, key, log))
        with open(os.path.join(a.out, f"results_seed{a.seed}.json"), "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1)
    print(table(results), flush=True)


if __name__ == "__main__":
    main()
