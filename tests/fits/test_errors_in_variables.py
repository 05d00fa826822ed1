"""Errors-in-variables classification: posterior widens with the input uncertainty."""

import jax
import jax.numpy as jnp
import optax
import pytest

from jaxdm.fits import eiv_class_probabilities, eiv_classifier_model, run_nuts
from jaxdm.nn import MLP
from jaxdm.train import fit


def bce(model, batch, key):
    x, y = batch
    logit = jax.vmap(model)(x)[:, 0]
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logit, y))


@pytest.fixture(scope="module")
def classifier():
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    x = jnp.concatenate([jax.random.normal(k1, (200, 2)) - 1.0,
                         jax.random.normal(k2, (200, 2)) + 1.0])  # fmt: skip
    y = jnp.concatenate([jnp.zeros(200), jnp.ones(200)])
    model, _ = fit(k3, MLP(2, 1, width=8, depth=1, key=k3), bce, (x, y),
                   optax.adam(1e-2), max_epochs=60, batch_size=64, progress=False,
                   val_fraction=0.0)  # fmt: skip
    return model


def test_posterior_widens_with_uncertainty_and_collapses_at_zero(classifier):
    # Three copies of one object near the boundary, errors 0.005, 0.3 and 1.0.
    x_obs = jnp.full((3, 2), 0.3)
    x_err = jnp.asarray([0.005, 0.3, 1.0])[:, None] * jnp.ones((3, 2))
    res = run_nuts(
        jax.random.key(1), eiv_classifier_model,
        {"x_obs": x_obs, "x_err": x_err, "classifier": classifier},
        num_warmup=300, num_samples=300, progress_bar=False, rhat_threshold=1.05,
        min_ess=50,
    )  # fmt: skip
    mean, sd = eiv_class_probabilities(res)
    direct = float(jax.nn.sigmoid(classifier(x_obs[0])[0]))
    assert abs(mean[0] - direct) < 0.01
    assert sd[0] < 0.01
    assert sd[0] < sd[1] < sd[2]


def test_nan_in_observed_features_raises(classifier):
    with pytest.raises(ValueError, match="x_obs"):
        eiv_classifier_model(jnp.asarray([[jnp.nan, 0.0]]), jnp.ones((1, 2)),
                             classifier=classifier)  # fmt: skip
