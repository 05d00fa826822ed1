"""Instrument response: exposure, energy-dependent PSF, convolution on both geometries.

PSF profiles (radial densities per steradian, small-angle):

- Gaussian ``exp(-x^2 / 2 sigma^2) / (2 pi sigma^2)``; NPTFit's examples use
  sigma = 0.18 deg at 2 GeV (Mishra-Sharma et al. 2017, arXiv 1612.03173).
- King function ``(1 - 1/g) (1 + x^2/(2 g sigma^2))^-g / (2 pi sigma^2)``, the Fermi-LAT
  PSF building block (Ackermann et al. 2012, ApJS 203, 4, arXiv 1206.1896, eq. 9).

Default width per energy bin: ``sigma(E_lo) = max(0.18 deg (E_lo / 2 GeV)^-0.8, 0.05
deg)``
at the bin's lower edge (the photon-weighted end of a falling spectrum); the E^-0.8
scaling is the Fermi-LAT multiple-scattering regime (Atwood et al. 2009, arXiv
0902.1089), the 0.05 deg floor its high-energy limit. Kernels are normalised to unit sum
on the pixel grid, so the PSF conserves flux except for what leaves the rendered region.

Cartesian: FFT convolution (``jax.scipy.signal.fftconvolve``, mode "same").
HEALPix: a sparse kernel precomputed outside the trace. For each rendered pixel i the
    PSF
centred on it is evaluated on the sub-pixels (nside x 4) found by ``healpy.query_disc``
within 5 sigma_max and accumulated onto their parent pixels; the weights are normalised
over the whole sphere, and the convolution scatters ``w_ij * m_i`` into pixel j.
"""

from __future__ import annotations

import functools

import healpy as hp
import jax
import jax.numpy as jnp
import numpy as np

from ..._checks import guard_finite
from ...constants import DEGREE

#: Default exposure [cm^2 s]: ~ 8 yr of Fermi-LAT at a few GeV (order 1e11 cm^2 s).
DEFAULT_EXPOSURE = 1e11


def _check_sigma(value, name):
    v = np.asarray(value, dtype=float)
    if v.size == 0 or not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ValueError(f"`{name}` must be finite and > 0 [deg]; got {value!r}.")


def psf_sigmas(energy_edges, sigma_2gev_deg=0.18):
    """Default PSF width per bin [deg], tuple of length E (see module docstring)."""
    from .spectra import check_energy_edges

    energy_edges = check_energy_edges(energy_edges)
    _check_sigma(sigma_2gev_deg, "sigma_2gev_deg")
    return tuple(
        max(sigma_2gev_deg * (e / 2.0) ** -0.8, 0.05) for e in energy_edges[:-1]
    )


def psf_profile(x_deg, sigma_deg, kind="gaussian", king_gamma=2.5):
    """Unnormalised radial PSF profile at angular distance ``x_deg`` (NumPy)."""
    _check_sigma(sigma_deg, "sigma_deg")
    u = (np.asarray(x_deg) / sigma_deg) ** 2
    if kind == "gaussian":
        return np.exp(-0.5 * u)
    if kind == "king":
        if king_gamma <= 1:
            raise ValueError(f"`king_gamma` must be > 1; got {king_gamma}.")
        return (1 + u / (2 * king_gamma)) ** (-king_gamma)
    raise ValueError(f"`psf` must be 'gaussian' or 'king'; got {kind!r}.")


def _extent(kind, sigma):
    return (5.0 if kind == "gaussian" else 12.0) * sigma


@functools.lru_cache(maxsize=16)
def cartesian_kernels(sigmas_deg, pixel_deg, kind="gaussian", king_gamma=2.5):
    """Per-bin PSF kernels on the Cartesian grid, shape (E, K, K), each summing to 1.

    Each kernel entry integrates the PSF over the pixel by 4 x 4 sub-sampling.
    """
    _check_sigma(sigmas_deg, "sigmas_deg")
    _check_sigma(pixel_deg, "pixel_deg")
    half = int(np.ceil(_extent(kind, max(sigmas_deg)) / pixel_deg))
    sub = (np.arange(4) + 0.5) / 4 - 0.5
    c = np.arange(-half, half + 1)
    xx = (c[:, None, None, None] + sub[None, None, :, None]) * pixel_deg
    yy = (c[None, :, None, None] + sub[None, None, None, :]) * pixel_deg
    r = np.sqrt(xx**2 + yy**2)
    ks = []
    for s in sigmas_deg:
        k = psf_profile(r, s, kind, king_gamma).sum(axis=(2, 3))
        ks.append(k / k.sum())
    return np.stack(ks)


