"""Counting significance of a score-tail search (Cowan et al. 2011)."""

import jax
import numpy as np
import pytest
from scipy.stats import norm, poisson

from jaxdm import anomaly as an


@pytest.mark.x64
def test_asimov_closed_forms():
    """Z_A -> s/sqrt(b) for s << b (Cowan et al. 2011, Eq. 97 and its expansion)."""
    z = an.asimov_significance(1.0, 1e4)
    assert float(z) == pytest.approx(1.0 / 100.0, rel=1e-3)
    # exact value, computed by hand: s = 10, b = 1
    want = np.sqrt(2 * (11 * np.log(11) - 10))
    assert float(an.asimov_significance(10.0, 1.0)) == pytest.approx(want, rel=1e-12)


@pytest.mark.x64
def test_poisson_p_value_matches_scipy():
    n = np.array([0, 1, 5, 20, 60])
    b = np.array([3.0, 3.0, 3.0, 10.0, 30.0])
    want = poisson.sf(n - 1, b)
    np.testing.assert_allclose(an.poisson_p_value(n, b), want, rtol=1e-10)
    z = an.poisson_significance(n, b)
    np.testing.assert_allclose(z, np.maximum(norm.isf(want), 0.0), rtol=1e-8)


def test_discovery_significance_grows_as_sqrt_exposure(jit):
    rng = np.random.default_rng(0)
    b = rng.standard_normal(20_000)
    s = rng.standard_normal(5_000) + 3.0
    t = np.array([1.0, 4.0, 16.0])
    f = jit(
        lambda b, s, t: an.discovery_significance(
            b, s, eps_b=1e-2, background_rate=100.0, signal_rate=0.5, exposure=t
        )
    )
    z = np.asarray(f(b, s, t))
    # s/b fixed, s, b ~ T: Z_A proportional to sqrt(T) exactly
    np.testing.assert_allclose(z[1:] / z[:-1], 2.0, rtol=1e-5)
    # more injected signal -> more significance
    z2 = an.discovery_significance(
        b, s, eps_b=1e-2, background_rate=100.0, signal_rate=1.0, exposure=1.0
    )
    assert float(z2) > z[0]


def test_injected_counts_mean_and_significance():
    """Pseudo-experiment counts are Poisson(T (R_B eps_B + R_S eps_S)).

    Their median Poisson significance approaches the Asimov one (Cowan et al.).
    """
    key = jax.random.key(0)
    kw = dict(eps_b=1e-2, eps_s=0.5, background_rate=1e4, signal_rate=20.0)
    n = an.injected_tail_counts(key, exposure=2.0, n_experiments=4_000, **kw)
    mean = 2.0 * (1e4 * 1e-2 + 20.0 * 0.5)
    assert abs(float(n.mean()) - mean) < 5 * np.sqrt(mean / n.size)
    z_med = float(np.median(an.poisson_significance(n, 2.0 * 1e4 * 1e-2)))
    z_a = float(an.asimov_significance(20.0, 200.0))
    assert z_med == pytest.approx(z_a, abs=0.1)


def test_tail_threshold_is_quantile():
    b = np.linspace(0.0, 1.0, 10_001)
    assert float(an.tail_threshold(b, 1e-2)) == pytest.approx(0.99, abs=1e-6)
