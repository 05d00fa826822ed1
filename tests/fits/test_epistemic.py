"""Deep ensembles and the mean-field BNN: predictive spread grows off the data."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxdm.fits import bnn_predict, ensemble_predict, fit_bnn, train_ensemble
from jaxdm.nn import MLP

X = jnp.linspace(-1.0, 1.0, 128)[:, None]
Y = jnp.sin(3 * X[:, 0]) + 0.05 * jax.random.normal(jax.random.key(0), (128,))
X_NEAR = jnp.asarray([[0.0], [0.5]])
X_FAR = jnp.asarray([[4.0], [-4.0]])


def mse(model, batch, key):
    x, y = batch
    return jnp.mean((jax.vmap(model)(x)[:, 0] - y) ** 2)


def test_ensemble_spread_grows_away_from_data():
    members, _ = train_ensemble(
        jax.random.key(1), lambda k: MLP(1, 1, width=16, depth=2, key=k), mse,
        (X, Y), optax.adam(1e-2), n_members=4, max_epochs=300, batch_size=32,
        progress=False,
        val_fraction=0.0,
    )  # fmt: skip
    mean_near, sd_near = ensemble_predict(members, X_NEAR)
    _, sd_far = ensemble_predict(members, X_FAR)
    np.testing.assert_allclose(mean_near, jnp.sin(3 * X_NEAR[:, 0]), atol=0.2)
    assert float(sd_far.min()) > 3 * float(sd_near.max())


@pytest.mark.slow
def test_bnn_spread_grows_away_from_data():
    fitted = fit_bnn(jax.random.key(2), X, Y, num_steps=1500, width=16, sigma=0.05)
    mean_near, sd_near = bnn_predict(jax.random.key(3), fitted, X_NEAR)
    _, sd_far = bnn_predict(jax.random.key(3), fitted, X_FAR)
    np.testing.assert_allclose(mean_near, jnp.sin(3 * X_NEAR[:, 0]), atol=0.3)
    # mean-field SVI underestimates in-data spread less than it grows outside:
    assert float(sd_far.min()) > 2 * float(sd_near.max())
