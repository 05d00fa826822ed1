"""jit / vmap / grad of the likelihood, the fits and the statistics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.stats import poisson

from jaxdm import stats


def _model():
    m = stats.binned_model(
        jnp.array([2.0, 5.0, 3.0]),
        jnp.array([[20.0, 25.0, 30.0], [5.0, 2.0, 1.0]]),
        background_sigma=jnp.array([0.1, 0.3]),
        constraint=("normal", "lognormal"),
        mc_delta=jnp.array([0.05, 0.02, 0.1]),
    )
    return m, stats.BinnedData(jnp.array([24.0, 35.0, 30.0]), m.nominal_aux())


@pytest.mark.x64
def test_nll_matches_scipy_and_modifiers():
    m, d = _model()
    t = jnp.array([0.5, -1.0, 0.3, -0.2, 1.0])
    bkg = 1.05 * m.background[0] + 1.3**-1.0 * m.background[1]
    nu = 3.0 * m.signal + bkg * (1 + m.mc_delta * t[2:])
    np.testing.assert_allclose(m.expected(3.0, t), nu, rtol=1e-12)
    ref = -poisson.logpmf(np.asarray(d.counts), np.asarray(nu)).sum()
    ref += 0.5 * float(jnp.sum(t**2)) + 5 * 0.5 * np.log(2 * np.pi)
    np.testing.assert_allclose(m.nll(3.0, t, d), ref, rtol=1e-12)


@pytest.mark.x64
def test_vmap_over_hypotheses_equals_loop_and_jit():
    m, d = _model()
    mus = jnp.array([0.0, 1.0, 3.0])
    f = jax.jit(jax.vmap(lambda mu: stats.qtilde_mu(mu, m, d)))
    batched = f(mus)
    for i, mu in enumerate(mus):
        np.testing.assert_allclose(batched[i], stats.qtilde_mu(mu, m, d), rtol=1e-6)
    # The free fit is the minimum: profile nll at any mu is above it.
    free = stats.fit_free(m, d)
    assert bool(free.converged)
    assert np.all(
        jax.vmap(lambda mu: stats.fit_conditional(m, mu, d).nll)(mus) >= free.nll - 1e-9
    )


@pytest.mark.x64
def test_grad_of_profile_nll_through_the_fit():
    # d/dmu nll(mu, t_hat_hat(mu)) by implicit differentiation equals finite
    # differences; and the gradient w.r.t. the signal template (for design).
    m, d = _model()
    # jit once: eagerly every finite-difference evaluation re-dispatched the whole fit.
    check_grads(
        jax.jit(lambda mu: stats.fit_conditional(m, mu, d).nll),
        (1.5,),
        order=1,
        eps=1e-4,
    )

    def q_of_signal(s):
        mm = stats.binned_model(
            s,
            m.background,
            background_sigma=m.background_sigma,
            constraint=m.constraint,
            mc_delta=m.mc_delta,
        )
        return stats.qtilde_mu(2.0, mm, d)

    check_grads(
        jax.jit(q_of_signal), (m.signal,), order=1, modes=("rev",), eps=1e-4, rtol=1e-3
    )


def test_unbinned_extended_nll_closed_form():
    # One background, no events of signal shape: nll = nu_s + nu_b - sum log(...).
    um = stats.UnbinnedModel(
        jnp.array(3.0), jnp.array([10.0]), jnp.array([0.0]), ("normal",)
    )
    ps = jnp.array([0.5, 1.0, 0.0, 0.0])
    pb = jnp.array([[1.0], [1.0], [0.5], [9.0]])
    mask = jnp.array([1.0, 1.0, 1.0, 0.0])
    d = stats.UnbinnedData(ps, pb, mask, um.nominal_aux())
    ref = (
        13.0
        - np.log(3 * 0.5 + 10)
        - np.log(3 + 10)
        - np.log(5.0)
        + 0.5 * np.log(2 * np.pi)
    )
    np.testing.assert_allclose(um.nll(1.0, jnp.zeros(1), d), ref, rtol=1e-5)
    fit = stats.fit_free(um, d)
    # d nll / d mu = 3 - sum 3 ps / (3 mu ps + 10 pb) = 0 at the fit.
    g = jax.grad(lambda mu: um.nll(mu, fit.t, d))(fit.mu)
    assert abs(float(g)) < 1e-3
