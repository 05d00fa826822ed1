"""Fisher and mutual information before and after compression; a bad compression loses.

Two-dimensional events: background uniform-ish (broad Gaussian), signal a narrow
Gaussian blob. The exact likelihood ratio p_s/p_b is a sufficient 1-D summary for mu
at mu -> 0, so its histogram keeps (nearly) the 2-D binned Fisher information; a random
projection does not. A compression that silently dropped information, or a Fisher
information computed wrongly, fails.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.stats import norm

from jaxdm import stats


class _LikelihoodRatio:
    def __call__(self, x):
        ls = jnp.sum(norm.logpdf(x, jnp.array([1.0, -0.5]), 0.4))
        lb = jnp.sum(norm.logpdf(x, 0.0, 2.0))
        return jax.nn.sigmoid(ls - lb)


@pytest.mark.x64
def test_fisher_information_closed_form_and_profiled():
    s, b = jnp.array([1.0, 4.0, 2.0]), jnp.array([10.0, 8.0, 30.0])
    np.testing.assert_allclose(
        stats.fisher_information_binned(s, b, 0.5), np.sum(s**2 / (0.5 * s + b))
    )
    m = stats.binned_model(s, b)
    np.testing.assert_allclose(
        stats.profiled_fisher_information(m, 0.5),
        np.sum(s**2 / (0.5 * s + b)),
        rtol=1e-10,
    )
    # A background normalisation nuisance can only reduce the information.
    m2 = stats.binned_model(s, b, background_sigma=0.2)
    assert stats.profiled_fisher_information(
        m2, 0.5
    ) < stats.profiled_fisher_information(m, 0.5)


@pytest.mark.x64
def test_compression_keeps_information_and_random_projection_loses_it():
    rng = np.random.default_rng(0)
    n = 40_000
    xs = rng.normal([1.0, -0.5], 0.4, size=(n, 2))
    xb = rng.normal(0.0, 2.0, size=(n, 2))
    ws, wb = np.full(n, 50.0 / n), np.full(n, 2000.0 / n)  # 50 signal, 2000 bkg events
    e2 = [np.linspace(-6, 6, 25)] * 2
    hs = np.histogramdd(xs, bins=e2, weights=ws)[0]
    hb = np.histogramdd(xb, bins=e2, weights=wb)[0]
    mu = 1.0
    i2 = float(stats.fisher_information_binned(hs, hb, mu))
    edges = jnp.asarray(
        np.quantile(
            jax.vmap(_LikelihoodRatio())(jnp.asarray(xb)), np.linspace(0, 1, 21)
        )
    )
    edges = edges.at[0].set(0.0).at[-1].set(1.0)

    def info(comp, e):
        s, _ = stats.compressed_templates(comp, jnp.asarray(xs), jnp.asarray(ws), e)
        b, _ = stats.compressed_templates(comp, jnp.asarray(xb), jnp.asarray(wb), e)
        assert abs(float(s.sum()) - 50.0) < 1e-6
        assert abs(float(b.sum()) - 2000.0) < 1e-6
        return float(stats.fisher_information_binned(s, b, mu))

    i_lr = info(_LikelihoodRatio(), edges)
    rp = stats.random_projection(
        jax.random.key(0), jnp.asarray(np.concatenate([xs, xb]))
    )
    tr = jax.vmap(rp)(jnp.asarray(xb))
    e_r = (
        jnp.asarray(np.quantile(tr, np.linspace(0, 1, 21)))
        .at[0]
        .set(0.0)
        .at[-1]
        .set(1.0)
    )
    i_rand = info(rp, e_r)
    assert 0.85 * i2 < i_lr < 1.15 * i2
    assert i_rand < 0.6 * i_lr
    # Mutual information between label and summary (balanced classes).
    lab = lambda comp, e: jnp.stack(  # noqa: E731
        [
            jnp.histogram(jax.vmap(comp)(jnp.asarray(xs)), bins=e)[0],
            jnp.histogram(jax.vmap(comp)(jnp.asarray(xb)), bins=e)[0],
        ]
    )
    mi2 = float(
        stats.mutual_information(
            jnp.stack([np.histogramdd(xs, bins=e2)[0], np.histogramdd(xb, bins=e2)[0]])
        )
    )
    mi_lr = float(stats.mutual_information(lab(_LikelihoodRatio(), edges)))
    mi_r = float(stats.mutual_information(lab(rp, e_r)))
    assert mi_r < mi_lr <= mi2 * 1.02
    assert mi_lr > 0.8 * mi2


def test_mutual_information_closed_form():
    # Independent label and statistic: 0 (after the bias correction, within noise);
    # a perfectly informative statistic with balanced classes: log 2.
    c = jnp.array([[500.0, 0.0], [0.0, 500.0]])
    np.testing.assert_allclose(stats.mutual_information(c), np.log(2.0), atol=2e-3)
    c2 = jnp.array([[250.0, 250.0], [250.0, 250.0]])
    assert abs(float(stats.mutual_information(c2))) < 2e-3


@pytest.mark.slow
def test_trained_compressor_close_to_likelihood_ratio():
    rng = np.random.default_rng(1)
    xs = rng.normal([1.0, -0.5], 0.4, size=(6000, 2)).astype(np.float32)
    xb = rng.normal(0.0, 2.0, size=(6000, 2)).astype(np.float32)
    comp, _ = stats.train_compressor(
        jax.random.key(0),
        jnp.asarray(xs),
        jnp.asarray(xb),
        width=32,
        depth=2,
        max_epochs=40,
        batch_size=128,
        progress=False,
    )
    ws, wb = np.full(6000, 50.0 / 6000), np.full(6000, 2000.0 / 6000)
    e = jnp.asarray(np.quantile(jax.vmap(comp)(jnp.asarray(xb)), np.linspace(0, 1, 21)))
    e = e.at[0].set(0.0).at[-1].set(1.0)
    s, _ = stats.compressed_templates(comp, jnp.asarray(xs), jnp.asarray(ws), e)
    b, _ = stats.compressed_templates(comp, jnp.asarray(xb), jnp.asarray(wb), e)
    i_nn = float(stats.fisher_information_binned(s, b, 1.0))
    e2 = (
        jnp.asarray(
            np.quantile(
                jax.vmap(_LikelihoodRatio())(jnp.asarray(xb)), np.linspace(0, 1, 21)
            )
        )
        .at[0]
        .set(0.0)
        .at[-1]
        .set(1.0)
    )
    s2, _ = stats.compressed_templates(
        _LikelihoodRatio(), jnp.asarray(xs), jnp.asarray(ws), e2
    )
    b2, _ = stats.compressed_templates(
        _LikelihoodRatio(), jnp.asarray(xb), jnp.asarray(wb), e2
    )
    i_lr = float(stats.fisher_information_binned(s2, b2, 1.0))
    assert i_nn > 0.85 * i_lr
