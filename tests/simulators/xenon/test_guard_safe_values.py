"""Safe values of the xenon rule system under the poison policy (issue #12).

Inside a poison scope the traced checks record their condition and replace bad
entries by an in-range value (the strictest rule's), so that no sampler or root
finder ever runs on a NaN or out-of-range parameter; the outputs are poisoned by the
decorated public function. Here the scope is opened by hand to read the sanitised
values before poisoning.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxdm import _poison
from jaxdm.simulators import xenon
from jaxdm.simulators.xenon import _guards as _g


def _in_scope(fn):
    """jit of ``fn`` in a bare poison scope: (unpoisoned outputs, any recorded)."""

    def run(*args):
        scope = _poison._Scope(trace=_poison._trace_state())
        token = _poison._SCOPE.set(scope)
        try:
            out = fn(*args)
        finally:
            _poison._SCOPE.reset(token)
        return out, jnp.any(jnp.stack(scope.flags))

    return jax.jit(run)


def _bad_detector():
    det = xenon.lz_like()
    det = eqx.tree_at(lambda d: d.g1, det, jnp.asarray(jnp.nan))  # in_range (0, 1]
    det = eqx.tree_at(lambda d: d.se_gain, det, jnp.asarray(-3.0))  # positive
    det = eqx.tree_at(lambda d: d.se_width, det, jnp.asarray(-1.0))  # nonnegative
    return eqx.tree_at(lambda d: d.lce_slope, det, jnp.asarray(5.0))  # (-2, 2)


def test_rule_safe_values_replace_only_bad_fields():
    good = xenon.lz_like()
    (d, any_bad) = _in_scope(lambda det: xenon.check_detector(det))(_bad_detector())
    assert bool(any_bad)
    np.testing.assert_allclose(float(d.g1), 0.5)
    np.testing.assert_allclose(float(d.se_gain), 1.0)
    np.testing.assert_allclose(float(d.se_width), 1.0)
    np.testing.assert_allclose(float(d.lce_slope), 0.0)
    np.testing.assert_allclose(
        float(d.electron_lifetime), float(good.electron_lifetime)
    )
    (d2, any_bad2) = _in_scope(lambda det: xenon.check_detector(det))(good)
    assert not bool(any_bad2)
    np.testing.assert_allclose(float(d2.g1), float(good.g1))


def test_deferred_rules_are_sanitised_and_recorded():
    def fn(det):
        deferred = []
        det = xenon.check_detector(det, deferred=deferred)
        return _g.attach_to_leaves(det, deferred)

    d, any_bad = _in_scope(fn)(_bad_detector())
    assert bool(any_bad)
    np.testing.assert_allclose(float(d.g1), 0.5)
    np.testing.assert_allclose(float(d.se_gain), 1.0)


def test_guard_values_safe_value_per_entry():
    x = jnp.asarray([2.0, -1.0, jnp.nan, 0.0])
    out, any_bad = _in_scope(lambda v: _g.guard_values(v, "x", low=0.0))(x)
    assert bool(any_bad)
    np.testing.assert_allclose(np.asarray(out), [2.0, 1.0, 1.0, 0.0])
    out, _ = _in_scope(lambda v: _g.guard_values(v, "z", upper=0.0))(-x)
    np.testing.assert_allclose(np.asarray(out), [-2.0, -1.0, -1.0, -0.0])


def test_strictest_rule_wins():
    rules = [_g.finite(None), _g.positive(None), _g.in_range(None, 0.0, 0.5)]
    x = jnp.asarray([0.2, jnp.nan, 3.0])
    out, _ = _in_scope(lambda v: _g.guard_rules(v, rules, "x"))(x)
    np.testing.assert_allclose(np.asarray(out), [0.2, 0.25, 0.25])
