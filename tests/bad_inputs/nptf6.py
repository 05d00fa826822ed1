"""Bad inputs to run_nuts's mass matrix and laplace_start's settings (nptf6)."""

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from jaxdm import fits
from tests.bad_inputs.case import Case


def _model(y):
    m = numpyro.sample("m", dist.Normal(0.0, 1.0))
    numpyro.sample("y", dist.Normal(m, 1.0), obs=y)


CASES = [
    Case(
        "fits.run_nuts: inverse_mass_matrix 1-D with dense_mass",
        fits.run_nuts,
        (jax.random.key(0), _model, {"y": jnp.array(0.3)}),
        {
            "dense_mass": True,
            "inverse_mass_matrix": jnp.ones(1),
            "num_warmup": 2,
            "num_samples": 2,
            "progress_bar": False,
        },
        match="inverse_mass_matrix",
        modes=("eager",),  # a host-level driver: not traceable
    ),  # fmt: skip
    Case(
        "fits.laplace_start: learning_rate <= 0",
        fits.laplace_start,
        (jax.random.key(0), _model, {"y": jnp.array(0.3)}),
        {"learning_rate": -0.1},
        match="learning_rate",
        modes=("eager",),  # a host-level driver: not traceable
    ),  # fmt: skip
]
