r"""jaxdm's lensing simulator against lenstronomy on identical inputs (float64).

Two steps, because lenstronomy is never a jaxdm dependency:

1. In a venv with lenstronomy (``python3 -m venv /work/venv-lenstronomy &&
   /work/venv-lenstronomy/bin/pip install lenstronomy==1.14.1``)::

       /work/venv-lenstronomy/bin/python benchmarks/lensing_vs_lenstronomy.py \\
           peer outputs/lenstronomy_ref.npz

   evaluates lenstronomy's deflections, convergences and potentials per profile,
   its elliptical Sersic, its Gaussian PSF filter and one rendered scene.
2. In jaxdm's venv::

       PYTHONPATH=. python benchmarks/lensing_vs_lenstronomy.py \\
           compare outputs/lenstronomy_ref.npz

   evaluates the same with jaxdm's default settings and with the lenstronomy
   conventions (``SersicParams(b_n="lenstronomy", r_min=1e-4)``,
   ``GaussianPSF(sampling="center")``, ``ObservationConfig(boundary="nearest")``)
   and prints the table of maximum differences (docs/validation.md (lensing section)).

Metric: max |jaxdm - lenstronomy| / max |lenstronomy| over the points or pixels
("relative to the peak"). Potentials are compared after removing the mean
difference (a potential is defined up to a constant) where stated.
"""

import argparse
import sys

import numpy as np

RNG = np.random.default_rng(7)
PTS = RNG.uniform(-2.0, 2.0, (2, 400))

# (name, lenstronomy model, lenstronomy kwargs, jaxdm class name, jaxdm kwargs)
KS, TS = 0.3, 0.7  # NFW / tNFW kappa_s, theta_s [arcsec]
ALPHA_RS = 4 * KS * TS * (1 + np.log(0.5))  # lenstronomy's alpha_Rs (untruncated)


def _e1e2(q, phi):
    e = (1 - q) / (1 + q)
    return e * np.cos(2 * phi), e * np.sin(2 * phi)


E1, E2 = _e1e2(0.7, 0.4)
PROFILES = [
    (
        "SIS",
        "SIS",
        dict(theta_E=1.1, center_x=0.05, center_y=-0.1),
        "SISParams",
        dict(theta_e=1.1, x0=0.05, y0=-0.1),
    ),
    (
        "SIE",
        "SIE",
        dict(theta_E=1.1, e1=E1, e2=E2, center_x=0.05, center_y=-0.1),
        "SIEParams",
        dict(theta_e=1.1, q=0.7, phi=0.4, x0=0.05, y0=-0.1),
    ),
    (
        "EPL",
        "EPL",
        dict(theta_E=1.0, gamma=2.2, e1=E1, e2=E2, center_x=0.05, center_y=-0.1),
        "EPLParams",
        dict(theta_e=1.0, gamma=2.2, q=0.7, phi=0.4, x0=0.05, y0=-0.1),
    ),
    (
        "NFW",
        "NFW",
        dict(Rs=TS, alpha_Rs=ALPHA_RS, center_x=0.1, center_y=-0.2),
        "NFWParams",
        dict(kappa_s=KS, theta_s=TS, x0=0.1, y0=-0.2),
    ),
    (
        "TNFW",
        "TNFW",
        dict(Rs=TS, alpha_Rs=ALPHA_RS, r_trunc=4 * TS, center_x=0.1, center_y=-0.2),
        "TNFWParams",
        dict(kappa_s=KS, theta_s=TS, tau=4.0, x0=0.1, y0=-0.2),
    ),
    (
        "SHEAR",
        "SHEAR",
        dict(gamma1=0.03, gamma2=-0.02, ra_0=0.0, dec_0=0.0),
        "ShearParams",
        dict(gamma1=0.03, gamma2=-0.02),
    ),
    (
        "POINT_MASS",
        "POINT_MASS",
        dict(theta_E=0.5, center_x=0.05, center_y=-0.1),
        "PointMassParams",
        dict(theta_e=0.5, x0=0.05, y0=-0.1),
    ),
]
SERSICS = [  # (amp, R_sersic, n, q, phi, x0, y0)
    (3.0, 0.3, 0.5, 0.8, 0.2, 0.1, 0.0),
    (3.0, 0.3, 1.0, 0.6, -0.3, 0.0, 0.1),
    (2.0, 0.5, 4.0, 0.7, 0.9, 0.0, 0.0),
]
# The scene: SIE + shear + one tNFW subhalo, Sersic source, Sersic lens light
# (flux at the image edge, so the convolution boundary matters), Gaussian PSF.
N_PIX, PIX, SS, FWHM = 24, 0.08, 2, 0.15
SRC = (20.0, 0.2, 2.5, 0.7, -0.5, 0.06, 0.08)
LL = (2.0, 0.6, 4.0, 0.8, 0.3, 0.0, 0.0)
MACRO = dict(theta_e=1.0, q=0.75, phi=0.4, x0=0.02, y0=-0.03, g1=0.03, g2=-0.02)
SUB = dict(kappa_s=0.2, theta_s=0.1, tau=5.0, x0=0.7, y0=0.6)
PSF_FWHMS = (0.1, 0.15, 0.3)


