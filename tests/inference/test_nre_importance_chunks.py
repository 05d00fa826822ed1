"""Chunked importance weights of ``jaxdm.inference.nre``: padding, compiles, vmap."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm.inference import nre


@pytest.fixture(scope="module")
def setup():
    m = nre.make_ratio_estimator(
        jax.random.key(0), theta_dim=2, x_shape=(3,), marginals=[(0,), (0, 1)]
    )
    prior = jax.random.uniform(jax.random.key(1), (1000, 2), minval=-2, maxval=2)
    xs = jax.random.normal(jax.random.key(2), (3, 3))
    return m, prior, xs


def _direct(m, prior, xs):
    """Self-normalised log weights and Kish ESS from ``log_ratio``, unchunked."""
    lr = m.log_ratio(prior, xs)  # (m, n, M)
    lw = lr - jax.nn.logsumexp(lr, axis=1, keepdims=True)
    w = jnp.exp(lw)
    return lw, jnp.sum(w, axis=1) ** 2 / jnp.sum(w**2, axis=1)


@pytest.mark.parametrize("chunk", [64, 100, 333, 1000, 4096])
def test_weights_do_not_depend_on_chunk_and_match_the_direct_ratio(setup, chunk):
    """Padding the draws to whole chunks leaves the weights bitwise unchanged.

    1000 draws are not a multiple of 64 or 333: the padded rows (copies of draw 0)
    must be dropped before the normalisation, or every weight shifts by the log of
    the padded mass and the sum of the weights exceeds 1.
    """
    m, prior, xs = setup
    ws = nre.importance_samples(m, prior, xs, chunk_size=chunk)
    ref = nre.importance_samples(m, prior, xs, chunk_size=1000)
    assert ws.log_weights.shape == (3, 1000, 2)
    np.testing.assert_array_equal(ws.log_weights, ref.log_weights)
    np.testing.assert_array_equal(ws.ess, ref.ess)
    lw, ess = _direct(m, prior, xs)
    np.testing.assert_allclose(ws.log_weights, lw, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ws.ess, ess, rtol=1e-4)
    np.testing.assert_allclose(jax.nn.logsumexp(ws.log_weights, axis=1), 0.0, atol=1e-5)


def test_importance_program_compiles_once(setup, jit_traces):
    """New prior values of the same shape re-trace nothing."""
    m, prior, xs = setup
    prior = prior[:700]  # a shape no other test compiles
    prior2, xs2 = jax.block_until_ready((prior[::-1] * 0.5, xs + 1.0))
    with jit_traces() as first:
        nre.importance_samples(m, prior, xs, chunk_size=300)
    with jit_traces() as second:
        nre.importance_samples(m, prior2, xs2, chunk_size=300)
    assert first.count("_importance_program") == 1
    assert second == []


def test_padded_chunks_under_jit_and_vmap(setup):
    """Inside ``jit`` and under ``vmap`` over prior sets: the eager result."""
    m, prior, xs = setup
    priors = jnp.stack([prior, prior[::-1] * 0.5])
    f = eqx.filter_jit(
        lambda mm, p, x: nre.importance_samples(mm, p, x, chunk_size=96).log_weights
    )
    np.testing.assert_array_equal(
        f(m, prior, xs),
        nre.importance_samples(m, prior, xs, chunk_size=96).log_weights,
    )
    v = jax.vmap(lambda p: f(m, p, xs))(priors)
    assert v.shape == (2, 3, 1000, 2)
    for i in range(2):
        np.testing.assert_allclose(
            v[i],
            nre.importance_samples(m, priors[i], xs, chunk_size=96).log_weights,
            rtol=1e-6,
            atol=1e-6,
        )


def test_same_structure_reuses_the_program(setup, jit_traces):
    """A retrained model of the same structure (new weights) re-traces nothing."""
    m, prior, xs = setup
    prior = prior[:500]
    other = nre.make_ratio_estimator(
        jax.random.key(5), theta_dim=2, x_shape=(3,), marginals=[(0,), (0, 1)]
    )
    a = nre.importance_samples(m, prior, xs, chunk_size=128)
    with jit_traces() as again:
        b = nre.importance_samples(other, prior, xs, chunk_size=128)
    assert again == []
    assert not np.array_equal(a.log_weights, b.log_weights)
