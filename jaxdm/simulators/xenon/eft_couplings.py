"""NR-EFT coupling arrays and the O1 <-> spin-independent cross-section conversion.

Couplings are dimensionless in units of 1/m_v^2 (m_v = 246.2 GeV, the convention of
the Mathematica package of Anand, Fitzpatrick & Haxton, arXiv 1308.6288), arrays of
shape (2, 15) with column i-1 for operator O_i (see :mod:`.eft`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ..._args import check_int
from ..._poison import poison_policy
from ...constants import HBARC_GEV_FM, PROTON_MASS_GEV
from . import _guards as _g

__all__ = [
    "EFT_OPERATORS",
    "M_V_GEV",
    "c1_from_sigma_si",
    "eft_couplings",
    "sigma_si_from_c1",
]

#: Operators of the basis (1203.3542 / 1308.6288), O2 excluded.
EFT_OPERATORS = (1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
#: Electroweak scale m_v [GeV] that makes the couplings dimensionless (1308.6288).
M_V_GEV = 246.2
_HBARC_GEV_CM = HBARC_GEV_FM * 1e-13


@poison_policy
def eft_couplings(operator: int, isoscalar=0.0, isovector=0.0):
    """Coupling array (isospin basis) with one operator switched on.

    Args:
        operator: Operator number, one of 1, 3, 4, ..., 15.
        isoscalar: c^0 [1/m_v^2] (differentiable).
        isovector: c^1 [1/m_v^2] (differentiable).

    Returns:
        Array of shape (2, 15) for :func:`eft_rate` with ``basis="isospin"``.
    """
    operator = check_int(operator, "operator")
    if operator not in EFT_OPERATORS:
        raise ValueError(
            f"`operator` must be one of {list(EFT_OPERATORS)} (O2 is not in the "
            f"basis); got {operator}."
        )
    c0 = _g.guard_values(isoscalar, "isoscalar")
    c1 = _g.guard_values(isovector, "isovector")
    dtype = jnp.result_type(c0, c1)
    col = jnp.zeros((15,), dtype).at[operator - 1].set(1.0)
    return jnp.stack([c0.astype(dtype) * col, c1.astype(dtype) * col])


def _reduced(m, nucleon_mass_gev):
    return m * nucleon_mass_gev / (m + nucleon_mass_gev)


@poison_policy
def sigma_si_from_c1(c1, mass_gev, *, nucleon_mass_gev: float = PROTON_MASS_GEV):
    """WIMP-nucleon SI cross-section [cm^2] of an isoscalar O1 coupling.

    ``sigma_p = mu_p^2 (c_1 / m_v^2)^2 (hbar c)^2 / pi`` (1203.3542, with
    ``c^p = c^n = c_1``; ``mu_p`` with ``nucleon_mass_gev`` as in
    :func:`.spectra.wimp_si_rate`).

    Args:
        c1: Isoscalar O1 coupling [1/m_v^2].
        mass_gev: WIMP mass [GeV/c^2], > 0.
        nucleon_mass_gev: Nucleon mass in mu_p [GeV/c^2].

    Returns:
        sigma_p [cm^2].
    """
    c1 = _g.guard_values(c1, "c1")
    m = _g.guard_values(mass_gev, "mass_gev", low=0.0, allow_equal=False)
    mu = _reduced(m, float(nucleon_mass_gev))
    return mu**2 * (c1 / M_V_GEV**2) ** 2 * _HBARC_GEV_CM**2 / math.pi


@poison_policy
def c1_from_sigma_si(sigma_cm2, mass_gev, *, nucleon_mass_gev: float = PROTON_MASS_GEV):
    """Inverse of :func:`sigma_si_from_c1` (the positive root) [1/m_v^2].

    Computed in float64 NumPy when ``sigma_cm2`` is concrete (float32 underflows
    below ~1e-38 cm^2); traced inputs use the array dtype.
    """
    m = _g.guard_values(mass_gev, "mass_gev", low=0.0, allow_equal=False)
    mu = _reduced(m, float(nucleon_mass_gev))
    if isinstance(sigma_cm2, jax.core.Tracer):
        s = _g.guard_values(sigma_cm2, "sigma_cm2", low=0.0)
        return jnp.sqrt(s * math.pi) / (_HBARC_GEV_CM * mu) * M_V_GEV**2
    s = np.asarray(sigma_cm2, dtype=np.float64)
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError(f"`sigma_cm2` must be finite and >= 0; got {s}.")
    root = np.sqrt(s * math.pi) / _HBARC_GEV_CM * M_V_GEV**2  # [GeV]
    return jnp.asarray(root, dtype=jnp.result_type(float)) / mu
