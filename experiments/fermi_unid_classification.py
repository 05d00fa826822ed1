"""Errors-in-variables classification of mock unassociated Fermi-LAT sources.

Mock sources have two spectral features (log-parabola photon index at 1 GeV and
curvature beta), measured with per-source uncertainties. Astrophysical sources
(pulsar/blazar-like) and dark-matter-subhalo-like sources (hard, strongly curved
spectra, as a b-bbar annihilation spectrum of tens of GeV) occupy different regions
(after Gammaldi et al. 2022, arXiv:2207.09307; Coronado-Blazquez et al. 2019,
arXiv:1906.11896). A classifier trained (``jaxdm.train.fit``) on noise-free
features is pushed through ``jaxdm.fits.eiv_classifier_model`` to get each
unassociated source's posterior DM probability with its spread (NUTS). For
comparison, the route that feeds the uncertainties as extra input features: a second
classifier trained on (noisy features, uncertainties).

    python experiments/fermi_unid_classification.py --n-unid 8
"""

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdm import fits
from jaxdm.nn import MLP
from jaxdm.train import fit

# (index Gamma, curvature beta) centres and spreads per class (mock values).
ASTRO = (np.array([2.3, 0.1]), np.array([0.3, 0.08]))
DM = (np.array([1.4, 0.5]), np.array([0.2, 0.1]))


def draw(rng, n, cls):
    mu, sd = (ASTRO, DM)[cls]
    return mu + sd * rng.standard_normal((n, 2))


def bce(model, batch, key):
    x, y = batch
    return jnp.mean(optax.sigmoid_binary_cross_entropy(jax.vmap(model)(x)[:, 0], y))


def main(args):
    rng = np.random.default_rng(args.seed)
    n = args.n_train
    x = np.concatenate([draw(rng, n, 0), draw(rng, n, 1)])
    y = np.concatenate([np.zeros(n), np.ones(n)])
    err = rng.uniform(0.02, 0.4, x.shape) * np.array([1.0, 0.5])
    k = jax.random.split(jax.random.key(args.seed), 4)
    clf, _ = fit(k[0], MLP(2, 1, width=16, depth=2, key=k[1]), bce,
                 (jnp.asarray(x), jnp.asarray(y)), optax.adam(1e-2),
                 max_epochs=args.epochs, batch_size=128, progress=False)  # fmt: skip
    xn = x + err * rng.standard_normal(x.shape)
    clf_err, _ = fit(k[2], MLP(4, 1, width=16, depth=2, key=k[3]), bce,
                     (jnp.asarray(np.hstack([xn, err])), jnp.asarray(y)),
                     optax.adam(1e-2), max_epochs=args.epochs, batch_size=128,
                     progress=False)  # fmt: skip
    # Unassociated sources: half DM-like, half astrophysical, noisy.
    m = args.n_unid
    truth = np.arange(m) % 2
    xt = np.stack([draw(rng, 1, c)[0] for c in truth])
    e = rng.uniform(0.05, 0.5, xt.shape) * np.array([1.0, 0.5])
    xo = xt + e * rng.standard_normal(xt.shape)
    res = fits.run_nuts(
        jax.random.key(args.seed + 1), fits.eiv_classifier_model,
        {"x_obs": jnp.asarray(xo), "x_err": jnp.asarray(e), "classifier": clf,
         "prior_mean": jnp.asarray([1.9, 0.3]), "prior_scale": 1.0},
        num_warmup=args.samples, num_samples=args.samples,
        progress_bar=not args.no_progress, min_ess=50, rhat_threshold=1.05,
    )  # fmt: skip
    mean, sd = fits.eiv_class_probabilities(res)
    naive = np.asarray(jax.nn.sigmoid(jax.vmap(clf)(jnp.asarray(xo))[:, 0]))
    feat = np.asarray(jax.nn.sigmoid(
        jax.vmap(clf_err)(jnp.asarray(np.hstack([xo, e])))[:, 0]))  # fmt: skip
    print("src truth  P_DM(EIV) +- sd   P_DM(plug-in)  P_DM(errors as features)")
    for i in range(m):
        print(f"{i:3d} {'DM   ' if truth[i] else 'astro'}  {mean[i]:.3f} +- {sd[i]:.3f}"
              f"      {naive[i]:.3f}          {feat[i]:.3f}")  # fmt: skip
    print(f"diagnostics ok = {res.ok} {res.problems}")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.errorbar(np.arange(m), mean, sd, fmt="o", label="EIV posterior")
    ax.plot(np.arange(m), feat, "s", label="errors as features")
    ax.plot(np.arange(m), truth, "k_", ms=15, label="truth")
    ax.set_xlabel("source")
    ax.set_ylabel("P(DM-like)")
    ax.legend()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "fermi_unid_classification.png")
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--n-unid", type=int, default=8)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--samples", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs")
    p.add_argument("--no-progress", action="store_true")
    main(p.parse_args())
