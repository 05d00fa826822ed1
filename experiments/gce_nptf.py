"""NPTF next to NPE on the same simulated Galactic Centre maps: point sources or DM?

The maps, simulator config and truths are those of
``experiments/gce_point_source_fraction.py`` (32 x 32 Cartesian pixels, 40 x 40 deg,
|b| < 2 deg masked, bins 2-5-20 GeV, pi0 and inverse-Compton diffuse templates with
free norms, isotropic and Fermi-bubbles emission at fixed norms, and a
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
both, as in the NPE's simulations, and so are the isotropic and bubbles norms (the
NPTF must model every component of the maps: without these two templates, ~12 % of
the counts, the sixth session's fit put f_src 4 sd low on map 0). The NPTF's free
parameters are the pi0 and IC normalisations, <sigma v> and log10 of the
point-source norm with uniform priors on the NPE's ranges, so its implied prior on
f_src differs from the NPE's uniform one.

Truths: ``f_src`` (theta) is the expected point-source fraction of the GCE; the
"realised" fraction replaces the sources' expected counts by those of the sources
drawn in the map (Poisson number, fluxes), which is what one map can tell. The run
prints the NPTF posterior's mode and mean, R-hat and bulk ESS per map, and a
warning when a fit fails the diagnostics. ``--bias-maps N`` also fits N fresh maps
at map 0's theta to their posterior mode and prints the mean of mode - realised
(a bias of the fit, rather than one map's luck, shows there).

    python experiments/gce_nptf.py            # default size: minutes on 2 CPU cores
    python experiments/gce_nptf.py --n-maps 3 --n-train 1500 --epochs 40 --bias-maps 12

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
from jaxdm.simulators import gamma as g

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gce_point_source_fraction as npe_exp  # noqa: E402

# Poisson templates of the NPTF. The maps of gce_point_source_fraction.py also hold
# the isotropic and Fermi-bubbles emission (GammaParams' defaults, fixed in every
# simulation, so the NPE knows them implicitly): the NPTF holds them fixed at those
# values too. Leaving them out (the sixth session's run) left ~16k of ~130k counts of
# the 2-5 GeV bin unmodelled: the IC norm ran into its prior's upper edge, the DM
# absorbed the rest and f_src came out 4 sd low on map 0 (benchmarks/RESULTS.md,
# seventh session).
TEMPLATES = ("iso", "bubbles", "pi0", "ic", "dm")
FIXED = ("iso", "bubbles")


def nptf_setup(cfg, to_params, c_dm, c_ps):
    """NPTF inputs (2-5 GeV bin) and priors for the maps of the NPE experiment.

    Returns:
        ``(inputs, priors)``: :class:`jaxdm.fits.NPTFInputs` with every Poisson
        template of the simulated maps, and the priors of ``fits.nptf_model``:
        uniform on the NPE's ranges for pi0, IC, <sigma v> and log10 of the
        point-source norm; iso, bubbles and the source-count shape (indices,
        break) fixed at the simulated values, as in the NPE's simulations.
    """
    # Templates, exposure and PSF correction are parameter-free apart from the DM
    # profile, which all maps share.
    ref = to_params(np.array([0.5, 10.0, 1.0, 1.0]))
    inp = fits.nptf_inputs(ref, cfg, names=TEMPLATES, energy_bin=0)
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
        **{k: float(getattr(ref, f"{k}_norm")) for k in FIXED},
    }
    return inp, priors


def nptf_truth(params):
    """``fits.nptf_model``'s parameters at a ``GammaParams`` (the truth of a map)."""
    return {
        **{k: float(getattr(params, f"{k}_norm")) for k in TEMPLATES if k != "dm"},
        "dm": float(params.dm_sigma_v),
        "ps_log10_norm": float(np.log10(params.ps_norm)),
    }


