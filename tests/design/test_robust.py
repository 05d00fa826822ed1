"""Learning to pivot and domain-adversarial training through jaxdm.train.fit."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxdm.design import robust
from jaxdm.train import fit


def _toy(key, n):
    """Louppe, Kagan & Cranmer (arXiv:1611.01046) section 5.1: signal N(0, C),
    C = [[1, -0.5], [-0.5, 1]]; background N((1, 1 + z), 1), nuisance z ~ N(0, 1)."""
    k1, k2, k3 = jax.random.split(key, 3)
    cov = jnp.array([[1.0, -0.5], [-0.5, 1.0]])
    xs = jax.random.multivariate_normal(k1, jnp.zeros(2), cov, (n,))
    z = jax.random.normal(k2, (n,))
    xb = jax.random.normal(k3, (n, 2)) + jnp.stack([jnp.ones(n), 1.0 + z], -1)
    y = jnp.concatenate([jnp.ones(n), jnp.zeros(n)])
    return robust.AdversarialBatch(
        x=jnp.concatenate([xs, xb]),
        y=y,
        z=jnp.concatenate([jnp.zeros(n), z]),
        labelled=jnp.ones(2 * n),
        adversary_weight=1.0 - y,  # independence on the background distribution
    )


def test_gradient_reversal():
    g = jax.grad(lambda x: jnp.sum(robust.gradient_reversal(x, 2.5) ** 2))(
        jnp.array([1.0, -2.0])
    )
    np.testing.assert_allclose(g, -2.5 * 2 * jnp.array([1.0, -2.0]))
    assert float(robust.gradient_reversal(jnp.array(3.0), 1.0)) == 3.0


@pytest.mark.slow  # two trainings of 40 epochs: ~15 s quiet, ~1 min under load
def test_pivot_decorrelates_classifier_from_nuisance():
    """Background: |corr(f, z)| < 0.15 pivoted (lambda = 10) vs > 0.3 plain.

    With 2000 background rows the correlation's sampling error is ~0.02, so the
    bounds separate a dependent output (the plain classifier uses x1, which carries
    z: corr ~ -0.45) from an independent one with margin.
    """
    batch = _toy(jax.random.key(0), 2000)
    bkg = np.asarray(batch.y) == 0
    corr = {}
    for lam in (0.0, 10.0):
        model = robust.PivotClassifier(2, width=16, key=jax.random.key(1))
        model, _ = fit(
            jax.random.key(2),
            model,
            lambda m, b, k, lam=lam: robust.pivot_loss(m, b, k, lam=lam),
            batch,
            optax.adam(3e-3),
            batch_size=200,
            max_epochs=40,
            val_fraction=0.0,
            progress=False,
        )
        s = np.asarray(jax.vmap(model)(batch.x))
        corr[lam] = np.corrcoef(s[bkg], np.asarray(batch.z)[bkg])[0, 1]
        acc = np.mean((s > 0.5) == np.asarray(batch.y))
        assert acc > 0.65  # still a classifier
    assert abs(corr[0.0]) > 0.3
    assert abs(corr[10.0]) < 0.15


def test_domain_adversarial_loss_trains_through_fit():
    """DANN: one loss through fit; the reversal makes the domain head's gradient
    flip sign for the features (checked against a loss without reversal)."""
    k1, k2 = jax.random.split(jax.random.key(3))
    x = jax.random.normal(k1, (400, 3))
    y = (x[:, 0] > 0).astype(jnp.float32)
    dom = (jnp.arange(400) >= 200).astype(jnp.float32)
    x = x + 0.5 * dom[:, None]  # "data" shifted
    batch = robust.AdversarialBatch(
        x=x, y=y, z=dom, labelled=1.0 - dom, adversary_weight=jnp.ones(400)
    )
    model = robust.DomainAdversarialClassifier(3, n_features=4, width=8, key=k2)
    g = jax.grad(lambda m: robust.domain_adversarial_loss(m, batch, lam=1.0))(model)
    g0 = jax.grad(lambda m: robust.domain_adversarial_loss(m, batch, lam=0.0))(model)
    # lam only changes the features' gradient, never the heads'.
    np.testing.assert_allclose(
        g.domain_head.layers[0].weight, g0.domain_head.layers[0].weight
    )
    assert not np.allclose(g.features.layers[0].weight, g0.features.layers[0].weight)
    model, hist = fit(
        jax.random.key(4),
        model,
        lambda m, b, k: robust.domain_adversarial_loss(m, b, k, lam=1.0),
        batch,
        optax.adam(3e-3),
        batch_size=100,
        max_epochs=3,
        val_fraction=0.0,
        progress=False,
    )
    assert np.isfinite(hist.train_loss).all()
    assert 0.0 <= float(model(x[0])) <= 1.0


def test_pivot_loss_jit_matches_eager():
    lam = 3.0
    batch = _toy(jax.random.key(5), 50)
    model = robust.PivotClassifier(2, width=8, key=jax.random.key(6))
    eager = robust.pivot_loss(model, batch, lam=lam)
    jitted = jax.jit(lambda m, b: robust.pivot_loss(m, b, lam=lam))(model, batch)
    np.testing.assert_allclose(eager, jitted, rtol=1e-5)
