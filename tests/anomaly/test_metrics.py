"""Metrics of jaxdm.anomaly vs scikit-learn and closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score, roc_curve as sk_roc_curve

from jaxdm import anomaly as an


def _scores(seed, n_b=3000, n_s=2000, shift=1.0, ties=False):
    rng = np.random.default_rng(seed)
    b = rng.standard_normal(n_b)
    s = rng.standard_normal(n_s) + shift
    if ties:  # coarse rounding makes many tied scores, across classes too
        b, s = np.round(b, 1), np.round(s, 1)
    return b, s


@pytest.mark.x64
@pytest.mark.parametrize("ties", [False, True])
def test_auc_matches_sklearn(ties):
    """AUC equals sklearn's roc_auc_score to 1e-6, ties counting one half."""
    b, s = _scores(0, ties=ties)
    ref = roc_auc_score(np.r_[np.zeros(b.size), np.ones(s.size)], np.r_[b, s])
    assert abs(float(an.auc(b, s)) - ref) < 1e-6


def test_auc_float32_matches_sklearn(jit):
    b, s = _scores(1)
    ref = roc_auc_score(np.r_[np.zeros(b.size), np.ones(s.size)], np.r_[b, s])
    got = jit(an.auc)(jnp.asarray(b, jnp.float32), jnp.asarray(s, jnp.float32))
    # float32 scores: a few pairs closer than 1 ulp may tie after the cast.
    assert abs(float(got) - ref) < 1e-5


@pytest.mark.x64
def test_roc_curve_matches_sklearn_points():
    b, s = _scores(2, n_b=500, n_s=400)
    eps_b, eps_s, thr = an.roc_curve(b, s)
    fpr, tpr, _ = sk_roc_curve(
        np.r_[np.zeros(b.size), np.ones(s.size)],
        np.r_[b, s],
        drop_intermediate=False,
    )
    # Every sklearn ROC point is one of ours (ours repeats none here: no ties).
    ours = set(
        zip(
            np.round(np.asarray(eps_b), 12),
            np.round(np.asarray(eps_s), 12),
            strict=False,
        )
    )
    theirs = set(zip(np.round(fpr, 12), np.round(tpr, 12), strict=False))
    assert theirs == ours
    assert thr[0] == np.inf
    assert eps_b[0] == 0
    assert eps_b[-1] == 1


@pytest.mark.x64
def test_signal_efficiency_closed_form_grid():
    """Background scores on the grid i/n: eps_S at eps_B is exact.

    With background b_i = (i + 0.5)/n (i < n) and signal uniform on [0, 2], the cut
    passing k = eps_B n background events sits just above the (k+1)-th largest one,
    1 - eps_B - 0.5/n, so eps_S = (2 - (1 - eps_B - 0.5/n))/2 = (1 + eps_B)/2 +
    0.25/n (signal on a grid of step 1e-6).
    """
    n = 1000
    b = (np.arange(n) + 0.5) / n
    s = np.linspace(0.0, 2.0, 2_000_001)
    for eps in (1e-2, 1e-3, 0.2):
        got = float(an.signal_efficiency(b, s, eps))
        want = (1.0 + eps) / 2.0 + 0.25 / n
        assert abs(got - want) < 2e-6, (eps, got, want)


@pytest.mark.x64
def test_signal_efficiency_gaussian_closed_form():
    """b ~ N(0,1), s ~ N(mu,1): eps_S = 1 - Phi(Phi^-1(1 - eps_B) - mu)."""
    rng = np.random.default_rng(3)
    b = rng.standard_normal(400_000)
    s = rng.standard_normal(200_000) + 2.0
    for eps in an.DARKMACHINES_EPS_B:
        want = norm.sf(norm.isf(eps) - 2.0)
        got = float(an.signal_efficiency(b, s, eps))
        # binomial error of eps_S (n_s) and of the threshold (n_b eps_B events)
        err = np.sqrt(want * (1 - want) / s.size) + norm.pdf(
            norm.isf(eps) - 2.0
        ) * np.sqrt(eps * (1 - eps) / b.size) / norm.pdf(norm.isf(eps))
        assert abs(got - want) < 5 * err, (eps, got, want)


def test_metrics_vmap_over_signals(jit):
    b, _ = _scores(4, n_b=10_000)
    rng = np.random.default_rng(5)
    sig = rng.standard_normal((3, 700)) + np.array([[0.5], [1.0], [2.0]])
    b32, sig32 = jnp.asarray(b, jnp.float32), jnp.asarray(sig, jnp.float32)
    aucs = jit(jax.vmap(an.auc, (None, 0)))(b32, sig32)
    loop = jnp.stack([an.auc(b32, s) for s in sig32])
    np.testing.assert_allclose(aucs, loop, atol=1e-7)
    assert np.all(np.diff(np.asarray(aucs)) > 0)
    sic = jit(jax.vmap(an.significance_improvements, (None, 0)))(b32, sig32[:, :])
    assert sic.shape == (3, 3)
    eff = jax.vmap(an.signal_efficiency, (None, 0, None))(b32, sig32, 1e-2)
    np.testing.assert_allclose(sic[:, 0], eff / 0.1, rtol=1e-6)


def test_total_improvement_definition():
    """TI = max over channels and working points, then min/median/max over signals.

    Hand-computed from the DarkMachines definition (arXiv:2105.14027 and its
    04-SignificanceImprovement notebook).
    """
    eff = np.array(
        [
            [[0.2, 0.05, 0.01], [0.1, 0.02, np.nan]],
            [[0.5, 0.3, 0.1], [0.4, 0.1, 0.08]],
            [[0.05, 0.001, 0.0], [0.06, 0.002, 0.0]],
        ]
    )
    sic = eff / np.sqrt(np.array(an.DARKMACHINES_EPS_B))
    ti = an.total_improvement(sic)
    want = np.array([2.0, 10.0, 0.6])  # 0.2/0.1; 0.1/0.01 = 10; 0.06/0.1
    np.testing.assert_allclose(ti.per_signal, want, rtol=1e-6)
    assert float(ti.minimum) == pytest.approx(0.6)
    assert float(ti.median) == pytest.approx(2.0)
    assert float(ti.maximum) == pytest.approx(10.0)


def test_efficiency_eps_b_bounds_errors():
    b, s = _scores(6, n_b=500)
    for bad in (0.0, 1.0, -0.1, 1e-4):  # 1e-4 < 1/n_b: cannot be calibrated
        with pytest.raises(ValueError, match="eps_b"):
            an.signal_efficiency(b, s, bad)
