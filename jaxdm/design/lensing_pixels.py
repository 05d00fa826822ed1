r"""Pixel scale as a differentiable lensing design variable (fixed pixel count).

:class:`jaxdm.simulators.lensing.ObservationConfig` keeps the pixel scale static (it
fixes the grid at compile time). Here the pixel count ``n_pix`` and the
supersampling stay static and the pixel scale :math:`p` [arcsec] is a traced float
that scales the unit coordinate grid, so the field of view :math:`n_{pix} p` changes
with it and every quantity below is differentiable in :math:`p`:

- :func:`expected_image_at_scale`: rays shot through the lens equation on the
  ``supersampling``-times finer grid (the same deflection and surface-brightness code
  as ``lensing.expected_image``), blurred on that grid by a pixel-integrated Gaussian
  PSF of fixed FWHM [arcsec] (its width in sub-pixels, ``fwhm / (2.3548 p / s)``,
  is traced; kernel entries are differences of the normal CDF, so flux is conserved
  at any width), then binned to ``n_pix`` pixels: e-/s per pixel (surface brightness
  times :math:`p^2`).
- :class:`PixelNoise` and :func:`pixel_variance`: per-pixel variance of an exposure
  of :math:`t` s in :math:`N_{exp}` reads, in (e-/s)^2,

  .. math:: \sigma^2 = \frac{\mu}{t} + \frac{s_{sky} p^2}{t}
     + \frac{N_{exp} r^2}{t^2},

  shot noise of the source, sky shot noise (sky surface brightness
  :math:`s_{sky}` in e-/s/arcsec^2, so per pixel it grows as :math:`p^2`) and read
  noise :math:`r` [e-] per pixel and read (independent of :math:`p`), the model
  behind ``lensing.hst_like`` (lenstronomy's ``ObservationConfig``).
- :func:`lensing_pixel_fisher`: the Gaussian Fisher matrix of the scene parameters.

The trade-off is real in this model: large pixels beat the read noise (more source
counts per read) and widen the field of view; small pixels resolve the Einstein ring
and a subhalo's perturbation. With no read noise the pixel size only enters through
resolution (the sky and shot noise per unit area do not depend on it); with more
read noise the optimal pixel grows (tested). Pixels that make the field of view
smaller than the lens lose the part of the ring outside it, which the Fisher
information sees directly; :func:`field_of_view_margin` also states it as a
constraint ``g <= 0`` for :func:`jaxdm.design.optimise_design`.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr

from .._args import check_int
from .._checks import guard_positive
from ..simulators.lensing import LensingParams
from ..simulators.lensing._guards import guard_components, unchecked
from ..simulators.lensing.light import surface_brightness
from ..simulators.lensing.mass import deflection
from ..simulators.lensing.observe import bin_image
from .fisher import gaussian_fisher

_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))

__all__ = [
    "PixelNoise",
    "expected_image_at_scale",
    "field_of_view_margin",
    "lensing_pixel_fisher",
    "pixel_variance",
]


class PixelNoise(eqx.Module):
    """Noise of an imaging exposure (per pixel and read).

    Attributes:
        exposure_time: Total exposure [s], > 0.
        sky_rate: Sky surface brightness [e-/s/arcsec^2], >= 0.
        read_noise: Read noise [e- per pixel and read], >= 0.
        n_exposures: Number of reads (dithers), >= 1.
    """

    exposure_time: float | jax.Array = 1000.0
    sky_rate: float | jax.Array = 0.0
    read_noise: float | jax.Array = 0.0
    n_exposures: float | jax.Array = 1.0


def _check_noise(noise: PixelNoise) -> PixelNoise:
    if not isinstance(noise, PixelNoise):
        raise TypeError(f"`noise` must be a PixelNoise; got {type(noise).__name__}.")
    return PixelNoise(
        exposure_time=guard_positive(noise.exposure_time, "noise.exposure_time"),
        sky_rate=guard_positive(noise.sky_rate, "noise.sky_rate", allow_zero=True),
        read_noise=guard_positive(
            noise.read_noise, "noise.read_noise", allow_zero=True
        ),
        n_exposures=guard_positive(noise.n_exposures, "noise.n_exposures"),
    )


def _pixel_integrated_blur(image, sigma_sub):
    """Separable blur by a Gaussian integrated over each (sub-)pixel, zero boundary.

    ``K[i, j] = Phi((d + 1/2) / sigma) - Phi((d - 1/2) / sigma)``, ``d = i - j``:
    rows sum to 1 over the infinite grid for every ``sigma > 0`` (flux leaving the
    edge is lost, as the simulator's ``boundary="zero"``).
    """
    n = image.shape[-1]
    d = (jnp.arange(n)[:, None] - jnp.arange(n)[None, :]).astype(image.dtype)
    k = ndtr((d + 0.5) / sigma_sub) - ndtr((d - 0.5) / sigma_sub)
    return k @ image @ k.T


def expected_image_at_scale(
    params: LensingParams,
    pixel_scale,
    *,
    n_pix: int,
    supersampling: int = 2,
    psf_fwhm=None,
):
    """Noise-free image [e-/s per pixel] at a traced pixel scale.

    Args:
        params: Scene (``lensing.LensingParams``; checked as in
            ``lensing.expected_image``).
        pixel_scale: Pixel size [arcsec], scalar, finite and > 0 (traced and
            differentiable; checked eagerly and under ``jit``).
        n_pix: Pixels per side (static int >= 1); field of view ``n_pix *
            pixel_scale``.
        supersampling: Sub-pixels per side for ray shooting and the PSF (static).
        psf_fwhm: Gaussian PSF FWHM [arcsec] (> 0; differentiable), or None.

    Returns:
        Image, shape (n_pix, n_pix).
    """
    n_pix = check_int(n_pix, "n_pix", minimum=1)
    s = check_int(supersampling, "supersampling", minimum=1)
    p = jnp.asarray(pixel_scale)
    if p.ndim != 0:
        raise ValueError(f"`pixel_scale` must be a scalar; got shape {p.shape}.")
    p = guard_positive(p, "pixel_scale")
    params = LensingParams(
        lens=guard_components(params.lens),
        source=guard_components(params.source),
        lens_light=guard_components(params.lens_light),
    )
    leaves = jax.tree_util.tree_leaves(params) + [p]
    dtype = jnp.result_type(*leaves)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    p = p.astype(dtype)
    # Unit grid (sub-pixel centres in pixel units), scaled by the traced pixel size.
    c = ((jnp.arange(n_pix * s, dtype=dtype) + 0.5) / s - n_pix / 2) * p
    x, y = jnp.meshgrid(c, c)
    ax, ay = unchecked(deflection)(x, y, params.lens)
    sb = unchecked(surface_brightness)(x - ax, y - ay, params.source)
    if params.lens_light:
        sb = sb + unchecked(surface_brightness)(x, y, params.lens_light)
    if psf_fwhm is not None:
        fwhm = guard_positive(jnp.asarray(psf_fwhm, dtype), "psf_fwhm")
        sb = _pixel_integrated_blur(sb, fwhm / _FWHM_PER_SIGMA / (p / s))
    return bin_image(sb, s) * p**2


def pixel_variance(mean, pixel_scale, noise: PixelNoise):
    """Per-pixel variance [(e-/s)^2] of an image with mean ``mean`` [e-/s per pixel].

    ``max(mean, 0) / t + sky_rate * pixel_scale**2 / t + n_exp * read_noise**2 / t**2``
    (module docstring).

    Args:
        mean: Expected image [e-/s per pixel], any shape.
        pixel_scale: Pixel size [arcsec], > 0.
        noise: :class:`PixelNoise`.

    Returns:
        Variance, shape of ``mean``.
    """
    noise = _check_noise(noise)
    p = guard_positive(pixel_scale, "pixel_scale")
    t = noise.exposure_time
    return (
        jnp.maximum(mean, 0.0) / t
        + noise.sky_rate * p**2 / t
        + noise.n_exposures * noise.read_noise**2 / t**2
    )


def lensing_pixel_fisher(
    scene_of_theta,
    theta,
    pixel_scale,
    noise: PixelNoise,
    *,
    n_pix: int,
    supersampling: int = 2,
    psf_fwhm=None,
):
    """Fisher matrix of scene parameters as a function of the pixel scale.

    Args:
        scene_of_theta: ``theta -> lensing.LensingParams``.
        theta: Parameters of interest (pytree, e.g. Einstein radius and a subhalo
            mass).
        pixel_scale: Pixel size [arcsec] (traced, differentiable).
        noise: :class:`PixelNoise` (its fields may be traced too).
        n_pix: Pixels per side (static).
        supersampling: Sub-pixels per side (static).
        psf_fwhm: Gaussian PSF FWHM [arcsec] or None.

    Returns:
        Fisher matrix, shape (n_params, n_params), Gaussian noise of
        :func:`pixel_variance` (no derivative term of the variance).
    """
    noise = _check_noise(noise)

    def mean(t):
        return expected_image_at_scale(
            scene_of_theta(t),
            pixel_scale,
            n_pix=n_pix,
            supersampling=supersampling,
            psf_fwhm=psf_fwhm,
        )

    return gaussian_fisher(mean, theta, lambda m: pixel_variance(m, pixel_scale, noise))


def field_of_view_margin(pixel_scale, n_pix: int, radius):
    """Constraint ``g <= 0`` that the field of view contains a circle of ``radius``.

    ``g = radius - n_pix * pixel_scale / 2`` [arcsec]: negative when the square
    field of view (side ``n_pix * pixel_scale``, centred on the lens) contains the
    circle, e.g. the Einstein radius plus the source's extent. Use as
    ``Constraint(lambda d: field_of_view_margin(d["pixel_scale"], n, r))``.

    Args:
        pixel_scale: Pixel size [arcsec], > 0.
        n_pix: Pixels per side (static int >= 1).
        radius: Radius that must fit [arcsec], >= 0.

    Returns:
        Scalar [arcsec].
    """
    n_pix = check_int(n_pix, "n_pix", minimum=1)
    p = guard_positive(pixel_scale, "pixel_scale")
    r = guard_positive(radius, "radius", allow_zero=True)
    return r - n_pix * p / 2