def nptf_mean_counts(values, inp, priors):
    """Mean counts per ROI pixel of ``fits.nptf_model`` at ``values`` (P,).

    Poisson templates plus the point sources' mean (``A int F dN/dF dF`` times each
    pixel's exposure and source fraction); a fixed parameter takes its ``priors``
    value. At a map's truth this must equal ``gamma.expected_counts`` of the map's
    bin: a template missing from the fit shows up here.
    """
    v = {k: (x if isinstance(x, tuple | list) else None) for k, x in priors.items()}
    v = {k: values[k] if v[k] is not None else priors[k] for k in v}
    mu = sum(v[k] * np.asarray(t, np.float64) for k, t in inp.templates.items())
    f_tot = float(
        g.expected_flux(
            10.0 ** v["ps_log10_norm"],
            np.array([v["ps_n1"], v["ps_n2"]]),
            np.array([10.0 ** v["ps_log10_break"]]),
        )
    )
    w = np.asarray(inp.source_fractions[0], np.float64)
    return mu + f_tot * np.asarray(inp.exposure, np.float64) * w


def nptf_f_src(key, counts, inp, priors, c_dm, c_ps, args):
    """NUTS posterior draws of f_src for one map's ROI counts (2-5 GeV bin)."""
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
        progress_bar=not args.no_progress, min_ess=100,
        chain_method="vectorized", dense_mass=True,
        init_params=start.init_params,
        inverse_mass_matrix=start.inverse_mass_matrix, adapt_mass_matrix=False,
        potential=pot,
    )  # fmt: skip
    ps = 10.0 ** res.samples["ps_log10_norm"].ravel() * c_ps
    dm = res.samples["dm"].ravel() * c_dm
    return ps / (ps + dm), res, _map_f_src(start.init_params, c_dm, c_ps)


def _map_f_src(point, c_dm, c_ps):
    ps = 10.0 ** float(point["ps_log10_norm"]) * c_ps
    return ps / (ps + float(point["dm"]) * c_dm)


def map_bias(key, theta, n_maps, cfg, to_params, inp, priors, c_dm, c_ps, args):
    """Posterior-mode f_src of ``n_maps`` fresh maps at ``theta``: bias or luck?

    Each map is simulated at the same ``theta`` (fixed keys) and fitted by
    ``fits.laplace_start`` (the NUTS start: Adam to the posterior mode of the same
    model and priors). Returns ``(f_map (n,), f_real (n,))``: the modes and each
    map's realised point-source fraction.
    """
    p = to_params(np.asarray(theta))
    f_map, f_real = [], []
    for k in jax.random.split(key, n_maps):
        k_sim, k_fit = jax.random.split(k)
        sim = g.simulate(k_sim, p, cfg)
        ps_real = float(sim.f_src * sim.mean.sum())
        f_real.append(ps_real / (ps_real + theta[1] * 1e3 * (1 - theta[0])))
        counts = np.asarray(sim.counts[0], np.float64).ravel()[inp.pixels]
        data = {"counts": counts, "inputs": inp, "priors": priors,
                "k_max": int(counts.max()), "n_nodes": args.n_nodes}  # fmt: skip
        st = fits.laplace_start(k_fit, fits.nptf_model, data, steps=args.map_steps)
        f_map.append(_map_f_src(st.init_params, c_dm, c_ps))
    return np.array(f_map), np.array(f_real)


