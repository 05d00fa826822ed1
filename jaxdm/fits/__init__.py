"""Bayesian fits with numpyro: runners, NPTF, WIMP, template, EIV and epistemic fits."""

from .runners import (
    FitDiagnosticsWarning as FitDiagnosticsWarning,
    NutsResult as NutsResult,
    SviResult as SviResult,
    check_init_in_support as check_init_in_support,
    diagnose as diagnose,
    run_nuts as run_nuts,
    run_svi as run_svi,
)

__all__ = [n for n in dir() if not n.startswith("_")]
