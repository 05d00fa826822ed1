"""Model-independent search in a LZ-like TPC: anomaly scores trained on ER background.

After Herrero-Garcia, Patrick & Scaffidi (arXiv:2110.12248). Every event class is
rendered to waveforms (``jaxdm.simulators.xenon.simulate_waveform``) and reduced to
(cS1, log10 cS2, drift time, S2 sigma, S2 pulse count, S1 prompt fraction). Scores
(flow density, AE, beta-VAE, Deep SVDD, their "rare and different" combination) are
trained on electronic-recoil single scatters only; so are a convolutional AE and
beta-VAE on hit-pattern images of the same events (``simulate_hit_patterns``:
S1 and S2 counts of the LZ-like top and bottom PMT arrays rasterised by
``hit_image`` to four ``--image-size`` square channels, ``log1p`` of the counts;
``--image-size 0`` skips them). Scores are then applied to WIMP nuclear
recoils at 10, 50 and 500 GeV (``interactions_from_events`` of the summary sampler)
and to populations training never saw: S2-only events, gas events and accidental
coincidences (``jaxdm.simulators.xenon`` event classes). Reported per score and
population: AUC, eps_S at eps_B = 1e-3, the Asimov discovery significance of a
tail cut at eps_B = 1e-3 against exposure for ``--signal-rate`` injected events per
tonne-year; and which class dominates the VAE's most anomalous events. Writes score
histograms to ``--out``. A few minutes on a quiet 2-core CPU with the defaults.

    python experiments/xenon_anomaly.py --seed 0
"""

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxdm import anomaly as an
from jaxdm.simulators import xenon
from jaxdm.train import default_optimizer

CFG = xenon.WaveformConfig(
    dt=50.0, s1_samples=40, s2_samples=1000, spe_taps=2, max_s2_electrons=2048
)
FEATURES = ("cS1", "log10 cS2", "drift time", "S2 sigma", "n S2", "S1 prompt")


def reduce(key, record, params):
    wf = xenon.simulate_waveform(key, record, params, CFG)
    f = xenon.reduce_waveforms(wf, params, CFG)
    cols = (f.cs1, jnp.log10(jnp.maximum(f.cs2, 1.0)), f.drift_time, f.s2_sigma,
            f.n_s2_pulses, f.s1_prompt_fraction)  # fmt: skip
    x = np.stack([np.asarray(c, np.float64) for c in cols], axis=1)
    return x.astype(np.float32), np.isfinite(x).all(axis=1)


def images(key, record, params, pmts, size):
    """Hit-pattern images (n, 4, size, size): S1 top/bottom, S2 top/bottom, log1p."""
    s1, s2 = xenon.simulate_hit_patterns(key, record, params, pmts)
    img = jnp.stack([xenon.hit_image(h, pmts, size, a)
                     for h in (s1, s2) for a in ("top", "bottom")], axis=1)  # fmt: skip
    return np.log1p(np.asarray(img, np.float64)).astype(np.float32)


CHUNK = 1024  # events rendered per call: bounds the memory (one call for all
# ~14,000 events of the default size needed > 10 GB and was OOM-killed)


def in_chunks(fn, key, record, *args):
    """``fn(key_i, chunk_i, *args)`` over fixed-size chunks of ``record``'s events.

    The last chunk is padded by repeating the last event (and trimmed afterwards)
    so that every call has one shape and compiles once; chunk i uses the key
    ``fold_in(key, i)``.
    """
    n = int(record.label.shape[0])
    size = min(CHUNK, n)
    outs = []
    for i, a in enumerate(range(0, n, size)):
        idx = np.minimum(np.arange(a, a + size), n - 1)
        out = fn(jax.random.fold_in(key, i), jax.tree.map(lambda v: v[idx], record),
                 *args)  # fmt: skip
        m = min(size, n - a)
        outs.append(jax.tree.map(lambda v, m=m: v[:m], out))
    return jax.tree.map(lambda *v: np.concatenate(v), *outs)


