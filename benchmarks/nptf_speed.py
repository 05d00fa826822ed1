"""NPTF speed: time per likelihood evaluation and per full NUTS fit, vs references.

Problem: a simulated Cartesian inner-Galaxy map (``jaxdm.simulators.gamma``, one
energy bin 2-20 GeV, |b| > 2 deg) fitted with the 11-parameter model of NPTFit's
Galactic Centre example (Mishra-Sharma, Rodd & Safdi 2017, arXiv:1612.03173, Example
7 of its documentation): three Poisson templates (isotropic, pi0 gas, gNFW^2 dark
matter) and two point-source populations (disk and NFW^2) with a broken power law
each (log10 A, n1, n2, log10 F_b).

Compared, on the same pixels, templates, PSF correction and parameter point:

* ``jaxdm.fits.nptf_log_likelihood`` under ``jax.jit`` (value, and value+gradient);
* NPTFit's Cython likelihood ``NPTF.ll`` when NPTFit imports in /work/venv-nptfit
  (run in a subprocess, since that venv has no JAX); otherwise this is reported;
* a NumPy/SciPy reference of the same algorithm written below (same quadrature, the
  recursion vectorised over pixels with a Python loop over counts).

Rounds are interleaved; medians are reported. The full fit (:func:`full_fit`) is a
MAP start, a Laplace dense mass matrix and vectorized NUTS chains on the same model,
timed end to end with compilation (the batched value + gradient is compiled once and
serves all three: ``jaxdm.fits.callback_potential``); NPTFit's documented cost of
its Example 7 (nlive=100 MultiNest) is "roughly one hour" on one core, and the
script also prints the nested-sampling floor nlive x KL(posterior || prior)
evaluations at NPTFit's per-evaluation time measured in the same run.

    python benchmarks/nptf_speed.py --rounds 5
    python benchmarks/nptf_speed.py --fit-only --no-progress   # the full fit alone
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

NPTFIT_PY = "/work/venv-nptfit/bin/python"
LIBMVEC = "/lib/x86_64-linux-gnu/libmvec.so.1"


def nptfit_worker(path):
    """Time NPTFit's likelihood on the saved problem (runs inside venv-nptfit).

    NPTFit 0.1.1 (PyPI) predates NumPy 1.24 and Python 3 packaging: the shims below
    restore ``np.float``/``np.int``, put the package folder on ``sys.path`` for its
    implicit relative Cython imports, stand in for ``pymultinest`` (only the
    likelihood is used, not the MultiNest scan) and make the per-model parameter
    lists arrays (its ``make_ll`` multiplies them by floats). The likelihood code
    itself is NPTFit's. Run with ``LD_PRELOAD=libmvec.so.1`` (its -ffast-math build
    needs the vector math library).
    """
    import importlib.util
    import types

    np.float = float
    np.int = int
    sys.modules.setdefault("pymultinest", types.ModuleType("pymultinest"))
    sys.path.insert(0, os.path.dirname(importlib.util.find_spec("NPTFit").origin))
    from NPTFit import nptfit

    d = {k: (v.astype(np.float64) if v.dtype.kind == "f" else v)
         for k, v in np.load(path).items()}  # fmt: skip
    n = nptfit.NPTF(tag="bench", work_dir=os.path.dirname(path))
    n.load_data(d["counts"].astype(np.int32), d["exposure"])
    n.load_mask(np.zeros(d["counts"].size, bool))
    for name in ("iso", "pi0", "dm"):
        n.add_template(d[name], name)
        n.add_poiss_model(name, name, [0, 10], False)
    for name in ("disk", "nfw"):
        n.add_template(d["ps_" + name], "ps_" + name, units="PS")
        n.add_non_poiss_model(
            "ps_" + name,
            ["A_" + name, "n1_" + name, "n2_" + name, "Sb_" + name],
            [[-10, 10], [2.05, 30], [-2, 1.95], [0.05, 100]],
            [True, False, False, False],
        )
    n.configure_for_scan(
        f_ary=d["f_ary"], df_rho_div_f_ary=d["df_rho_div_f_ary"], nexp=1
    )
    orig = n.model_parameters_nbreak
    n.model_parameters_nbreak = lambda tp: [np.asarray(x, float) for x in orig(tp)]
    theta = np.asarray(d["theta_nptfit"], float)
    ll = n.ll(theta)
    times = []
    for _ in range(int(d["reps"])):
        t = time.perf_counter()
        n.ll(theta)
        times.append(time.perf_counter() - t)
    print(json.dumps({"ll": float(ll), "times": times}))


def numpy_reference(counts, mu, pops, wts, expo, psf_f, psf_w, n_nodes=32):
    """NumPy/SciPy NPTF log-likelihood: same quadrature and log-space recursion."""
    from scipy.special import gammaln, logsumexp

    k_max = int(counts.max())
    u, w = np.polynomial.legendre.leggauss(n_nodes)
    u, w = 0.5 * (u + 1), 0.5 * w
    n_pix = mu.size
    log_x = np.full((n_pix, k_max), -np.inf)
    log_x[:, 0] = np.log(mu)
    log_tot = np.log(mu)
    m = np.arange(1, k_max + 1)
    for (norm, ind, brk), wp in zip(pops, wts, strict=True):
        n1, n2 = ind
        fb = brk[0]
        # segment 1: [fb, inf) index n1; segment 2: (0, fb] index n2 (units of fb)
        segs = [(1.0, np.inf, n1, 1.0), (0.0, 1.0, n2, 1.0)]
        fl, lw = [], []
        for lo, hi, n, c in segs:
            q = 1 - n
            a = 0.0 if lo == 0 else lo**q
            b = 0.0 if np.isinf(hi) else hi**q
            count = c * (b - a) / q
            fl.append(fb * (a + u * (b - a)) ** (1 / q))
            lw.append(np.log(norm * fb * count) + np.log(w))
        fl, lw = np.concatenate(fl), np.concatenate(lw)
        lam = expo * psf_f[:, None] * fl[None, :]
        base = lw[None, :] + np.log(psf_w)[:, None]
        lp = (
            m[:, None, None] * np.log(lam)[None]
            - lam[None]
            - gammaln(m + 1)[:, None, None]
        )
        lx = logsumexp(lp + base[None], axis=(1, 2))
        lt = logsumexp(base + np.log(-np.expm1(-lam)))
        lwp = np.log(wp)[:, None]
        log_x = np.logaddexp(log_x, lwp + lx[None, :])
        log_tot = np.logaddexp(log_tot, lwp[:, 0] + lt)
    logp = np.full((n_pix, k_max + 1), -np.inf)
    logp[:, 0] = -np.exp(log_tot)
    a = np.log(m)[None, :] + log_x
    for k in range(1, k_max + 1):
        terms = a[:, :k] + logp[:, k - 1 :: -1][:, :k]
        logp[:, k] = logsumexp(terms, axis=1) - np.log(k)
    return float(np.take_along_axis(logp, counts[:, None].astype(int), 1).sum())


def build(npix, seed):
    import jax
    import jax.numpy as jnp

    from jaxdm import fits
    from jaxdm.simulators import gamma as g

    base = dict(geometry="cartesian", npix=npix, half_width_deg=20.0,
                energy_edges=(2.0, 20.0), n_los=32, max_sources=3000)  # fmt: skip
    truth = g.GammaParams(
        dm_sigma_v=0.5, iso_norm=2e-8, bubbles_norm=0.0, pi0_norm=2e-7, ic_norm=0.0,
        ps_norm=4e11, ps_indices=(10.0, -0.5), ps_breaks=(1e-9,),
    )  # fmt: skip
    cfg_nfw = g.GammaConfig(ps_template="nfw2", **base)
    cfg_disk = g.GammaConfig(ps_template="disk", **base)
    sim = g.simulate(jax.random.key(seed), truth, cfg_nfw)
    inp = fits.nptf_inputs(truth, cfg_nfw, names=("iso", "pi0", "dm"))
    inp_disk = fits.nptf_inputs(truth, cfg_disk, names=("iso",))
    counts = np.asarray(sim.counts[0]).ravel()[inp.pixels]
    wts = jnp.concatenate([inp_disk.source_fractions, inp.source_fractions])
    return truth, counts, inp, wts


def make_loglike(counts, inp, wts, n_nodes, method="auto"):
    import jax.numpy as jnp

    from jaxdm import fits

    k_max = int(counts.max())
    counts_j = jnp.asarray(counts, jnp.float32)
    tm = jnp.stack([inp.templates[k] for k in ("iso", "pi0", "dm")])

    def loglike(theta):
        mu = theta[:3] @ tm
        pops = [
            fits.PointSourcePopulation(
                10.0 ** theta[3 + 4 * i],
                theta[4 + 4 * i : 6 + 4 * i],
                (10.0 ** theta[6 + 4 * i])[None],
            )
            for i in range(2)
        ]
        return fits.nptf_log_likelihood(
            counts_j, mu, pops, wts, inp.exposure, inp.psf, k_max=k_max,
            n_nodes=n_nodes, method=method,
        )  # fmt: skip

    return loglike, tm


def main(args):
    import jax
    import jax.numpy as jnp

    truth, counts, inp, wts = build(args.npix, args.seed)
    loglike, tm = make_loglike(counts, inp, wts, args.n_nodes, args.method)
    if args.fit_only:  # the full fit alone (its own timing starts inside)
        full_fit(args, counts, inp, wts, tm)
        return
    theta = jnp.asarray(
        [2e-8, 2e-7, 0.5, 11.0, 10.0, -0.5, -9.0, 12.0, 10.0, -0.5, -9.0]
    )
    print(f"pixels {counts.size}, total counts {counts.sum():.0f}, max {counts.max()}")
    f_val = jax.jit(loglike)
    f_grad = jax.jit(jax.value_and_grad(loglike))
    t0 = time.perf_counter()
    ll_jax = float(f_val(theta).block_until_ready())
    t_compile = time.perf_counter() - t0
    f_grad(theta)[0].block_until_ready()

    mu = np.asarray(theta[:3] @ tm, float)
    pops = [
        (10.0 ** float(theta[3 + 4 * i]), np.asarray(theta[4 + 4 * i : 6 + 4 * i]),
         np.asarray([10.0 ** float(theta[6 + 4 * i])]))
        for i in range(2)
    ]  # fmt: skip
    psf_f, psf_w = np.asarray(inp.psf.fractions), np.asarray(inp.psf.weights)
    expo = float(np.mean(inp.exposure))
    wts_np = np.asarray(wts, float)

    nptfit_ok = False
    npz = os.path.abspath(os.path.join("outputs", "nptf_speed_problem.npz"))
    if os.path.exists(NPTFIT_PY):
        os.makedirs("outputs", exist_ok=True)
        # NPTFit: PS templates in counts per unit flux; Sb in counts; A per counts.
        e = inp.exposure
        th_n = [float(theta[0]), float(theta[1]), float(theta[2])]
        for i in range(2):
            a, n1 = 10.0 ** float(theta[3 + 4 * i]), float(theta[4 + 4 * i])
            n2, fb = float(theta[5 + 4 * i]), 10.0 ** float(theta[6 + 4 * i])
            sb = fb * expo
            # NPTFit: dN/dS = A T_p (S/S_b)^-n per pixel with T of unit ROI mean.
            th_n += [np.log10(a / (expo * counts.size)), n1, n2, sb]
        np.savez(
            npz, counts=counts.astype(np.int32), exposure=e,
            iso=np.asarray(tm[0]), pi0=np.asarray(tm[1]), dm=np.asarray(tm[2]),
            ps_disk=wts_np[0] / wts_np[0].mean(), ps_nfw=wts_np[1] / wts_np[1].mean(),
            f_ary=psf_f, df_rho_div_f_ary=psf_w / psf_f, theta_nptfit=np.asarray(th_n),
            reps=3,
        )  # fmt: skip
        probe = subprocess.run(
            [NPTFIT_PY, "-c", "import NPTFit"], capture_output=True, text=True
        )
        nptfit_ok = probe.returncode == 0
        if not nptfit_ok:
            print("NPTFit does not import in /work/venv-nptfit:", probe.stderr[-300:])
    else:
        print("NPTFit venv /work/venv-nptfit not found: NumPy reference only.")

    rows = {"jax_value": [], "jax_value_grad": [], "numpy_ref": [], "nptfit": []}
    ll_np = ll_nptfit = None
    for r in range(args.rounds):
        t = time.perf_counter()
        f_val(theta).block_until_ready()
        rows["jax_value"].append(time.perf_counter() - t)
        t = time.perf_counter()
        f_grad(theta)[0].block_until_ready()
        rows["jax_value_grad"].append(time.perf_counter() - t)
        t = time.perf_counter()
        ll_np = numpy_reference(counts, mu, pops, wts_np, expo, psf_f, psf_w,
                                args.n_nodes)  # fmt: skip
        rows["numpy_ref"].append(time.perf_counter() - t)
        if nptfit_ok:
            out = subprocess.run(
                [NPTFIT_PY, __file__, "--nptfit-worker", npz],
                capture_output=True, text=True, cwd=os.path.dirname(npz),
                env=dict(os.environ, LD_PRELOAD=LIBMVEC),
            )  # fmt: skip
            if out.returncode != 0:
                print("NPTFit worker failed:", out.stderr[-500:])
                nptfit_ok = False
            else:
                res = json.loads(out.stdout.strip().splitlines()[-1])
                ll_nptfit = res["ll"]
                rows["nptfit"].append(float(np.median(res["times"])))
        print(f"round {r}: " + ", ".join(
            f"{k} {v[-1] * 1e3:.1f} ms" for k, v in rows.items() if v))  # fmt: skip
    med = {k: float(np.median(v)) for k, v in rows.items() if v}
    print(f"\nlog L: jax {ll_jax:.3f}, numpy ref {ll_np:.3f}"
          + (f", NPTFit {ll_nptfit:.3f}" if ll_nptfit is not None else ""))  # fmt: skip
    print(f"jit compile (value): {t_compile:.1f} s")
    for k, v in med.items():
        print(f"median {k}: {v * 1e3:.2f} ms")
    print(f"ratio numpy_ref / jax_value: {med['numpy_ref'] / med['jax_value']:.1f}x")
    if "nptfit" in med:
        print(f"ratio NPTFit / jax_value: {med['nptfit'] / med['jax_value']:.1f}x")

    if args.fit_samples > 0:
        full_fit(args, counts, inp, wts, tm, med.get("nptfit"))


# Priors of the full fit (uniform in these coordinates, NPTFit-style log priors on the
# Poisson norms). Point-source populations are parameterised by log10 of their expected
# counts in the ROI instead of log10 A: at fixed counts, n1, n2 and F_b no longer
# trade off against A (the A-F_b ridge of the raw parameterisation), and the map
# (counts, n1, n2, log F_b) -> (log A, n1, n2, log F_b) has unit Jacobian in log A,
# so the density is the same as a log-flat prior on A over the mapped region.
FIT_NAMES = (
    "log10_iso", "log10_pi0", "log10_dm",
    "log10_Nps_disk", "n1_disk", "n2_disk", "log10_Fb_disk",
    "log10_Nps_nfw", "n1_nfw", "n2_nfw", "log10_Fb_nfw",
)  # fmt: skip
FIT_LO = np.array([-9.0, -8.0, -2.0, 0.0, 3.0, -1.5, -10.5, 0.0, 3.0, -1.5, -10.5])
FIT_HI = np.array([-6.0, -5.0, 1.0, 4.7, 20.0, 1.5, -8.5, 4.7, 20.0, 1.5, -8.5])


def fit_loglike(counts, inp, wts, tm, n_nodes, method="auto"):
    """Log L of the reparameterised 11-vector (FIT_NAMES order)."""
    import jax.numpy as jnp

    from jaxdm import fits

    k_max = int(counts.max())
    counts_j = jnp.asarray(counts, jnp.float32)
    # Expected counts per unit flux of each population: sum_p w_p E_p [cm^2 s].
    expo_eff = jnp.sum(wts * jnp.asarray(inp.exposure, jnp.float32)[None, :], axis=1)

    def loglike(u):
        mu = (10.0 ** u[:3]) @ tm
        pops = []
        for i in range(2):
            n_ps, n1, n2, fb = (
                10.0 ** u[3 + 4 * i],
                u[4 + 4 * i],
                u[5 + 4 * i],
                10.0 ** u[6 + 4 * i],
            )
            # total flux = A F_b^2 (1/(n1-2) + 1/(2-n2)) (NPTFit eq. 2.3 integrated);
            # A is formed in log space (F_b^2 ~ 1e-19 overflows float32 gradients).
            log_a = (
                jnp.log(n_ps / expo_eff[i])
                - 2.0 * jnp.log(fb)
                - jnp.log(1.0 / (n1 - 2.0) + 1.0 / (2.0 - n2))
            )
            norm = jnp.exp(log_a)
            pops.append(fits.PointSourcePopulation(norm, jnp.stack([n1, n2]), fb[None]))
        return fits.nptf_log_likelihood(
            counts_j, mu, pops, wts, inp.exposure, inp.psf, k_max=k_max,
            n_nodes=n_nodes, method=method,
        )  # fmt: skip

    return loglike


def laplace_covariance(neg_post_vg, z, h=1e-2):
    """Inverse Hessian of ``neg_post`` at ``z`` by central differences of its gradient.

    ``neg_post_vg`` maps points (n, d) to values and gradients (2 d points in one
    call, run in batches of the chains by ``fits.callback_potential``). Eigenvalues of
    the symmetrised Hessian are floored at 1e-2 (a logit-space variance <= 100), so
    the result is a valid (positive-definite) inverse mass matrix even where the
    optimiser stopped short of the mode in a flat direction.
    """
    d = z.shape[0]
    e = h * np.eye(d, dtype=np.float32)
    g = np.asarray(neg_post_vg(np.concatenate([z + e, z - e]))[1], float)
    hess = ((g[:d] - g[d:]) / (2 * h)).T  # column i: d grad / d z_i
    hess = 0.5 * (hess + hess.T)
    w, v = np.linalg.eigh(hess)
    w = np.maximum(w, 1e-2)
    return (v / w) @ v.T, w


def full_fit(args, counts, inp, wts, tm, t_nptfit_eval=None):
    """End-to-end NUTS fit (compilation included): MAP, Laplace mass matrix, R-hat/ESS.

    Steps, all timed together from the first line: (1) MAP by Adam in the
    unconstrained (logit) space where NUTS moves, from ``--chains`` starts at once
    (the batched value + gradient of ``fits.callback_potential``, compiled
    once for the whole fit); (2) the Laplace covariance there (finite-difference
    Hessian, :func:`laplace_covariance`) as NUTS's dense inverse mass matrix (held fixed
    unless ``--adapt-mass``: NUTS is exact for any mass matrix, the Laplace one only
    sets its efficiency); (3) ``--chains`` chains (numpyro NUTS on the potential,
    vectorized: one batched likelihood evaluation per leapfrog step) started at
    independent draws of the Laplace approximation, ``--fit-warmup`` step-size
    adaptation steps and ``--fit-samples`` draws each.
    """
    import jax
    import jax.numpy as jnp
    from arviz_base import from_dict
    from numpyro.infer import MCMC, NUTS

    from jaxdm import fits

    loglike = fit_loglike(counts, inp, wts, tm, args.n_nodes, args.method)
    lo, hi = jnp.asarray(FIT_LO, jnp.float32), jnp.asarray(FIT_HI, jnp.float32)

    def to_u(z):  # the uniform prior's logit transform: lo + (hi - lo) sigmoid(z)
        return lo + (hi - lo) * jax.nn.sigmoid(z)

    def neg_post(z):  # -log posterior incl. the logit Jacobian (what NUTS samples)
        log_jac = -jax.nn.softplus(-z) - jax.nn.softplus(z)  # log s(z) (1 - s(z))
        return -(loglike(to_u(z)) + jnp.sum(log_jac))

    t0 = time.perf_counter()
    c0 = time.process_time()  # CPU seconds of this process (robust to machine load)
    host_vg, potential = fits.callback_potential(neg_post, 11, num_batch=args.chains)
    rng = np.random.default_rng(args.seed)
    # Adam from --chains starts at once (z = 0 and small offsets): one batched call
    # per step; the best end point is the mode.
    z = np.zeros((args.chains, 11), np.float32)
    z[1:] = 0.3 * rng.standard_normal((args.chains - 1, 11))
    m1, m2 = np.zeros_like(z), np.zeros_like(z)
    b1, b2, eps = 0.9, 0.999, 1e-8
    for t in range(1, args.map_steps + 1):
        val, g = host_vg(z)
        norm = np.linalg.norm(g, axis=-1, keepdims=True)
        g = g * np.minimum(1.0, 100.0 / np.maximum(norm, 1e-30))  # clip at 100
        m1 = b1 * m1 + (1 - b1) * g
        m2 = b2 * m2 + (1 - b2) * g * g
        step = m1 / (1 - b1**t) / (np.sqrt(m2 / (1 - b2**t)) + eps)
        z = (z - args.map_lr * step).astype(np.float32)
    val, _ = host_vg(z)
    z_map = z[int(np.argmin(val))]
    t_map = time.perf_counter() - t0
    print(f"MAP ({args.map_steps} Adam steps x {args.chains} starts, incl. compile): "
          f"{t_map:.1f} s, -log post {np.round(val, 2)}")  # fmt: skip
    print("MAP:", dict(zip(FIT_NAMES, np.round(np.asarray(to_u(z_map)), 3),
                           strict=True)))  # fmt: skip
    cov, eig = laplace_covariance(host_vg, z_map)
    t_hess = time.perf_counter() - t0 - t_map
    print(f"Laplace covariance (22 gradients): {t_hess:.1f} s; Hessian "
          f"eigenvalues {eig.min():.3g} .. {eig.max():.3g} (condition "
          f"{eig.max() / eig.min():.3g}, made 1 by the mass matrix)")  # fmt: skip

    chol = np.linalg.cholesky(cov)
    z0 = z_map[None] + rng.standard_normal((args.chains, 11)) @ chol.T

    def nuts(inv_mass, warmup, draws, init, seed):
        kernel = NUTS(potential_fn=potential, dense_mass=True, target_accept_prob=0.8,
                      inverse_mass_matrix=jnp.asarray(inv_mass, jnp.float32),
                      adapt_mass_matrix=args.adapt_mass)  # fmt: skip
        mcmc = MCMC(kernel, num_warmup=warmup, num_samples=draws,
                    num_chains=args.chains, chain_method="vectorized",
                    progress_bar=not args.no_progress)  # fmt: skip
        with jax.numpy_rank_promotion("allow"):
            mcmc.run(jax.random.key(seed),
                     init_params=jnp.asarray(init, jnp.float32),
                     extra_fields=("num_steps", "diverging"))  # fmt: skip
        return mcmc

    calls0 = host_vg.num_calls
    warmup = args.fit_warmup
    if args.pilot > 0:
        # Pilot: NUTS with the Laplace mass, then the pooled covariance of its draws
        # (all chains; Stan's shrinkage n/(n+5) towards 1e-3 I) as the mass matrix.
        # The Laplace covariance at the MAP underestimates the absent disk
        # population's prior-dominated shape directions (log10 F_b disk: posterior
        # sd 1.7 vs Laplace 0.35 in logit units), which sets the leapfrog count.
        pilot = nuts(cov, args.fit_warmup, args.pilot, z0, args.seed + 2)
        zp = np.asarray(pilot.get_samples(group_by_chain=True))
        n = zp.shape[0] * zp.shape[1]
        cov = (n / (n + 5.0)) * np.cov(zp.reshape(-1, 11).T) + 1e-3 * (
            5.0 / (n + 5.0)) * np.eye(11)  # fmt: skip
        z0 = zp[:, -1]
        warmup = args.pilot_warmup
        print(f"pilot: {args.fit_warmup} warmup + {args.pilot} draws x {args.chains} "
              f"chains, {host_vg.num_calls - calls0} batched evaluations; "
              f"{time.perf_counter() - t0 - t_map - t_hess:.1f} s wall")  # fmt: skip
    mcmc = nuts(cov, warmup, args.fit_samples, z0, args.seed + 1)
    n_eval = host_vg.num_calls - calls0
    t_fit = time.perf_counter() - t0
    c_fit = time.process_time() - c0
    extra = mcmc.get_extra_fields(group_by_chain=True)
    steps = np.asarray(extra["num_steps"])
    z_draws = np.asarray(mcmc.get_samples(group_by_chain=True))  # (chains, draws, 11)
    u_draws = np.asarray(to_u(jnp.asarray(z_draws)))
    idata = from_dict({
        "posterior": {n: u_draws[..., i] for i, n in enumerate(FIT_NAMES)},
        "sample_stats": {"diverging": np.asarray(extra["diverging"])},
    })  # fmt: skip
    summ, n_div, max_rhat, min_ess, problems = fits.diagnose(idata)
    if args.save_draws:
        np.savez(args.save_draws, u=u_draws, z=z_draws, steps=steps, cov=cov,
                 z_map=z_map)  # fmt: skip
    post = u_draws.reshape(-1, 11)
    print("posterior mean +- sd (R-hat, bulk ESS):")
    for i, name in enumerate(FIT_NAMES):
        row = summ.loc[name]
        print(f"  {name:16s} {post[:, i].mean():9.3f} +- {post[:, i].std():.3f}  "
              f"({row['r_hat']:.4f}, {row['ess_bulk']:.0f})")  # fmt: skip
    # Vectorized chains advance in lock step: a batched evaluation per leapfrog step
    # of the longest tree, so the wall time follows the per-draw maximum.
    per_draw_max = steps.max(axis=0)
    depth = np.log2(steps + 1)
    print(f"leapfrog steps per draw (sampling, {args.chains} chains): median "
          f"{np.median(steps):.0f}, mean {steps.mean():.1f}, max {steps.max()}; "
          f"mean tree depth {depth.mean():.2f}; batched evaluations (max over "
          f"chains) {per_draw_max.sum()}; all NUTS batched evaluations (pilot, "
          f"warmup, draws) {n_eval}")  # fmt: skip
    print(f"max R-hat {max_rhat:.4f} (rank-normalised split R-hat over "
          f"{args.chains} chains), min bulk ESS {min_ess:.0f}, divergences "
          f"{n_div}; problems: {problems or 'none'}")  # fmt: skip
    print(
        f"full fit end to end (MAP + Laplace + {args.chains} chains x "
        f"({args.fit_warmup} warmup"
        + (f" + {args.pilot} pilot draws + {warmup} warmup" if args.pilot else "")
        + f" + {args.fit_samples} draws), compile included): "
        f"{t_fit:.1f} s wall, {c_fit:.1f} s CPU (this process, all threads); NUTS "
        f"part {t_fit - t_map - t_hess:.1f} s wall"
    )
    print(
        f"min bulk ESS per second (end to end): {min_ess / t_fit:.2f} /s wall, "
        f"{min_ess / c_fit:.2f} /s CPU; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"vs NPTFit Example 7 (documented ~3600 s, one core, MultiNest nlive=100): "
          f"{3600 / t_fit:.1f}x")  # fmt: skip
    # A floor on NPTFit's MultiNest cost for THIS problem: nested sampling compresses
    # the prior volume by ~e^(-1/nlive) per likelihood evaluation at best, and the
    # posterior bulk sits at ln X ~ -H (H = KL(posterior || prior), Skilling 2006),
    # so it needs >= nlive * H evaluations (MultiNest's rejection efficiency < 1 only
    # adds). H from the Gaussian approximation of the NUTS draws in the uniform-prior
    # coordinates u: H ~ ln V_prior - 0.5 ln det(2 pi e Sigma).
    cov_u = np.cov(post.T)
    h_kl = float(np.sum(np.log(FIT_HI - FIT_LO))
                 - 0.5 * np.linalg.slogdet(2 * np.pi * np.e * cov_u)[1])  # fmt: skip
    n_floor = 100 * h_kl
    print(f"KL(posterior || prior) H ~ {h_kl:.1f} nats: MultiNest (nlive=100) needs "
          f">= {n_floor:.0f} likelihood evaluations")  # fmt: skip
    if t_nptfit_eval is not None:
        t_floor = n_floor * t_nptfit_eval
        print(f"NPTFit floor on this problem: {n_floor:.0f} x "
              f"{t_nptfit_eval * 1e3:.1f} ms (its per-evaluation time, this run) = "
              f"{t_floor:.0f} s, i.e. jaxdm is >= {t_floor / t_fit:.1f}x faster; the "
              f"documented ~3600 s implies {3600 / t_nptfit_eval:.0f} evaluations "
              "at this per-evaluation time")  # fmt: skip
    return t_fit


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--nptfit-worker":
        nptfit_worker(sys.argv[2])
        sys.exit(0)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--npix", type=int, default=48)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--n-nodes", type=int, default=32)
    # Draws: the 2 x 450-draw run of the fourth session (100 warmup) had 0
    # divergences and bulk ESS >= 0.15 per draw on every parameter; warmup 50 (fifth
    # session) gave 9 divergences and R-hat 1.037, so warmup stays 100. Seventh
    # session: R-hat (1.02 at these settings), not ESS (>= 147), binds; a pilot
    # mass matrix (--pilot) was not a robust gain (RESULTS.md, nptf7).
    p.add_argument("--fit-samples", type=int, default=450)
    p.add_argument("--fit-warmup", type=int, default=100)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--map-steps", type=int, default=150)
    p.add_argument("--method", default="auto", choices=("auto", "fft", "recursion"),
                   help="nptf_log_likelihood's p_c evaluation")  # fmt: skip
    p.add_argument("--map-lr", type=float, default=0.05)
    p.add_argument("--pilot", type=int, default=0,
                   help="pilot draws per chain whose pooled covariance becomes the "
                   "mass matrix of the main run (0: the Laplace one)")  # fmt: skip
    p.add_argument("--pilot-warmup", type=int, default=50,
                   help="step-size warmup of the main run after a pilot")  # fmt: skip
    p.add_argument("--adapt-mass", action="store_true",
                   help="also adapt the dense mass matrix in warmup (default: fixed "
                   "at the Laplace covariance; step size adapted)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--fit-only", action="store_true",
                   help="time the full fit only")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-draws", default="", help="save the fit's draws (.npz)")
    main(p.parse_args())
