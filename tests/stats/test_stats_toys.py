"""Toys: asymptotics vs toys for large counts, CLs coverage, look-elsewhere effect."""

import jax
import jax.numpy as jnp
import pytest

from jaxdm import stats


def _large():
    # Large-count two-bin model (b ~ 10^3 per bin): the asymptotic regime.
    m = stats.binned_model(
        jnp.array([30.0, 60.0]), jnp.array([1000.0, 800.0]), background_sigma=0.02
    )
    return m, stats.BinnedData(jnp.array([1010.0, 820.0]), m.nominal_aux())


@pytest.mark.x64
def test_asymptotic_cls_agrees_with_toys_large_counts():
    m, d = _large()
    mu = 1.5
    h = stats.hypotest(mu, m, d)
    toys = stats.toy_hypotest(jax.random.key(3), mu, m, d, n_toys=1500)
    # Within 3.5 MC standard errors (a wrong Asimov sigma or t-mapping is off by
    # much more).
    assert abs(float(toys.clsb - h.observed.clsb)) < 3.5 * float(toys.clsb_error)
    assert abs(float(toys.clb - h.observed.clb)) < 3.5 * float(toys.clb_error)
    assert abs(float(toys.cls - h.observed.cls)) < 3.5 * float(toys.cls_error)


@pytest.mark.slow
@pytest.mark.x64
def test_cls_coverage_at_least_nominal():
    m, d = _large()
    mu_true = float(stats.upper_limit(m, d).expected[2])
    cov = stats.coverage(jax.random.key(11), m, mu_true, n_toys=600)
    assert bool(jnp.all(cov.converged))
    assert float(cov.coverage) >= 0.95
    # CLs+b limits are not conservative: coverage ~ 0.95 within 3 MC errors, so a
    # limit that is too high everywhere (trivially covering) fails here.
    cov_sb = stats.coverage(jax.random.key(11), m, mu_true, n_toys=600, method="clsb")
    assert abs(float(cov_sb.coverage) - 0.95) < 3 * float(cov_sb.error)


@pytest.mark.slow
@pytest.mark.x64
def test_look_elsewhere_independent_bins_and_identical_templates():
    # M disjoint one-bin signals on independent large-count bins: max_m q0 of M
    # independent chi2-like statistics, p_global = 1 - (1 - p_local)^M.
    nb = 6
    bkg = jnp.full(nb, 400.0)
    signals = 40.0 * jnp.eye(nb)
    m = stats.binned_model(signals[0], bkg)
    obs = jnp.array([400.0, 440.0, 390.0, 405.0, 398.0, 410.0])
    d = stats.BinnedData(obs, m.nominal_aux())
    g = stats.look_elsewhere(jax.random.key(5), m, signals, d, n_toys=1500)
    assert int(g.best) == 1
    expected = 1 - (1 - float(g.p_local)) ** nb
    assert abs(float(g.p_global) - expected) < 3.5 * float(g.p_global_error)
    assert float(g.trials_factor) > 3.0
    # Identical templates: no look-elsewhere effect, trials factor ~ 1.
    same = jnp.tile(signals[1], (nb, 1))
    g1 = stats.look_elsewhere(jax.random.key(6), m, same, d, n_toys=1500)
    assert abs(float(g1.p_global) - float(g1.p_local)) < 3.5 * float(g1.p_global_error)
