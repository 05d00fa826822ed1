"""Runs experiments/xenon_s2_shape.py with tiny arguments."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_xenon_s2_shape_script(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    args = ["--n-train", "200", "--n-test", "200", "--epochs", "2", "--width", "8"]
    out = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "xenon_s2_shape.py")]
        + args
        + ["--seed", "1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ROC AUC: MLP on S2 waveform" in out.stdout
    assert "background-rate reduction" in out.stdout
    assert "median expected 90% CL limit" in out.stdout
    assert (tmp_path / "xenon_s2_shape.png").exists()
