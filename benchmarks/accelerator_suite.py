"""Every jaxdm throughput benchmark in one reduced run, on whatever device JAX sees.

Rows (compilation excluded: one warm-up call, then the best of ``--repeats``):

* xenon: LXe TPC events/s, ``xenon.simulate_events`` (LZ-like detector, NR 1-50 keV,
  exact binomial chain), one compiled call of ``n`` events;
* lensing: images/s of ``lensing.simulate`` (SIE + shear + Sersic source, PSF,
  Poisson/Gaussian noise), vmapped over a batch, without and with 50 tNFW subhalos;
* gamma: Galactic-Centre maps/s of ``gamma.simulate`` (5 energy bins, Cartesian grid,
  point-source population), vmapped over a batch;
* npe train step: ms per optimiser step of ``jaxdm.train``'s compiled step on an
  ``NPE`` (5-layer neural spline flow, MLP embedding: ``make_npe``'s defaults) and
  batch 512;
* npe 1e4 samples: seconds to draw 10^4 posterior samples for one observation;
* store I/O: rows/s appended to an HDF5 ``SimulationStore`` (checksummed chunks)
  and read back in shuffled chunks, the I/O term of ``docs/scaling.md``.

The full sizes are those of the separate benchmarks (``benchmarks/*_throughput.py``)
reduced to run in well under 8 minutes on one GPU; ``--quick`` shrinks every size
so the whole table runs on a CPU in a test (``tests/scale/test_accelerator_suite.py``).
It installs nothing: only jaxdm and its dependencies are imported.

Run: ``python benchmarks/accelerator_suite.py [--quick] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

FULL = dict(xenon_n=1_000_000, lens_batch=256, lens_pix=100, n_sub=50,
            gamma_batch=16, gamma_pix=128, gamma_sources=1000, npe_batch=512,
            npe_samples=10_000, npe_layers=5, npe_hidden=64, store_rows=200_000,
            repeats=3)  # fmt: skip
QUICK = dict(xenon_n=2_000, lens_batch=4, lens_pix=24, n_sub=5, gamma_batch=2,
             gamma_pix=16, gamma_sources=20, npe_batch=64, npe_samples=1_000,
             npe_layers=1, npe_hidden=8, store_rows=2_000, repeats=1)  # fmt: skip


def _best(f, repeats):
    import jax

    t0 = time.perf_counter()
    jax.block_until_ready(f(0))
    compile_s = time.perf_counter() - t0
    best = np.inf
    for i in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(i + 1))
        best = min(best, time.perf_counter() - t0)
    return best, compile_s


def bench_xenon(s):
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from jaxdm.simulators import xenon

    det = xenon.lz_like()
    spec = xenon.tabulated_spectrum(jnp.array([1.0, 50.0]), jnp.ones(2), "NR")
    n = s["xenon_n"]
    f = eqx.filter_jit(lambda k: xenon.simulate_events(k, spec, det, n))
    t, c = _best(lambda i: f(jax.random.key(i)), s["repeats"])
    return [("xenon events", n / t, "events/s", c)]


def bench_lensing(s):
    import jax
    import jax.numpy as jnp

    from jaxdm.simulators import lensing as L

    cfg = L.ObservationConfig(n_pix=s["lens_pix"], pixel_scale=5.0 / s["lens_pix"],
                              supersampling=2, psf=L.GaussianPSF(fwhm=0.1))  # fmt: skip
    rng = np.random.default_rng(0)
    n_sub, b = s["n_sub"], s["lens_batch"]
    m = 10 ** rng.uniform(7, 9, n_sub)
    xy = rng.uniform(-2.0, 2.0, (2, n_sub))
    tn = L.tnfw_params_from_mass(m, L.concentration_duffy08(m, 0.5), 6.0, 0.5, 1.0,
                                 x0=xy[0], y0=xy[1])  # fmt: skip
    tn = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32) * jnp.ones(n_sub), tn)

    def params(d, subs):
        lens = [L.SIEParams(theta_e=1.2 + d, q=0.75 + d, phi=0.4, x0=d, y0=-d),
                L.ShearParams(gamma1=0.03 + d, gamma2=-0.02)]  # fmt: skip
        if subs:
            lens.append(L.SubhaloPopulation(profile=tn, mask=jnp.ones(n_sub)))
        src = L.SersicParams(amplitude=20.0, r_e=0.25 + d, n=4.0, q=0.7, phi=-0.5,
                             x0=0.06 + d, y0=0.08)  # fmt: skip
        scene = L.LensingParams(lens=tuple(lens), source=(src,))
        return jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), scene)

    rows = []
    for subs in (False, True):
        batch = jax.vmap(lambda d, subs=subs: params(d, subs))(
            jnp.linspace(0.0, 1e-3, b, dtype=jnp.float32)
        )
        f = jax.jit(jax.vmap(lambda k, p: L.simulate(k, p, cfg)))
        t, c = _best(lambda i, f=f, batch=batch: f(
            jax.random.split(jax.random.key(i), b), batch), s["repeats"])  # fmt: skip
        label = f"lensing images, {n_sub} subhalos" if subs else "lensing images"
        rows.append((label, b / t, "images/s", c))
    return rows


def bench_gamma(s):
    import jax

    from jaxdm.simulators import gamma as g

    edges = tuple(float(e) for e in np.geomspace(2.0, 20.0, 6))
    cfg = g.GammaConfig(geometry="cartesian", npix=s["gamma_pix"], energy_edges=edges,
                        max_sources=s["gamma_sources"])  # fmt: skip
    p = g.GammaParams()
    b = s["gamma_batch"]
    f = jax.jit(jax.vmap(lambda k: g.simulate(k, p, cfg).counts))
    t, c = _best(lambda i: f(jax.random.split(jax.random.key(i), b)), s["repeats"])
    return [("gamma maps", b / t, "maps/s", c)]


def bench_npe(s):
    import equinox as eqx
    import jax

    from jaxdm.inference.npe import make_npe, npe_loss
    from jaxdm.train import _train_step, default_optimizer, trainable_filter

    d, xd, b = 5, 20, s["npe_batch"]
    h = s["npe_hidden"]
    npe = make_npe(jax.random.key(0), theta_dim=d, x_shape=xd, embedding_width=h,
                   flow_layers=s["npe_layers"], flow_hidden=(h, h))  # fmt: skip
    theta = jax.random.uniform(jax.random.key(1), (4 * b, d))
    x = jax.random.normal(jax.random.key(2), (4 * b, xd))
    params, static = eqx.partition(npe, trainable_filter(npe))
    opt = default_optimizer()
    state = {"p": params, "o": opt.init(params)}
    shard = jax.sharding.SingleDeviceSharding(jax.devices()[0])

    def step(i):
        rows = jax.numpy.arange(b) + (i % 4) * b
        state["p"], state["o"], loss = _train_step(
            state["p"], static, state["o"], (theta, x), rows, jax.random.key(i),
            npe_loss, opt, shard,
        )  # fmt: skip
        return loss

    n_steps = 10
    t, c = _best(lambda i: [step(i * n_steps + j) for j in range(n_steps)][-1],
                 s["repeats"])  # fmt: skip
    rows = [(f"npe train step (batch {b})", 1e3 * t / n_steps, "ms/step", c)]
    n = s["npe_samples"]
    f = eqx.filter_jit(lambda k, xo: npe.sample(k, xo, n))
    t, c = _best(lambda i: f(jax.random.key(i), x[0]), s["repeats"])
    rows.append((f"npe {n:.0e} samples", t, "s", c))
    return rows


def bench_store(s):
    import jax

    from jaxdm.store import SimulationStore

    n, xd = s["store_rows"], 64
    theta = np.random.default_rng(0).uniform(size=(n, 4)).astype(np.float32)
    x = np.random.default_rng(1).normal(size=(n, xd)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bank.h5")
        t0 = time.perf_counter()
        with SimulationStore.create(path, theta_dim=4, x_shape=(xd,)) as st:
            r = st.add_region(np.zeros(4), np.ones(4))
            for a in range(0, n, 8192):
                st.append(theta[a : a + 8192], x[a : a + 8192], r)
        w = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        with SimulationStore.open(path, "r") as st:
            for _ in st.iter_chunks(jax.random.key(0), 65_536):
                pass
        rd = n / (time.perf_counter() - t0)
    return [("store append (64 floats/row)", w, "rows/s", 0.0),
            ("store shuffled read", rd, "rows/s", 0.0)]  # fmt: skip


BENCHMARKS = {"xenon": bench_xenon, "lensing": bench_lensing, "gamma": bench_gamma,
              "npe": bench_npe, "store": bench_store}  # fmt: skip


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (CPU test)")
    ap.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), default=None)
    ap.add_argument("--json", default=None, help="also write the rows here")
    a = ap.parse_args(argv)
    import jax

    sizes = QUICK if a.quick else FULL
    dev = jax.devices()[0]
    name = f"{dev.platform}: {getattr(dev, 'device_kind', '?')} (x{len(jax.devices())})"
    t_all = time.perf_counter()
    rows = []
    for key, bench in BENCHMARKS.items():
        if a.only is None or key in a.only:
            rows.extend(bench(sizes))
    total = time.perf_counter() - t_all
    print(f"jaxdm accelerator suite ({'quick' if a.quick else 'full'}), jax "
          f"{jax.__version__}, device {name}")  # fmt: skip
    print(f"{'benchmark':<34} {'value':>12} {'unit':<9} {'compile s':>9}")
    for label, value, unit, comp in rows:
        print(f"{label:<34} {value:>12.4g} {unit:<9} {comp:>9.2f}")
    print(f"total {total:.1f} s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"device": name, "quick": a.quick, "total_s": total,
                       "rows": [list(r) for r in rows]}, f, indent=1)  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