def peer(out):
    import lenstronomy
    from lenstronomy.Data.imaging_data import ImageData
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel
    from scipy import ndimage

    x, y = PTS
    res = {"version": np.array(lenstronomy.__version__)}
    for name, model, kw, _, _ in PROFILES:
        lm = LensModel([model])
        ax, ay = lm.alpha(x, y, [kw])
        res[f"{name}/alpha"] = np.stack([ax, ay])
        res[f"{name}/kappa"] = lm.kappa(x, y, [kw])
        res[f"{name}/psi"] = lm.potential(x, y, [kw])
    light = LightModel(["SERSIC_ELLIPSE"])
    for i, (amp, r, n, q, phi, x0, y0) in enumerate(SERSICS):
        e1, e2 = _e1e2(q, phi)
        kw = dict(
            amp=amp, R_sersic=r, n_sersic=n, e1=e1, e2=e2, center_x=x0, center_y=y0
        )
        # the points plus the centre itself (where the R floor acts)
        res[f"sersic{i}"] = light.surface_brightness(
            np.append(x, x0), np.append(y, y0), [kw]
        )
    for f in PSF_FWHMS:
        sigma = f / (2 * np.sqrt(2 * np.log(2))) / PIX
        delta = np.zeros((61, 61))
        delta[30, 30] = 1.0
        res[f"psf{f}"] = ndimage.gaussian_filter(
            delta, sigma, mode="constant", truncate=5.0
        )
    res["scene"] = _peer_scene(ImageData, PSF, ImageModel, LensModel, LightModel)
    np.savez(out, **res)
    print(f"lenstronomy {lenstronomy.__version__}: wrote {out}")


def _peer_scene(ImageData, PSF, ImageModel, LensModel, LightModel):
    ra0 = -(N_PIX - 1) / 2 * PIX
    data = ImageData(
        image_data=np.zeros((N_PIX, N_PIX)),
        ra_at_xy_0=ra0,
        dec_at_xy_0=ra0,
        transform_pix2angle=np.eye(2) * PIX,
    )
    psf = PSF(psf_type="GAUSSIAN", fwhm=FWHM, truncation=5, pixel_size=PIX)
    e1, e2 = _e1e2(MACRO["q"], MACRO["phi"])
    alpha_rs = 4 * SUB["kappa_s"] * SUB["theta_s"] * (1 + np.log(0.5))
    kw_lens = [
        dict(
            theta_E=MACRO["theta_e"],
            e1=e1,
            e2=e2,
            center_x=MACRO["x0"],
            center_y=MACRO["y0"],
        ),
        dict(gamma1=MACRO["g1"], gamma2=MACRO["g2"], ra_0=0.0, dec_0=0.0),
        dict(
            Rs=SUB["theta_s"],
            alpha_Rs=alpha_rs,
            r_trunc=SUB["tau"] * SUB["theta_s"],
            center_x=SUB["x0"],
            center_y=SUB["y0"],
        ),
    ]

    def kw_light(p):
        amp, r, n, q, phi, x0, y0 = p
        se1, se2 = _e1e2(q, phi)
        return [
            dict(
                amp=amp,
                R_sersic=r,
                n_sersic=n,
                e1=se1,
                e2=se2,
                center_x=x0,
                center_y=y0,
            )
        ]

    model = ImageModel(
        data,
        psf,
        LensModel(["SIE", "SHEAR", "TNFW"]),
        LightModel(["SERSIC_ELLIPSE"]),
        LightModel(["SERSIC_ELLIPSE"]),
        kwargs_numerics=dict(supersampling_factor=SS),
    )
    return model.image(kw_lens, kw_light(SRC), kw_light(LL))


def jaxdm_scene(L, matched: bool, *, sersic=None, psf=None, boundary=None):
    """The scene above in jaxdm, default or lenstronomy conventions.

    ``sersic``/``psf``/``boundary`` override ``matched`` for one convention.
    """
    m_sersic = matched if sersic is None else sersic
    m_psf = matched if psf is None else psf
    m_boundary = matched if boundary is None else boundary
    conv = dict(b_n="lenstronomy", r_min=1e-4) if m_sersic else {}

    def sersic(p):
        amp, r, n, q, phi, x0, y0 = p
        return L.SersicParams(
            amplitude=amp, r_e=r, n=n, q=q, phi=phi, x0=x0, y0=y0, **conv
        )

    params = L.LensingParams(
        lens=(
            L.SIEParams(
                theta_e=MACRO["theta_e"],
                q=MACRO["q"],
                phi=MACRO["phi"],
                x0=MACRO["x0"],
                y0=MACRO["y0"],
            ),
            L.ShearParams(gamma1=MACRO["g1"], gamma2=MACRO["g2"]),
            L.TNFWParams(**SUB),
        ),
        source=(sersic(SRC),),
        lens_light=(sersic(LL),),
    )
    psf = L.GaussianPSF(fwhm=FWHM, sampling="center" if m_psf else "integrated")
    cfg = L.ObservationConfig(
        n_pix=N_PIX,
        pixel_scale=PIX,
        supersampling=SS,
        psf=psf,
        boundary="nearest" if m_boundary else "zero",
    )
    return np.asarray(L.expected_image(params, cfg))


