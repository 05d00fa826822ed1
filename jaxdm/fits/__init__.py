"""Bayesian fits with numpyro: runners, NPTF, WIMP, template, EIV and epistemic fits."""

from .compiled import (
    CompiledPotential as CompiledPotential,
    callback_potential as callback_potential,
    compile_potential as compile_potential,
)
from .epistemic import (
    bnn_model as bnn_model,
    bnn_predict as bnn_predict,
    ensemble_predict as ensemble_predict,
    fit_bnn as fit_bnn,
    train_ensemble as train_ensemble,
)
from .errors_in_variables import (
    eiv_class_probabilities as eiv_class_probabilities,
    eiv_classifier_model as eiv_classifier_model,
)
from .gamma_template import (
    NPTFInputs as NPTFInputs,
    nptf_inputs as nptf_inputs,
    nptf_model as nptf_model,
    poisson_template_model as poisson_template_model,
    ring_index as ring_index,
)
from .laplace import LaplaceStart as LaplaceStart, laplace_start as laplace_start
from .nptf import (
    PointSourcePopulation as PointSourcePopulation,
    PSFCorrection as PSFCorrection,
    exposure_regions as exposure_regions,
    nptf_log_likelihood as nptf_log_likelihood,
    nptf_log_pmf as nptf_log_pmf,
    population_log_x as population_log_x,
    psf_correction_from_kernel as psf_correction_from_kernel,
    psf_correction_gaussian as psf_correction_gaussian,
)
from .runners import (
    FitDiagnosticsWarning as FitDiagnosticsWarning,
    NutsResult as NutsResult,
    SviResult as SviResult,
    check_init_in_support as check_init_in_support,
    diagnose as diagnose,
    run_nuts as run_nuts,
    run_svi as run_svi,
)
from .support import guard_support as guard_support
from .wimp import (
    DEFAULT_WIMP_PRIORS as DEFAULT_WIMP_PRIORS,
    NUISANCE_SIGMAS as NUISANCE_SIGMAS,
    event_log_density as event_log_density,
    nuisance_bounds as nuisance_bounds,
    wimp_binned_model as wimp_binned_model,
    wimp_model_params as wimp_model_params,
    wimp_unbinned_model as wimp_unbinned_model,
)

__all__ = [n for n in dir() if not n.startswith("_")]
