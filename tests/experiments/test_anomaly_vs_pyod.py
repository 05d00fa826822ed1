"""Runs benchmarks/anomaly_vs_pyod.py with tiny arguments, jaxdm only (no PyOD here)."""

import pytest

from tests.experiments._script import run_script


@pytest.mark.slow
def test_anomaly_vs_pyod_jaxdm_only():
    args = ["--n-train", "400", "--n-test", "400", "--epochs", "1", "--rounds", "2",
            "--skip-extra", "--skip-pyod"]  # fmt: skip
    out = run_script("benchmarks/anomaly_vs_pyod.py", *args)
    assert "round 2/2 done" in out.stdout
    assert "load average" in out.stdout
    for name in ("AE", "VAE", "DeepSVDD"):
        assert f"AUC {name}" in out.stdout
        assert f"{name:9s} wall" in out.stdout
        assert f"{name:9s} CPU" in out.stdout
