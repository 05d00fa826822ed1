"""ECE and reliability diagrams (jaxdm.plots) on calibrated and miscalibrated toys."""

import numpy as np
import pytest

from jaxdm.plots import (
    calibration_bins,
    expected_calibration_error,
    reliability_diagram,
)


def test_ece_small_for_calibrated_and_large_for_overconfident():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=20_000)
    y = (rng.uniform(size=p.size) < p).astype(float)  # calibrated by construction
    assert expected_calibration_error(p, y) < 0.02
    sharp = np.clip((p - 0.5) * 3 + 0.5, 0, 1)  # overconfident
    assert expected_calibration_error(sharp, y) > 0.1


def test_ece_exact_value_and_plot():
    p = np.array([0.05, 0.05, 0.95, 0.95])
    y = np.array([0.0, 1.0, 1.0, 1.0])
    # bin 0: mean 0.05, frac 0.5 (weight 1/2); bin 9: mean 0.95, frac 1 (weight 1/2)
    assert expected_calibration_error(p, y) == pytest.approx(0.5 * 0.45 + 0.5 * 0.05)
    _, _, counts = calibration_bins(p, y)
    assert counts.sum() == 4
    fig = reliability_diagram(p, y)
    assert fig.axes


def test_bad_probs_raise():
    with pytest.raises(ValueError, match="probs"):
        expected_calibration_error(np.array([0.5, np.nan]), np.array([0, 1]))
    with pytest.raises(ValueError, match="labels"):
        expected_calibration_error(np.array([0.5, 0.2]), np.array([0, 2]))
