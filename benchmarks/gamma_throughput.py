"""Throughput of the gamma-ray GC map simulator: batched jit (JAX) vs. a NumPy loop.

Maps of 5 energy bins (2-20 GeV, log-spaced), up to 1000 point sources, on a Cartesian
128 x 128 grid (40 x 40 deg) and on HEALPix nside 128 inside r < 25 deg. Each map
recomputes the gNFW^2 line-of-sight integral (its slope is a parameter), draws the
source population, applies the PSF and Poisson noise. The NumPy reference does the
same per map, the way pre-JAX simulators do (NumPy quadrature, scipy FFT convolution,
np.add.at scatter for the HEALPix PSF). Run: python benchmarks/gamma_throughput.py
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy.signal

from jaxdm.constants import DEGREE, KPC_CM
from jaxdm.simulators import gamma as g
from jaxdm.simulators.gamma import instrument as ins, simulation as sim


def numpy_map(rng, p, cfg, smooth_other, src_resp, ps_prob, kern):
    """One map in NumPy: J map by GL quadrature, sources, PSF, Poisson."""
    geo = g.geometry(cfg)
    lr, br = geo.l_deg * DEGREE, geo.b_deg * DEGREE
    cb, sb, cl, sl = np.cos(br), np.sin(br), np.cos(lr), np.sin(lr)
    r0, gam = 8.5, float(p.dm_gamma)
    bimp = r0 * np.sqrt(sb**2 + (cb * sl) ** 2 + 1e-30)
    sc = r0 * cb * cl
    # Same rule as jaxdm: line of sight to S_MAX_CONVERGED, nodes split at t = 0.
    x, w = np.polynomial.legendre.leggauss(cfg.n_los // 2)
    t0 = np.arcsinh(-sc / bimp)
    t1 = np.arcsinh((g.S_MAX_CONVERGED - sc) / bimp)
    tm = np.clip(0.0, t0, t1)
    dj = 0.0
    for a, b in ((t0, tm), (tm, t1)):
        t = 0.5 * (b + a)[:, None] + 0.5 * (b - a)[:, None] * x[None]
        r = bimp[:, None] * np.cosh(t)
        rho = 0.4 * (r / r0) ** -gam * ((1 + r / 20) / (1 + r0 / 20)) ** (gam - 3)
        dj = dj + KPC_CM * 0.5 * (b - a) * (rho**2 * r * w).sum(1)
    edges = cfg.energy_edges
    nb = np.asarray(g.bbbar_bins(edges, float(p.dm_mass)))
    pref = float(p.dm_sigma_v) * 1e-26 / (8 * np.pi * float(p.dm_mass) ** 2)
    smooth = smooth_other + cfg.exposure * geo.omega_sr * pref * nb[:, None] * dj
    n = min(rng.poisson(747.0), cfg.max_sources)
    u = rng.uniform(size=n)
    # dN/dF: n1 = 10 above, n2 = -0.5 below the break; segment weights 1/9 : 1/1.5.
    hi = rng.uniform(size=n) < (1 / 9) / (1 / 9 + 1 / 1.5)
    fb = float(p.ps_breaks[0])
    x = np.where(hi, (1 - u) ** (1 / -9.0), u ** (1 / 1.5))
    pix = rng.choice(ps_prob.size, size=n, p=ps_prob)
    fmap = np.zeros(ps_prob.size)
    np.add.at(fmap, pix, fb * x)
    pre = smooth + src_resp * fmap[None]
    if cfg.geometry == "cartesian":
        h = cfg.npix
        out = np.stack(
            [
                scipy.signal.fftconvolve(pre[e].reshape(h, h), kern[e], "same")
                for e in range(pre.shape[0])
            ]
        ).reshape(pre.shape)
    else:
        nbr, wk = kern
        out = np.zeros((pre.shape[0], pre.shape[1] + 1))
        for e in range(pre.shape[0]):
            np.add.at(out[e], nbr, wk[e] * pre[e][:, None])
        out = out[:, :-1]
    mu = np.maximum(out, 0) * geo.roi[None]  # FFT round-off floor, as jaxdm
    return rng.poisson(mu)


def run(cfg, batch, reps):
    """Return (JAX maps/s, NumPy maps/s)."""
    p = g.GammaParams()
    f = jax.jit(jax.vmap(lambda k: g.simulate(k, p, cfg).counts))
    keys = jax.random.split(jax.random.key(0), batch)
    f(keys).block_until_ready()
    t = time.perf_counter()
    for i in range(reps):
        f(jax.random.split(jax.random.key(i + 1), batch)).block_until_ready()
    jax_rate = reps * batch / (time.perf_counter() - t)
    p0 = g.GammaParams(dm_sigma_v=0.0, ps_norm=0.0)
    smooth, src_resp, prob, _ = sim._components(p0, cfg)
    smooth, src_resp, prob = map(np.asarray, (smooth, src_resp, prob))
    prob = prob / prob.sum()
    sig = ins.psf_sigmas(cfg.energy_edges, cfg.psf_sigma_2gev_deg)
    geo = g.geometry(cfg)
    if cfg.geometry == "cartesian":
        kern = ins.cartesian_kernels(sig, 2 * cfg.half_width_deg / cfg.npix)
    else:
        kern = ins.healpix_kernels(geo.nside, tuple(int(q) for q in geo.pix), sig)
    rng = np.random.default_rng(0)
    numpy_map(rng, p, cfg, smooth, src_resp, prob, kern)
    t = time.perf_counter()
    for _ in range(reps * batch):
        numpy_map(rng, p, cfg, smooth, src_resp, prob, kern)
    return jax_rate, reps * batch / (time.perf_counter() - t)


def main():
    """Print maps/s for both geometries and the JAX/NumPy ratio."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    edges = tuple(float(e) for e in np.geomspace(2.0, 20.0, 6))
    common = dict(energy_edges=edges, max_sources=1000)
    print(
        f"jax {jax.__version__} backend {jax.default_backend()} dtype "
        f"{jnp.zeros(1).dtype}"
    )
    for name, cfg in [
        ("cartesian 128x128", g.GammaConfig(geometry="cartesian", npix=128, **common)),
        ("healpix nside128 r<25", g.GammaConfig(nside=128, **common)),
    ]:
        jr, nr = run(cfg, a.batch, a.reps)
        print(
            f"{name}: jax {jr:.2f} maps/s, numpy {nr:.2f} maps/s, ratio {jr / nr:.2f}"
        )


if __name__ == "__main__":
    main()
