"""NR vs ER from PMT hit-pattern images with a CNN, after Khosa et al. (2020).

Khosa, Mars, Richards & Sanz, "Convolutional neural networks for direct detection
of dark matter", J. Phys. G 47 (2020) 095201, arXiv:1911.09210, trained a CNN on the
S1 and S2 PMT images of a XENON1T-like TPC and separated 500 GeV WIMP nuclear
recoils from electronic recoils with accuracy 98.03%, precision 96.39% and recall
98.07% (their Table 2 setting: 10^-45 cm^2, 4 x 10^4 images).

Here, with ``jaxdm.simulators.xenon``: ER events from a flat spectrum (0.5-20 keV)
and NR events from the WIMP spectrum of the chosen mass (standard halo, NEST v2
yields, LZ-like detector), single scatters passing the S1/S2 thresholds; S1 and S2
hit patterns on the LZ-like arrays (253 + 241 PMTs; analytic light-collection model,
:mod:`jaxdm.simulators.xenon.hit_pattern`) rasterised to four ``size x size``
channels (S1 top, S1 bottom, S2 top, S2 bottom; ``log1p`` of the counts); a
``jaxdm.nn.CNNEmbedding`` classifier trained with ``jaxdm.train.fit``. Reported:
accuracy, precision and recall (NR positive, threshold 0.5) on a held-out balanced
test set, at 500, 50 and 10 GeV. Differences from the paper: detector and PMT
geometry (LZ-like, not XENON1T), our light model, balanced classes and far fewer
images by default (CPU budget).

    python experiments/xenon_event_images.py --seed 0
"""

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxdm.nn import CNNEmbedding
from jaxdm.simulators import xenon
from jaxdm.train import default_optimizer, fit

KHOSA_500GEV = {"accuracy": 0.9803, "precision": 0.9639, "recall": 0.9807}


def simulate_images(key, mass_gev, n, det, pmts, size):
    """Balanced ER/NR images (m, 4, size, size) and labels (NR = 1)."""
    k_er, k_nr, k_h1, k_h2 = jax.random.split(key, 4)
    params = xenon.WaveformParams(detector=det)
    er = xenon.simulate_events(
        k_er, xenon.flat_er_spectrum(1.0, e_min=0.5, e_max=20.0), det, n
    )
    nr = xenon.simulate_events(
        k_nr, xenon.wimp_spectrum(mass_gev, 1e-45, e_max=100.0), det, n
    )
    out = []
    for k, ev in ((k_h1, er), (k_h2, nr)):
        # Events passing the thresholds whose reconstructed (smeared) position lies
        # inside the TPC (the pattern is rendered at the reconstructed x, y).
        keep = np.asarray(ev.passed) & (np.asarray(ev.r) < float(pmts.tpc_radius))
        ev = jax.tree.map(lambda a, keep=keep: a[keep], ev)
        rec = xenon.interactions_from_events(ev)
        s1, s2 = xenon.simulate_hit_patterns(k, rec, params, pmts)
        img = jnp.stack(
            [
                xenon.hit_image(s1, pmts, size, "top"),
                xenon.hit_image(s1, pmts, size, "bottom"),
                xenon.hit_image(s2, pmts, size, "top"),
                xenon.hit_image(s2, pmts, size, "bottom"),
            ],
            axis=1,
        )
        out.append(np.log1p(np.asarray(img)))
    m = min(len(out[0]), len(out[1]))  # balance the classes
    x = np.concatenate([out[0][:m], out[1][:m]]).astype(np.float32)
    y = np.concatenate([np.zeros(m), np.ones(m)]).astype(np.float32)
    return x, y


def metrics(logit, y):
    pred = logit > 0
    tp = np.sum(pred & (y == 1))
    fp = np.sum(pred & (y == 0))
    fn = np.sum(~pred & (y == 1))
    return {
        "accuracy": float(np.mean(pred == (y == 1))),
        "precision": float(tp / max(tp + fp, 1)),
        "recall": float(tp / max(tp + fn, 1)),
    }


