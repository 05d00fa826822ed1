"""Runs experiments/lensing_images.py with tiny arguments."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# > 20 s (~29 s under load): slow, like the other experiments' smoke tests.
@pytest.mark.slow
def test_lensing_images_script(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", MPLBACKEND="Agg")
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "experiments" / "lensing_images.py"),
            "--n-images",
            "2",
            "--n-pix",
            "24",
            "--max-n",
            "64",
            "--sub-mass",
            "3e9",
            "--seed",
            "1",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "WDM 3 keV" in out.stdout
    assert "> 1e8 M_sun" in out.stdout
    lines = [ln for ln in out.stdout.splitlines() if "M_hm" in ln]
    assert len(lines) == 4
