"""fit returns its model on one device: a failing jitted check raises, never aborts.

Regression test: with the parameters replicated over a 2-device CPU (as ``fit``
trains them), an ``eqx.error_if`` that fires inside a later jitted call left an
all-reduce half-joined and XLA:CPU aborted the interpreter (SIGABRT after its 40 s
rendezvous timeout, jax 0.10.2). It needs 2 devices, hence a subprocess.
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))

CHILD = """
import equinox as eqx, jax, jax.numpy as jnp, numpy as np
from jaxdm.train import fit
assert len(jax.devices()) == 2
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
    print("RAISED")
"""


def test_failing_jitted_check_on_fitted_model_raises_on_two_devices():
    path = ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=path,
               XLA_FLAGS="--xla_force_host_platform_device_count=2")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                          text=True, timeout=240)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RAISED" in proc.stdout
