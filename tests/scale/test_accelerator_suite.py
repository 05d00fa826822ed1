"""benchmarks/accelerator_suite.py --quick runs on the CPU: a row per benchmark."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "accelerator_suite.py"


def test_quick_suite_prints_every_row(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("accelerator_suite", SCRIPT)
    suite = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(suite)
    suite.main(["--quick", "--json", str(tmp_path / "rows.json")])
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "rows.json").read_text())
    labels = [r[0] for r in result["rows"]]
    expected = ["xenon events", "lensing images", "lensing images, 5 subhalos",
                "gamma maps", "npe train step", "npe 1e+03 samples",
                "store append", "store shuffled read"]  # fmt: skip
    assert len(labels) == len(expected)
    for want, got in zip(expected, labels, strict=True):
        assert got.startswith(want)
    for _, value, unit, _ in result["rows"]:
        assert value > 0
        assert unit in out
    assert "device cpu" in out
    for label in labels:
        assert label in out
