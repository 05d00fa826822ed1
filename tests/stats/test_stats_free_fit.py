"""The free fit reaches the global minimum when the data show a large deficit.

Regression (issue #16, ``experiments/xenon_wimp_limit.py``): the moment start of
``fit_free`` (excess / total signal) was far inside ``mu s + b < 0`` for a deficit of
background events outside the signal region; BFGS started on the ``nu >= 0`` penalty
wall stopped, flagged converged, at mu = 45.9 with an nll 452 above the fit at mu = 0,
and the observed limit came out at mu_hat (46 against a median expected 0.20).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm import stats

B = np.array([200.0] * 8 + [0.2, 0.2])
S = np.array([0.0] * 8 + [5.0, 5.0])
N = np.array([180.0] * 8 + [0.0, 1.0])  # 10 % deficit where the signal is absent


@pytest.mark.x64
def test_free_fit_reaches_the_global_minimum_after_a_deficit():
    m = stats.binned_model(
        jnp.asarray(S), jnp.asarray(B[None]), background_sigma=np.array([0.05])
    )
    d = stats.BinnedData(jnp.asarray(N), m.nominal_aux())
    free = stats.fit_free(m, d)
    zero = stats.fit_conditional(m, 0.0, d)
    assert bool(free.converged)
    assert float(free.nll) <= float(zero.nll) + 1e-9
    # mu_hat is the minimum of the profile likelihood on a grid (jit + vmap).
    grid = jnp.linspace(-0.03, 0.3, 331)
    prof = jax.jit(jax.vmap(lambda mu: stats.fit_conditional(m, mu, d).nll))(grid)
    assert abs(float(free.mu) - float(grid[jnp.argmin(prof)])) < 2e-3
    assert float(free.nll) <= float(jnp.min(prof)) + 1e-9


@pytest.mark.slow  # compiles upper_limit (~15 s quiet)
@pytest.mark.x64
def test_limit_in_band_after_a_deficit():
    m = stats.binned_model(
        jnp.asarray(S), jnp.asarray(B[None]), background_sigma=np.array([0.05])
    )
    d = stats.BinnedData(jnp.asarray(N), m.nominal_aux())
    lim = stats.upper_limit(m, d, cl=0.9)
    assert bool(lim.converged)
    exp = np.asarray(lim.expected)
    assert exp[0] < float(lim.observed) < exp[4], (float(lim.observed), exp)
