"""Bad inputs to ``jaxdm.anomaly``: scores, metrics, significance and search.

Policy: raise, naming the public argument. Scores asked for before training,
events with NaN, background efficiencies outside (0, 1) and mismatched shapes are
errors eagerly and under ``eqx.filter_jit`` (``eqx.error_if``); training and region
calibration run eagerly only (they are not jittable).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxdm import anomaly as an
from tests.bad_inputs.case import Case

_KEY = jax.random.key(0)
_UNTRAINED = an.make_autoencoder(_KEY, dim=3, width=8)
# Input checks do not depend on the weights: mark a fresh model trained.
_AE = dataclasses.replace(_UNTRAINED, trained=True)
_X = jnp.ones((4, 3))
_XNAN = _X.at[2, 1].set(jnp.nan)
_B = jnp.linspace(0.0, 1.0, 200)
_S = jnp.linspace(0.5, 1.5, 100)


def _score(m, x):
    return m.score(x)


def _scores(m, x):
    return m.scores(x)


CASES = [
    Case("anomaly.score: before training", _score, (_UNTRAINED, _X[0]),
         match="untrained"),
    Case("anomaly.scores: before training", _scores, (_UNTRAINED, _X),
         match="untrained"),
    Case("anomaly.combine_rare_different: untrained component",
         an.combine_rare_different, (_UNTRAINED, _AE, _X), match="rare",
         modes=("eager",)),
    Case("anomaly.score: NaN event", _score, (_AE, _XNAN[2]), match="`x`"),
    Case("anomaly.scores: NaN event", _scores, (_AE, _XNAN), match="`xs`"),
    Case("anomaly.score: wrong event shape", _score, (_AE, jnp.ones(4)),
         match="`x` must have shape"),
    Case("anomaly.scores: wrong batch shape", _scores, (_AE, jnp.ones((4, 2))),
         match="`xs` must have shape"),
    Case("anomaly.fit_score: labels of another length", an.fit_score,
         (_KEY, an.make_classifier(_KEY, dim=3), np.ones((10, 3), "f4")),
         {"labels": np.ones(7)}, match="labels", modes=("eager",)),
    Case("anomaly.fit_score: NaN training event", an.fit_score,
         (_KEY, an.make_autoencoder(_KEY, dim=3), np.where(np.eye(3) > 0, np.nan,
                                                           1.0).astype("f4")),
         match="`x`", modes=("eager",)),
    Case("anomaly.make_autoencoder: dropout = 1", an.make_autoencoder, (_KEY,),
         {"dim": 3, "dropout": 1.0}, match="`dropout`", modes=("eager",)),
    Case("anomaly.make_vae: dropout = -0.1", an.make_vae, (_KEY,),
         {"dim": 3, "dropout": -0.1}, match="`dropout`", modes=("eager",)),
    Case("anomaly.make_vae: score_terms unknown", an.make_vae, (_KEY,),
         {"dim": 3, "score_terms": "kl"}, match="score_terms", modes=("eager",)),
    Case("anomaly.signal_efficiency: eps_b = 0", an.signal_efficiency,
         (_B, _S, jnp.array(0.0)), match="eps_b"),
    Case("anomaly.signal_efficiency: eps_b = 1.5", an.signal_efficiency,
         (_B, _S, jnp.array(1.5)), match="eps_b"),
    Case("anomaly.signal_efficiency: eps_b below 1/n_b", an.signal_efficiency,
         (_B, _S, jnp.array(1e-4)), match="eps_b"),
    Case("anomaly.auc: 2-D background", an.auc, (jnp.ones((3, 2)), _S),
         match="background"),
    Case("anomaly.auc: NaN signal score", an.auc, (_B, _S.at[3].set(jnp.nan)),
         match="signal"),
    Case("anomaly.total_improvement: 1-D", an.total_improvement, (jnp.ones(3),),
         match="sic"),
    Case("anomaly.asimov_significance: b = 0", an.asimov_significance,
         (jnp.array(1.0), jnp.array(0.0)), match="`b`"),
    Case("anomaly.asimov_significance: s < 0", an.asimov_significance,
         (jnp.array(-1.0), jnp.array(5.0)), match="`s`"),
    Case("anomaly.discovery_significance: exposure < 0",
         lambda b, s, t: an.discovery_significance(
             b, s, eps_b=0.1, background_rate=1.0, signal_rate=1.0, exposure=t),
         (_B, _S, jnp.array(-1.0)), match="exposure"),
    Case("anomaly.define_regions: quantile 1", an.define_regions,
         (np.ones(100), np.zeros(100, int)), {"n_categories": 1, "quantiles": (1.0,)},
         match="quantiles", modes=("eager",)),
    Case("anomaly.cell_counts: category out of range",
         lambda s, c: an.cell_counts(an.define_regions(
             np.linspace(0, 1, 100), np.zeros(100, int), n_categories=1,
             quantiles=(0.5,)), s, c),
         (np.ones(2), np.array([0, 3])), match="categories", modes=("eager",)),
]  # fmt: skip
