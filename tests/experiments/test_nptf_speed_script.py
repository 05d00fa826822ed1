"""Runs benchmarks/nptf_speed.py's full fit (pilot mass matrix path) at tiny size."""

import pytest

from tests.experiments._script import run_script


@pytest.mark.slow
def test_nptf_speed_full_fit_tiny():
    out = run_script(
        "benchmarks/nptf_speed.py", "--fit-only", "--no-progress", "--npix", "16",
        "--n-nodes", "8", "--map-steps", "3", "--fit-warmup", "5",
        "--fit-samples", "5", "--pilot", "5", "--pilot-warmup", "3",
    )  # fmt: skip
    assert "pilot: 5 warmup + 5 draws" in out.stdout
    assert "all NUTS batched evaluations" in out.stdout
    assert "max R-hat" in out.stdout
