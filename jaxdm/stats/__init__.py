"""Search statistics: profile-likelihood tests, CLs limits, toys, LEE, compression, KDE.

API summary (all pure JAX; ``jax.vmap`` over hypotheses or data sets is one call)::

    from jaxdm import stats
    # signal (B,), background (K, B): expected counts at mu = 1
    model = stats.binned_model(signal, background, background_sigma=0.1,
                               constraint="lognormal", mc_delta=None)
    data = stats.BinnedData(counts, model.nominal_aux())  # observed counts (B,)
    stats.q0(model, data)
    stats.qtilde_mu(mu, model, data)
    stats.q_mu(mu, model, data)
    stats.hypotest(mu, model, data)  # q, q_asimov, observed/expected CLs
    lim = stats.upper_limit(model, data, cl=0.95)  # observed, expected (5,)
    # expected[k] at N_SIGMA[k] = -2, -1, 0, +1, +2 standard deviations
    stats.asimov_data(model, mu, t)  # Asimov data set (CCGV 2011)
    stats.fit_free(model, data)  # optimistix BFGS
    stats.fit_conditional(model, mu, data)

- :mod:`.likelihood`: ``BinnedModel`` / ``binned_model`` (signal + K backgrounds,
  Gaussian or log-normal normalisation constraints, Barlow-Beeston-lite MC statistics),
  ``BinnedData``, ``UnbinnedModel`` / ``UnbinnedData`` (extended unbinned likelihood),
  ``poisson_nll``, ``asimov_data``.
- :mod:`.constraints`: ``normalisation_factor``, ``constraint_nll``,
  ``mc_relative_uncertainty``.
- :mod:`.profile`: ``fit_free``, ``fit_conditional``, ``FitResult``, ``Fitter``.
- :mod:`.test_statistics`: ``q0``, ``q_mu``, ``qtilde_mu``, ``profile_statistic``.
- :mod:`.asymptotics`: ``cls_from_q``, ``expected_cls``, ``p_value_q0``,
  ``significance``, ``cdf_q0`` / ``cdf_q_mu`` / ``cdf_qtilde_mu``, ``N_SIGMA``.
- :mod:`.limits`: ``hypotest``, ``upper_limit`` (CLs or CLs+b, bisection, no grid).

Reference: Cowan, Cranmer, Gross & Vitells (2011), arXiv:1007.1727 (CCGV).
"""

from .asymptotics import (
    N_SIGMA,
    CLs,
    cdf_q0,
    cdf_q_mu,
    cdf_qtilde_mu,
    cls_from_q,
    expected_cls,
    p_value_q0,
    sigma_from_asimov,
    significance,
)
from .constraints import (
    CONSTRAINTS,
    constraint_nll,
    mc_relative_uncertainty,
    normalisation_factor,
)
from .likelihood import (
    BinnedData,
    BinnedModel,
    UnbinnedData,
    UnbinnedModel,
    asimov_data,
    binned_model,
    poisson_nll,
)
from .limits import HypoTest, UpperLimit, hypotest, upper_limit
from .profile import FitResult, Fitter, fit_conditional, fit_free
from .test_statistics import STATISTICS, profile_statistic, q0, q_mu, qtilde_mu

__all__ = [
    "CONSTRAINTS",
    "N_SIGMA",
    "STATISTICS",
    "BinnedData",
    "BinnedModel",
    "CLs",
    "FitResult",
    "Fitter",
    "HypoTest",
    "UnbinnedData",
    "UnbinnedModel",
    "UpperLimit",
    "asimov_data",
    "binned_model",
    "cdf_q0",
    "cdf_q_mu",
    "cdf_qtilde_mu",
    "cls_from_q",
    "constraint_nll",
    "expected_cls",
    "fit_conditional",
    "fit_free",
    "hypotest",
    "mc_relative_uncertainty",
    "normalisation_factor",
    "p_value_q0",
    "poisson_nll",
    "q0",
    "q_mu",
    "qtilde_mu",
    "sigma_from_asimov",
    "significance",
    "profile_statistic",
    "upper_limit",
]
