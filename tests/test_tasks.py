"""Tests for jaxdm.tasks: sbibm task definitions and their reference posteriors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxdm import tasks

NAMES = ["gaussian_linear", "two_moons", "slcp", "gaussian_mixture"]
SHAPES = {
    "gaussian_linear": (10, 10),
    "two_moons": (2, 2),
    "slcp": (5, 8),
    "gaussian_mixture": (2, 2),
}


def _importance_moments(task, key, x_obs, n):
    """Self-normalised importance estimate of posterior mean/std (prior proposal).

    Independent of the reference samplers: uses only the prior and log_likelihood.
    Returns mean, std, and the effective sample size.
    """
    th = task.sample_prior(key, n)
    logw = jax.vmap(task.log_likelihood, (0, None))(th, x_obs)
    w = np.asarray(jax.nn.softmax(logw), dtype=np.float64)
    th = np.asarray(th, dtype=np.float64)
    mean = w @ th
    std = np.sqrt(w @ (th - mean) ** 2)
    return mean, std, 1.0 / np.sum(w**2)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_determinism_and_vmap(name, getkey, jit):
    """Shapes, same key -> same result, jit == eager, vmap works."""
    task = tasks.get_task(name)
    d, dx = SHAPES[name]
    assert (task.theta_dim, task.x_dim) == (d, dx)
    assert len(task.parameter_names) == d
    key = getkey()
    theta, x = task.sample_joint(key, 7)
    assert theta.shape == (7, d)
    assert x.shape == (7, dx)
    theta2, x2 = task.sample_joint(key, 7)
    np.testing.assert_array_equal(x, x2)
    sim = jit(task.simulate)
    xs = jax.vmap(sim)(jax.random.split(key, 7), theta)
    np.testing.assert_allclose(
        xs,
        jax.vmap(task.simulate)(jax.random.split(key, 7), theta),
        rtol=1e-5,
        atol=1e-6,
    )
    ll = jax.vmap(jit(task.log_likelihood))(theta, x)
    assert ll.shape == (7,)
    assert bool(jnp.all(jnp.isfinite(ll)))
    assert task.prior().event_shape == (d,)


def test_gaussian_linear_posterior_is_bayes_rule(getkey):
    """Closed-form posterior N(x/2, 0.05 I) (sbibm variances 0.1) obeys Bayes.

    log p(theta|x) must equal log p(x|theta) + log p(theta) - log p(x) with the evidence
    p(x) = N(x; 0, 0.2 I), for arbitrary theta: an identity, so float32 tolerance 1e-3.
    """
    task = tasks.gaussian_linear()
    theta_true, x_obs = tasks.observation(getkey(), task)
    thetas = task.sample_prior(getkey(), 5)
    lhs = jax.vmap(task.posterior_log_prob, (0, None))(thetas, x_obs)
    log_ev = -0.5 * jnp.sum(x_obs**2) / 0.2 - 5 * math.log(2 * math.pi * 0.2)
    rhs = jax.vmap(task.log_prob_unnormalized, (0, None))(thetas, x_obs) - log_ev
    np.testing.assert_allclose(lhs, rhs, rtol=1e-4, atol=1e-3)
    # Reference samples match the closed-form moments: 20000 samples, the mean has
    # standard error sqrt(0.05/20000) = 1.6e-3 -> 5 sigma = 8e-3; the variance has
    # relative standard error sqrt(2/20000) = 1% -> 5% tolerance.
    s = task.reference_posterior(getkey(), x_obs, 20_000)
    np.testing.assert_allclose(s.mean(0), 0.5 * x_obs, atol=8e-3)
    np.testing.assert_allclose(s.var(0), 0.05, rtol=0.05)


def test_two_moons_reference_matches_likelihood(getkey):
    """Exact-inversion reference samples vs. importance sampling on the likelihood.

    Geometry (sbibm simulator): every sample must have finite likelihood (u > 0 branch)
    and radius |p - (0.25, 0)| within 6 sigma of 0.1. Moments: 200000 prior draws give
    an ESS of several thousand; tolerance 5 combined standard errors.
    """
    task = tasks.two_moons()
    x_obs = task.simulate(getkey(), jnp.array([0.3, -0.4]))
    s = task.reference_posterior(getkey(), x_obs, 4000)
    assert s.shape == (4000, 2)
    assert bool(jnp.all(jnp.abs(s) <= 1))
    ll = jax.vmap(task.log_likelihood, (0, None))(s, x_obs)
    assert bool(jnp.all(jnp.isfinite(ll)))
    p = x_obs[None, :] - task._shift(s)
    r = jnp.hypot(p[:, 0] - 0.25, p[:, 1])
    assert float(jnp.max(jnp.abs(r - 0.1))) < 0.06
    mean, std, ess = _importance_moments(task, getkey(), x_obs, 200_000)
    assert ess > 1000
    se = std * np.sqrt(1 / 4000 + 1 / ess)
    np.testing.assert_array_less(np.abs(np.asarray(s.mean(0)) - mean), 5 * se)
    np.testing.assert_allclose(np.asarray(s.std(0)), std, rtol=0.1)


def test_gaussian_mixture_reference_matches_closed_form(getkey):
    """Truncated-mixture reference vs. exact moments; observation near the box edge.

    Posterior = 0.5 N(x, I) + 0.5 N(x, 0.01 I) truncated to [-10, 10]^2; component
    weights are re-weighted by their box masses (products of 1-D normal masses) and the
    moments of each truncated component come from scipy.stats.truncnorm. Tolerances:
    20000 samples -> the mean's standard error is < 0.006 (5 sigma = 0.03); the std of
    this heavy-tailed mixture has ~2% relative error -> 8%.
    """
    from scipy import stats

    task = tasks.gaussian_mixture()
    x_obs = np.array([9.5, -2.0])
    s = np.asarray(task.reference_posterior(getkey(), jnp.asarray(x_obs), 20_000))
    assert np.all(np.abs(s) <= 10)
    comps = []
    for sc in (1.0, 0.1):
        a, b = (-10 - x_obs) / sc, (10 - x_obs) / sc
        tn = stats.truncnorm(a, b, loc=x_obs, scale=sc)
        mass = np.prod(stats.norm.cdf(b) - stats.norm.cdf(a))
        comps.append((0.5 * mass, tn.mean(), tn.var()))
    wsum = sum(c[0] for c in comps)
    mean = sum(c[0] * c[1] for c in comps) / wsum
    var = sum(c[0] * (c[2] + c[1] ** 2) for c in comps) / wsum - mean**2
    np.testing.assert_allclose(s.mean(0), mean, atol=0.03)
    np.testing.assert_allclose(s.std(0), np.sqrt(var), rtol=0.08)
    # the likelihood agrees with the sampler: importance estimate of the mean
    m_is, sd_is, ess = _importance_moments(task, getkey(), jnp.asarray(x_obs), 400_000)
    np.testing.assert_array_less(np.abs(m_is - mean), 5 * sd_is / np.sqrt(ess))


def test_slcp_nuts_matches_importance(getkey):
    """Small NUTS run vs. prior importance sampling on the exact SLCP likelihood.

    Truth chosen with broad scales (t2^2 = 1.44, t3^2 = 1.21) so that 300000 prior draws
    give an ESS of a few hundred. Compared: means of t0, t1, |t2|, |t3|, t4 and the
    mean of t2 (0 by symmetry). Tolerance 5 combined standard errors (the NUTS
    standard error inflated x3 for autocorrelation).
    """
    task = tasks.slcp()
    theta_true = jnp.array([0.7, -1.0, -1.2, 1.1, 0.4])
    x_obs = task.simulate(jax.random.key(7), theta_true)
    s = task.reference_posterior(getkey(), x_obs, 600, num_chains=4, num_warmup=200)
    assert s.shape == (600, 5)
    assert bool(jnp.all(jnp.abs(s) <= 3))

    def feat(t):
        return jnp.concatenate(
            [t[:, :2], jnp.abs(t[:, 2:4]), t[:, 4:], t[:, 2:3]], axis=1
        )

    th = task.sample_prior(getkey(), 300_000)
    logw = jax.vmap(task.log_likelihood, (0, None))(th, x_obs)
    w = np.asarray(jax.nn.softmax(logw), dtype=np.float64)
    f = np.asarray(feat(th), dtype=np.float64)
    m_is = w @ f
    sd = np.sqrt(w @ (f - m_is) ** 2)
    ess = 1 / np.sum(w**2)
    assert ess > 100
    se = sd * np.sqrt(9 / 600 + 1 / ess)
    np.testing.assert_array_less(np.abs(np.asarray(feat(s).mean(0)) - m_is), 5 * se)


@pytest.mark.slow
def test_slcp_nuts_matches_importance_large(getkey):
    """Longer NUTS run (8 chains, 4000 samples): posterior std also matches to 15%."""
    task = tasks.slcp()
    x_obs = task.simulate(jax.random.key(8), jnp.array([-0.5, 1.0, 1.3, -1.0, -0.8]))
    s = task.reference_posterior(getkey(), x_obs, 4000)
    mean, std, ess = _importance_moments(task, getkey(), x_obs, 1_000_000)
    assert ess > 300
    se = std * np.sqrt(9 / 4000 + 1 / ess)
    np.testing.assert_array_less(np.abs(np.asarray(s.mean(0)) - mean), 5 * se)
    np.testing.assert_allclose(np.asarray(s.std(0)), std, rtol=0.15)


@pytest.mark.x64
@pytest.mark.parametrize("name", NAMES)
def test_log_likelihood_grads(name, getkey):
    """Reverse-mode gradients of the exact likelihoods (float64 finite differences)."""
    task = tasks.get_task(name)
    theta = {
        "gaussian_linear": 0.1 * jnp.ones(10),
        "two_moons": jnp.array([0.3, -0.2]),
        "slcp": jnp.array([0.5, -0.3, 1.1, -0.9, 0.3]),
        "gaussian_mixture": jnp.array([1.0, 2.0]),
    }[name]
    x = task.simulate(getkey(), theta)
    # two_moons is sharp (radial scale 0.01): a smaller finite-difference step
    eps = 1e-5 if name == "two_moons" else 1e-4
    check_grads(
        lambda t: task.log_likelihood(t, x), (theta,), order=1, modes=("rev",), eps=eps
    )


def test_errors(getkey):
    """Bad inputs raise errors naming the argument."""
    task = tasks.two_moons()
    with pytest.raises(ValueError, match="theta"):
        task.simulate(getkey(), jnp.zeros(3))
    with pytest.raises(TypeError, match="legacy"):
        task.simulate(jax.random.PRNGKey(0), jnp.zeros(2))
    with pytest.raises(ValueError, match="name"):
        tasks.get_task("nope")
    with pytest.raises(ValueError, match="`n`"):
        task.sample_joint(getkey(), 0)
    with pytest.raises(TypeError, match="task"):
        tasks.observation(getkey(), "two_moons")


def test_support():
    """Support objects come from jaxdm.flows (Box if bounded, Real otherwise)."""
    flows = pytest.importorskip("jaxdm.flows")
    assert isinstance(tasks.gaussian_linear().support, flows.Real)
    assert isinstance(tasks.slcp().support, flows.Box)


@pytest.mark.x64
def test_float64(getkey):
    """In float64 the simulators and exact reference samplers return float64 arrays."""
    for task in (tasks.gaussian_linear(dim=3), tasks.two_moons()):
        theta, x = task.sample_joint(getkey(), 4)
        assert theta.dtype == x.dtype == jnp.float64
        s = task.reference_posterior(getkey(), x[0], 10)
        assert s.dtype == jnp.float64


def test_bad_inputs_name_the_argument(getkey):
    """Counts, shapes, types and NaN give errors naming the public argument."""
    task = tasks.two_moons()
    key = getkey()
    with pytest.raises(ValueError, match="`n` must be a positive integer; got -3"):
        task.sample_prior(key, -3)
    with pytest.raises(TypeError, match="`n` must be a Python int.*float"):
        task.sample_prior(key, 5.0)
    with pytest.raises(TypeError, match="`n` must be a Python int.*str"):
        task.sample_prior(key, "5")
    with pytest.raises(ValueError, match=r"`theta`.*batch of shape \(4, 2\).*vmap"):
        task.simulate(key, jnp.zeros((4, 2)))
    with pytest.raises(ValueError, match="`theta` must be finite"):
        task.simulate(key, jnp.array([0.1, jnp.nan]))
    with pytest.raises(ValueError, match="`x` must be finite"):
        task.log_likelihood(jnp.zeros(2), jnp.array([jnp.inf, 0.0]))
    with pytest.raises(TypeError, match="`x_obs`.*int 3.*tasks.observation"):
        task.reference_posterior(key, 3, 10)
    with pytest.raises(ValueError, match="`x_obs` must be finite"):
        task.reference_posterior(key, jnp.array([jnp.nan, 0.0]), 10)
    with pytest.raises(ValueError, match=r"`key` must be one PRNG key.*\(3,\)"):
        task.simulate(jax.random.split(key, 3), jnp.zeros(2))
    with pytest.raises(ValueError, match="`name`"):
        tasks.get_task(["two_moons"])


def test_traced_checks_raise_at_run_time(getkey):
    """Under jit and vmap a NaN theta or observation raises EquinoxRuntimeError naming
    the argument (no NaN or finite garbage comes back)."""
    import equinox as eqx

    task = tasks.gaussian_linear(dim=2)
    keys = jax.random.split(getkey(), 3)
    theta = jnp.zeros((3, 2)).at[1, 0].set(jnp.nan)
    with pytest.raises(eqx.EquinoxRuntimeError, match="`theta` must be finite"):
        eqx.filter_jit(jax.vmap(task.simulate))(keys, theta)
    with pytest.raises(eqx.EquinoxRuntimeError, match="`x_obs` must be finite"):
        eqx.filter_jit(task.posterior_moments)(jnp.array([0.0, jnp.nan]))
    with pytest.raises(eqx.EquinoxRuntimeError, match="`x` must be finite"):
        eqx.filter_jit(task.log_likelihood)(jnp.zeros(2), jnp.array([0.0, jnp.nan]))
    # clean inputs still compile and run
    x = eqx.filter_jit(jax.vmap(task.simulate))(keys, jnp.zeros((3, 2)))
    assert bool(jnp.all(jnp.isfinite(x)))


@pytest.mark.parametrize("name", ["two_moons", "slcp", "gaussian_mixture"])
def test_log_prob_unnormalized_is_minus_inf_outside_prior(name):
    """The unnormalised posterior is -inf outside the prior box (eagerly without
    numpyro's out-of-support UserWarning, an error under pytest) and unchanged
    inside."""
    task = tasks.get_task(name)
    theta = jnp.zeros(task.theta_dim) + 0.1
    x = task.simulate(jax.random.key(0), theta)
    inside = task.log_prob_unnormalized(theta, x)
    assert bool(jnp.isfinite(inside))
    np.testing.assert_allclose(
        inside, task.log_likelihood(theta, x) + task.prior().log_prob(theta), rtol=1e-6
    )
    outside = theta.at[0].set(20.0)
    assert float(task.log_prob_unnormalized(outside, x)) == -np.inf
    assert float(jax.jit(task.log_prob_unnormalized)(outside, x)) == -np.inf