def populations(key, det, params, n_train, n_test, image_size=0):
    """ER training events and every test population, rendered together.

    All records have two site slots and are stacked and rendered in chunks of
    ``CHUNK`` events, so the waveform code compiles once; the rows are split back
    by population afterwards. Returns the summary
    features per population and (``image_size > 0``) their hit-pattern images
    (same rows), else None.
    """
    ks = jax.random.split(key, 10)
    pmts = xenon.lz_like_pmts()
    m = n_test // 4
    rec = {
        "ER (train)": xenon.sample_single_scatters(ks[0], n_train, det),
        "ER (background)": xenon.sample_single_scatters(ks[1], n_test, det),
        "S2-only": xenon.sample_s2_only(ks[2], m, det),
        "gas": xenon.sample_gas_events(ks[3], m, det),
        "accidental": xenon.sample_accidentals(ks[4], m, det),
    }
    for i, mass in enumerate((10.0, 50.0, 500.0)):
        spec = xenon.wimp_spectrum(mass, 1e-46, e_max=60.0 if mass < 100 else 100.0)
        ev = xenon.simulate_events(ks[5 + i], spec, det, m)
        # reconstructed (smeared) positions outside the TPC cannot be rendered
        inside = np.asarray(ev.r) < float(pmts.tpc_radius)
        ev = jax.tree.map(lambda a, keep=inside: a[keep], ev)
        rec[f"WIMP {mass:g} GeV"] = xenon.interactions_from_events(ev, n_sites=2)
    sizes = np.cumsum([0] + [int(r.label.shape[0]) for r in rec.values()])
    stacked = xenon.stack_interactions(list(rec.values()))
    x, ok = in_chunks(reduce, ks[8], stacked, params)
    img = (in_chunks(images, ks[9], stacked, params, pmts, image_size)
           if image_size else None)  # fmt: skip
    spans = list(zip(rec, sizes[:-1], sizes[1:], strict=True))
    feats = {name: x[a:b][ok[a:b]] for name, a, b in spans}
    if img is None:
        return feats, None
    return feats, {name: img[a:b][ok[a:b]] for name, a, b in spans}


def train_scores(key, x, epochs, img=None):
    ks = jax.random.split(key, 12)
    d = x.shape[1]
    fit = dict(max_epochs=epochs, patience=5, batch_size=128, progress=False,
               optimizer=default_optimizer(3e-3))  # fmt: skip
    makers = {
        "flow": an.make_flow_density(
            ks[0], dim=d, n_layers=3, hidden=(64, 64), discrete=[4]
        ),
        "AE": an.make_autoencoder(ks[1], dim=d, latent_dim=2),
        "VAE": an.make_vae(ks[2], dim=d, latent_dim=2, beta=0.1),
        "DeepSVDD": an.make_deep_svdd(ks[3], dim=d, rep_dim=8),
    }
    half = len(x) // 2
    out = {}
    for i, (name, m) in enumerate(makers.items()):
        out[name], _ = an.fit_score(ks[4 + i % 4], m, x[:half], **fit)
    if img is not None:
        shape = img.shape[1:]
        conv = {
            "conv AE (images)": an.make_conv_autoencoder(
                ks[8], image_shape=shape, latent_dim=8),
            "conv VAE (images)": an.make_conv_vae(
                ks[9], image_shape=shape, latent_dim=8, beta=0.1),
        }  # fmt: skip
        for i, (name, m) in enumerate(conv.items()):
            out[name], _ = an.fit_score(ks[10 + i], m, img[:half], **fit)
    out["rare+different"] = an.combine_rare_different(
        out["flow"], out["DeepSVDD"], x[half:]
    )
    return out


