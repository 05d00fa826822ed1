"""Runs experiments/lensing_pixel_design.py with tiny arguments."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # compiles the Fisher gradient of a small lensing image (~1 min)
def test_lensing_pixel_design_script(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "lensing_pixel_design.py")]
        + ["--n-pix", "8", "--supersampling", "1", "--grid", "3", "--steps", "2"]
        + ["--read-noise", "0", "--p-min", "0.2", "--p-max", "0.6", "--p-init", "0.4"]
        + ["--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "optimiser p =" in out.stdout
    assert (tmp_path / "lensing_pixel_design.png").exists()
