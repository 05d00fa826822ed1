"""Bad inputs to the NPTF likelihood's evaluation switch (``method``)."""

import jax.numpy as jnp

from jaxdm import fits
from tests.bad_inputs.case import Case

PSF = fits.PSFCorrection(jnp.ones(1), jnp.ones(1))
POP = fits.PointSourcePopulation(
    jnp.asarray(2e11), jnp.asarray([10.0, -0.5]), jnp.asarray([1e-10])
)

CASES = [
    Case(
        "fits.nptf_log_likelihood: unknown method",
        fits.nptf_log_likelihood,
        (
            jnp.array([1.0, 2.0]),
            jnp.array([1.0, 1.0]),
            [POP],
            jnp.array([[0.1, 0.1]]),
            (1e11, 1e11),
            PSF,
        ),
        {"k_max": 5, "method": "bogus"},
        match="method",
    ),  # fmt: skip
]
