"""fit on a CPU split into 2 devices (a subprocess): result placement, row sharding.

- ``fit`` returns its model on one device. With the parameters replicated over the
  devices (as ``fit`` trains them), an ``eqx.error_if`` firing inside a later jitted
  call left an all-reduce half-joined and XLA:CPU aborted the interpreter (SIGABRT
  after its 40 s rendezvous timeout, jax 0.10.2): now it raises.
- The row-sharded training data of several processes (``_shard_rows``, used when
  ``jax.process_count() > 1``) keeps one block of rows per device, and the compiled
  minibatch gather returns exactly ``data[rows]`` for float, int and bool columns.
"""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))

CHILD = """
import equinox as eqx, jax, jax.numpy as jnp, numpy as np
from jaxdm import train
from jaxdm.train import fit
assert len(jax.devices()) == 2

# 1. The fitted model lives on one device; a failing jitted check raises.
x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
y = x.sum(1, keepdims=True)
def loss(m, b, k):
    return jnp.mean((jax.vmap(m)(b[0]) - b[1]) ** 2)
m, _ = fit(jax.random.key(1), eqx.nn.Linear(2, 1, key=jax.random.key(0)), loss,
           (x, y), max_epochs=2, batch_size=16, progress=False)
for leaf in jax.tree.leaves(eqx.filter(m, eqx.is_array)):
    assert len(leaf.sharding.device_set) == 1, leaf.sharding
@eqx.filter_jit
def score(m, x):
    x = eqx.error_if(x, jnp.any(~jnp.isfinite(x)), "x has NaN")
    return jax.vmap(m)(x)
assert np.isfinite(np.asarray(score(m, x))).all()
x[3, 0] = np.nan
try:
    score(m, x)
except eqx.EquinoxRuntimeError as err:
    assert "x has NaN" in str(err)
    print("RAISED", flush=True)

# 2. Row-sharded data: one block per device, exact minibatch gather.
_, shard, _ = train._make_sharding(None)
rng = np.random.default_rng(1)
data = {"x": rng.normal(size=(37, 3)).astype(np.float32),
        "y": rng.integers(0, 5, 37).astype(np.int32), "m": rng.uniform(size=37) > 0.5}
take = jax.jit(lambda d, r: train._take_rows(d, r, shard))
for keep in (None, np.sort(rng.choice(37, 20, replace=False))):
    sub = data if keep is None else {k: v[keep] for k, v in data.items()}
    n = len(sub["x"])
    rows = np.concatenate([rng.integers(0, n, 6), [0, n - 1]]).astype(np.int32)
    sh = train._shard_rows(data, shard, keep)
    for leaf in jax.tree.leaves(sh.arrays):
        blocks = [s.data.shape[0] for s in leaf.addressable_shards]
        assert blocks == [(n + 1) // 2] * 2, blocks
    out = take(sh, jnp.asarray(rows))
    for k in data:
        np.testing.assert_array_equal(np.asarray(out[k]), sub[k][rows])
        assert out[k].sharding.spec == shard.spec
print("ROWS", flush=True)
"""


@pytest.fixture(scope="module")
def child():
    path = ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=path,
               XLA_FLAGS="--xla_force_host_platform_device_count=2")  # fmt: skip
    return subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                          text=True, timeout=240)  # fmt: skip


def test_failing_jitted_check_on_fitted_model_raises_on_two_devices(child):
    assert "RAISED" in child.stdout, child.stderr[-3000:]


def test_row_sharded_minibatches_equal_indexing(child):
    assert child.returncode == 0, child.stderr[-3000:]
    assert "ROWS" in child.stdout
