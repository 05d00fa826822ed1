"""NPTF next to NPE on the same simulated Galactic Centre maps: point sources or DM?

The maps, simulator config and truths are those of
``experiments/gce_point_source_fraction.py`` (32 x 32 Cartesian pixels, 40 x 40 deg,
|b| < 2 deg masked, bins 2-5-20 GeV, pi0 and inverse-Compton diffuse templates and a
GCE of S expected counts split into gNFW^2 annihilation, 1 - f_src, and NFW^2-
distributed point sources, f_src, with a broken power-law dN/dF). That experiment's
NPE is trained (amortised over its prior); then each of a few of its held-out maps is
also fitted by NUTS with the differentiable non-Poissonian template fit
(``jaxdm.fits.nptf_model``; Lee et al. 2016, arXiv:1506.05124; NPTFit,
arXiv:1612.03173) and the two posteriors of f_src are plotted side by side with the
truth.

Differences to keep in mind when comparing: the NPTF fits the 2-5 GeV bin of each
map (``nptf_inputs(energy_bin=0)``; one bin, exact PSF correction), the NPE sees
both bins. The point-source law's shape (indices, break) is fixed at the truth in
both, as in the NPE's simulations. The NPTF's free parameters are the pi0 and IC
normalisations, <sigma v> and log10 of the point-source norm with uniform priors on
the NPE's ranges, so its implied prior on f_src differs from the NPE's uniform one.

    python experiments/gce_nptf.py            # default size: minutes on 2 CPU cores
    python experiments/gce_nptf.py --n-maps 3 --samples 200 --n-train 1500 --epochs 40

Speed: the likelihood reads each pixel's count probability off the exponentially
tilted PGF by an FFT (``nptf_log_likelihood(method="fft")``, the default), whose cost
grows like c log c with a pixel's count c instead of the recursion's c^2 (these maps
reach ~500 counts per pixel in the 2-5 GeV bin); NUTS starts at the posterior mode
(``fits.laplace_start``: Adam, then a finite-difference Hessian) with the Laplace
covariance as its fixed dense mass matrix (the DM and point-source normalisations
trade off along f_src) and runs its chains vectorized, one batched likelihood
evaluation per leapfrog step.

NUTS runs ``--chains`` chains (default 2, vectorized) so that the reported R-hat is
the rank-normalised split R-hat across chains; with ``--chains 1`` it is computed on
the chain's two halves (``jaxdm.fits.diagnose``), never NaN.
"""

import argparse
import os
import sys
import time

import jax
import numpy as np

from jaxdm import fits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gce_point_source_fraction as npe_exp  # noqa: E402


def nptf_f_src(key, counts, inp, c_dm, c_ps, args):
    """NUTS posterior draws of f_src for one map's ROI counts (2-5 GeV bin)."""
    s_max = npe_exp.HIGH[1] * 1e3
    log_a_max = float(np.log10(s_max / c_ps))
    priors = {
        "pi0": (2e-6 * npe_exp.LOW[2], 2e-6 * npe_exp.HIGH[2]),
        "ic": (1e-6 * npe_exp.LOW[3], 1e-6 * npe_exp.HIGH[3]),
        "dm": (0.0, s_max / c_dm),
        "ps_log10_norm": (log_a_max - 3.0, log_a_max),
        # Shape of the source-count function fixed at the simulated one (as in NPE).
        "ps_n1": npe_exp.PS["ps_indices"][0],
        "ps_n2": npe_exp.PS["ps_indices"][1],
        "ps_log10_break": float(np.log10(npe_exp.PS["ps_breaks"][0])),
    }
    data = {"counts": counts, "inputs": inp, "priors": priors,
            "k_max": int(counts.max()), "n_nodes": args.n_nodes}  # fmt: skip
    # Start at the posterior mode with the Laplace covariance as a fixed dense mass
    # matrix: from a prior draw, NUTS's first warmup steps run at the maximum tree
    # depth on these maps (the fifth session's run spent > 55 min on one map).
    k_lap, k_nuts = jax.random.split(key)
    # The likelihood's batched value + gradient is compiled once and serves the MAP,
    # the Hessian and every leapfrog step (fits.compile_potential).
    pot = fits.compile_potential(k_lap, fits.nptf_model, data, num_batch=args.chains)
    start = fits.laplace_start(
        k_lap, fits.nptf_model, data, steps=args.map_steps, potential=pot
    )
    res = fits.run_nuts(
        k_nuts, fits.nptf_model, data, num_warmup=args.warmup,
        num_samples=args.samples, num_chains=args.chains,
        progress_bar=not args.no_progress, min_ess=20,
        chain_method="vectorized", dense_mass=True,
        init_params=start.init_params,
        inverse_mass_matrix=start.inverse_mass_matrix, adapt_mass_matrix=False,
        potential=pot,
    )  # fmt: skip
    ps = 10.0 ** res.samples["ps_log10_norm"].ravel() * c_ps
    dm = res.samples["dm"].ravel() * c_dm
    return ps / (ps + dm), res


