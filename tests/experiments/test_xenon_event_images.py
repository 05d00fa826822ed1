"""Runs experiments/xenon_event_images.py with tiny arguments (slow: ~1-5 min)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_xenon_event_images_script(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", MPLBACKEND="Agg")
    args = ["--n-train", "150", "--n-test", "80", "--epochs", "1", "--size", "8"]
    args += ["--channels", "4", "--masses", "500"]
    out = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "xenon_event_images.py")]
        + args
        + ["--seed", "1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "500 GeV: accuracy" in out.stdout
    assert "Khosa et al." in out.stdout
    assert "totals-only MLP baseline" in out.stdout
    assert (tmp_path / "xenon_event_images.png").exists()
