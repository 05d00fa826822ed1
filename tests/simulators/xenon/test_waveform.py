"""S1/S2 waveforms: integrals, exact mean, diffusion width, singlet fractions, grads."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxdm.simulators import xenon

CFG = xenon.WaveformConfig()
N = 256  # events per batch: every stochastic test uses (N, 2) records (one compile)


def _det(**kw):
    det = xenon.lz_like()
    names = tuple(kw)
    return eqx.tree_at(
        lambda d: tuple(getattr(d, n) for n in names),
        det,
        tuple(jnp.asarray(v, jnp.result_type(float)) for v in kw.values()),
    )


def _record(z, n_ph=200.0, n_e=100.0, recoil=0, energy=10.0, n=N):
    """``n`` copies of a one-site event at height ``z`` (second slot padding)."""
    shape = (n, 2)
    mask = jnp.broadcast_to(jnp.array([True, False]), shape)
    return xenon.make_interactions(
        jnp.zeros(shape),
        jnp.zeros(shape),
        jnp.broadcast_to(jnp.asarray(z), shape),
        jnp.full(shape, n_ph),
        jnp.full(shape, n_e),
        energy=energy,
        recoil_type=recoil,
        mask=mask,
    )


def test_integral_equals_detected_photons_exactly():
    """With g1 = 1, flat light collection, no DPE and no PMT resolution, every S1
    photon is detected and the S1 integral equals the photon count exactly; with
    unit extraction, no attachment and no gain spread, the S2 integral is
    se_gain * n_electrons exactly (light past a window edge is kept)."""
    det = _det(
        g1=1.0,
        lce_slope=0.0,
        p_dpe=0.0,
        spe_resolution=0.0,
        extraction_efficiency=1.0,
        electron_lifetime=1e12,
        se_width=0.0,
    )
    params = xenon.WaveformParams(det)
    n_ph = jnp.arange(N, dtype=jnp.float32) % 97 + 1.0
    rec = _record(-40.0)
    rec = eqx.tree_at(lambda r: r.n_photons, rec, rec.n_photons.at[:, 0].set(n_ph))
    wf = xenon.simulate_waveform(jax.random.key(0), rec, params, CFG)
    np.testing.assert_allclose(np.asarray(wf.s1.sum(-1)), np.asarray(n_ph), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(wf.s2.sum(-1)), 58.5 * 100.0, rtol=1e-4)


def test_mean_waveform_equals_expected():
    """The sampler's mean over 256 events matches expected_waveform sample by sample
    (within 5 standard errors) for an LZ-like detector with DPE, PMT resolution,
    attachment and gain spread; and its integrals are the detected light."""
    params = xenon.WaveformParams(xenon.lz_like())
    rec = _record(-60.0)
    wf = xenon.simulate_waveform(jax.random.key(1), rec, params, CFG)
    ex = xenon.expected_waveform(jax.tree.map(lambda a: a[:1], rec), params, CFG)
    for got, want in ((wf.s1, ex.s1), (wf.s2, ex.s2)):
        m = np.asarray(got.mean(0))
        se = np.asarray(got.std(0)) / np.sqrt(N) + 1e-3 * float(want.max())
        assert np.all(np.abs(m - np.asarray(want[0])) < 5 * se + 1e-6)
    det = params.detector
    lce = 1 + det.lce_slope * (60.0 / det.height - 0.5)
    np.testing.assert_allclose(float(ex.s1[0].sum()), 200 * det.g1 * lce, rtol=1e-5)
    surv = np.exp(-60.0 / det.drift_velocity / det.electron_lifetime)
    g2 = det.extraction_efficiency * det.se_gain * surv
    np.testing.assert_allclose(float(ex.s2[0].sum()), 100 * g2, rtol=1e-4)
    assert np.all(np.asarray(wf.s2_start) == np.asarray(ex.s2_start))


def test_s2_width_grows_as_sqrt_2dt():
    """RMS width^2 of the mean S2 minus the intrinsic width^2 equals 2 D_L t / v^2
    (Gaussian diffusion, sigma_t = sqrt(2 D_L t_d)/v_d) within 2% from 10 to 140 cm;
    the sampled widths follow within 3%."""
    params = xenon.WaveformParams(xenon.lz_like())
    det = params.detector
    zs = jnp.array([-10.0, -40.0, -80.0, -140.0])
    rec = xenon.make_interactions(
        jnp.zeros((4, 1)), jnp.zeros((4, 1)), zs[:, None], 100.0, 100.0
    )
    ex = xenon.expected_waveform(rec, params, CFG)
    f = xenon.reduce_waveforms(ex, params, CFG)
    w0 = xenon.intrinsic_s2_width(params.pulse)
    t = -zs / det.drift_velocity
    diff = 2 * det.diffusion_long * t / det.drift_velocity**2
    np.testing.assert_allclose(
        np.asarray(f.s2_sigma**2 - w0**2), np.asarray(diff), rtol=0.02
    )
    np.testing.assert_allclose(np.asarray(f.drift_time), np.asarray(t), atol=0.05)
    wf = xenon.simulate_waveform(
        jax.random.key(2), _record(-120.0, n_e=300.0), params, CFG
    )
    fs = xenon.reduce_waveforms(wf, params, CFG)
    want = float(
        jnp.sqrt(
            w0**2
            + 2
            * det.diffusion_long
            * (120 / det.drift_velocity)
            / det.drift_velocity**2
        )
    )
    assert abs(float(jnp.mean(fs.s2_sigma)) / want - 1) < 0.03


def test_singlet_fraction_nr_exceeds_er():
    """NEST v2 singlet/triplet ratios (0.15 E^0.15 NR, 0.069 E^-0.12 ER; NEST
    NESTcalc::PhotonTime, arXiv:1802.06162): f_s(10 keV) = 0.1749 (NR), 0.0497 (ER);
    NR > ER at every energy, and the NR S1 is more prompt."""
    p = xenon.PulseParams()
    e = jnp.geomspace(1.0, 100.0, 20)
    nr = xenon.singlet_fraction(e, 1, p)
    er = xenon.singlet_fraction(e, 0, p)
    assert np.all(np.asarray(nr) > np.asarray(er))
    np.testing.assert_allclose(
        float(xenon.singlet_fraction(10.0, 1, p)), 0.17485, rtol=1e-3
    )
    np.testing.assert_allclose(
        float(xenon.singlet_fraction(10.0, 0, p)), 0.04970, rtol=1e-3
    )
    params = xenon.WaveformParams(xenon.lz_like())
    rec = xenon.make_interactions(
        jnp.zeros((2, 1)),
        jnp.zeros((2, 1)),
        -50.0,
        1000.0,
        10.0,
        energy=10.0,
        recoil_type=jnp.array([[0], [1]]),
    )
    f = xenon.reduce_waveforms(xenon.expected_waveform(rec, params, CFG), params, CFG)
    assert float(f.s1_prompt_fraction[1]) > float(f.s1_prompt_fraction[0]) + 0.02


def test_jit_vmap_and_keys():
    """Same key, same waveform eagerly and under jit; vmap over detectors of
    expected_waveform equals a loop."""
    params = xenon.WaveformParams(xenon.lz_like())
    rec = _record(-30.0)
    a = xenon.simulate_waveform(jax.random.key(3), rec, params, CFG)
    b = jax.jit(xenon.simulate_waveform, static_argnums=3)(
        jax.random.key(3), rec, params, CFG
    )
    np.testing.assert_allclose(np.asarray(a.s2), np.asarray(b.s2), rtol=1e-5, atol=1e-3)
    one = xenon.make_interactions(
        jnp.zeros((1, 1)), jnp.zeros((1, 1)), -30.0, 200.0, 100.0, energy=10.0
    )
    vs = jnp.array([0.15, 0.2])

    def s2_of(v):
        d = eqx.tree_at(lambda d: d.drift_velocity, params.detector, v)
        return xenon.expected_waveform(one, xenon.WaveformParams(d), CFG).s2

    batch = jax.vmap(s2_of)(vs)
    for i, v in enumerate(vs):
        d = eqx.tree_at(lambda d: d.drift_velocity, params.detector, v)
        want = xenon.expected_waveform(one, xenon.WaveformParams(d), CFG).s2
        np.testing.assert_allclose(
            np.asarray(batch[i]), np.asarray(want), rtol=1e-5, atol=1e-4
        )


@pytest.mark.x64
def test_check_grads_expected_waveform():
    """Gradients of weighted windows of the mean waveform w.r.t. detector (drift
    velocity, D_L, g1, lifetime) and pulse (triplet lifetime, gas drift velocity)
    parameters match finite differences (float64)."""
    det0 = xenon.lz_like()
    rec = xenon.make_interactions(
        jnp.zeros((1, 1)), jnp.zeros((1, 1)), -45.0, 300.0, 80.0, energy=8.0
    )
    w1 = jnp.linspace(0.0, 1.0, CFG.s1_samples) ** 2
    w2 = jnp.sin(jnp.linspace(0.0, 3.0, CFG.s2_samples))

    def f(v, dl, g1, tau_e, tau_t, v_gas):
        d = eqx.tree_at(
            lambda d: (d.drift_velocity, d.diffusion_long, d.g1, d.electron_lifetime),
            det0,
            (v, dl, g1, tau_e),
        )
        p = xenon.PulseParams(tau_triplet=tau_t, gas_drift_velocity=v_gas)
        wf = xenon.expected_waveform(rec, xenon.WaveformParams(d, p), CFG)
        return jnp.sum(wf.s1[0] * w1) + jnp.sum(wf.s2[0] * w2)

    args = tuple(
        jnp.asarray(v, jnp.float64) for v in (0.153, 2.5e-5, 0.11, 6500.0, 24.0, 0.8)
    )
    check_grads(
        jax.jit(f), args, order=1, modes=("rev",), rtol=1e-4, atol=1e-4, eps=1e-7
    )
