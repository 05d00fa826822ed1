"""Tests of jaxdm.inference.npe: contract, round trips, recovery of known posteriors."""

import chex
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm.flows import Box
from jaxdm.inference import npe as npe_mod
from jaxdm.inference.npe import make_npe, train_npe

THETA_DIM, X_DIM = 2, 3


def _small(key, **kw):
    base = dict(
        theta_dim=THETA_DIM, x_shape=X_DIM, embedding_dim=8, embedding_width=16,
        flow_layers=2, flow_hidden=(16,), n_bins=4,
    )  # fmt: skip
    return make_npe(key, **(base | kw))


def _linear_gaussian_data(key, n):
    """theta ~ N(0, I_2), x = A theta + 0.5 eps: the posterior is Gaussian."""
    k1, k2 = jax.random.split(key)
    a = jnp.array([[1.0, 0.0], [0.5, 1.0], [0.0, -1.0]])
    theta = jax.random.normal(k1, (n, 2))
    x = theta @ a.T + 0.5 * jax.random.normal(k2, (n, 3))
    return a, theta, x


def _analytic_posterior(a, x_obs, noise=0.5):
    prec = jnp.eye(2) + a.T @ a / noise**2
    cov = jnp.linalg.inv(prec)
    return cov @ a.T @ x_obs / noise**2, cov


@pytest.mark.parametrize("flow", ["nsf", "maf"])
def test_shapes_and_finiteness(getkey, jit, flow):
    npe = _small(getkey(), flow=flow)
    x = jnp.ones(X_DIM)
    lp = jit(npe.log_prob)(jnp.zeros(THETA_DIM), x)
    chex.assert_shape(lp, ())
    samples = jit(lambda k, x: npe.sample(k, x, 5))(getkey(), x)
    chex.assert_shape(samples, (5, THETA_DIM))
    chex.assert_tree_all_finite((lp, samples))


def test_jit_equals_eager_and_vmap_equals_loop(getkey):
    """Batched x: pairs, (n_obs, m) grids and samples in one call equal the loops."""
    npe = _small(getkey())
    theta = jax.random.normal(getkey(), (3, THETA_DIM))
    x = jax.random.normal(getkey(), (3, X_DIM))
    batched = eqx.filter_jit(npe.log_prob)(theta, x)
    loop = jnp.stack([npe.log_prob(t, xi) for t, xi in zip(theta, x, strict=True)])
    chex.assert_shape(batched, (3,))
    np.testing.assert_allclose(batched, loop, rtol=1e-5, atol=1e-5)
    grid = jax.random.normal(getkey(), (3, 5, THETA_DIM))
    lp_grid = npe.log_prob(grid, x)
    chex.assert_shape(lp_grid, (3, 5))
    np.testing.assert_allclose(lp_grid[1], npe.log_prob(grid[1], x[1]), rtol=1e-5)
    key = getkey()
    s1, l1 = npe.sample_and_log_prob(key, x, 4)
    s2 = eqx.filter_jit(lambda k, x: npe.sample(k, x, 4))(key, x)
    chex.assert_shape(s1, (3, 4, THETA_DIM))
    np.testing.assert_allclose(s1, s2, rtol=1e-5, atol=1e-5)
    # The returned log q is the density of the returned samples.
    np.testing.assert_allclose(l1, npe.log_prob(s1, x), rtol=1e-3, atol=1e-3)


def test_same_key_same_samples(getkey):
    npe = _small(getkey())
    x = jnp.ones(X_DIM)
    k = getkey()
    np.testing.assert_array_equal(npe.sample(k, x, 7), npe.sample(k, x, 7))
    assert not np.array_equal(npe.sample(k, x, 7), npe.sample(getkey(), x, 7))


def test_box_support_samples_stay_inside(getkey):
    low, high = jnp.array([-1.0, 0.0]), jnp.array([1.0, 5.0])
    npe = _small(getkey(), support=Box(low, high))
    s = npe.sample(getkey(), jnp.ones(X_DIM), 2000)
    assert bool(jnp.all((s > low[None]) & (s < high[None])))


def test_save_load_round_trip(getkey, tmp_path):
    npe = _small(
        getkey(),
        support=Box(jnp.array([-2.0, -2.0]), jnp.array([2.0, 2.0])),
        flow_activation="relu",
        flow_linear_skip=True,
    )
    _, theta, x = _linear_gaussian_data(getkey(), 256)
    theta = jnp.clip(theta, -1.9, 1.9)
    npe, _ = train_npe(getkey(), npe, theta, x, max_epochs=2, progress=False)
    path = tmp_path / "npe.eqx"
    npe_mod.save(path, npe)
    back = npe_mod.load(path)
    assert back.flow.conditioners[0].activation == "relu"
    assert back.flow.conditioners[0].skip is not None
    t, xo = jnp.array([0.3, -0.2]), jnp.array([0.1, 0.2, 0.3])
    np.testing.assert_array_equal(npe.log_prob(t, xo), back.log_prob(t, xo))
    np.testing.assert_array_equal(back.x_standardizer.mean, npe.x_standardizer.mean)
    bad = tmp_path / "bad.eqx"
    bad.write_bytes(b"not a model\n")
    with pytest.raises(ValueError, match="not a jaxdm estimator"):
        npe_mod.load(bad)


