"""Dual-phase xenon TPC response: parameters, presets, geometry, corrections.

Coordinates: ``x, y`` [cm] in the horizontal plane, ``z`` [cm] the height relative to
the gate electrode, negative in the liquid (``-height <= z <= 0``); the drift time is
``-z / drift_velocity``. S1 and S2 are in photons detected (phd), the LZ convention
(for XENONnT, read PE as phd).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from ..._checks import check_key
from ..._poison import poison_policy
from ..._random import uniform
from ..._typing import Array
from . import _guards as _g


def _arr(x):
    return jnp.asarray(x, dtype=jnp.result_type(float))


class Detector(eqx.Module):
    """Detector parameters (arrays: vmappable over parameter sets and differentiable).

    Attributes:
        g1: Photon detection efficiency [phd/photon], in (0, 1].
        p_dpe: Probability that a detected photon gives two photoelectrons, [0, 1).
        spe_resolution: PMT single-photoelectron resolution (relative std).
        s1_coincidence: Minimum number of detected photons (n-fold coincidence) [phd].
        extraction_efficiency: Electron extraction efficiency into the gas, (0, 1].
        se_gain: Single-electron S2 gain [phd/electron]; ``g2 = extraction * se_gain``.
        se_width: Std of the single-electron S2 size [phd].
        electron_lifetime: Free-electron lifetime [us], > 0.
        drift_velocity: Electron drift velocity [cm/us], > 0.
        drift_field: Drift field [V/cm], > 0.
        density: Liquid xenon density [g/cm^3].
        radius: TPC radius [cm].
        height: TPC height, gate to cathode [cm].
        fid_radius: Fiducial radius [cm] (<= radius).
        fid_z_min: Lower fiducial z [cm] (>= -height).
        fid_z_max: Upper fiducial z [cm] (<= 0, > fid_z_min).
        lce_slope: Relative change of S1 light collection from top (z = 0) to bottom
            (z = -height); ``lce(z) = 1 + lce_slope * (-z / height - 1/2)``.
        s2_threshold: Raw S2 threshold [phd].
        pos_res: Position-resolution scale [cm sqrt(phd)]:
            ``sigma_xy = pos_res / sqrt(S2)`` (1/sqrt(S2) scaling of LUX, JINST 13
            P02001 (2018), arXiv:1710.02752).
        diffusion_long: Longitudinal diffusion constant D_L [cm^2/us].
        s2_width0: Intrinsic S2 width (Gaussian sigma) at zero drift [us].
        s2_area_scale: Mean recorded S2 area per photoelectron (dimensionless,
            > 0; default 1): the S2 is ``s2_area_scale * (se_gain n_ext + noise)``,
            so the effective charge gain is ``g2_effective = s2_area_scale * g2``.
            NEST's full S2 draws the pulse area as ``Gauss(N_phe / NewMean, ...)``
            with ``NewMean`` the mean of a single-phe Gaussian truncated at zero
            (``RandomGen::FindNewMean(sPEres)`` in NEST v2.4, src/RandomGen.cpp), so
            a detector configured like a NEST detector file reproduces NEST's S2
            with ``s2_area_scale = nest_s2_area_scale(sPEres)`` (0.9481 for NEST's
            default sPEres = 0.58: NEST's effective gain is 5.2% below its quoted
            g2).
    """

    g1: Array = eqx.field(converter=_arr)
    p_dpe: Array = eqx.field(converter=_arr)
    spe_resolution: Array = eqx.field(converter=_arr)
    s1_coincidence: Array = eqx.field(converter=_arr)
    extraction_efficiency: Array = eqx.field(converter=_arr)
    se_gain: Array = eqx.field(converter=_arr)
    se_width: Array = eqx.field(converter=_arr)
    electron_lifetime: Array = eqx.field(converter=_arr)
    drift_velocity: Array = eqx.field(converter=_arr)
    drift_field: Array = eqx.field(converter=_arr)
    density: Array = eqx.field(converter=_arr)
    radius: Array = eqx.field(converter=_arr)
    height: Array = eqx.field(converter=_arr)
    fid_radius: Array = eqx.field(converter=_arr)
    fid_z_min: Array = eqx.field(converter=_arr)
    fid_z_max: Array = eqx.field(converter=_arr)
    lce_slope: Array = eqx.field(converter=_arr)
    s2_threshold: Array = eqx.field(converter=_arr)
    pos_res: Array = eqx.field(converter=_arr)
    diffusion_long: Array = eqx.field(converter=_arr)
    s2_width0: Array = eqx.field(converter=_arr)
    s2_area_scale: Array = eqx.field(default=1.0, converter=_arr)

    @property
    def g2(self) -> Array:
        """Charge gain [phd per electron at the interaction site]: extraction * SE."""
        return self.extraction_efficiency * self.se_gain

    @property
    def g2_effective(self) -> Array:
        """Effective charge gain ``s2_area_scale * g2`` [phd per electron].

        The mean corrected S2 per electron at the interaction site, what a
        calibration of cS2 would measure.
        """
        return self.s2_area_scale * self.g2

    @property
    def fiducial_mass_tonne(self) -> Array:
        """Fiducial liquid-xenon mass [tonne]."""
        vol = jnp.pi * self.fid_radius**2 * (self.fid_z_max - self.fid_z_min)
        return vol * self.density * 1e-6


@poison_policy
def lz_like() -> Detector:
    """LZ-like detector (first WIMP search, WS2022).

    g1 = 0.1136 phd/photon, g2 = 47.1 phd/e with 80.5% extraction (SE = 58.5 phd),
    193 V/cm, 3-fold S1 coincidence, raw S2 > 600 phd, fiducial r < 68.8 cm and drift
    time 86-936.5 us: LZ Collaboration, PRL 131, 041002 (2023), arXiv:2207.03764;
    electron lifetime 6500 us, p_dpe = 0.214, SPE resolution 0.31, 174.1 K: NEST
    v2.4 ``LZ_WS2022`` detector file (nestpy 2.1.3). Density 2.888 g/cm^3 (NEST at
    174.1 K, 1.79 bar). TPC 145.6 cm tall, 72.8 cm radius (LZ TDR, arXiv:1703.09144);
    drift velocity 0.153 cm/us = 145.6 cm / 951 us maximum drift time. D_L = 25 cm^2/s
    ~ 2.5e-5 cm^2/us (Njoya et al., NIM A 972, 163965 (2020), arXiv:1911.11580, at
    ~200 V/cm); position resolution scale: assumption matched to ~1 cm at S2 = 1000
    phd.
    """
    v = 0.153
    return Detector(
        g1=0.1136,
        p_dpe=0.214,
        spe_resolution=0.31,
        s1_coincidence=3.0,
        extraction_efficiency=0.805,
        se_gain=58.5,
        se_width=0.25 * 58.5,
        electron_lifetime=6500.0,
        drift_velocity=v,
        drift_field=193.0,
        density=2.888,
        radius=72.8,
        height=145.6,
        fid_radius=68.8,
        fid_z_min=-936.5 * v,
        fid_z_max=-86.0 * v,
        lce_slope=0.3,
        s2_threshold=600.0,
        pos_res=30.0,
        diffusion_long=2.5e-5,
        s2_width0=0.4,
    )


@poison_policy
def xenonnt_like() -> Detector:
    """XENONnT-like detector (first WIMP search, SR0).

    g1 = 0.151 PE/photon, g2 = 16.5 PE/e with 53% extraction (SE = 31.1 PE),
    drift field 23 V/cm, drift velocity 0.0675 cm/us, electron lifetime ~15 ms,
    fiducial mass 4.18 t, S2 > 200 PE, 3-fold coincidence: XENON Collaboration, PRL 131,
    041003 (2023), arXiv:2303.14729; TPC 148.6 cm tall, 66.4 cm radius and
    p_dpe ~ 0.2: XENONnT detector paper, arXiv:2402.10446. D_L = 31 cm^2/s
    (3.1e-5 cm^2/us, ibid.); density 2.862 g/cm^3 (XENON simulations at 177 K). The
    fiducial cylinder (r < 62.1 cm, -134.2 < z < -13.6 cm) gives 4.18 t.
    """
    return Detector(
        g1=0.151,
        p_dpe=0.2,
        spe_resolution=0.35,
        s1_coincidence=3.0,
        extraction_efficiency=0.53,
        se_gain=31.1,
        se_width=0.25 * 31.1,
        electron_lifetime=15000.0,
        drift_velocity=0.0675,
        drift_field=23.0,
        density=2.862,
        radius=66.4,
        height=148.6,
        fid_radius=62.1,
        fid_z_min=-134.2,
        fid_z_max=-13.6,
        lce_slope=0.3,
        s2_threshold=200.0,
        pos_res=30.0,
        diffusion_long=3.1e-5,
        s2_width0=0.4,
    )


@poison_policy
def nest_s2_area_scale(spe_resolution):
    """NEST's S2 area scale ``1 / NewMean`` for a single-phe resolution.

    ``NewMean = 1 + sigma phi(1/sigma) / (1 - Phi(-1/sigma))`` is the mean of a unit
    Gaussian of width ``sigma`` truncated at zero (``RandomGen::FindNewMean``, NEST
    v2.4 src/RandomGen.cpp); NEST's full S2 (``NESTcalc::GetS2``) draws the pulse
    area with mean ``N_phe / NewMean``. NewMean = 1.0547 at sigma = 0.58 (NEST's
    default ``DetectorExample_XENON10``), 1.0007 at sigma = 0.31 (LZ_WS2022).

    Args:
        spe_resolution: Single-phe resolution sigma (relative), > 0.

    Returns:
        ``1 / NewMean`` (dimensionless), shape of ``spe_resolution``.
    """
    sig = _g.guard_values(spe_resolution, "spe_resolution", low=0.0, allow_equal=False)
    a = 1.0 / sig
    phi = jnp.exp(-0.5 * a * a) / math.sqrt(2.0 * math.pi)
    new_mean = 1.0 + phi / jax.scipy.special.ndtr(a) * sig
    return 1.0 / new_mean


@poison_policy
def nest_xenon10_like() -> Detector:
    """NEST's default detector (``DetectorExample_XENON10``, NEST v2.4) in jaxdm form.

    g1 = 0.073 phd/photon, p_dpe = 0.2, sPEres = 0.58, S1 coincidence 2, drift field
    730 V/cm, electron lifetime 2200 us, raw S2 threshold 300 phe (250 phd),
    fiducial drift time 20-60 us and radius 5 cm: the detector file. Derived with NEST
    itself (nestpy 2.1.3, ``NESTcalc.SetDensity(177, 2.14)``, ``SetDriftVelocity``,
    ``CalculateG2``): density 2.8611 g/cm^3 at 177 K and 2.14 bar, drift velocity
    0.19141 cm/us, extraction efficiency 0.95767, single-electron size 19.952 phd
    (g2 = 19.107 phd/e). ``s2_area_scale = nest_s2_area_scale(0.58)`` = 0.94814
    reproduces NEST's full-S2 pulse area (effective g2 18.116 phd/e). NEST's 3%
    linear S1/S2 noise, S1 pulse-shape and spike counting are not modelled; the S1
    light collection is flat (``FitS1 = 1``), as in the file. Positions and
    diffusion: TPC radius 5 cm, 14.65 cm gate-to-cathode; ``pos_res`` and
    ``diffusion_long`` are jaxdm's generic values (they do not enter the S1/S2).
    """
    v = 0.19141
    return Detector(
        g1=0.073,
        p_dpe=0.2,
        spe_resolution=0.58,
        s1_coincidence=2.0,
        extraction_efficiency=0.95767,
        se_gain=19.952,
        se_width=0.25 * 19.952,
        electron_lifetime=2200.0,
        drift_velocity=v,
        drift_field=730.0,
        density=2.8611,
        radius=5.0,
        height=14.65,
        fid_radius=5.0,
        fid_z_min=-60.0 * v,
        fid_z_max=-20.0 * v,
        lce_slope=0.0,
        s2_threshold=250.0,
        pos_res=30.0,
        diffusion_long=3.0e-5,
        s2_width0=0.4,
        s2_area_scale=float(nest_s2_area_scale(0.58)),
    )


_DETECTOR_RULES = (
    _g.in_range("g1", 0.0, 1.0, "right"),
    _g.in_range("p_dpe", 0.0, 1.0, "left"),
    _g.nonnegative("spe_resolution"),
    _g.nonnegative("s1_coincidence"),
    _g.in_range("extraction_efficiency", 0.0, 1.0, "right"),
    _g.positive("se_gain"),
    _g.nonnegative("se_width"),
    _g.positive("electron_lifetime"),
    _g.positive("drift_velocity"),
    _g.positive("drift_field"),
    _g.positive("density"),
    _g.positive("radius"),
    _g.positive("height"),
    _g.positive("fid_radius"),
    _g.finite("fid_z_min"),
    _g.finite("fid_z_max"),
    _g.in_range("lce_slope", -2.0, 2.0, "neither"),
    _g.nonnegative("s2_threshold"),
    _g.positive("pos_res"),
    _g.nonnegative("diffusion_long"),
    _g.nonnegative("s2_width0"),
    _g.positive("s2_area_scale"),
)


def _detector_relations(name):
    return (
        (
            None,
            lambda xp, d: d.fid_radius > d.radius,
            f"`{name}.fid_radius` exceeds the TPC radius `{name}.radius`: the "
            "fiducial volume must lie inside the TPC.",
        ),
        (
            None,
            lambda xp, d: (d.fid_z_min < -d.height) | (d.fid_z_max > 0),
            f"`{name}` fiducial z range [fid_z_min, fid_z_max] must lie inside the "
            f"TPC [-{name}.height, 0] cm.",
        ),
        (
            None,
            lambda xp, d: d.fid_z_min >= d.fid_z_max,
            f"`{name}.fid_z_min` must be < `{name}.fid_z_max`.",
        ),
    )


@poison_policy
def check_detector(
    detector: Detector, name: str = "detector", *, deferred=None
) -> Detector:
    """Validate detector parameters, eagerly and inside traced code.

    Concrete values raise at once; traced (``jit``, ``vmap``, ``grad``) the xenon
    poison policy applies (xenon/_guards.py): bad fields are recorded and replaced by
    safe values and the calling public function's outputs are poisoned. Use the
    returned detector downstream.

    Args:
        detector: Parameters to check (any batch shape).
        name: Argument name used in messages.
        deferred: Optional list collecting the traced checks instead of attaching
            them (``_guards.guard_rules``; the caller attaches them once).

    Returns:
        ``detector`` (carrying the checks when traced).

    Raises:
        TypeError: If ``detector`` is not a :class:`Detector`.
        ValueError: Naming the offending field, for g1 outside (0, 1], negative or
            zero lifetimes, velocities, fields, a fiducial volume outside the TPC,
            NaN anywhere, ...
    """
    if not isinstance(detector, Detector):
        raise TypeError(f"`{name}` must be a Detector; got {type(detector).__name__}.")
    return _g.guard_rules(
        detector,
        _DETECTOR_RULES,
        name,
        relation=_detector_relations(name),
        deferred=deferred,
    )


@poison_policy
def sample_positions(key, detector: Detector, n: int):
    """Uniform interaction positions inside the fiducial cylinder.

    Args:
        key: Typed PRNG key.
        detector: Detector (unbatched).
        n: Number of positions (static).

    Returns:
        ``(x, y, z)`` [cm], each of shape (n,).
    """
    check_key(key)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"`n` must be a positive int; got {n!r}.")
    detector = check_detector(detector)
    return _sample_positions(key, detector, n)


def _sample_positions(key, detector: Detector, n: int):
    u = uniform(key, (3, n))
    r = detector.fid_radius * jnp.sqrt(u[0])
    phi = 2 * jnp.pi * u[1]
    z = detector.fid_z_min + (detector.fid_z_max - detector.fid_z_min) * u[2]
    return r * jnp.cos(phi), r * jnp.sin(phi), z


def _guard_z(z, detector):
    """Check a height argument (finite, <= 0 cm) and the detector."""
    return _g.guard_values(z, "z", upper=0.0), check_detector(detector)


@poison_policy
def drift_time(z, detector: Detector):
    """Drift time [us] of electrons from height ``z`` [cm] (<= 0) to the gate."""
    return _drift_time(*_guard_z(z, detector))


def _drift_time(z, detector: Detector):
    return -z / detector.drift_velocity


@poison_policy
def electron_survival(z, detector: Detector):
    """Fraction of electrons surviving attachment during the drift from ``z`` [cm]."""
    return _electron_survival(*_guard_z(z, detector))


def _electron_survival(z, detector: Detector):
    return jnp.exp(-_drift_time(z, detector) / detector.electron_lifetime)


@poison_policy
def light_collection(z, detector: Detector):
    """Relative S1 light collection at height ``z`` [cm] (mean 1 over the height)."""
    return _light_collection(*_guard_z(z, detector))


def _light_collection(z, detector: Detector):
    return 1.0 + detector.lce_slope * (-z / detector.height - 0.5)


@poison_policy
def s2_width(z, detector: Detector):
    """Mean S2 width (Gaussian sigma) [us] from longitudinal diffusion.

    ``sigma_t = sqrt(w0^2 + 2 D_L t_d / v_d^2)`` (sigma_t grows as sqrt(drift time)),
    as used for S2-only depth estimates (XENON1T S2-only, PRL 123, 251801 (2019),
    arXiv:1907.11485).
    """
    return _s2_width(*_guard_z(z, detector))


def _s2_width(z, detector: Detector):
    t = _drift_time(z, detector)
    return jnp.sqrt(
        detector.s2_width0**2
        + 2.0 * detector.diffusion_long * t / detector.drift_velocity**2
    )
