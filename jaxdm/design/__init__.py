"""Experiment design: differentiable objectives, optimiser, robust and physics losses.

Modules: :mod:`.optimise` (``optimise_design`` with optax, smooth box bounds,
constraints, path history, gradient checks), :mod:`.soft_histogram` (soft binning
with a documented softness), :mod:`.fisher` (Fisher information from simulator
expectations), :mod:`.objectives` (Asimov discovery significance and expected
limits through :mod:`jaxdm.stats`), :mod:`.spaces` (xenon design space),
:mod:`.physics` (PDE residuals, lens Poisson equation, shape penalties, D4-invariant
embeddings), :mod:`.robust` (learning to pivot, domain-adversarial training),
:mod:`.inferno` (INFERNO and its synthetic benchmark; the benchmark helpers stay
in ``jaxdm.design.inferno``), :mod:`.lensing_pixels` (pixel scale as a traced
lensing design variable).
"""

from .fisher import (
    gaussian_fisher as gaussian_fisher,
    log_det_fisher as log_det_fisher,
    marginal_error as marginal_error,
    poisson_fisher as poisson_fisher,
)
from .inferno import (
    InfernoProblem as InfernoProblem,
    inferno_loss as inferno_loss,
    template_fisher as template_fisher,
    template_inferno_loss as template_inferno_loss,
)
from .lensing_pixels import (
    PixelNoise as PixelNoise,
    expected_image_at_scale as expected_image_at_scale,
    field_of_view_margin as field_of_view_margin,
    lensing_pixel_fisher as lensing_pixel_fisher,
    pixel_variance as pixel_variance,
)
from .objectives import (
    asimov_discovery_significance as asimov_discovery_significance,
    expected_upper_limit as expected_upper_limit,
)
from .optimise import (
    Constraint as Constraint,
    DesignResult as DesignResult,
    FlatObjectiveWarning as FlatObjectiveWarning,
    GradientCheck as GradientCheck,
    NoisyObjectiveWarning as NoisyObjectiveWarning,
    NonFiniteGradientWarning as NonFiniteGradientWarning,
    check_gradient as check_gradient,
    from_unconstrained as from_unconstrained,
    optimise_design as optimise_design,
    to_unconstrained as to_unconstrained,
)
from .physics import (
    DihedralInvariant as DihedralInvariant,
    PotentialBatch as PotentialBatch,
    dihedral_images as dihedral_images,
    gradient as gradient,
    laplacian as laplacian,
    lensing_poisson_residual as lensing_poisson_residual,
    monotonicity_penalty as monotonicity_penalty,
    normalisation_penalty as normalisation_penalty,
    pde_residual as pde_residual,
    positivity_penalty as positivity_penalty,
    potential_loss as potential_loss,
    residual_penalty as residual_penalty,
    scalar_field as scalar_field,
)
from .robust import (
    AdversarialBatch as AdversarialBatch,
    DomainAdversarialClassifier as DomainAdversarialClassifier,
    PivotClassifier as PivotClassifier,
    domain_adversarial_loss as domain_adversarial_loss,
    gradient_reversal as gradient_reversal,
    pivot_loss as pivot_loss,
)
from .soft_histogram import (
    hard_histogram as hard_histogram,
    soft_cut as soft_cut,
    soft_histogram as soft_histogram,
    softmax_bins as softmax_bins,
)
from .spaces import (
    XenonDesign as XenonDesign,
    XenonScenario as XenonScenario,
    gamma_design_counts as gamma_design_counts,
    gamma_soft_roi as gamma_soft_roi,
    gaussian_blur as gaussian_blur,
    lensing_design_fisher as lensing_design_fisher,
    wall_exposure_fraction as wall_exposure_fraction,
    xenon_design_from_detector as xenon_design_from_detector,
    xenon_detector as xenon_detector,
    xenon_discovery_significance as xenon_discovery_significance,
    xenon_expected_counts as xenon_expected_counts,
    xenon_two_run_counts as xenon_two_run_counts,
)

__all__ = [
    "AdversarialBatch",
    "Constraint",
    "DesignResult",
    "DihedralInvariant",
    "DomainAdversarialClassifier",
    "FlatObjectiveWarning",
    "GradientCheck",
    "InfernoProblem",
    "NoisyObjectiveWarning",
    "NonFiniteGradientWarning",
    "PivotClassifier",
    "PixelNoise",
    "PotentialBatch",
    "XenonDesign",
    "XenonScenario",
    "asimov_discovery_significance",
    "check_gradient",
    "dihedral_images",
    "domain_adversarial_loss",
    "expected_image_at_scale",
    "expected_upper_limit",
    "field_of_view_margin",
    "from_unconstrained",
    "gamma_design_counts",
    "gamma_soft_roi",
    "gaussian_blur",
    "gaussian_fisher",
    "gradient",
    "gradient_reversal",
    "hard_histogram",
    "inferno_loss",
    "laplacian",
    "lensing_design_fisher",
    "lensing_pixel_fisher",
    "lensing_poisson_residual",
    "log_det_fisher",
    "marginal_error",
    "monotonicity_penalty",
    "normalisation_penalty",
    "optimise_design",
    "pde_residual",
    "pivot_loss",
    "pixel_variance",
    "poisson_fisher",
    "positivity_penalty",
    "potential_loss",
    "residual_penalty",
    "scalar_field",
    "soft_cut",
    "soft_histogram",
    "softmax_bins",
    "template_fisher",
    "template_inferno_loss",
    "to_unconstrained",
    "wall_exposure_fraction",
    "xenon_design_from_detector",
    "xenon_detector",
    "xenon_discovery_significance",
    "xenon_expected_counts",
    "xenon_two_run_counts",
]
