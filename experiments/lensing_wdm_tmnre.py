"""TMNRE for the warm-dark-matter mass from a lensed HST-like image (Anau Montel+ 2022).

Infers log10(m_WDM / keV) and the main-lens SIE parameters (theta_E, q, x0, y0) from a
mock HST WFC3-like image whose subhalo population (thousands of latent parameters) is
marginalised by simulation, with marginal ratio estimators and box truncation rounds
(arXiv 2205.09126). Runs for a CDM-like and a 5-keV truth, prints the m_WDM marginal,
plots marginals and shrinking boxes, and reports coverage on held-out simulations.
"""

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxdm.inference import nre
from jaxdm.inference.truncation import Box, run_tmnre, uniform_box_sampler
from jaxdm.nn import CNNEmbedding
from jaxdm.simulators import lensing

NAMES = ("log10_m_wdm", "theta_e", "q", "x0", "y0")
LOW = np.array([0.0, 0.8, 0.6, -0.1, -0.1])  # m_WDM in [1, 100] keV; 100 keV ~ CDM
HIGH = np.array([2.0, 1.2, 0.95, 0.1, 0.1])
TRUTHS = {"CDM-like (80 keV)": np.log10(80.0), "5 keV": np.log10(5.0)}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n-pix", type=int, default=40)
    p.add_argument("--n-sims", type=int, default=1500, help="simulations per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--sub-mass", type=float, default=3e9, help="CDM subhalo mass")
    p.add_argument("--n-test", type=int, default=100, help="held-out coverage sims")
    p.add_argument("--large", action="store_true", help="full-size study (GPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs/lensing_wdm_tmnre")
    a = p.parse_args()
    if a.large:
        a.n_pix, a.n_sims, a.rounds, a.epochs = 100, 30_000, 5, 200
        a.n_test = 500
    os.makedirs(a.out, exist_ok=True)
    obs = lensing.hst_like(n_pix=a.n_pix, supersampling=1)
    # Enough padded slots that a Poisson draw never exceeds them (P < 1e-9).
    n_mean = lensing.expected_cdm_number(a.sub_mass, lensing.SubhaloConfig())
    subs = lensing.SubhaloConfig(max_n=lensing.required_max_n(n_mean))

    def simulate(key, theta):
        scene = lensing.SceneParams(
            **dict(zip(NAMES, theta, strict=True)), sub_norm=a.sub_mass
        )
        return lensing.simulate_population_image(key, scene, obs, subs)

    marginals = nre.all_marginals(5, pairs=False) + ((0, 1),)

    def make(key):
        k_emb, k = jax.random.split(key)
        emb = CNNEmbedding(1, 32, image_shape=(a.n_pix, a.n_pix), key=k_emb)
        return nre.make_ratio_estimator(
            k,
            theta_dim=5,
            x_shape=(a.n_pix,) * 2,
            marginals=marginals,
            embedding=emb,
            n_features=32,
            method="C",
        )

    key = jax.random.key(a.seed)
    results = {}
    for i, (label, log_m) in enumerate(TRUTHS.items()):
        truth = jnp.array([log_m, 1.0, 0.8, 0.0, 0.0], jnp.float32)
        k_obs, k_run = jax.random.split(jax.random.fold_in(key, i))
        x_obs = simulate(k_obs, truth)
        rounds = run_tmnre(
            k_run,
            simulate,
            x_obs,
            Box(LOW, HIGH),
            make,
            n_sims=a.n_sims,
            max_rounds=a.rounds,
            stop_ratio=0.99,
            train_kwargs={"max_epochs": a.epochs, "batch_size": 64},
        )
        final = rounds[-1]
        prior = uniform_box_sampler(
            jax.random.fold_in(k_run, 99), 20_000, final.box.low, final.box.high
        )
        ws = nre.importance_samples(final.model, prior, x_obs)
        post = nre.resample(jax.random.fold_in(k_run, 7), ws, 0, 4000)
        q = np.quantile(np.asarray(post[:, 0]), [0.16, 0.5, 0.84])
        m_keV = 10.0**q
        print(
            f"[{label}] truth m_WDM = {10**log_m:.1f} keV; rounds = {len(rounds)}; "
            f"log10 m_WDM = {q[1]:.2f} (+{q[2] - q[1]:.2f} -{q[1] - q[0]:.2f}); "
            f"m_WDM 68% interval [{m_keV[0]:.1f}, {m_keV[2]:.1f}] keV"
        )
        for r, rd in enumerate(rounds):
            print(
                f"   round {r}: box volume {rd.box.volume():.3g}, "
                f"log10 m range [{rd.box.low[0]:.2f}, {rd.box.high[0]:.2f}]"
            )
        results[label] = (
            rounds,
            truth,
            x_obs,
            [
                nre.resample(jax.random.fold_in(k_run, 10 + h), ws, h, 2000)[:, h]
                for h in range(5)
            ],
        )

    # Coverage on held-out simulations from the last box of the CDM-like run.
    rounds, *_ = results[next(iter(TRUTHS))]
    kt = jax.random.fold_in(key, 1234)
    th = uniform_box_sampler(kt, a.n_test, rounds[-1].box.low, rounds[-1].box.high)
    xt = jax.vmap(simulate)(jax.random.split(jax.random.fold_in(kt, 1), a.n_test), th)
    prior = uniform_box_sampler(
        jax.random.fold_in(kt, 2), 5000, rounds[-1].box.low, rounds[-1].box.high
    )
    cov = nre.coverage(
        jax.random.fold_in(kt, 3),
        rounds[-1].model,
        th,
        xt,
        prior,
        levels=jnp.array([0.68, 0.95]),
    )
    for m, c in zip(marginals, cov, strict=True):
        print(
            f"coverage {'/'.join(NAMES[j] for j in m)}: "
            f"68% -> {float(c.coverage[0]):.2f}, "
            f"95% -> {float(c.coverage[1]):.2f} (+-{float(c.error[1]):.2f})"
        )
    _plots(results, a.out)


def _plots(results, out):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from jaxdm.plots import corner
    except ImportError:
        return
    for j, (label, (rounds, truth, _, margs)) in enumerate(results.items()):
        fig = corner(
            np.stack([np.asarray(m) for m in margs], 1),
            truth=np.asarray(truth),
            labels=list(NAMES),
        )
        fig.savefig(os.path.join(out, f"marginals_{j}.png"))
        fig, axes = plt.subplots(1, 5, figsize=(15, 3))
        for i, ax in enumerate(axes):
            for r, rd in enumerate(
                rounds + [rounds[-1]._replace(box=rounds[-1].new_box)]
            ):
                ax.plot([rd.box.low[i], rd.box.high[i]], [r, r], lw=4)
            ax.axvline(float(truth[i]), color="k")
            ax.set(xlabel=NAMES[i], ylabel="round", title=label if i == 0 else None)
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"regions_{j}.png"))
        plt.close("all")
    print(f"plots written to {out}")


if __name__ == "__main__":
    main()