def train_cnn(key, x, y, size, epochs, channels):
    k_net, k_fit = jax.random.split(key)
    net = CNNEmbedding(4, 1, image_shape=(size, size), channels=channels, key=k_net)

    def loss_fn(model, batch, _key):
        logit = jax.vmap(model)(batch["x"])[:, 0]
        t = batch["y"]
        return jnp.mean(
            jnp.maximum(logit, 0) - logit * t + jnp.log1p(jnp.exp(-jnp.abs(logit)))
        )

    return fit(
        k_fit,
        net,
        loss_fn,
        {"x": x, "y": y},
        default_optimizer(1e-3),
        batch_size=64,
        max_epochs=epochs,
        patience=5,
        progress=True,
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=3000, help="events per class")
    ap.add_argument("--n-test", type=int, default=1500, help="events per class")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--size", type=int, default=12, help="image pixels per side")
    ap.add_argument("--channels", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--masses", type=float, nargs="+", default=[500.0, 50.0, 10.0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="outputs")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    det, pmts = xenon.lz_like(), xenon.lz_like_pmts()
    key = jax.random.key(a.seed)
    results, examples = {}, None
    for i, mass in enumerate(a.masses):
        t0 = time.time()
        k_tr, k_te, k_fit = jax.random.split(jax.random.fold_in(key, i), 3)
        x, y = simulate_images(k_tr, mass, a.n_train, det, pmts, a.size)
        xt, yt = simulate_images(k_te, mass, a.n_test, det, pmts, a.size)
        net, _ = train_cnn(k_fit, x, y, a.size, a.epochs, tuple(a.channels))
        logit = np.concatenate(
            [
                np.asarray(jax.jit(jax.vmap(net))(xt[j : j + 512]))[:, 0]
                for j in range(0, len(xt), 512)
            ]
        )
        results[mass] = metrics(logit, yt)
        r = results[mass]
        print(
            f"{mass:g} GeV: accuracy {100 * r['accuracy']:.2f}%  precision "
            f"{100 * r['precision']:.2f}%  recall {100 * r['recall']:.2f}%  "
            f"(train {len(y)}, test {len(yt)} images, {time.time() - t0:.0f} s)"
        )
        if examples is None:
            examples = (xt[yt == 0][0], xt[yt == 1][0])
    k = KHOSA_500GEV
    print(
        "Khosa et al. (arXiv:1911.09210), 500 GeV: accuracy "
        f"{100 * k['accuracy']:.2f}%  precision {100 * k['precision']:.2f}%  "
        f"recall {100 * k['recall']:.2f}%"
    )
    plot(results, examples, a.out)


def plot(results, examples, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 5, figsize=(15, 6))
    names = ("S1 top", "S1 bottom", "S2 top", "S2 bottom")
    for row, (img, lab) in enumerate(zip(examples, ("ER", "NR"), strict=True)):
        for c in range(4):
            ax[row, c].imshow(img[c], origin="lower", cmap="viridis")
            ax[row, c].set_title(f"{lab}: {names[c]} (log1p phd)")
            ax[row, c].set_xticks([])
            ax[row, c].set_yticks([])
    masses = sorted(results)
    w = 0.25
    for j, m in enumerate(("accuracy", "precision", "recall")):
        xs = np.arange(len(masses)) + (j - 1) * w
        ax[0, 4].bar(xs, [results[ms][m] for ms in masses], w, label=m)
        ax[0, 4].axhline(KHOSA_500GEV[m], ls="--", lw=0.8, color=f"C{j}")
    ax[0, 4].set_xticks(np.arange(len(masses)), [f"{m:g} GeV" for m in masses])
    ax[0, 4].set_ylim(0.5, 1.0)
    ax[0, 4].legend(fontsize=7)
    ax[0, 4].set_title("CNN (bars) vs Khosa et al. 500 GeV (dashed)")
    ax[1, 4].axis("off")
    fig.tight_layout()
    path = os.path.join(out, "xenon_event_images.png")
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
