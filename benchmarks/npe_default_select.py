"""Held-out mean log q of candidate ``train_npe`` default recipes (issue #20 item 4).

Each candidate is ``name:key=value,...`` over ``emb`` (make_npe embedding), ``lr``
(peak rate of the warm-up + cosine schedule), ``wd`` (AdamW weight decay), ``hidden``
(flow conditioner sizes, ``-``-separated), ``epochs``, ``skip`` (1: linear
skip connections in the conditioners), ``bins`` (spline bins), ``flow``, ``bs``
(batch size).
Training data, held-out data and keys are those of
``benchmarks/npe_heldout_select.py`` (10,000 training and 20,000 fresh simulations
per task). One JSON line per (task, candidate) is appended to ``--out``.

    PYTHONPATH=. python benchmarks/npe_default_select.py gaussian_linear \
        base: lr5e4:lr=5e-4 wd:wd=1e-2
"""

import argparse
import json
import time

import jax
import numpy as np
import optax

from jaxdm.inference import make_npe, train_npe
from jaxdm.tasks import get_task
from jaxdm.train import default_optimizer


def parse(spec):
    name, _, rest = spec.partition(":")
    kv = dict(item.split("=") for item in filter(None, rest.split(",")))
    return name, kv


def run(task_name, name, kv):
    task = get_task(task_name)
    seed = jax.random.fold_in(jax.random.key(0), sum(map(ord, task_name)))
    ks = jax.random.split(seed, 8)
    theta, x = map(np.asarray, task.sample_joint(ks[0], 10_000))
    th_t, x_t = map(np.asarray, task.sample_joint(jax.random.key(123), 20_000))
    t0 = time.time()
    mk = dict(theta_dim=task.theta_dim, x_shape=(task.x_dim,), support=task.support)
    if "emb" in kv:
        mk["embedding"] = kv["emb"]
    if "hidden" in kv:
        mk["flow_hidden"] = tuple(int(h) for h in kv["hidden"].split("-"))
    if "skip" in kv:
        mk["flow_linear_skip"] = bool(int(kv["skip"]))
    if "bins" in kv:
        mk["n_bins"] = int(kv["bins"])
    if "flow" in kv:
        mk["flow"] = kv["flow"]
    npe = make_npe(ks[1], **mk)
    tk = {"progress": False, "lr_backoffs": 0}  # one run per candidate
    epochs = int(kv.get("epochs", 120))
    tk["max_epochs"] = epochs
    if "lr" in kv:
        tk["learning_rate"] = float(kv["lr"])
    if "bs" in kv:
        tk["batch_size"] = int(kv["bs"])
    if "wd" in kv:
        lr = float(kv.get("lr", 2e-3))
        steps = (10_000 - 1_000) // int(kv.get("bs", 200))
        # The schedule of jaxdm.inference.npe.default_schedule_optimizer, with
        # the weight decay changed.
        s = optax.warmup_cosine_decay_schedule(
            lr / 20, lr, min(5, epochs // 4) * steps, epochs * steps, lr / 200
        )
        tk["optimizer"] = default_optimizer(s, weight_decay=float(kv["wd"]))
        tk["patience"] = epochs
    npe, h = train_npe(ks[2], npe, theta, x, **tk)
    lq = float(np.mean(npe.log_prob(th_t, x_t)))
    return {
        "task": task_name,
        "candidate": name,
        "spec": kv,
        "heldout_log_q": lq,
        "best_val": float(np.nanmin(h.val_loss)),
        "best_epoch": int(h.best_epoch),
        "seconds": time.time() - t0,
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tasks")
    p.add_argument("candidates", nargs="+")
    p.add_argument("--out", default="outputs/sbi5/npe_default_select.jsonl")
    a = p.parse_args()
    for t in a.tasks.split(","):
        for spec in a.candidates:
            r = run(t, *parse(spec))
            print(json.dumps(r), flush=True)
            with open(a.out, "a") as f:
                f.write(json.dumps(r) + "\n")
