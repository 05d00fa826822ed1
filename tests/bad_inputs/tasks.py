"""Bad inputs to ``jaxdm.tasks``: errors name the argument, eagerly and under jit.

Values follow the raise policy of ``jaxdm._checks`` (ValueError eagerly,
``EquinoxRuntimeError`` under jit); counts, shapes and keys are static and raise the
same error in both modes.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxdm import tasks
from tests.bad_inputs.case import Case

_GL = tasks.gaussian_linear(dim=3)
_TM = tasks.two_moons()
_SLCP = tasks.slcp()
_GM = tasks.gaussian_mixture()
_KEY = jax.random.key(0)
_EAGER = ("eager",)

CASES = [
    Case(
        "tasks.sample_prior: n = 0",
        _TM.sample_prior,
        (_KEY, 0),
        match="`n` must be a positive integer",
    ),
    Case(
        "tasks.sample_prior: n = -5",
        _GL.sample_prior,
        (_KEY, -5),
        match="`n` must be a positive integer",
    ),
    Case(
        "tasks.sample_prior: n = 2.5",
        _TM.sample_prior,
        (_KEY, 2.5),
        match="`n` must be a Python int",
    ),
    Case(
        "tasks.sample_joint: n a string",
        _TM.sample_joint,
        (_KEY, "10"),
        match="`n` must be a Python int",
    ),
    Case(
        "tasks.sample_prior: n a jnp array",
        _TM.sample_prior,
        (_KEY, jnp.array(4)),
        match="`n` must be a Python int",
    ),
    Case(
        "tasks.sample_prior: batch of keys",
        _TM.sample_prior,
        (jax.random.split(_KEY, 4), 3),
        match="`key` must be one PRNG key",
    ),
    Case(
        "tasks.simulate: legacy uint32 key",
        _GL.simulate,
        (jax.random.PRNGKey(0), jnp.zeros(3)),
        match="`key` is a legacy",
    ),
    Case(
        "tasks.simulate: theta of the wrong length",
        _TM.simulate,
        (_KEY, jnp.zeros(3)),
        match=r"`theta` must have shape \(2,\)",
    ),
    Case(
        "tasks.simulate: a batch of theta",
        _SLCP.simulate,
        (_KEY, jnp.zeros((4, 5))),
        match=r"`theta`.*batch.*vmap",
    ),
    Case(
        "tasks.simulate: NaN theta",
        _GL.simulate,
        (_KEY, jnp.array([0.0, jnp.nan, 0.1])),
        match="`theta` must be finite",
    ),
    Case(
        "tasks.simulate: inf theta",
        _SLCP.simulate,
        (_KEY, jnp.array([0.0, 0.0, jnp.inf, 1.0, 0.0])),
        match="`theta` must be finite",
    ),
    Case(
        "tasks.log_likelihood: NaN observation",
        _TM.log_likelihood,
        (jnp.zeros(2), jnp.array([jnp.nan, 0.1])),
        match="`x` must be finite",
    ),
    Case(
        "tasks.log_likelihood: NaN theta",
        _GM.log_likelihood,
        (jnp.array([jnp.nan, 0.0]), jnp.zeros(2)),
        match="`theta` must be finite",
    ),
    Case(
        "tasks.log_likelihood: x as (4, 2) points instead of (8,)",
        _SLCP.log_likelihood,
        (jnp.zeros(5), jnp.zeros((4, 2))),
        match=r"`x` must have shape \(8,\)",
    ),
    Case(
        "tasks.reference_posterior: observation index instead of x_obs",
        _GL.reference_posterior,
        (_KEY, 3, 10),
        match="`x_obs`.*observation",
    ),
    Case(
        "tasks.reference_posterior: NaN x_obs",
        _GL.reference_posterior,
        (_KEY, jnp.array([0.1, jnp.nan, 0.0]), 10),
        match="`x_obs` must be finite",
    ),
    Case(
        "tasks.reference_posterior: NaN x_obs (rejection sampler)",
        _TM.reference_posterior,
        (_KEY, jnp.array([jnp.nan, 0.1]), 10),
        match="`x_obs` must be finite",
        modes=_EAGER,
    ),
    Case(
        "tasks.reference_posterior: n = 0",
        _GM.reference_posterior,
        (_KEY, jnp.zeros(2), 0),
        match="`n` must be a positive integer",
    ),
    Case(
        "tasks.posterior_log_prob: NaN theta",
        _GL.posterior_log_prob,
        (jnp.array([jnp.nan, 0.0, 0.0]), jnp.zeros(3)),
        match="`theta` must be finite",
    ),
    Case(
        "tasks.log_prob_unnormalized: theta outside the prior box",
        _GM.log_prob_unnormalized,  # likelihood finite there; posterior must be -inf
        (jnp.array([12.0, 0.0]), jnp.array([12.0, 0.0])),
        expect="nan",
        flagged=lambda out: float(out) == -np.inf,
    ),
    Case(
        "tasks.get_task: unknown name",
        tasks.get_task,
        ("two-moons",),
        match="`name` must be one of",
    ),
    Case(
        "tasks.observation: a name instead of a Task",
        tasks.observation,
        (_KEY, "slcp"),
        match="`task` must be a jaxdm.tasks.Task",
    ),
    Case(
        "tasks.gaussian_linear: dim = 0",
        tasks.gaussian_linear,
        (0,),
        match="`dim` must be a positive integer",
    ),
]
