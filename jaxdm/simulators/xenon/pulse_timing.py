"""Pulse-timing physics of S1 and S2: parameters, time densities, per-site response.

S1 photons are emitted by the singlet (tau_s) and triplet (tau_t) excimer states;
their times are ``t_site + Exp(tau) + Normal(0, sigma_s1)`` where ``sigma_s1``
collects the PMT transit-time spread and the optical path spread. The singlet
fraction ``f_s = R / (1 + R)`` uses NEST v2's singlet/triplet ratios ``R`` (NEST
v2.x ``NESTcalc::PhotonTime``, Szydagis et al. arXiv:2211.10726; time constants
tau_s = 3.27 ns, tau_t = 23.97 ns and the NR ratio from arXiv:1802.06162, the
ER ratio for recombination photons ``0.069 E^-0.12``; the earlier world averages
3.1 ns / 24 ns are Kubota et al. 1979, Hitachi et al. 1983, Mock et al. 2014,
arXiv:1310.1117): ``R_NR = 0.15 E^0.15``, ``R_ER = 0.069 E^-0.12`` (E in keV), so
``f_s`` is ~0.17 for NR and ~0.05 for ER at 10 keV. NEST's ER recombination delay
(~1 ns at a few hundred V/cm) is neglected. Gas events (above the anode) use NEST's
gas constants (tau_s = 5.18 ns, tau_t = 100.1 ns, R = 0.1).

S2 electrons arrive at the liquid surface after the drift time ``t_d = -z / v_d``
spread by longitudinal diffusion, ``sigma_t = sqrt(2 D_L t_d) / v_d`` (Njoya et al.
arXiv:1911.11580 for D_L; the detector presets carry it); each extracted electron
emits its electroluminescence light uniformly while it crosses the gas gap, a box of
duration ``w_EL = gas_gap / v_gas`` (so the mean pulse is a box convolved with a
Gaussian: a smoothed trapezoid). Grid events get an extra Gaussian spread from the
non-uniform field around the wires (phenomenological, :class:`PulseParams`).

The PMT response: a photon gives one photoelectron, or two with probability
``detector.p_dpe`` (double photoelectron emission; Faham et al. 2015,
arXiv:1506.08748, measured 17-24% at 175 nm for R11410 PMTs), each photoelectron an
area ``Normal(1, detector.spe_resolution)``; areas are reported in phd, i.e. divided by
``1 + p_dpe``. The single-photoelectron pulse shape is an exponentially modified
Gaussian (rise ``spe_sigma``, decay ``spe_tau``) discretised on the sample grid.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
from jax.scipy.special import log_ndtr, ndtr

from ..._poison import poison_policy
from ..._typing import Array
from . import _guards as _g
from .detector import Detector
from .interactions import BELOW_CATHODE, CATHODE, GAS, GATE


def _arr(x):
    return jnp.asarray(x, dtype=jnp.result_type(float))


class PulseParams(eqx.Module):
    """Pulse-shape parameters (arrays: differentiable, vmappable).

    Attributes:
        tau_singlet: Singlet lifetime [ns] (NEST v2: 3.27).
        tau_triplet: Triplet lifetime [ns] (NEST v2: 23.97).
        nr_st_coeff, nr_st_power: NR singlet/triplet ratio ``c E^p`` (0.15, 0.15).
        er_st_coeff, er_st_power: ER ratio ``c E^p`` (0.069, -0.12).
        s1_time_spread: Gaussian spread of S1 photon arrival [ns] (PMT transit-time
            spread and optical paths; assumption: 5 ns).
        spe_sigma: SPE pulse Gaussian rise [ns] (assumption: 3 ns).
        spe_tau: SPE pulse exponential decay [ns] (assumption: 8 ns).
        liquid_surface: Liquid level above the gate [cm] (LZ-like 0.5 cm: gate-anode
            1.3 cm with an 8 mm gas gap, LZ TDR arXiv:1703.09144).
        anode_height: Anode height above the gate [cm] (1.3).
        gas_drift_velocity: Electron drift velocity in the gas gap [cm/us]
            (assumption 0.8, giving a 1 us electroluminescence box).
        gate_stretch: Extra Gaussian S2 spread of gate-grid events [us]
            (phenomenological, see :mod:`.event_classes`), scaled per event by
            ``0.5 + d / (grid_pitch / 2)`` in [0.5, 1.5], ``d`` the distance in x to
            the nearest wire (wires along y at multiples of ``grid_pitch``).
        cathode_stretch: Extra spread of cathode-grid events [us] (same scaling).
        grid_pitch: Grid wire pitch [cm] (LZ-like 0.5 cm, LZ TDR arXiv:1703.09144).
        gas_el_width: Electroluminescence duration of above-anode events [us]
            (light emitted close to the anode wires: a fast S2; assumption 0.15).
        gas_gain_fraction: S2 light per electron of above-anode events relative to
            the single-electron gain (assumption 0.5).
        gas_drift_velocity_above: Electron drift speed above the anode [cm/us]
            (weak field; assumption 0.3).
        tau_singlet_gas, tau_triplet_gas, st_ratio_gas: Gas S1 constants (NEST v2:
            5.18 ns, 100.1 ns, 0.1).
    """

    tau_singlet: Array = eqx.field(default=3.27, converter=_arr)
    tau_triplet: Array = eqx.field(default=23.97, converter=_arr)
    nr_st_coeff: Array = eqx.field(default=0.15, converter=_arr)
    nr_st_power: Array = eqx.field(default=0.15, converter=_arr)
    er_st_coeff: Array = eqx.field(default=0.069, converter=_arr)
    er_st_power: Array = eqx.field(default=-0.12, converter=_arr)
    s1_time_spread: Array = eqx.field(default=5.0, converter=_arr)
    spe_sigma: Array = eqx.field(default=3.0, converter=_arr)
    spe_tau: Array = eqx.field(default=8.0, converter=_arr)
    liquid_surface: Array = eqx.field(default=0.5, converter=_arr)
    anode_height: Array = eqx.field(default=1.3, converter=_arr)
    gas_drift_velocity: Array = eqx.field(default=0.8, converter=_arr)
    gate_stretch: Array = eqx.field(default=1.0, converter=_arr)
    cathode_stretch: Array = eqx.field(default=1.5, converter=_arr)
    grid_pitch: Array = eqx.field(default=0.5, converter=_arr)
    gas_el_width: Array = eqx.field(default=0.15, converter=_arr)
    gas_gain_fraction: Array = eqx.field(default=0.5, converter=_arr)
    gas_drift_velocity_above: Array = eqx.field(default=0.3, converter=_arr)
    tau_singlet_gas: Array = eqx.field(default=5.18, converter=_arr)
    tau_triplet_gas: Array = eqx.field(default=100.1, converter=_arr)
    st_ratio_gas: Array = eqx.field(default=0.1, converter=_arr)

    @property
    def el_width(self) -> Array:
        """Electroluminescence box duration [us]: gas gap / gas drift velocity."""
        return (self.anode_height - self.liquid_surface) / self.gas_drift_velocity


_POSITIVE = (
    "tau_singlet",
    "tau_triplet",
    "nr_st_coeff",
    "er_st_coeff",
    "s1_time_spread",
    "spe_sigma",
    "spe_tau",
    "liquid_surface",
    "gas_drift_velocity",
    "gas_el_width",
    "grid_pitch",
    "gas_gain_fraction",
    "gas_drift_velocity_above",
    "tau_singlet_gas",
    "tau_triplet_gas",
    "st_ratio_gas",
)
_PULSE_RULES = tuple(_g.positive(f) for f in _POSITIVE) + (
    _g.finite("nr_st_power"),
    _g.finite("er_st_power"),
    _g.nonnegative("gate_stretch"),
    _g.nonnegative("cathode_stretch"),
)


@poison_policy
def check_pulse(pulse: PulseParams, name: str = "pulse") -> PulseParams:
    """Validate pulse parameters eagerly and under ``jit`` (xenon poison policy)."""
    if not isinstance(pulse, PulseParams):
        raise TypeError(f"`{name}` must be a PulseParams; got {type(pulse).__name__}.")
    rel = (
        (
            None,
            lambda xp, p: p.anode_height <= p.liquid_surface,
            f"`{name}.anode_height` must exceed `{name}.liquid_surface` (the gas gap "
            "lies between them).",
        ),
        (
            None,
            lambda xp, p: p.tau_triplet <= p.tau_singlet,
            f"`{name}.tau_triplet` must exceed `{name}.tau_singlet`.",
        ),
    )
    return _g.guard_rules(pulse, _PULSE_RULES, name, relation=rel)


@poison_policy
def singlet_fraction(energy, recoil_type, pulse: PulseParams):
    """S1 singlet fraction ``R / (1 + R)`` with NEST v2's ratios (module docstring).

    Args:
        energy: Recoil energy [keV] (> 0; values below 0.01 keV use 0.01).
        recoil_type: 0 (ER) or 1 (NR), broadcastable with ``energy``.
        pulse: Pulse parameters.

    Returns:
        Singlet fraction in (0, 1), shape of the broadcast inputs.
    """
    return _singlet_fraction(energy, recoil_type, pulse)


def _singlet_fraction(energy, recoil_type, pulse):
    # Unchecked implementation: site_response runs it inside the vmaps of the
    # renderers, where a public (poison-policy) call would fall back to raising.
    e = jnp.maximum(jnp.asarray(energy, jnp.result_type(float)), 0.01)
    r_nr = pulse.nr_st_coeff * e**pulse.nr_st_power
    r_er = pulse.er_st_coeff * e**pulse.er_st_power
    r = jnp.where(jnp.asarray(recoil_type) == 1, r_nr, r_er)
    return r / (1.0 + r)


def emg_cdf(t, sigma, tau):
    """CDF of ``Exp(tau) + Normal(0, sigma)`` at ``t`` (all in the same unit).

    ``Phi(t/s) - exp(-t/tau + s^2/(2 tau^2)) Phi(t/s - s/tau)``, the second term in
    log space (``log_ndtr``) so that it neither overflows nor loses precision.
    """
    a = t / sigma
    b = sigma / tau
    log_second = -t / tau + 0.5 * b * b + log_ndtr(a - b)
    return ndtr(a) - jnp.exp(log_second)


def _ramp_integral(x, sigma):
    """``int_{-inf}^x Phi(u / sigma) du = x Phi(x/s) + s phi(x/s)``."""
    a = x / sigma
    return x * ndtr(a) + sigma * jnp.exp(-0.5 * a * a) / math.sqrt(2.0 * math.pi)


def box_gauss_cdf(t, sigma, width):
    """CDF of ``Uniform(0, width) + Normal(0, sigma)`` at ``t`` (same unit)."""
    return (_ramp_integral(t, sigma) - _ramp_integral(t - width, sigma)) / width


def spe_kernel(pulse: PulseParams, dt: float, n_taps: int):
    """Single-photoelectron pulse on the sample grid: area 1 over ``n_taps`` samples.

    Tap ``j`` is the EMG pulse's area in ``[j dt, (j+1) dt)`` with the pulse's
    Gaussian centred 2 sigma after the photon (a causal rise), renormalised to sum 1
    over the taps (the truncated tail beyond ``n_taps dt`` is < 1e-3 for the defaults
    at 10 ns, 8 taps).
    """
    edges = jnp.arange(n_taps + 1, dtype=jnp.result_type(float)) * dt
    c = emg_cdf(edges - 2.0 * pulse.spe_sigma, pulse.spe_sigma, pulse.spe_tau)
    k = jnp.diff(c)
    return k / jnp.sum(k)


class SiteResponse(eqx.Module):
    """Detector response of each site (shapes of the record's per-site fields).

    Attributes:
        p_detect: S1 photon detection probability [phd/photon].
        f_singlet: S1 singlet fraction.
        tau_s, tau_t: S1 singlet/triplet lifetimes [ns].
        p_charge: Probability that an electron reaches the gas and emits (survival
            times extraction; 0 below the cathode).
        t_s2: Mean electron arrival time at the electroluminescence region [ns]
            (interaction time + drift time).
        sigma_s2: Gaussian spread of the arrival times [ns].
        el_width: Electroluminescence duration [ns].
        gain: Mean S2 light per emitting electron [phd].
        gain_sd: Its standard deviation [phd].
    """

    p_detect: Array
    f_singlet: Array
    tau_s: Array
    tau_t: Array
    p_charge: Array
    t_s2: Array
    sigma_s2: Array
    el_width: Array
    gain: Array
    gain_sd: Array


# Floor of the diffusion spread [us]: keeps sqrt differentiable at zero drift.
_SIGMA_FLOOR_US = 1e-3


def site_response(record, detector: Detector, pulse: PulseParams) -> SiteResponse:
    """Per-site detection, timing and gain (unchecked: callers check the inputs).

    Liquid/grid sites drift ``t_d = -z / v_d`` (``z`` clipped to ``[-height, 0]``),
    survive attachment with ``exp(-t_d / tau_e)`` and are extracted with
    ``detector.extraction_efficiency``; grid sites get the extra spread of
    :class:`PulseParams`. Below-cathode sites emit no S2. Gas sites drift down to the
    anode at ``gas_drift_velocity_above`` and emit a short, weaker S2.
    """
    reg = record.region
    in_gas = reg == GAS
    z_liq = jnp.clip(record.z, -detector.height, 0.0)
    lce = 1.0 + detector.lce_slope * (-z_liq / detector.height - 0.5)
    # S1 light of gas events: the top of the TPC (lce at z = 0).
    lce = jnp.where(in_gas, 1.0 - 0.5 * detector.lce_slope, lce)
    p_detect = jnp.clip(detector.g1 * lce, 0.0, 1.0)

    f_liq = _singlet_fraction(record.energy, record.recoil_type, pulse)
    f_gas = pulse.st_ratio_gas / (1.0 + pulse.st_ratio_gas)
    f_singlet = jnp.where(in_gas, f_gas, f_liq)
    tau_s = jnp.where(in_gas, pulse.tau_singlet_gas, pulse.tau_singlet)
    tau_t = jnp.where(in_gas, pulse.tau_triplet_gas, pulse.tau_triplet)

    t_d = -z_liq / detector.drift_velocity  # [us]
    var_diff = 2.0 * detector.diffusion_long * t_d / detector.drift_velocity**2
    stretch = jnp.where(
        reg == GATE,
        pulse.gate_stretch,
        jnp.where(reg == CATHODE, pulse.cathode_stretch, 0.0),
    )
    half = 0.5 * pulse.grid_pitch
    d_wire = jnp.abs(jnp.mod(record.x + half, pulse.grid_pitch) - half)
    stretch = stretch * (0.5 + d_wire / half)
    above = jnp.maximum(record.z - pulse.anode_height, 0.0)
    t_gas = above / pulse.gas_drift_velocity_above
    t_d = jnp.where(in_gas, t_gas, t_d)
    var = jnp.where(in_gas, 0.0, var_diff) + stretch**2 + _SIGMA_FLOOR_US**2
    surv = jnp.exp(-t_d / detector.electron_lifetime) * detector.extraction_efficiency
    p_charge = jnp.where(in_gas, 1.0, jnp.where(reg == BELOW_CATHODE, 0.0, surv))
    gain_scale = jnp.where(in_gas, pulse.gas_gain_fraction, 1.0)
    gain = detector.s2_area_scale * detector.se_gain * gain_scale
    gain_sd = detector.s2_area_scale * detector.se_width * gain_scale
    el_width = jnp.where(in_gas, pulse.gas_el_width, pulse.el_width)
    return SiteResponse(
        p_detect=p_detect,
        f_singlet=f_singlet,
        tau_s=tau_s,
        tau_t=tau_t,
        p_charge=p_charge,
        t_s2=record.t + 1e3 * t_d,
        sigma_s2=1e3 * jnp.sqrt(var),
        el_width=1e3 * el_width * jnp.ones_like(t_d),
        gain=gain * jnp.ones_like(t_d),
        gain_sd=gain_sd * jnp.ones_like(t_d),
    )


@poison_policy
def intrinsic_s2_width(pulse: PulseParams, dt: float = 10.0, n_taps: int = 8):
    """Drift-independent S2 sigma [us]: EL box ``w/sqrt(12)`` and the SPE pulse.

    Setting ``detector.s2_width0`` to this makes the fast path's Gaussian S2 width
    ``sqrt(s2_width0^2 + 2 D_L t_d / v_d^2)`` the RMS width of the rendered S2
    (up to the sampling), which is how :mod:`.pulses` is compared with it.
    """
    k = spe_kernel(pulse, dt, n_taps)
    j = jnp.arange(n_taps) * dt
    m = jnp.sum(k * j)
    var_spe = jnp.sum(k * (j - m) ** 2) + dt**2 / 12.0
    return jnp.sqrt((pulse.el_width * 1e3) ** 2 / 12.0 + var_spe) * 1e-3
