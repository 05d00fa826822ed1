"""Bad inputs to neural ratio estimation (jaxdm.inference.nre, ratio_sampling, TMNRE).

Policy (docs in ``jaxdm.inference.nre.observation_mask``): a non-finite observation row
raises ValueError naming ``x`` and the rows eagerly; under ``jit`` the estimators
(``log_ratio``, ``importance_samples``, ``sample_mcmc``) return NaN in exactly those
rows with ``valid`` False, while the diagnostics (``coverage``, ``sbc_ranks``) raise
``EquinoxRuntimeError`` naming ``x`` (they never average over NaN rows).
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxdm.inference import nre, ratio_sampling, truncation
from tests.bad_inputs.case import Case

_MODEL = nre.make_ratio_estimator(
    jax.random.key(0), theta_dim=2, x_shape=(3,), marginals=[(0,), (1,), (0, 1)]
)
_PRIOR = jax.random.uniform(jax.random.key(1), (64, 2), minval=-1.0, maxval=1.0)
_X = jax.random.normal(jax.random.key(2), (4, 3))
_X_NAN = _X.at[1, 0].set(jnp.nan)
_X_INF = _X.at[2, 2].set(jnp.inf)
_LOW, _HIGH = -jnp.ones(2), jnp.ones(2)
_PRIOR_NAN = _PRIOR.at[5, 1].set(jnp.nan)


def _only_row_nan(a, row):
    a = np.asarray(a)
    others = np.delete(a, row, axis=0)
    return bool(np.all(np.isnan(a[row])) and np.all(np.isfinite(others)))


def _ws_flagged(ws, row=1):
    mask = np.arange(4) != row
    return (
        np.array_equal(np.asarray(ws.valid), mask)
        and _only_row_nan(ws.log_weights, row)
        and _only_row_nan(ws.ess, row)
    )


def _mcmc_flagged(res, row=1):
    mask = np.arange(4) != row
    return (
        np.array_equal(np.asarray(res.valid), mask)
        and _only_row_nan(res.samples, row)
        and _only_row_nan(res.acceptance, row)
    )


def _mcmc(key, model, theta_prior, x, low=_LOW, high=_HIGH, num_samples=8):
    return ratio_sampling.sample_mcmc(
        key, model, theta_prior, x, num_samples, low=low, high=high, num_steps=3
    )


def _simulate(key, theta):
    return jnp.concatenate([theta, theta[:1]]) + 0.1 * jax.random.normal(key, (3,))


def _tmnre(x_obs):
    return truncation.run_tmnre(
        jax.random.key(0),
        _simulate,
        x_obs,
        truncation.Box(np.full(2, -1.0), np.full(2, 1.0)),
        lambda k: nre.make_ratio_estimator(k, theta_dim=2, x_shape=(3,)),
        n_sims=64,
        max_rounds=1,
        train_kwargs={"max_epochs": 1, "batch_size": 16},
    )


CASES = [
    Case(
        "nre.log_ratio: NaN observation row",
        nre.RatioEstimator.log_ratio,
        (_MODEL, _PRIOR, _X_NAN),
        match=r"`x` has non-finite.*rows \[1\]",
        modes=("eager",),
    ),
    Case(
        "nre.log_ratio: NaN observation row, NaN in that row only",
        nre.RatioEstimator.log_ratio,
        (_MODEL, _PRIOR, _X_NAN),
        expect="nan",
        modes=("jit",),
        flagged=lambda out: (
            _only_row_nan(out, 1) and not bool(nre.observation_mask(_MODEL, _X_NAN)[1])
        ),
    ),
    Case(
        "nre.log_ratio: theta of the wrong length",
        nre.RatioEstimator.log_ratio,
        (_MODEL, jnp.zeros((5, 3)), _X),
        match="`theta` must have shape",
    ),
    Case(
        "nre.importance_samples: NaN observation row",
        nre.importance_samples,
        (_MODEL, _PRIOR, _X_NAN),
        match=r"`x` has non-finite.*rows \[1\]",
        modes=("eager",),
    ),
    Case(
        "nre.importance_samples: NaN observation row, flagged",
        nre.importance_samples,
        (_MODEL, _PRIOR, _X_NAN),
        expect="nan",
        modes=("jit",),
        flagged=_ws_flagged,
    ),
    Case(
        "nre.importance_samples: inf observation row",
        nre.importance_samples,
        (_MODEL, _PRIOR, _X_INF),
        match=r"`x` has non-finite.*rows \[2\]",
        modes=("eager",),
    ),
    Case(
        "nre.importance_samples: inf observation row, flagged",
        nre.importance_samples,
        (_MODEL, _PRIOR, _X_INF),
        expect="nan",
        modes=("jit",),
        flagged=lambda ws: _ws_flagged(ws, 2),
    ),
    Case(
        "nre.importance_samples: NaN prior draw",
        nre.importance_samples,
        (_MODEL, _PRIOR_NAN, _X),
        match="theta_prior",
    ),
    Case(
        "nre.importance_samples: observation of the wrong shape",
        nre.importance_samples,
        (_MODEL, _PRIOR, jnp.zeros((4, 2))),
        match=r"`x` must have shape \(3,\)",
    ),
    Case(
        "nre.importance_samples: chunk_size 0",
        nre.importance_samples,
        (_MODEL, _PRIOR, _X),
        {"chunk_size": 0},
        match="`chunk_size`",
    ),
    Case(
        "ratio_sampling.sample_mcmc: NaN observation row",
        _mcmc,
        (jax.random.key(3), _MODEL, _PRIOR, _X_NAN),
        match=r"`x` has non-finite.*rows \[1\]",
        modes=("eager",),
    ),
    Case(
        "ratio_sampling.sample_mcmc: NaN observation row, flagged",
        _mcmc,
        (jax.random.key(3), _MODEL, _PRIOR, _X_NAN),
        expect="nan",
        modes=("jit",),
        flagged=_mcmc_flagged,
    ),
    Case(
        "ratio_sampling.sample_mcmc: NaN prior draw",
        _mcmc,
        (jax.random.key(3), _MODEL, _PRIOR_NAN, _X),
        match="theta_prior",
    ),
    Case(
        "ratio_sampling.sample_mcmc: high below low",
        _mcmc,
        (jax.random.key(3), _MODEL, _PRIOR, _X, _HIGH, _LOW),
        match="`high` must exceed `low`",
    ),
    Case(
        "ratio_sampling.sample_mcmc: zero samples",
        _mcmc,
        (jax.random.key(3), _MODEL, _PRIOR, _X),
        {"num_samples": 0},
        match="`num_samples`",
    ),
    Case(
        "nre.coverage: NaN observation row",
        nre.coverage,
        (jax.random.key(4), _MODEL, _PRIOR[:4], _X_NAN, _PRIOR),
        match=r"`x`",
    ),
    Case(
        "nre.sbc_ranks: NaN observation row",
        nre.sbc_ranks,
        (jax.random.key(5), _MODEL, _PRIOR[:4], _X_NAN, _PRIOR),
        match=r"`x`",
    ),
    Case(
        "truncation.run_tmnre: NaN x_obs",
        _tmnre,
        (_X_NAN[1],),
        match="`x_obs`",
        modes=("eager",),
    ),
    Case(
        "truncation.truncate_box: NaN x_obs",
        truncation.truncate_box,
        (_MODEL, _X_NAN[1], truncation.Box(np.full(2, -1.0), np.full(2, 1.0))),
        match="`x_obs`",
        modes=("eager",),
    ),
]
