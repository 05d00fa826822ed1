"""NRE posterior sampling with the documented defaults: time, uniqueness, ESS, C2ST.

For each task (sbibm two_moons and slcp, 10,000 training simulations) a default
ratio estimator (``make_ratio_estimator`` + ``train_ratio_estimator``, nothing tuned)
is trained once; then for 10 observations (joint draws ``jaxdm.tasks.observation`` with
keys ``fold_in(key(1000), i)``, since jaxdm ships no sbibm observation files) posterior
samples are drawn

* ``sir``: ``importance_samples`` over ``--n-prior`` prior draws, then ``resample``
  (multinomial, with replacement: the path measured in issue #20);
* ``mcmc`` (new code only): :func:`jaxdm.inference.nre.sample_mcmc`, the resample-move
  sampler seeded from the same importance samples;

and compared with the task's reference posterior (``--n-samples`` each) by
``jaxdm.inference.c2st`` (sbibm's MLP classifier, 5 folds). The sampling time for the
10 observations is wall-clock including compilation. Unique fraction = distinct rows /
samples; ESS = Kish's (sum w)^2 / sum w^2 of the importance weights.

Run the old code from a worktree of the base commit with the same script:
    PYTHONPATH=/tmp/base-nre python benchmarks/nre_posterior.py --mode before
    PYTHONPATH=. python benchmarks/nre_posterior.py --mode after
Results are appended as JSON lines to ``--out``.
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxdm.inference import c2st, nre
from jaxdm.tasks import get_task, observation

sys.path.insert(0, str(Path(__file__).parent))
from npe_vs_sbi import c2st_sklearn  # noqa: E402


def reference(task, name, xs, n, cache):
    path = Path(cache) / f"ref_{name}_{n}.npy"
    if path.exists():
        return np.load(path)
    refs = np.stack(
        [
            np.asarray(task.reference_posterior(jax.random.key(2000 + i), xo, n))
            for i, xo in enumerate(xs)
        ]
    )
    np.save(path, refs)
    return refs


def kish(log_w):
    log_w = np.asarray(log_w, np.float64)
    w = np.exp(log_w - log_w.max())
    return float(w.sum() ** 2 / (w**2).sum())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", default="two_moons,slcp")
    p.add_argument("--mode", choices=("before", "after"), required=True)
    p.add_argument("--n-sims", type=int, default=10_000)
    p.add_argument("--n-obs", type=int, default=10)
    p.add_argument("--n-prior", type=int, default=1_000_000)
    p.add_argument("--n-samples", type=int, default=10_000)
    p.add_argument("--no-c2st", action="store_true")
    p.add_argument(
        "--c2st",
        choices=("jaxdm", "sklearn"),
        default="jaxdm",
        help="jaxdm.inference.c2st, or the sbibm/sbi protocol in scikit-learn "
        "(benchmarks/npe_vs_sbi.py's c2st_sklearn; seed 6 + observation)",
    )
    p.add_argument("--samplers", default="sir,mcmc")
    p.add_argument("--cache", default="/tmp/nre_bench")
    p.add_argument("--out", default="/tmp/nre_bench/results.jsonl")
    a = p.parse_args()
    Path(a.cache).mkdir(parents=True, exist_ok=True)
    warnings.simplefilter("ignore", DeprecationWarning)

    def emit(rec):
        rec["mode"] = a.mode
        print(json.dumps(rec), flush=True)
        with open(a.out, "a") as f:
            f.write(json.dumps(rec) + "\n")

    for name in a.tasks.split(","):
        task = get_task(name)
        theta, x = task.sample_joint(jax.random.key(0), a.n_sims)
        obs = [
            observation(jax.random.fold_in(jax.random.key(1000), i), task)
            for i in range(a.n_obs)
        ]
        xs = jnp.stack([o[1] for o in obs])
        t0 = time.perf_counter()
        model = nre.make_ratio_estimator(
            jax.random.key(1), theta_dim=task.theta_dim, x_shape=(task.x_dim,)
        )
        model, hist = nre.train_ratio_estimator(jax.random.key(2), model, theta, x)
        jax.block_until_ready(model)
        t_train = time.perf_counter() - t0
        emit(
            {
                "task": name,
                "stage": "train",
                "seconds": round(t_train, 1),
                "epochs": len(hist.train_loss),
                "best_val": float(np.min(np.asarray(hist.val_loss))),
            }
        )
        refs = reference(task, name, xs, a.n_samples, a.cache)
        prior = task.sample_prior(jax.random.key(3), a.n_prior)
        low, high = task.support.low, task.support.high

        # --- SIR: importance weights + multinomial resampling, as users call it.
        t0 = time.perf_counter()
        if a.mode == "before":
            sir, ess = [], []
            for i in range(a.n_obs):
                ws = nre.importance_samples(model, prior, xs[i])
                sir.append(nre.resample(jax.random.key(4 + i), ws, 0, a.n_samples))
                ess.append(kish(ws.log_weights[:, 0]))
            sir = np.asarray(jnp.stack(sir))
        else:
            ws = nre.importance_samples(model, prior, xs)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", nre.LowESSWarning)
                sir = np.asarray(
                    jnp.stack(
                        [
                            nre.resample(
                                jax.random.key(4 + i),
                                jax.tree.map(lambda v, i=i: v[i], ws),
                                0,
                                a.n_samples,
                            )
                            for i in range(a.n_obs)
                        ]
                    )
                )
            ess = [float(e) for e in np.asarray(ws.ess[:, 0])]
        t_sir = time.perf_counter() - t0
        samplers = {"sir": (sir, t_sir)}
        if a.mode == "after":
            t0 = time.perf_counter()
            from jaxdm.inference.ratio_sampling import sample_mcmc

            res = sample_mcmc(
                jax.random.key(5), model, prior, xs, a.n_samples, low=low, high=high
            )
            mc = np.asarray(jax.block_until_ready(res.samples))
            samplers["mcmc"] = (mc, time.perf_counter() - t0)
            emit(
                {
                    "task": name,
                    "stage": "mcmc_acceptance",
                    "acceptance": [round(float(v), 3) for v in res.acceptance],
                }
            )
        for sname, (s, t) in samplers.items():
            uniq = [len(np.unique(s[i], axis=0)) / a.n_samples for i in range(a.n_obs)]
            inside = float(np.mean((s >= np.asarray(low)) & (s <= np.asarray(high))))
            if sname not in a.samplers.split(","):
                continue
            c = []
            if not a.no_c2st:
                for i in range(a.n_obs):
                    if a.c2st == "sklearn":
                        c.append(c2st_sklearn(s[i], refs[i], seed=6 + i))
                    else:
                        c.append(
                            float(
                                c2st(jax.random.key(6 + i), jnp.asarray(s[i]), refs[i])
                            )
                        )
                    emit(
                        {
                            "task": name,
                            "stage": f"{sname}_c2st_obs",
                            "obs": i,
                            "c2st": round(c[-1], 4),
                        }
                    )
            emit(
                {
                    "task": name,
                    "stage": sname,
                    "seconds_10_obs": round(t, 1),
                    "unique_frac": [round(u, 3) for u in uniq],
                    "ess": [round(e, 1) for e in ess],
                    "inside_box": inside,
                    "c2st": [round(v, 3) for v in c],
                    "c2st_mean": round(float(np.mean(c)), 3) if c else None,
                }
            )


if __name__ == "__main__":
    main()
