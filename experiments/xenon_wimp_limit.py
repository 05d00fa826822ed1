"""90% CL limits on the SI WIMP-nucleon cross-section: 2-D templates vs NN-compressed.

LZ-like detector (``xenon.lz_like``, WS2022 parameters) and exposure (default 15.3
t yr: 5.5 t x 1000 live days, LZ's projected run, arXiv:1802.06039), flat ER
background (default 20 events/(t yr keV), the order of LZ WS2022's, arXiv:2207.03764)
with a 5% log-normal normalisation constraint and 8B CEvNS with 4%. Signal: SI WIMPs
(standard halo) at 24 masses; ``mu`` scales a reference cross-section of 1e-45 cm^2.

(a) 2-D (cS1, log10 cS2) templates from ``xenon.expected_histogram`` (the analytic
    expectation of the detector chain), one vmapped ``stats.upper_limit`` call over
    the 24 masses;
(b) the NN-compressed 1-D likelihood of Carrara, Kravitz et al., arXiv:2201.05734: one
    mass-parametrised classifier (Baldi et al. 2016, arXiv:1601.07913) on (r, z, cS1,
    log10 cS2, S2 width, log10 m) trained with ``jaxdm.train.fit`` on simulated events,
    its output histogrammed into MC templates (Barlow-Beeston-lite MC statistics) and
    limits in one vmapped call.

The "observed" data set is one background-only pseudo-experiment drawn with the event
sampler (``xenon.sample_exposure``), histogrammed both ways. Printed: run times of
(a) and (b), and the Fisher information of ``mu`` at the expected limit kept by (b)
(and by a random projection, the control) relative to the 3-D (cS1, log10 cS2, z)
binned MC likelihood of the same events, and Miller-Madow mutual informations.
``PYTHONPATH=. python experiments/xenon_wimp_limit.py`` (small CPU defaults).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxdm import stats
from jaxdm.simulators import xenon

SIGMA_REF = 1e-45  # cm^2
CS1_RANGE = (3.0, 80.0)  # phd (LZ WS2022 ROI)
LOG_CS2_RANGE = (2.6, 4.8)  # log10 phd


def features(ev, log_m):
    """(r, z, cS1, log10 cS2, S2 width, log10 m) per event, shape (n, 6)."""
    lm = jnp.broadcast_to(jnp.asarray(log_m, ev.cs1.dtype), ev.cs1.shape)
    return jnp.stack(
        [ev.r, ev.z, ev.cs1, jnp.log10(jnp.maximum(ev.cs2, 1.0)), ev.s2_width, lm], 1
    )


def in_roi(ev):
    """Passed thresholds and inside the (cS1, log10 cS2) region of interest."""
    lc2 = jnp.log10(jnp.maximum(ev.cs2, 1.0))
    return (
        ev.passed
        & (ev.cs1 >= CS1_RANGE[0])
        & (ev.cs1 < CS1_RANGE[1])
        & (lc2 >= LOG_CS2_RANGE[0])
        & (lc2 < LOG_CS2_RANGE[1])
    )


def simulate_mc(key, source, det, n, exposure, log_m):
    """MC events of one source in the ROI: features (k, 6) and weights (k,)."""
    ev = xenon.simulate_events(key, source, det, n)
    keep = np.asarray(in_roi(ev))
    w = float(exposure * source.total_rate()) / n
    return np.asarray(features(ev, log_m))[keep], np.full(int(keep.sum()), w)


def main():
    """Run both analyses, print times and information, save the plot."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-masses", type=int, default=24)
    ap.add_argument("--exposure", type=float, default=15.3, help="tonne year")
    ap.add_argument("--er-rate", type=float, default=20.0, help="events/(t yr keV)")
    ap.add_argument("--n-bins", type=int, default=24, help="per axis (a), 1-D (b)")
    ap.add_argument("--n-signal", type=int, default=4000, help="MC events per mass")
    ap.add_argument("--n-background", type=int, default=60000, help="MC per source")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="outputs")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args()
    jax.config.update("jax_enable_x64", True)  # limits in float64
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    key = jax.random.key(args.seed)
    k_obs, k_mc, k_train, k_rand = jax.random.split(key, 4)

    det = xenon.lz_like()
    masses = np.geomspace(8.0, 1000.0, args.n_masses)
    er = xenon.flat_er_spectrum(args.er_rate, e_min=0.5, e_max=25.0)
    b8 = xenon.b8_spectrum()
    bkg_sources = (er, b8)
    bkg_sigma = np.array([0.05, 0.04])
    xe = jnp.linspace(*CS1_RANGE, args.n_bins + 1)
    ye = jnp.linspace(*LOG_CS2_RANGE, args.n_bins + 1)

    # Observed: one background-only pseudo-experiment from the event sampler.
    rate = sum(float(s.total_rate()) for s in bkg_sources) * args.exposure
    obs = xenon.sample_exposure(
        k_obs, bkg_sources, det, args.exposure, int(rate + 6 * rate**0.5 + 50)
    )
    keep = np.asarray(obs.mask & in_roi(obs.events))
    obs_x = np.asarray(features(obs.events, 0.0))[keep]
    print(f"observed pseudo-data: {keep.sum()} events in the ROI")

    # (a) 2-D analytic templates, limits vmapped over masses.
    t0 = time.perf_counter()

    def hist(source):
        p = xenon.XenonModel((source,), jnp.asarray(args.exposure))
        return xenon.expected_histogram(p, det, (xe, ye))

    bkg2d = jnp.stack([hist(s) for s in bkg_sources])
    sig2d = jax.jit(
        jax.vmap(lambda m: hist(xenon.wimp_spectrum(m, SIGMA_REF, e_max=80.0)))
    )(jnp.asarray(masses))
    counts2d, _, _ = np.histogram2d(obs_x[:, 2], obs_x[:, 3], bins=(xe, ye))
    base2d = stats.binned_model(
        sig2d[0], bkg2d, background_sigma=bkg_sigma, constraint="lognormal"
    )
    data2d = stats.BinnedData(jnp.asarray(counts2d.ravel()), base2d.nominal_aux())

    def limit2d(s):
        m = stats.binned_model(
            s, bkg2d, background_sigma=bkg_sigma, constraint="lognormal"
        )
        return stats.upper_limit(m, data2d, cl=0.9)

    limits_a = jax.jit(jax.vmap(limit2d))
    lim2d = jax.block_until_ready(limits_a(sig2d))
    time_a = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(limits_a(sig2d))
    warm_a = time.perf_counter() - t0
    print(
        f"(a) 2-D template limits, {args.n_masses} masses: {time_a:.1f} s "
        f"(templates + compile + limits); limits alone, compiled: {warm_a:.2f} s"
    )

    # (b) NN compression: MC events, classifier, 1-D templates, limits.
    t0 = time.perf_counter()
    ks = jax.random.split(k_mc, 2 * args.n_masses + 4)
    log_m = np.log10(masses)
    sig_mc = []
    for i, m in enumerate(masses):
        src = xenon.wimp_spectrum(m, SIGMA_REF, e_max=80.0)
        tr = simulate_mc(ks[2 * i], src, det, args.n_signal, args.exposure, log_m[i])
        te = simulate_mc(
            ks[2 * i + 1], src, det, args.n_signal, args.exposure, log_m[i]
        )
        sig_mc.append((tr, te))
    bkg_mc = []
    for j, src in enumerate(bkg_sources):
        kk = ks[2 * args.n_masses + 2 * j : 2 * args.n_masses + 2 * j + 2]
        tr = simulate_mc(kk[0], src, det, args.n_background, args.exposure, 0.0)
        te = simulate_mc(kk[1], src, det, args.n_background, args.exposure, 0.0)
        bkg_mc.append((tr, te))
    # A background without MC events in the ROI has an empty 1-D template (which
    # binned_model refuses); with small MC samples that can happen to 8B: leave it
    # out of (b) and say so.
    used = [j for j, t in enumerate(bkg_mc) if len(t[1][0]) > 0 and len(t[0][0]) > 0]
    if len(used) < len(bkg_mc):
        print(
            f"(b) backgrounds without MC events in the ROI left out: "
            f"{[j for j in range(len(bkg_mc)) if j not in used]} (raise --n-background)"
        )
    bkg_mc = [bkg_mc[j] for j in used]
    sigma_b = bkg_sigma[used]
    rng = np.random.default_rng(args.seed)
    xs = np.concatenate([t[0][0] for t in sig_mc])
    xb = np.concatenate([t[0][0] for t in bkg_mc])
    xb[:, 5] = rng.choice(log_m, size=len(xb))  # background at random masses
    t_sim = time.perf_counter() - t0
    compressor, hist_ = stats.train_compressor(
        k_train,
        jnp.asarray(xs),
        jnp.asarray(xb),
        width=args.width,
        max_epochs=args.epochs,
        batch_size=256,
        learning_rate=3e-3,
        progress=not args.no_progress,
    )
    t_train = time.perf_counter() - t0 - t_sim

    def quantile_edges(i):
        """Equal-population bins of the pooled (signal + background) MC summaries."""
        t = np.concatenate(
            [
                np.asarray(jax.vmap(compressor)(jnp.asarray(sig_mc[i][1][0]))),
                np.asarray(
                    jax.vmap(compressor)(
                        jnp.asarray(with_mass(bkg_mc[0][1][0], log_m[i]))
                    )
                ),
            ]
        )
        e = np.quantile(t, np.linspace(0.0, 1.0, args.n_bins + 1))
        e[0], e[-1] = 0.0, 1.0
        e = np.maximum.accumulate(e + 1e-12 * np.arange(len(e)))
        return jnp.asarray(e)

    def with_mass(x, lm):
        return np.concatenate([x[:, :5], np.full((len(x), 1), lm)], 1)

    def templates_1d(comp, i):
        edges = quantile_edges(i)
        s, _ = stats.compressed_templates(
            comp, jnp.asarray(sig_mc[i][1][0]), jnp.asarray(sig_mc[i][1][1]), edges
        )
        bs, bw2 = [], []
        for te in (t[1] for t in bkg_mc):
            sw, sw2 = stats.compressed_templates(
                comp, jnp.asarray(with_mass(te[0], log_m[i])), jnp.asarray(te[1]), edges
            )
            bs.append(sw)
            bw2.append(sw2)
        b = jnp.stack(bs)
        tot = jnp.sum(b, 0)
        delta = stats.mc_relative_uncertainty(tot, jnp.sum(jnp.stack(bw2), 0))
        obs1 = np.histogram(
            np.asarray(jax.vmap(comp)(jnp.asarray(with_mass(obs_x, log_m[i])))),
            bins=np.asarray(edges),
        )[0]
        return s, b, delta, jnp.asarray(obs1, jnp.float64), edges

    t1 = time.perf_counter()
    per_mass = [templates_1d(compressor, i) for i in range(args.n_masses)]
    sig1, bkg1, delta1, obs1, edges1 = (
        jnp.stack(x) for x in zip(*per_mass, strict=True)
    )

    def limit1d(s, b, dl, n):
        m = stats.binned_model(
            s, b, background_sigma=sigma_b, constraint="lognormal", mc_delta=dl
        )
        return stats.upper_limit(m, stats.BinnedData(n, m.nominal_aux()), cl=0.9)

    limits_b = jax.jit(jax.vmap(limit1d))
    lim1d = jax.block_until_ready(limits_b(sig1, bkg1, delta1, obs1))
    time_b = time.perf_counter() - t1
    t1 = time.perf_counter()
    jax.block_until_ready(limits_b(sig1, bkg1, delta1, obs1))
    warm_b = time.perf_counter() - t1
    print(
        f"(b) NN-compressed limits, {args.n_masses} masses: {time_b:.1f} s "
        f"(templates + compile + limits; limits alone, compiled: {warm_b:.2f} s) "
        f"(+ simulation {t_sim:.1f} s, training {t_train:.1f} s, "
        f"{len(hist_.train_loss) if hasattr(hist_, 'train_loss') else '?'} epochs)"
    )

    # Information kept: Fisher information of mu at the (a) median expected limit:
    # the 2-D analytic templates of (a) and a 3-D binned MC likelihood (cS1, log10
    # cS2, z) vs the 1-D summaries (NN, and a random projection as the control).
    rand = stats.random_projection(k_rand, jnp.asarray(xb))
    e3 = [np.asarray(xe), np.asarray(ye), np.linspace(det.fid_z_min, det.fid_z_max, 5)]
    rows = []
    for i in range(args.n_masses):
        mu = float(lim2d.expected[i, 2])
        edges = edges1[i]
        i2 = float(stats.fisher_information_binned(sig2d[i], jnp.sum(bkg2d, 0), mu))
        sx, sw = sig_mc[i][1]
        bx = np.concatenate([t[1][0] for t in bkg_mc])
        bw = np.concatenate([t[1][1] for t in bkg_mc])
        h_s = np.histogramdd(sx[:, [2, 3, 1]], bins=e3, weights=sw)[0]
        h_b = np.histogramdd(bx[:, [2, 3, 1]], bins=e3, weights=bw)[0]
        i3 = float(stats.fisher_information_binned(h_s, h_b, mu))
        i_nn = float(stats.fisher_information_binned(sig1[i], jnp.sum(bkg1[i], 0), mu))
        sr, _ = stats.compressed_templates(
            rand, jnp.asarray(sx), jnp.asarray(sw), edges
        )
        br, _ = stats.compressed_templates(
            rand, jnp.asarray(with_mass(bx, log_m[i])), jnp.asarray(bw), edges
        )
        i_r = float(stats.fisher_information_binned(sr, br, mu))
        # MI between the label and the summary, balanced classes (unweighted events).
        lab3 = np.stack(
            [
                np.histogramdd(sx[:, [2, 3, 1]], bins=e3)[0],
                np.histogramdd(bx[:, [2, 3, 1]], bins=e3)[0],
            ]
        )
        ts = np.asarray(jax.vmap(compressor)(jnp.asarray(sx)))
        tb = np.asarray(jax.vmap(compressor)(jnp.asarray(with_mass(bx, log_m[i]))))
        lab1 = np.stack(
            [
                np.histogram(ts, bins=np.asarray(edges))[0],
                np.histogram(tb, bins=np.asarray(edges))[0],
            ]
        )
        mi3 = float(stats.mutual_information(jnp.asarray(lab3)))
        mi1 = float(stats.mutual_information(jnp.asarray(lab1)))
        rows.append((masses[i], i2, i3, i_nn, i_r, mi3, mi1))
    rows = np.array(rows)
    keep_nn = rows[:, 3] / rows[:, 1]
    keep_r = rows[:, 4] / rows[:, 1]
    print(
        "\nFisher information of mu at the median expected limit of (a); "
        "kept = I / I_2D\n mass[GeV]    I_2D    I_3D    I_NN  I_rand kept(NN) "
        "kept(rand)  MI_3D  MI_NN [nats]"
    )
    for r, kn, kr in zip(rows, keep_nn, keep_r, strict=True):
        print(
            f"{r[0]:9.1f} {r[1]:7.3g} {r[2]:7.3g} {r[3]:7.3g} {r[4]:7.3g} {kn:8.3f}"
            f" {kr:8.3f} {r[5]:7.4f} {r[6]:7.4f}"
        )
    print(
        f"information kept by (b): median {np.median(keep_nn):.3f} "
        f"(random projection {np.median(keep_r):.3f})"
    )
    print(
        f"run time: (a) {time_a:.1f} s, (b) {time_b:.1f} s; compiled limit scans "
        f"(a) {warm_a:.2f} s, (b) {warm_b:.2f} s"
    )
    print(
        f"converged: (a) {int(np.sum(lim2d.converged))}/{args.n_masses}, "
        f"(b) {int(np.sum(lim1d.converged))}/{args.n_masses}"
    )
    for lab, lim in (("(a)", lim2d), ("(b)", lim1d)):
        o, e = np.asarray(lim.observed), np.asarray(lim.expected)
        in1 = int(np.sum((o >= e[:, 1]) & (o <= e[:, 3])))
        in2 = int(np.sum((o >= e[:, 0]) & (o <= e[:, 4])))
        print(
            f"{lab} observed (background-only pseudo-data) inside the expected "
            f"+-1 sigma band at {in1}/{args.n_masses} masses, +-2 sigma at "
            f"{in2}/{args.n_masses}; observed / median expected "
            f"{np.min(o / e[:, 2]):.2f}-{np.max(o / e[:, 2]):.2f}"
        )
    for lab, lim in (("(a)", lim2d), ("(b)", lim1d)):
        bad = ~np.asarray(lim.converged)
        if bad.any():
            warnings.warn(
                f"{lab}: {int(bad.sum())} of {args.n_masses} limits did not converge "
                f"(a fit or the root search hit its step cap) at masses "
                f"{np.round(masses[bad], 1).tolist()} GeV; do not quote them.",
                RuntimeWarning,
                stacklevel=1,
            )

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for lim, col, lab in (
        (lim2d, "C0", "(a) 2-D templates"),
        (lim1d, "C3", "(b) NN 1-D"),
    ):
        e = np.asarray(lim.expected) * SIGMA_REF
        ax.fill_between(masses, e[:, 0], e[:, 4], color=col, alpha=0.12)
        ax.fill_between(masses, e[:, 1], e[:, 3], color=col, alpha=0.25)
        ax.plot(masses, e[:, 2], "--", color=col, label=f"{lab}: expected")
        ax.plot(
            masses,
            np.asarray(lim.observed) * SIGMA_REF,
            "-",
            color=col,
            label=f"{lab}: observed",
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="WIMP mass [GeV/c$^2$]",
        ylabel=r"$\sigma_{SI}$ [cm$^2$] (90% CL)",
        title=f"LZ-like, {args.exposure:g} t yr, CLs",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "xenon_wimp_limit.png", dpi=120)
    np.savez(
        out / "xenon_wimp_limit.npz",
        masses=masses,
        obs_a=np.asarray(lim2d.observed),
        exp_a=np.asarray(lim2d.expected),
        obs_b=np.asarray(lim1d.observed),
        exp_b=np.asarray(lim1d.expected),
        info=rows,
    )
    print(f"wrote {out / 'xenon_wimp_limit.png'}")


if __name__ == "__main__":
    main()
