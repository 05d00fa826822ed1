"""Held-out mean log q of NPE conditioner/embedding choices (model selection, no C2ST).

For each task: 10,000 training simulations (the same draw as ``npe_vs_sbi.py``), the
recipe of ``benchmarks/RESULTS.md`` (NSF, 10 bins, batch 200, 120 epochs of warm-up +
cosine decay from 2e-3), and the mean log q over 20,000 fresh simulations, for each
embedding listed.

    PYTHONPATH=. python benchmarks/npe_heldout_select.py two_moons,slcp mlp,identity
"""

import sys
import time

import jax
import numpy as np

from jaxdm.inference import make_npe, train_npe
from jaxdm.tasks import get_task

for name in sys.argv[1].split(","):
    task = get_task(name)
    ks = jax.random.split(jax.random.fold_in(jax.random.key(0), sum(map(ord, name))), 8)
    theta, x = map(np.asarray, task.sample_joint(ks[0], 10_000))
    th_t, x_t = map(np.asarray, task.sample_joint(jax.random.key(123), 20_000))
    for emb in sys.argv[2].split(","):
        t0 = time.time()
        npe = make_npe(
            ks[1], theta_dim=task.theta_dim, x_shape=(task.x_dim,),
            support=task.support, embedding=emb, n_bins=10,
        )  # fmt: skip
        npe, h = train_npe(
            ks[2], npe, theta, x, batch_size=200, max_epochs=120, progress=False
        )
        lq = float(np.mean(npe.log_prob(th_t, x_t)))
        print(
            f"{name} {emb}: held-out mean log q {lq:.4f}, best val loss "
            f"{np.nanmin(h.val_loss):.4f}, {time.time() - t0:.0f} s",
            flush=True,
        )
