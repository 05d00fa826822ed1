"""Galactic Centre excess: dark matter or unresolved point sources? NPE in small.

32 x 32 Cartesian maps (40 x 40 deg, |b| < 2 deg masked, bins 2-5-20 GeV) from
``jaxdm.simulators.gamma``: pi0+brems, inverse-Compton, isotropic and bubbles templates
and a GCE of S expected counts, split into gNFW^2 annihilation (1 - f_src) and NFW^2-
distributed point sources (f_src; broken power-law dN/dF, ~70 counts per source). An NPE
(CNN embedding of log1p(counts), spline flow) learns p(f_src, S, A_pi0, A_ic | map); we
report the f_src posterior on held-out maps and its coverage. After Caron et al. 2018
(arXiv 1708.06706), List et al. 2020 (arXiv 2006.12504) and Mishra-Sharma & Cranmer
2022 (arXiv 2110.06931: 18 parameters, 1e6 HEALPix maps, 128-d summary, MAF), shrunk to
minutes on a 2-core CPU. The default run (1,500 maps) shows the pipeline and a
calibrated posterior, not the published precision: with so few maps the f_src posterior
stays close to the prior; ~10% errors need orders of magnitude more simulations.

    python experiments/gce_point_source_fraction.py --seed 0
"""

import argparse
import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxdm.flows import Box
from jaxdm.inference import diagnostics as diag, make_npe, simulate_dataset, train_npe
from jaxdm.simulators import gamma as g

NAMES = ("f_src", "S_gce [1e3 counts]", "A_pi0", "A_ic")
LOW, HIGH = np.array([0.0, 4.0, 0.5, 0.5]), np.array([1.0, 16.0, 1.5, 1.5])
PS = dict(ps_indices=(10.0, -0.5), ps_breaks=(1e-9,))  # ~70 counts per source


def gce_setup():
    """Config, theta -> GammaParams map, ROI counts per unit <sigma v> and ps_norm.

    Returns:
        ``(cfg, to_params, c_dm, c_ps)``: the 2-bin Cartesian config, the map from
        theta = (f_src, S [1e3 counts], A_pi0, A_ic) to ``GammaParams``, and the
        expected ROI counts (both bins) per unit ``dm_sigma_v`` [1e-26 cm^3/s] and
        per unit ``ps_norm``. ``experiments/gce_nptf.py`` fits the same maps.
    """
    base = g.GammaConfig(
        geometry="cartesian", npix=32, half_width_deg=20.0, n_los=32, max_sources=1,
        energy_edges=(2.0, 5.0, 20.0), ps_template="nfw2",
    )  # fmt: skip
    zero = dict(iso_norm=0.0, bubbles_norm=0.0, pi0_norm=0.0, ic_norm=0.0, **PS)
    # Expected ROI counts per unit <sigma v> [1e-26 cm^3/s] and per unit ps_norm.
    c_dm, c_ps = (
        float(g.expected_counts(g.GammaParams(**zero, dm_sigma_v=s, ps_norm=1 - s),
                                base).sum())
        for s in (1.0, 0.0)
    )  # fmt: skip
    n_max = float(g.expected_number(HIGH[1] * 1e3 / c_ps, *PS.values()))
    # Room for mean + 6 sqrt(mean) sources: simulate raises (eager) or flags if fewer.
    cfg = dataclasses.replace(base, max_sources=int(n_max + 6 * n_max**0.5) + 1)
    print(f"<= {n_max:.0f} sources per map on average; max_sources = {cfg.max_sources}")

    def to_params(th):
        s = th[1] * 1e3
        return g.GammaParams(
            dm_sigma_v=s * (1 - th[0]) / c_dm,
            ps_norm=s * th[0] / c_ps,
            pi0_norm=2e-6 * th[2],
            ic_norm=1e-6 * th[3],
            **PS,
        )

    return cfg, to_params, c_dm, c_ps