def compare(ref_file):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from scipy.special import gammaincinv  # noqa: F401

    from jaxdm.simulators import lensing as L

    ref = np.load(ref_file)
    x, y = jnp.asarray(PTS[0]), jnp.asarray(PTS[1])

    def rel(a, b):
        a, b = np.asarray(a), np.asarray(b)
        return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))

    rows = []
    for name, _, _, cls, kw in PROFILES:
        p = getattr(L, cls)(**kw)
        a = np.stack(L.deflection(x, y, p))
        k = np.asarray(L.convergence(x, y, p))
        psi = np.asarray(L.potential(x, y, p))
        dpsi = psi - ref[f"{name}/psi"]
        offset = float(np.mean(dpsi))
        rows.append((f"{name} deflection", rel(a, ref[f"{name}/alpha"]), None))
        if name in ("SHEAR", "POINT_MASS"):  # zero convergence (delta for a point)
            rows.append(
                (
                    f"{name} convergence (both 0)",
                    float(np.max(np.abs(k - ref[f"{name}/kappa"]))),
                    None,
                )
            )
        else:
            rows.append((f"{name} convergence", rel(k, ref[f"{name}/kappa"]), None))
        rows.append((f"{name} potential (raw)", rel(psi, ref[f"{name}/psi"]), None))
        rows.append(
            (
                f"{name} potential (constant {offset:.3g} removed)",
                rel(psi - offset, ref[f"{name}/psi"]),
                None,
            )
        )
    for i, (amp, r, n, q, phi, x0, y0) in enumerate(SERSICS):
        xs, ys = jnp.append(x, x0), jnp.append(y, y0)
        base = dict(amplitude=amp, r_e=r, n=n, q=q, phi=phi, x0=x0, y0=y0)
        d = L.sersic(xs, ys, L.SersicParams(**base))
        m = L.sersic(xs, ys, L.SersicParams(**base, b_n="lenstronomy", r_min=1e-4))
        rows.append(
            (
                f"Sersic n={n} (incl. centre)",
                rel(d, ref[f"sersic{i}"]),
                rel(m, ref[f"sersic{i}"]),
            )
        )
        rows.append(
            (
                f"Sersic n={n} (centre excluded)",
                rel(d[:-1], ref[f"sersic{i}"][:-1]),
                rel(m[:-1], ref[f"sersic{i}"][:-1]),
            )
        )
    for f in PSF_FWHMS:
        kr = ref[f"psf{f}"]
        out = []
        for sampling in ("integrated", "center"):
            k = np.asarray(L.GaussianPSF(fwhm=f, sampling=sampling).kernel(PIX))
            h = k.shape[0] // 2
            full = np.zeros_like(kr)
            c = kr.shape[0] // 2
            full[c - h : c + h + 1, c - h : c + h + 1] = k
            out.append(rel(full, kr))
        rows.append((f'Gaussian PSF kernel FWHM {f}" ({PIX}"/pixel)', *out))
    img_ref = ref["scene"]
    d, m = jaxdm_scene(L, False), jaxdm_scene(L, True)
    rows.append(
        (
            "Image (SIE+shear+tNFW, Sersic source and lens light, PSF)",
            rel(d, img_ref),
            rel(m, img_ref),
        )
    )
    # one convention at a time, to attribute the default-settings difference
    for what in ("sersic", "psf", "boundary"):
        only = jaxdm_scene(L, False, **{what: True})
        allbut = jaxdm_scene(L, True, **{what: False})
        rows.append(
            (
                f"Image, only `{what}` matched / all but `{what}` matched",
                rel(only, img_ref),
                rel(allbut, img_ref),
            )
        )
    print(f"lenstronomy {ref['version']}, jax {jax.__version__}, float64")
    print("| quantity | default settings | matched settings |")
    print("|---|---|---|")
    for name, a, b in rows:
        bs = "same" if b is None else f"{b:.1e}"
        print(f"| {name} | {a:.1e} | {bs} |")
    return d, m, img_ref


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("mode", choices=["peer", "compare"])
    ap.add_argument("file")
    a = ap.parse_args()
    if a.mode == "peer":
        peer(a.file)
    else:
        compare(a.file)
    sys.exit(0)
