"""Raw-event throughput on the CPU: waveforms plus PMT hit patterns per second.

Events: LZ-like single scatters (flat ER, 2-20 keV) from ``xenon.simulate_events``,
rendered on the LZ-like PMT arrays (253 + 241 PMTs) with the default waveform layout
(10 ns samples; 150-sample S1 and 5000-sample S2 windows).

Timed, per batch of ``--n`` events (compilation excluded, best and median of
``--repeat`` interleaved rounds):

* ``jaxdm raw``: ``xenon.simulate_raw_events`` (waveform + S1/S2 hit patterns + TBA)
  under ``jax.jit``;
* ``jaxdm hits``: ``xenon.simulate_hit_patterns`` (patterns only) under ``jax.jit``;
* ``numpy raw`` / ``numpy hits``: the same steps written here in plain NumPy (no
  peer renders these; this is the anchor, not an external tool): per event and site,
  the same light-collection quadrature, binomial detection, multinomial S1 and
  Poisson S2 sharing, and a waveform from the same ingredients (exponential
  singlet/triplet times plus Gaussian spread, DPE, SPE area smearing, Gaussian
  electron arrival times, box electroluminescence integrated per sample, SPE
  kernel convolution). The NumPy waveform follows the jaxdm physics but is an
  independent, simplified implementation (one interaction site, no window checks).

Memory per event: bytes of the returned arrays per event, and XLA's temporary buffer
size of the compiled batch divided by the batch size.

    PYTHONPATH=. python benchmarks/xenon_raw_throughput.py --n 256 --repeat 3
"""

import argparse
import time

import jax
import numpy as np

from jaxdm.simulators import xenon
from jaxdm.simulators.xenon import hit_pattern as hp, light_model as lm
from jaxdm.simulators.xenon.pulse_timing import site_response, spe_kernel


def make_record(n, seed=0):
    det = xenon.lz_like()
    spec = xenon.flat_er_spectrum(1.0, e_min=2.0, e_max=20.0)
    ev = xenon.simulate_events(jax.random.key(seed), spec, det, n)
    return det, xenon.interactions_from_events(ev)


def numpy_inputs(det, rec, pmts, params, cfg):
    """Per-event response numbers and light maps (precomputed, not timed)."""
    resp = site_response(rec, det, params.pulse)
    pick = lambda a: np.asarray(a)[:, 0].astype(np.float64)  # noqa: E731
    x, y, z = pick(rec.x), pick(rec.y), pick(rec.z)
    return {
        "x": x,
        "y": y,
        "z": z,
        "n_ph": np.round(pick(rec.n_photons)),
        "n_e": np.round(pick(rec.n_electrons)),
        "p_detect": pick(resp.p_detect),
        "p_charge": pick(resp.p_charge),
        "gain": pick(resp.gain),
        "gain_sd": pick(resp.gain_sd),
        "f_singlet": pick(resp.f_singlet),
        "tau_s": pick(resp.tau_s),
        "tau_t": pick(resp.tau_t),
        "t_s2": pick(resp.t_s2),
        "sigma_s2": pick(resp.sigma_s2),
        "el_width": pick(resp.el_width),
        "kernel": np.asarray(spe_kernel(params.pulse, cfg.dt, cfg.spe_taps)),
        "s1_sd": float(params.pulse.s1_time_spread),
        "xy_top": np.asarray(pmts.xy_top, np.float64),
        "xy_bot": np.asarray(pmts.xy_bottom, np.float64),
    }


def _np_direct(px, py, pz, xy, z_plane, a, t, w, phi, cut=None):
    """NumPy twin of the solid-angle quadrature (hit_pattern._direct)."""
    h = abs(z_plane - pz)
    g_min = h / np.sqrt(h * h + a * a)
    g = g_min + (1 - g_min) * t
    w_u = (1 - g_min) * w * 2 * h * h / (a * a * g**3)
    r = h * np.sqrt(np.maximum(1 / g**2 - 1, 0))
    dx = xy[:, 0, None, None] + r[:, None] * np.cos(phi) - px
    dy = xy[:, 1, None, None] + r[:, None] * np.sin(phi) - py
    d2 = dx * dx + dy * dy + h * h
    f = h / d2**1.5
    if cut is not None:
        f = f * cut(h / np.sqrt(d2))
    return 0.25 * a * a * np.sum(f.mean(-1) * w_u, axis=-1)


def _np_fresnel(cos_i, n):
    """Gas-to-liquid unpolarised Fresnel reflectance (light_model twin)."""
    cos_t = np.sqrt(np.clip(1 - (1 - cos_i**2) / n**2, 0, None))
    rs = ((cos_i - n * cos_t) / (cos_i + n * cos_t)) ** 2
    rp = ((cos_t - n * cos_i) / (cos_t + n * cos_i)) ** 2
    return 0.5 * (rs + rp)


