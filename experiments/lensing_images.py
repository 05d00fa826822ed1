"""Strong-lensing images for CDM and WDM (3, 7, 30 keV) subhalo populations.

Draws a grid of HST-like images (SIE + shear + Sersic source + tNFW subhalos) at equal
total CDM subhalo mass, saves a figure, and prints the mean number of surviving
subhalos above 1e8 M_sun per model. About a minute on one CPU core with defaults.

    python experiments/lensing_images.py --n-images 4 --seed 0
"""

import argparse
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxdm.simulators import lensing as L

MODELS = (("CDM", np.inf), ("WDM 30 keV", 30.0), ("WDM 7 keV", 7.0), ("WDM 3 keV", 3.0))


def main(args):
    key = jax.random.key(args.seed)
    cfg = L.hst_like(n_pix=args.n_pix, supersampling=2)
    sub = L.SubhaloConfig(
        max_n=args.max_n,
        m_min=1e7,
        m_max=1e10,
        field_radius=cfg.n_pix * cfg.pixel_scale / 2,
        normalization="mass",
    )
    keys = jax.random.split(key, args.n_images)

    def one(k, scene):
        # simulate_population_image draws the subhalos from the first sub-key;
        # redraw them with the same key to read off masses and survival.
        k_sub, _ = jax.random.split(k)
        draw = L.sample_subhalos(
            k_sub,
            scene.sub_norm,
            10.0**scene.log10_m_wdm,
            sub,
            center=(scene.x0, scene.y0),
            theta_e=scene.theta_e,
        )
        return L.simulate_population_image(k, scene, cfg, sub), draw

    render = eqx.filter_jit(jax.vmap(one, in_axes=(0, None)))
    images, counts = {}, {}
    for name, m_wdm in MODELS:
        # Same keys for every model: the CDM draw is thinned, so WDM populations
        # are subsets of the CDM ones at equal total CDM subhalo mass.
        scene = L.SceneParams(
            log10_m_wdm=jnp.log10(m_wdm), sub_norm=args.sub_mass, src_amplitude=40.0
        )
        imgs, draw = render(keys, scene)
        mask = np.asarray(draw.mask) > 0
        big = mask & (np.asarray(draw.mass) > 1e8)
        images[name] = np.asarray(imgs)
        counts[name] = big.sum(axis=1).mean()
        m_hm = float(L.half_mode_mass(m_wdm)) if np.isfinite(m_wdm) else 0.0
        print(
            f"{name:11s} M_hm = {m_hm:9.3g} M_sun  mean subhalos: all "
            f"{mask.sum(1).mean():6.1f}, > 1e8 M_sun {counts[name]:5.2f}"
        )
    os.makedirs(args.out, exist_ok=True)
    _plot(images, counts, args)
    return counts


def _plot(images, counts, args):
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no figure (pip install jaxdm[plots])")
        return
    n_col = min(args.n_images, 4)
    fig, axes = plt.subplots(
        len(images), n_col, figsize=(2.2 * n_col, 2.2 * len(images))
    )
    axes = np.atleast_2d(axes).reshape(len(images), n_col)
    for row, (name, imgs) in enumerate(images.items()):
        for col in range(n_col):
            ax = axes[row, col]
            ax.imshow(imgs[col], origin="lower", cmap="magma")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(f"{name}\n<N(>1e8)>={counts[name]:.1f}", fontsize=8)
    fig.tight_layout()
    path = os.path.join(args.out, "lensing_images.png")
    fig.savefig(path, dpi=100)
    print(f"saved {path}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n-images", type=int, default=4, dest="n_images")
    p.add_argument("--n-pix", type=int, default=64, dest="n_pix")
    p.add_argument("--max-n", type=int, default=256, dest="max_n")
    p.add_argument(
        "--sub-mass",
        type=float,
        default=1e10,
        dest="sub_mass",
        help="expected total CDM subhalo mass in the field [M_sun]",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs/lensing_images")
    main(p.parse_args())
