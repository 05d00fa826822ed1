"""Sampling timings: first call, repeated call, new shape (1 -> 10 observations).

two_moons-size NPE (theta_dim 2, x_shape 2, make_npe defaults of the tree under
test, untrained: timing does not depend on the weights), 10,000 samples. Run each
tree in a fresh process (compile caches are per process):

    PYTHONPATH=<tree> python benchmarks/npe_sampling_timings.py <label> [nsf|maf]

The optional second argument is ``make_npe``'s ``flow`` (default: the tree's
default); ``train_npe`` may return a MAF since it selects the flow family.
"""

import json
import sys
import time

import equinox as eqx
import jax
import numpy as np

from jaxdm.inference import make_npe


def t(f, *a):
    """Wall time of one call, blocking on the result."""
    t0 = time.perf_counter()
    jax.block_until_ready(f(*a))
    return time.perf_counter() - t0


flow = {"flow": sys.argv[2]} if len(sys.argv) > 2 else {}
npe = make_npe(jax.random.key(0), theta_dim=2, x_shape=2, **flow)
x1 = jax.random.normal(jax.random.key(1), (2,))
x10 = jax.random.normal(jax.random.key(2), (10, 2))
ks = [jax.random.key(10 + i) for i in range(20)]
N = 10_000
r = {}
r["first_1obs"] = t(npe.sample, ks[0], x1, N)
r["repeat_1obs"] = float(np.median([t(npe.sample, ks[i], x1, N) for i in (1, 2, 3)]))
r["first_10obs"] = t(npe.sample, ks[4], x10, N)
r["repeat_10obs"] = float(np.median([t(npe.sample, ks[i], x10, N) for i in (5, 6, 7)]))
pure = eqx.filter_jit(lambda m, k, x: m.sample(k, x, N))
t(pure, npe, ks[8], x1)
t(pure, npe, ks[8], x10)
r["pure_1obs"] = float(np.median([t(pure, npe, ks[i], x1) for i in (9, 10, 11)]))
r["pure_10obs"] = float(np.median([t(pure, npe, ks[i], x10) for i in (12, 13, 14)]))
print(
    json.dumps({"tree": sys.argv[1], **flow, **{k: round(v, 4) for k, v in r.items()}}),
    flush=True,
)
