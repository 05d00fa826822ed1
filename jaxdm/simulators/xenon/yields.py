"""Liquid-xenon microphysics: mean yields and quanta fluctuations (NEST v2).

Mean yields follow the NEST v2 parametrisations (Szydagis et al., "A Review of Basic
Energy Reconstruction Techniques in Liquid Xenon and Argon Detectors for Dark Matter
and Neutrino Physics Using NEST", Instruments 5, 13 (2021), arXiv:2102.10209; code
NEST v2.3, https://github.com/NESTCollaboration/nest, ``GetYieldNR`` and the beta
branch of ``GetYields``):

* **NR**: total quanta ``N_q = alpha * E^beta`` (alpha = 11, beta = 1.1), charge yield
  from the Thomas-Imel box model ``Q_y = 1 / (TI * sqrt(E + eps))`` with the
  field-dependent box parameter ``TI = gamma * F^delta * (rho/2.9)^0.3`` (gamma = 0.048,
  delta = -0.0533, eps = 12.6 keV) and low-energy roll-offs; exciton/ion ratio from
  inverting the Thomas-Imel recombination probability.
* **ER (beta)**: NEST's ``GetYieldBetaGR`` field- and density-dependent charge yield
  (recombination from the Thomas-Imel regime at low energy to Doke-Birks-like
  behaviour at higher energy); ``N_q = E / W``; exciton/ion ratio
  ``alpha(rho) * erf(0.05 E)``, alpha = 0.067366 + 0.039693 rho.

The W-value defaults to NEST's density-dependent value
``W = (18.7263 - 1.01e-23 n_e) * 1.1716263232`` eV (n_e the electron density in
cm^-3; NEST ``WorkFunction`` with ``OldW13eV = true``, the setting of every NEST
detector file; :func:`nest_w_value`), evaluated at the density passed to the yield
functions (``YieldParams(w_ev=None)``, the default). A fixed W is an explicit choice:
``YieldParams(w_ev=W_DAHL_EV)`` gives 13.7 eV (Dahl, PhD thesis Princeton 2009; the
value of LUX/LZ analyses), which is 1.9% above NEST's 13.44 eV at 2.90 g/cm^3.

Fluctuations (:func:`quanta_fluctuation_params`): total quanta Gaussian with a Fano
factor, ions/excitons binomial partition, recombination binomial plus the
NEST-style excess ``omega^2 N_i^2`` (Gaussian in ``elecFrac``).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax.scipy.special import erf

from ..._poison import poison_policy
from ..._typing import Array
from . import _guards as _g

# Xenon atomic number and molar mass [g/mol] (IUPAC 2013).
_XE_Z = 54.0
_XE_MOLAR_MASS = 131.293
_AVOGADRO = 6.02214076e23

#: NEST's reference density for density-dependent effects [g/cm^3] (``DENSITY`` in
#: NEST.hh, NEST v2.4): the ER density correction and the NR Thomas-Imel scaling.
NEST_REF_DENSITY = 2.90
#: The ``ZurichEXOW`` factor of NEST.cpp (v2.4): NEST multiplies its W by it when a
#: detector sets ``OldW13eV = true`` (all NEST detector files do).
NEST_OLD_W_FACTOR = 1.1716263232
#: W = 13.7 eV (Dahl, PhD thesis Princeton 2009), the fixed W of LUX/LZ analyses:
#: pass ``YieldParams(w_ev=W_DAHL_EV)`` to use it instead of NEST's W(rho).
W_DAHL_EV = 13.7


def _w_converter(x):
    return None if x is None else jnp.asarray(x)


class YieldParams(eqx.Module):
    """NEST v2 yield and fluctuation parameters (all arrays, differentiable).

    Defaults are the NEST v2.3 defaults (``default_NuisParam`` / ``default_FreeParam``
    in NEST.cpp, Szydagis et al. 2021, arXiv:2102.10209) unless stated.

    Attributes:
        w_ev: Work function W [eV] per quantum, or ``None`` (default) for NEST's
            density-dependent :func:`nest_w_value` at the density of each call
            (13.44 eV at 2.90 g/cm^3). ``W_DAHL_EV`` = 13.7 eV is Dahl 2009's value.
        nr_alpha: NR total-quanta normalisation alpha [quanta keV^-beta] (11.0).
        nr_beta: NR total-quanta power beta (1.1).
        nr_gamma: Thomas-Imel normalisation gamma [(V/cm)^-delta] (0.048).
        nr_delta: Thomas-Imel field power delta (-0.0533).
        nr_epsilon: Charge-yield energy offset epsilon [keV] (12.6).
        nr_zeta: Low-energy charge roll-off energy [keV] (0.3).
        nr_eta: Low-energy charge roll-off power (2.0).
        nr_theta: Low-energy light roll-off energy [keV] (0.3).
        nr_iota: Low-energy light roll-off power (2.0).
        er_fano: Fano factor of ER total quanta (0.04: NEST v2's liquid-xenon ER Fano
            factor 0.12707 - 0.029623 rho evaluated near 2.9 g/cm^3).
        nr_fano: Fano-like factor of NR total quanta (0.4, NEST v2.4
            ``nr_er_width_parameters[0:2]``).
        er_omega: Amplitude of the ER recombination excess (0.046452, NEST v2.4
            ``RecombOmegaER`` default; NEST's skewness -0.2 is not modelled).
        er_omega_centre: Centre of the ER excess in elecFrac (0.45, NEST v2.4).
        er_omega_width: Width of the ER excess in elecFrac (0.205, NEST v2.4).
        nr_omega: Amplitude of the NR recombination excess (0.04, NEST v2.4
            ``RecombOmegaNR``).
        nr_omega_centre: Centre of the NR excess in elecFrac (0.5, NEST v2.4).
        nr_omega_width: Width of the NR excess in elecFrac (0.19, NEST v2.4).
    """

    w_ev: Array | None = eqx.field(default=None, converter=_w_converter)
    nr_alpha: Array = eqx.field(
        default_factory=lambda: jnp.asarray(11.0), converter=jnp.asarray
    )
    nr_beta: Array = eqx.field(
        default_factory=lambda: jnp.asarray(1.1), converter=jnp.asarray
    )
    nr_gamma: Array = eqx.field(
        default_factory=lambda: jnp.asarray(0.048), converter=jnp.asarray
    )
    nr_delta: Array = eqx.field(
        default_factory=lambda: jnp.asarray(-0.0533), converter=jnp.asarray
    )
    nr_epsilon: Array = eqx.field(
        default_factory=lambda: jnp.asarray(12.6), converter=jnp.asarray
    )
    nr_zeta: Array = eqx.field(
        default_factory=lambda: jnp.asarray(0.3), converter=jnp.asarray
    )
    nr_eta: Array = eqx.field(
        default_factory=lambda: jnp.asarray(2.0), converter=jnp.asarray
    )
    nr_theta: Array = eqx.field(
        default_factory=lambda: jnp.asarray(0.3), converter=jnp.asarray
    )
    nr_iota: Array = eqx.field(
        default_factory=lambda: jnp.asarray(2.0), converter=jnp.asarray
    )
    er_fano: Array = eqx.field(
        default_factory=lambda: jnp.asarray(0.04), converter=jnp.asarray
    )
    nr_fano: Array = eqx.field(
        default_factory=lambda: jnp.asarray(0.4), converter=jnp.asarray
    )
    er_omega: Array = eqx.field(
        default_factory=lambda: jnp.asarray(0.046452), converter=jnp.asarray
    )
    er_omega_centre: Array = eqx.field(
        default_factory=lambda: jnp.asarray(0.45), converter=jnp.asarray
    )
    er_omega_width: Array = eqx.field(
        default_factory=lambda: jnp.asarray(0.205), converter=jnp.asarray
    )
    nr_omega: Array = eqx.field(
        default_factory=lambda: jnp.asarray(0.04), converter=jnp.asarray
    )
    nr_omega_centre: Array = eqx.field(
        default_factory=lambda: jnp.asarray(0.5), converter=jnp.asarray
    )
    nr_omega_width: Array = eqx.field(
        default_factory=lambda: jnp.asarray(0.19), converter=jnp.asarray
    )


_YIELD_RULES = (
    _g.positive("nr_alpha"),
    _g.positive("nr_beta"),
    _g.positive("nr_gamma"),
    _g.finite("nr_delta"),
    _g.nonnegative("nr_epsilon"),
    _g.positive("nr_zeta"),
    _g.positive("nr_eta"),
    _g.positive("nr_theta"),
    _g.positive("nr_iota"),
    _g.nonnegative("er_fano"),
    _g.nonnegative("nr_fano"),
    _g.nonnegative("er_omega"),
    _g.finite("er_omega_centre"),
    _g.positive("er_omega_width"),
    _g.nonnegative("nr_omega"),
    _g.finite("nr_omega_centre"),
    _g.positive("nr_omega_width"),
)


@poison_policy
def check_yields(
    params: YieldParams, name: str = "yields", *, deferred=None
) -> YieldParams:
    """Validate yield parameters, eagerly and inside traced code (raise policy).

    Args:
        params: Parameters to check.
        name: Public argument name used in messages.
        deferred: Optional list collecting the traced checks instead of attaching
            them (``_guards.guard_rules``; the caller attaches them once).

    Returns:
        ``params`` (sanitised, its condition recorded, when traced).

    Raises:
        TypeError: If ``params`` is not a :class:`YieldParams`.
        ValueError: Naming the field: W <= 0, a non-positive NR alpha/beta/gamma,
            a negative Fano factor or recombination excess, NaN anywhere, ...
    """
    if not isinstance(params, YieldParams):
        raise TypeError(f"`{name}` must be a YieldParams; got {type(params).__name__}.")
    rules = _YIELD_RULES
    if params.w_ev is not None:
        rules = (_g.positive("w_ev"), *rules)
    return _g.guard_rules(params, rules, name, deferred=deferred)


def _check_inputs(energy, field, density, params, name="params"):
    energy = _g.guard_values(energy, "energy", low=0.0)
    field = _g.guard_values(field, "field", low=0.0, allow_equal=False)
    density = _g.guard_values(density, "density", low=0.0, allow_equal=False)
    return energy, field, density, check_yields(params, name)


class MeanYields(eqx.Module):
    """Mean quanta for recoils of given energy.

    Attributes:
        n_photons: Mean number of scintillation photons, shape of energy.
        n_electrons: Mean number of electrons escaping recombination.
        n_quanta: Mean total quanta ``n_ions + n_excitons`` (= photons + electrons).
        exciton_ratio: Mean exciton-to-ion ratio N_ex/N_i.
    """

    n_photons: Array
    n_electrons: Array
    n_quanta: Array
    exciton_ratio: Array


@poison_policy
def nest_w_value(density):
    """NEST v2.4 density-dependent W-value [eV] of liquid xenon.

    ``W = (18.7263 - 1.01e-23 n_e) * 1.1716263232`` with ``n_e = rho N_A Z / M`` the
    electron density [cm^-3]: NEST ``WorkFunction`` (src/NEST.cpp) with
    ``OldW13eV = true`` (factor ``ZurichEXOW``), the setting of all NEST detector
    files; 13.4404 eV at 2.90 g/cm^3, 13.554 eV at 2.861 g/cm^3.

    Args:
        density: Liquid density [g/cm^3].

    Returns:
        W [eV], shape of ``density``.
    """
    density = _g.guard_values(density, "density", low=0.0, allow_equal=False)
    return _nest_w_value(density)


def _nest_w_value(density):
    n_e = jnp.asarray(density) / _XE_MOLAR_MASS * _AVOGADRO * _XE_Z
    return (18.7263 - 1.01e-23 * n_e) * NEST_OLD_W_FACTOR


@poison_policy
def work_function(params: YieldParams, density):
    """W [eV] used by the ER yields: ``params.w_ev``, or NEST's W(density) if None.

    Args:
        params: Yield parameters.
        density: Liquid density [g/cm^3].

    Returns:
        W [eV], shape of ``density`` broadcast with ``params.w_ev``.
    """
    params = check_yields(params, "params")
    density = _g.guard_values(density, "density", low=0.0, allow_equal=False)
    return _work_function(params, density)


def _work_function(params, density):
    if params.w_ev is None:
        return _nest_w_value(density)
    return params.w_ev


@poison_policy
def lindhard_factor(energy, k=0.166):
    """Lindhard quenching factor of a xenon nuclear recoil (Lindhard et al. 1963).

    ``L = k g(eps) / (1 + k g(eps))`` with ``eps = 11.5 E Z^(-7/3)`` (E in keV) and
    ``g = 3 eps^0.15 + 0.7 eps^0.6 + eps``; k = 0.166 for xenon (Lindhard's
    ``0.133 Z^(2/3) A^(-1/2)``). Useful to compare with the NEST NR quanta:
    ``N_q(NEST) ~ L E / W``.

    Args:
        energy: Recoil energy [keV], any shape.
        k: Electronic stopping parameter (dimensionless).

    Returns:
        The quenching factor, shape of ``energy``.
    """
    energy = _g.guard_values(energy, "energy", low=0.0)
    k = _g.guard_values(k, "k", low=0.0, allow_equal=False)
    eps = 11.5 * energy * _XE_Z ** (-7.0 / 3.0)
    g = 3.0 * eps**0.15 + 0.7 * eps**0.6 + eps
    return k * g / (1.0 + k * g)


def _safe_pos(x, floor=1e-12):
    return jnp.maximum(x, floor)


@poison_policy
def nr_mean_yields(energy, field, density, params: YieldParams) -> MeanYields:
    """NEST v2 mean quanta of a xenon nuclear recoil.

    Args:
        energy: Recoil energy [keV], any shape, > 0.
        field: Drift field [V/cm], > 0 (broadcasts against ``energy``).
        density: Liquid density [g/cm^3].
        params: Yield parameters.

    Returns:
        :class:`MeanYields` with arrays of the broadcast shape.

    Raises:
        ValueError: (poisoned outputs under ``jit``) for a negative or NaN energy,
            a non-positive field or density, or bad ``params``.
    """
    return _nr_mean_yields(*_check_inputs(energy, field, density, params))


def _nr_mean_yields(energy, field, density, params: YieldParams) -> MeanYields:
    e = _safe_pos(jnp.asarray(energy))
    p = params
    n_q = p.nr_alpha * e**p.nr_beta
    ti = (
        p.nr_gamma
        * _safe_pos(jnp.asarray(field)) ** p.nr_delta
        * (density / NEST_REF_DENSITY) ** 0.3
    )
    qy = 1.0 / (ti * jnp.sqrt(e + p.nr_epsilon))
    qy = qy * (1.0 - 1.0 / (1.0 + (e / p.nr_zeta) ** p.nr_eta))
    ly = n_q / e - qy
    qy = jnp.maximum(qy, 0.0)
    ly = jnp.maximum(ly, 0.0)
    n_e = qy * e
    n_ph = ly * e * (1.0 - 1.0 / (1.0 + (e / p.nr_theta) ** p.nr_iota))
    n_q = n_ph + n_e
    # Invert Thomas-Imel recombination: N_e = (4/TI) ln(1 + TI N_i / 4).
    x = n_e * ti / 4.0
    n_i = (4.0 / ti) * jnp.expm1(x)
    n_ex = n_q - n_i
    ratio = n_ex / _safe_pos(n_i)
    return MeanYields(
        n_photons=n_ph, n_electrons=n_e, n_quanta=n_q, exciton_ratio=ratio
    )


@poison_policy
def er_mean_yields(energy, field, density, params: YieldParams) -> MeanYields:
    """NEST v2 mean quanta of a xenon electronic (beta/Compton) recoil.

    The ``GetYieldBetaGR`` parametrisation of NEST v2 (default beta model since
    v2.1; Szydagis et al. 2021, arXiv:2102.10209): ten-parameter ``Q_y(E, F)``
    fitted to world beta/Compton data, which tends to the ion yield (no
    recombination) at high energy and the Thomas-Imel plateau at low energy, with
    NEST's density scaling around its reference density 2.90 g/cm^3 (``DENSITY``
    in NEST.hh; :data:`NEST_REF_DENSITY`).

    Args:
        energy: Recoil energy [keV], any shape, > 0.
        field: Drift field [V/cm], > 0.
        density: Liquid density [g/cm^3].
        params: Yield parameters (``N_q = E / W``, W from :func:`work_function`).

    Returns:
        :class:`MeanYields` with arrays of the broadcast shape.

    Raises:
        ValueError: (poisoned outputs under ``jit``) for a negative or NaN energy,
            a non-positive field or density, or bad ``params``.
    """
    return _er_mean_yields(*_check_inputs(energy, field, density, params))


def _er_mean_yields(energy, field, density, params: YieldParams) -> MeanYields:
    e = _safe_pos(jnp.asarray(energy))
    f = _safe_pos(jnp.asarray(field))
    n_q = e / (_work_function(params, density) * 1e-3)
    alpha = 0.067366 + density * 0.039693
    ratio = alpha * erf(0.05 * e)
    m1 = 30.66 + (6.1978 - 30.66) / (1.0 + (f / 73.855) ** 2.0318) ** 0.41883
    m3 = jnp.log10(f) * 0.13946236 + 0.52561312
    m4 = 1.82217496 + (2.82528809 - 1.82217496) / (
        1.0 + (f / 144.65029656) ** -2.80532006
    )
    m5 = n_q / e / (1.0 + ratio) - m1
    m7 = 7.02921301 + (98.27936794 - 7.02921301) / (
        1.0 + (f / 256.48156448) ** 1.29119251
    )
    m10 = 0.0508273937 + (0.1166087199 - 0.0508273937) / (
        1.0 + (f / 139.260460) ** -0.65763592
    )
    qy = (
        m1
        + (77.2931084 - m1) / (1.0 + (e / m3) ** m4) ** 0.3344049589
        + m5
        - m5 / (1.0 + (e / m7) ** 4.285781736) ** m10
    )
    ref = NEST_REF_DENSITY
    c_ti, c_ni = (1.0 / ref) ** 0.3, (1.0 / ref) ** 1.4
    c_ol = ref**1.7 / jnp.log(1.0 + c_ti * c_ni * ref**1.7)
    qy = qy * c_ol * jnp.log(1.0 + c_ti * c_ni * density**1.7) * density**-1.7
    qy = jnp.clip(qy, 0.0, n_q / e)
    n_e = qy * e
    n_ph = n_q - n_e
    return MeanYields(
        n_photons=n_ph, n_electrons=n_e, n_quanta=n_q, exciton_ratio=ratio
    )


@poison_policy
def mean_yields(
    energy, field, density, params: YieldParams, recoil_type: str
) -> MeanYields:
    """Mean quanta for ``recoil_type`` "ER" or "NR" (dispatch, static string).

    Args:
        energy: Recoil energy [keV].
        field: Drift field [V/cm].
        density: Liquid density [g/cm^3].
        params: Yield parameters.
        recoil_type: "ER" or "NR".

    Returns:
        :class:`MeanYields`.

    Raises:
        ValueError: For an unknown ``recoil_type``; for bad values as
            :func:`er_mean_yields`.
    """
    _check_recoil_type(recoil_type)
    return _mean_yields(*_check_inputs(energy, field, density, params), recoil_type)


def _check_recoil_type(recoil_type):
    if recoil_type not in ("ER", "NR"):
        raise ValueError(f"`recoil_type` must be 'ER' or 'NR'; got {recoil_type!r}.")


def _mean_yields(energy, field, density, params, recoil_type) -> MeanYields:
    if recoil_type == "NR":
        return _nr_mean_yields(energy, field, density, params)
    return _er_mean_yields(energy, field, density, params)


class QuantaStats(eqx.Module):
    """Parameters of the quanta-generation chain derived from the mean yields.

    Attributes:
        n_quanta: Mean total quanta.
        fano: Fano factor of the total quanta (variance = fano * mean).
        ion_prob: Probability that a quantum is an ion, ``1 / (1 + N_ex/N_i)``.
        recomb_prob: Mean recombination probability r (electrons = ions * (1 - r)).
        omega: Recombination excess (std of r beyond binomial).
    """

    n_quanta: Array
    fano: Array
    ion_prob: Array
    recomb_prob: Array
    omega: Array


@poison_policy
def quanta_fluctuation_params(
    energy, field, density, params: YieldParams, recoil_type: str
) -> QuantaStats:
    """Chain parameters reproducing the mean yields (NEST v2 ``GetQuanta`` logic).

    Args:
        energy: Recoil energy [keV].
        field: Drift field [V/cm].
        density: Liquid density [g/cm^3].
        params: Yield parameters.
        recoil_type: "ER" or "NR".

    Returns:
        :class:`QuantaStats`, arrays of the broadcast shape.
    """
    _check_recoil_type(recoil_type)
    args = _check_inputs(energy, field, density, params)
    return _quanta_fluctuation_params(*args, recoil_type)


def _quanta_fluctuation_params(
    energy, field, density, params: YieldParams, recoil_type: str
) -> QuantaStats:
    y = _mean_yields(energy, field, density, params, recoil_type)
    n_q = _safe_pos(y.n_quanta)
    ion_prob = 1.0 / (1.0 + y.exciton_ratio)
    elec_frac = jnp.clip(y.n_electrons / n_q, 0.0, 1.0)
    recomb = jnp.clip(1.0 - elec_frac / ion_prob, 0.0, 1.0)
    p = params
    if recoil_type == "NR":
        fano, amp, cen, wid = p.nr_fano, p.nr_omega, p.nr_omega_centre, p.nr_omega_width
    else:
        fano, amp, cen, wid = p.er_fano, p.er_omega, p.er_omega_centre, p.er_omega_width
    omega = amp * jnp.exp(-0.5 * (elec_frac - cen) ** 2 / wid**2)
    shape = jnp.broadcast_shapes(n_q.shape, omega.shape)
    return QuantaStats(
        n_quanta=n_q,
        fano=jnp.broadcast_to(fano, shape),
        ion_prob=ion_prob,
        recomb_prob=recomb,
        omega=omega,
    )


@poison_policy
def quanta_moments(stats: QuantaStats):
    """Means, variances and covariance of (n_photons, n_electrons) of the chain.

    With ``N_q ~ (mean m, var F m)``, ``N_i | N_q ~ Bin(N_q, p_i)``,
    ``N_e | N_i ~ (N_i (1-r), N_i r (1-r) + omega^2 N_i^2)`` and
    ``N_ph = N_q - N_e``, by the laws of total expectation and variance.

    Args:
        stats: Chain parameters.

    Returns:
        ``(mean_ph, mean_e, var_ph, var_e, cov_ph_e)``, arrays.
    """
    if not isinstance(stats, QuantaStats):
        raise TypeError(f"`stats` must be a QuantaStats; got {type(stats).__name__}.")
    stats = _g.guard_rules(
        stats,
        (
            _g.nonnegative("n_quanta"),
            _g.nonnegative("fano"),
            _g.in_range("ion_prob", 0.0, 1.0),
            _g.in_range("recomb_prob", 0.0, 1.0),
            _g.nonnegative("omega"),
        ),
        "stats",
    )
    return _quanta_moments(stats)


def _quanta_moments(stats: QuantaStats):
    m, f, p, r, w = (
        stats.n_quanta,
        stats.fano,
        stats.ion_prob,
        stats.recomb_prob,
        stats.omega,
    )
    mean_i = m * p
    var_i = p * (1 - p) * m + p**2 * f * m
    mean_e = mean_i * (1 - r)
    e_ni2 = var_i + mean_i**2
    var_e = mean_i * r * (1 - r) + w**2 * e_ni2 + (1 - r) ** 2 * var_i
    cov_q_e = (1 - r) * p * f * m
    var_q = f * m
    mean_ph = m - mean_e
    var_ph = var_q + var_e - 2 * cov_q_e
    cov_ph_e = cov_q_e - var_e
    return mean_ph, mean_e, var_ph, var_e, cov_ph_e
