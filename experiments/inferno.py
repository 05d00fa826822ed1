"""INFERNO's synthetic benchmark: classifier vs INFERNO vs the exact likelihood.

De Castro & Dorigo (arXiv:1806.04743) section 4: a 3-D mixture of 50 signal and
1000 background events, the background shape depending on two constrained nuisance
parameters (shift r, sigma 0.4; exponential mean lambda, sigma 1). We compare the
expected uncertainty on the signal yield s after profiling r and lambda for
(i) a plain signal-vs-background classifier (``jaxdm.nn.MLP`` through
``jaxdm.train.fit``) whose output is histogrammed in equal-width bins, (ii) an
INFERNO summary network trained on that expected uncertainty (softmax soft
histogram, ``jaxdm.design.inferno_loss``) and binned by argmax, (iii) the exact
unbinned likelihood. Paper: 26.7, 18.7 and 16.9 events. ~3-6 minutes on 2 cores.

    python experiments/inferno.py --seed 0
"""

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdm.design import inferno
from jaxdm.nn import MLP
from jaxdm.train import fit

PAPER = {"classifier": 26.7, "INFERNO": 18.7, "exact likelihood": 16.9}


def main(args):
    key = jax.random.key(args.seed)
    k_train, k_test, k_clf, k_inf, k_fit1, k_fit2, k_exact = jax.random.split(key, 7)
    xs, eps = inferno.sample_benchmark(k_train, args.n_train)
    xs_t, eps_t = inferno.sample_benchmark(k_test, args.n_test)
    xb = inferno.background_from_noise(eps, 0.0, 3.0)
    n_bins = args.bins

    # (i) classifier on nominal simulation, output in equal-width bins of [0, 1].
    clf = MLP(3, 1, width=args.width, depth=2, key=k_clf)
    data = {
        "x": jnp.concatenate([xs, xb]),
        "y": jnp.r_[jnp.ones(len(xs)), jnp.zeros(len(xb))],
    }

    def bce(m, b, k):
        logit = jax.vmap(m)(b["x"])[:, 0]
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logit, b["y"]))

    clf, _ = fit(
        k_fit1,
        clf,
        bce,
        data,
        optax.adam(1e-3),
        batch_size=256,
        max_epochs=args.epochs,
        progress=False,
    )

    def clf_bins(x):
        p = jax.nn.sigmoid(jax.vmap(clf)(x)[:, 0])
        return jnp.clip((p * n_bins).astype(jnp.int32), 0, n_bins - 1)

    # (ii) INFERNO summary network on the profiled uncertainty.
    net = MLP(3, n_bins, width=args.width, depth=2, key=k_inf)
    net, hist = fit(
        k_fit2,
        net,
        lambda m, b, k: inferno.inferno_loss(m, b, k, temperature=args.temperature),
        (xs, eps),
        optax.adam(1e-3),
        batch_size=args.batch,
        max_epochs=args.epochs,
        progress=False,
    )

    def inf_bins(x):
        return jnp.argmax(jax.vmap(net)(x), axis=-1)

    width = {
        "classifier": inferno.interval_width(
            inferno.binned_fisher(clf_bins, xs_t, eps_t, n_bins)
        ),
        "INFERNO": inferno.interval_width(
            inferno.binned_fisher(inf_bins, xs_t, eps_t, n_bins)
        ),
        "exact likelihood": inferno.interval_width(
            inferno.exact_fisher(k_exact, args.n_test)
        ),
    }
    print("expected uncertainty on s after profiling r, lambda [events]:")
    for name, w in width.items():
        print(f"  {name:17s} {float(w):6.2f}   (paper {PAPER[name]})")
    os.makedirs(args.out, exist_ok=True)
    import matplotlib.pyplot as plt

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.5))
    names = list(width)
    pos = np.arange(len(names))
    ax0.bar(pos - 0.2, [float(width[n]) for n in names], 0.4, label="jaxdm")
    ax0.bar(pos + 0.2, [PAPER[n] for n in names], 0.4, label="paper")
    ax0.set_xticks(pos, names)
    ax0.set_ylabel("sigma(s) [events]")
    ax0.legend()
    ax1.plot(hist.train_loss, label="train")
    ax1.plot(hist.val_loss, label="validation")
    ax1.set(xlabel="epoch", ylabel="INFERNO loss", title="training")
    ax1.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "inferno.png"), dpi=100)
    return {k: float(v) for k, v in width.items()}


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-train", type=int, default=50_000)
    p.add_argument("--n-test", type=int, default=200_000)
    p.add_argument("--bins", type=int, default=10)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--temperature", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs/inferno")
    main(p.parse_args())
