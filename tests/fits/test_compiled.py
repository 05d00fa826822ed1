"""compile_potential: one compiled batched potential for laplace_start and run_nuts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from numpyro.infer import init_to_median
from numpyro.infer.util import initialize_model

from jaxdm.fits import compile_potential, laplace_start, run_nuts

from .test_laplace import Y, correlated_model


@pytest.fixture(scope="module")
def cp():
    return compile_potential(jax.random.key(0), correlated_model, {"y": Y}, num_batch=2)


def _numpyro_potential():
    info, pot, _, _ = initialize_model(
        jax.random.key(0), correlated_model, model_kwargs={"y": Y},
        init_strategy=init_to_median,
    )  # fmt: skip
    _, unravel = ravel_pytree(info.z)
    return jax.value_and_grad(lambda z: pot(unravel(z)))


def test_value_grad_and_transforms_match_numpyro(cp):
    ref = _numpyro_potential()
    z = np.array([[0.3, 0.4], [-1.0, 2.0], [0.5, -0.2]], np.float32)  # 3 rows: padded
    v, g = cp.value_and_grad(z)
    for i in range(3):
        rv, rg = ref(jnp.asarray(z[i]))
        np.testing.assert_allclose(v[i], rv, rtol=1e-5)
        np.testing.assert_allclose(g[i], rg, rtol=1e-5, atol=1e-5)
    # the traced potential (jit, vmap, grad) reaches the same numbers
    pv = jax.jit(jax.vmap(jax.value_and_grad(cp.potential)))(jnp.asarray(z))
    np.testing.assert_allclose(pv[0], v, rtol=1e-6)
    np.testing.assert_allclose(pv[1], g, rtol=1e-6)
    # constrain / unconstrain: site a is Uniform(-5, 5) (logit), b unbounded
    c = cp.constrain(z)
    np.testing.assert_allclose(c["a"], -5 + 10 * jax.nn.sigmoid(z[:, 0]), rtol=1e-5)
    np.testing.assert_allclose(c["b"], z[:, 1])
    np.testing.assert_allclose(cp.unconstrain({"a": c["a"][0], "b": c["b"][0]}),
                               z[0], rtol=1e-5)  # fmt: skip
    with pytest.raises(ValueError, match="init_params"):
        cp.unconstrain({"a": 0.0})
    with pytest.raises(ValueError, match="last axis of size 2"):
        cp.value_and_grad(np.zeros((2, 3)))


def test_laplace_with_compiled_potential_matches_model_path(jit_traces):
    cp = compile_potential(jax.random.key(0), correlated_model, {"y": Y}, num_batch=2)
    with jit_traces() as first:
        a = laplace_start(jax.random.key(1), correlated_model, {"y": Y}, steps=600,
                          potential=cp)  # fmt: skip
    with jit_traces() as second:
        b = laplace_start(jax.random.key(1), correlated_model, {"y": Y}, steps=600,
                          potential=cp)  # fmt: skip
    # the model's batched value + gradient is traced once, on first use, only
    assert first.count("neg_log_joint") == 1, first
    assert "neg_log_joint" not in second, second
    # per call: 600 Adam steps, the end point, 2 d = 4 Hessian rows in 2 calls
    assert cp.value_and_grad.num_calls == 2 * (600 + 1 + 2)
    ref = laplace_start(jax.random.key(1), correlated_model, {"y": Y}, steps=600)
    for k in ("a", "b"):
        np.testing.assert_allclose(a.init_params[k], ref.init_params[k], atol=5e-3)
        np.testing.assert_allclose(b.init_params[k], a.init_params[k])
    np.testing.assert_allclose(a.inverse_mass_matrix, ref.inverse_mass_matrix,
                               rtol=2e-2)  # fmt: skip


def test_run_nuts_on_compiled_potential_recovers_the_posterior(cp, jit_traces):
    start = laplace_start(jax.random.key(1), correlated_model, {"y": Y}, steps=400,
                          potential=cp)  # fmt: skip
    with jit_traces() as names:
        res = run_nuts(
            jax.random.key(2), correlated_model, {"y": Y}, num_warmup=60,
            num_samples=200, dense_mass=True, init_params=start.init_params,
            inverse_mass_matrix=start.inverse_mass_matrix, adapt_mass_matrix=False,
            chain_method="vectorized", min_ess=50, rhat_threshold=1.05,
            progress_bar=False, potential=cp,
        )  # fmt: skip
    assert "neg_log_joint" not in names  # NUTS reuses the compiled potential
    assert res.num_divergences == 0
    assert res.ok, res.problems
    assert set(res.summary.index) == {"a", "b"}
    assert res.samples["b"].shape == (2, 200)
    np.testing.assert_array_equal(np.asarray(res.idata.observed_data["y1"]), Y[0])
    # exact Gaussian posterior of b (a's prior is flat; see test_laplace)
    prec = np.array([[125.0, 50.0], [50.0, 200.01]])
    sd_b = np.sqrt(np.linalg.inv(prec)[1, 1])
    assert abs(float(res.summary.loc["b", "mean"]) - 0.5) < 4 * sd_b / np.sqrt(50)
    assert abs(float(res.summary.loc["b", "sd"]) / sd_b - 1) < 0.25


@pytest.mark.slow
def test_nptf_fit_compiles_its_likelihood_once(jit_traces):
    from jaxdm.fits import PointSourcePopulation, nptf_log_likelihood, nptf_model

    from .test_nptf_support import COUNTS, INP, POINT, PRIORS

    data = dict(counts=COUNTS, inputs=INP, priors=PRIORS, k_max=6)
    with jit_traces() as names:
        cp = compile_potential(jax.random.key(0), nptf_model, data, num_batch=2)
        start = laplace_start(jax.random.key(1), nptf_model, data, steps=20,
                              potential=cp)  # fmt: skip
        res = run_nuts(
            jax.random.key(2), nptf_model, data, num_warmup=10, num_samples=10,
            dense_mass=True, init_params=start.init_params,
            inverse_mass_matrix=start.inverse_mass_matrix,
            chain_method="vectorized", progress_bar=False, potential=cp,
            min_ess=1, rhat_threshold=10.0,
        )  # fmt: skip
    assert names.count("neg_log_joint") == 1, names
    assert res.samples["ps_n1"].shape == (2, 10)
    # value at POINT: -(log L + log prior density + log |logit Jacobian|), as
    # test_nptf_support; a NaN proposal: +inf with a zero gradient
    pop = PointSourcePopulation(
        jnp.asarray(1e11), jnp.asarray([10.0, -0.5]), jnp.asarray([1e-10])
    )
    ll = jax.jit(lambda: nptf_log_likelihood(
        COUNTS, INP.templates["iso"], [pop], INP.source_fractions, INP.exposure,
        INP.psf, k_max=6))()  # fmt: skip
    log_prior_jac = sum(
        np.log(
            (v - PRIORS[k][0]) * (PRIORS[k][1] - v) / (PRIORS[k][1] - PRIORS[k][0]) ** 2
        )
        for k, v in POINT.items()
    )
    z = cp.unconstrain(POINT)
    v, g = cp.value_and_grad(np.stack([z, np.full_like(z, np.nan)]))
    np.testing.assert_allclose(v[0], -(float(ll) + log_prior_jac), rtol=1e-5)
    assert v[1] == np.inf
    np.testing.assert_array_equal(g[1], 0.0)
