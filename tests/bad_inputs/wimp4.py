"""Bad inputs to the unbinned WIMP likelihood's density and region total."""

import jax.numpy as jnp
import numpy as np

from jaxdm import fits
from jaxdm.simulators import xenon
from tests.bad_inputs.case import Case
from tests.bad_inputs.fits import _trace

_MODEL = xenon.XenonModel(
    (xenon.flat_er_spectrum(1.0, e_min=0.5, e_max=20.0, n_grid=4),), 1.0
)
_DET = xenon.lz_like()


CASES = [
    Case(
        "xenon.event_log_rate: events of the wrong shape",
        xenon.event_log_rate,
        (_MODEL, _DET, jnp.ones((3, 3))),
        match="events",
    ),
    Case(
        "xenon.event_log_rate: NaN in events",
        xenon.event_log_rate,
        (_MODEL, _DET, jnp.asarray([[10.0, 3.2], [jnp.nan, 3.0]])),
        match="events",
        jit_expect="poison",
    ),
    Case(
        "xenon.expected_in_region: reversed cS1 range",
        xenon.expected_in_region,
        (_MODEL, _DET, ((80.0, 2.0), (2.5, 4.5))),
        match="region",
        modes=("eager",),
    ),
    Case(
        "fits.wimp_unbinned_model: an event outside the region",
        _trace,
        (fits.wimp_unbinned_model, np.array([[10.0, 3.0], [90.0, 3.1]])),
        {
            "detector": _DET,
            "region": ((2.0, 80.0), (2.5, 4.5)),
            "exposure": 1.0,
        },
        match="events",
        modes=("eager",),
    ),
]
