r"""Lensing pixel scale as a design variable: Einstein-radius error vs pixel size.

A fixed pixel count (``--n-pix``) with the pixel scale :math:`p` [arcsec] as a traced
design variable (``jaxdm.design.lensing_pixels``): the field of view
:math:`n_{pix} p` grows with it. Scene: SIE (Einstein radius 1", q 0.8) lensing an
exponential (Sersic n = 1) source of r_e 0.25"; Gaussian PSF FWHM ``--fwhm``;
exposure 1000 s in 4 reads, sky 1 e-/s/arcsec^2. For each read noise in
``--read-noise`` the script

1. evaluates the marginal 1-sigma error of the Einstein radius (Gaussian Fisher
   matrix of theta_E and the source amplitude, :func:`~jaxdm.design.marginal_error`)
   on a grid of pixel scales;
2. minimises its log with :func:`~jaxdm.design.optimise_design` over
   ``p in [--p-min, --p-max]`` under the constraint that the field of view contains
   the ring plus the source (radius 1.5", :func:`field_of_view_margin`);
3. plots the landscape with the optima (``outputs/lensing_pixel_design/``).

Expected behaviour: without read noise the error is flat above ~0.1" (sky and shot
noise per unit area do not depend on p; only resolution does); with read noise the
optimum moves to larger pixels (more counts per read). Pixels whose field of view
cuts the ring are much worse.

    PYTHONPATH=. python experiments/lensing_pixel_design.py
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax


def scene(t):
    from jaxdm.simulators import lensing

    return lensing.LensingParams(
        lens=(lensing.SIEParams(theta_e=t[0], q=0.8, phi=0.3, x0=0.0, y0=0.0),),
        source=(
            lensing.SersicParams(
                amplitude=t[1], r_e=0.25, n=1.0, q=0.8, phi=0.2, x0=0.05, y0=0.02
            ),
        ),
    )


def main(args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jaxdm import design
    from jaxdm.design import lensing_pixels as lp

    os.makedirs(args.out, exist_ok=True)
    theta = jnp.array([1.0, 2.0])

    def log_sigma(p, read_noise):
        noise = lp.PixelNoise(
            exposure_time=1000.0, sky_rate=1.0, read_noise=read_noise, n_exposures=4.0
        )
        f = lp.lensing_pixel_fisher(
            scene, theta, p, noise, n_pix=args.n_pix, supersampling=args.supersampling,
            psf_fwhm=args.fwhm,
        )  # fmt: skip
        return jnp.log(design.marginal_error(f, 0))

    grid = jnp.geomspace(args.p_min * 1.05, args.p_max / 1.05, args.grid)
    scan = jax.jit(jax.vmap(log_sigma, in_axes=(0, None)))
    fig, ax = plt.subplots(figsize=(6, 4))
    for rn in args.read_noise:
        vals = np.exp(np.asarray(scan(grid, rn)))
        res = design.optimise_design(
            lambda d, rn=rn: log_sigma(d["p"], rn),
            {"p": jnp.asarray(args.p_init)},
            ({"p": args.p_min}, {"p": args.p_max}),
            optimizer=optax.adam(args.lr),
            steps=args.steps,
            constraints=[
                design.Constraint(
                    lambda d: lp.field_of_view_margin(d["p"], args.n_pix, 1.5),
                    weight=1e3,
                )
            ],
            progress=args.progress,
        )
        p_opt = float(res.params["p"])
        s_opt = float(np.exp(res.value))
        i = int(np.argmin(vals))
        print(
            f'read noise {rn:5.1f} e-: grid best p = {float(grid[i]):.3f}" '
            f'(sigma_thetaE {vals[i]:.2e}"), optimiser p = {p_opt:.3f}" '
            f'(sigma {s_opt:.2e}", field of view {args.n_pix * p_opt:.2f}")'
        )
        (line,) = ax.loglog(
            np.asarray(grid), vals, "-o", ms=3, label=f"read noise {rn:g} e-"
        )
        ax.plot([p_opt], [s_opt], "*", ms=14, color=line.get_color())
    ax.axvline(2 * 1.5 / args.n_pix, color="k", ls=":", label='field of view = 3"')
    ax.set_xlabel("pixel scale [arcsec]")
    ax.set_ylabel(r"marginal $\sigma(\theta_E)$ [arcsec]")
    ax.set_title(f'{args.n_pix}x{args.n_pix} pixels, PSF FWHM {args.fwhm}"')
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(args.out, "lensing_pixel_design.png")
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-pix", type=int, default=24)
    p.add_argument("--supersampling", type=int, default=2)
    p.add_argument("--fwhm", type=float, default=0.15, help="PSF FWHM [arcsec]")
    p.add_argument("--read-noise", type=float, nargs="+", default=[0.0, 5.0, 20.0])
    p.add_argument("--p-min", type=float, default=0.03)
    p.add_argument("--p-max", type=float, default=0.4)
    p.add_argument("--p-init", type=float, default=0.15)
    p.add_argument("--grid", type=int, default=16)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--progress", action="store_true")
    p.add_argument("--out", default="outputs/lensing_pixel_design")
    main(p.parse_args())
