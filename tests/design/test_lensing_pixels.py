"""Pixel scale as a traced lensing design variable (jaxdm.design.lensing_pixels)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxdm import design
from jaxdm.design import lensing_pixels as lp
from jaxdm.simulators import lensing


def _scene(t):
    return lensing.LensingParams(
        lens=(lensing.SIEParams(theta_e=t[0], q=0.8, phi=0.3, x0=0.0, y0=0.0),),
        source=(
            lensing.SersicParams(
                amplitude=2.0, r_e=0.25, n=1.0, q=0.8, phi=0.2, x0=0.05, y0=0.02
            ),
        ),
    )


def _sigma_theta_e(p, noise, n_pix=24, s=2, fwhm=0.15):
    f = lp.lensing_pixel_fisher(
        _scene, jnp.array([1.0]), p, noise, n_pix=n_pix, supersampling=s,
        psf_fwhm=fwhm,
    )  # fmt: skip
    return design.marginal_error(f, 0)


@pytest.mark.slow  # three compilations of 48x48 ray shooting in float64 (~10 s quiet)
@pytest.mark.x64
def test_image_matches_the_simulator_grid_and_psf_conserves_flux():
    """Without a PSF the traced-scale image equals lensing.expected_image at the same
    (static) pixel scale; the pixel-integrated PSF conserves the flux of a source
    well inside the field (zero boundary)."""
    params = _scene(jnp.array([1.0]))
    cfg = lensing.ObservationConfig(n_pix=16, pixel_scale=0.13, supersampling=3)
    ref = jax.jit(lensing.expected_image, static_argnums=1)(params, cfg)

    @jax.jit
    def image(p, fwhm):
        return lp.expected_image_at_scale(
            params, p, n_pix=16, supersampling=3, psf_fwhm=fwhm
        )

    def sharp(p):
        return lp.expected_image_at_scale(params, p, n_pix=16, supersampling=3)

    np.testing.assert_allclose(
        jax.jit(sharp)(0.13), ref, rtol=1e-10, atol=1e-12 * ref.max()
    )
    # 16 * 0.3 = 4.8" field: the lensed source (ring at 1") is well inside it.
    blurred, unblurred = image(0.3, 0.4), jax.jit(sharp)(0.3)
    assert float(blurred.max()) < 0.9 * float(unblurred.max())
    np.testing.assert_allclose(blurred.sum(), unblurred.sum(), rtol=2e-3)
    np.testing.assert_allclose(image(0.3, 1e-4), unblurred, rtol=1e-6, atol=1e-12)


@pytest.mark.x64
def test_objective_gradient_in_pixel_scale_matches_finite_differences():
    """d sigma(theta_E) / d (pixel scale, PSF FWHM, read noise) by autodiff = central
    differences in float64, at two pixel scales."""

    def objective(d):
        noise = lp.PixelNoise(
            exposure_time=1000.0, sky_rate=1.0, read_noise=d["rn"], n_exposures=4.0
        )
        return jnp.log(_sigma_theta_e(d["p"], noise, n_pix=12, fwhm=d["fwhm"]))

    objective = jax.jit(objective)
    for p in (0.12, 0.21):
        d = {"p": jnp.asarray(p), "fwhm": jnp.asarray(0.15), "rn": jnp.asarray(5.0)}
        # At 0.21" the ring touches the field's edge: the objective curves fast
        # (central differences converge only for steps <~ 1e-6).
        res = design.check_gradient(objective, d, eps=1e-6, rtol=1e-5, atol=1e-7)
        assert res.ok, res
        assert abs(res.analytic[1]) > 1e-3  # the pixel scale matters


@pytest.mark.slow
def test_jit_vmap_and_read_noise_moves_the_optimum_to_larger_pixels():
    """Larger read noise -> larger optimal pixels (fixed pixel count).

    With read noise r per pixel and read, the variance per pixel has a term
    N r^2 / t^2 independent of the pixel size p while the counts per pixel grow as
    p^2, so the Einstein-radius error falls with p until resolution is lost; with
    r = 0 (sky- and shot-noise limited: both per unit area) only resolution and the
    field of view matter. Grid minimum (vmapped, jitted): r = 0 -> 0.10", r = 20 e-
    -> >= 0.25"; a too-small field of view (n_pix p / 2 < theta_E) is much worse."""
    ps = jnp.geomspace(0.03, 0.4, 12)
    best = {}
    for rn in (0.0, 20.0):
        noise = lp.PixelNoise(
            exposure_time=1000.0, sky_rate=1.0, read_noise=rn, n_exposures=4.0
        )
        errs = jax.jit(jax.vmap(lambda p, nz=noise: _sigma_theta_e(p, nz)))(ps)
        one = _sigma_theta_e(ps[5], noise)
        np.testing.assert_allclose(errs[5], one, rtol=1e-4)
        assert bool(jnp.all(jnp.isfinite(errs)))
        best[rn] = float(ps[jnp.argmin(errs)])
        # FOV 24 * 0.03 = 0.72" < 2 theta_E: the ring is cut off.
        assert float(errs[0]) > 3 * float(errs.min())
    assert best[0.0] < 0.16, best
    assert best[20.0] > 1.5 * best[0.0], best


def test_field_of_view_constraint_in_the_optimiser():
    """optimise_design with the field-of-view constraint: a design objective that
    prefers small pixels stops where the field just contains the radius."""
    n_pix, radius = 32, 1.6

    def objective(d):
        return d["p"]  # smaller pixels always better (resolution only)

    res = design.optimise_design(
        objective,
        {"p": jnp.asarray(0.2)},
        ({"p": 0.01}, {"p": 0.5}),
        steps=300,
        optimizer=optax.adam(0.1),
        constraints=[
            design.Constraint(
                lambda d: lp.field_of_view_margin(d["p"], n_pix, radius), weight=1e3
            )
        ],
        progress=False,
    )
    assert abs(float(res.params["p"]) - 2 * radius / n_pix) < 0.01
    assert float(lp.field_of_view_margin(0.2, n_pix, radius)) < 0
