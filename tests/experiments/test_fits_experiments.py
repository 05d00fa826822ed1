"""Runs the fits experiments (gce_nptf.py, xenon_wimp_fit.py) with tiny arguments."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(script, args, tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", MPLBACKEND="Agg")
    out = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / script), *args,
         "--no-progress", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=1200, env=env, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.slow
def test_gce_nptf_script(tmp_path):
    args = ["--n-train", "96", "--epochs", "1", "--flow-layers", "1", "--n-maps",
            "1", "--n-post", "16", "--samples", "10", "--warmup", "10", "--map-steps",
            "20", "--n-nodes", "8"]  # fmt: skip
    out = _run("gce_nptf.py", args, tmp_path)
    assert "NPTF posterior f_PS" in out
    assert "max R-hat" in out
    assert "max R-hat nan" not in out  # 2 chains by default: a finite R-hat
    assert "NPE: RMSE of posterior mean" in out
    assert (tmp_path / "gce_nptf.png").exists()


@pytest.mark.slow
def test_xenon_wimp_fit_script(tmp_path):
    out = _run("xenon_wimp_fit.py", ["--bins", "4", "--samples", "20"], tmp_path)
    assert "nuisances widen" in out
    assert (tmp_path / "xenon_wimp_fit.png").exists()


@pytest.mark.slow
def test_fermi_unid_classification_script(tmp_path):
    args = ["--n-train", "300", "--n-unid", "4", "--epochs", "10", "--samples", "50"]
    out = _run("fermi_unid_classification.py", args, tmp_path)
    assert "P_DM(EIV)" in out
    assert (tmp_path / "fermi_unid_classification.png").exists()
