"""Runs benchmarks/anomaly_vs_pyod.py with tiny arguments, jaxdm only (no PyOD here)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_anomaly_vs_pyod_jaxdm_only():
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    args = ["--n-train", "400", "--n-test", "400", "--epochs", "1", "--rounds", "2",
            "--skip-extra", "--skip-pyod"]  # fmt: skip
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "anomaly_vs_pyod.py"), *args],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "round 2/2 done" in out.stdout
    assert "load average" in out.stdout
    for name in ("AE", "VAE", "DeepSVDD"):
        assert f"AUC {name}" in out.stdout
        assert f"{name:9s} wall" in out.stdout
        assert f"{name:9s} CPU" in out.stdout
