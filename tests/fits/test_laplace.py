"""laplace_start: mode and Laplace covariance in numpyro's unconstrained space."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from jax.flatten_util import ravel_pytree
from numpyro.infer import init_to_median
from numpyro.infer.util import initialize_model

from jaxdm.fits import laplace_start, run_nuts


def correlated_model(y):
    # A bounded (logit-transformed) and an unbounded site, correlated by the data.
    a = numpyro.sample("a", dist.Uniform(-5.0, 5.0))
    b = numpyro.sample("b", dist.Normal(0.0, 10.0))
    numpyro.sample("y1", dist.Normal(a + b, 0.1), obs=y[0])
    numpyro.sample("y2", dist.Normal(a - 2.0 * b, 0.2), obs=y[1])


Y = jnp.array([2.0, 0.5])


def test_mode_and_covariance_match_the_exact_hessian():
    res = laplace_start(jax.random.key(0), correlated_model, {"y": Y}, steps=600)
    # Data: a + b = 2, a - 2b = 0.5 -> a = 1.5, b = 0.5 (priors and the logit
    # Jacobian shift the mode by < 0.01 at these precisions).
    np.testing.assert_allclose(res.init_params["a"], 1.5, atol=0.01)
    np.testing.assert_allclose(res.init_params["b"], 0.5, atol=0.01)
    # Reference: jax.hessian of numpyro's own potential at the returned mode.
    info, pot, _, _ = initialize_model(
        jax.random.key(0),
        correlated_model,
        model_kwargs={"y": Y},
        init_strategy=init_to_median,
    )
    _, unravel = ravel_pytree(info.z)
    a = res.init_params["a"]
    z = jnp.array([jnp.log((a + 5.0) / (5.0 - a)), res.init_params["b"]])
    h = np.asarray(jax.hessian(lambda v: pot(unravel(v)))(z), float)
    assert abs(h[0, 1]) > 10  # correlated: the test checks the off-diagonal too
    np.testing.assert_allclose(res.inverse_mass_matrix, np.linalg.inv(h), rtol=2e-2)
    np.testing.assert_allclose(np.sort(res.hessian_eigenvalues),
                               np.linalg.eigvalsh(h), rtol=2e-2)  # fmt: skip


@pytest.mark.slow
def test_nuts_from_the_laplace_start_with_a_fixed_mass_matrix():
    start = laplace_start(jax.random.key(1), correlated_model, {"y": Y}, steps=600)
    res = run_nuts(
        jax.random.key(2),
        correlated_model,
        {"y": Y},
        num_warmup=60,
        num_samples=200,
        dense_mass=True,
        init_params=start.init_params,
        inverse_mass_matrix=start.inverse_mass_matrix,
        adapt_mass_matrix=False,
        chain_method="vectorized",
        min_ess=50,
        rhat_threshold=1.05,
        progress_bar=False,
    )
    assert res.num_divergences == 0
    # Posterior sd of b: from the 2x2 precision of (a, b) (a's prior is flat):
    # [[1/0.01 + 1/0.04, 1/0.01 - 2/0.04], [., 1/0.01 + 4/0.04 + 1/100]].
    prec = np.array([[125.0, 50.0], [50.0, 200.01]])
    sd_b = np.sqrt(np.linalg.inv(prec)[1, 1])
    assert abs(float(res.summary.loc["b", "mean"]) - 0.5) < 3 * sd_b / np.sqrt(50)
    assert abs(float(res.summary.loc["b", "sd"]) / sd_b - 1) < 0.25
