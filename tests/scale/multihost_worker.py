"""Worker of tests/scale/test_multihost.py: train a small NPE in one of N processes.

Usage: python multihost_worker.py PROCESS_ID N_PROCESSES PORT OUT_JSON STORE [CKPT]

Trains an NPE from arrays (``train_npe``) and a ratio estimator streamed from the
store at STORE (``train_ratio_estimator(source=...)``), then writes the losses, a few
log-densities and the number of store rows this process read to OUT_JSON.
"""

import json
import sys

import jax
import numpy as np

pid, nproc, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
store_path = sys.argv[5]
ckpt = sys.argv[6] if len(sys.argv) > 6 else None
if nproc > 1:
    from jaxdm import distributed

    distributed.initialize(f"127.0.0.1:{port}", nproc, pid, timeout=120)

import jaxdm.train as train  # noqa: E402
from jaxdm.inference.npe import make_npe, train_npe  # noqa: E402
from jaxdm.inference.nre import make_ratio_estimator, train_ratio_estimator  # noqa: E402
from jaxdm.store import SimulationStore  # noqa: E402

saves = []
held = []  # training rows this process's devices hold, per in-memory fit
_shard_rows = train._shard_rows


def shard_rows(*a, **k):
    out = _shard_rows(*a, **k)
    leaf = jax.tree.leaves(out.arrays)[0]
    held.append([leaf.shape[0], sum(s.data.shape[0] for s in leaf.addressable_shards)])
    return out


train._shard_rows = shard_rows
_save = train.save_checkpoint
train.save_checkpoint = lambda *a, **k: (saves.append(1), _save(*a, **k))

theta = np.asarray(jax.random.uniform(jax.random.key(1), (192, 2)))
x = theta + 0.1 * np.asarray(jax.random.normal(jax.random.key(2), (192, 2)))
npe = make_npe(
    jax.random.key(0), theta_dim=2, x_shape=2, flow_layers=2, flow_hidden=(16, 16),
    embedding_dim=8, embedding_width=16,
)  # fmt: skip
model, hist = train_npe(
    jax.random.key(3), npe, theta, x, batch_size=32, max_epochs=3, patience=2,
    progress=False, checkpoint=ckpt,
)  # fmt: skip
lp = model.log_prob(theta[:8], x[:8])

store = SimulationStore.open(store_path, "r")
read_rows = []
_read = store.read
store.read = lambda rows=None: (read_rows.append(len(rows)), _read(rows))[1]
val = {"theta": theta[:64], "x": x[:64]}
nre = make_ratio_estimator(jax.random.key(4), theta_dim=2, x_shape=(2,), width=16)
norm = store.source()  # its first chunk (250 rows) also fits the standardisers
nre_model, nre_hist = train_ratio_estimator(
    jax.random.key(5), nre, source=norm, validation=val, batch_size=32, max_epochs=2,
    chunk_size=100,
)  # fmt: skip
result = {
    "process_count": jax.process_count(),
    "n_devices": len(jax.devices()),
    "train_loss": hist.train_loss.tolist(),
    "val_loss": hist.val_loss.tolist(),
    "best_epoch": hist.best_epoch,
    "log_prob": np.asarray(lp).tolist(),
    "saves": len(saves),
    "nre_train_loss": nre_hist.train_loss.tolist(),
    "nre_val_loss": nre_hist.val_loss.tolist(),
    "nre_log_ratio": np.asarray(nre_model.log_ratio(theta[:8], x[:8])).tolist(),
    "rows_read": sum(read_rows),
    "rows_held": held,
}
with open(out, "w") as f:
    json.dump(result, f)
