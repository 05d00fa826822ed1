"""Runs experiments/xenon_design.py with tiny arguments."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # compiles the gradient of the profiled Z0 (~1-2 min)
def test_xenon_design_script(tmp_path):
    # PYTHONPATH: import this checkout's jaxdm, not an installed copy.
    env = dict(os.environ, JAX_PLATFORMS="cpu", MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "xenon_design.py")]
        + ["--steps", "2", "--grid", "2", "--seed", "1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "gain over the LZ-like preset:" in out.stdout
    assert (tmp_path / "xenon_design.png").exists()
