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
- :mod:`.toys`: ``sample_toys``, ``toy_hypotest`` (toy CLs with MC errors), ``toy_q0``,
  ``coverage`` (of the asymptotic limits).
- :mod:`.lee`: ``look_elsewhere`` (global significance and trials factor from toys).
- :mod:`.compression`: ``train_compressor`` (classifier via ``jaxdm.train.fit``),
  ``compressed_templates``, ``random_projection`` (arXiv:2201.05734).
- :mod:`.information`: ``fisher_information_binned``, ``profiled_fisher_information``,
  ``mutual_information`` (Miller-Madow plug-in).
- :mod:`.kde`: ``gaussian_kde`` (Scott / Silverman / leave-one-out CV bandwidths,
  weights), ``GaussianKDE.log_prob``; :mod:`.background_map`: ``background_map``
  (kernel-regression background count PDFs over the sky, arXiv:1803.05508).

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
from .background_map import BackgroundMap, background_map, fit_bandwidths
from .compression import (
    Compressor,
    compressed_templates,
    random_projection,
    train_compressor,
)
from .constraints import (
    CONSTRAINTS,
    constraint_nll,
    mc_relative_uncertainty,
    normalisation_factor,
)
from .information import (
    fisher_information_binned,
    mutual_information,
    profiled_fisher_information,
)
from .kde import (
    BANDWIDTHS,
    GaussianKDE,
    cv_factor,
    effective_size,
    gaussian_kde,
    loo_log_likelihood,
    scott_factor,
    silverman_factor,
)
from .lee import GlobalSignificance, look_elsewhere
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
from .toys import Coverage, ToyTest, coverage, sample_toys, toy_hypotest, toy_q0

__all__ = [
    "BANDWIDTHS",
    "BackgroundMap",
    "Compressor",
    "GaussianKDE",
    "background_map",
    "compressed_templates",
    "cv_factor",
    "effective_size",
    "fisher_information_binned",
    "fit_bandwidths",
    "gaussian_kde",
    "loo_log_likelihood",
    "mutual_information",
    "profiled_fisher_information",
    "random_projection",
    "scott_factor",
    "silverman_factor",
    "train_compressor",
    "CONSTRAINTS",
    "N_SIGMA",
    "STATISTICS",
    "BinnedData",
    "BinnedModel",
    "CLs",
    "Coverage",
    "GlobalSignificance",
    "ToyTest",
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
    "coverage",
    "look_elsewhere",
    "sample_toys",
    "toy_hypotest",
    "toy_q0",
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
