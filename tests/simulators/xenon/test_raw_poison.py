"""The xenon poison policy on the raw-data layer (issue #12).

Every public function of the raw-data modules carries the policy; the hot programs
(the renderers and the event-class mixture, also as the anomaly experiment chains
them) hold no host callback under ``jit``; bad values poison exactly their call or
``vmap`` row and ``with_valid`` flags it.
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm._poison import host_callbacks, with_valid
from jaxdm.simulators import xenon
from jaxdm.simulators.xenon import (
    event_classes,
    event_rates,
    hit_pattern,
    interactions,
    pmt,
    position,
    pulse_timing,
    pulses,
    raw,
    waveform,
)

RAW_MODULES = (
    pmt,
    hit_pattern,
    position,
    event_rates,
    pulses,
    pulse_timing,
    waveform,
    interactions,
    event_classes,
    raw,
)
KEY = jax.random.key(0)
DET = xenon.lz_like()
PARAMS = xenon.WaveformParams(DET)
PMTS = xenon.small_test_pmts()
CFG = xenon.WaveformConfig(
    s1_samples=60, s2_samples=600, s2_pre=3000.0, max_s1_photons=64,
    max_s2_electrons=128,
)  # fmt: skip


def _exported():
    for name in xenon.__all__:
        obj = getattr(xenon, name)
        if not inspect.isfunction(obj):
            continue
        if obj.__module__ in {m.__name__ for m in RAW_MODULES}:
            yield name, obj


def test_every_public_function_has_the_poison_policy():
    found = dict(_exported())
    # One function of each module at least (the list cannot be silently empty).
    modules = {inspect.unwrap(f).__module__ for f in found.values()}
    assert modules == {m.__name__ for m in RAW_MODULES}
    missing = [n for n, f in found.items() if getattr(f, "__jaxdm_policy__", None)
               != "poison"]  # fmt: skip
    assert not missing, missing


def _record(n=2, z=-5.0):
    return xenon.make_interactions(
        jnp.zeros((n, 2)), jnp.zeros((n, 2)), jnp.full((n, 2), z),
        jnp.full((n, 2), 20.0), jnp.full((n, 2), 10.0),
        energy=jnp.full((n, 2), 2.0), mask=jnp.array([True, False]),
    )  # fmt: skip


@pytest.fixture(scope="module")
def record():
    return _record()


def test_renderers_hold_no_host_callback(record):
    """simulate_waveform / simulate_hit_patterns / simulate_raw_events and the
    anomaly experiment's chains (waveform -> reduce_waveforms, patterns ->
    hit_image): zero callbacks in the traced program. Under the raise policy
    the same programs hold several (checked: the test fails without the
    decorators)."""

    def chain_wf(k, r, p):
        wf = xenon.simulate_waveform(k, r, p, CFG)
        return xenon.reduce_waveforms(wf, p, CFG)

    def chain_img(k, r, p):
        s1, s2 = xenon.simulate_hit_patterns(k, r, p, PMTS)
        return xenon.hit_image(s1, PMTS, 8, "top"), xenon.top_bottom_asymmetry(s2, PMTS)

    # simulate_waveform and simulate_hit_patterns are traced inside the chains.
    programs = {
        "expected_waveform": lambda k, r, p: xenon.expected_waveform(r, p, CFG),
        "simulate_raw_events": lambda k, r, p: xenon.simulate_raw_events(
            k, r, p, PMTS, config=CFG
        ),
        "simulate_waveform -> reduce_waveforms": chain_wf,
        "simulate_hit_patterns -> hit_image, TBA": chain_img,
    }
    counts = {n: host_callbacks(f, KEY, record, PARAMS) for n, f in programs.items()}
    assert all(c == 0 for c in counts.values()), counts
    # The check is real: the undecorated implementation holds callbacks.
    plain = xenon.simulate_hit_patterns.__wrapped__
    assert host_callbacks(lambda k, r, p: plain(k, r, p, PMTS), KEY, record, PARAMS)


def test_event_class_mixture_holds_no_host_callback():
    rates = xenon.lz_like_event_rates()
    n = host_callbacks(
        lambda k, r, d: xenon.sample_event_classes(k, 4, r, d), KEY, rates, DET
    )
    assert n == 0


def test_window_condition_poisons_exactly_its_row():
    """The per-event window condition (evaluated in the renderer's inner vmap,
    checked outside it by the same code as simulate_waveform's) poisons exactly
    the bad row of a user vmap."""
    z = jnp.array([-5.0, -120.0])  # the deep event overflows the 6 us S2 window
    recs = jax.vmap(lambda zz: _record(1, zz))(z)
    one = with_valid(lambda r: xenon.expected_waveform(r, PARAMS, CFG))
    f = jax.jit(jax.vmap(one))
    wf, valid = f(recs)
    np.testing.assert_array_equal(np.asarray(valid), [True, False])
    assert np.all(np.isfinite(np.asarray(wf.s2[0])))
    assert np.all(np.isnan(np.asarray(wf.s2[1])))
    assert np.all(np.isnan(np.asarray(wf.s1[1])))
    # Eager errors of the same conditions: tests/bad_inputs/xenon_raw_wave.py.
