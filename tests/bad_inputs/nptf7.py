"""Bad inputs to the compile-once fit path (``jaxdm.fits.compiled``), eager only."""

import jax
import numpy as np

from jaxdm import fits
from tests.bad_inputs.case import Case
from tests.fits.test_laplace import Y, correlated_model


def _potential():
    return fits.compile_potential(jax.random.key(0), correlated_model, {"y": Y})


def _vg_wrong_dim():
    return _potential().value_and_grad(np.zeros((2, 3), np.float32))


def _unconstrain_missing_site():
    return _potential().unconstrain({"a": 0.0})


def _run_nuts_init_outside():
    init = {"a": 7.0, "b": 0.0}  # a ~ Uniform(-5, 5)
    return fits.run_nuts(jax.random.key(0), correlated_model, {"y": Y},
                         potential=_potential(), init_params=init,
                         progress_bar=False)  # fmt: skip


CASES = [
    Case(
        "fits.compile_potential: num_batch 0",
        fits.compile_potential,
        (jax.random.key(0), correlated_model, {"y": Y}),
        {"num_batch": 0},
        match="num_batch",
        modes=("eager",),
    ),
    Case(
        "fits.callback_potential: dim 0",
        fits.callback_potential,
        (lambda z: z.sum(), 0),
        match="dim",
        modes=("eager",),
    ),
    Case(
        "fits.CompiledPotential.value_and_grad: z of the wrong length",
        _vg_wrong_dim,
        match="`z`",
        modes=("eager",),
    ),
    Case(
        "fits.CompiledPotential.unconstrain: a latent site missing",
        _unconstrain_missing_site,
        match="init_params",
        modes=("eager",),
    ),
    Case(
        "fits.laplace_start: potential not a CompiledPotential",
        fits.laplace_start,
        (jax.random.key(0), correlated_model, {"y": Y}),
        {"potential": "compiled"},
        match="potential",
        modes=("eager",),
    ),
    Case(
        "fits.run_nuts: potential not a CompiledPotential",
        fits.run_nuts,
        (jax.random.key(0), correlated_model, {"y": Y}),
        {"potential": "compiled", "progress_bar": False},
        match="potential",
        modes=("eager",),
    ),
    Case(
        "fits.run_nuts: potential= with init_params outside the prior",
        _run_nuts_init_outside,
        match="init_params",
        modes=("eager",),
    ),
]
