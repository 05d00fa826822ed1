"""Bad inputs to jaxdm.stats: negative counts, empty templates, mu bounds, 0 toys."""

import jax
import jax.numpy as jnp

from jaxdm import stats
from tests.bad_inputs.case import Case

_M = stats.binned_model(jnp.array([1.0, 2.0]), jnp.array([5.0, 5.0]))
_D = stats.BinnedData(jnp.array([5.0, 6.0]), _M.nominal_aux())
_K = jax.random.key(0)

CASES = [
    Case(
        "stats.binned_model: negative expected signal count",
        stats.binned_model,
        (jnp.array([1.0, -2.0]), jnp.array([5.0, 5.0])),
        match="`signal`",
    ),
    Case(
        "stats.binned_model: negative expected background count",
        stats.binned_model,
        (jnp.array([1.0, 2.0]), jnp.array([5.0, -0.5])),
        match="`background`",
    ),
    Case(
        "stats.binned_model: empty signal template (all zero)",
        stats.binned_model,
        (jnp.zeros(2), jnp.array([5.0, 5.0])),
        match="`signal` is an empty template",
    ),
    Case(
        "stats.binned_model: empty background template (one sample all zero)",
        stats.binned_model,
        (jnp.array([1.0, 2.0]), jnp.array([[5.0, 5.0], [0.0, 0.0]])),
        match="`background` has an empty template",
    ),
    Case(
        "stats.binned_model: template without bins",
        stats.binned_model,
        (jnp.zeros(0), jnp.zeros(0)),
        match="`signal` is an empty template",
    ),
    Case(
        "stats.binned_model: negative normalisation uncertainty",
        stats.binned_model,
        (jnp.array([1.0, 2.0]), jnp.array([5.0, 5.0])),
        {"background_sigma": jnp.array([-0.1])},
        match="`background_sigma`",
    ),
    Case(
        "stats.hypotest: mu below the q~_mu bound 0",
        stats.hypotest,
        (jnp.array(-1.0), _M, _D),
        match="`mu`",
    ),
    Case(
        "stats.sample_toys: generating mu below 0",
        stats.sample_toys,
        (_K, _M, jnp.array(-0.5), _M.nominal_aux(), 10),
        match="`mu`",
    ),
    Case(
        "stats.upper_limit: cl outside (0, 1)",
        stats.upper_limit,
        (_M, _D),
        {"cl": 1.5},
        match="`cl`",
    ),
    Case(
        "stats.sample_toys: toy count 0",
        stats.sample_toys,
        (_K, _M, jnp.array(1.0), _M.nominal_aux(), 0),
        match="`n_toys`",
    ),
    Case(
        "stats.toy_hypotest: toy count 0",
        stats.toy_hypotest,
        (_K, jnp.array(1.0), _M, _D),
        {"n_toys": 0},
        match="`n_toys`",
    ),
    Case(
        "stats.coverage: toy count 0",
        stats.coverage,
        (_K, _M, 1.0),
        {"n_toys": 0},
        match="`n_toys`",
    ),
    Case(
        "stats.look_elsewhere: toy count 0",
        stats.look_elsewhere,
        (_K, _M, jnp.ones((3, 2)), _D),
        {"n_toys": 0},
        match="`n_toys`",
    ),
    Case(
        "stats.mc_relative_uncertainty: negative sum of weights",
        stats.mc_relative_uncertainty,
        (jnp.array([1.0, -1.0]), jnp.array([1.0, 1.0])),
        match="`sum_w`",
    ),
]
