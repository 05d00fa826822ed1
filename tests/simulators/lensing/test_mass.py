"""Mass profiles: identities, Poisson equation, closed forms, cosmology."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

from jaxdm.simulators import lensing as L

XS = np.array([0.31, -0.72, 1.23, 0.05, -1.4, 0.9])
YS = np.array([0.42, 0.93, -0.31, 1.52, -0.8, 0.02])


def _div(fn, params, x, y):
    gx = jax.vmap(jax.grad(lambda a, b: fn(a, b, params)[0], 0))(x, y)
    gy = jax.vmap(jax.grad(lambda a, b: fn(a, b, params)[1], 1))(x, y)
    return gx + gy


PROFILES = [
    (L.sis_deflection, L.sis_convergence, L.SISParams(theta_e=1.1, x0=0.1)),
    (L.sie_deflection, L.sie_convergence, L.SIEParams(theta_e=1.1, q=0.6, phi=0.3)),
    (
        L.sie_deflection,
        L.sie_convergence,
        L.SIEParams(theta_e=1.1, q=0.6, phi=0.3, s=0.2, y0=0.1),
    ),
    (
        L.epl_deflection,
        L.epl_convergence,
        L.EPLParams(theta_e=1.0, gamma=2.3, q=0.7, phi=0.5),
    ),
    (
        L.epl_deflection,
        L.epl_convergence,
        L.EPLParams(theta_e=1.0, gamma=1.7, q=0.5, phi=-1.0),
    ),
    (L.nfw_deflection, L.nfw_convergence, L.NFWParams(kappa_s=0.3, theta_s=0.8)),
    (
        L.tnfw_deflection,
        L.tnfw_convergence,
        L.TNFWParams(kappa_s=0.3, theta_s=0.8, tau=3.0),
    ),
]


@pytest.mark.x64
@pytest.mark.parametrize(("defl", "conv", "params"), PROFILES)
def test_poisson_equation(defl, conv, params):
    """div alpha = 2 kappa (autodiff divergence; exact identity, f64 rtol 1e-9)."""
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    x, y = jnp.asarray(XS), jnp.asarray(YS)
    np.testing.assert_allclose(
        _div(defl, params, x, y), 2 * conv(x, y, params), rtol=1e-9
    )


@pytest.mark.x64
def test_poisson_equation_finite_difference_grid():
    """Numerical (central-difference) divergence on a grid equals 2 kappa.

    Grid step 1e-4 arcsec: truncation error O(h^2 alpha''') ~ 1e-7 relative away
    from the centre; tolerance 1e-5.
    """
    h = 1e-4
    g = jnp.linspace(0.3, 1.5, 7)
    x, y = jnp.meshgrid(g, g - 0.9)
    for defl, conv, params in PROFILES:
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        dax = (defl(x + h, y, params)[0] - defl(x - h, y, params)[0]) / (2 * h)
        day = (defl(x, y + h, params)[1] - defl(x, y - h, params)[1]) / (2 * h)
        np.testing.assert_allclose(dax + day, 2 * conv(x, y, params), rtol=1e-5)


@pytest.mark.x64
@pytest.mark.parametrize(
    ("defl", "pot", "params"),
    [
        (L.sis_deflection, L.sis_potential, L.SISParams(theta_e=0.9)),
        (
            L.sie_deflection,
            L.sie_potential,
            L.SIEParams(theta_e=1.1, q=0.6, phi=0.3, s=0.2),
        ),
        (L.epl_deflection, L.epl_potential, L.EPLParams(theta_e=1.0, gamma=2.3, q=0.7)),
        (L.nfw_deflection, L.nfw_potential, L.NFWParams(kappa_s=0.3, theta_s=0.8)),
        (
            L.tnfw_deflection,
            L.tnfw_potential,
            L.TNFWParams(kappa_s=0.3, theta_s=0.8, tau=3.0, x0=0.1),
        ),
        (
            L.tnfw_deflection,
            L.tnfw_potential,
            L.TNFWParams(kappa_s=0.05, theta_s=0.3, tau=0.7, y0=-0.2),
        ),
        (
            L.shear_deflection,
            L.shear_potential,
            L.ShearParams(gamma1=0.05, gamma2=-0.02),
        ),
        (
            L.point_mass_deflection,
            L.point_mass_potential,
            L.PointMassParams(theta_e=0.5),
        ),
    ],
)
def test_potential_gradient_is_deflection(defl, pot, params):
    """grad psi = alpha (exact identity)."""
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    x, y = jnp.asarray(XS), jnp.asarray(YS)
    gx, gy = jax.vmap(jax.grad(lambda a, b: pot(a, b, params), (0, 1)))(x, y)
    ax, ay = defl(x, y, params)
    np.testing.assert_allclose(gx, ax, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gy, ay, rtol=1e-9, atol=1e-12)


@pytest.mark.x64
@pytest.mark.parametrize("tau", [0.7, 3.0, 20.0])
def test_tnfw_potential_laplacian_is_twice_convergence(tau):
    """Laplacian psi / 2 = kappa for the tNFW potential (autodiff Hessian trace,
    f64 rtol 1e-8) and grad psi equals a central finite difference (step 1e-5,
    rtol 1e-7), so the closed form of Baltz, Marshall & Oguri (2009) is consistent
    with tnfw_deflection and tnfw_convergence at, below and beyond truncation."""
    p = L.TNFWParams(kappa_s=0.2, theta_s=0.6, tau=tau, x0=-0.1, y0=0.05)
    p = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), p)
    x, y = jnp.asarray(XS), jnp.asarray(YS)
    hess = jax.vmap(jax.hessian(lambda v: L.tnfw_potential(v[0], v[1], p)))(
        jnp.stack([x, y], -1)
    )
    lap = hess[:, 0, 0] + hess[:, 1, 1]
    np.testing.assert_allclose(lap / 2, L.tnfw_convergence(x, y, p), rtol=1e-8)
    h = 1e-5
    fd_x = (L.tnfw_potential(x + h, y, p) - L.tnfw_potential(x - h, y, p)) / (2 * h)
    fd_y = (L.tnfw_potential(x, y + h, p) - L.tnfw_potential(x, y - h, p)) / (2 * h)
    ax, ay = L.tnfw_deflection(x, y, p)
    np.testing.assert_allclose(fd_x, ax, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(fd_y, ay, rtol=1e-7, atol=1e-10)
    # Through the dispatcher too (it raised TypeError before).
    np.testing.assert_allclose(L.potential(x, y, (p,)), L.tnfw_potential(x, y, p))


def test_sis_deflection_magnitude_is_theta_e():
    """|alpha_SIS| = theta_E everywhere (f32 exact identity, rtol 1e-6)."""
    p = L.SISParams(theta_e=1.3, x0=0.2, y0=-0.1)
    ax, ay = L.sis_deflection(jnp.asarray(XS), jnp.asarray(YS), p)
    np.testing.assert_allclose(np.hypot(ax, ay), 1.3, rtol=1e-6)


def test_sie_reduces_to_sis_and_epl_slope2_equals_sie():
    """SIE(q=1) == SIS; EPL(gamma=2) == SIE (same theta_E convention)."""
    x, y = jnp.asarray(XS), jnp.asarray(YS)
    sis = L.sis_deflection(x, y, L.SISParams(theta_e=1.1, x0=0.1))
    sie1 = L.sie_deflection(x, y, L.SIEParams(theta_e=1.1, q=1.0, phi=0.7, x0=0.1))
    np.testing.assert_allclose(sie1, sis, rtol=1e-6, atol=1e-6)
    for q in (0.9, 0.6, 0.35):
        sie = L.sie_deflection(x, y, L.SIEParams(theta_e=1.1, q=q, phi=0.4, y0=0.1))
        epl = L.epl_deflection(
            x, y, L.EPLParams(theta_e=1.1, gamma=2.0, q=q, phi=0.4, y0=0.1)
        )
        # f32 series summation, 40 terms: truncation < f^40 ~ 1e-9 at q=0.35.
        np.testing.assert_allclose(epl, sie, rtol=2e-5, atol=2e-6)


@pytest.mark.x64
def test_nfw_closed_form_and_enclosed_mass():
    """NFW deflection = (2/theta) int_0^theta kappa theta' dtheta' (Golse & Kneib 2002
    eq. 10 vs quadrature of Bartelmann 1996 kappa), and the projected mass inside R
    equals the line-of-sight integral of rho = rho_s / (r/rs (1+r/rs)^2).
    Quadrature rtol 1e-7."""
    m200, c, zl, zs = 1e12, 8.0, 0.5, 1.5
    p = L.nfw_params_from_mass(m200, c, zl, zs)
    ks, ts = float(p.kappa_s), float(p.theta_s)
    for theta in (0.1 * ts, 0.999 * ts, ts, 1.0004 * ts, 3.7 * ts):
        num, _ = integrate.quad(
            lambda t: t * float(L.nfw_convergence(jnp.asarray(t), jnp.asarray(0.0), p)),
            0,
            theta,
            limit=200,
        )
        ax, _ = L.nfw_deflection(jnp.asarray(theta), jnp.asarray(0.0), p)
        np.testing.assert_allclose(float(ax), 2 * num / theta, rtol=1e-7)
    # Enclosed projected mass in physical units vs 3D density integral.
    r_s, rho_s = (float(v) for v in L.nfw_physical(m200, c, zl))
    big_r = 1.7 * r_s
    m2d_formula = (
        4 * np.pi * rho_s * r_s**3 * float(L.nfw_enclosed_fraction(jnp.asarray(1.7)))
    )

    def sigma(rr):
        def f(z):
            return rho_s / (np.hypot(rr, z) / r_s * (1 + np.hypot(rr, z) / r_s) ** 2)

        return 2 * integrate.quad(f, 0, np.inf, limit=200)[0]

    m2d_num = integrate.quad(
        lambda rr: 2 * np.pi * rr * sigma(rr), 0, big_r, limit=200
    )[0]
    np.testing.assert_allclose(m2d_formula, m2d_num, rtol=1e-6)
    # Mean convergence inside theta equals M_2D / (pi theta^2 Sigma_cr).
    sig = float(L.sigma_crit(zl, zs, unit="kpc"))
    d_d = float(L.angular_diameter_distance(zl)) * 1e3
    theta = big_r / d_d / 4.84813681109536e-6
    ax, _ = L.nfw_deflection(jnp.asarray(theta), jnp.asarray(0.0), p)
    mean_kappa = float(ax) / theta  # alpha = theta * mean kappa
    np.testing.assert_allclose(
        mean_kappa, m2d_formula / (np.pi * big_r**2 * sig), rtol=1e-9
    )
    assert ks > 0


@pytest.mark.x64
def test_tnfw_mass_and_large_tau_limit():
    """tNFW (Baltz et al. 2009) projected mass vs quadrature of its 3D density, and
    tau -> inf recovers NFW (difference O(1/tau))."""
    tau = 4.0
    x = 1.9
    m = float(L.tnfw_enclosed_fraction(jnp.asarray(x), jnp.asarray(tau)))

    def rho(r):
        return 1 / (r * (1 + r) ** 2) * tau**2 / (tau**2 + r**2)

    def sigma(rr):
        return (
            2 * integrate.quad(lambda z: rho(np.hypot(rr, z)), 0, np.inf, limit=200)[0]
        )

    num = integrate.quad(lambda rr: 2 * np.pi * rr * sigma(rr), 0, x, limit=200)[0]
    np.testing.assert_allclose(4 * np.pi * m, num, rtol=1e-6)
    big = float(L.tnfw_enclosed_fraction(jnp.asarray(x), jnp.asarray(1e5)))
    np.testing.assert_allclose(
        big, float(L.nfw_enclosed_fraction(jnp.asarray(x))), rtol=1e-4
    )


@pytest.mark.x64
def test_cosmology_distances():
    """Flat LCDM D_C vs scipy quadrature (rtol 1e-10) and a reference value:
    astropy FlatLambdaCDM(H0=70, Om0=0.3) gives D_A(z=0.5) = 1259.1 Mpc
    (no radiation)."""
    cosmo = L.Cosmology(h0=70.0, omega_m=0.3)
    d = float(L.angular_diameter_distance(jnp.asarray(0.5), cosmo))
    num = integrate.quad(
        lambda z: 299792.458 / (70 * np.sqrt(0.3 * (1 + z) ** 3 + 0.7)), 0, 0.5
    )[0]
    np.testing.assert_allclose(d, num / 1.5, rtol=1e-10)
    np.testing.assert_allclose(d, 1259.1, rtol=1e-3)


def test_bad_inputs():
    with pytest.raises(ValueError, match="`q`"):
        L.SIEParams(theta_e=1.0, q=1.2)
    with pytest.raises(ValueError, match="`q`"):
        L.EPLParams(theta_e=1.0, q=0.0)
    with pytest.raises(ValueError, match="`theta_e`"):
        L.SISParams(theta_e=-1.0)
    with pytest.raises(ValueError, match="`z_source`"):
        L.sigma_crit(0.5, 0.5)
    with pytest.raises(ValueError, match="`gamma`"):
        L.EPLParams(theta_e=1.0, gamma=3.5)
    pop = L.SubhaloPopulation(
        profile=L.NFWParams(kappa_s=jnp.ones(2), theta_s=jnp.ones(2)),
        mask=jnp.ones(2),
    )
    with pytest.raises(TypeError, match="SubhaloPopulation|closed-form"):
        L.potential(jnp.zeros(2), jnp.zeros(2), pop)
