"""Tests for jaxdm.plots: every plot returns a Figure; errors name the argument."""

import sys

import numpy as np
import pytest

from jaxdm import plots
from jaxdm.train import History

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


def test_corner():
    """3-D corner plot with truth: 3x3 axes grid, upper triangle hidden."""
    rng = np.random.default_rng(0)
    s = rng.normal(size=(500, 3))
    fig = plots.corner([s, s + 0.5], truth=np.zeros(3), labels=["a", "b", "c"], bins=15)
    assert len(fig.axes) == 9
    assert not fig.axes[1].axison
    assert fig.axes[3].axison
    assert fig.axes[6].get_xlabel() == "a"
    with pytest.raises(ValueError, match="truth"):
        plots.corner(s, truth=np.zeros(2))
    with pytest.raises(ValueError, match="samples"):
        plots.corner(np.zeros(5))


def test_coverage_tarp_sbc_training():
    """Each remaining plot returns a Figure with the expected curves/panels."""
    lv = np.linspace(0, 1, 11)
    fig = plots.coverage_plot(
        lv, np.stack([lv, lv**2], 1), error=np.full((11, 2), 0.02), labels=["a", "b"]
    )
    assert len(fig.axes[0].lines) == 3  # diagonal + 2 curves
    fig = plots.tarp_plot(lv, lv, ecp_std=np.full(11, 0.01))
    assert fig.axes[0].get_ylabel() == "expected coverage probability"
    fig = plots.sbc_rank_hist(
        np.random.default_rng(1).integers(0, 100, (200, 3)), n_posterior_samples=99
    )
    assert len(fig.axes) == 3
    h = History(
        train_loss=np.array([2.0, 1.0, 0.5]),
        val_loss=np.array([2.1, 1.2, 0.9]),
        best_epoch=2,
        stopped_early=False,
        n_nonfinite_steps=0,
    )
    fig = plots.training_curves(h)
    assert len(fig.axes[0].lines) == 2
    with pytest.raises(TypeError, match="history"):
        plots.training_curves({"train_loss": [1.0]})


def test_missing_matplotlib(monkeypatch):
    """Without matplotlib the error carries the install hint."""
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError) as info:
        plots.coverage_plot([0, 1], [0, 1])
    assert "pip install matplotlib" in "".join(getattr(info.value, "__notes__", []))


def test_bad_inputs_are_reported_not_dropped():
    """NaN rows and wrong shapes raise errors naming the argument (and the rows)."""
    s = np.random.default_rng(2).normal(size=(50, 2))
    bad = s.copy()
    bad[[3, 17], 1] = np.nan
    with pytest.raises(
        ValueError, match=r"`samples` has NaN.*2 of 50 rows: rows \[3, 17\]"
    ):
        plots.corner(bad)
    with pytest.raises(ValueError, match=r"`samples\[1\]` has NaN.*rows \[3, 17\]"):
        plots.corner([s, bad])
    with pytest.raises(ValueError, match=r"`samples\[1\]` must have 2 columns"):
        plots.corner([s, np.zeros((5, 3))])
    with pytest.raises(ValueError, match="`truth`"):
        plots.corner(s, truth=np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match=r"`limits` must have shape \(2, 2\)"):
        plots.corner(s, limits=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="`labels`"):
        plots.corner(s, labels="ab")
    with pytest.raises(TypeError, match="`bins`"):
        plots.corner(s, bins=2.5)
    lv = np.linspace(0, 1, 5)
    with pytest.raises(ValueError, match=r"`coverage` must have shape \(5,\)"):
        plots.coverage_plot(lv, np.zeros(4))
    with pytest.raises(ValueError, match=r"`coverage` has NaN.*rows \[2\]"):
        plots.coverage_plot(lv, np.where(lv == 0.5, np.nan, lv))
    with pytest.raises(ValueError, match="`error` must have the shape"):
        plots.coverage_plot(lv, lv, error=np.zeros(3))
    with pytest.raises(ValueError, match="`ecp`"):
        plots.tarp_plot(lv, lv[:-1])
    with pytest.raises(ValueError, match="`ecp_std`"):
        plots.tarp_plot(lv, lv, ecp_std=np.zeros(2))
    ranks = np.random.default_rng(3).integers(0, 10, (30, 2)).astype(float)
    ranks[4, 0] = np.nan
    with pytest.raises(ValueError, match=r"`ranks` has NaN.*rows \[4\]"):
        plots.sbc_rank_hist(ranks, n_posterior_samples=9)
    with pytest.raises(ValueError, match=r"`ranks` must lie in \[0, n_posterior"):
        plots.sbc_rank_hist(np.full((5, 2), 12.0), n_posterior_samples=9)
    with pytest.raises(TypeError, match="`samples` must be a numeric array"):
        plots.corner(np.array([["a", "b"]]))
