"""Which runs ``train_npe``'s defaults make on an sbibm task (back-off, fallback).

Trains ``make_npe`` + ``train_npe`` with the defaults, nothing tuned, on 10^4
simulations with the keys of ``npe_vs_sbi.py --defaults`` (so the model is the one
that benchmark scores), and prints every training run ``train_npe`` made: its
learning rate schedule's peak, flow family, best epoch and best validation loss.
The learning-rate back-off triggers when the first run's best epoch lies in the
first quarter of ``max_epochs``; the MAF fallback only after a back-off.

    PYTHONPATH=. python benchmarks/npe_backoff_trigger.py two_moons slcp
"""

import argparse
import json
import time

import jax
import numpy as np

import jaxdm.inference.npe as npe_mod
from jaxdm.inference import make_npe, train_npe
from jaxdm.tasks import get_task


def main():
    p = argparse.ArgumentParser()
    p.add_argument("tasks", nargs="+")
    p.add_argument("--n-sims", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-epochs", type=int, default=120)
    a = p.parse_args()
    fit = npe_mod.fit
    for name in a.tasks:
        runs = []

        def logged(key, model, loss, data, optimizer, runs=runs, **kw):
            t0 = time.perf_counter()
            out = fit(key, model, loss, data, optimizer, **kw)
            hp = dict(model.hyperparams)
            h = out[1]
            runs.append(
                dict(
                    flow=hp["flow"],
                    embedding=hp["embedding"],
                    linear_skip=hp["flow_linear_skip"],
                    best_epoch=int(h.best_epoch),
                    best_val=float(np.nanmin(np.asarray(h.val_loss))),
                    seconds=round(time.perf_counter() - t0, 1),
                )
            )
            print(name, "run", len(runs), runs[-1], flush=True)
            return out

        npe_mod.fit = logged
        task = get_task(name)
        key = jax.random.key(a.seed)
        ks = jax.random.split(jax.random.fold_in(key, sum(map(ord, name))), 8)
        theta, x = task.sample_joint(ks[0], a.n_sims)
        k_init, k_train = jax.random.split(ks[1])
        npe = make_npe(
            k_init, theta_dim=task.theta_dim, x_shape=(task.x_dim,),
            support=task.support,
        )  # fmt: skip
        npe, hist = train_npe(
            k_train, npe, np.asarray(theta), np.asarray(x), progress=False,
            max_epochs=a.max_epochs,
        )  # fmt: skip
        npe_mod.fit = fit
        hp = dict(npe.hyperparams)
        out = dict(
            task=name,
            n_runs=len(runs),
            backoff_triggered=runs[0]["best_epoch"] < a.max_epochs // 4,
            chosen=(hp["flow"], hp["embedding"], hp["flow_linear_skip"]),
            chosen_best_epoch=int(hist.best_epoch),
            runs=runs,
        )
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
