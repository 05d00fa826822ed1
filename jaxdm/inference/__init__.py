"""Amortized inference: neural posterior and ratio estimation, truncation, diagnostics.

Submodules: ``npe`` (conditional-flow posteriors), ``nre`` (ratio estimators, incl.
marginal heads and BNRE), ``ratio_sampling`` (resample-move
MCMC on a ratio estimator), ``truncation`` (TMNRE box rounds), ``diagnostics`` (SBC,
coverage, TARP, C2ST), ``simulation`` (training sets from prior + simulator).
"""

from . import (
    amortised as amortised,
    diagnostics as diagnostics,
    npe as npe,
    nre as nre,
    ratio_sampling as ratio_sampling,
    simulation as simulation,
    truncation as truncation,
)
from .amortised import (
    read_posterior_samples as read_posterior_samples,
    sample_posteriors_into as sample_posteriors_into,
)
from .diagnostics import (
    c2st as c2st,
    expected_coverage as expected_coverage,
    expected_coverage_from_log_probs as expected_coverage_from_log_probs,
    marginal_coverage as marginal_coverage,
    sbc_ranks as sbc_ranks,
    sbc_uniformity as sbc_uniformity,
    tarp as tarp,
)
from .npe import (
    NPE as NPE,
    finite_rows as finite_rows,
    make_npe as make_npe,
    npe_loss as npe_loss,
    run_npe as run_npe,
    train_npe as train_npe,
)
from .nre import (
    RatioEstimator as RatioEstimator,
    make_ratio_estimator as make_ratio_estimator,
    train_ratio_estimator as train_ratio_estimator,
)
from .ratio_sampling import MCMCSamples as MCMCSamples, sample_mcmc as sample_mcmc
from .simulation import (
    drop_nonfinite as drop_nonfinite,
    simulate_dataset as simulate_dataset,
)
from .truncation import run_tmnre as run_tmnre

__all__ = [
    "MCMCSamples",
    "NPE",
    "RatioEstimator",
    "c2st",
    "diagnostics",
    "drop_nonfinite",
    "expected_coverage",
    "expected_coverage_from_log_probs",
    "finite_rows",
    "make_npe",
    "make_ratio_estimator",
    "marginal_coverage",
    "npe",
    "npe_loss",
    "nre",
    "ratio_sampling",
    "run_npe",
    "run_tmnre",
    "sample_mcmc",
    "sbc_ranks",
    "sbc_uniformity",
    "simulate_dataset",
    "simulation",
    "tarp",
    "train_npe",
    "train_ratio_estimator",
    "truncation",
    "amortised",
    "read_posterior_samples",
    "sample_posteriors_into",
]
