"""Runs experiments/xenon_domain_shift.py with tiny arguments."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # simulation + three trainings: > 20 s
def test_xenon_domain_shift_script(tmp_path):
    # PYTHONPATH: import this checkout's jaxdm, not an installed copy.
    env = dict(os.environ, JAX_PLATFORMS="cpu", MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    args = ["--n", "1000", "--epochs", "1", "--width", "8"]
    out = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "xenon_domain_shift.py")]
        + args
        + ["--seed", "1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "domain-adversarial: NR acceptance on shifted data" in out.stdout
    assert (tmp_path / "xenon_domain_shift.png").exists()
