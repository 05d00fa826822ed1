"""Lensing image throughput: jaxdm vs lenstronomy vs jaxtronomy (same image, one run).

100x100 pixels at 0.05"/pixel, SIE + external shear + elliptical Sersic source,
Gaussian PSF (FWHM 0.1"), supersampling 2, with and without 50 tNFW subhalos.
The PSF kernel is jaxdm's pixel-integrated Gaussian, handed to the peers as a
'PIXEL' kernel so all three render the same model. Float32 for jaxdm and jaxtronomy
(jaxtronomy defaults to float64; it is run with x64 off), lenstronomy in numpy float64.

Every parameter varies across the batch (subhalo positions included), so nothing is
hoisted out of a vmapped batch. Run in the benchmark venv (peers are never jaxdm
dependencies; e.g. `pip install jax==0.10.2 lenstronomy==1.14.1 jaxtronomy==0.1.5`):
    /work/bench-lensing/bin/python benchmarks/lensing_throughput.py --batch 256
With ``--jaxdm-only`` the peers are skipped (any venv with jaxdm); the cost of the
traced parameter checks was measured so, against a worktree of the commit before.
"""

import argparse
import os
import time

import numpy as np


def _ell(q, phi):
    e = (1 - q) / (1 + q)
    return e * np.cos(2 * phi), e * np.sin(2 * phi)


