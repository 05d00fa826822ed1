"""Runs experiments/xenon_er_nr.py with tiny arguments."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# > 20 s (~47 s under load): slow, like the other experiments' smoke tests.
@pytest.mark.slow
def test_xenon_er_nr_script(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", MPLBACKEND="Agg")
    args = ["--n-train", "2000", "--n-test", "2000", "--epochs", "2", "--width", "8"]
    out = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "xenon_er_nr.py")]
        + args
        + ["--seed", "1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ROC AUC (MLP):" in out.stdout
    assert "ER leakage at 50% NR acceptance" in out.stdout
    assert (tmp_path / "xenon_er_nr.png").exists()
