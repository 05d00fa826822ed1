"""Xenon design space: detector mapping, wall background, gradients of Z0."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm import design
from jaxdm.simulators import xenon


def test_design_round_trip_and_fiducial_mass():
    base = xenon.lz_like()
    d = design.xenon_design_from_detector(base)
    det = design.xenon_detector(eqx.tree_at(lambda d: d.g1, d, jnp.asarray(0.15)), base)
    assert float(det.g1) == pytest.approx(0.15)
    assert float(det.se_gain) == float(base.se_gain)
    np.testing.assert_allclose(
        det.fiducial_mass_tonne, base.fiducial_mass_tonne, rtol=1e-6
    )


@pytest.mark.x64
def test_wall_fraction_closed_form_and_gradient():
    """Side-wall term for a thin shell vs the analytic radial integral.

    Mean over a disc of radius a of exp(-(R - r)/lam), weight 2 r / a^2, equals
    2 lam/a^2 e^{-(R-a)/lam} [a - lam (1 - e^{-a/lam})]; the end caps give
    (lam/h)(e^{z1/lam} - e^{z0/lam}) + the same for the cathode.
    """
    base = xenon.lz_like()
    det = eqx.tree_at(
        lambda d: (d.fid_radius, d.fid_z_min, d.fid_z_max),
        base,
        (jnp.asarray(60.0), jnp.asarray(-120.0), jnp.asarray(-20.0)),
    )
    lam, a, big_r, h = 6.0, 60.0, float(base.radius), float(base.height)
    side = (
        2 * lam / a**2 * np.exp(-(big_r - a) / lam) * (a - lam * (1 - np.exp(-a / lam)))
    )
    top = lam / 100.0 * (np.exp(-20.0 / lam) - np.exp(-120.0 / lam))
    bottom = lam / 100.0 * (np.exp(-(-120.0 + h) / lam) - np.exp(-(-20.0 + h) / lam))
    np.testing.assert_allclose(
        design.wall_exposure_fraction(det, lam, n=48), side + top + bottom, rtol=1e-8
    )

    def f(p):
        d = eqx.tree_at(lambda d: (d.fid_radius, d.fid_z_min), det, (p["r"], p["z"]))
        return design.wall_exposure_fraction(d, lam)

    res = design.check_gradient(f, {"r": jnp.asarray(60.0), "z": jnp.asarray(-120.0)})
    assert res.ok, res


@pytest.mark.slow  # compiles grad of the profiled Z0 through expected_histogram
@pytest.mark.x64
def test_xenon_z0_gradient_matches_finite_differences():
    base = xenon.lz_like()
    scen = design.XenonScenario(base=base, n_grid=12, n_depth=2, n_gl=2)
    d0 = design.xenon_design_from_detector(base)

    def z0(p):
        d = eqx.tree_at(
            lambda d: (d.drift_field, d.g1, d.fid_radius, d.s2_threshold),
            d0,
            (p["field"], p["g1"], p["r"], p["s2"]),
        )
        return design.xenon_discovery_significance(d, scen)

    p = {
        "field": jnp.asarray(193.0),
        "g1": jnp.asarray(0.1136),
        "r": jnp.asarray(68.8),
        "s2": jnp.asarray(600.0),
    }
    res = design.check_gradient(z0, p, rtol=1e-4, atol=1e-9)
    assert res.ok, res


def _sky():
    g = np.arange(-29.5, 30.0, 1.0)
    ll, bb = np.meshgrid(g, g)
    rng = np.random.default_rng(0)
    maps = rng.uniform(0.5, 2.0, size=(2, 6, ll.size))
    fine = np.linspace(0.05, 1.95, 6)  # log10 GeV centres, 0.38 dex apart
    return maps, ll.ravel(), bb.ravel(), fine


@pytest.mark.x64
def test_gamma_soft_design_counts_converge_to_hard_cuts():
    maps, ll, bb, fine = _sky()
    psi = np.degrees(np.arccos(np.cos(np.radians(bb)) * np.cos(np.radians(ll))))
    edges = np.array([0.0, 0.9, 2.0])
    hard_pix = (psi < 20.3) & (np.abs(bb) > 2.4)
    hard_e = np.stack(
        [
            (fine >= lo) & (fine < hi)
            for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        ],
        1,
    )
    hard = np.einsum("cep,p,ek->ck", maps, hard_pix, hard_e)
    soft = design.gamma_design_counts(
        maps, ll, bb, fine, roi_radius=20.3, b_cut=2.4, log10_edges=edges, softness=1e-4
    )
    # No pixel centre lies within 1e-3 deg of a cut here and the fine energies are
    # >= 0.05 dex from the edges: with softness 1e-4 the weights are hard (Phi(-10)).
    np.testing.assert_allclose(soft, hard, rtol=1e-10)

    def f(p):
        c = design.gamma_design_counts(
            maps,
            ll,
            bb,
            fine,
            roi_radius=p["r"],
            b_cut=p["b"],
            log10_edges=jnp.array([0.0, p["e"], 2.0]),
            softness=0.5,
        )
        s, b = c[0], c[1]
        return jnp.sum(s**2 / b)

    res = design.check_gradient(
        f, {"r": jnp.asarray(20.3), "b": jnp.asarray(2.4), "e": jnp.asarray(0.9)}
    )
    assert res.ok, res


@pytest.mark.x64
def test_gaussian_blur_matches_the_simulator_psf_and_fisher_gradient():
    """gaussian_blur == lensing.apply_psf with a centre-sampled Gaussian PSF (zero
    boundary); difference only from the kernel's discrete normalisation, ~1e-9
    relative at sigma = 1.5 px (Poisson summation), and its 10-sigma truncation."""
    from jaxdm.simulators import lensing

    img = jnp.asarray(np.random.default_rng(1).uniform(size=(16, 16)))
    sigma_arcsec, pix = 0.15, 0.1
    cfg = lensing.ObservationConfig(
        n_pix=16,
        pixel_scale=pix,
        psf=lensing.GaussianPSF(
            fwhm=float(2 * np.sqrt(2 * np.log(2)) * sigma_arcsec),
            truncation=10.0,
            sampling="center",
        ),
    )
    np.testing.assert_allclose(
        design.gaussian_blur(img, sigma_arcsec / pix),
        lensing.apply_psf(img, cfg),
        rtol=1e-6,
        atol=1e-9,
    )
    cfg0 = lensing.ObservationConfig(n_pix=12, pixel_scale=0.2, supersampling=1)

    def image(t):
        params = lensing.LensingParams(
            lens=(lensing.SIEParams(theta_e=t[0], q=0.8, phi=0.3, x0=0.0, y0=0.0),),
            source=(
                lensing.SersicParams(
                    amplitude=5.0, r_e=0.3, n=1.5, q=0.9, phi=0.0, x0=0.05, y0=0.0
                ),
            ),
        )
        return lensing.expected_image(params, cfg0)

    def sigma_theta_e(p):
        f = design.lensing_design_fisher(
            image,
            jnp.array([1.0]),
            exposure_time=p["t"],
            psf_sigma=p["psf"],
            pixel_scale=0.2,
            background_sigma=0.01,
        )
        return design.marginal_error(f, 0)

    res = design.check_gradient(
        sigma_theta_e, {"t": jnp.asarray(300.0), "psf": jnp.asarray(0.25)}, rtol=1e-4
    )
    assert res.ok, res
    assert res.analytic[0] > 0  # wider PSF: larger error (ravel order: psf, t)
    assert res.analytic[1] < 0  # longer exposure: smaller error


@pytest.mark.slow  # four expected histograms (~1 min of op-by-op dispatch)
def test_two_run_split_adds_up():
    """Live-time split f: the two runs' histograms are f and (1 - f) of one run's."""
    base = xenon.lz_like()
    scen = design.XenonScenario(base=base, n_grid=8, n_depth=2, n_gl=2)
    d = design.xenon_design_from_detector(base)
    s1, b1 = design.xenon_expected_counts(d, scen)
    s2, b2 = design.xenon_two_run_counts(d, d, 0.3, scen)
    n = s1.size
    np.testing.assert_allclose(s2[:n], 0.3 * s1.ravel(), rtol=1e-5)
    np.testing.assert_allclose(s2[n:], 0.7 * s1.ravel(), rtol=1e-5)
    np.testing.assert_allclose(b2[:, :n] + b2[:, n:], b1.reshape(2, -1), rtol=1e-5)
