"""Asimov discovery significance and expected limits through jaxdm.stats."""

import numpy as np
import pytest

from jaxdm import design

S = np.array([3.0, 5.0, 2.0])  # numpy: float64 once x64 is on in the test
B = np.array([10.0, 4.0, 20.0])


@pytest.mark.x64
def test_asimov_z0_closed_form():
    """Z0 = sqrt(2 sum[(s+b) ln(1+s/b) - s]) without nuisances (CCGV eq. 97)."""
    z = design.asimov_discovery_significance(S, B)
    expect = np.sqrt(2 * np.sum((S + B) * np.log(1 + S / B) - S))
    np.testing.assert_allclose(z, expect, rtol=1e-9)
    # A background uncertainty can only reduce the sensitivity.
    assert design.asimov_discovery_significance(S, B, background_sigma=0.2) < z


@pytest.mark.x64
@pytest.mark.parametrize("sigma", [None, 0.1])
def test_asimov_z0_gradient_matches_finite_differences(sigma):
    res = design.check_gradient(
        lambda p: design.asimov_discovery_significance(
            p["s"], p["b"], background_sigma=sigma
        ),
        {"s": S, "b": B},
    )
    assert res.ok, res


@pytest.mark.x64
def test_expected_limit_gaussian_limit():
    """One bin, b >> s: median CLs limit mu = 1.96 sqrt(b) / s (CCGV eq. 89).

    0.2% tolerance: the Poisson q_mu,A differs from the Gaussian one at O(s/b).
    """
    lim = design.expected_upper_limit(np.array([10.0]), np.array([1e6]))
    np.testing.assert_allclose(lim, 1.959964 * 1e3 / 10.0, rtol=2e-3)


@pytest.mark.slow  # ~2-3 min of compilation under load (grad through the fits)
@pytest.mark.x64
def test_expected_limit_gradient():
    # Gradient (implicit function theorem) vs central differences. The value comes
    # from a bisection whose bracket stops at ~1e-7 + 1e-6 x in units of the Asimov
    # width (jaxdm.stats.upper_limit), so the step is 1e-2 (FD noise ~1e-4
    # relative, truncation ~1e-4); at 1e-3 the bisection noise failed the check.
    res = design.check_gradient(
        lambda p: design.expected_upper_limit(p["s"], p["b"], background_sigma=0.1),
        {"s": S, "b": B},
        eps=1e-2,
        rtol=2e-3,
        atol=1e-6,
    )
    assert res.ok, res
    # More signal, lower limit.
    assert np.all(res.analytic[3:] < 0)  # ravel order: b then s
