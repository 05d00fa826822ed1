"""Regions of interest: exact solid angles, fractional HEALPix weights, ROI J/D-factors.

The standard inner-Galaxy ROI is a disc of radius 25 deg around the Galactic Centre
with the plane ``|b| < 2 deg`` masked (Calore et al. 2015, arXiv 1409.0042; NPTFit,
Mishra-Sharma et al. 2017, arXiv 1612.03173); :class:`RegionOfInterest` also takes a
longitude cut ``|l| <= l_max``.

Selecting HEALPix pixels by their centres pixelises the boundary: at nside 128 the
selected solid angle exceeds the ROI's by 0.41%, and a J-weighted sum by ~1% (the
``|b| = 2 deg`` edge runs close to the cusp). Here every pixel instead carries the
fraction of its area inside the ROI, found by sub-sampling: the pixel is split into
its nested children at ``nside * sub``, and children within one child radius of the
boundary are split again ``deep x deep`` times (the fraction of those centres inside).
The ROI integrals evaluate the integrand at the children's centres, so the result is
the integral over the ROI, not over the pixelised ROI, to ~1e-4 at nside 128.
"""

from __future__ import annotations

import dataclasses
import functools

import healpy as hp
import jax.numpy as jnp
import numpy as np

from ...constants import DEGREE
from .templates import (
    S_MAX_CONVERGED,
    GNFWHalo,
    checked_halo,
    d_factor_map,
    j_factor_map,
)


@dataclasses.dataclass(frozen=True)
class RegionOfInterest:
    """A region around the Galactic Centre (hashable static configuration).

    The region is ``psi < radius_deg`` (angular distance from (l, b) = (0, 0)) and
    ``|b| > b_min_deg`` and, if ``l_max_deg`` is given, ``|l| <= l_max_deg``.

    Attributes:
        radius_deg: Disc radius [deg], in (0, 90].
        b_min_deg: Half-height of the masked Galactic plane [deg], in [0, radius_deg).
        l_max_deg: Optional longitude cut [deg], in (0, 180], or None.

    Raises:
        ValueError: For a field out of range (naming it).
    """

    radius_deg: float = 25.0
    b_min_deg: float = 2.0
    l_max_deg: float | None = None

    def __post_init__(self):
        """Validate the fields (ValueError naming the field)."""
        for name in ("radius_deg", "b_min_deg", "l_max_deg"):
            v = getattr(self, name)
            if v is None and name == "l_max_deg":
                continue
            if isinstance(v, bool) or not isinstance(v, int | float | np.number):
                raise TypeError(
                    f"`{name}` must be a number [deg]; got {type(v).__name__}."
                )
            object.__setattr__(self, name, float(v))
        if not 0 < self.radius_deg <= 90:
            raise ValueError(f"`radius_deg` must be in (0, 90]; got {self.radius_deg}.")
        if not 0 <= self.b_min_deg < self.radius_deg:
            raise ValueError(
                f"`b_min_deg` must be in [0, radius_deg = {self.radius_deg}); got "
                f"{self.b_min_deg}."
            )
        if self.l_max_deg is not None and not 0 < self.l_max_deg <= 180:
            raise ValueError(f"`l_max_deg` must be in (0, 180]; got {self.l_max_deg}.")

    def contains(self, l_deg, b_deg):
        """Boolean NumPy mask: which directions lie inside (any matching shapes)."""
        lon = np.asarray(l_deg, float)
        lon = np.where(lon > 180, lon - 360, lon)
        b = np.asarray(b_deg, float)
        cospsi = np.cos(b * DEGREE) * np.cos(lon * DEGREE)
        keep = cospsi > np.cos(self.radius_deg * DEGREE)
        if self.b_min_deg > 0:
            keep &= np.abs(b) > self.b_min_deg
        if self.l_max_deg is not None:
            keep &= np.abs(lon) <= self.l_max_deg
        return keep

    def distance_to_edge_deg(self, l_deg, b_deg):
        """Angular distance [deg] from each direction to the nearest ROI boundary.

        A lower bound for the longitude cut (distance to the meridian's great circle),
        exact for the disc and the latitude cut.
        """
        lon = np.asarray(l_deg, float)
        lon = np.where(lon > 180, lon - 360, lon)
        b = np.asarray(b_deg, float)
        cospsi = np.clip(np.cos(b * DEGREE) * np.cos(lon * DEGREE), -1, 1)
        d = np.abs(np.degrees(np.arccos(cospsi)) - self.radius_deg)
        if self.b_min_deg > 0:
            d = np.minimum(d, np.abs(np.abs(b) - self.b_min_deg))
        if self.l_max_deg is not None:
            dl = np.sin(np.abs(np.abs(lon) - self.l_max_deg) * DEGREE)
            dm = np.degrees(np.arcsin(np.clip(np.abs(dl) * np.cos(b * DEGREE), 0, 1)))
            d = np.minimum(d, dm)
        return d