def main(args):
    npe_args = argparse.Namespace(
        n_train=args.n_train, n_test=args.n_maps, epochs=args.epochs,
        flow_layers=args.flow_layers, seed=args.seed,
    )  # fmt: skip
    t0, c0 = time.perf_counter(), time.process_time()
    npe, theta_t, x_t, _, (k_s, _) = npe_exp.simulate_and_train(npe_args)
    print(f"simulation + NPE training: {time.perf_counter() - t0:.0f} s wall, "
          f"{time.process_time() - c0:.0f} s CPU")  # fmt: skip
    f_npe = np.asarray(npe.sample(k_s, x_t, args.n_post))[:, :, 0]
    cfg, to_params, c_dm, c_ps = npe_exp.gce_setup()
    # Templates, exposure and PSF correction of the 2-5 GeV bin (parameter-free
    # apart from the DM profile, which all maps share).
    inp = fits.nptf_inputs(to_params(np.array([0.5, 10.0, 1.0, 1.0])), cfg,
                           names=("pi0", "ic", "dm"), energy_bin=0)  # fmt: skip
    keys = jax.random.split(jax.random.key(args.seed + 1), args.n_maps)
    f_nptf, rows = [], []
    for i in range(args.n_maps):
        counts = np.rint(np.expm1(np.asarray(x_t[i, 0], np.float64))).ravel()
        counts = counts[inp.pixels]
        t1, c1 = time.perf_counter(), time.process_time()
        f, res = nptf_f_src(keys[i], counts, inp, c_dm, c_ps, args)
        t_map, c_map = time.perf_counter() - t1, time.process_time() - c1
        f_nptf.append(f)
        truth = float(theta_t[i, 0])
        rows.append((truth, f_npe[i].mean(), f_npe[i].std(), f.mean(), f.std()))
        print(f"map {i}: {counts.size} pixels, {counts.sum():.0f} counts (2-5 GeV); "
              f"f_src true {truth:.3f}; NPE {f_npe[i].mean():.3f} +- "
              f"{f_npe[i].std():.3f}; NPTF posterior f_PS {f.mean():.3f} +- "
              f"{f.std():.3f}; NUTS {t_map:.0f} s wall, {c_map:.0f} s CPU "
              f"(compile included)")  # fmt: skip
        print(f"  NUTS {args.chains} chains x ({args.warmup} warmup + "
              f"{args.samples} draws): max R-hat {res.max_rhat:.4f} ("
              + ("rank-normalised split R-hat over chains" if args.chains > 1 else
                 "one chain: its two halves as two chains")
              + f"), min bulk ESS {res.min_ess:.0f}, divergences "
              f"{res.num_divergences}; diagnostics ok = {res.ok}"
              + (f" ({'; '.join(res.problems)})" if res.problems else ""))  # fmt: skip
    r = np.array(rows)
    for name, m, sd in (("NPE", r[:, 1], r[:, 2]), ("NPTF", r[:, 3], r[:, 4])):
        rmse = np.sqrt(np.mean((m - r[:, 0]) ** 2))
        print(f"{name}: RMSE of posterior mean vs true f_src {rmse:.3f}, "
              f"mean posterior sd {sd.mean():.3f}")  # fmt: skip
    _plot(r[:, 0], f_npe, f_nptf, args.out)
    print(
        f"total {time.perf_counter() - t0:.0f} s wall, "
        f"{time.process_time() - c0:.0f} s CPU"
    )


def _plot(truth, f_npe, f_nptf, out):
    import matplotlib.pyplot as plt

    n = len(truth)
    fig, ax = plt.subplots(1, n, figsize=(3.6 * n, 3.2), squeeze=False)
    bins = np.linspace(0.0, 1.0, 41)
    for i in range(n):
        a = ax[0, i]
        a.hist(f_npe[i], bins, density=True, alpha=0.5, label="NPE (both bins)")
        a.hist(f_nptf[i], bins, density=True, alpha=0.5, label="NPTF (2-5 GeV)")
        a.axvline(truth[i], color="k", ls="--", label="truth")
        a.set_xlabel("point-source fraction of the GCE, f_src")
        a.set_title(f"held-out map {i}")
    ax[0, 0].legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "gce_nptf.png")
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-train", type=int, default=800, dest="n_train")
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--flow-layers", type=int, default=3, dest="flow_layers")
    p.add_argument("--n-maps", type=int, default=2, dest="n_maps")
    p.add_argument("--n-post", type=int, default=400, dest="n_post")
    p.add_argument("--samples", type=int, default=100, help="NUTS draws per chain")
    p.add_argument("--warmup", type=int, default=100,
                   help="NUTS warmup (step size only; mass = Laplace)")  # fmt: skip
    p.add_argument("--map-steps", type=int, default=200, dest="map_steps",
                   help="Adam steps to the posterior mode")  # fmt: skip
    p.add_argument("--chains", type=int, default=2, help="NUTS chains (vectorized)")
    p.add_argument("--n-nodes", type=int, default=24, dest="n_nodes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs")
    p.add_argument("--no-progress", action="store_true")
    main(p.parse_args())
