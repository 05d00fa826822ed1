"""Non-relativistic EFT recoil spectra in xenon: operators O1, O3-O15, per isotope.

The WIMP-nucleon interaction is ``sum_i sum_{N=p,n} c_i^N O_i`` with the Galilean-
invariant operators of Fitzpatrick, Katz, Lubbers & Xu (arXiv 1203.3542) and
Anand, Fitzpatrick & Haxton (arXiv 1308.6288): O1 = 1, O3 = i S_N.(q x v_perp) / m_N,
O4 = S_chi.S_N, ..., O15 (O2 = v_perp^2 is not generated at leading order and is
excluded, as in both papers). The differential rate per unit target mass is
(1308.6288, event-rate section; 1203.3542, nuclear-response section)::

    dR/dE = rho0 / (2 pi m_chi) sum_isotopes w_i sum_{N,N'} sum_k
            F_k^{(N,N')}(y) [R_k^{NN'}|_0 eta(v_min) + R_k^{NN'}|_v2 eta_perp(v_min)]

with ``w_i`` the isotopic mass fractions, ``F_k`` the nuclear responses (normalised
as in 1203.3542, ``F_M^{(N,N')}(0) = Z_N Z_N'``; Phi'', Phi~', Delta and the two
interferences carry the extra ``q^2 / m_N^2`` of 1308.6288 inside
``R_k`` here), ``y = (q b / 2)^2`` and ``R_k`` the WIMP response functions of
1308.6288, split into the part without and the part proportional to
``v_perp^2 = v^2 - v_min^2`` (``v_perp^2 = v^2 - q^2 / (4 mu_T^2)``). The velocity
integrals are ``eta = int f/v d^3v`` (:func:`.spectra.eta_shm`) and
``eta_perp = int f/v (v^2 - v_min^2) d^3v`` (:func:`eta_perp_shm`, closed form), so
the rate needs no quadrature and is differentiable in mass, couplings and halo.
Validated against the independent WIMpy_NREFT implementation (Kavanagh; all
operators but O13 within 2 %, O13 differing by the Phi~' response WIMpy omits) in
tests/simulators/xenon/test_eft.py.

Couplings are dimensionless, in units of ``1 / m_v^2`` with ``m_v = 246.2 GeV`` (the
convention of the 1308.6288 Mathematica package and of the LUX/LZ EFT searches), as
an array of shape (2, 15): column ``i - 1`` holds operator O_i (column 1, O2, must be
0); rows are (c^0, c^1) in the isospin basis (``c^p = c^0 + c^1``,
``c^n = c^0 - c^1``, as in 1308.6288) or (c^p, c^n) in the nucleon basis.

Nuclear responses (``nuclear_response``):

* ``"shell_model"``: the published shell-model responses of 128, 129, 130, 131,
  132, 134 and 136Xe (:mod:`.eft_responses`, sources there), weighted by natural
  abundance (CIAAW 2013, :data:`.spectra.XENON_NATURAL`, renormalised over these seven
  isotopes: 124Xe and 126Xe, 0.18 % of atoms, have no published responses).
* ``"helm"``: the M response only, ``F_M^{(N,N')} = Z_N Z_N' F_Helm^2(q)`` over any
  :class:`.spectra.Target` (default all nine natural isotopes). With isoscalar O1
  this *is* :func:`.spectra.wimp_si_rate`: the conversion is
  ``sigma_p = mu_p^2 c_1^2 / pi`` (c_1 in GeV^-2, times (hbar c)^2), see
  :func:`sigma_si_from_c1`. Only O1 and O11 (which couple to M alone) are allowed.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from ..._args import check_choice, check_int, check_real
from ..._poison import poison_policy
from ...constants import AMU_GEV, C_KM_S, HBARC_GEV_FM, PROTON_MASS_GEV, YEAR_S
from . import _guards as _g
from .eft_couplings import (
    _HBARC_GEV_CM,
    EFT_OPERATORS,
    M_V_GEV,
    c1_from_sigma_si,
    eft_couplings,
    sigma_si_from_c1,
)
from .eft_halo import _eta_perp_shm, eta_perp_shm
from .eft_responses import ISOTOPES, RESPONSE_COEFFICIENTS, RESPONSES
from .spectra import (
    XENON_NATURAL,
    HaloModel,
    RecoilSpectrum,
    Target,
    _check_energy,
    _check_halo,
    _check_target,
    _eta_shm,
    _grid,
    _helm_from_q2,
)

__all__ = [
    "EFT_OPERATORS",
    "M_V_GEV",
    "c1_from_sigma_si",
    "eft_couplings",
    "eft_nuclear_response",
    "eft_rate",
    "eft_spectrum",
    "eta_perp_shm",
    "oscillator_length_fm",
    "sigma_si_from_c1",
    "xenon_shell_model_target",
]

_GEV_KG = 1.78266192e-27
# rho0/(2 pi m) [1/cm^3] * eta [s/km] * c [km/s] * c [cm/s] * P [GeV^-4 -> (hbar c)^2
# cm^2 GeV^-2] -> events/(s GeV GeV) -> /kg (GEV_KG), /keV (1e-6), tonne year.
_EFT_PREFACTOR = (
    (C_KM_S * C_KM_S * 1e5 * _HBARC_GEV_CM**2 / (2.0 * math.pi) / _GEV_KG)
    * (1e3 * YEAR_S * 1e-6)
    / M_V_GEV**4
)
_Z_XE = 54.0
# Operators whose rate involves only the M response (allowed with "helm").
_M_ONLY = (1, 11)


@poison_policy
def oscillator_length_fm(A):
    """Harmonic-oscillator length ``b = sqrt(41.467 / (45 A^-1/3 - 25 A^-2/3))`` [fm].

    The parameterisation used with the shell-model responses (1203.3542 and the
    1308.6288 package), in which ``y = (q b / 2)^2``.
    """
    A = jnp.asarray(A, dtype=jnp.result_type(A, float))
    return jnp.sqrt(41.467 / (45.0 * A ** (-1.0 / 3.0) - 25.0 * A ** (-2.0 / 3.0)))


def _table():
    """Coefficient array (I, K, 2, 2, P) of the shell-model responses."""
    deg = max(len(r) for rows in RESPONSE_COEFFICIENTS.values() for r in rows)
    tab = np.zeros((len(ISOTOPES), len(RESPONSES), 2, 2, deg))
    for (A, name), rows in RESPONSE_COEFFICIENTS.items():
        i, k = ISOTOPES.index(A), RESPONSES.index(name)
        for j, row in enumerate(rows):
            tab[i, k, j // 2, j % 2, : len(row)] = row
    return tab


_TABLE = _table()


@poison_policy
def xenon_shell_model_target() -> Target:
    """The seven isotopes with shell-model responses at natural abundance.

    Abundances of :data:`.spectra.XENON_NATURAL` (CIAAW 2013) for 128-136Xe,
    renormalised to 1 (the 0.18 % of 124Xe and 126Xe is dropped).
    """
    nat = dict(
        zip(
            np.asarray(XENON_NATURAL.A).tolist(),
            np.asarray(XENON_NATURAL.abundance),
            strict=True,
        )
    )
    ab = np.array([nat[float(a)] for a in ISOTOPES])
    return Target(
        A=np.array(ISOTOPES, float), Z=np.asarray(_Z_XE), abundance=ab / ab.sum()
    )


@poison_policy
def eft_nuclear_response(q_mev, A: int, response: str):
    """Shell-model response ``F_k^{(N,N')}(q)`` of one xenon isotope.

    Args:
        q_mev: Momentum transfer [MeV/c], any shape, >= 0.
        A: Mass number, one of 128, 129, 130, 131, 132, 134, 136.
        response: One of ``"M", "Sigma1", "Sigma2", "Phi2", "PhiT1", "Delta",
            "MPhi2", "Sigma1Delta"`` (see :mod:`.eft_responses`).

    Returns:
        Dimensionless responses, shape ``q.shape + (2, 2)``, nucleon indices (p, n).
    """
    A = check_int(A, "A")
    if A not in ISOTOPES:
        raise ValueError(f"`A` must be one of {ISOTOPES}; got {A}.")
    check_choice(response, "response", RESPONSES)
    q = _g.guard_values(q_mev, "q_mev", low=0.0)
    b = oscillator_length_fm(float(A))
    y = (q * b / (2.0 * HBARC_GEV_FM * 1e3)) ** 2
    coef = jnp.asarray(_TABLE[ISOTOPES.index(A), RESPONSES.index(response)], q.dtype)
    return _horner_exp(y[..., None, None], coef)


def _horner_exp(y, coef):
    """``exp(-2 y) sum_p coef[..., p] y^p`` (Horner); y broadcasts with coef[..., 0]."""
    extra = y.ndim - (coef.ndim - 1)
    if extra > 0:
        coef = coef.reshape((1,) * extra + coef.shape)
    acc = jnp.zeros(jnp.broadcast_shapes(y.shape, coef.shape[:-1]), coef.dtype)
    for p in range(coef.shape[-1] - 1, -1, -1):
        acc = acc * y + coef[..., p]
    return acc * jnp.exp(-2.0 * y)


# --------------------------------------------------------------------------------------
# WIMP response functions (1308.6288) and the rate
# --------------------------------------------------------------------------------------


def _dm_responses(a, b, qq, jx):
    """R_k^{NN'} for coupling vectors a (N) and b (N'), padded to index = operator.

    Returns ``(r0, rv)``, each of shape qq.shape + (K,) in the order of
    :data:`RESPONSES`: r0 multiplies eta, rv multiplies v_perp^2 (eta_perp). The
    ``q^2/m_N^2`` prefactor of Phi'', Phi~', Delta and the interferences is included.
    """
    j = jx * (jx + 1.0)
    c12a, c12b = a[12] - qq * a[15], b[12] - qq * b[15]
    zero = jnp.zeros_like(qq)
    m0 = a[1] * b[1] + j / 3.0 * qq * a[11] * b[11]
    mv = j / 3.0 * (qq * a[5] * b[5] + a[8] * b[8])
    s2_0 = qq / 4.0 * a[10] * b[10] + j / 12.0 * (
        a[4] * b[4] + qq * (a[4] * b[6] + a[6] * b[4]) + qq**2 * a[6] * b[6]
    )
    s2_v = j / 12.0 * (a[12] * b[12] + qq * a[13] * b[13])
    s1_0 = j / 12.0 * (a[4] * b[4] + qq * a[9] * b[9])
    s1_v = (qq * a[3] * b[3] + a[7] * b[7]) / 8.0 + j / 12.0 * (
        0.5 * c12a * c12b + 0.5 * qq * a[14] * b[14]
    )
    phi2 = qq * (qq / 4.0 * a[3] * b[3] + j / 12.0 * c12a * c12b)
    phit = qq * (j / 12.0 * (a[12] * b[12] + qq * a[13] * b[13]))
    delta = qq * (j / 3.0 * (qq * a[5] * b[5] + a[8] * b[8]))
    # F_{M,Phi''}^{NN'} = <M_N><Phi''_N'>: R_{Phi''M}^{N'N} = c3^N' c1^N + ...
    mphi = qq * (b[3] * a[1] + j / 3.0 * c12b * a[11])
    # F_{Sigma',Delta}^{NN'} = <Sigma'_N><Delta_N'>: R_{Delta Sigma'}^{N'N}.
    sdel = qq * (j / 3.0 * (b[5] * a[4] - b[8] * a[9]))
    r0 = jnp.stack([m0, s1_0, s2_0, phi2, phit, delta, mphi, sdel], axis=-1)
    rv = jnp.stack([mv, s1_v, s2_v, zero, zero, zero, zero, zero], axis=-1)
    return r0, rv


def _check_couplings(couplings, basis, nuclear_response):
    c = _g.guard_values(couplings, "couplings")
    if c.shape != (2, 15):
        raise ValueError(
            "`couplings` must have shape (2, 15) (rows: isospin or nucleon basis; "
            f"column i-1: operator O_i); got {c.shape}."
        )
    c = _g.guard_relation(
        c,
        c[:, 1] != 0,
        "`couplings[:, 1]` (operator O2) must be 0: O2 is not in the basis.",
    )
    if nuclear_response == "helm":
        others = [i - 1 for i in EFT_OPERATORS if i not in _M_ONLY]
        c = _g.guard_relation(
            c,
            c[:, np.array(others)] != 0,
            "`couplings` of operators other than O1 and O11 must be 0 with "
            "nuclear_response='helm' (Helm models the M response only); use "
            "nuclear_response='shell_model'.",
        )
    if basis == "isospin":
        c = jnp.stack([c[0] + c[1], c[0] - c[1]])
    pad = jnp.zeros((2, 1), c.dtype)
    return jnp.concatenate([pad, c], axis=1)  # (2, 16): index = operator number


@poison_policy
def eft_rate(
    energy_kev,
    mass_gev,
    couplings,
    *,
    basis: str = "isospin",
    nuclear_response: str = "shell_model",
    halo: HaloModel | None = None,
    target: Target | None = None,
    dm_spin: float = 0.5,
    nucleon_mass_gev: float = PROTON_MASS_GEV,
):
    """NR-EFT WIMP-xenon differential rate dR/dE (see the module docstring).

    Bad values raise eagerly (ValueError); inside ``jit`` they poison the output.

    Args:
        energy_kev: Nuclear-recoil energies [keV], any shape, >= 0.
        mass_gev: WIMP mass [GeV/c^2], scalar, > 0 (differentiable).
        couplings: Shape (2, 15), dimensionless in units of 1/m_v^2 (m_v = 246.2
            GeV); column i-1 is O_i (differentiable).
        basis: ``"isospin"`` (rows c^0, c^1) or ``"nucleon"`` (rows c^p, c^n).
        nuclear_response: ``"shell_model"`` or ``"helm"`` (M only, O1/O11).
        halo: Halo model (default :class:`.spectra.HaloModel()`).
        target: Only with ``"helm"``: the isotopes (default all natural xenon).
        dm_spin: WIMP spin j_chi (static; 1/2 in 1203.3542).
        nucleon_mass_gev: m_N in q/m_N [GeV/c^2] (default the proton mass).

    Returns:
        dR/dE [events / (tonne year keV)], shape of ``energy_kev``.
    """
    check_choice(basis, "basis", ("isospin", "nucleon"))
    check_choice(nuclear_response, "nuclear_response", ("shell_model", "helm"))
    jx = check_real(dm_spin, "dm_spin")
    if jx <= 0 or abs(2 * jx - round(2 * jx)) > 1e-12:
        raise ValueError(f"`dm_spin` must be a positive half-integer; got {dm_spin}.")
    mn = check_real(nucleon_mass_gev, "nucleon_mass_gev")
    if not mn > 0:
        raise ValueError(f"`nucleon_mass_gev` must be > 0; got {nucleon_mass_gev}.")
    energy = _check_energy(energy_kev)
    mass = _g.guard_values(mass_gev, "mass_gev", low=0.0, allow_equal=False)
    halo = _check_halo(halo)
    if nuclear_response == "shell_model":
        if target is not None:
            raise ValueError(
                "`target` is fixed by the shell-model responses (128-136Xe); pass "
                "target=None or use nuclear_response='helm'."
            )
        target = xenon_shell_model_target()
    else:
        target = _check_target(target)
    c = _check_couplings(couplings, basis, nuclear_response)
    dtype = jnp.result_type(energy, mass, c)
    return _eft_rate(
        energy.astype(dtype),
        mass.astype(dtype),
        c.astype(dtype),
        halo,
        target,
        nuclear_response,
        jx,
        mn,
    )


@functools.partial(jax.jit, static_argnums=(5, 6, 7))
def _eft_rate(energy, m_chi, c, halo, target, nuclear_response, jx, mn):
    """Jitted core of :func:`eft_rate`."""
    dtype = energy.dtype
    e_safe = jnp.maximum(energy, 0.0)
    A = target.A.astype(dtype)
    m_t = A * AMU_GEV  # (I,)
    q2 = 2.0 * m_t[:, None] * e_safe.reshape(-1)[None, :] * 1e-6  # GeV^2, (I, E)
    mu_t = m_chi * m_t / (m_chi + m_t)
    v_min = C_KM_S * jnp.sqrt(q2) / (2.0 * mu_t[:, None])
    eta = _eta_shm(v_min, halo)
    eta_v = _eta_perp_shm(v_min, halo) / C_KM_S**2
    qq = q2 / mn**2
    if nuclear_response == "shell_model":
        b = oscillator_length_fm(A)
        y = q2 * (b[:, None] / (2.0 * HBARC_GEV_FM)) ** 2
        coef = jnp.asarray(_TABLE, dtype)[:, None]  # (I, 1, K, 2, 2, P)
        F = _horner_exp(y[:, :, None, None, None], coef)  # (I, E, K, 2, 2)
    else:
        zn = jnp.stack([jnp.full_like(A, _Z_XE), A - _Z_XE], axis=-1)  # (I, 2)
        helm2 = _helm_from_q2(q2 * 1e6, A[:, None]) ** 2  # (I, E)
        fm = helm2[..., None, None] * (zn[:, None, :, None] * zn[:, None, None, :])
        F = jnp.zeros(fm.shape[:2] + (len(RESPONSES), 2, 2), dtype)
        F = F.at[..., 0, :, :].set(fm)
    # F: (I, E, K, 2, 2)
    total = jnp.zeros_like(q2)
    for n1 in range(2):
        for n2 in range(2):
            r0, rv = _dm_responses(c[n1], c[n2], qq, jx)  # (I, E, K)
            fk = F[..., n1, n2]
            total = total + jnp.sum(
                fk * (r0 * eta[..., None] + rv * eta_v[..., None]), -1
            )
    w = target.mass_fractions().astype(dtype)
    rate = _EFT_PREFACTOR * halo.rho0 / m_chi * jnp.tensordot(w, total, axes=1)
    return rate.reshape(energy.shape)


@poison_policy
def eft_spectrum(
    mass_gev,
    couplings,
    *,
    e_min: float = 0.5,
    e_max: float = 60.0,
    n_grid: int = 256,
    **kwargs,
) -> RecoilSpectrum:
    """NR-EFT recoil spectrum (:func:`eft_rate`) on a linear grid, for the simulator.

    Args:
        mass_gev: WIMP mass [GeV/c^2] (differentiable).
        couplings: Shape (2, 15) [1/m_v^2] (differentiable).
        e_min: Lowest grid energy [keV].
        e_max: Highest grid energy [keV].
        n_grid: Number of grid points (static).
        **kwargs: Passed to :func:`eft_rate` (basis, nuclear_response, halo, ...).

    Returns:
        An ``"NR"`` :class:`.spectra.RecoilSpectrum`.
    """
    e = _grid(e_min, e_max, n_grid)
    return RecoilSpectrum(e, eft_rate(e, mass_gev, couplings, **kwargs), "NR")
