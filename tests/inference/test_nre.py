"""Tests of neural ratio estimation (NRE-A/B/C, BNRE, marginal heads, posteriors)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from jax.test_util import check_grads

from jaxdm.inference import nre
from jaxdm.tasks import gaussian_linear

MARGS = nre.all_marginals(2, joint=True)  # (0,), (1,), (0, 1)


@pytest.fixture(scope="module")
def trained():
    """NRE-C (K=2, gamma=1) on gaussian_linear(dim=2): 4000 sims, <= 60 epochs."""
    task = gaussian_linear(dim=2)
    th, x = task.sample_joint(jax.random.key(0), 4000)
    m = nre.make_ratio_estimator(
        jax.random.key(1), theta_dim=2, x_shape=(2,), marginals=MARGS, method="C"
    )
    m, _ = nre.train_ratio_estimator(
        jax.random.key(2), m, th, x, max_epochs=60, batch_size=128
    )
    return task, m


def test_log_ratio_matches_analytic_up_to_constant(trained):
    """log r(theta, x) - log p(x | theta) is constant in theta (held-out points).

    gaussian_linear (sbibm): theta ~ N(0, 0.1 I), x ~ N(theta, 0.1 I), so the true
    log ratio is log N(x; theta, 0.1 I) - log p(x). The held-out theta are drawn around
    x_o (+- 0.3, about the posterior's 3 sigma) where the posterior has its mass.
    Tolerance: the residual's spread must be < 25% of the spread of log p(x | theta)
    (R^2 > 0.94); an untrained or wrong-sign network gives >= 100%.
    """
    task, m = trained
    xo = task.simulate(jax.random.key(10), jnp.array([0.1, -0.2]))
    tt = xo[None] + 0.3 * jax.random.normal(jax.random.key(11), (500, 2))
    ll = jax.vmap(task.log_likelihood, (0, None))(tt, xo)
    d = m.log_ratio(tt, xo)[:, 2] - ll
    assert float(jnp.std(d)) < 0.25 * float(jnp.std(ll))


def test_marginal_posteriors_match_analytic_ks(trained):
    """1-D marginals by importance weighting agree with the analytic Gaussian (KS).

    The posterior is N(x/2, 0.05 I) for gaussian_linear; KS p-value > 1e-3 on 1000
    resampled draws (a shift of 0.2 sigma would already fail at this size).
    """
    task, m = trained
    xo = task.simulate(jax.random.key(12), jnp.array([0.2, 0.0]))
    prior = task.sample_prior(jax.random.key(13), 20_000)
    ws = nre.importance_samples(m, prior, xo)
    mu, var = task.posterior_moments(xo)
    for h in (0, 1):
        s = nre.resample(jax.random.key(14 + h), ws, h, 1000)[:, h]
        p = scipy.stats.kstest(
            np.asarray(s), "norm", args=(float(mu[h]), float(jnp.sqrt(var[h])))
        ).pvalue
        assert p > 1e-3

    # Grid marginal integrates to one and peaks near the analytic mean.
    def log_prior(t):  # marginal prior N(0, 0.1) of theta_0
        return jnp.sum(jax.scipy.stats.norm.logpdf(t, 0.0, jnp.sqrt(0.1)))

    axes, dens = nre.marginal_grid(
        m, xo, 0, [-1, -1], [1, 1], n_grid=201, log_prior=log_prior
    )
    assert abs(float(jnp.sum(dens) * (axes[0][1] - axes[0][0])) - 1) < 1e-4
    assert abs(float(axes[0][jnp.argmax(dens)]) - float(mu[0])) < 0.1


def test_nuts_over_ratio_potential(trained):
    """NUTS on log prior + log r reproduces the analytic joint posterior mean/std."""
    task, m = trained
    xo = jnp.array([0.3, -0.3])
    s = nre.sample_nuts(
        jax.random.key(20),
        m,
        xo,
        task.prior().log_prob,
        num_samples=400,
        num_warmup=200,
    )
    mu, var = task.posterior_moments(xo)
    # Tolerance: 0.25 posterior sigma (~0.056), MC error of 400 correlated draws ~0.02.
    np.testing.assert_allclose(np.mean(s, 0), mu, atol=0.25 * np.sqrt(0.05))
    np.testing.assert_allclose(np.std(s, 0), np.sqrt(var), rtol=0.3)


def test_shapes_jit_vmap_determinism(getkey, jit):
    m = nre.make_ratio_estimator(
        getkey(), theta_dim=3, x_shape=(4,), marginals=nre.all_marginals(3)
    )
    assert m.marginals == ((0,), (1,), (2,), (0, 1), (0, 2), (1, 2))
    th = jax.random.normal(getkey(), (5, 3))
    x = jax.random.normal(getkey(), (5, 4))
    f = jit(lambda mm, a, b: mm.log_ratio(a, b))
    assert f(m, th[0], x[0]).shape == (6,)
    assert f(m, th, x[0]).shape == (5, 6)
    assert f(m, th, x).shape == (5, 6)
    assert f(m, th[:2], x).shape == (5, 2, 6)
    np.testing.assert_allclose(f(m, th, x), jax.vmap(m)(th, x), rtol=1e-5, atol=1e-6)
    m2 = nre.make_ratio_estimator(jax.random.key(5), theta_dim=3, x_shape=(4,))
    m3 = nre.make_ratio_estimator(jax.random.key(5), theta_dim=3, x_shape=(4,))
    assert jnp.array_equal(m2(th[0], x[0]), m3(th[0], x[0]))


def test_nre_c_with_k1_gamma1_is_nre_a_and_balance_penalty(getkey):
    """NRE-C with K=1, gamma=1 is the NRE-A loss (Miller et al. 2022, Sec. 3)."""
    ka = getkey()
    a = nre.make_ratio_estimator(ka, theta_dim=2, x_shape=(2,), method="A")
    c = nre.make_ratio_estimator(
        ka, theta_dim=2, x_shape=(2,), method="C", n_contrastive=1, gamma=1.0
    )
    batch = {
        "theta": jax.random.normal(getkey(), (16, 2)),
        "x": jax.random.normal(getkey(), (16, 2)),
    }
    la = nre.nre_loss(a, batch)
    np.testing.assert_allclose(la, nre.nre_loss(c, batch), rtol=1e-6)
    # Explicit binary cross-entropy, halved (gamma / (1 + gamma) = 1/2).
    f0 = jax.vmap(a)(batch["theta"], batch["x"])[:, 0]
    f1 = jax.vmap(a)(jnp.roll(batch["theta"], -1, 0), batch["x"])[:, 0]
    ref = 0.5 * (-jnp.mean(jax.nn.log_sigmoid(f0)) - jnp.mean(jax.nn.log_sigmoid(-f1)))
    np.testing.assert_allclose(la, ref, rtol=1e-5)
    b = nre.make_ratio_estimator(
        ka, theta_dim=2, x_shape=(2,), method="A", balance=100.0
    )
    pen = (jnp.mean(jax.nn.sigmoid(f0)) + jnp.mean(jax.nn.sigmoid(f1)) - 1) ** 2
    np.testing.assert_allclose(nre.nre_loss(b, batch), la + 100 * pen, rtol=1e-5)
    nb = nre.make_ratio_estimator(
        ka, theta_dim=2, x_shape=(2,), method="B", n_contrastive=3
    )
    assert jnp.isfinite(nre.nre_loss(nb, batch))


def test_bad_arguments(getkey):
    with pytest.raises(ValueError, match="`method`"):
        nre.make_ratio_estimator(getkey(), theta_dim=2, x_shape=(2,), method="D")
    with pytest.raises(ValueError, match="`n_contrastive`"):
        nre.make_ratio_estimator(
            getkey(), theta_dim=2, x_shape=(2,), method="B", n_contrastive=1
        )
    with pytest.raises(ValueError, match="`marginals`"):
        nre.make_ratio_estimator(
            getkey(), theta_dim=2, x_shape=(2,), marginals=[(0, 2)]
        )
    with pytest.raises(TypeError):
        nre.make_ratio_estimator(0, theta_dim=2, x_shape=(2,))
    m = nre.make_ratio_estimator(getkey(), theta_dim=2, x_shape=(2,))
    with pytest.raises(ValueError, match="`x` must have shape"):
        m.log_ratio(jnp.zeros(2), jnp.zeros(3))
    with pytest.raises(ValueError, match="no joint head"):
        nre.sample_nuts(
            getkey(),
            nre.make_ratio_estimator(
                getkey(), theta_dim=2, x_shape=(2,), marginals=[(0,)]
            ),
            jnp.zeros(2),
            lambda t: 0.0,
        )


def test_sbc_ranks_shapes(trained, getkey):
    task, m = trained
    tt, xt = task.sample_joint(getkey(), 20)
    ranks, params = nre.sbc_ranks(
        getkey(), m, tt, xt, task.sample_prior(getkey(), 500), n_posterior_samples=30
    )
    assert params == (0, 1)
    assert ranks.shape == (20, 2)
    assert int(ranks.min()) >= 0
    assert int(ranks.max()) <= 30


def test_save_load_roundtrip(tmp_path, getkey):
    m = nre.make_ratio_estimator(
        getkey(),
        theta_dim=2,
        x_shape=(3,),
        marginals=MARGS,
        method="B",
        n_contrastive=4,
    )
    m = eqx.tree_at(lambda t: t.theta_norm.std, m, jnp.array([2.0, 3.0]))
    nre.save(tmp_path / "m.eqx", m)
    m2 = nre.load(tmp_path / "m.eqx")
    th, x = jnp.ones(2), jnp.ones(3)
    np.testing.assert_array_equal(m(th, x), m2(th, x))
    assert m2.method == "B"
    assert m2.n_contrastive == 4


@pytest.mark.x64
def test_gradients_float64(getkey):
    m = nre.make_ratio_estimator(getkey(), theta_dim=2, x_shape=(2,), marginals=MARGS)
    m = jax.tree.map(
        lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, m
    )
    x = jnp.array([0.1, -0.3])
    check_grads(
        lambda t: m.log_ratio(t, x), (jnp.array([0.2, 0.5]),), order=1, modes=("rev",)
    )
    batch = {
        "theta": jax.random.normal(getkey(), (8, 2), jnp.float64),
        "x": jax.random.normal(getkey(), (8, 2), jnp.float64),
    }
    check_grads(
        lambda th: nre.nre_loss(m, {"theta": th, "x": batch["x"]}),
        (batch["theta"],),
        order=1,
        modes=("rev",),
    )


@pytest.mark.slow
def test_coverage_of_marginals_at_68_and_95():
    """Expected coverage of all marginals within +-0.05 of nominal (Hermans+ 2022).

    gaussian_linear(dim=2), NRE-A, 20k training sims, 300 held-out pairs (binomial
    sd at 0.68 is 0.027, so +-0.05 is ~2 sd).
    """
    task = gaussian_linear(dim=2)
    th, x = task.sample_joint(jax.random.key(30), 20_000)
    m = nre.make_ratio_estimator(
        jax.random.key(31), theta_dim=2, x_shape=(2,), marginals=MARGS, method="A"
    )
    m, _ = nre.train_ratio_estimator(
        jax.random.key(32), m, th, x, max_epochs=100, batch_size=256
    )
    tt, xt = task.sample_joint(jax.random.key(33), 300)
    prior = task.sample_prior(jax.random.key(34), 5000)
    res = nre.coverage(
        jax.random.key(35),
        m,
        tt,
        xt,
        prior,
        levels=jnp.array([0.68, 0.95]),
        log_prior=task.prior().log_prob,
    )
    for r in res:
        np.testing.assert_allclose(r.coverage, [0.68, 0.95], atol=0.05)
    # SBC ranks of the 1-D marginals are uniform (chi^2 p-value > 1e-3).
    ranks, params = nre.sbc_ranks(
        jax.random.key(36), m, tt, xt, prior, n_posterior_samples=99
    )
    assert params == (0, 1)
    for j in range(2):
        counts = np.bincount(np.asarray(ranks[:, j]) // 10, minlength=10)
        assert scipy.stats.chisquare(counts).pvalue > 1e-3
