"""Table-driven bad-input tests over the public API, eagerly and under jit.

Each case asserts its documented outcome: an error whose message names the public
argument, or NaN in exactly the bad rows plus the documented flag. No case may
return a finite (wrong) answer. ``python tests/test_bad_inputs.py`` prints the counts
by outcome class.
"""

import collections
import importlib
import pkgutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.bad_inputs import case as _case  # noqa: E402


def _all_cases():
    import tests.bad_inputs as pkg

    cases = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name == "case":
            continue
        module = importlib.import_module(f"tests.bad_inputs.{info.name}")
        cases.extend(module.CASES)
    return cases


CASES = _all_cases()
PARAMS = [pytest.param(c, m, id=f"{c.id}[{m}]") for c in CASES for m in c.modes]


def test_table_is_large_and_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert len(CASES) >= 60


@pytest.mark.parametrize(("case", "mode"), PARAMS)
def test_bad_input(case, mode):
    outcome, detail = _case.classify(case, mode)
    want = _case.CLEAR if case.expect_in(mode) == "raise" else _case.FLAGGED
    assert outcome == want, f"{case.id} [{mode}]: {outcome}: {detail}"


if __name__ == "__main__":
    counts = collections.Counter()
    for c in CASES:
        for m in c.modes:
            outcome, detail = _case.classify(c, m)
            counts[outcome] += 1
            print(f"{outcome:14s} {c.id} [{m}] {detail[:120]!r}")
    print(dict(counts))
