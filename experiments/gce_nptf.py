"""NPTF fit of a simulated Galactic Centre map: point sources or dark matter?

A Cartesian inner-Galaxy map (one bin 2-20 GeV, |b| > 2 deg) from
``jaxdm.simulators.gamma`` with pi0, isotropic and gNFW^2 dark-matter Poisson
templates plus NFW^2-distributed point sources (broken power law), fitted by NUTS with
the differentiable NPTF likelihood (``jaxdm.fits.nptf_model``; Lee et al. 2016,
arXiv:1506.05124; NPTFit, arXiv:1612.03173). Reports the posterior of the
point-source fraction of the GCE (PS counts / (PS + DM counts)) next to its true
value; the amortised NPE route on the same kind of maps is
``experiments/gce_point_source_fraction.py``.

    python experiments/gce_nptf.py --npix 24 --samples 200
"""

import argparse
import os

import jax
import numpy as np

from jaxdm import fits
from jaxdm.simulators import gamma as g


def main(args):
    cfg = g.GammaConfig(
        geometry="cartesian", npix=args.npix, half_width_deg=15.0,
        energy_edges=(2.0, 20.0), n_los=24, ps_template="nfw2", max_sources=2000,
    )  # fmt: skip
    truth = g.GammaParams(
        dm_sigma_v=args.dm, iso_norm=2e-8, bubbles_norm=0.0, pi0_norm=2e-7,
        ic_norm=0.0, ps_norm=args.ps_norm, ps_indices=(10.0, -0.5), ps_breaks=(1e-9,),
    )  # fmt: skip
    sim = g.simulate(jax.random.key(args.seed), truth, cfg)
    inp = fits.nptf_inputs(truth, cfg, names=("iso", "pi0", "dm"))
    counts = np.asarray(sim.counts[0]).ravel()[inp.pixels]
    flux_ps = float(g.expected_flux(truth.ps_norm, truth.ps_indices, truth.ps_breaks))
    ps_counts = float(np.sum(inp.source_fractions[0] * inp.exposure)) * flux_ps
    dm_counts = float(np.sum(inp.templates["dm"])) * args.dm
    print(f"{counts.size} pixels, {counts.sum():.0f} counts; true GCE: "
          f"{ps_counts:.0f} PS + {dm_counts:.0f} DM counts, "
          f"f_PS = {ps_counts / (ps_counts + dm_counts):.3f}")  # fmt: skip
    priors = {
        "iso": (0.0, 1e-7), "pi0": (0.0, 1e-6), "dm": (0.0, 5.0),
        "ps_log10_norm": (9.0, 13.0), "ps_n2": (-1.5, 0.9),
        # The high-flux slope and the break are fixed at their true values here
        # (free, the 4-parameter law makes NUTS take ~1000 steps per draw).
        "ps_n1": 10.0, "ps_log10_break": -9.0,
    }  # fmt: skip
    data = {"counts": counts, "inputs": inp, "priors": priors,
            "k_max": int(counts.max()), "n_nodes": 24}  # fmt: skip
    res = fits.run_nuts(
        jax.random.key(args.seed + 1), fits.nptf_model, data,
        num_warmup=args.samples, num_samples=args.samples, num_chains=1,
        progress_bar=not args.no_progress, min_ess=20,
    )  # fmt: skip
    s = {k: v[0] for k, v in res.samples.items()}
    for k in ("ps_n1", "ps_log10_break"):
        s.setdefault(k, np.full(s["dm"].shape, priors[k]))
    pops = [
        (10**a, (n1, n2), 10**b)
        for a, n1, n2, b in zip(
            s["ps_log10_norm"], s["ps_n1"], s["ps_n2"], s["ps_log10_break"], strict=True
        )
    ]
    ps_post = np.array([
        float(g.expected_flux(a, np.array(n), np.array([b]))) for a, n, b in pops
    ]) * float(np.sum(inp.source_fractions[0] * inp.exposure))  # fmt: skip
    dm_post = s["dm"] * float(np.sum(inp.templates["dm"]))
    f_ps = ps_post / (ps_post + dm_post)
    lo, med, hi = np.quantile(f_ps, [0.16, 0.5, 0.84])
    print(f"posterior f_PS: {med:.3f} (68%: {lo:.3f}-{hi:.3f}); diagnostics ok = "
          f"{res.ok} {res.problems}")  # fmt: skip
    os.makedirs(args.out, exist_ok=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    ax[0].hist(f_ps, 30, density=True)
    ax[0].axvline(ps_counts / (ps_counts + dm_counts), color="k", ls="--",
                  label="truth")  # fmt: skip
    ax[0].set_xlabel("point-source fraction of the GCE")
    ax[0].legend()
    ax[1].scatter(dm_post, ps_post, s=4)
    ax[1].set_xlabel("DM counts")
    ax[1].set_ylabel("PS counts")
    fig.tight_layout()
    path = os.path.join(args.out, "gce_nptf.png")
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--npix", type=int, default=24)
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--dm", type=float, default=0.5, help="<sigma v> [1e-26 cm^3/s]")
    p.add_argument("--ps-norm", type=float, default=2e11)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs")
    p.add_argument("--no-progress", action="store_true")
    main(p.parse_args())