def main(args):
    det = xenon.lz_like()
    params = xenon.WaveformParams(det)
    k_sim, k_fit = jax.random.split(jax.random.key(args.seed))
    test, imgs = populations(k_sim, det, params, args.n_train, args.n_test,
                             args.image_size)  # fmt: skip
    x_tr = test.pop("ER (train)")
    img_tr = None if imgs is None else imgs.pop("ER (train)")
    print(f"train {len(x_tr)} ER events; test: "
          + ", ".join(f"{k} {len(v)}" for k, v in test.items()))  # fmt: skip
    scores = train_scores(k_fit, x_tr, args.epochs, img_tr)
    bkg_name = "ER (background)"
    eps_b = max(1e-3, 1.0 / len(test[bkg_name]))
    exposures = np.array([0.1, 1.0, 10.0])  # tonne-years
    rb = args.background_rate
    print(
        f"\nAUC | eps_S at eps_B = {eps_b:.0e} | Z_A at exposures {exposures} "
        f"t.yr (B = {rb:g}/t.yr before the cut, S = {args.signal_rate:g}/t.yr)"
    )
    values = {}
    for sname, m in scores.items():
        inputs = imgs if sname.startswith("conv") else test
        sb = np.asarray(m.scores(inputs[bkg_name]))
        values[sname] = {bkg_name: sb}
        print(f"-- {sname}")
        for pname, xp in inputs.items():
            if pname == bkg_name or len(xp) == 0:
                continue
            sp = np.asarray(m.scores(xp))
            values[sname][pname] = sp
            a = float(an.auc(sb, sp))
            e = float(an.signal_efficiency(sb, sp, eps_b))
            z = np.asarray(an.discovery_significance(
                sb, sp, eps_b=eps_b, background_rate=rb,
                signal_rate=args.signal_rate, exposure=exposures))  # fmt: skip
            zs = " ".join(f"{v:5.2f}" for v in z)
            print(f"   {pname:16s} AUC {a:.3f}  eps_S {e:.3f}  Z_A {zs}")
    # Which class dominates the VAE's most anomalous non-WIMP events?
    pool = [k for k in test if not k.startswith("WIMP")]
    s = np.concatenate([values["VAE"][k] for k in pool])
    lab = np.concatenate([[k] * len(values["VAE"][k]) for k in pool])
    top = lab[np.argsort(s)[::-1][: args.top]]
    names, counts = np.unique(top, return_counts=True)
    order = np.argsort(counts)[::-1]
    frac = ", ".join(f"{names[i]} {counts[i] / len(top):.2f}" for i in order)
    print(f"\nVAE's {len(top)} most anomalous ER/S2-only/gas/accidental events: {frac}")
    print(f"most anomalous class is S2-only: {names[order[0]] == 'S2-only'}")
    os.makedirs(args.out, exist_ok=True)
    import matplotlib.pyplot as plt

    ncol = min(len(values), 4)
    nrow = -(-len(values) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3.5 * nrow), squeeze=False)
    axes = axes.ravel()
    for ax in axes[len(values) :]:
        ax.set_visible(False)
    for ax, (sname, v) in zip(axes, values.items(), strict=False):
        allv = np.concatenate(list(v.values()))
        lo, hi = np.quantile(allv, [0.001, 0.995])
        bins = np.linspace(lo, hi, 50)
        for pname, sp in v.items():
            ax.hist(np.clip(sp, lo, hi), bins, histtype="step", density=True,
                    label=pname, lw=2 if pname == bkg_name else 1)  # fmt: skip
        ax.set(title=sname, xlabel="score", yscale="log")
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    path = os.path.join(args.out, "xenon_anomaly_scores.png")
    fig.savefig(path, dpi=110)
    print(f"saved {path}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-train", type=int, default=4000, help="ER training events")
    p.add_argument("--n-test", type=int, default=4000, help="ER test events")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--background-rate", type=float, default=1000.0,
                   help="ER events per tonne-year before the cut")  # fmt: skip
    p.add_argument("--signal-rate", type=float, default=5.0,
                   help="injected events per tonne-year")  # fmt: skip
    p.add_argument("--top", type=int, default=100)
    p.add_argument("--image-size", type=int, default=8,
                   help="image side in pixels (multiple of 4; 0: none)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs/xenon_anomaly")
    main(p.parse_args())
