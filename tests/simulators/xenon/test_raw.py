"""Raw events: waveform plus S1/S2 hit patterns and TBA (issue 14)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm.simulators import xenon
from jaxdm.simulators.xenon import raw

PMTS = xenon.small_test_pmts()
DET = eqx.tree_at(
    lambda d: (d.radius, d.height, d.fid_radius, d.fid_z_min, d.fid_z_max),
    xenon.lz_like(),
    (
        jnp.asarray(10.0),
        jnp.asarray(20.0),
        jnp.asarray(9.0),
        jnp.asarray(-19.0),
        jnp.asarray(-1.0),
    ),
)
PARAMS = xenon.WaveformParams(detector=DET)
CFG = xenon.WaveformConfig(s2_samples=2500, s2_pre=6000.0, max_s2_electrons=2048)


def _record(n=6, seed=0):
    spec = xenon.flat_er_spectrum(1.0, e_min=2.0, e_max=6.0, n_grid=16)
    ev = xenon.simulate_events(jax.random.key(seed), spec, DET, n)
    return xenon.interactions_from_events(ev)


def test_mean_patterns_match_the_waveform_integrals():
    rec = _record()
    m = raw.expected_raw_events(rec, PARAMS, PMTS, config=CFG)
    np.testing.assert_allclose(m.s1_hits.sum(-1), m.waveform.s1.sum(-1), rtol=1e-4)
    np.testing.assert_allclose(m.s2_hits.sum(-1), m.waveform.s2.sum(-1), rtol=1e-4)
    # S1 light is bottom-heavy (total internal reflection), S2 less so.
    assert bool(jnp.all(m.s1_tba < m.s2_tba))


@pytest.mark.slow
def test_sampled_patterns_have_the_expected_means():
    rec = _record(4)
    keys = jax.random.split(jax.random.key(1), 200)
    draw = jax.jit(
        jax.vmap(lambda k: raw.simulate_raw_events(k, rec, PARAMS, PMTS, config=CFG))
    )
    out = draw(keys)
    m = raw.expected_raw_events(rec, PARAMS, PMTS, config=CFG)
    for got, mean in ((out.s1_hits, m.s1_hits), (out.s2_hits, m.s2_hits)):
        tot, mu = np.asarray(got.sum(-1)), np.asarray(mean.sum(-1))
        z = (tot.mean(0) - mu) / (tot.std(0) / np.sqrt(200) + 1e-9)
        assert np.max(np.abs(z)) < 5
    assert out.s1_hits.shape == (200, 4, 38)
    assert out.waveform.s1.shape == (200, 4, CFG.s1_samples)
    t = np.asarray(out.s2_hits[..., :19].sum(-1))
    b = np.asarray(out.s2_hits[..., 19:].sum(-1))
    np.testing.assert_allclose(out.s2_tba, (t - b) / (t + b), rtol=1e-5)


@pytest.mark.slow
def test_gradients_of_the_expected_patterns():
    rec = _record(2)

    def top_s2(g2_gain, x):
        d = eqx.tree_at(lambda d: d.se_gain, DET, g2_gain)
        r = eqx.tree_at(lambda r: r.x, rec, rec.x.at[0, 0].set(x))
        m = raw.expected_raw_events(
            r, xenon.WaveformParams(detector=d), PMTS, config=CFG
        )
        return m.s2_hits[0, :19] @ PMTS.xy_top[:, 0]

    g = jax.grad(top_s2, argnums=(0, 1))(jnp.asarray(58.5), jnp.asarray(2.0))
    assert float(g[0]) > 0  # more gain -> more light
    assert float(g[1]) > 0  # moving right moves the x-weighted light right
    eps = 1e-2
    fd = (top_s2(58.5, 2.0 + eps) - top_s2(58.5, 2.0 - eps)) / (2 * eps)
    assert float(g[1]) == pytest.approx(float(fd), rel=2e-2)


def test_site_outside_the_tpc_raises():
    rec = _record(2)
    bad = eqx.tree_at(lambda r: r.x, rec, rec.x.at[0, 0].set(11.0))
    with pytest.raises(ValueError, match="record.x"):
        raw.expected_raw_events(bad, PARAMS, PMTS, config=CFG)


def test_gas_event_s1_tba_shifted_up():
    # Above-anode gas events (LZ commissioning: isolated by TBA): their S1 light is
    # emitted in the gas, above the liquid surface, so it escapes total internal
    # reflection: its TBA is shifted well above that of a liquid event.
    gas, liq = xenon.interactions.GAS, xenon.interactions.LIQUID
    rec = xenon.make_interactions(
        jnp.array([[1.0], [1.0]]),
        jnp.array([[0.0], [0.0]]),
        jnp.array([[1.8], [-10.0]]),
        jnp.array([[20000.0], [20000.0]]),
        jnp.array([[500.0], [500.0]]),
        region=jnp.array([[gas], [liq]]),
    )
    s1, s2 = raw.simulate_hit_patterns(jax.random.key(0), rec, PARAMS, PMTS)
    tba = xenon.top_bottom_asymmetry(s1, PMTS)
    assert float(tba[0]) > float(tba[1]) + 0.25
    assert s2.shape == (2, 38)


def test_capped_multinomial_is_exact_below_and_above_capacity():
    """The inverse-CDF S1 sharing matches Multinomial(n, p) moments exactly.

    Capacity 16 with n = 5 (all drawn one by one) and n = 60 (44 through the
    jax.random.multinomial fallback): totals equal n on every draw; means n p and
    variances n p (1 - p) within 5 standard errors over 4000 draws.
    """
    from jaxdm.simulators.xenon import raw

    p = jnp.array([[0.5, 0.2, 0.0, 0.25, 0.05]] * 2)
    n = jnp.array([5.0, 60.0])
    draw = jax.jit(jax.vmap(lambda k: raw._multinomial(k, n, p, capacity=16)))
    c = np.asarray(draw(jax.random.split(jax.random.key(7), 4000)))
    np.testing.assert_array_equal(c.sum(-1), np.broadcast_to(n, (4000, 2)))
    assert np.all(c[..., 2] == 0)
    mean, var = n[:, None] * p, n[:, None] * p * (1 - p)
    se = np.sqrt(np.asarray(var) / 4000) + 1e-9
    assert np.all(np.abs(c.mean(0) - np.asarray(mean)) < 5 * se)
    np.testing.assert_allclose(c.var(0), np.asarray(var), rtol=0.12, atol=1e-9)
