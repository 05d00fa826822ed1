"""Light profiles, rendering, PSF and presets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import gammaincinv

from jaxdm.simulators import lensing as L


@pytest.mark.x64
def test_sersic_b_exact():
    """b_n solves P(2n, b) = 1/2 (scipy gammaincinv, rtol 1e-12)."""
    for n in (0.3, 1.0, 2.5, 4.0, 8.0):
        np.testing.assert_allclose(
            float(L.sersic_b(n)), gammaincinv(2 * n, 0.5), rtol=1e-12
        )


@pytest.mark.x64
def test_sersic_total_flux_matches_grid_sum():
    """Sum over a fine, large grid equals the analytic total flux (Graham & Driver
    2005). n = 1 and 2.5 decay fast enough that 8 R_e... 12 arcsec boxes hold
    > 1 - 1e-6 of the flux; grid step R_e/40 gives midpoint error < 1e-4."""
    for n, q in ((1.0, 0.6), (2.5, 0.8)):
        p = L.SersicParams(amplitude=2.0, r_e=0.3, n=n, q=q, phi=0.4)
        x, y = L.pixel_grid(1200, 0.0075 * (2 if n > 2 else 1), 1)
        f = float(jnp.sum(L.sersic(x, y, p)) * (0.0075 * (2 if n > 2 else 1)) ** 2)
        np.testing.assert_allclose(
            f, float(L.sersic_total_flux(p)), rtol=3e-3 if n > 2 else 1e-4
        )


def test_gaussian_flux():
    p = L.GaussianParams(flux=3.0, sigma=0.2, x0=0.1)
    x, y = L.pixel_grid(200, 0.02, 1)
    np.testing.assert_allclose(
        float(jnp.sum(L.gaussian(x, y, p)) * 0.02**2), 3.0, rtol=1e-5
    )


@pytest.mark.x64
def test_supersampling_converges():
    """Pixel-averaged image errors shrink ~ 1/s^2 (midpoint rule) as s grows;
    reference s = 32."""
    p = L.LensingParams(
        lens=(L.SIEParams(theta_e=0.8, q=0.7, phi=0.2),),
        source=(L.SersicParams(amplitude=1.0, r_e=0.08, n=1.0, q=0.8, x0=0.03),),
    )
    ref = L.expected_image(
        p, L.ObservationConfig(n_pix=24, pixel_scale=0.1, supersampling=32)
    )
    errs = [
        float(
            jnp.max(
                jnp.abs(
                    L.expected_image(
                        p,
                        L.ObservationConfig(n_pix=24, pixel_scale=0.1, supersampling=s),
                    )
                    - ref
                )
            )
        )
        for s in (1, 2, 4, 8)
    ]
    assert all(b < a for a, b in zip(errs, errs[1:], strict=False)), errs
    assert errs[-1] < 0.1 * errs[0]


def test_psf_conserves_flux_and_fft_equals_direct():
    """FFT convolution equals direct zero-padded convolution; an image with no flux
    at the edges keeps its total flux (f32 rtol 1e-5)."""
    key = jax.random.key(0)
    img = jnp.zeros((32, 32)).at[8:24, 8:24].set(jax.random.uniform(key, (16, 16)))
    k = L.GaussianPSF(fwhm=0.15).kernel(0.05)
    np.testing.assert_allclose(float(jnp.sum(k)), 1.0, rtol=1e-6)
    out = L.fft_convolve(img, k)
    np.testing.assert_allclose(float(out.sum()), float(img.sum()), rtol=1e-5)
    direct = jax.scipy.signal.convolve2d(img, k, mode="same")
    np.testing.assert_allclose(out, direct, atol=1e-5)
    # Asymmetric user kernel: checks orientation (no flip errors).
    kk = np.zeros((3, 3))
    kk[0, 1] = 1.0
    out2 = L.fft_convolve(img, jnp.asarray(L.KernelPSF(kk).kernel(0.05)))
    np.testing.assert_allclose(
        out2, jax.scipy.signal.convolve2d(img, kk, mode="same"), atol=1e-6
    )


def test_separable_convolution_equals_fft():
    """The matmul path equals the FFT path for a Gaussian and an asymmetric rank-one
    kernel (orientation), a non-separable KernelPSF has no factors, and apply_psf
    picks the matmul path only for separable kernels on images <= 256 pixels."""
    img = jax.random.uniform(jax.random.key(1), (30, 34))
    g = L.GaussianPSF(fwhm=0.15)
    u, v = g.factors(0.05)
    np.testing.assert_allclose(np.outer(u, v), np.asarray(g.kernel(0.05)), atol=1e-7)
    np.testing.assert_allclose(
        L.separable_convolve(img, u, v), L.fft_convolve(img, g.kernel(0.05)), atol=2e-6
    )
    a, b = np.array([0.1, 0.6, 0.3]), np.array([0.55, 0.3, 0.15])
    kp = L.KernelPSF(np.outer(a, b))
    fu, fv = kp.factors(0.05)
    np.testing.assert_allclose(np.outer(fu, fv), np.outer(a, b), atol=1e-12)
    np.testing.assert_allclose(
        L.separable_convolve(img, fu, fv),
        jax.scipy.signal.convolve2d(img, jnp.asarray(np.outer(a, b)), mode="same"),
        atol=2e-6,
    )
    k2 = np.zeros((3, 3))
    k2[0, 1] = k2[1, 0] = 0.5  # rank two
    assert L.KernelPSF(k2).factors(0.05) is None
    sq = img[:30, :30]
    for psf in (kp, L.KernelPSF(k2)):
        cfg = L.ObservationConfig(n_pix=30, pixel_scale=0.05, psf=psf)
        np.testing.assert_allclose(
            L.apply_psf(sq, cfg),
            jax.scipy.signal.convolve2d(sq, psf.kernel(0.05), mode="same"),
            atol=2e-6,
        )


@pytest.mark.x64
@pytest.mark.parametrize("s", [1, 2, 3])
def test_expected_image_equals_reference_rendering(s):
    """expected_image (sub-pixel passes, unrolled for s <= 2 and scanned for s = 3,
    matmul PSF) equals the textbook path: rays on the (n s)^2 grid of pixel_grid,
    block-averaged by bin_image, FFT-convolved; float64 to 1e-12."""
    p = L.LensingParams(
        lens=(L.SIEParams(theta_e=0.8, q=0.7, phi=0.2), L.ShearParams(0.03, -0.01)),
        source=(L.SersicParams(amplitude=3.0, r_e=0.1, n=2.0, q=0.8, x0=0.03),),
        lens_light=(L.GaussianParams(flux=1.0, sigma=0.3),),
    )
    cfg = L.ObservationConfig(
        n_pix=20, pixel_scale=0.1, supersampling=s, psf=L.GaussianPSF(fwhm=0.2)
    )
    x, y = L.pixel_grid(20, 0.1, s)
    ax, ay = L.deflection(x, y, p.lens)
    sb = L.surface_brightness(x - ax, y - ay, p.source)
    sb = sb + L.surface_brightness(x, y, p.lens_light)
    ref = L.fft_convolve(L.bin_image(sb, s) * 0.01, cfg.psf.kernel(0.1))
    xs, ys = L.subpixel_grids(20, 0.1, s)
    assert xs.shape == (s * s, 20, 20)
    np.testing.assert_allclose(
        np.sort(np.asarray(xs).ravel()), np.sort(np.asarray(x).ravel()), atol=1e-14
    )
    np.testing.assert_allclose(L.expected_image(p, cfg), ref, rtol=1e-12, atol=1e-14)


def test_pixelated_source_interpolation():
    """Bilinear and bicubic reproduce a linear function exactly inside the grid."""
    g = np.arange(8.0)
    img = jnp.asarray(g[None, :] * 0.5 + g[:, None] * 0.25 + 1.0)
    p1 = L.PixelatedParams(image=img, pixel_scale=0.1, order=1)
    p3 = L.PixelatedParams(image=img, pixel_scale=0.1, order=3)
    x = jnp.array([0.013, -0.121, 0.07])
    y = jnp.array([0.02, 0.09, -0.131])
    want = (x / 0.1 + 3.5) * 0.5 + (y / 0.1 + 3.5) * 0.25 + 1.0
    np.testing.assert_allclose(L.pixelated(x, y, p1), want, rtol=1e-5)
    np.testing.assert_allclose(L.pixelated(x, y, p3), want, rtol=1e-5)
    assert float(L.pixelated(jnp.array([5.0]), jnp.array([0.0]), p1)[0]) == 0.0


def test_bad_observation_inputs():
    with pytest.raises(ValueError, match="`supersampling`"):
        L.ObservationConfig(supersampling=0)
    with pytest.raises(ValueError, match="`kernel` must sum to 1"):
        L.KernelPSF(np.full((3, 3), 0.2))
    k = L.KernelPSF(np.full((3, 3), 0.2), normalize=True)
    np.testing.assert_allclose(np.sum(k.values), 1.0)
    with pytest.raises(ValueError, match="`kernel`"):
        L.KernelPSF(np.ones((4, 4)) / 16)
    with pytest.raises(ValueError, match="`image`"):
        L.bin_image(jnp.zeros((10, 10)), 3)
    with pytest.raises(ValueError, match="`q`"):
        L.SersicParams(amplitude=1.0, r_e=0.1, q=-0.2)


def test_presets():
    h = L.hst_like()
    e = L.euclid_like()
    assert h.pixel_scale == 0.08
    assert e.pixel_scale == 0.101
    assert 0 < h.background_sigma < 1
    assert 0 < e.background_sigma < 1
