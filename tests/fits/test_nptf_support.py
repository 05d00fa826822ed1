"""NPTF numpyro model under NUTS-like inputs: NaN / out-of-support -> log density -inf.

A NUTS leapfrog step that overflows gives a NaN constrained value; the model must turn
it into an infinite potential energy (a rejected, divergent proposal) instead of
tripping the likelihood's traced argument guard ("indices must be finite"), which is
what stopped the full NPTF fit of ``benchmarks/nptf_speed.py`` (issue #17).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.util import initialize_model

from jaxdm.fits import (
    NPTFInputs,
    PointSourcePopulation,
    PSFCorrection,
    guard_support,
    nptf_log_likelihood,
    nptf_model,
)

PSF = PSFCorrection(jnp.asarray([0.7, 0.3]), jnp.asarray([1.0, 1.0]))
INP = NPTFInputs(
    templates={"iso": jnp.asarray([1.0, 2.0, 1.5, 0.5])},
    source_fractions=jnp.full((1, 4), 0.25),
    exposure=np.full(4, 1e11),
    psf=PSF,
    pixels=np.arange(4),
)
COUNTS = np.array([3.0, 4.0, 6.0, 5.0])  # one count bucket: one recursion to compile
PRIORS = {
    "iso": (0.1, 3.0),
    "ps_log10_norm": (9.0, 13.0),
    "ps_n1": (3.0, 20.0),
    "ps_n2": (-1.5, 1.5),
    "ps_log10_break": -10.0,  # fixed
}
POINT = {"iso": 1.0, "ps_log10_norm": 11.0, "ps_n1": 10.0, "ps_n2": -0.5}


@pytest.fixture(scope="module")
def potential():
    """Jitted value_and_grad of the potential energy (one compilation) and z -> x."""
    kw = dict(counts=COUNTS, inputs=INP, priors=PRIORS, k_max=6)
    info = initialize_model(
        jax.random.key(0), nptf_model, model_kwargs=kw, dynamic_args=True
    )
    pe = jax.jit(jax.value_and_grad(info.potential_fn(**kw)))
    return pe, info.postprocess_fn(**kw), info.param_info.z


def test_nan_proposal_is_rejected_not_an_error(potential):
    # Without the model's support guard this raises the likelihood's
    # "`populations[0].indices` must be finite" (the benchmark's NUTS failure).
    pe, _, z0 = potential
    assert np.isfinite(float(pe(z0)[0]))
    for name in ("ps_n1", "iso", "ps_log10_norm"):
        val, _ = pe(dict(z0, **{name: jnp.asarray(jnp.nan)}))
        # Non-finite potential energy: numpyro's NUTS maps NaN to +inf, a divergent
        # transition with acceptance probability 0.
        assert not np.isfinite(float(val)), name


def test_valid_point_is_the_likelihood_plus_the_prior(potential):
    pe, post, _ = potential
    # Unconstrained z of POINT through the model's own transforms (logit of uniform).
    z = {
        k: jnp.asarray(np.log((v - PRIORS[k][0]) / (PRIORS[k][1] - v)), jnp.float32)
        for k, v in POINT.items()
    }
    got = post(z)
    for k, v in POINT.items():
        np.testing.assert_allclose(float(got[k]), v, rtol=1e-5)
    pop = PointSourcePopulation(
        jnp.asarray(1e11), jnp.asarray([10.0, -0.5]), jnp.asarray([1e-10])
    )
    ll = nptf_log_likelihood(
        COUNTS, INP.templates["iso"], [pop], INP.source_fractions, INP.exposure, PSF,
        k_max=6,
    )  # fmt: skip
    # -potential = log L + sum log prior density + log |Jacobian| of the logit maps.
    log_prior_jac = 0.0
    for k, v in POINT.items():
        lo, hi = PRIORS[k]
        log_prior_jac += np.log((v - lo) * (hi - v) / (hi - lo) ** 2)
    np.testing.assert_allclose(
        -float(pe(z)[0]), float(ll) + log_prior_jac, rtol=1e-5, atol=1e-3
    )


def test_guard_support_concrete_and_vmapped():
    with pytest.raises(ValueError, match="`a` = .* outside its prior support"):
        guard_support({"a": np.asarray(np.nan)}, {"a": (0.0, 1.0)})
    with pytest.raises(ValueError, match="no entry for parameter 'b'"):
        guard_support({"b": 0.5}, {"a": (0.0, 1.0)})
    from numpyro import handlers

    def f(a):
        with handlers.trace() as tr:
            out = guard_support({"a": a}, {"a": (np.zeros(2), np.ones(2))})
        return out["a"], tr["outside_support"]["fn"].log_factor

    vals = jnp.asarray([[0.2, 0.9], [0.2, 1.5], [jnp.nan, 0.1]])
    out, lf = jax.jit(jax.vmap(f))(vals)
    np.testing.assert_array_equal(np.asarray(lf), [0.0, -np.inf, -np.inf])
    np.testing.assert_allclose(np.asarray(out), [[0.2, 0.9], [0.5, 0.5], [0.5, 0.5]])


def test_one_chain_rhat_is_finite_and_flags_a_drifting_chain():
    # Experiments may run one chain: its R-hat must not be NaN (ArviZ's is), and a
    # chain whose halves disagree must fail the 1.01 threshold.
    import arviz_base as azb

    from jaxdm.fits import diagnose

    rng = np.random.default_rng(0)
    good = rng.normal(size=(1, 400, 2))
    _, _, rhat, ess, problems = diagnose(
        azb.from_dict({"posterior": {"a": good[..., 0], "b": good}}), min_ess=50
    )
    assert np.isfinite(rhat)
    assert rhat < 1.03
    assert not problems, problems
    drift = good + np.linspace(0.0, 3.0, 400)[None, :, None]
    _, _, rhat, _, problems = diagnose(
        azb.from_dict({"posterior": {"b": drift}}), min_ess=1
    )
    assert rhat > 1.1
    assert any("R-hat" in p for p in problems), problems


@pytest.mark.parametrize("n2", [0.999, 1.0, 1.2, 1.8])
def test_faint_index_at_and_above_one_is_finite_and_conserves_flux(n2):
    # n2 >= 1: infinitely many faint sources but finite flux (NPTFit allows n2 < 2).
    # The quadrature in the cumulative-number variable gave NaN here (about 15 % of
    # the benchmark's n2 prior, where NUTS then diverged). Mean counts per pixel
    # sum_m m x_m must equal E * total flux, A F_b^2 (1/(n1 - 2) + 1/(2 - n2)) E.
    from jaxdm.fits import population_log_x

    pop = PointSourcePopulation(
        jnp.asarray(2e11), jnp.asarray([10.0, n2]), jnp.asarray([1e-10])
    )
    one = PSFCorrection(jnp.ones(1), jnp.ones(1))
    log_x, log_tot = jax.jit(population_log_x, static_argnums=3)(
        pop, jnp.asarray([1e11]), one, 400
    )
    assert np.all(np.isfinite(np.asarray(log_x))), n2
    assert np.isfinite(float(log_tot[0]))
    m = np.arange(1, 401)
    mean = float(np.sum(m * np.exp(np.asarray(log_x[0], float))))
    flux = 2e11 * 1e-20 * (1 / 8.0 + 1 / (2.0 - n2))
    np.testing.assert_allclose(mean, flux * 1e11, rtol=2e-3)
