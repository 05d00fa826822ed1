"""Event classes: each separable from single scatters by its named feature (AUC)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm.simulators import xenon

CFG = xenon.WaveformConfig()
N = 64  # events per class


def _auc(score, y):
    """ROC AUC (Mann-Whitney, ties counted half)."""
    from scipy.stats import rankdata

    r = rankdata(score)
    n1 = int(y.sum())
    n0 = len(y) - n1
    return (r[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)


@pytest.fixture(scope="module")
def rendered():
    det = xenon.lz_like()
    params = xenon.WaveformParams(det)
    samplers = (
        xenon.sample_single_scatters,
        xenon.sample_multiple_scatters,
        xenon.sample_s2_only,
        xenon.sample_gate_events,
        xenon.sample_cathode_events,
        xenon.sample_gas_events,
        xenon.sample_accidentals,
    )
    recs = [s(jax.random.key(10 + i), N, det) for i, s in enumerate(samplers)]
    rec = xenon.stack_interactions(recs)
    wf = xenon.simulate_waveform(jax.random.key(0), rec, params, CFG)
    f = xenon.reduce_waveforms(wf, params, CFG)
    ratio = f.s2_sigma / xenon.expected_s2_sigma(f.drift_time, params, CFG)
    return np.asarray(rec.label), f, np.asarray(ratio)


# (class, feature name, score = f(features, width ratio), AUC bound). Bounds sit
# below the measured values (1.0, 1.0, 1.0, 0.9999, 1.0, 0.93 at 200 events/class)
# with room for the 64-event statistics.
CASES = [
    ("multiple_scatter", "number of S2 pulses", lambda f, q: f.n_s2_pulses, 0.95),
    ("s2_only", "no S1 (-S1 area)", lambda f, q: -f.s1_area, 0.95),
    ("gate", "S2 width / diffusion width", lambda f, q: q, 0.95),
    ("cathode", "S2 width / diffusion width", lambda f, q: q, 0.9),
    ("gas", "fast S2 (-rise time)", lambda f, q: -f.s2_rise_time, 0.95),
    ("gas", "slow S1 (-prompt fraction)", lambda f, q: -f.s1_prompt_fraction, 0.9),
    (
        "accidental",
        "|log(width / diffusion width)|",
        lambda f, q: np.abs(np.log(q)),
        0.8,
    ),
]


@pytest.mark.parametrize(("name", "feature", "score", "bound"), CASES)
def test_class_separable_by_feature(rendered, name, feature, score, bound):
    """Each class against single scatters, by a simple cut on one feature."""
    lab, f, q = rendered
    c = xenon.CLASS_NAMES.index(name)
    sel = (lab == 0) | (lab == c)
    s = np.asarray(score(f, q))[sel]
    auc = _auc(s, (lab[sel] == c).astype(int))
    assert auc > bound, f"{name} by {feature}: AUC {auc:.3f} <= {bound}"


def test_single_scatters_are_bulk_like(rendered):
    """Single scatters: one S2, width at the diffusion expectation (ratio ~1)."""
    lab, f, q = rendered
    s = lab == 0
    assert np.mean(np.asarray(f.n_s2_pulses)[s] == 1) > 0.95
    assert abs(np.median(q[s]) - 1.0) < 0.05


def test_accidental_rate_closed_form():
    """The accidental rate is R_S1 R_S2 dt_max [per day] (closed form)."""
    det = xenon.lz_like()
    rates = xenon.lz_like_event_rates()
    acc = float(xenon.accidental_rate(rates, det))
    t_max = float(det.height / det.drift_velocity) * 1e-6
    np.testing.assert_allclose(acc, 1.0 * 0.01 * t_max * 86400, rtol=1e-6)


@pytest.mark.slow
def test_mixture_fractions():
    """Class fractions of sample_event_classes follow the rates (chi^2, fixed key)."""
    det = xenon.lz_like()
    rates = xenon.EventClassRates(
        single=4.0,
        multiple=2.0,
        s2_only=1.0,
        gate=1.0,
        cathode=1.0,
        gas=1.0,
        isolated_s1=1.0,
        isolated_s2=0.0,
    )
    rec = xenon.sample_event_classes(jax.random.key(5), 2000, rates, det)
    counts = np.bincount(np.asarray(rec.label), minlength=7)
    p = np.asarray(xenon.class_probabilities(rates, det))
    expected = 2000 * p
    keep = expected > 0
    chi2 = np.sum((counts[keep] - expected[keep]) ** 2 / expected[keep])
    assert chi2 < 20.0  # 5 dof: p ~ 1e-3
    assert counts[6] == 0
    assert np.all(np.asarray(rec.mask)[np.asarray(rec.label) == 1].sum(-1) == 2)


def test_records_under_jit():
    """Samplers are pure functions of the key, eagerly and under jit."""
    det = xenon.lz_like()
    f = jax.jit(lambda k: xenon.sample_gate_events(k, 8, det))
    a, b = f(jax.random.key(1)), xenon.sample_gate_events(jax.random.key(1), 8, det)
    np.testing.assert_allclose(np.asarray(a.z), np.asarray(b.z), rtol=1e-6)
    assert np.all(np.asarray(a.region)[:, 0] == 1)
    assert np.all(np.asarray(a.z)[:, 0] <= 0)
    assert np.all(np.asarray(a.z)[:, 0] >= -0.5)
    assert jnp.all(a.label == xenon.CLASS_NAMES.index("gate"))


@pytest.mark.slow
def test_gas_events_s1_tba_shifted():
    """Above-anode gas events have a top-heavier S1 than bulk single scatters: the
    S1 TBA from the LZ-like PMT hit patterns separates them with AUC > 0.9 (LZ
    commissioning isolated gas events by TBA)."""
    det = xenon.lz_like()
    params = xenon.WaveformParams(det)
    rec = xenon.stack_interactions(
        [
            xenon.sample_single_scatters(jax.random.key(1), 32, det),
            xenon.sample_gas_events(jax.random.key(2), 32, det),
        ]
    )
    raw = xenon.simulate_raw_events(
        jax.random.key(3), rec, params, xenon.lz_like_pmts()
    )
    f = xenon.reduce_raw_events(raw, params)
    y = (np.asarray(rec.label) == xenon.CLASS_NAMES.index("gas")).astype(int)
    assert _auc(np.asarray(f.s1_tba), y) > 0.9
    np.testing.assert_allclose(
        np.asarray(f.pulses.s1_area), np.asarray(raw.waveform.s1.sum(-1)), rtol=1e-5
    )


def test_below_cathode_records():
    """Sites below the cathode plane, no photons, electrons thinned binomially."""
    det = xenon.lz_like()
    key = jax.random.key(21)
    full = xenon.sample_below_cathode_s2_only(key, 32, det, charge_fraction=1.0)
    thin = xenon.sample_below_cathode_s2_only(key, 32, det, charge_fraction=0.3)
    z = np.asarray(thin.z)[:, 0]
    assert np.all((z < -float(det.height)) & (z > -float(det.height) - 0.5))
    assert np.all(np.asarray(thin.n_photons) == 0)
    assert np.all(np.asarray(thin.region)[:, 0] == xenon.REGION_NAMES.index("cathode"))
    ratio = float(thin.n_electrons.sum() / full.n_electrons.sum())
    assert abs(ratio - 0.3) < 0.04, ratio


@pytest.mark.slow
def test_below_cathode_s2_only_has_no_s1_and_the_widest_s2():
    """Below-cathode S2-only events: no S1, and an S2 wider than any bulk S2-only.

    Their charge drifts the full length (maximum diffusion) through the cathode
    wires' field (stretch); XENON1T's S2-only search (arXiv:1907.11485) removes
    cathode events by this S2 width. Compared with the sub-threshold S2-only path
    (uniform depth), the S2 width alone separates them.
    """
    det = xenon.lz_like()
    params = xenon.WaveformParams(det)
    below = xenon.sample_below_cathode_s2_only(jax.random.key(21), N, det)
    assert np.all(np.asarray(below.z)[:, 0] < -float(det.height))
    assert np.all(np.asarray(below.n_photons) == 0)
    bulk = xenon.sample_s2_only(jax.random.key(22), N, det)
    single = xenon.sample_single_scatters(jax.random.key(23), N, det)
    rec = xenon.stack_interactions([below, bulk, single])
    wf = xenon.simulate_waveform(jax.random.key(24), rec, params, CFG)
    f = xenon.reduce_waveforms(wf, params, CFG)
    s1, sig = np.asarray(f.s1_area), np.asarray(f.s2_sigma)
    y = np.r_[np.ones(N), np.zeros(N)]
    auc_s1 = _auc(-np.r_[s1[:N], s1[2 * N :]], y)
    auc_width = _auc(np.r_[sig[:N], sig[N : 2 * N]], y)
    assert auc_s1 > 0.95, auc_s1
    assert auc_width > 0.85, auc_width
    # The mixture routes S2-only events through this path with its rate share.
    rates = xenon.EventClassRates(
        single=0.0,
        multiple=0.0,
        s2_only=0.0,
        gate=0.0,
        cathode=0.0,
        gas=0.0,
        isolated_s1=0.0,
        isolated_s2=0.0,
        s2_only_below_cathode=1.0,
    )
    mix = xenon.sample_event_classes(jax.random.key(25), 16, rates, det)
    assert np.all(np.asarray(mix.label) == xenon.CLASS_NAMES.index("s2_only"))
    assert np.all(np.asarray(mix.z)[:, 0] < -float(det.height))


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"charge_fraction": 0.0}, "charge_fraction"),
        ({"s1_fraction": 1.5}, "s1_fraction"),
        ({"below_depth": -1.0}, "below_depth"),
    ],
)
def test_below_cathode_bad_options(kw, match):
    with pytest.raises(ValueError, match=match):
        xenon.sample_below_cathode_s2_only(jax.random.key(0), 4, xenon.lz_like(), **kw)
