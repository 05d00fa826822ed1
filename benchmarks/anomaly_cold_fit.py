"""Cold and warm ``fit_score`` of the anomaly_vs_pyod models, wall and CPU time.

One process = one cold call per model (the first ``fit_score`` of that model in the
process, in the order given: every XLA compilation it needs included, the
benchmark's order AE, VAE, Deep SVDD shares the epoch's shuffle program between
them) then one warm call per model (a fresh model of the same structure, compiled
programs reused). Run it in fresh processes, alternating the code versions to
compare (``PYTHONPATH`` pointing at each checkout)::

    PYTHONPATH=. python benchmarks/anomaly_cold_fit.py --models AE VAE DeepSVDD

(add ``--n 13519 --epochs 20`` for the benchmark's default size).

Data: standard-normal rows of 5 features (the benchmark's shapes; default 2,039
training events, batch 64, 5 epochs). Models as in ``anomaly_vs_pyod.py`` (AE
5-64-64-3-64-64-5 with dropout 0.2, VAE latent 3 beta 0.03 no dropout, Deep SVDD
5-64-32 with the library's default activations, so that older checkouts run it).
"""

import argparse
import time

import jax
import numpy as np

from jaxdm import anomaly as an
from jaxdm.train import default_optimizer

MAKE = {
    "AE": (lambda k: an.make_autoencoder(k, dim=5, latent_dim=3), 1e-3),
    "VAE": (lambda k: an.make_vae(k, dim=5, latent_dim=3, beta=0.03, dropout=0.0),
            1e-3),
    "DeepSVDD": (lambda k: an.make_deep_svdd(k, dim=5), 1e-4),
}  # fmt: skip


def main(args):
    x = np.random.default_rng(0).normal(size=(args.n, 5)).astype(np.float32)
    jax.block_until_ready(jax.numpy.ones(3) + 1)  # backend started, as in the benchmark
    models = {n: MAKE[n][0](jax.random.key(i)) for i, n in enumerate(args.models)}
    fresh = {n: MAKE[n][0](jax.random.key(10 + i)) for i, n in enumerate(args.models)}
    jax.block_until_ready((models, fresh))  # model building is not timed

    def one(name, model, seed):
        t, c = time.perf_counter(), time.process_time()
        m, _ = an.fit_score(jax.random.key(seed), model, x,
                            optimizer=default_optimizer(MAKE[name][1]),
                            max_epochs=args.epochs, batch_size=64, val_fraction=0.0,
                            progress=False)  # fmt: skip
        jax.block_until_ready(m)
        return time.perf_counter() - t, time.process_time() - c

    cold = {n: one(n, models[n], 1) for n in args.models}
    warm = {n: one(n, fresh[n], 2) for n in args.models}
    for n in args.models:
        (cw, cc), (ww, wc) = cold[n], warm[n]
        print(f"{args.label} {n} cold wall {cw:.2f} cpu {cc:.2f} | warm wall {ww:.2f} "
              f"cpu {wc:.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2039)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--models", nargs="+", default=["AE"], choices=list(MAKE))
    p.add_argument("--label", default="")
    main(p.parse_args())