def _cap_above_latitude(radius, b1):
    """Area [sr] of {psi < radius} with b > b1 (radians, 0 <= b1), closed form.

    The intersection of two spherical caps (angular radii ``radius`` around the GC and
    ``pi/2 - b1`` around the north pole, centres pi/2 apart):
    ``2 [pi - acos(-c1 c2 / (s1 s2)) - c1 acos(c2 / s1) - c2 acos(c1 / s2)]``
    with ``c_i = cos theta_i``, ``s_i = sin theta_i`` (e.g. Tovchigrechko & Vakser
    2001, Protein Sci. 10, 1572, eq. for two overlapping caps).
    """
    if b1 >= radius:
        return 0.0
    c1, s1 = np.cos(radius), np.sin(radius)
    c2, s2 = np.sin(b1), np.cos(b1)
    return 2.0 * (
        np.pi
        - np.arccos(np.clip(-c1 * c2 / (s1 * s2), -1, 1))
        - c1 * np.arccos(np.clip(c2 / s1, -1, 1))
        - c2 * np.arccos(np.clip(c1 / s2, -1, 1))
    )


def roi_solid_angle(roi: RegionOfInterest | None = None) -> float:
    """Exact solid angle of the ROI [sr], in closed form.

    With ``u(b) = acos(cos R / cos b)`` the disc's half-width in longitude at latitude
    b, the northern half is ``2 l_max (sin b_1 - sin b_min) + A(b_1)``, where
    ``A(b_1)`` is the disc's area above ``b_1`` (:func:`_cap_above_latitude`) and
    ``b_1 = max(b_min, acos(cos R / cos l_max))`` the latitude above which the
    longitude cut no longer binds (``b_1 = b_min`` without one).

    Args:
        roi: The region (default :class:`RegionOfInterest`).

    Returns:
        Solid angle [sr] (float).
    """
    roi = RegionOfInterest() if roi is None else roi
    if not isinstance(roi, RegionOfInterest):
        raise TypeError(f"`roi` must be a RegionOfInterest; got {type(roi).__name__}.")
    rad, bmin = roi.radius_deg * DEGREE, roi.b_min_deg * DEGREE
    if roi.l_max_deg is None or roi.l_max_deg >= roi.radius_deg:
        return 2.0 * _cap_above_latitude(rad, bmin)
    lmax = roi.l_max_deg * DEGREE
    b1 = max(bmin, float(np.arccos(np.cos(rad) / np.cos(lmax))))
    north = 2.0 * lmax * (np.sin(b1) - np.sin(bmin)) + _cap_above_latitude(rad, b1)
    return 2.0 * float(north)


def _check_nside(nside, sub, deep):
    for name, v in (("nside", nside), ("sub", sub), ("deep", deep)):
        if (
            isinstance(v, bool)
            or not isinstance(v, int | np.integer)
            or v < 1
            or (int(v) & (int(v) - 1))
        ):
            raise ValueError(f"`{name}` must be a power of 2 (int >= 1); got {v!r}.")


def _children(nside, pix_ring, sub):
    """Nested children at ``nside * sub`` of ring pixels: (len(pix), sub^2) ring ids."""
    nest = hp.ring2nest(nside, pix_ring)
    kids = nest[:, None] * sub * sub + np.arange(sub * sub)[None, :]
    return hp.nest2ring(nside * sub, kids)


