"""Tests of TMNRE box truncation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm.inference import nre
from jaxdm.inference.truncation import Box, run_tmnre, truncate_box, uniform_box_sampler
from jaxdm.store import SimulationStore

TRUTH = jnp.array([1.3, -2.1])


def _simulate(key, theta):
    """Narrow posterior: x = theta + N(0, 0.05^2) under a U(-5, 5)^2 prior."""
    return theta + 0.05 * jax.random.normal(key, theta.shape)


def _make(key):
    return nre.make_ratio_estimator(
        key, theta_dim=2, x_shape=(2,), marginals=[(0,), (1,)], method="C", width=32
    )


@pytest.mark.parametrize(
    "use_store", [True, pytest.param(False, marks=pytest.mark.slow)]
)
def test_rounds_shrink_nested_around_truth(tmp_path, use_store):
    """Fixed-key run: boxes are nested, contain the truth, and shrink by > 20x."""
    x_obs = _simulate(jax.random.key(0), TRUTH)
    box0 = Box(np.full(2, -5.0), np.full(2, 5.0))
    store = (
        SimulationStore.create(tmp_path / "bank.h5", theta_dim=2, x_shape=(2,))
        if use_store
        else None
    )
    rounds = run_tmnre(
        jax.random.key(1),
        _simulate,
        x_obs,
        box0,
        _make,
        n_sims=600,
        max_rounds=3,
        epsilon=1e-5,
        store=store,
        train_kwargs={
            "max_epochs": 50,
            "batch_size": 64,
            "patience": 10,
            "learning_rate": 3e-3,
        },
    )
    boxes = [r.box for r in rounds] + [rounds[-1].new_box]
    for outer, inner in zip(boxes[:-1], boxes[1:], strict=True):
        assert np.all(inner.low >= outer.low)
        assert np.all(inner.high <= outer.high)
    for b in boxes:
        assert b.contains(TRUTH)
    assert boxes[-1].volume() < box0.volume() / 20
    for r in rounds:
        assert r.theta.shape == (600, 2)
        assert np.all(r.box.contains(r.theta))
    if store is not None:
        assert store.n_rows < 600 * len(rounds)  # earlier rounds' sims were reused
        assert len(store.regions) == len(rounds)
        store.close()


def test_truncate_box_keeps_high_ratio_region(getkey):
    """A hand-set head: log r = -(theta - 1)^2 / (2 * 0.1^2) along theta_0."""
    m = nre.make_ratio_estimator(
        getkey(), theta_dim=2, x_shape=(1,), marginals=[(0,)], width=4, depth=1
    )

    class Head:
        def __call__(self, z):
            return -((z[0] - 1.0) ** 2) / (2 * 0.01) * jnp.ones(1)

    import equinox as eqx

    m = eqx.tree_at(lambda t: t.heads, m, (Head(),))
    box = truncate_box(
        m,
        jnp.zeros(1),
        Box(np.array([-5.0, 0.0]), np.array([5.0, 1.0])),
        epsilon=np.exp(-8.0),
    )
    # log r > -8  <=>  |theta - 1| < 0.4, widened by one grid cell (10 / 511).
    np.testing.assert_allclose([box.low[0], box.high[0]], [0.6, 1.4], atol=0.04)
    np.testing.assert_array_equal([box.low[1], box.high[1]], [0.0, 1.0])
    with pytest.raises(ValueError, match="`epsilon`"):
        truncate_box(m, jnp.zeros(1), box, epsilon=2.0)


def test_uniform_box_sampler(getkey):
    s = uniform_box_sampler(getkey(), 500, [0.0, -1.0], [1.0, 0.0])
    assert s.shape == (500, 2)
    assert Box(np.array([0.0, -1.0]), np.array([1.0, 0.0])).contains(s).all()


def test_nonfinite_x_obs_is_named():
    """Issue #12 part 6: a NaN observation fails at once with the public name."""
    box0 = Box(np.full(2, -5.0), np.full(2, 5.0))
    bad = jnp.array([jnp.nan, 0.0])
    with pytest.raises(ValueError, match="`x_obs` has 1 non-finite"):
        run_tmnre(jax.random.key(0), _simulate, bad, box0, _make, n_sims=64)
    with pytest.raises(ValueError, match="`x_obs`"):
        truncate_box(_make(jax.random.key(1)), bad, box0)
    with pytest.raises(ValueError, match=r"`x_obs` must have shape \(2,\)"):
        truncate_box(_make(jax.random.key(1)), jnp.zeros(3), box0)
