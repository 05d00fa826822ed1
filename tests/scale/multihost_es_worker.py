"""Worker of tests/scale/test_multihost_resume.py: early stopping and a killed resume.

Usage: python multihost_es_worker.py PROCESS_ID N_PROCESSES PORT OUT_JSON CKPT MODE

Trains a linear model with ``fit`` on in-memory rows whose validation set prefers
half the training slope, so the validation loss falls, then rises, and early stopping
fires (patience 2). MODE:
- ``kill``: train with checkpoints at CKPT and SIGKILL this process right after the
  checkpoint of epoch 3 is on disk (after the barrier every process passes);
- ``resume``: train with CKPT (resuming the killed run), then once more without a
  checkpoint (uninterrupted), and write both results and the epochs each trained.
"""

import json
import os
import signal
import sys
import time

import jax

pid, nproc, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ckpt, mode = sys.argv[5], sys.argv[6]
if nproc > 1:
    from jaxdm import distributed

    distributed.initialize(f"127.0.0.1:{port}", nproc, pid, timeout=120)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.experimental import multihost_utils  # noqa: E402

import jaxdm.train as train  # noqa: E402

rng = np.random.default_rng(0)
w = np.array([1.0, -2.0, 0.5, 1.5], np.float32)
x = rng.normal(size=(101, 4)).astype(np.float32)
y = (x @ w + 0.05 * rng.normal(size=101)).astype(np.float32)[:, None]
xv = rng.normal(size=(40, 4)).astype(np.float32)
yv = (0.5 * xv @ w)[:, None].astype(np.float32)


def loss(m, batch, key):
    return jnp.mean((jax.vmap(m)(batch[0]) - batch[1]) ** 2)


def run(checkpoint):
    model = eqx.nn.Linear(4, 1, use_bias=False, key=jax.random.key(0))
    model = eqx.tree_at(lambda m: m.weight, model, jnp.zeros((1, 4)))
    m, h = train.fit(
        jax.random.key(1), model, loss, (x, y), optax.sgd(0.006),
        validation_data=(xv, yv), batch_size=16, max_epochs=40, patience=2,
        progress=False, checkpoint=checkpoint,
    )  # fmt: skip
    val_of_returned = float(loss(m, (xv, yv), None))
    return {
        "weight": np.asarray(m.weight).ravel().tolist(),
        "train_loss": h.train_loss.tolist(),
        "val_loss": h.val_loss.tolist(),
        "best_epoch": h.best_epoch,
        "stopped_early": h.stopped_early,
        "val_of_returned": val_of_returned,
    }


epochs = []
_run_epoch = train._run_epoch
train._run_epoch = lambda *a, **k: (epochs.append(1), _run_epoch(*a, **k))[1]
if mode == "kill":
    _sync = multihost_utils.sync_global_devices

    def sync(name):
        _sync(name)
        if name == "jaxdm.fit.checkpoint.3":
            # Every process leaves the barrier's collective before any dies: a file
            # rendezvous (no network), then SIGKILL.
            open(f"{ckpt}.at3.{pid}", "w").close()
            t0 = time.monotonic()
            while not all(os.path.exists(f"{ckpt}.at3.{p}") for p in range(nproc)):
                if time.monotonic() - t0 > 120:
                    raise SystemExit("the other processes never reached epoch 3")
                time.sleep(0.01)
            os.kill(os.getpid(), signal.SIGKILL)

    multihost_utils.sync_global_devices = sync
    if nproc == 1:
        raise SystemExit("mode 'kill' needs several processes (it kills at a barrier)")
    run(ckpt)
    raise SystemExit("not killed")
result = {"process_count": jax.process_count(), "resumed": run(ckpt),
          "resumed_epochs": len(epochs)}  # fmt: skip
epochs.clear()
result["fresh"] = run(None)
result["fresh_epochs"] = len(epochs)
with open(out, "w") as f:
    json.dump(result, f)
