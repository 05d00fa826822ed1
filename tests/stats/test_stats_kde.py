"""Gaussian KDE (vs scipy.stats.gaussian_kde), CV bandwidth, background maps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import gaussian_kde as scipy_kde

from jaxdm import stats


@pytest.mark.x64
@pytest.mark.parametrize("bandwidth", ["scott", "silverman"])
def test_kde_equals_scipy_weighted(bandwidth):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)) @ np.array([[1, 0.5, 0], [0, 0.7, 0.2], [0, 0, 2.0]])
    w = rng.random(200)
    q = rng.normal(size=(7, 3))
    k = stats.gaussian_kde(x, weights=w, bandwidth=bandwidth)
    ref = scipy_kde(x.T, weights=w, bw_method=bandwidth)
    np.testing.assert_allclose(float(k.factor), ref.factor, rtol=1e-12)
    np.testing.assert_allclose(
        jax.jit(jax.vmap(k.log_prob))(q), ref.logpdf(q.T), rtol=1e-10
    )


@pytest.mark.x64
def test_cv_bandwidth_maximises_leave_one_out_and_grad():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(-2, 0.3, 150), rng.normal(2, 0.3, 150)])
    f = float(stats.cv_factor(x))
    ll = [
        float(stats.loo_log_likelihood(stats.gaussian_kde(x, bandwidth=g)))
        for g in (0.7 * f, f, 1.4 * f)
    ]
    assert ll[1] > ll[0]
    assert ll[1] > ll[2]
    # Bimodal data: Scott's rule oversmooths, the CV factor is smaller.
    assert f < float(stats.gaussian_kde(x).factor)
    # Differentiable in the query point: d log p / dx vs finite differences.
    k = stats.gaussian_kde(x, bandwidth="cv")
    g = jax.grad(lambda z: k.log_prob(jnp.atleast_1d(z)))(0.3)
    fd = (
        k.log_prob(jnp.array([0.3 + 1e-5])) - k.log_prob(jnp.array([0.3 - 1e-5]))
    ) / 2e-5
    np.testing.assert_allclose(g, fd, rtol=1e-5)


@pytest.mark.x64
def test_background_map_recovers_a_gradient():
    # Counts ~ Poisson(30 + 2 x) over a 20 x 20 deg patch: the map's mean at a
    # target follows the truth, and its spread is the Poisson one (arXiv:1803.05508's
    # background PDF at a dwarf position from blank-sky regions).
    rng = np.random.default_rng(2)
    pos = rng.uniform(-10, 10, size=(400, 2))
    lam = 30 + 2 * pos[:, 0]
    cnt = rng.poisson(lam).astype(float)
    m = stats.background_map(pos, cnt)
    for x0 in (-5.0, 0.0, 5.0):
        target = jnp.array([x0, 0.0])
        assert abs(float(m.mean(target)) - (30 + 2 * x0)) < 2.0
        assert 0.6 < float(m.std(target)) / np.sqrt(30 + 2 * x0) < 1.6
    # A normalised density over counts.
    grid = jnp.linspace(-20.0, 120.0, 4001)
    p = jnp.exp(jax.vmap(lambda n: m.log_prob(n, jnp.array([0.0, 0.0])))(grid))
    np.testing.assert_allclose(jnp.sum(p) * (grid[1] - grid[0]), 1.0, rtol=1e-4)
