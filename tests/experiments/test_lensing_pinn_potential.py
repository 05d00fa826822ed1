"""Runs experiments/lensing_pinn_potential.py with tiny arguments."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# > 20 s (~41 s under load): slow, like the other experiments' smoke tests.
@pytest.mark.slow
def test_lensing_pinn_potential_script(tmp_path):
    # PYTHONPATH: import this checkout's jaxdm, not an installed copy.
    env = dict(os.environ, JAX_PLATFORMS="cpu", MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    args = ["--n-data", "16", "--n-colloc", "48", "--epochs", "2", "--width", "8"]
    out = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "lensing_pinn_potential.py")]
        + args
        + ["--seed", "1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "relative RMS deflection error (data + Poisson):" in out.stdout
    assert (tmp_path / "lensing_pinn_potential.png").exists()
