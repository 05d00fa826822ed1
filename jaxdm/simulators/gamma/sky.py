"""Sky geometry: Cartesian (l, b) grid and HEALPix pixels around the Galactic Centre.

Pixel geometry is computed with NumPy/healpy outside traced code (cached on the hashable
geometry arguments) and enters jitted functions as constants. HEALPix uses ring ordering
(Gorski et al. 2005, ApJ 622, 759). Defaults follow the inner-Galaxy analyses (NPTFit,
Mishra-Sharma et al. 2017, arXiv 1612.03173; List et al. 2020, arXiv 2006.12504;
Mishra-Sharma & Cranmer 2022, arXiv 2110.06931): nside=128, r < 25 deg, |b| > 2 deg.
"""

from __future__ import annotations

import functools

import healpy as hp
import numpy as np

from ...constants import DEGREE


class Geometry:
    """Pixel centres, solid angles and the ROI mask of one sky geometry (NumPy arrays).

    Attributes:
        kind: ``"cartesian"`` or ``"healpix"``.
        l_deg: Galactic longitude of every rendered pixel, in (-180, 180] deg, shape
            (P,).
        b_deg: Galactic latitude of every rendered pixel [deg], shape (P,).
        omega_sr: Solid angle of every rendered pixel [sr], shape (P,).
        roi: Boolean ROI mask over the rendered pixels, shape (P,).
        shape: Image shape ``(H, W)`` for Cartesian grids, ``(P,)`` for HEALPix.
        pix: HEALPix ring indices of the rendered pixels (HEALPix only), shape (P,).
        nside: HEALPix nside (HEALPix only).
    """

    def __init__(self, kind, l_deg, b_deg, omega_sr, roi, shape, pix=None, nside=None):
        """Store the arrays (see class docstring)."""
        self.kind, self.l_deg, self.b_deg = kind, l_deg, b_deg
        self.omega_sr, self.roi, self.shape, self.pix, self.nside = (
            omega_sr,
            roi,
            shape,
            pix,
            nside,
        )


def roi_mask(l_deg, b_deg, *, radius_deg=25.0, b_cut_deg=2.0, ps_mask=None):
    """Region-of-interest mask: angular distance from the GC < radius and |b| > b_cut.

    Args:
        l_deg: Longitudes [deg], any shape.
        b_deg: Latitudes [deg], same shape.
        radius_deg: ROI radius around (l, b) = (0, 0) [deg].
        b_cut_deg: Half-height of the masked Galactic plane [deg] (0 disables it).
        ps_mask: Optional boolean array (same shape), True where a resolved point source
            is masked.

    Returns:
        Boolean NumPy array, True for pixels inside the ROI.
    """
    for name, v in (("l_deg", l_deg), ("b_deg", b_deg)):
        if not np.all(np.isfinite(np.asarray(v, dtype=float))):
            raise ValueError(f"`{name}` must be finite [deg].")
    l_r, b_r = np.asarray(l_deg) * DEGREE, np.asarray(b_deg) * DEGREE
    cospsi = np.cos(b_r) * np.cos(l_r)
    keep = (cospsi > np.cos(radius_deg * DEGREE)) & (
        np.abs(np.asarray(b_deg)) > b_cut_deg
    )
    if ps_mask is not None:
        keep &= ~np.asarray(ps_mask, bool)
    return keep


def _check_roi(roi, radius_deg, b_cut_deg):
    if radius_deg <= 0:
        raise ValueError(f"`roi_radius_deg` must be > 0; got {radius_deg}.")
    if b_cut_deg < 0:
        raise ValueError(f"`b_cut_deg` must be >= 0; got {b_cut_deg}.")
    if not roi.any():
        raise ValueError(
            f"the ROI (roi_radius_deg={radius_deg}, b_cut_deg={b_cut_deg}) "
            "contains no unmasked pixel."
        )


@functools.lru_cache(maxsize=16)
def cartesian_geometry(npix=128, half_width_deg=20.0, radius_deg=25.0, b_cut_deg=2.0):
    """Cartesian (l, b) grid of ``npix x npix`` pixels centred on the Galactic Centre.

    Pixel (i, j) has b decreasing with row i and l decreasing with column j (sky
    convention, east to the left). Exact pixel solid angle
    ``dl * (sin(b + db/2) - sin(b - db/2))``.

    Args:
        npix: Pixels per side (int > 1).
        half_width_deg: Half side length of the square [deg], <= 90.
        radius_deg: ROI radius [deg].
        b_cut_deg: Plane cut |b| [deg].

    Returns:
        A :class:`Geometry` with P = npix**2 rendered pixels in row-major order.

    Raises:
        ValueError: For a bad size or an empty ROI.
    """
    if int(npix) != npix or npix < 2:
        raise ValueError(f"`npix` must be an integer >= 2; got {npix}.")
    if not 0 < half_width_deg <= 90:
        raise ValueError(f"`half_width_deg` must be in (0, 90]; got {half_width_deg}.")
    d = 2 * half_width_deg / npix
    c = -half_width_deg + d * (np.arange(npix) + 0.5)
    b = c[::-1][:, None] * np.ones((1, npix))
    lon = np.ones((npix, 1)) * c[::-1][None, :]
    omega = d * DEGREE * (np.sin((b + d / 2) * DEGREE) - np.sin((b - d / 2) * DEGREE))
    roi = roi_mask(lon, b, radius_deg=radius_deg, b_cut_deg=b_cut_deg)
    _check_roi(roi, radius_deg, b_cut_deg)
    return Geometry(
        "cartesian", lon.ravel(), b.ravel(), omega.ravel(), roi.ravel(), (npix, npix)
    )


@functools.lru_cache(maxsize=16)
def healpix_geometry(nside=128, radius_deg=25.0, b_cut_deg=2.0, margin_deg=1.0):
    """HEALPix (ring) pixels within ``radius_deg + margin_deg`` of the GC.

    Pixels in the margin are rendered (so that PSF leakage into the ROI is modelled)
    but lie outside ``roi``. Solid angle per pixel ``4 pi / (12 nside^2)``.

    Args:
        nside: HEALPix nside, a power of 2.
        radius_deg: ROI radius [deg].
        b_cut_deg: Plane cut |b| [deg].
        margin_deg: Rendered margin outside the ROI [deg].

    Returns:
        A :class:`Geometry` (``pix`` holds the ring indices).

    Raises:
        ValueError: If nside is not a power of 2 or the ROI is empty.
    """
    if int(nside) != nside or nside < 1 or (int(nside) & (int(nside) - 1)):
        raise ValueError(f"`nside` must be a power of 2; got {nside}.")
    nside = int(nside)
    vec = hp.ang2vec(0.0, 0.0, lonlat=True)
    pix = hp.query_disc(nside, vec, (radius_deg + margin_deg) * DEGREE, inclusive=False)
    lon, b = hp.pix2ang(nside, pix, lonlat=True)
    lon = np.where(lon > 180, lon - 360, lon)
    roi = roi_mask(lon, b, radius_deg=radius_deg, b_cut_deg=b_cut_deg)
    _check_roi(roi, radius_deg, b_cut_deg)
    omega = np.full(pix.shape, hp.nside2pixarea(nside))
    return Geometry("healpix", lon, b, omega, roi, (pix.size,), pix=pix, nside=nside)
