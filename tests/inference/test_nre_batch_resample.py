"""Batched SIR of ``jaxdm.inference.nre``: one compiled program for all observations."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm.inference import nre


@pytest.fixture(scope="module")
def setup():
    m = nre.make_ratio_estimator(
        jax.random.key(0), theta_dim=2, x_shape=(3,), marginals=[(0,), (1,), (0, 1)]
    )
    prior = jax.random.uniform(jax.random.key(1), (400, 2), minval=-1, maxval=1)
    xs = jax.random.normal(jax.random.key(2), (3, 3))
    return m, prior, xs


def test_batch_equals_per_observation_draws(setup):
    """Observation i of the batch is ``resample(split(key, m)[i], ws[i])`` exactly."""
    m, prior, xs = setup
    ws = nre.importance_samples(m, prior, xs, chunk_size=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nre.LowESSWarning)
        batch = nre.resample(jax.random.key(7), ws, 1, 50)
        keys = jax.random.split(jax.random.key(7), 3)
        loop = [
            nre.resample(keys[i], jax.tree.map(lambda a, i=i: a[i], ws), 1, 50)
            for i in range(3)
        ]
    assert batch.shape == (3, 50, 2)
    np.testing.assert_array_equal(batch, np.stack(loop))
    # The single-observation importance weights equal the batch's rows.
    one = nre.importance_samples(m, prior, xs[2], chunk_size=64)
    np.testing.assert_allclose(one.log_weights, ws.log_weights[2], rtol=1e-6)
    np.testing.assert_array_equal(ws.theta[2], prior)


def test_batch_resample_compiles_once_and_warns_on_low_ess(setup, jit_traces):
    m, prior, xs = setup
    ws = nre.importance_samples(m, prior, xs)
    with jit_traces() as first:
        with pytest.warns(nre.LowESSWarning, match="resample: 500 draws"):
            nre.resample(jax.random.key(0), ws, 0, 500)
    with jit_traces() as second, warnings.catch_warnings():
        warnings.simplefilter("ignore", nre.LowESSWarning)
        nre.resample(jax.random.key(1), ws, 0, 500)
    assert first.count("_resample_batch") == 1  # one program for all observations
    assert second == []  # the second call re-traces nothing
    n_ok = int(np.floor(np.min(ws.ess[:, 0]))) - 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", nre.LowESSWarning)
        nre.resample(jax.random.key(2), ws, 0, n_ok)


def test_batch_resample_under_jit_and_vmap_poisons_invalid_rows(setup):
    m, prior, xs = setup
    bad = xs.at[1, 0].set(jnp.nan)
    s = eqx.filter_jit(
        lambda mm, p, x: nre.resample(
            jax.random.key(3), nre.importance_samples(mm, p, x), 0, 20
        )
    )(m, prior, bad)
    s = np.asarray(s)
    assert np.all(np.isnan(s[1]))
    assert np.all(np.isfinite(s[[0, 2]]))
    # Draws are rows of the prior sample.
    rows = {tuple(r) for r in np.asarray(prior)}
    assert all(tuple(r) in rows for r in np.asarray(s[0]))
    ws = nre.importance_samples(m, prior, xs)
    keys = jax.random.split(jax.random.key(4), 2)
    v = jax.vmap(lambda k: nre.resample(k, ws, 0, 10))(keys)
    assert v.shape == (2, 3, 10, 2)
    np.testing.assert_array_equal(v[1], nre.resample(keys[1], ws, 0, 10))


def test_resample_rejects_bad_marginal_n_and_shapes(setup):
    m, prior, xs = setup
    ws = nre.importance_samples(m, prior, xs)
    with pytest.raises(ValueError, match=r"`marginal` must lie in \[0, 3\); got 3"):
        nre.resample(jax.random.key(0), ws, 3, 5)
    with pytest.raises(ValueError, match="`n` must be >= 1; got 0"):
        nre.resample(jax.random.key(0), ws, 0, 0)
    flat = nre.WeightedSamples(ws.theta[0, :, 0], ws.log_weights[0], ws.ess, ws.valid)
    with pytest.raises(ValueError, match="`ws` must hold one observation"):
        nre.resample(jax.random.key(0), flat, 0, 5)