def main(args):
    # --devices N splits batched calls (jaxdm's and jaxtronomy's) over N XLA CPU
    # devices. One device was fastest for both on the 2-core CI machine (XLA:CPU
    # already spreads a large fused loop over the cores).
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "")
        + f" --xla_force_host_platform_device_count={args.devices}"
    )
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding, PartitionSpec

    mesh = jax.sharding.Mesh(np.array(jax.devices()[: args.devices]), ("b",))
    shard = NamedSharding(mesh, PartitionSpec("b"))

    from jaxdm.simulators import lensing as L

    n_pix, pix = 100, 0.05
    psf = L.GaussianPSF(fwhm=0.1)
    cfg = L.ObservationConfig(n_pix=n_pix, pixel_scale=pix, supersampling=2, psf=psf)
    kernel = np.asarray(psf.kernel(pix), np.float64)
    rng = np.random.default_rng(args.seed)
    n_sub = 50
    # Subhalos: tNFW from M200 in [1e7, 1e9] M_sun at z=0.5, source z=1, tau=6.
    m = 10 ** rng.uniform(7, 9, n_sub)
    sub_xy = rng.uniform(-2.0, 2.0, (2, n_sub))
    c = L.concentration_duffy08(m, 0.5)
    tn = L.tnfw_params_from_mass(m, c, 6.0, 0.5, 1.0, x0=sub_xy[0], y0=sub_xy[1])
    tn = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32) * jnp.ones(n_sub), tn)
    macro = dict(theta_e=1.2, q=0.75, phi=0.4, x0=0.02, y0=-0.03, g1=0.03, g2=-0.02)
    src = dict(amp=20.0, r_e=0.25, n=4.0, q=0.7, phi=-0.5, x0=0.06, y0=0.08)
    thetas = 1.2 + 0.01 * np.arange(args.batch) / args.batch  # a batch of lenses
    dq = 1e-3 * np.arange(args.batch) / args.batch  # per-image parameter offsets

    def params(theta_e, with_subs, d=0.0):
        # Every parameter varies with d across the batch (d = 0 for image 0, the one
        # compared with the peers), subhalo positions included, so XLA can hoist
        # nothing out of the vmapped batch: each image costs a full render.
        lens = [
            L.SIEParams(
                theta_e=theta_e,
                q=macro["q"] + 5 * d,
                phi=macro["phi"] + 10 * d,
                x0=macro["x0"] + d,
                y0=macro["y0"] - d,
            ),
            L.ShearParams(gamma1=macro["g1"] + d, gamma2=macro["g2"] - d),
        ]
        if with_subs:
            prof = eqx.tree_at(
                lambda t: (t.x0, t.y0), tn, (tn.x0 + 10 * d, tn.y0 - 10 * d)
            )
            lens.append(L.SubhaloPopulation(profile=prof, mask=jnp.ones(n_sub)))
        s = L.SersicParams(
            amplitude=src["amp"] * (1 + d),
            r_e=src["r_e"] * (1 + d),
            n=src["n"] + d,
            q=src["q"] - 5 * d,
            phi=src["phi"] + 10 * d,
            x0=src["x0"] + d,
            y0=src["y0"] - d,
        )
        return jax.tree.map(
            lambda a: jnp.asarray(a, jnp.float32),
            L.LensingParams(lens=tuple(lens), source=(s,)),
        )

    # --- peers' keyword lists (identical model)
    e1, e2 = _ell(macro["q"], macro["phi"])
    se1, se2 = _ell(src["q"], src["phi"])
    # lenstronomy's TNFW alpha_Rs is the deflection at Rs of the *untruncated* NFW
    # with the same rho_s: 4 kappa_s theta_s (1 + ln(1/2)).
    alpha_rs = np.asarray(4 * tn.kappa_s * tn.theta_s * (1 + np.log(0.5)))

    def kw_lens(theta_e, with_subs):
        kw = [
            dict(
                theta_E=theta_e,
                e1=e1,
                e2=e2,
                center_x=macro["x0"],
                center_y=macro["y0"],
            ),
            dict(gamma1=macro["g1"], gamma2=macro["g2"], ra_0=0.0, dec_0=0.0),
        ]
        if with_subs:
            kw += [
                dict(
                    Rs=float(tn.theta_s[i]),
                    alpha_Rs=float(alpha_rs[i]),
                    r_trunc=float(tn.theta_s[i] * tn.tau[i]),
                    center_x=float(tn.x0[i]),
                    center_y=float(tn.y0[i]),
                )
                for i in range(n_sub)
            ]
        return kw

    kw_src = [
        dict(
            amp=src["amp"],
            R_sersic=src["r_e"],
            n_sersic=src["n"],
            e1=se1,
            e2=se2,
            center_x=src["x0"],
            center_y=src["y0"],
        )
    ]
    ra0 = -(n_pix - 1) / 2 * pix
    kw_data = dict(
        image_data=np.zeros((n_pix, n_pix)),
        ra_at_xy_0=ra0,
        dec_at_xy_0=ra0,
        transform_pix2angle=np.eye(2) * pix,
        exposure_time=1000.0,
        background_rms=0.01,
    )
    kw_num = dict(supersampling_factor=2)

    def peer_model(pkg, with_subs):
        import importlib

        ImageData = importlib.import_module(f"{pkg}.Data.imaging_data").ImageData
        ImageModel = importlib.import_module(f"{pkg}.ImSim.image_model").ImageModel
        LensModel = importlib.import_module(f"{pkg}.LensModel.lens_model").LensModel
        LightModel = importlib.import_module(f"{pkg}.LightModel.light_model").LightModel
        from lenstronomy.Data.psf import PSF

        lm = ["SIE", "SHEAR"] + (["TNFW"] * n_sub if with_subs else [])
        try:
            psf_c = importlib.import_module(f"{pkg}.Data.psf").PSF
        except ImportError:
            psf_c = PSF
        return ImageModel(
            ImageData(**kw_data),
            psf_c(psf_type="PIXEL", kernel_point_source=kernel),
            LensModel(lm),
            LightModel(["SERSIC_ELLIPSE"]),
            kwargs_numerics=kw_num,
        )

    print(f"jax {jax.__version__}, devices {jax.devices()}, batch {args.batch}")
    rows = []
    for with_subs in (False, True):
        label = "50 tNFW subhalos" if with_subs else "no subhalos"
        batch = jax.vmap(lambda t, d: params(t, with_subs, d))(
            jnp.asarray(thetas, jnp.float32), jnp.asarray(dq, jnp.float32)
        )
        batch = jax.device_put(batch, shard)  # one half of the batch per core
        f = jax.jit(jax.vmap(lambda p: L.expected_image(p, cfg)))
        t0 = time.perf_counter()
        f(batch).block_until_ready()
        compile_s = time.perf_counter() - t0
        best = np.inf
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = f(batch).block_until_ready()
            best = min(best, time.perf_counter() - t0)
        ours = np.asarray(out[0], np.float64)
        r_jaxdm = args.batch / best
        if args.jaxdm_only:
            rows.append((label, r_jaxdm, compile_s))
            print(f"[{label}] jaxdm {r_jaxdm:.1f} img/s (compile {compile_s:.1f} s)")
            continue

        import lenstronomy

        lm = peer_model("lenstronomy", with_subs)
        n_l = args.n_peer
        t0 = time.perf_counter()
        for i in range(n_l):
            im_l = lm.image(kw_lens(thetas[i], with_subs), kw_src)
        r_len = n_l / (time.perf_counter() - t0)
        im_l = lm.image(kw_lens(thetas[0], with_subs), kw_src)

        import jaxtronomy

        jm = peer_model("jaxtronomy", with_subs)
        jf = jax.jit(lambda kl: jm.image(kwargs_lens=kl, kwargs_source=kw_src))
        t0 = time.perf_counter()
        im_j = np.asarray(jf(kw_lens(float(thetas[0]), with_subs)))
        jcompile = time.perf_counter() - t0
        kls = [kw_lens(float(thetas[i]), with_subs) for i in range(args.n_peer)]
        # jaxtronomy batched: vmap over the Einstein radius inside one jitted call.
        kl0 = kw_lens(float(thetas[0]), with_subs)

        def one(te, de1, dx):
            # Vary lens and source per image so nothing is hoisted out of the batch.
            kl = [dict(kl0[0], theta_E=te, e1=e1 + de1), kl0[1]] + [
                dict(k, center_x=k["center_x"] + 10 * dx, center_y=k["center_y"] - dx)
                for k in kl0[2:]
            ]
            ks = [dict(kw_src[0], center_x=src["x0"] + dx)]
            return jm.image(kwargs_lens=kl, kwargs_source=ks)

        jb = jax.jit(jax.vmap(one))
        tb = jax.device_put(
            (jnp.asarray(thetas), jnp.asarray(dq), jnp.asarray(dq)), shard
        )
        jb(*tb).block_until_ready()
        bestj = np.inf
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            jb(*tb).block_until_ready()
            bestj = min(bestj, time.perf_counter() - t0)
        r_jxb = args.batch / bestj
        t0 = time.perf_counter()
        for kl in kls:
            jf(kl).block_until_ready()
        r_jx1 = len(kls) / (time.perf_counter() - t0)
        peak = np.max(np.abs(im_l))
        d_l = np.max(np.abs(ours - im_l)) / peak
        d_j = np.max(np.abs(ours - im_j)) / peak
        rows.append(
            (label, r_jaxdm, compile_s, r_len, r_jxb, r_jx1, jcompile, d_l, d_j)
        )
        print(
            f"[{label}] jaxdm {r_jaxdm:.0f} img/s (compile {compile_s:.1f} s) | "
            f"lenstronomy {lenstronomy.__version__} {r_len:.1f} img/s | jaxtronomy "
            f"{jaxtronomy.__version__} batched {r_jxb:.0f} img/s, per-call "
            f"jit {r_jx1:.0f}"
            f" img/s (compile {jcompile:.1f} s) | ratio vs lenstronomy "
            f"{r_jaxdm / r_len:.1f}x, vs jaxtronomy(best) "
            f"{r_jaxdm / max(r_jxb, r_jx1):.1f}x"
            f" | max |diff|/peak: lenstronomy {d_l:.2e}, jaxtronomy {d_j:.2e}"
        )
    return rows


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--n-peer", type=int, default=30, dest="n_peer")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--devices", type=int, default=1, help="XLA CPU devices (1 was fastest here)"
    )
    p.add_argument(
        "--jaxdm-only",
        action="store_true",
        dest="jaxdm_only",
        help="time jaxdm only (no peers; runs in jaxdm's own venv)",
    )
    main(p.parse_args())
