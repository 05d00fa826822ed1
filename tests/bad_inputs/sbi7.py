"""Bad inputs to ``train_npe(overfit_fallback=...)``."""

from tests.bad_inputs.case import Case
from tests.bad_inputs.sbi4 import _train

CASES = [
    Case(
        "sbi7.train_npe: overfit_fallback=1 (not a bool)",
        _train,
        kwargs={"overfit_fallback": 1},
        match="`overfit_fallback`",
        modes=("eager",),
    ),
    Case(
        "sbi7.train_npe: overfit_fallback='yes'",
        _train,
        kwargs={"overfit_fallback": "yes"},
        match="`overfit_fallback`",
        modes=("eager",),
    ),
]