def _np_refracted(cos_l, n, width):
    """Refracted intensity per liquid solid angle x 4 pi (light_model twin)."""
    cos_c = np.sqrt(1 - 1 / n**2)
    cos_g = np.sqrt(np.clip(1 - n * n * (1 - cos_l**2), 0, None))
    t_over = (
        2 * n * cos_l * (1 / (cos_g + n * cos_l) ** 2 + 1 / (cos_l + n * cos_g) ** 2)
    )
    return n * n * cos_l * t_over / (1 + np.exp(-(cos_l - cos_c) / width))


def np_light_map(px, py, pz, signal, pmts, optics, q):
    """NumPy twin of light_model._emission for all-liquid or all-gas points."""
    t, w, phi = hp._gl_nodes(xenon.DEFAULT_LIGHT_CONFIG)
    a = float(pmts.photocathode_radius)
    n, lam = float(optics.n_liquid), float(optics.absorption_length)
    width = float(optics.critical_width)
    z_liq, z_top, z_bot = float(pmts.z_liquid), float(pmts.z_top), float(pmts.z_bottom)
    if signal == "s1":
        cos_c = np.sqrt(1 - 1 / n**2)
        tr = float(optics.surface_transmission)

        def cut_top(c):
            return (
                tr
                / (1 + np.exp(-(c - cos_c) / width))
                * np.exp(-(z_liq - pz) / (c * lam))
            )

        def cut_bot(c):
            return np.exp(-(pz - z_bot) / (c * lam))

        top = _np_direct(px, py, pz, q["xy_top"], z_top, a, t, w, phi, cut_top)
        bot = _np_direct(px, py, pz, q["xy_bot"], z_bot, a, t, w, phi, cut_bot)
        direct = np.concatenate([top, bot])
        return direct + (1 - direct.sum()) * q["pool"]

    def cut_bot(c):
        return _np_refracted(c, n, width) * np.exp(-(z_liq - z_bot) / (c * lam))

    top = _np_direct(px, py, pz, q["xy_top"], z_top, a, t, w, phi)
    mirror = _np_direct(
        px,
        py,
        2 * z_liq - pz,
        q["xy_top"],
        z_top,
        a,
        t,
        w,
        phi,
        lambda c: _np_fresnel(c, n),
    )
    bot = _np_direct(px, py, z_liq, q["xy_bot"], z_bot, a, t, w, phi, cut_bot)
    r_iso, r_lamb = q["r_iso"], q["r_lamb"]
    cov = pmts.n_top * a * a / float(pmts.tpc_radius) ** 2
    rg = float(optics.gas_reflectivity)
    back = (
        (0.5 * (1 + r_iso) - (top + mirror).sum()) * rg / (1 - r_lamb * (1 - cov) * rg)
    )
    rest = 0.5 * (1 - r_iso) - bot.sum() + back * (1 - r_lamb)
    direct = np.concatenate([top + mirror + back * r_lamb * cov / pmts.n_top, bot])
    return direct + rest * q["pool"]


def numpy_hits(rng, i, q, pmts, optics):
    p1 = np_light_map(q["x"][i], q["y"][i], q["z"][i], "s1", pmts, optics, q)
    p2 = np_light_map(q["x"][i], q["y"][i], float(pmts.z_s2), "s2", pmts, optics, q)
    n_det = rng.binomial(int(q["n_ph"][i]), q["p_detect"][i])
    s1 = rng.multinomial(n_det, p1 / p1.sum())
    n_ext = rng.binomial(int(q["n_e"][i]), q["p_charge"][i])
    s2 = rng.poisson(n_ext * q["gain"][i] * p2 / p2.sum())
    return s1, s2, n_det, n_ext


def numpy_waveform(rng, i, q, n_det, n_ext, det, cfg):
    dt = cfg.dt
    tau = np.where(rng.random(n_det) < q["f_singlet"][i], q["tau_s"][i], q["tau_t"][i])
    t = tau * rng.exponential(size=n_det) + q["s1_sd"] * rng.normal(size=n_det)
    b = np.clip(np.floor((t + cfg.s1_pre) / dt), 0, cfg.s1_samples - 1).astype(int)
    phe = 1.0 + (rng.random(n_det) < float(det.p_dpe))
    area = phe + float(det.spe_resolution) * np.sqrt(phe) * rng.normal(size=n_det)
    s1 = np.zeros(cfg.s1_samples)
    np.add.at(s1, b, area / (1 + float(det.p_dpe)))
    t_e = q["t_s2"][i] + q["sigma_s2"][i] * rng.normal(size=n_ext)
    gain = q["gain"][i] + q["gain_sd"][i] * rng.normal(size=n_ext)
    start = np.floor((q["t_s2"][i] - cfg.s2_pre) / dt) * dt
    width = q["el_width"][i] / dt
    s = (t_e - start) / dt
    pts = np.concatenate([s, s + width])
    wts = np.concatenate([gain / width, -gain / width])
    n = cfg.s2_samples
    idx = np.floor(pts)
    full = np.zeros(n + 2)
    np.add.at(full, np.clip(idx + 1, 0, n + 1).astype(int), wts)
    inside = (idx >= 0) & (idx < n)
    part = np.zeros(n + 1)
    np.add.at(
        part, np.where(inside, idx, n).astype(int), wts * (idx + 1 - pts) * inside
    )
    s2 = np.cumsum(full)[:n] + part[:n]
    k = q["kernel"]
    return np.convolve(s1, k)[: cfg.s1_samples], np.convolve(s2, k)[:n]


