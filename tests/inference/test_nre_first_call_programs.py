"""NRE posterior sampling's first call compiles its two programs and nothing else.

``importance_samples`` + batched ``resample`` on new shapes: the ratio program and
the resampling program are the only traces. Checking concrete prior draws and
observations eagerly with jnp compiled op-by-op kernels (``isfinite``, ``invert``,
``all``, a staging copy of the row mask, the ESS slice) for every new shape, ~0.2 s
CPU of a first call (``benchmarks/RESULTS.md``, "sbi7"); they run on the host now.
Bad inputs still raise, naming the argument (``tests/bad_inputs/nre.py``).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm.inference import nre


@pytest.fixture(scope="module")
def model():
    return nre.make_ratio_estimator(jax.random.key(0), theta_dim=2, x_shape=(3,))


def test_first_call_traces_only_the_two_programs(model, jit_traces):
    prior = jax.random.uniform(jax.random.key(1), (1237, 2))  # shapes unique here
    xs = jax.random.normal(jax.random.key(2), (7, 3))
    prior, xs = jax.block_until_ready((prior, xs))
    with jit_traces() as names:
        ws = nre.importance_samples(model, prior, xs, chunk_size=512)
        draws = jax.block_until_ready(nre.resample(jax.random.key(3), ws, 0, 5))
    assert sorted(names) == ["_importance_program", "_resample_batch"], names
    assert draws.shape == (7, 5, 2)
    np.testing.assert_array_equal(ws.valid, np.ones(7, bool))


def test_host_checks_still_raise_and_flag(model):
    prior = jnp.ones((50, 2))
    with pytest.raises(ValueError, match="theta_prior"):
        nre.importance_samples(model, prior.at[3, 1].set(jnp.nan), jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"`x` has non-finite.*rows \[1\]"):
        nre.importance_samples(model, prior, jnp.zeros((2, 3)).at[1, 0].set(jnp.inf))
    # traced: the flagged row is NaN, the other unaffected (poison, not raise)
    ws = jax.jit(lambda x: nre.importance_samples(model, prior, x))(
        jnp.zeros((2, 3)).at[1, 0].set(jnp.inf)
    )
    np.testing.assert_array_equal(ws.valid, [True, False])
    assert np.isnan(ws.log_weights[1]).all()
    assert np.isfinite(ws.log_weights[0]).all()
