"""simulate_events fuses its traced parameter checks into one error_if (issue #12)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

from jaxdm.simulators import xenon


def _sim(k, s, d, y):
    return xenon.simulate_events(k, s, d, 32, yields=y, reparameterized=True)


def test_one_conditional_and_first_failing_message_under_jit_and_vmap():
    """Detector, yields and spectrum traced: the program holds one conditional (it
    held four, one per object, before the fusion); a bad value raises with its
    argument's name, also when only one output is used and under vmap (one bad
    row of two)."""
    spec = xenon.tabulated_spectrum(jnp.array([1.0, 50.0]), jnp.ones(2), "NR")
    det, y, key = xenon.lz_like(), xenon.YieldParams(), jax.random.key(0)
    text = jax.jit(_sim).lower(key, spec, det, y).compile().as_text()
    assert text.count("conditional(") == 1
    bad = eqx.tree_at(lambda d: d.g1, det, jnp.asarray(1.3))
    s2_only = eqx.filter_jit(lambda *a: _sim(*a).s2)
    with pytest.raises(eqx.EquinoxRuntimeError, match=r"detector\.g1"):
        jax.block_until_ready(s2_only(key, spec, bad, y))
    both = jax.tree.map(lambda a, b: jnp.stack([a, b]), det, bad)
    keys = jax.random.split(key, 2)
    vm = eqx.filter_jit(jax.vmap(lambda k, d: _sim(k, spec, d, y).s1))
    with pytest.raises(eqx.EquinoxRuntimeError, match=r"detector\.g1"):
        jax.block_until_ready(vm(keys, both))
    assert jnp.all(
        jnp.isfinite(vm(keys, jax.tree.map(lambda a: jnp.stack([a, a]), det)))
    )
