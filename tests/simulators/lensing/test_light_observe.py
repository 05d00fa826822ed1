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
