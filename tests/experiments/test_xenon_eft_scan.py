"""Runs experiments/xenon_eft_scan.py with tiny arguments (2 masses, 30 tests)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_xenon_eft_scan_script(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    args = ["--n-masses", "2", "--n-grid", "16", "--n-cs1", "3", "--n-cs2", "3"]
    out = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "xenon_eft_scan.py")]
        + args
        + ["--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "15 operators x 2 masses = 30 hypothesis tests" in out.stdout
    assert "converged: 30/30" in out.stdout
    assert "hypothesis testing:" in out.stdout
    assert (tmp_path / "xenon_eft_scan.png").exists()
    res = np.load(tmp_path / "xenon_eft_scan.npz")
    assert res["observed"].shape == (15, 2)
    assert np.all(np.isfinite(res["observed"]))
    assert np.all(res["observed"] > 0)
