"""Pixel grids with supersampling, PSF convolution by FFT, noise and survey presets."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxdm._checks import _guard, check_key
from jaxdm._poison import poison_policy

from ._guards import guard_finite

_PSF_SAMPLINGS = ("integrated", "center")
_BOUNDARIES = ("zero", "nearest")


class GaussianPSF(eqx.Module):
    """Gaussian PSF as a separable pixel kernel, truncated at ``truncation`` sigma.

    Attributes:
        fwhm: Full width at half maximum [arcsec], > 0.
        truncation: Kernel half-size in units of sigma (default 5, as lenstronomy).
        sampling: ``"integrated"`` (default): each weight is the Gaussian integrated
            over its pixel, half-size ``ceil(truncation * sigma / pixel_scale)``
            pixels. ``"center"``: the Gaussian sampled at pixel centres, half-size
            ``int(truncation * sigma / pixel_scale + 0.5)`` (at least 1), as
            ``scipy.ndimage.gaussian_filter`` builds it; lenstronomy's ``GAUSSIAN``
            PSF convolves with that filter (``MultiGaussianConvolution``, 1.14).
            Both are normalised to sum 1 (per axis, hence in 2-D).
    """

    fwhm: float = eqx.field(static=True)
    truncation: float = eqx.field(static=True, default=5.0)
    sampling: str = eqx.field(static=True, default="integrated")

    def __check_init__(self):
        if not self.fwhm > 0:
            raise ValueError(f"`fwhm` must be > 0 arcsec; got {self.fwhm}.")
        if not self.truncation > 0:
            raise ValueError(f"`truncation` must be > 0; got {self.truncation}.")
        if self.sampling not in _PSF_SAMPLINGS:
            raise ValueError(
                f"`sampling` must be one of {_PSF_SAMPLINGS}; got {self.sampling!r}."
            )

    def kernel(self, pixel_scale: float):
        """Normalised kernel (sums to 1), odd size.

        Args:
            pixel_scale: Pixel size [arcsec].

        Returns:
            Kernel array of shape (k, k), k odd.
        """
        w = self.factor(pixel_scale)
        return jnp.asarray(w[:, None] * w[None, :])

    def factor(self, pixel_scale: float) -> np.ndarray:
        """1-D profile w (sums to 1); the kernel is outer(w, w).

        Args:
            pixel_scale: Pixel size [arcsec].

        Returns:
            NumPy float64 array of odd length k.
        """
        sigma = self.fwhm / (2 * math.sqrt(2 * math.log(2)))
        if self.sampling == "center":
            sd = sigma / pixel_scale
            half = max(1, int(self.truncation * sd + 0.5))
            t = np.arange(-half, half + 1, dtype=np.float64)
            w = np.exp(-0.5 * (t / sd) ** 2)
            return w / w.sum()
        half = max(1, math.ceil(self.truncation * sigma / pixel_scale))
        edges = (np.arange(-half, half + 2) - 0.5) * pixel_scale
        cdf = np.array(
            [0.5 * (1 + math.erf(e / (sigma * math.sqrt(2)))) for e in edges]
        )
        w = np.diff(cdf)
        return w / w.sum()

    def factors(self, pixel_scale: float):
        """Separable factors (u, v) with kernel = outer(u, v) (always separable).

        Args:
            pixel_scale: Pixel size [arcsec].

        Returns:
            (u, v), NumPy float64 arrays.
        """
        w = self.factor(pixel_scale)
        return w, w


class KernelPSF(eqx.Module):
    """A user-supplied pixel kernel (odd square, at the pixel scale).

    A kernel that does not sum to 1 raises ValueError unless ``normalize=True``, in
    which case it is divided by its sum.

    Attributes:
        values: Kernel values as a nested tuple (hashable), shape (k, k), k odd.
    """

    values: tuple = eqx.field(static=True)

    def __init__(self, kernel, *, normalize: bool = False):
        """Build from an array.

        Args:
            kernel: Array-like of shape (k, k), k odd, non-negative.
            normalize: Divide by the sum instead of raising if it is not 1.

        Raises:
            ValueError: For a non-square/even/negative kernel or a bad sum.
        """
        k = np.asarray(kernel, dtype=np.float64)
        if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] % 2 == 0:
            raise ValueError(f"`kernel` must be square with odd size; got {k.shape}.")
        if np.any(k < 0) or not np.all(np.isfinite(k)):
            raise ValueError("`kernel` must be finite and non-negative.")
        total = k.sum()
        if abs(total - 1) > 1e-5:
            if not normalize:
                raise ValueError(
                    f"`kernel` must sum to 1; got sum {total:.6g}. "
                    "Pass normalize=True to rescale it."
                )
            k = k / total
        self.values = tuple(tuple(float(v) for v in row) for row in k)

    def kernel(self, pixel_scale: float):
        """Return the kernel array (k, k); ``pixel_scale`` is unused.

        Args:
            pixel_scale: Pixel size [arcsec] (ignored).

        Returns:
            The kernel.
        """
        return jnp.asarray(self.values)

    def factors(self, pixel_scale: float):
        """Separable factors (u, v) with kernel = outer(u, v), or None.

        The kernel counts as separable when its second singular value is below
        1e-12 of the first (rank one to float64 precision).

        Args:
            pixel_scale: Pixel size [arcsec] (ignored).

        Returns:
            (u, v) NumPy float64 arrays, or None for a non-separable kernel.
        """
        k = np.asarray(self.values, np.float64)
        u, sv, vt = np.linalg.svd(k)
        if sv.size > 1 and sv[1] > 1e-12 * sv[0]:
            return None
        return u[:, 0] * np.sqrt(sv[0]), vt[0] * np.sqrt(sv[0])


class ObservationConfig(eqx.Module):
    """Static description of an observation.

    Attributes:
        n_pix: Image side length in pixels.
        pixel_scale: Pixel size [arcsec].
        supersampling: Sub-pixels per pixel side (>= 1) for ray shooting.
        psf: ``GaussianPSF``, ``KernelPSF`` or None (no blurring).
        exposure_time: Exposure time [s] for Poisson shot noise (image in e-/s).
        background_sigma: Gaussian background noise per pixel [e-/s].
        boundary: How the PSF convolution treats the image edge: ``"zero"``
            (default; flux beyond the edge is zero) or ``"nearest"`` (the edge
            pixels are replicated outwards, as ``scipy.ndimage``'s mode
            ``"nearest"``, which lenstronomy's ``GAUSSIAN`` PSF uses).
    """

    n_pix: int = eqx.field(static=True, default=100)
    pixel_scale: float = eqx.field(static=True, default=0.05)
    supersampling: int = eqx.field(static=True, default=2)
    psf: GaussianPSF | KernelPSF | None = eqx.field(static=True, default=None)
    exposure_time: float = eqx.field(static=True, default=1000.0)
    background_sigma: float = eqx.field(static=True, default=0.01)
    boundary: str = eqx.field(static=True, default="zero")

    def __check_init__(self):
        if self.boundary not in _BOUNDARIES:
            raise ValueError(
                f"`boundary` must be one of {_BOUNDARIES}; got {self.boundary!r}."
            )
        if not (isinstance(self.n_pix, int) and self.n_pix >= 1):
            raise ValueError(f"`n_pix` must be an int >= 1; got {self.n_pix!r}.")
        if not self.pixel_scale > 0:
            raise ValueError(f"`pixel_scale` must be > 0; got {self.pixel_scale}.")
        if not (isinstance(self.supersampling, int) and self.supersampling >= 1):
            raise ValueError(
                f"`supersampling` must be an int >= 1; got {self.supersampling!r}."
            )
        if not self.exposure_time > 0:
            raise ValueError(
                f"`exposure_time` must be > 0 s; got {self.exposure_time}."
            )
        if not self.background_sigma >= 0:
            raise ValueError(
                f"`background_sigma` must be >= 0; got {self.background_sigma}."
            )


def _pixel_grid_np(n_pix: int, pixel_scale: float, supersampling: int):
    """NumPy float64 sub-pixel centres (x, y), each (n_pix * s, n_pix * s)."""
    if supersampling < 1:
        raise ValueError(f"`supersampling` must be >= 1; got {supersampling}.")
    s = supersampling
    c = ((np.arange(n_pix * s) + 0.5) / s - n_pix / 2) * pixel_scale
    return np.meshgrid(c, c)


@poison_policy
def pixel_grid(n_pix: int, pixel_scale: float, supersampling: int = 1, dtype=None):
    """Centred pixel (or sub-pixel) coordinates.

    Pixel (i, j) of an n x n image is centred at x = (j - (n-1)/2) * pixel_scale,
    y = (i - (n-1)/2) * pixel_scale.

    Args:
        n_pix: Image side in pixels.
        pixel_scale: Pixel size [arcsec].
        supersampling: Sub-pixels per side (>= 1).
        dtype: Floating dtype (default: JAX's default float).

    Returns:
        (x, y) [arcsec], each of shape (n_pix * s, n_pix * s).

    Raises:
        ValueError: If supersampling < 1.
    """
    x, y = _pixel_grid_np(n_pix, pixel_scale, supersampling)
    dt = dtype or jnp.result_type(float)
    return jnp.asarray(x, dtype=dt), jnp.asarray(y, dtype=dt)


@poison_policy
def subpixel_grids(n_pix: int, pixel_scale: float, supersampling: int = 1, dtype=None):
    """Ray positions grouped by sub-pixel offset: shape (s*s, n_pix, n_pix).

    ``x[k]``, ``y[k]`` hold, for every pixel, the sub-pixel with offset index
    ``k = a * s + b`` (row offset a, column offset b), so averaging over axis 0 bins
    the supersampled image. The same points as :func:`pixel_grid`, reordered.

    Args:
        n_pix: Image side in pixels.
        pixel_scale: Pixel size [arcsec].
        supersampling: Sub-pixels per side (>= 1).
        dtype: Floating dtype (default: JAX's default float).

    Returns:
        (x, y) [arcsec], each of shape (s*s, n_pix, n_pix).

    Raises:
        ValueError: If supersampling < 1.
    """
    s = supersampling
    x, y = _pixel_grid_np(n_pix, pixel_scale, s)

    def by_offset(a):  # rows i*s + r, columns j*s + c -> [r*s + c, i, j]
        return (
            a.reshape(n_pix, s, n_pix, s)
            .transpose(1, 3, 0, 2)
            .reshape(s * s, n_pix, n_pix)
        )

    dt = dtype or jnp.result_type(float)
    return jnp.asarray(by_offset(x), dtype=dt), jnp.asarray(by_offset(y), dtype=dt)


@poison_policy
def bin_image(image, supersampling: int):
    """Average s x s blocks of a supersampled image.

    Args:
        image: Shape (n*s, n*s).
        supersampling: s.

    Returns:
        Shape (n, n).

    Raises:
        ValueError: If the image side is not divisible by s.
    """
    m = image.shape[0]
    if m % supersampling or image.shape[1] != m:
        raise ValueError(
            f"`image` of shape {image.shape} is not square with side divisible by "
            f"supersampling={supersampling}."
        )
    n = m // supersampling
    return image.reshape(n, supersampling, n, supersampling).mean(axis=(1, 3))


def _check_boundary(boundary: str) -> None:
    if boundary not in _BOUNDARIES:
        raise ValueError(f"`boundary` must be one of {_BOUNDARIES}; got {boundary!r}.")


@poison_policy
def fft_convolve(image, kernel, *, boundary: str = "zero"):
    """'Same'-size linear convolution by FFT (no wrap-around).

    ``boundary="zero"``: both arrays are zero-padded to (n + k - 1) before the real
    FFT, so the result equals direct convolution with zero boundary; flux falling
    outside is lost only if the image has flux at its edge. ``boundary="nearest"``:
    the image is first padded by k // 2 replicated edge pixels (as
    ``scipy.ndimage`` mode ``"nearest"``), then convolved as above and cropped.

    Args:
        image: Shape (n0, n1).
        kernel: Shape (k0, k1), odd sizes.
        boundary: ``"zero"`` or ``"nearest"`` (static).

    Returns:
        Convolved image, shape (n0, n1).
    """
    _check_boundary(boundary)
    n0, n1 = image.shape
    k0, k1 = kernel.shape
    if boundary == "nearest":
        h0, h1 = k0 // 2, k1 // 2
        padded = jnp.pad(image, ((h0, h0), (h1, h1)), mode="edge")
        return fft_convolve(padded, kernel)[h0 : h0 + n0, h1 : h1 + n1]
    s0, s1 = n0 + k0 - 1, n1 + k1 - 1
    f = jnp.fft.rfft2(image, s=(s0, s1)) * jnp.fft.rfft2(
        kernel.astype(image.dtype), s=(s0, s1)
    )
    full = jnp.fft.irfft2(f, s=(s0, s1))
    return full[k0 // 2 : k0 // 2 + n0, k1 // 2 : k1 // 2 + n1]


def _convolution_matrix(w: np.ndarray, n: int, boundary: str = "zero") -> np.ndarray:
    """(n, n) matrix T with (T @ f)[i] = sum_a w[a] f[i + k//2 - a].

    Indices outside [0, n) read zero (``"zero"``) or the nearest edge pixel
    (``"nearest"``: the index is clamped into [0, n - 1]).
    """
    h = len(w) // 2
    if boundary == "nearest":
        t = np.zeros((n, n))
        i = np.arange(n)[:, None]
        a = np.arange(len(w))[None, :]
        j = np.clip(i + h - a, 0, n - 1)
        np.add.at(t, (np.broadcast_to(i, j.shape), j), np.broadcast_to(w, j.shape))
        return t
    i = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    a = i - j + h
    inside = (a >= 0) & (a < len(w))
    return np.where(inside, w[np.clip(a, 0, len(w) - 1)], 0.0)


@poison_policy
def separable_convolve(image, u, v, *, boundary: str = "zero"):
    """'Same'-size linear convolution with the separable kernel outer(u, v).

    Computed as ``U @ image @ V.T`` with banded convolution matrices built in NumPy
    at trace time: exactly the result of :func:`fft_convolve` with the same
    ``boundary`` (for ``"nearest"`` the clamped edge indices fold into the first
    and last columns of U and V), and on XLA:CPU much faster for images up to a
    few hundred pixels, because the ray-shot image feeding a matmul stays one
    fused loop (an FFT consumer splits it into many materialised loops). Matmuls
    run at ``Precision.HIGHEST`` so GPUs do not round the image to TF32.

    Args:
        image: Shape (n0, n1).
        u: Kernel factor along axis 0 (rows), odd length.
        v: Kernel factor along axis 1 (columns), odd length.
        boundary: ``"zero"`` or ``"nearest"`` (static).

    Returns:
        Convolved image, shape (n0, n1).
    """
    _check_boundary(boundary)
    n0, n1 = image.shape
    cu = jnp.asarray(_convolution_matrix(np.asarray(u), n0, boundary), image.dtype)
    cv = jnp.asarray(_convolution_matrix(np.asarray(v), n1, boundary), image.dtype)
    hi = jax.lax.Precision.HIGHEST
    # Columns first: contracting the image's minor axis keeps it row-major, so XLA
    # leaves the producing (ray-shooting) loop in its natural layout; the other order
    # ran 1.5x slower batched on the 2-core CPU.
    return jnp.matmul(cu, jnp.matmul(image, cv.T, precision=hi), precision=hi)


# Images up to this side use the matmul path for separable PSFs (its cost grows as
# n^3 against n^2 log n for the FFT).
_SEPARABLE_MAX_SIDE = 256


@poison_policy
def apply_psf(image, config: ObservationConfig):
    """Convolve a pixel image with the configured PSF (identity if None).

    Separable kernels (every ``GaussianPSF``; a rank-one ``KernelPSF``) on images up
    to 256 pixels a side use :func:`separable_convolve`, others :func:`fft_convolve`;
    both give the same linear convolution with ``config.boundary``.

    Args:
        image: Shape (n_pix, n_pix).
        config: Observation config.

    Returns:
        Blurred image, same shape.

    Raises:
        ValueError: If ``image`` has a NaN or inf (traced: NaN output, poison).
    """
    return _apply_psf(guard_finite(image, "image"), config)


def _apply_psf(image, config: ObservationConfig):
    if config.psf is None:
        return image
    if max(image.shape) <= _SEPARABLE_MAX_SIDE:
        factors = config.psf.factors(config.pixel_scale)
        if factors is not None:
            return separable_convolve(image, *factors, boundary=config.boundary)
    kernel = config.psf.kernel(config.pixel_scale)
    return fft_convolve(image, kernel, boundary=config.boundary)


@poison_policy
def add_noise(key, image, config: ObservationConfig):
    """Poisson shot noise for ``exposure_time`` plus Gaussian background.

    ``noisy = Poisson(t * max(image, 0)) / t + background_sigma * N(0, 1)``, image in
    e-/s per pixel. Not differentiable (use :func:`expected_image` for gradients).

    The expected image must be finite and not negative beyond round-off: a pixel
    below ``-1e-5 * max|image|`` is an error (it would be a negative Poisson mean,
    for which ``jax.random.poisson`` returns -1); smaller negative values (FFT or
    matmul round-off) are set to zero. ``exposure_time`` and ``background_sigma``
    are checked when the config is built.

    Args:
        key: Typed PRNG key.
        image: Expected image [e-/s per pixel].
        config: Observation config.

    Returns:
        Noisy image, same shape.

    Raises:
        ValueError: For a NaN/inf or negative ``image`` (traced: the output is
            NaN, poison policy of :mod:`jaxdm._poison`).
    """
    check_key(key)
    image = _guard_expected_image(image)
    k_p, k_g = jax.random.split(key)
    t = config.exposure_time
    lam = jnp.maximum(image, 0) * t
    counts = jax.random.poisson(k_p, lam).astype(image.dtype)
    gauss = jax.random.normal(k_g, image.shape, image.dtype)
    return counts / t + config.background_sigma * gauss


def _guard_expected_image(image, name: str = "image"):
    """Finite, and no pixel below -1e-5 of the peak (round-off allowance)."""
    image = guard_finite(image, name)
    floor = -1e-5 * jnp.max(jnp.abs(image))
    return _guard(
        image,
        image < floor,
        f"`{name}` (expected counts rate) must be >= 0 up to round-off; it has "
        "pixels below -1e-5 of its peak, which would be negative Poisson means.",
        safe=0.0,
    )


def _survey_background(sky_mag, zero_point, pixel_scale, t, n_exp, read_noise):
    sky_rate = 10 ** (-0.4 * (sky_mag - zero_point)) * pixel_scale**2  # e-/s/pixel
    return math.sqrt(sky_rate * t + n_exp * read_noise**2) / t


@poison_policy
def hst_like(n_pix: int = 100, supersampling: int = 2) -> ObservationConfig:
    """HST WFC3/F160W-like observation.

    Values from lenstronomy's ObservationConfig/HST.py (v1.14; WFC3 F160W band):
    drizzled pixel 0.08 arcsec, Gaussian PSF FWHM 0.08 arcsec (drizzled; undrizzled
    ~0.15 arcsec, Windhorst et al. 2011), exposure 5400 s, sky 22.3 mag/arcsec^2,
    zero point 25.96 mag, read noise 4 e-. Background sigma = sqrt(sky e- + read
    noise^2) / t.

    Args:
        n_pix: Image side [pixels].
        supersampling: Supersampling factor.

    Returns:
        ObservationConfig.
    """
    t = 5400.0
    return ObservationConfig(
        n_pix=n_pix,
        pixel_scale=0.08,
        supersampling=supersampling,
        psf=GaussianPSF(fwhm=0.08),
        exposure_time=t,
        background_sigma=_survey_background(22.3, 25.96, 0.08, t, 1, 4.0),
    )


@poison_policy
def euclid_like(n_pix: int = 64, supersampling: int = 2) -> ObservationConfig:
    """Euclid VIS-like observation (wide survey, 4 dithers).

    Values from lenstronomy's ObservationConfig/Euclid.py (v1.14; VIS band): pixel
    0.101 arcsec, PSF FWHM 0.16 arcsec, 4 x 566 s, sky 22.3 mag/arcsec^2, zero point
    25.72 mag, read noise 4.2 e- (cf. Euclid Collaboration, Scaramella et al. 2022,
    A&A 662, A112).

    Args:
        n_pix: Image side [pixels].
        supersampling: Supersampling factor.

    Returns:
        ObservationConfig.
    """
    t = 4 * 566.0
    return ObservationConfig(
        n_pix=n_pix,
        pixel_scale=0.101,
        supersampling=supersampling,
        psf=GaussianPSF(fwhm=0.16),
        exposure_time=t,
        background_sigma=_survey_background(22.3, 25.72, 0.101, t, 4, 4.2),
    )
