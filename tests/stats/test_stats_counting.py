"""Single-bin counting experiment: statistics, CLs and limits equal closed forms.

Closed forms (Cowan, Cranmer, Gross & Vitells 2011, arXiv:1007.1727): for ``n``
observed events, known background ``b`` and signal ``s`` per unit ``mu``,
``mu_hat = (n - b) / s`` and ``-2 log lambda(mu) = 2 [nu - n log nu - (n - n log n)]``
with ``nu = mu s + b`` (eq. 12-16); the Asimov data of ``mu' = 0`` is ``n_A = b``; CLs
from eq. 65-66 and Read (2002). The limits are checked against scipy's brentq on the
closed-form CLs, so a wrong statistic, Asimov set, p-value or root search fails.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from jaxdm import stats

S, B = 10.0, 50.0


def _nll(n, nu):
    return nu - n * np.log(nu)


def q_closed(mu, n, *, tilde=True):
    mu_hat = (n - B) / S
    if mu_hat > mu:
        return 0.0
    if tilde and mu_hat < 0:
        ref = _nll(n, B)
    else:
        ref = _nll(n, n)
    return 2 * (_nll(n, mu * S + B) - ref)


def cls_closed(mu, n, *, tilde=True):
    q, qa = q_closed(mu, n, tilde=tilde), q_closed(mu, B, tilde=tilde)
    sq, sqa = np.sqrt(q), np.sqrt(qa)
    t = sq if (sq <= sqa or not tilde) else (q + qa) / (2 * sqa)
    return (1 - norm.cdf(t)) / norm.cdf(sqa - t), 1 - norm.cdf(t)


def expected_closed(mu, n_sigma):
    sqa = np.sqrt(q_closed(mu, B))
    return (1 - norm.cdf(sqa - n_sigma)) / norm.cdf(n_sigma)


def _model(n):
    m = stats.binned_model(jnp.array([S]), jnp.array([B]))
    return m, stats.BinnedData(jnp.array([n]), m.nominal_aux())


@pytest.mark.x64
@pytest.mark.parametrize("n", [38.0, 55.0, 71.0])
def test_statistics_equal_closed_form(n):
    m, d = _model(n)
    mus = jnp.array([0.5, 1.0, 2.5, 4.0])
    qt = jax.vmap(lambda mu: stats.qtilde_mu(mu, m, d))(mus)
    q = jax.vmap(lambda mu: stats.q_mu(mu, m, d))(mus)
    for i, mu in enumerate(np.asarray(mus)):
        np.testing.assert_allclose(qt[i], q_closed(mu, n), rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(
            q[i], q_closed(mu, n, tilde=False), rtol=1e-7, atol=1e-9
        )
    q0_closed = 2 * (_nll(n, B) - _nll(n, n)) if n > B else 0.0
    np.testing.assert_allclose(stats.q0(m, d), q0_closed, rtol=1e-7, atol=1e-9)


@pytest.mark.x64
def test_cls_and_limits_equal_closed_form():
    n = 55.0
    m, d = _model(n)
    h = jax.vmap(lambda mu: stats.hypotest(mu, m, d))(jnp.array([1.0, 2.0, 3.0]))
    for i, mu in enumerate([1.0, 2.0, 3.0]):
        cls, clsb = cls_closed(mu, n)
        np.testing.assert_allclose(h.observed.cls[i], cls, rtol=1e-7)
        np.testing.assert_allclose(h.observed.clsb[i], clsb, rtol=1e-7)
        exp = [expected_closed(mu, k) for k in stats.N_SIGMA]
        np.testing.assert_allclose(h.expected.cls[i], exp, rtol=1e-7)
    lim = stats.upper_limit(m, d, cl=0.95)
    assert bool(lim.converged)
    obs = brentq(lambda x: cls_closed(x, n)[0] - 0.05, 1e-3, 50, xtol=1e-12)
    np.testing.assert_allclose(lim.observed, obs, rtol=1e-6)
    for k, ns in enumerate(stats.N_SIGMA):
        ref = brentq(lambda x: expected_closed(x, ns) - 0.05, 1e-3, 50, xtol=1e-12)
        np.testing.assert_allclose(lim.expected[k], ref, rtol=1e-6)
    # CLs+b at 90% CL: 1 - Phi(sqrt(q)) = 0.1.
    lim_sb = stats.upper_limit(m, d, cl=0.9, method="clsb")
    ref = brentq(lambda x: cls_closed(x, n)[1] - 0.1, 1e-3, 50, xtol=1e-12)
    np.testing.assert_allclose(lim_sb.observed, ref, rtol=1e-6)


@pytest.mark.slow
def test_limit_float32_close_to_float64_value():
    # float32 default dtype: same limit as the float64 closed form to 1e-3.
    n = 55.0
    m, d = _model(n)
    lim = stats.upper_limit(m, d)
    obs = brentq(lambda x: cls_closed(x, n)[0] - 0.05, 1e-3, 50, xtol=1e-12)
    assert lim.observed.dtype == jnp.float32
    np.testing.assert_allclose(lim.observed, obs, rtol=1e-3)


@pytest.mark.x64
def test_poisson_nll_equals_scipy_including_large_and_tiny_counts():
    """The cancellation-free form keeps the value of sum nu - n log nu + log n!."""
    from scipy.special import gammaln

    n = np.array([0.0, 0.0, 1.0, 3.5, 14.9, 15.0, 15.1, 9800.5, 1e4])
    nu = np.array([2.0, 1e-30, 1e-30, 2.0, 14.0, 16.0, 15.0, 1e4, 9990.0])
    ref = np.sum(nu - n * np.log(nu) + gammaln(n + 1.0))
    got = float(stats.poisson_nll(jnp.asarray(n), jnp.asarray(nu)))
    np.testing.assert_allclose(got, ref, rtol=1e-11)


def test_float32_limit_converges_at_large_counts():
    """Two bins of ~5,000 events (data below background): in float32 the direct
    Poisson NLL lost ~0.005 per bin and the limit did not converge; the float64
    reference 72.4405 was computed with the same code under jax_enable_x64."""
    model = stats.binned_model(
        jnp.array([5.0, 3.0]), jnp.array([[5000.0, 5000.0]]),
        background_sigma=0.1, constraint="lognormal",
    )  # fmt: skip
    data = stats.BinnedData(jnp.array([4900.0, 4900.0]), model.nominal_aux())
    lim = stats.upper_limit(model, data, cl=0.9)
    assert lim.observed.dtype == jnp.float32
    assert bool(lim.converged)
    np.testing.assert_allclose(float(lim.observed), 72.4405, rtol=1e-3)
