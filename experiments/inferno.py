"""INFERNO's synthetic benchmark: classifier vs INFERNO vs the exact likelihood.

De Castro & Dorigo (arXiv:1806.04743) section 4: a 3-D mixture of 50 signal and
1000 background events, the background shape depending on two constrained nuisance
parameters (shift r, sigma 0.4; exponential mean lambda, sigma 1). We compare the
expected uncertainty on the signal yield s after profiling r and lambda for
(i) a plain signal-vs-background classifier (``jaxdm.nn.MLP`` through
``jaxdm.train.fit``) whose output is histogrammed in equal-width bins, (ii) an
INFERNO summary network trained on that expected uncertainty (softmax soft
histogram, ``jaxdm.design.inferno_loss``) and binned by argmax, (iii) the exact
unbinned likelihood. Paper: 26.7, 18.7 and 16.9 events. Then the same method on a
xenon WIMP search (``jaxdm.simulators.xenon``, LZ-like detector, 5.5 t yr): a 50
GeV WIMP at 3e-47 cm^2 over flat ER (20 /(t yr keV)) and radiogenic neutrons, with
10% and 30% rate uncertainties profiled (``jaxdm.design.template_inferno_loss``),
against a classifier histogram: relative uncertainty on the cross-section.
~5-8 minutes on 2 cores.

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
from jaxdm.simulators import xenon
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
    out = {k: float(v) for k, v in width.items()}
    if args.xenon_events > 0:
        out.update(xenon_part(jax.random.fold_in(k_exact, 7), args))
    return out


def xenon_part(key, args):
    det = xenon.lz_like()
    sources = (
        xenon.wimp_spectrum(50.0, 3e-47, e_min=1.0, e_max=60.0, n_grid=64),
        xenon.flat_er_spectrum(20.0, e_min=0.5, e_max=20.0, n_grid=64),
        xenon.neutron_spectrum(0.02, 15.0, e_min=1.0, e_max=60.0, n_grid=64),
    )
    totals = jnp.stack(
        [
            xenon.expected_total(xenon.XenonModel(sources=(src,), exposure=5.5), det)
            for src in sources
        ]
    )
    rel = jnp.array([0.1, 0.3])
    comps = []
    for i, src in enumerate(sources):
        ev = xenon.simulate_events(
            jax.random.fold_in(key, i), src, det, args.xenon_events
        )
        x = jnp.stack([ev.cs1, jnp.log10(jnp.maximum(ev.cs2, 1.0))], -1)
        keep = (
            np.asarray(ev.passed) & (np.asarray(ev.cs1) > 3) & (np.asarray(ev.cs1) < 80)
        )
        comps.append((x[keep] - jnp.array([[30.0, 3.3]])) / jnp.array([[20.0, 0.3]]))
    n = min(len(c) for c in comps)
    half = n // 2
    train = tuple(c[:half] for c in comps)
    test = tuple(c[half:n] for c in comps)
    k_clf, k_net, k1, k2 = jax.random.split(key, 4)
    # Classifier: WIMP vs the two backgrounds mixed by their expected totals.
    bkg = jnp.concatenate([train[1], train[2]])
    w_bkg = (
        jnp.concatenate([jnp.full(half, totals[1]), jnp.full(half, totals[2])])
        / (totals[1] + totals[2])
        * 2.0
    )
    clf = MLP(2, 1, width=args.width, depth=2, key=k_clf)
    data = {
        "x": jnp.concatenate([train[0], bkg]),
        "y": jnp.r_[jnp.ones(half), jnp.zeros(2 * half)],
        "w": jnp.r_[2.0 * jnp.ones(half), w_bkg],
    }

    def bce(m, b, k):
        logit = jax.vmap(m)(b["x"])[:, 0]
        return jnp.mean(b["w"] * optax.sigmoid_binary_cross_entropy(logit, b["y"]))

    clf, _ = fit(
        k1,
        clf,
        bce,
        data,
        optax.adam(1e-3),
        batch_size=256,
        max_epochs=args.epochs,
        progress=False,
    )
    nb = args.bins

    def hard_fractions(bins_of):
        return jnp.stack([jnp.zeros(nb).at[bins_of(c)].add(1.0) / len(c) for c in test])

    def clf_bins(x):
        p = jax.nn.sigmoid(jax.vmap(clf)(x)[:, 0])
        return jnp.clip((p * nb).astype(jnp.int32), 0, nb - 1)

    net = MLP(2, nb, width=args.width, depth=2, key=k_net)
    net, _ = fit(
        k2,
        net,
        lambda m, b, k: inferno.template_inferno_loss(
            m, b, k, totals=totals, rel_sigmas=rel, temperature=args.temperature
        ),
        train,
        optax.adam(1e-3),
        batch_size=min(args.batch, half),
        max_epochs=args.epochs,
        progress=False,
    )
    res = {}
    for name, bins_of in (
        ("xenon classifier", clf_bins),
        ("xenon INFERNO", lambda x: jnp.argmax(jax.vmap(net)(x), -1)),
    ):
        f = inferno.template_fisher(hard_fractions(bins_of), totals, rel)
        res[name] = float(inferno.interval_width(f))
    print(
        f"xenon: {float(totals[0]):.1f} WIMP, {float(totals[1]):.0f} ER, "
        f"{float(totals[2]):.2f} neutron events expected (5.5 t yr)"
    )
    for name, v in res.items():
        print(f"  {name:17s} relative uncertainty on sigma_SI {v:.3f}")
    return res


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-train", type=int, default=50_000)
    p.add_argument("--n-test", type=int, default=200_000)
    p.add_argument("--bins", type=int, default=10)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--temperature", type=float, default=0.1)
    p.add_argument("--xenon-events", type=int, default=20_000, help="0: skip")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs/inferno")
    main(p.parse_args())
