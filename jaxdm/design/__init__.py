"""Experiment design: differentiable objectives, optimiser, robust and physics losses.

Modules: :mod:`.optimise` (``optimise_design`` with optax, smooth box bounds,
constraints, path history, gradient checks), :mod:`.soft_histogram` (soft binning
with a documented softness), :mod:`.objectives` (Fisher information, and the
Asimov discovery significance and expected limits through :mod:`jaxdm.stats`).
"""

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

__all__ = [
    "Constraint",
    "DesignResult",
    "FlatObjectiveWarning",
    "GradientCheck",
    "NoisyObjectiveWarning",
    "NonFiniteGradientWarning",
    "check_gradient",
    "from_unconstrained",
    "optimise_design",
    "to_unconstrained",
]