@functools.lru_cache(maxsize=8)
def roi_subpixels(
    roi: RegionOfInterest, nside: int = 128, sub: int = 4, deep: int = 16
):
    """Sub-pixel sampling of the ROI (NumPy, cached).

    Args:
        roi: The region.
        nside: HEALPix nside of the map (power of 2).
        sub: Children per pixel side (power of 2): the integrand is evaluated at the
            centres of the ``sub^2`` children of each pixel.
        deep: Children near the boundary are split ``deep x deep`` times further to
            find the fraction of their area inside (power of 2).

    Returns:
        ``(pix, weight, l_deg, b_deg, omega)``: ring indices of the pixels touching
        the ROI (N,), the fraction of each pixel's area inside (N,), and for every
        child with a nonzero fraction its centre (M,), (M,) [deg] and its solid angle
        inside the ROI (M,) [sr].
    """
    _check_nside(nside, sub, deep)
    vec = hp.ang2vec(0.0, 0.0, lonlat=True)
    pix = hp.query_disc(nside, vec, roi.radius_deg * DEGREE, inclusive=True)
    kids = _children(nside, pix, sub)  # (N, sub^2)
    kl, kb = hp.pix2ang(nside * sub, kids.ravel(), lonlat=True)
    frac = roi.contains(kl, kb).astype(float)
    near = roi.distance_to_edge_deg(kl, kb) < np.degrees(hp.max_pixrad(nside * sub))
    if deep > 1 and near.any():
        grand = _children(nside * sub, kids.ravel()[near], deep)
        gl, gb = hp.pix2ang(nside * sub * deep, grand.ravel(), lonlat=True)
        frac[near] = roi.contains(gl, gb).reshape(grand.shape).mean(axis=1)
    frac = frac.reshape(kids.shape)
    weight = frac.mean(axis=1)
    keep = frac.ravel() > 0
    omega = frac.ravel()[keep] * hp.nside2pixarea(nside * sub)
    kl = np.where(kl > 180, kl - 360, kl)
    sel = weight > 0
    return pix[sel], weight[sel], kl[keep], kb[keep], omega


def roi_pixel_weights(roi: RegionOfInterest | None = None, nside: int = 128, **kw):
    """Fraction of each HEALPix pixel's area inside the ROI.

    Use ``sum_p weight_p * Omega_p * map_p`` for the ROI integral of a map; the
    weights sum to ``roi_solid_angle(roi) / Omega_pixel`` within the sub-sampling
    accuracy.

    Args:
        roi: The region (default :class:`RegionOfInterest`).
        nside: HEALPix nside (power of 2).
        **kw: ``sub``, ``deep`` (see :func:`roi_subpixels`).

    Returns:
        ``(pix, weight)``: ring indices (N,) and fractions in (0, 1] (N,).
    """
    roi = RegionOfInterest() if roi is None else roi
    pix, weight, *_ = roi_subpixels(roi, nside, **kw)
    return pix, weight


def _roi_factor(fn, halo, roi, nside, sub, deep, n_nodes, s_max):
    roi = RegionOfInterest() if roi is None else roi
    if not isinstance(roi, RegionOfInterest):
        raise TypeError(f"`roi` must be a RegionOfInterest; got {type(roi).__name__}.")
    halo = checked_halo(halo)
    _, _, lon, lat, omega = roi_subpixels(roi, nside, sub, deep)
    dj = fn(lon, lat, halo, n_nodes=n_nodes, s_max=s_max)
    return jnp.sum(jnp.asarray(omega, dj.dtype) * dj)


def roi_j_factor(
    halo: GNFWHalo | None = None,
    roi: RegionOfInterest | None = None,
    *,
    nside: int = 128,
    sub: int = 4,
    deep: int = 16,
    n_nodes: int = 64,
    s_max=S_MAX_CONVERGED,
):
    """Annihilation J-factor of a region of interest ``int_ROI dJ/dOmega dOmega``.

    Sub-pixel HEALPix sum with fractional boundary weights (module docstring);
    differentiable in the halo parameters, ``jit``/``vmap`` over halos.

    Args:
        halo: The gNFW halo (checked, see :class:`GNFWHalo`).
        roi: The region (default: r < 25 deg, |b| > 2 deg).
        nside: HEALPix nside of the base pixels.
        sub: Children per pixel side where the integrand is evaluated.
        deep: Further split of boundary children for their area fractions.
        n_nodes: Gauss-Legendre nodes along each line of sight.
        s_max: Line-of-sight extent [kpc] (default: untruncated).

    Returns:
        J [GeV^2 cm^-5], scalar.
    """
    return _roi_factor(j_factor_map, halo, roi, nside, sub, deep, n_nodes, s_max)


def roi_d_factor(
    halo: GNFWHalo | None = None,
    roi: RegionOfInterest | None = None,
    *,
    nside: int = 128,
    sub: int = 4,
    deep: int = 16,
    n_nodes: int = 64,
    s_max=S_MAX_CONVERGED,
):
    """Decay D-factor of a region of interest ``int_ROI dD/dOmega dOmega`` [GeV cm^-2].

    Arguments as :func:`roi_j_factor`; scalar.
    """
    return _roi_factor(d_factor_map, halo, roi, nside, sub, deep, n_nodes, s_max)