def convolve_cartesian(images, kernels):
    """FFT-convolve ``(E, H, W)`` images with ``(E, K, K)`` kernels (mode 'same').

    ``images`` must be finite (checked eagerly and under ``jit``). FFT round-off can
    leave entries of order -1e-7 x the maximum where an image is ~0.
    """
    images = guard_finite(images, "images")
    return convolve_cartesian_unchecked(images, kernels)


def convolve_cartesian_unchecked(images, kernels):
    """:func:`convolve_cartesian` without the check (inputs checked upstream)."""
    return jax.vmap(lambda im, k: jax.scipy.signal.fftconvolve(im, k, mode="same"))(
        images, jnp.asarray(kernels, images.dtype)
    )


@functools.lru_cache(maxsize=16)
def healpix_kernels(nside, pix, sigmas_deg, kind="gaussian", king_gamma=2.5, sub=4):
    """Sparse HEALPix PSF kernel: neighbour indices (P, K) and weights (E, P, K).

    Args:
        nside: HEALPix nside of the map.
        pix: Tuple of the rendered ring pixel indices (P,).
        sigmas_deg: PSF widths per bin [deg].
        kind: ``"gaussian"`` or ``"king"``.
        king_gamma: King tail index.
        sub: Sub-pixel refinement factor (power of 2).

    Returns:
        ``(nbr, w)``; ``nbr`` indexes the rendered pixels, with ``P`` marking neighbours
        outside the rendered region (dropped), weights sum to one over the sphere.
    """
    if (
        isinstance(nside, bool)
        or int(nside) != nside
        or nside < 1
        or (int(nside) & (int(nside) - 1))
    ):
        raise ValueError(f"`nside` must be a power of 2; got {nside!r}.")
    _check_sigma(sigmas_deg, "sigmas_deg")
    pix = np.asarray(pix)
    nsub = nside * sub
    radius = _extent(kind, max(sigmas_deg)) * DEGREE
    lookup = {int(p): i for i, p in enumerate(pix)}
    rows = []
    for p in pix:
        v = hp.pix2vec(nside, int(p))
        sp = hp.query_disc(nsub, v, radius + hp.nside2resol(nside), inclusive=True)
        ang = np.degrees(
            np.arccos(np.clip(np.dot(np.array(hp.pix2vec(nsub, sp)).T, v), -1, 1))
        )
        parent = hp.nest2ring(nside, hp.ring2nest(nsub, sp) // (sub * sub))
        up, inv = np.unique(parent, return_inverse=True)
        wk = np.stack(
            [
                np.bincount(inv, psf_profile(ang, s, kind, king_gamma))
                for s in sigmas_deg
            ]
        )
        rows.append((up, wk / wk.sum(axis=1, keepdims=True)))
    kmax = max(r[0].size for r in rows)
    nbr = np.full((pix.size, kmax), pix.size, dtype=np.int32)
    w = np.zeros((len(sigmas_deg), pix.size, kmax))
    for i, (up, wk) in enumerate(rows):
        nbr[i, : up.size] = [lookup.get(int(q), pix.size) for q in up]
        w[:, i, : up.size] = wk
    return nbr, w


def convolve_healpix(maps, nbr, w):
    """Scatter ``(E, P)`` maps through the sparse PSF kernel; flux-conserving.

    ``maps`` must be finite (checked eagerly and under ``jit``).
    """
    maps = guard_finite(maps, "maps")
    return convolve_healpix_unchecked(maps, nbr, w)


def convolve_healpix_unchecked(maps, nbr, w):
    """:func:`convolve_healpix` without the check (inputs checked upstream)."""
    npix = maps.shape[-1]

    def one(m, wk):
        out = jnp.zeros(npix + 1, m.dtype).at[nbr].add(wk.astype(m.dtype) * m[:, None])
        return out[:npix]

    return jax.vmap(one)(maps, jnp.asarray(w))
