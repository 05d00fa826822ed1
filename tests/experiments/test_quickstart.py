"""experiments/quickstart.py runs end to end with tiny arguments and writes outputs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "experiments" / "quickstart.py"


# > 20 s (~180 s under load); tests/test_notebooks.py::test_quickstart_notebook_runs
# runs the same simulate -> train_npe -> diagnostics pipeline in the default suite.
@pytest.mark.slow
def test_quickstart_tiny(tmp_path):
    out = tmp_path / "qs"
    args = ["--n-sims", "64", "--n-pix", "16", "--epochs", "1", "--n-test", "8"]
    args += ["--n-samples", "100", "--out", str(out), "--no-progress"]
    res = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["posterior"]) == {
        "log10_m_wdm", "theta_e", "q", "gamma1", "gamma2",
    }  # fmt: skip
    assert (out / "corner.png").stat().st_size > 0
    assert "expected coverage" in res.stdout