def test_bad_inputs(getkey):
    npe = _small(getkey())
    with pytest.raises(ValueError, match=r"`x` must have shape \(3,\)"):
        npe.sample(getkey(), jnp.ones(4), 3)
    with pytest.raises(ValueError, match="`n` must be >= 1"):
        npe.sample(getkey(), jnp.ones(X_DIM), 0)
    with pytest.raises(ValueError, match="n_obs=2 rows"):
        npe.log_prob(jnp.ones((3, THETA_DIM)), jnp.ones((2, X_DIM)))
    with pytest.raises(TypeError, match="legacy"):
        npe.sample(jax.random.PRNGKey(0), jnp.ones(X_DIM), 3)
    with pytest.raises(ValueError, match="`theta` must have"):
        npe.log_prob(jnp.ones(3), jnp.ones(X_DIM))
    theta, x = jnp.zeros((10, THETA_DIM)), jnp.zeros((10, X_DIM))
    with pytest.raises(ValueError, match="same number of rows"):
        train_npe(getkey(), npe, theta, x[:9], progress=False)
    with pytest.raises(ValueError, match="non-finite"):
        train_npe(getkey(), npe, theta, x.at[2, 0].set(jnp.inf), progress=False)
    with pytest.raises(ValueError, match=r"`x` must have shape \(\*, 3\)"):
        train_npe(getkey(), npe, theta, jnp.zeros((10, 4)), progress=False)
    with pytest.raises(ValueError, match="embedding"):
        make_npe(getkey(), theta_dim=2, x_shape=3, embedding="transformer")
    with pytest.raises(ValueError, match="`flow_activation` must be one of"):
        make_npe(getkey(), theta_dim=2, x_shape=3, flow_activation="swish")


def test_recovers_linear_gaussian_posterior():
    """Linear-Gaussian model: the exact posterior is N(mu, Sigma) in closed form.

    With 4,000 simulations a small NSF must learn the posterior mean to within a
    fraction of the posterior width and the covariance to ~20%; a flow that ignores x
    (or a sign error in the standardisation Jacobian) misses both by far.
    """
    key = jax.random.key(7)
    a, theta, x = _linear_gaussian_data(key, 4000)
    npe = make_npe(
        jax.random.key(1), theta_dim=2, x_shape=3, embedding_dim=16, flow_layers=3,
        flow_hidden=(32, 32),
    )  # fmt: skip
    npe, hist = train_npe(
        jax.random.key(2), npe, theta, x, batch_size=128, max_epochs=60, patience=8,
        progress=False,
    )  # fmt: skip
    x_obs = jnp.array([0.8, 0.2, -0.5])
    mu, cov = _analytic_posterior(a, x_obs)
    s = npe.sample(jax.random.key(3), x_obs, 4000)
    sd = jnp.sqrt(jnp.diag(cov))
    # 4,000 samples: Monte-Carlo error on the mean is sd/63; allow 0.2 sd for training.
    np.testing.assert_array_less(jnp.abs(s.mean(0) - mu), 0.2 * sd)
    tol = 0.1 * float(sd.min() ** 2)
    np.testing.assert_allclose(jnp.cov(s.T), cov, rtol=0.25, atol=tol)
    # The density must be normalised and match the analytic log-density (up to the
    # approximation error) at the posterior mean.
    lp_true = jax.scipy.stats.multivariate_normal.logpdf(mu, mu, cov)
    assert abs(float(npe.log_prob(mu, x_obs) - lp_true)) < 0.3


def test_run_npe_from_task_sampler(getkey):
    """run_npe simulates with a task's (key, n) prior sampler and trains end to end."""
    from jaxdm import tasks

    task = tasks.get_task("two_moons")
    npe, hist, (theta, x) = npe_mod.run_npe(
        getkey(), task.sample_prior, task.simulate, n_simulations=300,
        support=task.support, chunk_size=128, progress=False,
        npe_kwargs=dict(embedding_dim=8, flow_layers=2, flow_hidden=(16,), n_bins=4),
        train_kwargs=dict(max_epochs=2),
    )  # fmt: skip
    assert theta.shape == (300, 2)
    assert x.shape == (300, 2)
    assert len(hist.train_loss) >= 1
    s = npe.sample(getkey(), x[:4], 10)
    assert s.shape == (4, 10, 2)
    assert bool(jnp.all(jax.vmap(jax.vmap(task.support.contains))(s)))
