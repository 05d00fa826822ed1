"""simulate_events fuses its traced parameter checks (issue #12), now under the poison
policy: one recorded condition, no conditional or host callback in the program."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm._poison import host_callbacks, with_valid
from jaxdm.simulators import xenon


def _sim(k, s, d, y):
    return xenon.simulate_events(k, s, d, 32, yields=y, reparameterized=True)


def test_fused_checks_poison_under_jit_and_vmap():
    """Detector, yields and spectrum traced: the program holds no host callback and
    no conditional (the raise policy held one ``branched_error_if``); a bad value
    poisons the outputs, also when only one output is used, and under vmap exactly
    the bad row (one of two), with the flag False there. Eagerly it raises naming
    the argument."""
    spec = xenon.tabulated_spectrum(jnp.array([1.0, 50.0]), jnp.ones(2), "NR")
    det, y, key = xenon.lz_like(), xenon.YieldParams(), jax.random.key(0)
    assert host_callbacks(_sim, key, spec, det, y) == 0
    text = jax.jit(_sim).lower(key, spec, det, y).compile().as_text()
    assert text.count("conditional(") == 0
    bad = eqx.tree_at(lambda d: d.g1, det, jnp.asarray(1.3))
    with pytest.raises(ValueError, match=r"detector\.g1"):
        _sim(key, spec, bad, y)
    s2_only = eqx.filter_jit(lambda *a: _sim(*a).s2)
    assert np.all(np.isnan(np.asarray(s2_only(key, spec, bad, y))))
    bad_y = eqx.tree_at(lambda p: p.er_fano, y, jnp.asarray(-1.0))
    assert np.all(np.isnan(np.asarray(s2_only(key, spec, det, bad_y))))
    both = jax.tree.map(lambda a, b: jnp.stack([a, b]), det, bad)
    keys = jax.random.split(key, 2)
    vm = eqx.filter_jit(jax.vmap(with_valid(lambda k, d: _sim(k, spec, d, y).s1)))
    s1, valid = vm(keys, both)
    np.testing.assert_array_equal(np.asarray(valid), [True, False])
    assert np.all(np.isfinite(np.asarray(s1[0])))
    assert np.all(np.isnan(np.asarray(s1[1])))
    s1, valid = vm(keys, jax.tree.map(lambda a: jnp.stack([a, a]), det))
    assert np.all(np.asarray(valid))
    assert jnp.all(jnp.isfinite(s1))
