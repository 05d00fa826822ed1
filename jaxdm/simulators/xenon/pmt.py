"""PMT arrays of a dual-phase xenon TPC: layouts, light collection, hit patterns, TBA.

Coordinates follow :mod:`.detector`: ``x, y`` [cm] horizontal, ``z`` [cm] height above
the gate (negative in the drift region, ``-height <= z <= 0``). The top array faces
down from the plane ``z_top`` (in the gas, above the anode), the bottom array faces
up from ``z_bottom`` (below the cathode). PMT index order is top array first, then
bottom array: a hit pattern has shape ``(..., n_top + n_bottom)``.

Light-collection model (analytic, per PMT, per emission point ``(x, y, z)``; the
full description is in :mod:`.light_model`):

* **Direct light**: the fraction ``Omega_i / 4 pi`` of isotropic photons that reach
  the photocathode disk of PMT ``i`` (radius ``a``) on a straight line.
  ``Omega_i = int_disk h / d^3 dA`` (``h`` the height above the PMT plane, ``d`` the
  distance to the area element) is integrated by a fixed polar quadrature
  (Gauss-Legendre in ``r^2``, uniform in azimuth; :class:`LightConfig`); on axis it
  reproduces ``2 pi (1 - h / sqrt(h^2 + a^2))``. Light in the liquid is attenuated
  with ``absorption_length``.
  S1 light to the top array crosses the liquid surface: it is transmitted (Fresnel
  factor ``surface_transmission``) only inside the critical cone
  ``sin(theta_c) = 1 / n_liquid`` (total internal reflection beyond; the cut is a
  logistic step of width ``critical_width`` in ``cos(theta)`` so that the map is
  differentiable). Refraction is neglected for S1 (straight rays): direct S1 light
  on far off-axis top PMTs is underestimated.
* **S2 (gas-gap) emission**: from the height ``z_s2`` between the liquid surface and
  the top array: direct light up; Fresnel reflection of the downward light by the
  liquid surface (a mirror source); refraction of the transmitted light into the
  liquid's critical cone toward the bottom array; diffuse reflection of the missed
  upward light by the top array's face (``gas_reflectivity``). This makes S2 light
  top-heavy (S2 TBA ~ +0.4 for the LZ-like preset at the centre; XENON1T measured
  an S2 area fraction top ~0.63, TBA ~0.26).
* **Diffuse light**: the photons not collected directly form a diffuse pool inside a
  closed cylinder (radius ``tpc_radius``, from ``z_bottom`` to ``z_top``). Per
  surface interaction a photon lands on each end cap with probability
  ``f_cap = pi R^2 / S`` and on the wall with ``f_wall`` (area fractions, ``S`` the
  total area). At the top cap it is totally reflected with probability
  ``tir_fraction`` (Lambertian light: ``1 - 1/n^2``), else reaches a top
  photocathode with the coverage ``n_top a^2 / R^2``; at the bottom cap a bottom
  photocathode with ``n_bottom a^2 / R^2``; PTFE (wall and the uncovered caps)
  reflects with ``ptfe_reflectivity``; between interactions it survives absorption
  with ``exp(-(4V/S) / absorption_length)``. Summing the geometric series, the pool
  reaches each top (bottom) PMT with probability ``p_top / (1 - p_back)``
  (``p_bottom / ...``), shared equally within an array.

A detected photon (phd) is a photon that reaches a photocathode and is converted and
collected (``pmt_efficiency`` = quantum efficiency x collection efficiency).

References: critical angle and the role of total internal reflection for the S1
bottom-array fraction: LZ TDR, arXiv:1703.09144, sec. 6.5.3; LXe refractive index
1.69 at 178 nm: Solovov et al., NIM A 516 (2004) 462, arXiv:physics/0307044; PTFE
reflectance in LXe > 97%: Neves et al., JINST 12 (2017) P01017, arXiv:1612.07965;
R11410 quantum efficiency ~34% at 175 nm: Barrow et al., JINST 12 (2017) P01024,
arXiv:1609.01654.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ..._args import check_int
from ..._poison import poison_policy
from ..._typing import Array
from . import _guards as _g


def _arr(x):
    return jnp.asarray(x, dtype=jnp.result_type(float))


class PMTArrays(eqx.Module):
    """Geometry of the two PMT arrays (arrays: vmappable and differentiable).

    Attributes:
        xy_top: Top-array PMT centres [cm], shape (n_top, 2).
        xy_bottom: Bottom-array PMT centres [cm], shape (n_bottom, 2).
        photocathode_radius: Radius ``a`` of the photosensitive disk [cm].
        pmt_radius: Outer radius of a PMT body [cm] (>= photocathode radius; two
            PMTs closer than ``2 pmt_radius`` overlap).
        tpc_radius: Inner TPC radius [cm] (the PTFE wall).
        height: Drift length, gate to cathode [cm].
        z_liquid: Height of the liquid surface above the gate [cm], > 0.
        z_s2: Mean electroluminescence (S2) emission height [cm], in
            ``(z_liquid, z_top)``.
        z_top: Height of the top photocathode plane [cm], > z_s2.
        z_bottom: Height of the bottom photocathode plane [cm], <= -height.
    """

    xy_top: Array = eqx.field(converter=_arr)
    xy_bottom: Array = eqx.field(converter=_arr)
    photocathode_radius: Array = eqx.field(converter=_arr)
    pmt_radius: Array = eqx.field(converter=_arr)
    tpc_radius: Array = eqx.field(converter=_arr)
    height: Array = eqx.field(converter=_arr)
    z_liquid: Array = eqx.field(converter=_arr)
    z_s2: Array = eqx.field(converter=_arr)
    z_top: Array = eqx.field(converter=_arr)
    z_bottom: Array = eqx.field(converter=_arr)

    @property
    def n_top(self) -> int:
        """Number of top-array PMTs (static)."""
        return self.xy_top.shape[-2]

    @property
    def n_bottom(self) -> int:
        """Number of bottom-array PMTs (static)."""
        return self.xy_bottom.shape[-2]

    @property
    def xy(self) -> Array:
        """All PMT centres [cm], top then bottom, shape (n_top + n_bottom, 2)."""
        return jnp.concatenate([self.xy_top, self.xy_bottom], axis=-2)


class OpticalParams(eqx.Module):
    """Optical parameters of the light-collection model (module docstring).

    Attributes:
        ptfe_reflectivity: Diffuse reflectance of the PTFE surfaces in LXe, [0, 1).
            Default 0.97 (Neves et al. 2017, arXiv:1612.07965: > 97%).
        n_liquid: LXe refractive index at 175 nm, > 1. Default 1.69 (Solovov et al.
            2004): critical angle 36.3 deg.
        tir_fraction: Fraction of diffuse light reaching the liquid surface from below
            that is totally reflected, [0, 1]. Default ``1 - 1/1.69^2 = 0.650``
            (Lambertian light: the transmitted fraction is ``sin^2(theta_c)``).
        surface_transmission: Transmission of direct light through the liquid
            surface inside the critical cone, [0, 1]. Default 0.934, the Fresnel
            value ``1 - ((n - 1)/(n + 1))^2`` at normal incidence for n = 1.69.
        pmt_efficiency: Quantum x collection efficiency [phd/photon] on the
            photocathode, (0, 1]. Default 0.31 (QE ~34% at 175 nm for the R11410,
            Barrow et al. 2017, times ~90% collection).
        critical_width: Width of the smooth critical-angle step in cos(theta), > 0.
        absorption_length: Effective attenuation length of the scintillation light
            in the liquid [cm], > 0 (use a huge value for no losses). Default
            580 cm: it lumps bulk absorption (measured > 100 cm at 90% CL, Baldini
            et al., NIM A 545 (2005) 753, arXiv:physics/0407033) with the grid and
            PMT-window losses the model does not resolve, and is set so that the
            LZ-like preset's volume-averaged S1 light collection (0.366) times the
            default ``pmt_efficiency`` reproduces LZ's g1 = 0.1136 phd/photon
            (arXiv:2207.03764). Recalibrate it for another detector.
        gas_reflectivity: Diffuse reflectance of the top array's face (PTFE between
            the PMTs, PMT windows) for light in the gas, [0, 1). Default 0.5, an
            assumption of this model: PTFE reflects 37-100% of xenon light
            depending on finish and medium, lower in gas than in liquid (Cichon et
            al., JINST 15 (2020) P09010, arXiv:2005.02444, and refs. therein), and
            the quartz PMT windows reflect a few percent.
    """

    ptfe_reflectivity: Array = eqx.field(default=0.97, converter=_arr)
    n_liquid: Array = eqx.field(default=1.69, converter=_arr)
    tir_fraction: Array = eqx.field(default=1.0 - 1.0 / 1.69**2, converter=_arr)
    surface_transmission: Array = eqx.field(
        default=1.0 - (0.69 / 2.69) ** 2, converter=_arr
    )
    pmt_efficiency: Array = eqx.field(default=0.31, converter=_arr)
    critical_width: Array = eqx.field(default=0.01, converter=_arr)
    absorption_length: Array = eqx.field(default=580.0, converter=_arr)
    gas_reflectivity: Array = eqx.field(default=0.5, converter=_arr)


class LightConfig(NamedTuple):
    """Static settings of the light-collection quadrature (hashable).

    Attributes:
        n_radial: Gauss-Legendre nodes in ``r^2`` over a photocathode disk.
        n_azimuthal: Uniform azimuthal nodes over a photocathode disk.
    """

    n_radial: int = 4
    n_azimuthal: int = 12


@poison_policy
def hex_layout(n: int, pitch: float) -> np.ndarray:
    """Centres of ``n`` PMTs on a hexagonal lattice, innermost first.

    The lattice ``pitch (i + j/2, j sqrt(3)/2)`` is sorted by radius, then azimuth;
    the first ``n`` points are kept (a centred hexagon of full shells for
    ``n = 1 + 3k(k+1)``).

    Args:
        n: Number of PMTs (>= 1).
        pitch: Centre-to-centre distance [cm], > 0.

    Returns:
        NumPy array of shape (n, 2) [cm].
    """
    n = check_int(n, "n", minimum=1)
    if not (np.isfinite(pitch) and pitch > 0):
        raise ValueError(f"`pitch` must be finite and > 0 cm; got {pitch!r}.")
    k = int(np.ceil(np.sqrt(n))) + 2
    i, j = np.meshgrid(np.arange(-k, k + 1), np.arange(-k, k + 1))
    x = (pitch * (i + 0.5 * j)).ravel()
    y = (pitch * j * np.sqrt(3.0) / 2.0).ravel()
    r = np.round(np.hypot(x, y) / pitch, 6)
    phi = np.round(np.mod(np.arctan2(y, x), 2 * np.pi), 6)
    order = np.lexsort((phi, r))[:n]
    return np.stack([x[order], y[order]], axis=1)


@poison_policy
def lz_like_pmts() -> PMTArrays:
    """LZ-like arrays: 253 top and 241 bottom 3-inch PMTs, TPC radius 72.8 cm.

    Counts, the 145.6 cm drift length and 145.6 cm TPC diameter: LZ TDR,
    arXiv:1703.09144 (the real top array is hexagonal at the centre and circular at
    the edge; approximated here by a hexagonal lattice). R11410-22: 76 mm body,
    64 mm photocathode. Pitches 8.4 cm (top) and 8.6 cm (bottom) are the largest
    that keep every photocathode inside the TPC radius (a jaxdm choice). Liquid
    surface 0.5 cm and anode 1.3 cm above the gate (13 mm gate-anode gap, TDR), S2
    emitted at mid gas gap (0.9 cm); top photocathodes 5 cm above the gate and the
    bottom ones 15 cm below the cathode (13.75 cm reverse-field region, TDR, plus
    the PMT window): approximate heights, assumptions of this model.
    """
    return PMTArrays(
        xy_top=hex_layout(253, 8.4),
        xy_bottom=hex_layout(241, 8.6),
        photocathode_radius=3.2,
        pmt_radius=3.81,
        tpc_radius=72.8,
        height=145.6,
        z_liquid=0.5,
        z_s2=0.9,
        z_top=5.0,
        z_bottom=-145.6 - 15.0,
    )


@poison_policy
def xenonnt_like_pmts() -> PMTArrays:
    """XENONnT-like arrays: 253 top and 241 bottom 3-inch PMTs, TPC radius 66.4 cm.

    Counts (494 R11410-21 PMTs in hexagonal arrays), the 66.4 cm radius and 148.6 cm
    drift length: XENONnT detector paper, arXiv:2402.10446 (the projection
    arXiv:2007.08796 quotes the same arrays). Pitches 7.7 cm (top) and 7.9 cm
    (bottom) are the largest that keep every photocathode inside the TPC radius
    (a jaxdm choice; 7.7 cm > the 7.62 cm body diameter). Liquid surface 0.5 cm and
    S2 at 0.65 cm above the gate (8 mm gate-anode gap), top photocathodes 4 cm above
    the gate, bottom ones 5 cm below the cathode: assumptions of this model.
    """
    return PMTArrays(
        xy_top=hex_layout(253, 7.7),
        xy_bottom=hex_layout(241, 7.9),
        photocathode_radius=3.2,
        pmt_radius=3.81,
        tpc_radius=66.4,
        height=148.6,
        z_liquid=0.5,
        z_s2=0.65,
        z_top=4.0,
        z_bottom=-148.6 - 5.0,
    )


@poison_policy
def small_test_pmts() -> PMTArrays:
    """A small test TPC: 19 + 19 PMTs (two hexagonal shells), radius 10 cm, 20 cm drift.

    Photocathode radius 1.2 cm, body radius 1.5 cm, pitch 3.5 cm (not a real
    detector; for fast tests and examples).
    """
    xy = hex_layout(19, 3.5)
    return PMTArrays(
        xy_top=xy,
        xy_bottom=xy,
        photocathode_radius=1.2,
        pmt_radius=1.5,
        tpc_radius=10.0,
        height=20.0,
        z_liquid=0.3,
        z_s2=0.5,
        z_top=3.0,
        z_bottom=-22.0,
    )


_OPTICS_RULES = (
    _g.in_range("ptfe_reflectivity", 0.0, 1.0, "left"),
    _g.in_range("n_liquid", 1.0, 10.0, "neither"),
    _g.in_range("tir_fraction", 0.0, 1.0),
    _g.in_range("surface_transmission", 0.0, 1.0),
    _g.in_range("pmt_efficiency", 0.0, 1.0, "right"),
    _g.positive("critical_width"),
    _g.positive("absorption_length"),
    _g.in_range("gas_reflectivity", 0.0, 1.0, "left"),
)

_PMT_RULES = (
    _g.finite("xy_top"),
    _g.finite("xy_bottom"),
    _g.positive("photocathode_radius"),
    _g.positive("pmt_radius"),
    _g.positive("tpc_radius"),
    _g.positive("height"),
    _g.positive("z_liquid"),
    _g.finite("z_s2"),
    _g.finite("z_top"),
    _g.finite("z_bottom"),
)


def _min_pair_distance(xp, xy):
    d = xp.sqrt(xp.sum((xy[..., :, None, :] - xy[..., None, :, :]) ** 2, axis=-1))
    n = xy.shape[-2]
    return xp.min(d + xp.where(xp.eye(n, dtype=bool), xp.inf, 0.0), axis=(-2, -1))


def _pmt_relations(name):
    rel = []
    for arr in ("xy_top", "xy_bottom"):
        rel.append(
            (
                None,
                lambda xp, p, a=arr: (
                    xp.max(xp.sqrt(xp.sum(getattr(p, a) ** 2, axis=-1)), axis=-1)
                    + p.photocathode_radius
                    > p.tpc_radius
                ),
                f"`{name}.{arr}`: a PMT photocathode lies outside the TPC (centre "
                f"radius + `{name}.photocathode_radius` > `{name}.tpc_radius`).",
            )
        )
        rel.append(
            (
                None,
                lambda xp, p, a=arr: (
                    (getattr(p, a).shape[-2] > 1)
                    & (_min_pair_distance(xp, getattr(p, a)) < 2.0 * p.pmt_radius)
                ),
                f"`{name}.{arr}`: two PMTs overlap (centre distance < 2 x "
                f"`{name}.pmt_radius`).",
            )
        )
    rel += [
        (
            None,
            lambda xp, p: p.photocathode_radius > p.pmt_radius,
            f"`{name}.photocathode_radius` must be <= `{name}.pmt_radius`.",
        ),
        (
            None,
            lambda xp, p: (p.z_s2 <= p.z_liquid) | (p.z_s2 >= p.z_top),
            f"`{name}` heights must satisfy z_liquid < z_s2 < z_top (S2 light is "
            "emitted in the gas below the top array).",
        ),
        (
            None,
            lambda xp, p: p.z_bottom > -p.height,
            f"`{name}.z_bottom` must be <= -`{name}.height` (below the cathode).",
        ),
    ]
    return tuple(rel)


@poison_policy
def check_pmt_arrays(pmts: PMTArrays, name: str = "pmts") -> PMTArrays:
    """Validate a PMT layout (eagerly: ValueError; traced: the poison policy).

    Raises for an empty array, overlapping PMTs, photocathodes outside the TPC,
    heights out of order or non-finite values, naming the offending field.
    """
    if not isinstance(pmts, PMTArrays):
        raise TypeError(f"`{name}` must be PMTArrays; got {type(pmts).__name__}.")
    for arr in ("xy_top", "xy_bottom"):
        shape = getattr(pmts, arr).shape
        if len(shape) != 2 or shape[-1] != 2:
            raise ValueError(f"`{name}.{arr}` must have shape (n, 2); got {shape}.")
        if shape[0] == 0:
            raise ValueError(f"`{name}.{arr}` must hold at least one PMT; got 0.")
    return _g.guard_rules(pmts, _PMT_RULES, name, relation=_pmt_relations(name))


@poison_policy
def check_optics(optics: OpticalParams, name: str = "optics") -> OpticalParams:
    """Validate optical parameters (eagerly: ValueError; traced: poison policy)."""
    if not isinstance(optics, OpticalParams):
        raise TypeError(f"`{name}` must be OpticalParams; got {type(optics).__name__}.")
    return _g.guard_rules(optics, _OPTICS_RULES, name)
