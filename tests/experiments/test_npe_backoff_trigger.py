"""Runs benchmarks/npe_backoff_trigger.py with tiny arguments (gaussian_linear)."""

import json

import pytest

from tests.experiments._script import run_script


@pytest.mark.slow
def test_npe_backoff_trigger_lists_the_runs():
    out = run_script(
        "benchmarks/npe_backoff_trigger.py", "gaussian_linear", "--n-sims", "300",
        "--max-epochs", "8",
    )  # fmt: skip
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["task"] == "gaussian_linear"
    assert res["n_runs"] == len(res["runs"])
    # no back-off: one run; back-off: the NSF at up to 3 rates, then the fallback
    if res["backoff_triggered"]:
        assert res["n_runs"] >= 3
        assert res["runs"][-1]["flow"] == "maf"
        assert res["runs"][-1]["embedding"] == "identity"
    else:
        assert res["n_runs"] == 1
