"""Xenon core under the traced poison policy (issue #12; jaxdm._poison).

Every public function of the xenon core modules carries the policy; the hot programs
(the throughput benchmark's four event runners, the exposure sampler and the
template likelihood) hold no host callback when their parameters are traced; one bad
row of a vmapped batch is poisoned (NaN) and flagged exactly there.
"""

import functools
import inspect

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm._poison import host_callbacks, with_valid
from jaxdm.simulators import xenon

_CORE = (
    "spectra",
    "yields",
    "detector",
    "simulate",
    "moments",
    "histogram",
    "expectations",
    "eft",
    "eft_couplings",
    "eft_halo",
)


def _core_functions():
    out = []
    for name in xenon.__all__:
        obj = getattr(xenon, name)
        if inspect.isfunction(obj) and obj.__module__.rsplit(".", 1)[1] in _CORE:
            out.append(name)
    return out


def test_every_core_public_function_has_the_poison_policy():
    names = _core_functions()
    assert len(names) >= 50  # the exported functions of the core modules
    missing = [
        n
        for n in names
        if getattr(getattr(xenon, n), "__jaxdm_policy__", "") != "poison"
    ]
    assert not missing, f"without @poison_policy: {missing}"


_DET = xenon.lz_like()
_NR = xenon.wimp_spectrum(50.0, 1e-46, n_grid=16)
_ER = xenon.flat_er_spectrum(1.0, e_min=1.0, e_max=20.0, n_grid=8)
_Y = xenon.YieldParams()
_KEY = jax.random.key(0)


@pytest.mark.parametrize("source", [_NR, _ER], ids=["NR", "ER"])
@pytest.mark.parametrize("rep", [False, True], ids=["exact", "reparam"])
def test_simulate_events_holds_no_host_callback(source, rep):
    # The throughput benchmark's runners: detector, spectrum and yields traced.
    fn = functools.partial(xenon.simulate_events, n=1 << 16, reparameterized=rep)

    def run(key, src, det, y):
        return fn(key, src, det, yields=y)

    assert host_callbacks(run, _KEY, source, _DET, _Y) == 0
    # The raise policy (undecorated function) does hold one: the test can fail.
    raw = functools.partial(
        xenon.simulate_events.__wrapped__, n=1 << 16, reparameterized=rep
    )
    assert (
        host_callbacks(
            lambda k, s, d, y: raw(k, s, d, yields=y), _KEY, source, _DET, _Y
        )
        >= 1
    )


def test_sample_exposure_holds_no_host_callback():
    def run(key, det, expo):
        return xenon.sample_exposure(key, [_ER, _NR], det, expo, 64)

    assert host_callbacks(run, _KEY, _DET, jnp.asarray(1.0)) == 0


def _model():
    return xenon.XenonModel(sources=(_ER, _NR), exposure=jnp.asarray(1.0))


_BINS = (jnp.linspace(2.0, 60.0, 5), jnp.linspace(2.5, 4.0, 4))


def test_template_programs_hold_no_host_callback():
    counts = jnp.ones((4, 3))
    events = jnp.asarray([[10.0, 3.2], [20.0, 3.5]])
    assert host_callbacks(xenon.expected_histogram, _model(), _DET, _BINS) == 0
    assert host_callbacks(xenon.log_likelihood, counts, _model(), _DET, _BINS) == 0
    assert host_callbacks(xenon.event_log_rate, _model(), _DET, events) == 0


def test_one_bad_row_of_a_vmapped_batch_is_poisoned_and_flagged():
    g1 = jnp.asarray([0.1, -0.2, 0.12, jnp.nan])
    dets = jax.vmap(lambda g: eqx.tree_at(lambda d: d.g1, _DET, g))(g1)
    keys = jax.random.split(_KEY, 4)

    def sim(key, det):
        return xenon.simulate_events(key, _ER, det, 32)

    ev, valid = jax.jit(jax.vmap(with_valid(sim)))(keys, dets)
    np.testing.assert_array_equal(valid, [True, False, True, False])
    bad = ~np.asarray(valid)
    assert np.all(np.isnan(np.asarray(ev.cs1))[bad])
    assert np.all(np.isfinite(np.asarray(ev.cs1))[~bad])
    assert not np.any(np.asarray(ev.passed)[bad])
    assert np.all(np.asarray(ev.recoil_type)[bad] == -1)


def _fully_poisoned(ev) -> bool:
    for leaf in jax.tree_util.tree_leaves(ev):
        x = np.asarray(leaf)
        if np.issubdtype(x.dtype, np.inexact) and not np.all(np.isnan(x)):
            return False
        if np.issubdtype(x.dtype, np.bool_) and np.any(x):
            return False
        if np.issubdtype(x.dtype, np.signedinteger) and not np.all(x == -1):
            return False
    return True


@pytest.mark.parametrize("rep", [False, True], ids=["exact", "reparam"])
@pytest.mark.parametrize("bad", ["g1", "rate", "w_ev"])
def test_simulate_events_poisons_every_output_at_the_source(rep, bad):
    # simulate_events poisons itself (NaN energy and depth propagate through the
    # chain, poison_policy(poisons_itself=True)); every field must come out
    # poisoned, in both modes, whichever parameter is bad.
    det, spec, yields = _DET, _ER, xenon.YieldParams()
    if bad == "g1":
        det = eqx.tree_at(lambda d: d.g1, det, jnp.asarray(jnp.nan))
    elif bad == "rate":
        spec = eqx.tree_at(lambda s: s.rate, spec, -spec.rate)
    else:
        yields = eqx.tree_at(lambda y: y.w_ev, yields, jnp.asarray(-1.0))

    @jax.jit
    def sim(key, spec, det, yields):
        return xenon.simulate_events(
            key, spec, det, 64, yields=yields, reparameterized=rep
        )

    assert _fully_poisoned(sim(_KEY, spec, det, yields))
    good = sim(_KEY, _ER, _DET, xenon.YieldParams())
    assert np.all(np.isfinite(np.asarray(good.cs1)))
