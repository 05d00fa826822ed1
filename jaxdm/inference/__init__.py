"""Amortized inference: neural posterior and ratio estimation, diagnostics."""

from . import npe as npe
from .npe import (
    NPE as NPE,
    make_npe as make_npe,
    npe_loss as npe_loss,
    run_npe as run_npe,
    train_npe as train_npe,
)
from .simulation import (
    drop_nonfinite as drop_nonfinite,
    simulate_dataset as simulate_dataset,
)

__all__ = [
    "NPE",
    "drop_nonfinite",
    "make_npe",
    "npe",
    "npe_loss",
    "run_npe",
    "simulate_dataset",
    "train_npe",
]