def main(args):
    npe_args = argparse.Namespace(
        n_train=args.n_train, n_test=args.n_maps, epochs=args.epochs,
        flow_layers=args.flow_layers, seed=args.seed,
    )  # fmt: skip
    t0, c0 = time.perf_counter(), time.process_time()
    npe, theta_t, x_t, _, (k_s, _), f_real = npe_exp.simulate_and_train(npe_args)
    print(f"simulation + NPE training: {time.perf_counter() - t0:.0f} s wall, "
          f"{time.process_time() - c0:.0f} s CPU")  # fmt: skip
    f_npe = np.asarray(npe.sample(k_s, x_t, args.n_post))[:, :, 0]
    cfg, to_params, c_dm, c_ps = npe_exp.gce_setup()
    inp, priors = nptf_setup(cfg, to_params, c_dm, c_ps)
    keys = jax.random.split(jax.random.key(args.seed + 1), args.n_maps)
    f_nptf, rows, not_ok = [], [], []
    for i in range(args.n_maps):
        counts = np.rint(np.expm1(np.asarray(x_t[i, 0], np.float64))).ravel()
        counts = counts[inp.pixels]
        # The fit's model must reproduce the simulator's mean map at the truth.
        p_true = to_params(np.asarray(theta_t[i]))
        mu_sim = np.asarray(g.expected_counts(p_true, cfg)[0]).ravel()[inp.pixels]
        mu_fit = nptf_mean_counts(nptf_truth(p_true), inp, priors)
        t1, c1 = time.perf_counter(), time.process_time()
        f, res, f_mode = nptf_f_src(keys[i], counts, inp, priors, c_dm, c_ps, args)
        t_map, c_map = time.perf_counter() - t1, time.process_time() - c1
        f_nptf.append(f)
        truth = float(theta_t[i, 0])
        rows.append((truth, f_npe[i].mean(), f_npe[i].std(), f.mean(), f.std(),
                     f_real[i]))  # fmt: skip
        print(f"map {i}: {counts.size} pixels, {counts.sum():.0f} counts (2-5 GeV), "
              f"NPTF mean at the truth / simulator's {mu_fit.sum() / mu_sim.sum():.5f}"
              f"; f_src true {truth:.3f} (realised {f_real[i]:.3f}); NPE "
              f"{f_npe[i].mean():.3f} +- {f_npe[i].std():.3f}; NPTF posterior f_PS "
              f"{f.mean():.3f} +- {f.std():.3f} (mode {f_mode:.3f}); NUTS "
              f"{t_map:.0f} s wall, {c_map:.0f} s CPU (compile included)")  # fmt: skip
        print(f"  NUTS {args.chains} chains x ({args.warmup} warmup + "
              f"{args.samples} draws): max R-hat {res.max_rhat:.4f} ("
              + ("rank-normalised split R-hat over chains" if args.chains > 1 else
                 "one chain: its two halves as two chains")
              + f"), min bulk ESS {res.min_ess:.0f}, divergences "
              f"{res.num_divergences}; diagnostics ok = {res.ok}"
              + (f" ({'; '.join(res.problems)})" if res.problems else ""))  # fmt: skip
        if not res.ok:
            not_ok.append(i)
    r = np.array(rows)
    for name, m, sd in (("NPE", r[:, 1], r[:, 2]), ("NPTF", r[:, 3], r[:, 4])):
        rmse = np.sqrt(np.mean((m - r[:, 0]) ** 2))
        rmse_r = np.sqrt(np.mean((m - r[:, 5]) ** 2))
        print(f"{name}: RMSE of posterior mean vs true f_src {rmse:.3f} (vs realised "
              f"{rmse_r:.3f}), mean posterior sd {sd.mean():.3f}")  # fmt: skip
    if not_ok:
        print(f"WARNING: the NPTF fits of maps {not_ok} did NOT pass the convergence "
              "diagnostics (R-hat <= 1.01, bulk ESS >= 100, no divergences); do not "
              "quote them without more draws.")  # fmt: skip
    if args.bias_maps > 0:
        k_b = jax.random.key(args.seed + 2)
        t1 = time.perf_counter()
        fm, fr = map_bias(k_b, np.asarray(theta_t[0]), args.bias_maps, cfg,
                          to_params, inp, priors, c_dm, c_ps, args)  # fmt: skip
        n = fm.size
        se = (fm - fr).std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
        print(
            f"posterior mode over {n} fresh maps at map 0's theta (f_src "
            f"{float(theta_t[0, 0]):.3f}): mean mode {fm.mean():.3f}, mean realised "
            f"{fr.mean():.3f}, mode - realised {np.mean(fm - fr):+.3f} +- {se:.3f} "
            f"(sd {np.std(fm - fr):.3f}); {time.perf_counter() - t1:.0f} s wall"
        )
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
    p.add_argument("--samples", type=int, default=300, help="NUTS draws per chain")
    p.add_argument("--warmup", type=int, default=100,
                   help="NUTS warmup (step size only; mass = Laplace)")  # fmt: skip
    p.add_argument("--map-steps", type=int, default=200, dest="map_steps",
                   help="Adam steps to the posterior mode")  # fmt: skip
    p.add_argument("--chains", type=int, default=2, help="NUTS chains (vectorized)")
    p.add_argument("--n-nodes", type=int, default=24, dest="n_nodes")
    p.add_argument(
        "--bias-maps",
        type=int,
        default=0,
        dest="bias_maps",
        help="fresh maps at map 0's theta fitted to their posterior mode",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs")
    p.add_argument("--no-progress", action="store_true")
    main(p.parse_args())
