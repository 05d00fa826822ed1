"""Tests of neural ratio estimation (NRE-A/B/C, BNRE, marginal heads, posteriors)."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from jax.test_util import check_grads

from jaxdm.inference import nre, ratio_sampling as rs
from jaxdm.tasks import gaussian_linear, observation, two_moons

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
    # 1e5 prior draws: the converged estimator's posteriors are narrow enough that
    # 5,000 draws gave an ESS of ~50 for some observations (LowESSWarning).
    prior = task.sample_prior(jax.random.key(34), 100_000)
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
        counts = np.bincount(np.asarray(ranks[:, j]).astype(int) // 10, minlength=10)
        assert scipy.stats.chisquare(counts).pvalue > 1e-3


# ------------------------------------------------- importance sampling, ESS, MCMC


def test_importance_samples_ess_and_low_ess_warning(trained):
    """ESS is Kish's (sum w)^2 / sum w^2; resample warns exactly when n > ESS.

    The chunked, compiled evaluation equals the direct ``log_ratio`` (chunk of 7
    rows, a remainder included) and the batched call equals one call per row.
    """
    task, m = trained
    xs = task.sample_joint(jax.random.key(40), 3)[1]
    prior = task.sample_prior(jax.random.key(41), 2000)
    ws = nre.importance_samples(m, prior, xs, chunk_size=7)
    assert ws.log_weights.shape == (3, 2000, 3)
    assert ws.ess.shape == (3, 3)
    assert bool(jnp.all(ws.valid))
    for i in range(3):
        lr = m.log_ratio(prior, xs[i])
        ref = lr - jax.scipy.special.logsumexp(lr, axis=0, keepdims=True)
        np.testing.assert_allclose(ws.log_weights[i], ref, atol=2e-4)
        w = np.exp(np.asarray(ref, np.float64))
        np.testing.assert_allclose(ws.ess[i], w.sum(0) ** 2 / (w**2).sum(0), rtol=1e-3)
    one = nre.importance_samples(m, prior, xs[1])
    np.testing.assert_allclose(one.ess, ws.ess[1], rtol=1e-5)
    ess = float(one.ess[0])
    assert 1 < ess < 2000
    with warnings.catch_warnings():
        warnings.simplefilter("error", nre.LowESSWarning)
        nre.resample(jax.random.key(42), one, 0, int(ess) - 1)
    with pytest.warns(nre.LowESSWarning, match="effective sample size"):
        nre.resample(jax.random.key(42), one, 0, int(ess) + 1)


def test_sample_mcmc_matches_analytic_and_does_not_repeat(trained):
    """Resample-move draws reproduce the analytic Gaussian posterior, all distinct.

    gaussian_linear: posterior N(x/2, 0.05 I). 2000 chains x 30 steps from 5000 prior
    draws; mean within 0.15 sigma (MC error of 2000 draws ~0.03 sigma plus estimator
    error), std within 20 %. SIR with 2000 draws from the same 5000 prior draws repeats
    (ESS ~ 1/3 of them), the chains' final states do not.
    """
    task, m = trained
    xo = jnp.array([0.3, -0.3])
    prior = task.sample_prior(jax.random.key(43), 5000)
    res = rs.sample_mcmc(
        jax.random.key(44),
        m,
        prior,
        xo,
        2000,
        log_prior=task.prior().log_prob,
        marginal=2,
    )
    mu, var = task.posterior_moments(xo)
    s = np.asarray(res.samples)
    assert s.shape == (2000, 2)
    np.testing.assert_allclose(s.mean(0), mu, atol=0.15 * np.sqrt(0.05))
    np.testing.assert_allclose(s.std(0), np.sqrt(var), rtol=0.2)
    assert 0.1 < float(res.acceptance) < 0.95
    assert float(res.moved) > 0.99
    ws = nre.importance_samples(m, prior, xo)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nre.LowESSWarning)
        sir = np.asarray(nre.resample(jax.random.key(45), ws, 2, 2000))
    n_sir = len(np.unique(sir, axis=0))
    assert len(np.unique(s, axis=0)) == 2000 > n_sir


def test_sample_mcmc_respects_box_jit_vmap(getkey, jit):
    """Rejection keeps every draw in [low, high], batched, eager and compiled.

    An untrained estimator has a nearly flat ratio, so 30 random-walk steps with the
    prior-scale proposal would carry ~half the chains out of the box without the
    rejection (checked: dropping it fails this test).
    """
    m = nre.make_ratio_estimator(getkey(), theta_dim=2, x_shape=(3,))
    low, high = jnp.array([-1.0, 0.0]), jnp.array([1.0, 0.5])
    prior = jax.random.uniform(getkey(), (500, 2), minval=low, maxval=high)
    xs = jax.random.normal(getkey(), (2, 3))
    f = jit(lambda k, mm, p, x: rs.sample_mcmc(k, mm, p, x, 300, low=low, high=high))
    res = f(jax.random.key(3), m, prior, xs)
    assert res.samples.shape == (2, 300, 2)
    assert res.acceptance.shape == (2,)
    s = np.asarray(res.samples)
    assert np.all((s >= np.asarray(low)) & (s <= np.asarray(high)))
    assert float(jnp.min(res.moved)) > 0.9
    # Batched equals per-observation calls with the same keys.
    one = rs.sample_mcmc(jax.random.key(3), m, prior, xs, 300, low=low, high=high)
    np.testing.assert_allclose(one.samples, res.samples, atol=1e-5)


def test_dispersed_starts_and_short_nuts(trained, monkeypatch):
    """NUTS chains start at distinct importance samples and stay in the box (CI-fast).

    The starting points are drawn without replacement from weighted box draws; the
    previous default started every chain at the box centre.
    """
    task, m = trained
    xo = jnp.array([0.3, -0.3])
    low, high = -jnp.ones(2), jnp.ones(2)
    cand = jax.random.uniform(jax.random.key(46), (4000, 2), minval=-1, maxval=1)
    starts = nre.dispersed_starts(jax.random.key(47), m, cand, xo, 8)
    assert len(np.unique(np.asarray(starts), axis=0)) == 8
    mu, var = task.posterior_moments(xo)
    # Weighted starts sit in the posterior bulk (4 sigma), not uniformly in the box.
    assert np.all(np.abs(np.asarray(starts) - np.asarray(mu)) < 4 * np.sqrt(0.05))
    # sample_nuts must take its chains' starts from dispersed_starts (spy).
    calls = []

    def spy(*args, **kwargs):
        out = starts_fn(*args, **kwargs)
        calls.append(np.asarray(out))
        return out

    starts_fn = nre.dispersed_starts
    monkeypatch.setattr(nre, "dispersed_starts", spy)
    s = nre.sample_nuts(
        jax.random.key(48),
        m,
        xo,
        task.prior().log_prob,
        low=low,
        high=high,
        num_chains=4,
        num_warmup=30,
        num_samples=30,
    )
    assert len(calls) == 1
    assert len(np.unique(calls[0], axis=0)) == 4
    assert s.shape == (120, 2)
    s = np.asarray(s).reshape(4, 30, 2)
    assert np.all((s > -1) & (s < 1))
    assert len(np.unique(s[:, 0], axis=0)) == 4


def _two_moons_unique(n_sims, max_epochs, n_prior, n_samples):
    task = two_moons()
    th, x = task.sample_joint(jax.random.key(50), n_sims)
    m = nre.make_ratio_estimator(jax.random.key(51), theta_dim=2, x_shape=(2,))
    kw = {} if max_epochs is None else {"max_epochs": max_epochs}
    m, _ = nre.train_ratio_estimator(jax.random.key(52), m, th, x, **kw)
    xo = observation(jax.random.key(53), task)[1]
    prior = task.sample_prior(jax.random.key(54), n_prior)
    ws = nre.importance_samples(m, prior, xo)
    with pytest.warns(nre.LowESSWarning):
        sir = np.asarray(nre.resample(jax.random.key(55), ws, 0, n_samples))
    res = rs.sample_mcmc(
        jax.random.key(56),
        m,
        prior,
        xo,
        n_samples,
        low=task.support.low,
        high=task.support.high,
    )
    mc = np.asarray(res.samples)
    assert np.all((mc >= -1) & (mc <= 1))
    return len(np.unique(sir, axis=0)), len(np.unique(mc, axis=0))


def test_two_moons_mcmc_more_unique_than_sir_small():
    """Default-suite variant: 2000 sims, 30 epochs, 20k prior draws, 5000 samples."""
    n_sir, n_mc = _two_moons_unique(2000, 30, 20_000, 5000)
    assert n_mc > n_sir
    assert n_mc > 0.99 * 5000


@pytest.mark.slow
def test_two_moons_mcmc_more_unique_than_sir():
    """Issue #20: at 10^4 simulations (default training), 10^4 draws per sampler.

    Prior draws: 10^5, so that the SIR's ESS is below 10^4 (with 10^6 draws SIR
    repeated 37-69 % of 10^4 draws, RESULTS.md).
    """
    n_sir, n_mc = _two_moons_unique(10_000, None, 100_000, 10_000)
    assert n_mc > n_sir
    # Measured 9763 distinct (SIR: fewer than the ESS, a few hundred): with a
    # Metropolis acceptance of ~0.1-0.2 on this crescent, a few % of the chains
    # do not move in 30 steps and keep a repeated start.
    assert n_mc > 0.95 * 10_000


# ----------------------------------------------------------- guarded observations


def test_nonfinite_observations_named_eagerly_and_nan_rows_under_jit(trained):
    task, m = trained
    xs = task.sample_joint(jax.random.key(60), 4)[1]
    bad = xs.at[1, 0].set(jnp.nan).at[3, 1].set(jnp.inf)
    prior = task.sample_prior(jax.random.key(61), 300)
    mask = nre.observation_mask(m, bad)
    np.testing.assert_array_equal(mask, [True, False, True, False])
    with pytest.raises(ValueError, match=r"`x` has non-finite.*rows \[1, 3\]"):
        m.log_ratio(prior, bad)
    with pytest.raises(ValueError, match=r"`x`.*rows \[1, 3\]"):
        nre.importance_samples(m, prior, bad)
    with pytest.raises(ValueError, match=r"`x`.*rows \[1, 3\]"):
        rs.sample_mcmc(
            jax.random.key(0), m, prior, bad, 10, low=-jnp.ones(2), high=jnp.ones(2)
        )
    with pytest.raises(ValueError, match=r"`x`.*rows \[1, 3\]"):
        nre.coverage(jax.random.key(0), m, prior[:4], bad, prior)
    with pytest.raises(ValueError, match=r"`x`.*rows \[1, 3\]"):
        nre.sbc_ranks(jax.random.key(0), m, prior[:4], bad, prior)
    with pytest.raises(ValueError, match="`x` has non-finite.*single"):
        nre.sample_nuts(jax.random.key(0), m, bad[1], lambda t: 0.0)

    good = np.array([True, False, True, False])
    lr = eqx.filter_jit(lambda mm, t, x: mm.log_ratio(t, x))(m, prior, bad)
    assert np.array_equal(np.isnan(lr).any(axis=(1, 2)), ~good)
    assert np.all(np.isfinite(lr[good]))
    np.testing.assert_allclose(lr[good], m.log_ratio(prior, xs[good]), atol=1e-5)
    ws = eqx.filter_jit(nre.importance_samples)(m, prior, bad)
    np.testing.assert_array_equal(ws.valid, good)
    assert np.array_equal(np.isnan(ws.ess).any(axis=1), ~good)
    assert np.all(np.isfinite(ws.log_weights[good]))
    s = eqx.filter_jit(lambda w: nre.resample(jax.random.key(0), w, 0, 5))(
        jax.tree.map(lambda a: a[1], ws)
    )
    assert np.all(np.isnan(s))
    res = eqx.filter_jit(
        lambda k, mm, p, x: rs.sample_mcmc(
            k, mm, p, x, 20, low=-jnp.ones(2), high=jnp.ones(2)
        )
    )(jax.random.key(0), m, prior, bad)
    np.testing.assert_array_equal(res.valid, good)
    assert np.array_equal(np.isnan(res.samples).any(axis=(1, 2)), ~good)
    assert np.all(np.isfinite(res.samples[good]))


def test_coverage_under_jit_raises_on_nonfinite_observation(getkey):
    """Compiled coverage never averages over a NaN row: the program raises."""
    m = nre.make_ratio_estimator(getkey(), theta_dim=2, x_shape=(2,))
    prior = jax.random.normal(getkey(), (300, 2))
    bad = jnp.ones((4, 2)).at[1, 0].set(jnp.nan)
    with pytest.raises(eqx.EquinoxRuntimeError, match="`x`"):
        eqx.filter_jit(nre.coverage)(jax.random.key(0), m, prior[:4], bad, prior)
