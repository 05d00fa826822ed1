"""NPE after training and at the boundary: frozen supports and masks, compiled
sampling that traces once per shape, and guarded observations (issues #20, #12)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm import tasks
from jaxdm.flows import Box
from jaxdm.inference import finite_rows, npe as npe_mod
from jaxdm.inference.npe import make_npe, train_npe
from jaxdm.train import trainable_filter


def _small(key, **kw):
    base = dict(
        embedding_dim=8, embedding_width=16, flow_layers=2, flow_hidden=(16,), n_bins=4
    )
    return make_npe(key, **(base | kw))


@pytest.fixture(scope="module")
def trained_two_moons():
    """A small NPE with two_moons' Box(-1, 1) prior, trained 4 epochs (defaults).

    Four epochs of 14 AdamW steps at the default schedule move every trainable
    leaf by ~1e-3 or more (Adam's step is ~lr whatever the gradient), so a bound or
    a mask left trainable would differ from its initial value.
    """
    task = tasks.get_task("two_moons")
    theta, x = task.sample_joint(jax.random.key(0), 3000)
    npe0 = _small(jax.random.key(1), theta_dim=2, x_shape=2, support=task.support)
    npe, _ = train_npe(jax.random.key(2), npe0, theta, x, max_epochs=4, progress=False)
    return task, npe0, npe


def test_box_bounds_stay_put_and_samples_stay_inside(trained_two_moons):
    """Issue #20 item 1: the prior box is not trained, and samples never leave it.

    Before the fix AdamW moved two_moons' bounds to [-1.059, 1.069] after default
    training and 0.84% of the samples fell outside [-1, 1]^2.
    """
    task, npe0, npe = trained_two_moons
    box = npe.flow.support
    assert isinstance(box, Box)
    np.testing.assert_array_equal(box.low, npe0.flow.support.low)
    np.testing.assert_array_equal(box.high, npe0.flow.support.high)
    np.testing.assert_array_equal(box.low, task.support.low)
    np.testing.assert_array_equal(box.high, task.support.high)
    _, x_obs = tasks.observation(jax.random.key(3), task)
    s = npe.sample(jax.random.key(4), x_obs, 100_000)
    assert s.shape == (100_000, 2)
    inside = (s >= task.support.low[None]) & (s <= task.support.high[None])
    assert bool(jnp.all(inside)), f"{int((~inside.all(1)).sum())} samples outside"


def test_made_masks_and_supports_are_not_trainable(trained_two_moons):
    """The MADE connectivity masks are boolean (never inexact, so never trained)
    and equal after training; supports are frozen for ``fit``."""
    _, npe0, npe = trained_two_moons
    spec = trainable_filter(npe)
    assert spec.flow.support is False
    for made0, made in zip(npe0.flow.conditioners, npe.flow.conditioners, strict=True):
        for lay0, lay, lay_spec in zip(
            made0.layers, made.layers, spec.flow.conditioners[0].layers, strict=True
        ):
            assert lay.mask.dtype == jnp.bool_
            assert lay_spec.mask is False
            np.testing.assert_array_equal(lay.mask, lay0.mask)
            assert not np.array_equal(lay.weight, lay0.weight)  # the rest did train


class _CompileCounter:
    """Counts XLA compilations through jax.monitoring's public event hook."""

    def __init__(self):
        self.n = 0

    def __call__(self, event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            self.n += 1


@pytest.fixture
def compiles():
    counter = _CompileCounter()
    jax.monitoring.register_event_duration_secs_listener(counter)
    yield counter
    jax.monitoring.unregister_event_duration_listener(counter)


def test_sampling_compiles_once_per_shape(compiles):
    """Issue #20 item 2: NPE.sample/log_prob compile internally; same shapes compile
    once, a new number of observations compiles once more, new weights not at all."""
    npe = _small(jax.random.key(0), theta_dim=2, x_shape=5)
    k1, k2 = jax.random.key(1), jax.random.key(2)
    xa = jax.random.normal(k1, (7, 5))  # a shape no other test uses
    xb = jax.random.normal(k2, (7, 5))
    xc = jax.random.normal(k2, (4, 5))
    theta = jax.random.normal(k1, (7, 3, 2))
    theta2 = jax.random.normal(k2, (7, 3, 2))
    compiles.n = 0
    s1 = npe.sample(k1, xa, 123)
    assert compiles.n == 1
    s2 = npe.sample(k2, xb, 123)
    assert compiles.n == 1, "same shapes must reuse the compiled sampler"
    assert s1.shape == s2.shape == (7, 123, 2)
    npe.sample(k1, xc, 123)
    assert compiles.n == 2, "a new n_obs costs exactly one compile"
    other = _small(jax.random.key(9), theta_dim=2, x_shape=5)
    other.sample(k1, xa, 123)
    assert compiles.n == 2, "new weights of the same structure must not recompile"
    npe.log_prob(theta, xa)
    npe.log_prob(theta2, xb)
    assert compiles.n == 3


def test_compiled_sampling_equals_op_by_op(getkey):
    """The internal jit changes nothing numerically (jax.disable_jit reference)."""
    npe = _small(getkey(), theta_dim=2, x_shape=3, support=Box([-2, -1], [2, 3]))
    x, k = jax.random.normal(getkey(), (3, 3)), getkey()
    s, lq = npe.sample_and_log_prob(k, x, 50)
    with jax.disable_jit():
        s_ref, lq_ref = npe.sample_and_log_prob(k, x, 50)
    np.testing.assert_allclose(s, s_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lq, lq_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(npe.log_prob(s, x), lq, rtol=1e-4, atol=1e-3)


def test_nonfinite_observations_raise_eagerly_naming_rows(getkey):
    npe = _small(getkey(), theta_dim=2, x_shape=3)
    x = jnp.ones((5, 3)).at[1, 0].set(jnp.nan).at[3, 2].set(jnp.inf)
    with pytest.raises(ValueError, match=r"`x` has non-finite .* rows \[1, 3\]"):
        npe.sample(getkey(), x, 4)
    with pytest.raises(ValueError, match=r"`x` has non-finite .* rows \[1, 3\]"):
        npe.log_prob(jnp.zeros((5, 2)), x)
    with pytest.raises(ValueError, match="`x` has non-finite"):
        npe.sample_and_log_prob(getkey(), x[1], 4)
    with pytest.raises(ValueError, match=r"`theta` has non-finite .* rows \[2\]"):
        npe.log_prob(jnp.zeros((4, 2)).at[2, 1].set(jnp.nan), x[0])
    with pytest.raises(ValueError, match=r"`context` has non-finite"):
        npe.flow.sample(getkey(), jnp.full(8, jnp.nan), (3,))


def test_nonfinite_observations_give_nan_rows_under_jit(getkey):
    """Under jit: NaN for exactly the bad observations, the others unchanged."""
    npe = _small(getkey(), theta_dim=2, x_shape=3)
    x_good = jax.random.normal(getkey(), (5, 3))
    x = x_good.at[1, 0].set(jnp.nan).at[3, 2].set(jnp.inf)
    k = getkey()
    s, lq = eqx.filter_jit(lambda m, k, x: m.sample_and_log_prob(k, x, 6))(npe, k, x)
    s_ref, lq_ref = npe.sample_and_log_prob(k, x_good, 6)
    ok = npe.finite_rows(x)
    np.testing.assert_array_equal(ok, [True, False, True, False, True])
    np.testing.assert_array_equal(finite_rows(x), ok)
    assert bool(jnp.all(jnp.isnan(s[~ok])))
    assert bool(jnp.all(jnp.isnan(lq[~ok])))
    np.testing.assert_allclose(s[ok], s_ref[ok], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lq[ok], lq_ref[ok], rtol=1e-5, atol=1e-5)
    theta = jax.random.normal(getkey(), (5, 4, 2)).at[0, 2].set(jnp.nan)
    lp = eqx.filter_jit(npe.log_prob)(theta, x)
    lp_ref = npe.log_prob(theta.at[0, 2].set(0.0), x_good)
    bad = ~ok[:, None] | jnp.zeros((5, 4), bool).at[0, 2].set(True)
    assert bool(jnp.all(jnp.isnan(lp[bad])))
    np.testing.assert_allclose(lp[~bad], lp_ref[~bad], rtol=1e-5, atol=1e-5)
    # The flow itself: a NaN context poisons all its samples under jit.
    fs = jax.jit(lambda k, c: npe.flow.sample(k, c, (3,)))(k, jnp.full(8, jnp.nan))
    assert bool(jnp.all(jnp.isnan(fs)))
    # vmap over observations goes through the same guard.
    sv = jax.vmap(lambda xi: npe.sample(k, xi, 2))(x)
    assert bool(jnp.all(jnp.isnan(sv[~ok])))
    assert bool(jnp.all(jnp.isfinite(sv[ok])))


def test_finite_rows_event_ndim():
    x = jnp.ones((2, 3, 4)).at[1, 2, 3].set(jnp.nan)
    np.testing.assert_array_equal(finite_rows(x), [True, False])
    np.testing.assert_array_equal(
        finite_rows(x, event_ndim=1), [[True] * 3, [True, True, False]]
    )
    assert finite_rows(x, event_ndim=3).shape == ()
    with pytest.raises(ValueError, match="`event_ndim`"):
        finite_rows(x, event_ndim=4)


def test_int_arguments_type_errors_name_the_public_argument(getkey):
    kw = dict(theta_dim=2, x_shape=3)
    with pytest.raises(TypeError, match="`flow_layers`"):
        make_npe(getkey(), **kw, flow_layers="5")
    with pytest.raises(TypeError, match="`theta_dim`"):
        make_npe(getkey(), theta_dim=2.0, x_shape=3)
    with pytest.raises(ValueError, match="`flow_layers` must be >= 1"):
        make_npe(getkey(), **kw, flow_layers=0)
    npe = _small(getkey(), **kw)
    with pytest.raises(TypeError, match="`n`"):
        npe.sample(getkey(), jnp.ones(3), 10.0)


def test_default_schedule_is_cached_and_warms_up():
    opt = npe_mod.default_schedule_optimizer(2e-3, 45, 120)
    assert opt is npe_mod.default_schedule_optimizer(2e-3, 45, 120)
    npe_mod.default_schedule_optimizer(2e-3, 3, 1)  # max_epochs < 5: no warm-up
