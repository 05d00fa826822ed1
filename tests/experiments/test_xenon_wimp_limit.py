"""Runs experiments/xenon_wimp_limit.py with tiny arguments."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_xenon_wimp_limit_script(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    args = ["--n-masses", "2", "--n-signal", "400", "--n-background", "2000"]
    args += ["--epochs", "2", "--width", "8", "--n-bins", "6", "--no-progress"]
    out = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "xenon_wimp_limit.py")]
        + args
        + ["--seed", "1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "(a) 2-D template limits" in out.stdout
    assert "information kept by (b)" in out.stdout
    assert "inside the expected" in out.stdout
    assert (tmp_path / "xenon_wimp_limit.png").exists()
