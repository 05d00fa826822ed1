"""The traced poison policy (jaxdm._poison): NaN/-1/False outputs plus a valid flag."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm._checks import guard_in_range, guard_positive
from jaxdm._poison import host_callbacks, pending, poison_policy, with_valid


@poison_policy
def _counts(key, rate, n: int = 4):
    """Toy public function: Poisson counts (int) and their mean (float)."""
    rate = guard_positive(rate, "rate")
    k = jax.random.poisson(key, rate, (n,))
    return {"counts": k, "mean": jnp.mean(k) * 1.0, "hit": k > 0, "key": key}


@poison_policy
def _outer(key, rate, frac):
    frac = guard_in_range(frac, "frac", 0.0, 1.0)
    out = _counts(key, rate)
    return out["mean"] * frac, out["hit"]


def test_eager_raises_naming_the_argument():
    with pytest.raises(ValueError, match="`rate` must be finite and > 0"):
        _counts(jax.random.key(0), -1.0)


def test_jit_poisons_every_output_kind():
    out = jax.jit(_counts)(jax.random.key(0), jnp.asarray(-1.0))
    assert np.all(np.asarray(out["counts"]) == -1)
    assert np.isnan(out["mean"])
    assert not np.any(out["hit"])
    good = jax.jit(_counts)(jax.random.key(0), jnp.asarray(3.0))
    assert np.all(np.asarray(good["counts"]) >= 0)
    assert np.isfinite(good["mean"])


def test_vmap_poisons_exactly_the_bad_rows_and_flags_them():
    rates = jnp.asarray([2.0, jnp.nan, 3.0, -1.0])
    keys = jax.random.split(jax.random.key(1), 4)
    out, valid = jax.jit(jax.vmap(with_valid(_counts)))(keys, rates)
    np.testing.assert_array_equal(valid, [True, False, True, False])
    np.testing.assert_array_equal(np.isnan(out["mean"]), ~np.asarray(valid))
    assert np.all(np.asarray(out["counts"])[~np.asarray(valid)] == -1)
    assert np.all(np.asarray(out["counts"])[np.asarray(valid)] >= 0)


def test_nested_calls_forward_to_the_outermost():
    # The inner call's bad rate must poison the outer call's outputs (a bool output
    # of the inner call is returned as is by the outer one) and clear its flag.
    (m, hit), valid = jax.jit(with_valid(_outer))(
        jax.random.key(0), jnp.asarray(-2.0), jnp.asarray(0.5)
    )
    assert not valid
    assert np.isnan(m)
    assert not np.any(hit)
    (m, _), valid = jax.jit(with_valid(_outer))(
        jax.random.key(0), jnp.asarray(2.0), jnp.asarray(1.5)
    )
    assert not valid
    assert np.isnan(m)
    (m, _), valid = jax.jit(with_valid(_outer))(
        jax.random.key(0), jnp.asarray(2.0), jnp.asarray(0.5)
    )
    assert valid
    assert np.isfinite(m)


def test_bad_value_is_replaced_before_use():
    # A NaN rate would make jax.random.poisson return -1 counts; the guard hands the
    # sampler a safe rate, and only the final poison marks the row.
    seen = []

    @poison_policy
    def spy(rate):
        rate = guard_positive(rate, "rate")
        seen.append(rate)
        return rate * 2.0

    out = jax.jit(spy)(jnp.asarray(jnp.nan))
    assert np.isnan(out)
    assert len(seen) == 1


def test_no_host_callback_under_poison_but_one_under_raise():
    key, rate = jax.random.key(0), jnp.asarray(2.0)
    assert host_callbacks(_counts, key, rate) == 0
    assert host_callbacks(_counts.__wrapped__, key, rate) >= 1


def test_inner_trace_falls_back_to_raising():
    @poison_policy
    def looped(rates):
        return jax.lax.map(lambda r: _counts(jax.random.key(0), r)["mean"], rates)

    f = eqx.filter_jit(looped)
    assert np.all(np.isfinite(f(jnp.asarray([1.0, 2.0]))))
    with pytest.raises(eqx.EquinoxRuntimeError, match="`rate` must be finite"):
        jax.block_until_ready(f(jnp.asarray([1.0, -2.0])))


def test_with_valid_refuses_a_prejitted_function():
    # A fresh function: jax caches the trace of a jitted function, and a cache hit
    # runs no Python (the docstring of with_valid says so).
    @poison_policy
    def fresh(rate):
        return guard_positive(rate, "rate") * 2.0

    with pytest.raises(ValueError, match="inner trace"):
        jax.jit(with_valid(jax.jit(fresh)))(jnp.asarray(1.0))


def test_eager_with_valid_is_true():
    _, valid = with_valid(_counts)(jax.random.key(0), 2.0)
    assert bool(valid)


def _selects(fn, *args) -> int:
    """Number of select_n equations in fn's jaxpr, inner jaxprs included."""

    def walk(jaxpr):
        n = 0
        for e in jaxpr.eqns:
            n += e.primitive.name == "select_n"
            for p in e.params.values():
                for q in p if isinstance(p, list | tuple) else [p]:
                    inner = getattr(q, "jaxpr", q)
                    if hasattr(inner, "eqns"):
                        n += walk(inner)
        return n

    return walk(jax.make_jaxpr(fn)(*args).jaxpr)


@poison_policy(poisons_itself=True)
def _self_poisoning(rate, late=None):
    """Toy: poisons its only output itself from pending(); ``late`` is checked after."""
    rate = guard_positive(rate, "rate")
    bad = pending()
    out = rate * 2.0
    if bad is not None:
        out = jnp.where(bad, jnp.nan, out)
    if late is not None:
        out = out + guard_positive(late, "late")
    return out


def test_poisons_itself_skips_the_final_mask_only_when_it_took_the_condition():
    assert np.isnan(jax.jit(_self_poisoning)(jnp.asarray(-1.0)))
    # The guard's safe value + its own mask, no mask by the decorator:
    assert _selects(_self_poisoning, jnp.asarray(1.0)) == 2
    # A condition recorded after pending(): the decorator masks the outputs again.
    one = jnp.asarray(1.0)
    assert np.isnan(jax.jit(_self_poisoning)(one, jnp.asarray(-1.0)))
    assert _selects(_self_poisoning, one, one) == 4


def test_pending_is_none_when_nested_and_the_caller_poisons():
    @poison_policy
    def caller(rate):
        return _self_poisoning(rate) + 1.0

    out, valid = jax.jit(with_valid(caller))(jnp.asarray(-1.0))
    assert not valid
    assert np.isnan(out)
    out, valid = jax.jit(with_valid(caller))(jnp.asarray(1.0))
    assert valid
    assert out == 3.0


def test_with_valid_of_a_self_poisoning_function_adds_no_mask():
    out, valid = jax.jit(with_valid(_self_poisoning))(jnp.asarray(-1.0))
    assert not valid
    assert np.isnan(out)
    assert _selects(with_valid(_self_poisoning), jnp.asarray(1.0)) == 2
