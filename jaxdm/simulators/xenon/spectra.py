"""Recoil spectra dR/dE in liquid xenon: SI WIMPs, backgrounds, integrals, sampling.

All differential rates are in events / (tonne year keV) of target mass, as functions
of the recoil energy in keV. Every function is pure and works under ``jit``, ``vmap``
and ``grad``; the WIMP rate uses the closed-form velocity integral of the truncated
Maxwellian (no numerical quadrature), so 10^6 evaluations are one fused XLA kernel.

Conventions and sources:

* Spin-independent WIMP-nucleus rate (Lewin & Smith 1996, Astropart. Phys. 6, 87,
  eqs. 3.1, 4.3, 4.7)::

      dR/dE = rho0 / (2 m_chi mu_p^2) * sigma_p * A^2 * F^2(q) * eta(v_min),

  per unit target mass, summed over isotopes weighted by mass fraction, with
  ``v_min = sqrt(m_N E / (2 mu_N^2))``, ``q = sqrt(2 m_N E)``, ``m_N = A * u``
  (atomic mass unit; binding and mass excess neglected, < 0.1 %) and ``mu_p`` the
  WIMP-nucleon reduced mass (nucleon mass = proton mass by default; wimprates uses
  the atomic mass unit, selectable with ``nucleon_mass_gev``).
* Helm form factor with the Lewin & Smith (1996, sec. 4.3) parameters
  ``c = 1.23 A^(1/3) - 0.60 fm``, ``a = 0.52 fm``, ``s = 0.9 fm``.
* Mean inverse speed ``eta(v_min)`` of the standard halo model (Maxwellian truncated
  at ``v_esc`` in the Galactic frame, boosted by the Earth's speed), closed form of
  Savage, Freese & Gondolo 2006 (arXiv astro-ph/0607121, eq. B3) / McCabe 2010
  (arXiv 1005.0579, eq. B3).
* Halo defaults from the community recommendation of Baxter et al. 2021 (arXiv
  2105.00599, sec. 2 and Table 1): rho0 = 0.3 GeV/cm^3, v0 = 238 km/s, v_esc = 544
  km/s, and the annual-average Earth speed |v_LSR + v_pec| = |(11.1, 238 + 12.2, 7.3)|
  = 250.5 km/s (the Earth's orbital velocity averages out over a year).
* 8B CEvNS: Standard-Model coherent cross-section (Freedman 1974; Drukier & Stodolsky
  1984) ``dsigma/dE = G_F^2 m_N Q_w^2 / (4 pi) (1 - m_N E / (2 E_nu^2)) F^2(q)``,
  ``Q_w = N - (1 - 4 sin^2 theta_W) Z``, with the Helm form factor and the total 8B
  flux 5.46e6 /cm^2/s (B16-GS98 standard solar model, Vinyoles et al. 2017, ApJ 835,
  202, the value recommended by Baxter et al. 2021; SNO's neutral-current measurement
  is 5.25 +- 0.20e6, arXiv 1109.0763). Spectrum shape: see :func:`b8_cevns_rate`.

Prior work: Qin & Tunnell 2024 (arXiv 2408.09057) build a continuous, differentiable
LXe simulator fitted with NUTS; this module supplies its spectra in closed form so that
expected histograms are differentiable in WIMP mass and cross-section as well.

Float32 note: cross-sections below ~1e-38 cm^2 underflow as float32 *JAX arrays*. Pass
``sigma_cm2`` as a Python/NumPy float (it is rescaled in float64 before conversion),
enable x64, or use the exact linearity ``rate(sigma) = s * rate(1e-45)`` with a
dimensionless ``s = sigma / 1e-45 cm^2`` when differentiating in float32.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..._checks import check_array, check_key, check_positive
from ..._poison import poison_policy
from ..._random import uniform
from ...constants import (
    AMU_GEV,
    C_KM_S,
    G_FERMI_GEV2,
    HBARC_GEV_FM,
    PROTON_MASS_GEV,
    SIN2_THETA_W,
    YEAR_S,
)
from . import _guards as _g

__all__ = [
    "B8_FLUX",
    "B8_SHAPE_ENDPOINT_MEV",
    "XENON_NATURAL",
    "HaloModel",
    "RecoilSpectrum",
    "Target",
    "b8_cevns_rate",
    "b8_spectrum",
    "check_spectrum",
    "eta_shm",
    "expected_counts",
    "flat_er_rate",
    "flat_er_spectrum",
    "helm_form_factor",
    "integrate_rate",
    "neutron_nr_rate",
    "neutron_spectrum",
    "tabulated_rate",
    "tabulated_spectrum",
    "wimp_si_rate",
    "wimp_spectrum",
    "xenon_isotope",
]

# 1 GeV/c^2 in kg (CODATA 2018).
_GEV_KG = 1.78266192e-27
# hbar c [MeV fm].
_HBARC_MEV_FM = HBARC_GEV_FM * 1e3
# Reference cross-section used to keep float32 intermediates in range [cm^2].
_SIGMA_REF = 1e-45
# events / (kg s GeV) -> events / (tonne year keV).
_PER_KG_S_GEV_TO_T_YR_KEV = 1e3 * YEAR_S * 1e-6
# rho0 sigma eta c^2 / (2 mu^2 m_GeV->kg) with rho0 [GeV/cm^3], sigma [1e-45 cm^2],
# eta [s/km], masses [GeV]: (1/cm^3)(cm^2)(s/km)(km/s)^2 = 1e5 /s.
_WIMP_PREFACTOR = (
    _SIGMA_REF * C_KM_S**2 * 1e5 / 2.0 / _GEV_KG * _PER_KG_S_GEV_TO_T_YR_KEV
)
# G_F^2 (hbar c)^2 / (4 pi) in cm^2 / GeV^3 (hbar c in GeV cm).
_CEVNS_XS = G_FERMI_GEV2**2 * (HBARC_GEV_FM * 1e-13) ** 2 / (4.0 * math.pi)

#: Total 8B solar-neutrino flux [1/(cm^2 s)] (B16-GS98 SSM, Vinyoles et al. 2017;
#: recommended by Baxter et al. 2021, arXiv 2105.00599).
B8_FLUX = 5.46e6
#: Endpoint [MeV] of the 8B shape ``E^2 (E0 - E)^2`` used by :func:`b8_cevns_rate`,
#: chosen so that the mean neutrino energy is 6.735 MeV (Winter et al. 2006, Phys.
#: Rev. C 73, 025503).
B8_SHAPE_ENDPOINT_MEV = 2.0 * 6.735


def _const(x, like):
    """A float constant in the floating dtype of ``like``."""
    return jnp.asarray(x, dtype=jnp.result_type(like, float))


# --------------------------------------------------------------------------------------
# Parameter containers
# --------------------------------------------------------------------------------------


class HaloModel(eqx.Module):
    """Standard halo model: truncated Maxwellian in the Galactic frame.

    Defaults are the community recommendation of Baxter et al. 2021 (arXiv
    2105.00599, Table 1 and eq. 8). All fields are arrays, so gradients and ``vmap``
    over halo parameters work.

    Attributes:
        rho0: Local dark-matter density [GeV/cm^3] (0.3).
        v0: Most probable speed (circular speed of the LSR) [km/s] (238).
        v_esc: Galactic escape speed [km/s] (544).
        v_earth: Mean speed of the Earth in the Galactic frame [km/s] (250.5).
    """

    rho0: jax.Array = eqx.field(converter=jnp.asarray, default=0.3)
    v0: jax.Array = eqx.field(converter=jnp.asarray, default=238.0)
    v_esc: jax.Array = eqx.field(converter=jnp.asarray, default=544.0)
    v_earth: jax.Array = eqx.field(converter=jnp.asarray, default=250.5)

    def __check_init__(self):
        check_positive(self.rho0, "HaloModel.rho0")
        check_positive(self.v0, "HaloModel.v0")
        check_positive(self.v_esc, "HaloModel.v_esc")
        check_positive(self.v_earth, "HaloModel.v_earth")
        if not any(isinstance(v, jax.core.Tracer) for v in (self.v_esc, self.v_earth)):
            if np.any(np.asarray(self.v_earth) >= np.asarray(self.v_esc)):
                raise ValueError(
                    "`HaloModel.v_earth` must be < `HaloModel.v_esc`; got "
                    f"v_earth={self.v_earth}, v_esc={self.v_esc}."
                )


class Target(eqx.Module):
    """Target nucleus or isotopic mixture of one element.

    Attributes:
        A: Mass numbers of the isotopes, shape (I,) (floats allowed, e.g. the
            mean atomic weight 131.293 as a one-isotope stand-in).
        Z: Atomic number, scalar.
        abundance: Isotopic number fractions, shape (I,), summing to 1.
    """

    A: jax.Array = eqx.field(converter=jnp.asarray)
    Z: jax.Array = eqx.field(converter=jnp.asarray)
    abundance: jax.Array = eqx.field(converter=jnp.asarray)

    def __check_init__(self):
        if self.A.ndim != 1 or self.abundance.shape != self.A.shape:
            raise ValueError(
                "`Target.A` and `Target.abundance` must be 1-D of equal length; got "
                f"shapes {self.A.shape} and {self.abundance.shape}."
            )
        if self.Z.ndim != 0:
            raise ValueError(f"`Target.Z` must be a scalar; got shape {self.Z.shape}.")
        check_positive(self.A, "Target.A")
        check_positive(self.abundance, "Target.abundance", allow_zero=True)
        if not isinstance(self.abundance, jax.core.Tracer):
            total = float(np.sum(np.asarray(self.abundance)))
            if abs(total - 1.0) > 1e-3:
                raise ValueError(
                    f"`Target.abundance` must sum to 1; got sum {total:.6g}."
                )

    def mass_fractions(self) -> jax.Array:
        """Mass fraction of each isotope, shape (I,)."""
        w = self.abundance * self.A
        return w / jnp.sum(w)


#: Natural xenon: isotopic abundances (mole fractions) of the IUPAC/CIAAW
#: "Isotopic compositions of the elements 2013" (Meija et al. 2016, Pure Appl. Chem.
#: 88, 293), Z = 54.
XENON_NATURAL = Target(
    A=np.array([124.0, 126.0, 128.0, 129.0, 130.0, 131.0, 132.0, 134.0, 136.0]),
    Z=np.asarray(54.0),
    abundance=np.array(
        [
            0.000952,
            0.000890,
            0.019102,
            0.264006,
            0.040710,
            0.212324,
            0.269086,
            0.104357,
            0.088573,
        ]
    ),
)


def _check_halo(halo, name="halo") -> HaloModel:
    """Halo parameters, checked eagerly and when traced (raise policy)."""
    if halo is None:
        return HaloModel()
    if not isinstance(halo, HaloModel):
        raise TypeError(f"`{name}` must be a HaloModel; got {type(halo).__name__}.")
    rules = [_g.positive(f) for f in ("rho0", "v0", "v_esc", "v_earth")]
    rel = (
        (
            None,
            lambda xp, h: h.v_earth >= h.v_esc,
            f"`{name}.v_earth` must be < `{name}.v_esc`.",
        ),
    )
    return _g.guard_rules(halo, rules, name, relation=rel)


def _check_target(target, name="target") -> Target:
    """Target parameters, checked eagerly and when traced (raise policy)."""
    if target is None:
        return XENON_NATURAL
    if not isinstance(target, Target):
        raise TypeError(f"`{name}` must be a Target; got {type(target).__name__}.")
    rules = [_g.positive("A"), _g.positive("Z"), _g.nonnegative("abundance")]
    rel = (
        (
            None,
            lambda xp, t: xp.abs(xp.sum(t.abundance) - 1.0) > 1e-3,
            f"`{name}.abundance` must sum to 1.",
        ),
    )
    return _g.guard_rules(target, rules, name, relation=rel)


@poison_policy
def xenon_isotope(A: int) -> Target:
    """A pure xenon isotope as a :class:`Target`.

    Args:
        A: Mass number, one of 124, 126, 128, 129, 130, 131, 132, 134, 136.

    Returns:
        A one-isotope target with Z = 54.

    Raises:
        ValueError: If ``A`` is not a stable (or quasi-stable) xenon isotope.
    """
    allowed = (124, 126, 128, 129, 130, 131, 132, 134, 136)
    if A not in allowed:
        raise ValueError(f"`A` must be one of {allowed}; got {A!r}.")
    return Target(A=np.array([float(A)]), Z=np.asarray(54.0), abundance=np.array([1.0]))


# --------------------------------------------------------------------------------------
# Form factor and velocity integral
# --------------------------------------------------------------------------------------


def _helm_from_q2(q2_mev2, A):
    """Helm form factor from q^2 [MeV^2] (smooth at q = 0, no sqrt there)."""
    c = 1.23 * jnp.cbrt(A) - 0.60
    a, s = 0.52, 0.9
    rn2 = c**2 + (7.0 / 3.0) * math.pi**2 * a**2 - 5.0 * s**2
    x2 = q2_mev2 * rn2 / _HBARC_MEV_FM**2
    small = x2 < 0.09  # x < 0.3: Taylor series of 3 j1(x)/x to x^8 (error < 1e-12)
    x2_s = jnp.where(small, x2, 0.0)
    series = (
        1.0 - x2_s / 10.0 + x2_s**2 / 280.0 - x2_s**3 / 15120.0 + (x2_s**4 / 1330560.0)
    )
    x2_l = jnp.where(small, 1.0, x2)
    x = jnp.sqrt(x2_l)
    exact = 3.0 * (jnp.sin(x) - x * jnp.cos(x)) / (x2_l * x)
    j = jnp.where(small, series, exact)
    return j * jnp.exp(-q2_mev2 * s**2 / (2.0 * _HBARC_MEV_FM**2))


@poison_policy
def helm_form_factor(q_mev, A):
    """Helm nuclear form factor F(q) (not squared).

    ``F(q) = 3 j1(q r_n) / (q r_n) exp(-(q s)^2 / 2)`` with ``r_n^2 = c^2 + 7/3 pi^2
    a^2 - 5 s^2``, ``c = 1.23 A^(1/3) - 0.60 fm``, ``a = 0.52 fm``, ``s = 0.9 fm``
    (Lewin & Smith 1996, Astropart. Phys. 6, 87, sec. 4.3). F(0) = 1.

    Args:
        q_mev: Momentum transfer [MeV/c], any shape.
        A: Mass number (scalar or broadcastable with ``q_mev``).

    Returns:
        F(q), dimensionless, shape of ``q_mev`` broadcast with ``A``.
    """
    q = _g.guard_values(q_mev, "q_mev")
    A = _g.guard_values(A, "A", low=0.0, allow_equal=False)
    return _helm_from_q2(q * q, A.astype(q.dtype))


@poison_policy
def eta_shm(v_min, halo: HaloModel | None = None):
    """Mean inverse speed ``eta(v_min) = int_{v > v_min} f(v)/v d^3v`` [s/km].

    Closed form for the Maxwellian truncated at ``v_esc`` in the Galactic frame and
    seen from the Earth moving at ``v_earth`` (Savage, Freese & Gondolo 2006, arXiv
    astro-ph/0607121, eq. B3; McCabe 2010, arXiv 1005.0579). With ``x = v_min/v0``,
    ``y = v_earth/v0``, ``z = v_esc/v0`` and ``N = erf(z) - 2 z exp(-z^2)/sqrt(pi)``::

        x < z - y:        [erf(x+y) - erf(x-y) - 4 y e^(-z^2)/sqrt(pi)] / (2 N y v0)
        z-y <= x < z+y:   [erf(z) - erf(x-y) - 2 (y+z-x) e^(-z^2)/sqrt(pi)] / (2 N y v0)
        x >= z + y:       0

    Requires ``0 < v_earth < v_esc`` (checked by :class:`HaloModel`).

    Args:
        v_min: Minimum WIMP speed in the Earth frame [km/s], any shape, >= 0.
        halo: Halo parameters (default :class:`HaloModel()`).

    Returns:
        eta [s/km], shape of ``v_min``.
    """
    halo = _check_halo(halo)
    v_min = _g.guard_values(v_min, "v_min", low=0.0)
    return _eta_shm(v_min, halo)


def _eta_shm(v_min, halo: HaloModel):
    x = v_min / halo.v0
    y = halo.v_earth / halo.v0
    z = halo.v_esc / halo.v0
    ez = jnp.exp(-(z**2))
    rpi = 1.0 / math.sqrt(math.pi)
    norm = jax.scipy.special.erf(z) - 2.0 * z * ez * rpi
    erf = jax.scipy.special.erf
    low = erf(x + y) - erf(x - y) - 4.0 * y * ez * rpi
    mid = erf(z) - erf(x - y) - 2.0 * (y + z - x) * ez * rpi
    val = jnp.where(x < z - y, low, jnp.where(x < z + y, mid, 0.0))
    # eta >= 0 (an integral of f(v)/v >= 0), but near the endpoint x -> z + y the
    # "mid" difference cancels to ~1e-9 and float32 rounding can make it negative
    # (a negative WIMP rate then fails the spectrum's rate >= 0 check): floor at 0.
    return jnp.maximum(val, 0.0) / (2.0 * norm * y * halo.v0)


# --------------------------------------------------------------------------------------
# Rates
# --------------------------------------------------------------------------------------


def _check_energy(energy_kev, name="energy_kev"):
    """Energies finite and >= 0 keV, eagerly and when traced. Returns a float array."""
    return _g.guard_values(energy_kev, name, low=0.0)


def _sigma_scaled(sigma_cm2):
    """Return sigma / 1e-45 cm^2, rescaled in float64 when concrete (float32 safe)."""
    # Two factors (1e45 overflows float32, 1e-45 is a float32 denormal), kept apart by
    # an optimisation barrier so that XLA does not fold them into one.
    if isinstance(sigma_cm2, jax.core.Tracer):
        s45 = jax.lax.optimization_barrier(sigma_cm2 * 1e22) * 1e23
        return _g.guard_values(s45, "sigma_cm2", low=0.0)
    if isinstance(sigma_cm2, jax.Array):
        v = np.asarray(sigma_cm2)
        tiny = np.any((v != 0) & (np.abs(v) < 1e-30))
        if jnp.finfo(sigma_cm2.dtype).bits < 64 and tiny:
            raise ValueError(
                f"`sigma_cm2` = {v} is a {sigma_cm2.dtype} JAX array, which cannot "
                "hold cross-sections this small (float32 underflows below ~1e-38 "
                "cm^2); pass a Python/NumPy float, enable jax_enable_x64, or scale "
                "(see the module docstring)."
            )
        check_positive(v, "sigma_cm2", allow_zero=True)
        return (sigma_cm2 * 1e22) * 1e23
    check_positive(sigma_cm2, "sigma_cm2", allow_zero=True)
    return jnp.asarray(np.asarray(sigma_cm2, dtype=np.float64) / _SIGMA_REF).astype(
        jnp.result_type(float)
    )


@poison_policy
def wimp_si_rate(
    energy_kev,
    mass_gev,
    sigma_cm2,
    *,
    halo: HaloModel | None = None,
    target: Target | None = None,
    nucleon_mass_gev: float = PROTON_MASS_GEV,
    form_factor: bool = True,
):
    """Spin-independent WIMP-nucleus differential rate dR/dE.

    ``dR/dE = sum_i w_i rho0 sigma_p A_i^2 F^2(q_i) eta(v_min,i) / (2 m_chi mu_p^2)``
    with ``w_i`` the mass fractions (Lewin & Smith 1996, eqs. 3.1 and 4.3 with equal
    couplings to protons and neutrons); see the module docstring for conventions.

    Bad values raise eagerly (ValueError); inside ``jit`` they poison the output.

    Args:
        energy_kev: Nuclear-recoil energies [keV], any shape, >= 0.
        mass_gev: WIMP mass [GeV/c^2], scalar, > 0 (differentiable).
        sigma_cm2: WIMP-nucleon cross-section [cm^2], scalar, >= 0 (differentiable;
            see the module note on float32).
        halo: Halo model (default :class:`HaloModel()`, Baxter et al. 2021).
        target: Target (default :data:`XENON_NATURAL`).
        nucleon_mass_gev: Nucleon mass in ``mu_p`` [GeV/c^2] (default the proton
            mass; wimprates uses the atomic mass unit 0.93149).
        form_factor: Apply the Helm form factor (``False`` gives F = 1, the
            point-nucleus limit used for closed-form checks).

    Returns:
        dR/dE [events / (tonne year keV)], shape of ``energy_kev``.

    Raises:
        ValueError: For negative or non-finite energies, a non-positive mass or a
            negative cross-section (concrete inputs).
    """
    energy = _check_energy(energy_kev)
    mass = _g.guard_values(mass_gev, "mass_gev", low=0.0, allow_equal=False)
    halo = _check_halo(halo)
    target = _check_target(target)
    if not float(nucleon_mass_gev) > 0:
        raise ValueError(f"`nucleon_mass_gev` must be > 0; got {nucleon_mass_gev}.")
    m_chi = mass.astype(jnp.result_type(mass, energy.dtype))
    s45 = _sigma_scaled(sigma_cm2)
    return _wimp_si_rate(
        energy, m_chi, s45, halo, target, float(nucleon_mass_gev), bool(form_factor)
    )


@functools.partial(jax.jit, static_argnums=(5, 6))
def _wimp_si_rate(energy, m_chi, s45, halo, target, nucleon_mass_gev, form_factor):
    """Jitted core of :func:`wimp_si_rate` (inlined when called under ``jit``)."""
    dtype = energy.dtype
    mu_p = m_chi * nucleon_mass_gev / (m_chi + nucleon_mass_gev)
    e_safe = jnp.maximum(energy, 0.0)

    def one_isotope(A):
        m_n = A * AMU_GEV
        mu_n = m_chi * m_n / (m_chi + m_n)
        v_min = C_KM_S * jnp.sqrt(m_n * e_safe * 1e-6 / (2.0 * mu_n**2))
        f2 = _helm_from_q2(2.0 * m_n * e_safe, A) ** 2 if form_factor else 1.0
        return A**2 * f2 * _eta_shm(v_min, halo)

    per_iso = jax.vmap(one_isotope)(target.A.astype(dtype))
    weighted = jnp.tensordot(target.mass_fractions().astype(dtype), per_iso, axes=1)
    return _WIMP_PREFACTOR * halo.rho0 * s45 / (m_chi * mu_p**2) * weighted


@poison_policy
def flat_er_rate(energy_kev, norm):
    """Flat electronic-recoil background (beta decays of 214Pb and 85Kr).

    The naked beta spectra of 214Pb and 85Kr are flat to within a few percent below
    ~30 keV (XENON1T, arXiv 2006.09721, Fig. 2; LZ, arXiv 2207.03764); LZ and
    XENONnT quote this background as a constant rate per keV.

    Args:
        energy_kev: Recoil energies [keV], any shape, >= 0.
        norm: Rate [events / (tonne year keV)], >= 0 (differentiable).

    Returns:
        dR/dE [events / (tonne year keV)], shape of ``energy_kev``.
    """
    energy = _check_energy(energy_kev)
    norm = _g.guard_values(norm, "norm", low=0.0)
    # The where reads the (checked) energies, so that the check on them stays in the
    # compiled program; every energy here is >= 0.
    return jnp.where(energy >= 0.0, norm.astype(energy.dtype), 0.0)


@poison_policy
def b8_cevns_rate(energy_kev, *, flux: float = B8_FLUX, target: Target | None = None):
    """Nuclear recoils from coherent elastic scattering of 8B solar neutrinos.

    ``dR/dE = sum_i n_i int dE_nu phi(E_nu) dsigma_i/dE`` with the SM cross-section
    ``G_F^2 m_N Q_w^2/(4 pi) (1 - m_N E/(2 E_nu^2)) F^2(q)``, ``Q_w = N - (1 - 4
    sin^2 theta_W) Z`` (sin^2 theta_W = 0.23121, PDG 2022) and the Helm form factor.

    Spectrum shape (documented approximation): ``phi(E_nu) = flux * 30 E_nu^2
    (E0 - E_nu)^2 / E0^5`` on ``[0, E0]`` with ``E0 = 13.47 MeV``, the allowed
    beta-decay phase-space shape for massless leptons with the endpoint set so that
    the mean neutrino energy equals the measured 6.735 MeV (Winter et al. 2006). With
    it the integral over E_nu is analytic (exact, differentiable, no quadrature). It
    reproduces the bulk of the Winter et al. spectrum but has no tail above E0 (the
    true spectrum ends near 16 MeV), so recoils above ~2.5 keV, already a < 1 %
    part of the rate, are underestimated and vanish above ``2 E0^2 / m_N`` ~ 3 keV.

    Args:
        energy_kev: Nuclear-recoil energies [keV], any shape, >= 0.
        flux: Total 8B flux [1/(cm^2 s)] (default :data:`B8_FLUX` = 5.46e6).
        target: Target (default :data:`XENON_NATURAL`).

    Returns:
        dR/dE [events / (tonne year keV)], shape of ``energy_kev``.
    """
    energy = _check_energy(energy_kev)
    flux = _g.guard_values(flux, "flux", low=0.0)
    target = _check_target(target)
    return _b8_cevns_rate(energy, flux.astype(energy.dtype), target)


@jax.jit
def _b8_cevns_rate(energy, flux, target):
    """Jitted core of :func:`b8_cevns_rate`."""
    dtype = energy.dtype
    e_safe = jnp.maximum(energy, 0.0)
    e0 = B8_SHAPE_ENDPOINT_MEV
    qw_factor = 1.0 - 4.0 * SIN2_THETA_W

    def one_isotope(A):
        m_n = A * AMU_GEV  # GeV
        qw = (A - target.Z.astype(dtype)) - qw_factor * target.Z.astype(dtype)
        c = m_n * 1e3 * e_safe * 1e-3 / 2.0  # m_N E / 2 [MeV^2] = E_nu,min^2
        u = jnp.maximum(e0 - jnp.sqrt(c), 0.0)
        poly = (e0**2 - c) / 3.0 - e0 * u / 2.0 + u**2 / 5.0
        shape_int = 30.0 / e0**5 * u**3 * poly
        f2 = _helm_from_q2(2.0 * m_n * e_safe, A) ** 2
        # per nucleus [1/(s GeV)] then per kg: divide by m_N [kg] (m_N cancels).
        return qw**2 * shape_int * f2

    per_iso = jax.vmap(one_isotope)(target.A.astype(dtype))
    # Per-kg rate of isotope i: flux * C * m_N Q_w^2 (...) / (m_N * GEV_KG); weight by
    # mass fraction.
    weighted = jnp.tensordot(target.mass_fractions().astype(dtype), per_iso, axes=1)
    pref = _CEVNS_XS / _GEV_KG * _PER_KG_S_GEV_TO_T_YR_KEV
    return flux * pref * weighted


@poison_policy
def neutron_nr_rate(energy_kev, norm, e_fold_kev):
    """Radiogenic-neutron single-scatter nuclear recoils: ``norm exp(-E / e_fold)``.

    An exponential is the documented approximation of the single-scatter NR spectrum
    from (alpha, n) and spontaneous-fission neutrons in LXe TPCs, which falls
    monotonically and roughly exponentially over 0-60 keV (LZ, arXiv 2211.17120;
    XENON1T, arXiv 1705.01828, Fig. 12); fit ``e_fold_kev`` to a detector's
    simulated spectrum.

    Args:
        energy_kev: Nuclear-recoil energies [keV], any shape, >= 0.
        norm: Rate at E = 0 [events / (tonne year keV)], >= 0 (differentiable).
        e_fold_kev: e-folding energy [keV], > 0 (differentiable).

    Returns:
        dR/dE [events / (tonne year keV)], shape of ``energy_kev``.
    """
    energy = _check_energy(energy_kev)
    norm = _g.guard_values(norm, "norm", low=0.0)
    e_fold = _g.guard_values(e_fold_kev, "e_fold_kev", low=0.0, allow_equal=False)
    return norm * jnp.exp(-energy / e_fold)


def _check_grid(grid_kev, rate_grid, grid_name="grid_kev", rate_name="rate_grid"):
    grid = check_array(grid_kev, grid_name, ndim=1)
    rate = check_array(rate_grid, rate_name, ndim=1)
    if grid.shape[0] < 2:
        raise ValueError(f"`{grid_name}` needs at least 2 points; got {grid.shape[0]}.")
    if rate.shape != grid.shape:
        raise ValueError(
            f"`{rate_name}` must have the shape of `{grid_name}` {grid.shape}; "
            f"got {rate.shape}."
        )
    if not isinstance(grid, jax.core.Tracer):
        g = np.asarray(grid)
        if np.any(np.diff(g) <= 0):
            i = int(np.argmax(np.diff(g) <= 0))
            raise ValueError(
                f"`{grid_name}` must be strictly increasing; got {g[i]} followed by "
                f"{g[i + 1]} at index {i}."
            )
        if g[0] < 0:
            raise ValueError(f"`{grid_name}` must be >= 0 keV; got {g[0]}.")
    if not isinstance(rate, jax.core.Tracer) and np.any(np.asarray(rate) < 0):
        raise ValueError(f"`{rate_name}` must be >= 0; got a negative entry.")
    # Traced values: the same checks, raised when the compiled program runs.
    grid = _g.guard_values(grid, grid_name, low=0.0)
    grid = _g.guard_relation(
        grid,
        jnp.diff(grid) <= 0,
        f"`{grid_name}` must be strictly increasing; got {_g._describe(grid)}.",
    )
    rate = _g.guard_values(rate, rate_name, low=0.0)
    return grid, rate


@poison_policy
def tabulated_rate(energy_kev, grid_kev, rate_grid):
    """User-supplied spectrum, linearly interpolated, zero outside the grid.

    Args:
        energy_kev: Recoil energies [keV], any shape, >= 0.
        grid_kev: Strictly increasing energy grid [keV], shape (G,), G >= 2.
        rate_grid: dR/dE at the grid points [events / (tonne year keV)], shape (G,).

    Returns:
        dR/dE [events / (tonne year keV)], shape of ``energy_kev``.

    Raises:
        ValueError: If the grid is not strictly increasing, shapes differ, or values
            are negative/non-finite (concrete inputs).
    """
    energy = _check_energy(energy_kev)
    grid, rate = _check_grid(grid_kev, rate_grid)
    return jnp.interp(energy, grid, rate, left=0.0, right=0.0)


# --------------------------------------------------------------------------------------
# Integration
# --------------------------------------------------------------------------------------


def _check_window(e_lo_kev, e_hi_kev):
    lo = check_array(e_lo_kev, "e_lo_kev", ndim=0)
    hi = check_array(e_hi_kev, "e_hi_kev", ndim=0)
    if not isinstance(lo, jax.core.Tracer) and not isinstance(hi, jax.core.Tracer):
        if float(lo) < 0:
            raise ValueError(f"`e_lo_kev` must be >= 0 keV; got {float(lo)}.")
        if float(hi) <= float(lo):
            raise ValueError(
                f"`e_hi_kev` must be > `e_lo_kev`; got e_lo_kev={float(lo)}, "
                f"e_hi_kev={float(hi)}."
            )
    lo = _g.guard_values(lo, "e_lo_kev", low=0.0)
    hi = _g.guard_relation(
        _g.guard_values(hi, "e_hi_kev"),
        hi <= lo,
        "`e_hi_kev` must be > `e_lo_kev`; got a traced value.",
    )
    return lo, hi


@poison_policy
def integrate_rate(
    rate_fn: Callable, e_lo_kev, e_hi_kev, *, n_nodes: int = 64, n_sub: int = 8
):
    """Integrate a differential rate over [e_lo, e_hi] by composite Gauss-Legendre.

    The window is split into ``n_sub`` equal sub-intervals with ``n_nodes``
    Gauss-Legendre nodes each (exact for polynomials of degree ``2 n_nodes - 1`` per
    sub-interval). For the closed forms here it agrees with adaptive quadrature to
    ~1e-12 relative in float64 (flat, exponential, WIMP windows without a kink); the
    WIMP eta is only C^1 at v_min = v_esc -+ v_earth and the CEvNS rate at its
    endpoint, and windows containing such a point agree to ~1e-9 (tested). Functions
    with kinks (a :func:`tabulated_rate`) are integrated exactly by
    :func:`expected_counts` on a :class:`RecoilSpectrum` instead.

    Args:
        rate_fn: ``rate_fn(energy_kev) -> dR/dE`` on a 1-D array [events/(t yr keV)].
        e_lo_kev: Lower edge [keV], scalar, >= 0.
        e_hi_kev: Upper edge [keV], scalar, > ``e_lo_kev``.
        n_nodes: Gauss-Legendre nodes per sub-interval (static).
        n_sub: Number of sub-intervals (static).

    Returns:
        Integrated rate [events / (tonne year)], scalar.
    """
    if not callable(rate_fn):
        raise TypeError(f"`rate_fn` must be callable; got {type(rate_fn).__name__}.")
    if int(n_nodes) < 1 or int(n_sub) < 1:
        raise ValueError(f"`n_nodes` and `n_sub` must be >= 1; got {n_nodes}, {n_sub}.")
    lo, hi = _check_window(e_lo_kev, e_hi_kev)
    x, w = np.polynomial.legendre.leggauss(int(n_nodes))
    dtype = jnp.result_type(lo, hi)
    edges = lo + (hi - lo) * jnp.arange(int(n_sub) + 1, dtype=dtype) / int(n_sub)
    a, b = edges[:-1], edges[1:]
    half = 0.5 * (b - a)
    nodes = (0.5 * (a + b))[:, None] + half[:, None] * jnp.asarray(x, dtype)[None, :]
    vals = jnp.reshape(rate_fn(jnp.reshape(nodes, (-1,))), nodes.shape)
    return jnp.sum(half[:, None] * jnp.asarray(w, dtype)[None, :] * vals)


def _pl_cumulative(energy, rate, x):
    """Integral of the piecewise-linear density from energy[0] to x (clipped)."""
    h = jnp.diff(energy)
    seg = 0.5 * (rate[1:] + rate[:-1]) * h
    cum = jnp.concatenate([jnp.zeros((1,), seg.dtype), jnp.cumsum(seg)])
    xc = jnp.clip(x, energy[0], energy[-1])
    i = jnp.clip(jnp.searchsorted(energy, xc, side="right") - 1, 0, energy.shape[0] - 2)
    t = xc - energy[i]
    slope = (rate[i + 1] - rate[i]) / h[i]
    return cum[i] + rate[i] * t + 0.5 * slope * t * t


@poison_policy
def expected_counts(rate, e_lo_kev, e_hi_kev, exposure_tonne_year):
    """Expected number of events in an energy window for an exposure.

    Args:
        rate: A :class:`RecoilSpectrum` (integrated exactly as a piecewise-linear
            density, zero outside its grid) or a callable ``dR/dE(energy_kev)``
            (integrated with :func:`integrate_rate`).
        e_lo_kev: Lower edge [keV], scalar, >= 0.
        e_hi_kev: Upper edge [keV], scalar.
        exposure_tonne_year: Exposure [tonne year], >= 0.

    Returns:
        Expected counts (dimensionless), scalar.
    """
    exposure = _g.guard_values(exposure_tonne_year, "exposure_tonne_year", low=0.0)
    if isinstance(rate, RecoilSpectrum):
        rate = check_spectrum(rate, "rate")
        lo, hi = _check_window(e_lo_kev, e_hi_kev)
        total = _pl_cumulative(rate.energy, rate.rate, hi) - _pl_cumulative(
            rate.energy, rate.rate, lo
        )
    elif callable(rate):
        total = integrate_rate(rate, e_lo_kev, e_hi_kev)
    else:
        raise TypeError(
            "`rate` must be a RecoilSpectrum or a callable dR/dE; got "
            f"{type(rate).__name__}."
        )
    return total * exposure


# --------------------------------------------------------------------------------------
# Tabulated spectra: the object the event simulator consumes
# --------------------------------------------------------------------------------------


class RecoilSpectrum(eqx.Module):
    """A recoil spectrum on an energy grid, linear between grid points.

    The density is the piecewise-linear interpolant of ``rate`` on ``energy`` and zero
    outside the grid; :meth:`total_rate` and :meth:`sample_energies` are exact for it.

    Attributes:
        energy: Strictly increasing energy grid [keV], shape (G,), G >= 2, >= 0.
        rate: dR/dE at the grid points [events / (tonne year keV)], shape (G,), >= 0.
        recoil_type: ``"ER"`` (electronic) or ``"NR"`` (nuclear), static.
    """

    energy: jax.Array
    rate: jax.Array
    recoil_type: str = eqx.field(static=True)

    def __init__(self, energy, rate, recoil_type: str):
        """Validate and store the grid (see class docstring for the arguments)."""
        if recoil_type not in ("ER", "NR"):
            raise ValueError(
                f"`recoil_type` must be 'ER' or 'NR'; got {recoil_type!r}."
            )
        grid, r = _check_grid(energy, rate, "energy", "rate")
        self.energy = grid
        self.rate = r
        self.recoil_type = recoil_type

    def total_rate(self) -> jax.Array:
        """Integral of the spectrum over its grid [events / (tonne year)], scalar."""
        return jnp.sum(0.5 * (self.rate[1:] + self.rate[:-1]) * jnp.diff(self.energy))

    def rate_at(self, energy_kev) -> jax.Array:
        """dR/dE at arbitrary energies [events/(t yr keV)] (zero outside the grid)."""
        energy = _check_energy(energy_kev)
        return jnp.interp(energy, self.energy, self.rate, left=0.0, right=0.0)

    def sample_energies(self, key, n: int) -> jax.Array:
        """Draw ``n`` recoil energies [keV] from the normalised spectrum.

        Exact inverse-CDF sampling of the piecewise-linear density: a segment is
        chosen by its integral, then the quadratic CDF inside it is inverted in the
        cancellation-free form ``t = 2 u / (r0 + sqrt(r0^2 + 2 u (r1 - r0)/h))``.
        A spectrum with zero total rate raises (ValueError; poisoned outputs
        under ``jit`` in a public call): there is nothing to sample.

        Args:
            key: Typed PRNG key.
            n: Number of energies (static int).

        Returns:
            Energies [keV], shape (n,).
        """
        check_key(key)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"`n` must be a positive int; got {n!r}.")
        spec = check_spectrum(self, "RecoilSpectrum")
        rate = _g.guard_relation(
            spec.rate,
            spec.total_rate() <= 0,
            "`RecoilSpectrum.rate` integrates to zero: there are no energies to "
            "sample.",
        )
        return _sample_energies(key, spec.energy, rate, n)

    @staticmethod
    def wimp_spectrum(mass_gev, sigma_cm2, **kwargs) -> RecoilSpectrum:
        """Alias of :func:`wimp_spectrum`."""
        return wimp_spectrum(mass_gev, sigma_cm2, **kwargs)

    @staticmethod
    def flat_er_spectrum(norm, **kwargs) -> RecoilSpectrum:
        """Alias of :func:`flat_er_spectrum`."""
        return flat_er_spectrum(norm, **kwargs)

    @staticmethod
    def b8_spectrum(**kwargs) -> RecoilSpectrum:
        """Alias of :func:`b8_spectrum`."""
        return b8_spectrum(**kwargs)

    @staticmethod
    def neutron_spectrum(norm, e_fold_kev, **kwargs) -> RecoilSpectrum:
        """Alias of :func:`neutron_spectrum`."""
        return neutron_spectrum(norm, e_fold_kev, **kwargs)

    @staticmethod
    def tabulated_spectrum(energy_kev, rate, recoil_type: str) -> RecoilSpectrum:
        """Alias of :func:`tabulated_spectrum`."""
        return tabulated_spectrum(energy_kev, rate, recoil_type)


def _sample_energies(key, energy, rate, n: int):
    """Inverse-CDF draws of the piecewise-linear density (unchecked; NaN if empty)."""
    h = jnp.diff(energy)
    seg = 0.5 * (rate[1:] + rate[:-1]) * h
    cum = jnp.concatenate([jnp.zeros((1,), seg.dtype), jnp.cumsum(seg)])
    total = cum[-1]
    u = uniform(key, (int(n),), dtype=seg.dtype) * total
    u = jnp.where(total > 0, u, jnp.nan)
    i = jnp.clip(jnp.searchsorted(cum, u, side="right") - 1, 0, energy.shape[0] - 2)
    du = jnp.maximum(u - cum[i], 0.0)
    r0, r1, hi = rate[i], rate[i + 1], h[i]
    disc = jnp.maximum(r0 * r0 + 2.0 * du * (r1 - r0) / hi, 0.0)
    den = r0 + jnp.sqrt(disc)
    safe = den > 0
    t = jnp.where(safe, 2.0 * du / jnp.where(safe, den, 1.0), 0.0)
    return energy[i] + jnp.clip(t, 0.0, hi)


@poison_policy
def check_spectrum(source, name: str = "source", *, deferred=None) -> RecoilSpectrum:
    """Validate a :class:`RecoilSpectrum` argument, eagerly and inside traced code.

    A spectrum passed into ``jit`` arrives as traced leaves without re-running its
    constructor's checks; this repeats them (grid finite, >= 0 and strictly
    increasing; rate finite and >= 0) under the poison policy (xenon/_guards.py).

    Args:
        source: The spectrum.
        name: Public argument name for messages.
        deferred: Optional list collecting the traced checks instead of attaching
            them (``_guards.guard_rules``; the caller attaches them once).

    Returns:
        ``source`` (carrying the checks when traced).

    Raises:
        TypeError: If ``source`` is not a RecoilSpectrum.
        ValueError: Naming ``name.energy`` or ``name.rate``.
    """
    if not isinstance(source, RecoilSpectrum):
        raise TypeError(
            f"`{name}` must be a RecoilSpectrum; got {type(source).__name__}."
        )
    rules = (_g.nonnegative("energy"), _g.nonnegative("rate"))
    rel = (
        (
            None,
            lambda xp, s: xp.diff(s.energy) <= 0,
            f"`{name}.energy` must be strictly increasing.",
        ),
    )
    return _g.guard_rules(source, rules, name, relation=rel, deferred=deferred)


def _grid(e_min, e_max, n_grid):
    check_positive(e_min, "e_min", allow_zero=True)
    check_positive(e_max, "e_max")
    e_min = _g.guard_values(e_min, "e_min", low=0.0)
    e_max = _g.guard_relation(
        _g.guard_values(e_max, "e_max", low=0.0, allow_equal=False),
        e_max <= e_min,
        "`e_max` must be > `e_min`; got a traced value.",
    )
    if not any(isinstance(v, jax.core.Tracer) for v in (e_min, e_max)):
        if float(e_max) <= float(e_min):
            raise ValueError(
                f"`e_max` must be > `e_min`; got e_min={e_min}, e_max={e_max}."
            )
    if int(n_grid) < 2:
        raise ValueError(f"`n_grid` must be >= 2; got {n_grid}.")
    return jnp.linspace(e_min, e_max, int(n_grid))


@poison_policy
def wimp_spectrum(
    mass_gev,
    sigma_cm2,
    *,
    e_min: float = 0.5,
    e_max: float = 60.0,
    n_grid: int = 256,
    halo: HaloModel | None = None,
    target: Target | None = None,
) -> RecoilSpectrum:
    """SI WIMP nuclear-recoil spectrum (:func:`wimp_si_rate`) on a linear grid.

    Args:
        mass_gev: WIMP mass [GeV/c^2] (differentiable).
        sigma_cm2: WIMP-nucleon cross-section [cm^2] (differentiable).
        e_min: Lowest grid energy [keV].
        e_max: Highest grid energy [keV].
        n_grid: Number of grid points (static).
        halo: Halo model (default :class:`HaloModel()`).
        target: Target (default :data:`XENON_NATURAL`).

    Returns:
        A ``"NR"`` :class:`RecoilSpectrum`.
    """
    e = _grid(e_min, e_max, n_grid)
    rate = wimp_si_rate(e, mass_gev, sigma_cm2, halo=halo, target=target)
    return RecoilSpectrum(e, rate, "NR")


@poison_policy
def flat_er_spectrum(
    norm, *, e_min: float = 0.5, e_max: float = 60.0, n_grid: int = 256
) -> RecoilSpectrum:
    """Flat ER background (:func:`flat_er_rate`) on a linear grid.

    Args:
        norm: Rate [events / (tonne year keV)] (differentiable).
        e_min: Lowest grid energy [keV].
        e_max: Highest grid energy [keV].
        n_grid: Number of grid points (static).

    Returns:
        An ``"ER"`` :class:`RecoilSpectrum`.
    """
    e = _grid(e_min, e_max, n_grid)
    return RecoilSpectrum(e, flat_er_rate(e, norm), "ER")


@poison_policy
def b8_spectrum(
    *,
    flux: float = B8_FLUX,
    e_min: float = 0.1,
    e_max: float = 5.0,
    n_grid: int = 256,
    target: Target | None = None,
) -> RecoilSpectrum:
    """8B CEvNS nuclear-recoil spectrum (:func:`b8_cevns_rate`) on a linear grid.

    Args:
        flux: Total 8B flux [1/(cm^2 s)] (default 5.46e6).
        e_min: Lowest grid energy [keV].
        e_max: Highest grid energy [keV] (the rate vanishes above ~3 keV).
        n_grid: Number of grid points (static).
        target: Target (default :data:`XENON_NATURAL`).

    Returns:
        An ``"NR"`` :class:`RecoilSpectrum`.
    """
    e = _grid(e_min, e_max, n_grid)
    return RecoilSpectrum(e, b8_cevns_rate(e, flux=flux, target=target), "NR")


@poison_policy
def neutron_spectrum(
    norm,
    e_fold_kev,
    *,
    e_min: float = 0.5,
    e_max: float = 60.0,
    n_grid: int = 256,
) -> RecoilSpectrum:
    """Radiogenic-neutron NR spectrum (:func:`neutron_nr_rate`) on a linear grid.

    Args:
        norm: Rate at E = 0 [events / (tonne year keV)] (differentiable).
        e_fold_kev: e-folding energy [keV] (differentiable).
        e_min: Lowest grid energy [keV].
        e_max: Highest grid energy [keV].
        n_grid: Number of grid points (static).

    Returns:
        An ``"NR"`` :class:`RecoilSpectrum`.
    """
    e = _grid(e_min, e_max, n_grid)
    return RecoilSpectrum(e, neutron_nr_rate(e, norm, e_fold_kev), "NR")


@poison_policy
def tabulated_spectrum(energy_kev, rate, recoil_type: str) -> RecoilSpectrum:
    """A user-supplied tabulated spectrum.

    Args:
        energy_kev: Strictly increasing grid [keV], shape (G,).
        rate: dR/dE [events / (tonne year keV)], shape (G,).
        recoil_type: ``"ER"`` or ``"NR"``.

    Returns:
        A :class:`RecoilSpectrum`.
    """
    return RecoilSpectrum(energy_kev, rate, recoil_type)
