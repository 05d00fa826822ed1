"""Bad-input cases of the whitening, Deep SVDD's preprocessing choice, ``fit``'s
compiler options and the search's calibration flag (eighth session)."""

import jax
import numpy as np

from jaxdm import anomaly as an
from jaxdm.nn import Whitener

from .case import Case

_KEY = jax.random.key(0)
_X = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
_NAN = _X.copy()
_NAN[5, 1] = np.nan


def _search_regions():
    rng = np.random.default_rng(0)
    return an.define_regions(rng.standard_normal(200), rng.integers(0, 2, 200),
                             n_categories=2, quantiles=(0.5, 0.9))  # fmt: skip


def _search_with(flag):
    return an.search_cells(_KEY, _search_regions(), np.zeros(6), n_expected=100.0,
                           n_toys=20, calibration_uncertainty=flag)  # fmt: skip


def _fit_with(options):
    model = an.make_deep_svdd(_KEY, dim=3, width=4, rep_dim=2)
    return an.fit_score(_KEY, model, _X, max_epochs=1, batch_size=4, val_fraction=0.0,
                        progress=False, compiler_options=options)  # fmt: skip


CASES = [
    Case("anomaly.make_deep_svdd: unknown preprocessing", an.make_deep_svdd, (_KEY,),
         {"dim": 3, "standardize": "pca"}, match="`standardize`", modes=("eager",)),
    Case("nn.Whitener.fit: NaN row", Whitener.fit, (_NAN,), match="`data`",
         modes=("eager",)),
    Case("nn.Whitener.fit: one row", Whitener.fit, (_X[:1],), match="`data`",
         modes=("eager",)),
    Case("nn.Whitener.fit: images", Whitener.fit, (np.ones((4, 2, 2)),),
         match="`data`", modes=("eager",)),
    Case("nn.Whitener.fit: min_std 0", Whitener.fit, (_X,), {"min_std": 0.0},
         match="`min_std`", modes=("eager",)),
    Case("anomaly.search_cells: calibration_uncertainty not a bool", _search_with,
         ("yes",), match="`calibration_uncertainty`", modes=("eager",)),
    Case("anomaly.local_p_values: calibration_uncertainty not a bool",
         lambda: an.local_p_values(_search_regions(), np.zeros(6), 100.0,
                                   calibration_uncertainty=1),
         match="`calibration_uncertainty`", modes=("eager",)),
    Case("train.fit: compiler_options not a dict", _fit_with,
         ({"xla_cpu_use_fusion_emitters"},), match="`compiler_options`",
         modes=("eager",)),
    Case("train.fit: compiler_options value", _fit_with,
         ({"xla_cpu_use_fusion_emitters": None},), match="`compiler_options`",
         modes=("eager",)),
]  # fmt: skip
