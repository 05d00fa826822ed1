"""Shared runner of the experiment and benchmark smoke tests: one script per process."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_script(relpath: str, *args: str, timeout: float = 900.0):
    """Run ``ROOT/relpath`` with ``args`` on the CPU (Agg plots); assert it exits 0.

    Returns the ``subprocess.CompletedProcess`` (text stdout/stderr) for the caller's
    checks of what the script printed.
    """
    env = dict(os.environ, JAX_PLATFORMS="cpu", MPLBACKEND="Agg")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, str(ROOT / relpath), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out
