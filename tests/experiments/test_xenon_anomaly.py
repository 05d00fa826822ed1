"""Runs experiments/xenon_anomaly.py with tiny arguments."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_xenon_anomaly_script(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", MPLBACKEND="Agg")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    args = ["--n-train", "600", "--n-test", "800", "--epochs", "1", "--top", "10"]
    out = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "xenon_anomaly.py")]
        + args
        + ["--seed", "1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    names = ("flow", "AE", "VAE", "DeepSVDD", "rare+different", "conv AE (images)",
             "conv VAE (images)")  # fmt: skip
    for name in names:
        assert f"-- {name}" in out.stdout
    for pop in ("WIMP 10 GeV", "WIMP 500 GeV", "S2-only", "gas", "accidental"):
        assert pop in out.stdout
    assert "most anomalous class is S2-only" in out.stdout
    assert (tmp_path / "xenon_anomaly_scores.png").exists()
