"""Quickstart: warm dark matter from a strong-lensing image with an amortized posterior.

Simulates HST-like images of a lensed Sersic source (SIE + external shear + a tNFW
subhalo population whose low-mass end is suppressed for warm dark matter), trains a
neural posterior estimator (CNN embedding + neural spline flow) on them, and evaluates
it on a held-out observation: posterior summary, corner plot, and the expected coverage
of its highest-density regions on held-out simulations, all in single vmapped calls.
A few minutes on a 2-core CPU with the defaults; ``--n-sims 30000 --n-pix 64`` for a
sharper posterior (GPU). The setup is a small version of Anau Montel et al. 2022
(arXiv 2205.09126).

    python experiments/quickstart.py --n-sims 2000 --epochs 30

Convergence: the 30 default epochs run ``train_npe``'s warm-up + cosine schedule to
its end, but the model is not converged. Measured 2026-12-01 (``benchmarks/RESULTS.md``,
seed 0): best validation loss -9.74 at the last epoch of 30, still falling; with
``--epochs 60`` the curve flattens and reaches -10.97, so the default run stops 1.2 nats
per image short of it (coverage at 68/90%: 0.61/0.88 with 30 epochs, 0.60/0.86 with
60; the m_WDM 68% interval is 5.0-55 keV in both). Use ``--epochs 60`` for a
converged fit (twice the training time).
Plots (corner, coverage, training curves, the observation) are always written:
matplotlib is a core dependency.
"""

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxdm.flows import Box
from jaxdm.inference import diagnostics, make_npe, simulate_dataset, train_npe
from jaxdm.simulators import lensing

NAMES = ("log10_m_wdm", "theta_e", "q", "gamma1", "gamma2")
# Prior box: m_WDM in [3, 100] keV (log10 keV), Einstein radius [arcsec], axis ratio,
# external shear components.
LOW = np.array([np.log10(3.0), 0.8, 0.6, -0.05, -0.05])
HIGH = np.array([2.0, 1.3, 0.95, 0.05, 0.05])
TRUTH = np.array([np.log10(5.0), 1.05, 0.8, 0.02, -0.01])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-sims", type=int, default=2000)
    p.add_argument("--n-pix", type=int, default=32)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--sub-mass", type=float, default=3e9, help="CDM subhalo mass")
    p.add_argument("--n-test", type=int, default=200, help="held-out coverage sims")
    p.add_argument("--n-samples", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs/quickstart")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    obs = lensing.hst_like(n_pix=a.n_pix, supersampling=1)
    # Enough padded slots that a Poisson draw never exceeds them (P < 1e-9).
    n_mean = lensing.expected_cdm_number(a.sub_mass, lensing.SubhaloConfig())
    subs = lensing.SubhaloConfig(max_n=lensing.required_max_n(n_mean))
    support = Box(LOW, HIGH)

    def simulate(key, theta):
        scene = lensing.SceneParams(
            **dict(zip(NAMES, theta, strict=True)), sub_norm=a.sub_mass
        )
        # log1p of the (non-negative mean) image compresses the bright arcs.
        img = lensing.simulate_population_image(key, scene, obs, subs)
        return jnp.sign(img) * jnp.log1p(jnp.abs(img))

    def sample_prior(key, n):
        return jax.random.uniform(key, (n, len(NAMES)), minval=LOW, maxval=HIGH)

    k_sim, k_init, k_train, k_obs, k_post, k_test, k_cov = jax.random.split(
        jax.random.key(a.seed), 7
    )
    t0 = time.perf_counter()
    theta, x = simulate_dataset(
        k_sim, sample_prior, simulate, a.n_sims, progress=not a.no_progress
    )
    t_sim = time.perf_counter() - t0
    est = make_npe(
        k_init, theta_dim=len(NAMES), x_shape=x.shape[1:], embedding="cnn",
        embedding_dim=32, cnn_channels=(8, 16, 32), flow_layers=4, support=support,
    )  # fmt: skip
    t0 = time.perf_counter()
    # train_npe's default schedule (warm-up + cosine decay) spans max_epochs; the
    # epoch with the best validation loss is returned.
    est, hist = train_npe(
        k_train, est, theta, x, batch_size=128, max_epochs=a.epochs,
        progress=not a.no_progress,
    )  # fmt: skip
    t_train = time.perf_counter() - t0

    x_obs = simulate(k_obs, jnp.asarray(TRUTH, jnp.float32))
    post = np.asarray(est.sample(k_post, x_obs, a.n_samples))
    lo, med, hi = np.percentile(post, [16, 50, 84], axis=0)
    # Calibration on held-out simulations: all posteriors in one vmapped call.
    th_test, x_test = simulate_dataset(k_test, sample_prior, simulate, a.n_test)
    samples, logq = est.sample_and_log_prob(k_cov, x_test, 200)
    cov = diagnostics.expected_coverage_from_log_probs(
        logq, est.log_prob(th_test, x_test), levels=jnp.array([0.5, 0.68, 0.9, 0.95])
    )
    summary = {
        "n_sims": a.n_sims,
        "epochs": len(hist.train_loss),
        "simulate_s": round(t_sim, 1),
        "train_s": round(t_train, 1),
        "best_val_loss": float(np.min(hist.val_loss)),
        "best_epoch": int(hist.best_epoch),
        "val_loss": [round(float(v), 4) for v in hist.val_loss],
        "posterior": {
            n: {"truth": float(t), "median": float(m), "68%": [float(lo_), float(hi_)]}
            for n, t, m, lo_, hi_ in zip(NAMES, TRUTH, med, lo, hi, strict=True)
        },
        "m_wdm_keV_68%": [float(10 ** lo[0]), float(10 ** hi[0])],
        "expected_coverage": {
            f"{lv:.2f}": round(float(c), 3)
            for lv, c in zip(cov.levels, cov.coverage, strict=True)
        },
    }
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"simulated {a.n_sims} images in {t_sim:.0f} s, trained in {t_train:.0f} s")
    for n, t, m, lo_, hi_ in zip(NAMES, TRUTH, med, lo, hi, strict=True):
        print(
            f"  {n:12s} truth {t:7.3f}  median {m:7.3f}  68% [{lo_:7.3f}, {hi_:7.3f}]"
        )
    print("  expected coverage (nominal: empirical):", summary["expected_coverage"])
    _plots(a, post, samples, th_test, cov, x_obs, hist)
    return summary


def _plots(a, post, samples, th_test, cov, x_obs, hist):
    import matplotlib  # a core dependency of jaxdm

    matplotlib.use("Agg")
    from jaxdm import plots

    lim = np.stack([LOW, HIGH], 1)
    plots.corner(post, truth=TRUTH, labels=NAMES, limits=lim).savefig(
        os.path.join(a.out, "corner.png"), dpi=110
    )
    plots.coverage_plot(cov.levels, cov.coverage, error=cov.error).savefig(
        os.path.join(a.out, "coverage.png"), dpi=110
    )
    plots.training_curves(hist).savefig(os.path.join(a.out, "training.png"), dpi=110)
    marg = diagnostics.marginal_coverage(samples, th_test)
    plots.coverage_plot(marg.levels, marg.coverage, labels=NAMES).savefig(
        os.path.join(a.out, "marginal_coverage.png"), dpi=110
    )
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3.5, 3.5))
    ax.imshow(np.asarray(x_obs), origin="lower", cmap="magma")
    ax.set_title("observation, log(1 + counts/s)")
    fig.savefig(os.path.join(a.out, "observation.png"), dpi=110)
    print(f"plots in {a.out}/: observation, corner, coverage, training")


if __name__ == "__main__":
    main()
