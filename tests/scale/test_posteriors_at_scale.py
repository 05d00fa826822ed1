"""benchmarks/posteriors_at_scale.py end to end at a tiny size (smoke test)."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "posteriors_at_scale.py"


@pytest.mark.slow  # three processes, an NPE trained and compiled twice: ~40 s quiet
def test_posteriors_at_scale_tiny(tmp_path):
    spec = importlib.util.spec_from_file_location("posteriors_at_scale", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rec = bench.main(["--n-obs", "20000", "--chunk", "256", "--n-samples", "4",
                      "--n-train", "512", "--epochs", "1", "--kill-at", "0.1",
                      "--n-check", "4", "--out", str(tmp_path)])  # fmt: skip
    # The kill may miss a run this small (it can finish between two polls); the bank
    # must be complete and right either way.
    assert rec["first_exit"] in (-9, 0)
    assert rec["n_resumed"] == rec["committed_at_kill"]
    assert rec["n_committed"] == rec["n_distinct_rows"] == 20000
    assert rec["all_finite"]
    assert rec["spot_check_max_abs_diff"] < 1e-4
    assert rec["ok"] == (rec["first_exit"] == -9)
