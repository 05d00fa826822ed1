"""Runs experiments/gce_point_source_fraction.py with tiny arguments."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# > 20 s (~120 s under load): slow, like the other experiments' smoke tests.
@pytest.mark.slow
def test_gce_point_source_fraction_script(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", MPLBACKEND="Agg")
    args = ["--n-train", "96", "--n-test", "8", "--n-post", "16", "--epochs", "1"]
    out = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "gce_point_source_fraction.py")]
        + args
        + ["--flow-layers", "1", "--seed", "1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "dropped sources: 0" in out.stdout
    assert "f_src: RMSE of posterior mean" in out.stdout
    assert "expected coverage (joint HPD)" in out.stdout
    assert (tmp_path / "gce_point_source_fraction.png").exists()