def simulate_and_train(args):
    """Simulate ``args.n_train + args.n_test`` maps and train the NPE on the first.

    Returns:
        ``(npe, theta_test (n_test, 4), x_test (n_test, 2, 32, 32) log1p counts,
        hist, (k_s, k_cov), f_real_test (n_test,))``; ``f_real_test`` is each test
        map's realised point-source fraction (its drawn sources' expected counts
        over those plus the DM's expected counts, both bins), which differs from
        ``theta_test[:, 0]`` by the Poisson draw of the number and fluxes of sources.
    """
    cfg, to_params, _, _ = gce_setup()

    def simulator(key, th):
        sim = g.simulate(key, to_params(th), cfg)
        # Realised f_src: the drawn sources' expected counts over those + the DM's.
        ps_real = sim.f_src * jnp.sum(sim.mean)
        f_real = ps_real / (ps_real + th[1] * 1e3 * (1 - th[0]))
        return {"x": jnp.log1p(sim.counts), "dropped": sim.n_dropped, "f": f_real}

    def prior(key, n):
        return jax.random.uniform(key, (n, 4), minval=LOW, maxval=HIGH)

    k_sim, k_net, k_tr, k_s, k_cov = jax.random.split(jax.random.key(args.seed), 5)
    n_tr = args.n_train
    theta, out = simulate_dataset(k_sim, prior, simulator, n_tr + args.n_test)
    print(f"{n_tr}+{args.n_test} maps {out['x'].shape[1:]}, dropped sources: "
          f"{int(out['dropped'].sum())}")  # fmt: skip
    npe = make_npe(
        k_net, theta_dim=4, x_shape=out["x"].shape[1:], embedding="cnn",
        cnn_channels=(8, 16, 32), embedding_dim=32, flow_layers=args.flow_layers,
        support=Box(LOW, HIGH),
    )  # fmt: skip
    npe, hist = train_npe(
        k_tr, npe, theta[:n_tr], out["x"][:n_tr], batch_size=64,
        max_epochs=args.epochs, patience=8, progress=False,
    )  # fmt: skip
    print(f"{len(hist.train_loss)} epochs, best val loss "
          f"{np.asarray(hist.val_loss)[hist.best_epoch]:.3f}")  # fmt: skip
    x_t = jnp.asarray(out["x"][n_tr:])
    return npe, theta[n_tr:], x_t, hist, (k_s, k_cov), np.asarray(out["f"][n_tr:])


def main(args):
    npe, theta_t, x_t, hist, (k_s, k_cov), _ = simulate_and_train(args)
    samp = np.asarray(npe.sample(k_s, x_t, args.n_post))  # (n_test, n_post, 4)
    f_true, f_s = theta_t[:, 0], samp[:, :, 0]
    lo, hi = np.percentile(f_s, [16, 84], axis=1)
    for i in range(min(5, args.n_test)):
        print(f"map {i}: f_src true {f_true[i]:.2f}, posterior mean "
              f"{f_s[i].mean():.2f}, 68% [{lo[i]:.2f}, {hi[i]:.2f}]")  # fmt: skip
    rmse = np.sqrt(np.mean((f_s.mean(1) - f_true) ** 2))
    print(f"f_src: RMSE of posterior mean {rmse:.3f} (prior: {12**-0.5:.3f}), "
          f"mean 68% width {np.mean(hi - lo):.3f}")  # fmt: skip
    marg = diag.marginal_coverage(samp, theta_t, levels=jnp.array([0.68, 0.95]))
    for j, name in enumerate(NAMES):
        c = np.asarray(marg.coverage)[:, j]
        r = samp[:, :, j].std(1).mean() / ((HIGH[j] - LOW[j]) / 12**0.5)
        print(f"  {name}: posterior/prior std {r:.2f}, 68%/95% coverage "
              f"{c[0]:.2f}/{c[1]:.2f}")  # fmt: skip
    cov = diag.expected_coverage(
        k_cov, npe.log_prob, npe.sample, theta_t, x_t, n_posterior_samples=args.n_post
    )
    lv, c = np.asarray(cov.levels), np.asarray(cov.coverage)
    print("expected coverage (joint HPD) at 0.5/0.68/0.95:",
          np.interp([0.5, 0.68, 0.95], lv, c).round(2).tolist())  # fmt: skip
    os.makedirs(args.out, exist_ok=True)
    _plot(np.asarray(x_t), theta_t, f_s.mean(1), lo, hi, (lv, c), hist, args.out)
    return rmse


def _plot(x, th, mean, lo, hi, cov, hist, out):
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no figure")
        return
    fig, ax = plt.subplots(1, 5, figsize=(17, 3.4))
    for i in range(3):
        ax[i].imshow(np.expm1(x[i, 0]), origin="lower", cmap="magma")
        ax[i].set_title(
            f"2-5 GeV counts, f_src={th[i, 0]:.2f}, S={th[i, 1]:.1f}k", fontsize=8
        )
        ax[i].set_axis_off()
    ax[3].errorbar(th[:, 0], mean, yerr=[mean - lo, hi - mean], fmt=".", alpha=0.6)
    ax[3].plot([0, 1], [0, 1], "k--")
    ax[3].set(xlabel="true f_src", ylabel="posterior mean, 68%", title="f_src")
    ax[4].plot(*cov, label="expected coverage")
    ax[4].plot([0, 1], [0, 1], "k--")
    ax[4].set(
        xlabel="credibility", ylabel="coverage", title=f"{len(hist.train_loss)} epochs"
    )
    fig.tight_layout()
    fig.savefig(os.path.join(out, "gce_point_source_fraction.png"), dpi=90)
    print(f"saved {os.path.join(out, 'gce_point_source_fraction.png')}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-train", type=int, default=1500, dest="n_train")
    p.add_argument("--n-test", type=int, default=100, dest="n_test")
    p.add_argument("--n-post", type=int, default=200, dest="n_post")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--flow-layers", type=int, default=3, dest="flow_layers")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs/gce_point_source_fraction")
    main(p.parse_args())
