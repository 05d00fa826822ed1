"""Bad inputs to ``jaxdm.fits.guard_support`` (the NPTF model's support guard).

Under tracing the guard's job is to turn a bad point into log density -inf (tested in
``tests/fits/test_nptf_support.py``); these are its concrete-value errors.
"""

import numpy as np

from jaxdm import fits
from tests.bad_inputs.case import Case

CASES = [
    Case(
        "fits.guard_support: NaN parameter value",
        fits.guard_support,
        ({"ps_n1": np.asarray(np.nan)}, {"ps_n1": (3.0, 20.0)}),
        match="ps_n1",
        modes=("eager",),
    ),
    Case(
        "fits.guard_support: value outside the prior support",
        fits.guard_support,
        ({"ps_n1": np.asarray(25.0)}, {"ps_n1": (3.0, 20.0)}),
        match="ps_n1",
        modes=("eager",),
    ),
    Case(
        "fits.guard_support: bounds with low >= high",
        fits.guard_support,
        ({"ps_n1": np.asarray(5.0)}, {"ps_n1": (20.0, 3.0)}),
        match="bounds",
        modes=("eager",),
    ),
]