def _check_twin(q, rec, pmts, optics):
    """The NumPy light maps equal jaxdm's (first event, S1 and S2) to 1e-4."""
    i = 0
    for sig, z in (("s1", q["z"][i]), ("s2", float(pmts.z_s2))):
        mine = np_light_map(q["x"][i], q["y"][i], z, sig, pmts, optics, q)
        ref = xenon.light_collection_map(
            q["x"][i], q["y"][i], z, pmts=pmts, optics=optics, signal=sig
        )
        err = np.max(np.abs(mine - np.asarray(ref))) / np.max(np.asarray(ref))
        if err > 1e-4:
            raise AssertionError(f"NumPy twin differs from jaxdm ({sig}): {err:.2e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()

    pmts, optics = xenon.lz_like_pmts(), xenon.OpticalParams()
    det, rec = make_record(a.n)
    params = xenon.WaveformParams(detector=det)
    cfg = xenon.WaveformConfig()
    raw_fn = jax.jit(lambda k, r: xenon.simulate_raw_events(k, r, params, pmts))
    hit_fn = jax.jit(lambda k, r: xenon.simulate_hit_patterns(k, r, params, pmts))
    key = jax.random.key(1)
    t0 = time.perf_counter()
    out = jax.block_until_ready(raw_fn(key, rec))
    t_compile = time.perf_counter() - t0
    jax.block_until_ready(hit_fn(key, rec))
    mem = raw_fn.lower(key, rec).compile().memory_analysis()
    temp = getattr(mem, "temp_size_in_bytes", float("nan")) if mem else float("nan")
    out_bytes = sum(x.nbytes for x in jax.tree.leaves(out)) / a.n

    q = numpy_inputs(det, rec, pmts, params, cfg)
    q_top, q_bot = (float(v) for v in hp._pool(pmts, optics))
    q["pool"] = np.concatenate(
        [np.full(pmts.n_top, q_top), np.full(pmts.n_bottom, q_bot)]
    )
    r_iso, r_lamb = lm.surface_reflectance_means(optics.n_liquid)
    q["r_iso"], q["r_lamb"] = float(r_iso), float(r_lamb)
    _check_twin(q, rec, pmts, optics)
    rng = np.random.default_rng(0)

    def np_raw():
        for i in range(a.n):
            s1h, s2h, nd, ne = numpy_hits(rng, i, q, pmts, optics)
            numpy_waveform(rng, i, q, nd, ne, det, cfg)

    def np_hits():
        for i in range(a.n):
            numpy_hits(rng, i, q, pmts, optics)

    runs = {
        "jaxdm raw": lambda: jax.block_until_ready(raw_fn(key, rec)),
        "jaxdm hits": lambda: jax.block_until_ready(hit_fn(key, rec)),
        "numpy raw": np_raw,
        "numpy hits": np_hits,
    }
    times = {k: [] for k in runs}
    for _ in range(a.repeat):
        for name, f in runs.items():
            t = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t)
    print(f"jax {jax.__version__}, numpy {np.__version__}, {jax.devices()[0]}")
    print(f"events per batch: {a.n}; first call (compile + run) {t_compile:.1f} s")
    for name, ts in times.items():
        print(
            f"{name:11s} best {a.n / min(ts):9.1f} ev/s   median "
            f"{a.n / np.median(ts):9.1f} ev/s"
        )
    for kind in ("raw", "hits"):
        r = np.median(
            [
                n / j
                for n, j in zip(
                    times[f"numpy {kind}"], times[f"jaxdm {kind}"], strict=True
                )
            ]
        )
        print(f"speed-up jaxdm/numpy ({kind}), median of rounds: {r:.1f}x")
    print(
        f"memory per event: outputs {out_bytes / 1024:.1f} KiB, XLA temporaries "
        f"{temp / a.n / 1024:.1f} KiB"
    )


if __name__ == "__main__":
    main()
