"""Observed and expected CLs limits equal pyhf's on a two-bin model with one nuisance.

pyhf (Heinrich, Feickert, Stark & Cranmer, JOSS 6 (2021) 2823) is the HistFactory
reference implementation. The jaxdm model ``nu = mu s + (1 + sigma t) b`` with a unit
Gaussian constraint is pyhf's ``histosys`` with linear interpolation (code 0) and
``lo/hi = (1 -/+ sigma) b``; the log-normal ``(1 + sigma)^t`` is ``normsys`` with
exponential interpolation (code 1) and ``lo = 1/(1 + sigma)``, ``hi = 1 + sigma``.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm import stats

pyhf = pytest.importorskip("pyhf")
# pyhf 0.7 uses jsonschema.RefResolver, deprecated upstream.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SIG, BKG, OBS, SIGMA = [5.0, 10.0], [50.0, 60.0], [53.0, 65.0], 0.1


def _pyhf_limits(kind):
    if kind == "normal":
        mod = {
            "name": "u",
            "type": "histosys",
            "data": {
                "hi_data": [x * (1 + SIGMA) for x in BKG],
                "lo_data": [x * (1 - SIGMA) for x in BKG],
            },
        }
    else:
        mod = {
            "name": "u",
            "type": "normsys",
            "data": {"hi": 1 + SIGMA, "lo": 1 / (1 + SIGMA)},
        }
    spec = {
        "channels": [
            {
                "name": "c",
                "samples": [
                    {
                        "name": "sig",
                        "data": SIG,
                        "modifiers": [
                            {"name": "mu", "type": "normfactor", "data": None}
                        ],
                    },
                    {"name": "bkg", "data": BKG, "modifiers": [mod]},
                ],
            }
        ]
    }
    model = pyhf.Model(
        spec,
        modifier_settings={
            "normsys": {"interpcode": "code1"},
            "histosys": {"interpcode": "code0"},
        },
    )
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=1e-10))
    obs, exp = pyhf.infer.intervals.upper_limits.toms748_scan(
        OBS + model.config.auxdata, model, 0.0, 10.0, rtol=1e-8, test_stat="qtilde"
    )
    return float(obs), np.array([float(e) for e in exp])


@pytest.mark.x64
@pytest.mark.parametrize(
    "kind", ["normal", pytest.param("lognormal", marks=pytest.mark.slow)]
)
def test_limits_equal_pyhf(kind):
    obs_ref, exp_ref = _pyhf_limits(kind)
    m = stats.binned_model(
        jnp.array(SIG), jnp.array(BKG), background_sigma=SIGMA, constraint=kind
    )
    lim = stats.upper_limit(m, stats.BinnedData(jnp.array(OBS), m.nominal_aux()))
    assert bool(lim.converged)
    # The brief asks for 1%; both are converged root searches, so they agree to 1e-5.
    np.testing.assert_allclose(lim.observed, obs_ref, rtol=1e-5)
    np.testing.assert_allclose(lim.expected, exp_ref, rtol=1e-5)
