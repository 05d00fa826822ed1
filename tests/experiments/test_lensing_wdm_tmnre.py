"""Smoke test: the lensing WDM TMNRE experiment runs end to end with tiny settings."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "experiments" / "lensing_wdm_tmnre.py"


@pytest.mark.slow
def test_runs_with_tiny_args(tmp_path):
    """~60-90 s on the shared 2-core CPU (two TMNRE runs + coverage), hence slow."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", MPLBACKEND="Agg")
    res = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--n-pix",
            "12",
            "--n-sims",
            "128",
            "--rounds",
            "2",
            "--epochs",
            "1",
            "--sub-mass",
            "2e8",
            "--n-test",
            "10",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "log10 m_WDM" in res.stdout
    assert "coverage log10_m_wdm" in res.stdout
    assert (tmp_path / "regions_0.png").exists()
