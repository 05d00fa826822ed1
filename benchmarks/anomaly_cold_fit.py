"""Cold and warm ``fit_score`` of the anomaly_vs_pyod AE, wall and CPU time.

One process = one cold call (the first ``fit_score`` in the process: every XLA
compilation included) then one warm call (a fresh model of the same structure,
compiled programs reused). Run it in fresh processes, alternating the code
versions to compare (``PYTHONPATH`` pointing at each checkout)::

    PYTHONPATH=. python benchmarks/anomaly_cold_fit.py --label new

Data: standard-normal rows of 5 features (the benchmark's shapes: 2,039 training
events, batch 64, 5 epochs, AE 5-64-64-3-64-64-5 with dropout 0.2).
"""

import argparse
import time

import jax
import numpy as np

from jaxdm import anomaly as an
from jaxdm.train import default_optimizer


def main(args):
    x = np.random.default_rng(0).normal(size=(args.n, 5)).astype(np.float32)
    model = an.make_autoencoder(jax.random.key(0), dim=5, latent_dim=3)
    jax.block_until_ready(jax.numpy.ones(3) + 1)  # backend started, as in the benchmark

    def one(seed):
        t, c = time.perf_counter(), time.process_time()
        m, _ = an.fit_score(jax.random.key(seed), model, x,
                            optimizer=default_optimizer(1e-3),
                            max_epochs=args.epochs, batch_size=64, val_fraction=0.0,
                            progress=False)  # fmt: skip
        jax.block_until_ready(m)
        return time.perf_counter() - t, time.process_time() - c

    (cw, cc), (ww, wc) = one(1), one(2)
    print(f"{args.label} cold wall {cw:.2f} cpu {cc:.2f} | warm wall {ww:.2f} "
          f"cpu {wc:.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2039)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--label", default="")
    main(p.parse_args())
