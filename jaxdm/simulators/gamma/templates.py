"""Spatial templates: gNFW J/D-factor maps, diffuse proxies, stellar disk and bulge.

All line-of-sight integrals use Gauss-Legendre quadrature in the variable ``t`` with
``s = s_* + r_min sinh(t)``, where ``s_*`` is the distance of closest approach to the
Galactic Centre along the line of sight and ``r_min = R_sun sin(psi)`` the impact
parameter: the Jacobian ``r_min cosh t`` removes the cusp of GC-peaked densities, so a
fixed number of nodes reaches ~1e-4 relative accuracy for gNFW^2 down to psi ~ 0.01 deg.

Galactocentric frame: the Sun at (x, y, z) = (R_sun, 0, 0), a point at distance s
towards (l, b) sits at ``x = R_sun - s cos b cos l``, ``y = -s cos b sin l``,
``z = s sin b`` (kpc).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import Array

from ...constants import DEGREE, KPC_CM


class GNFWHalo(eqx.Module):
    """Generalised NFW profile ``rho = rho_s (r/r_s)^-gamma (1 + r/r_s)^(gamma-3)``.

    Normalised by the local density ``rho(R_sun) = rho_sun``. Defaults: gamma = 1.2 (the
    GCE best fit, Daylan et al. 2016, arXiv 1402.6703; Calore et al. 2015, arXiv
    1409.0042), r_s = 20 kpc, rho_sun = 0.4 GeV/cm^3, R_sun = 8.5 kpc (Calore et al.).

    Attributes:
        gamma: Inner slope (dimensionless), scalar.
        r_s: Scale radius [kpc].
        rho_sun: Local dark-matter density [GeV/cm^3].
        r_sun: Sun's Galactocentric distance [kpc].
    """

    gamma: Array = eqx.field(converter=jnp.asarray, default=1.2)
    r_s: Array = eqx.field(converter=jnp.asarray, default=20.0)
    rho_sun: Array = eqx.field(converter=jnp.asarray, default=0.4)
    r_sun: Array = eqx.field(converter=jnp.asarray, default=8.5)


def gnfw_density(r, halo: GNFWHalo):
    """Density of the gNFW halo [GeV/cm^3] at Galactocentric radius ``r`` [kpc]."""
    x, xs = r / halo.r_s, halo.r_sun / halo.r_s
    return (
        halo.rho_sun
        * (r / halo.r_sun) ** (-halo.gamma)
        * ((1 + x) / (1 + xs)) ** (halo.gamma - 3)
    )


def _gl(n):
    x, w = np.polynomial.legendre.leggauss(n)
    return jnp.asarray(x), jnp.asarray(w)


def los_integral(density_fn, l_deg, b_deg, r_sun=8.5, *, s_max=60.0, n_nodes=96):
    """Line-of-sight integral ``int_0^s_max density(x, y, z) ds`` [density * kpc].

    Args:
        density_fn: ``f(x, y, z, r) -> density`` in Galactocentric kpc (``r`` the
            radius).
        l_deg: Longitudes [deg], shape (P,).
        b_deg: Latitudes [deg], shape (P,).
        r_sun: Sun's Galactocentric distance [kpc].
        s_max: Upper end of the line of sight [kpc].
        n_nodes: Gauss-Legendre nodes.

    Returns:
        Array of shape (P,).
    """
    l_r = jnp.asarray(l_deg) * DEGREE
    b_r = jnp.asarray(b_deg) * DEGREE
    cl, sl, cb, sb = jnp.cos(l_r), jnp.sin(l_r), jnp.cos(b_r), jnp.sin(b_r)
    cospsi = cb * cl
    # sin^2 psi = sin^2 b + cos^2 b sin^2 l, free of the cancellation in 1 - cos^2 psi.
    sinpsi = jnp.sqrt(sb**2 + (cb * sl) ** 2 + 1e-30)
    r_min = jnp.maximum(r_sun * sinpsi, 1e-6)
    s_star = r_sun * cospsi
    t0 = jnp.arcsinh(-s_star / r_min)
    t1 = jnp.arcsinh((s_max - s_star) / r_min)
    x, w = _gl(n_nodes)
    half = 0.5 * (t1 - t0)
    t = 0.5 * (t1 + t0)[:, None] + half[:, None] * x[None, :]
    s = s_star[:, None] + r_min[:, None] * jnp.sinh(t)
    r = r_min[:, None] * jnp.cosh(t)
    xg = r_sun - s * (cb * cl)[:, None]
    yg = -s * (cb * sl)[:, None]
    zg = s * sb[:, None]
    f = density_fn(xg, yg, zg, r) * r  # ds = r_min cosh t dt = r dt
    return half * jnp.sum(f * w[None, :], axis=-1)


def j_factor_map(l_deg, b_deg, halo: GNFWHalo | None = None, *, n_nodes=96, s_max=60.0):
    """Annihilation J-factor per solid angle ``dJ/dOmega = int rho^2 ds``.

    Args:
        l_deg: Longitudes [deg], shape (P,).
        b_deg: Latitudes [deg], shape (P,).
        halo: The gNFW halo parameters.
        n_nodes: Gauss-Legendre nodes along the line of sight.
        s_max: Line-of-sight extent [kpc].

    Returns:
        ``dJ/dOmega`` [GeV^2 cm^-5 sr^-1], shape (P,).
    """
    halo = GNFWHalo() if halo is None else halo
    fn = lambda x, y, z, r: gnfw_density(r, halo) ** 2  # noqa: E731
    return KPC_CM * los_integral(
        fn, l_deg, b_deg, halo.r_sun, s_max=s_max, n_nodes=n_nodes
    )


def d_factor_map(l_deg, b_deg, halo: GNFWHalo | None = None, *, n_nodes=96, s_max=60.0):
    """Decay D-factor per solid angle ``dD/dOmega = int rho ds`` [GeV cm^-2 sr^-1]."""
    halo = GNFWHalo() if halo is None else halo
    fn = lambda x, y, z, r: gnfw_density(r, halo)  # noqa: E731
    return KPC_CM * los_integral(
        fn, l_deg, b_deg, halo.r_sun, s_max=s_max, n_nodes=n_nodes
    )


def j_factor_cone(
    psi_max_deg,
    halo: GNFWHalo | None = None,
    *,
    power=2,
    n_psi=48,
    n_nodes=96,
    s_max=60.0,
):
    """J-factor (power=2) or D-factor (power=1) of a cone of half-angle psi_max.

    ``J = 2 pi int_0^psi_max sin(psi) dJ/dOmega(psi) dpsi`` with the substitution
    ``psi = psi_max v^4`` (removing the cusp ``psi^(1-2 gamma)``) and Gauss-Legendre in
    v.

    Returns:
        J [GeV^2 cm^-5] (power 2) or D [GeV cm^-2] (power 1), scalar.
    """
    halo = GNFWHalo() if halo is None else halo
    if power not in (1, 2):
        raise ValueError(f"`power` must be 1 (decay) or 2 (annihilation); got {power}.")
    x, w = _gl(n_psi)
    v = 0.5 * (x + 1)
    psi = psi_max_deg * DEGREE * v**4
    fn = j_factor_map if power == 2 else d_factor_map
    dj = fn(jnp.zeros_like(psi), psi / DEGREE, halo, n_nodes=n_nodes, s_max=s_max)
    jac = psi_max_deg * DEGREE * 4 * v**3 * 0.5
    return 2 * jnp.pi * jnp.sum(w * jac * jnp.sin(psi) * dj)


def isotropic_map(l_deg, b_deg):
    """Isotropic template (unit intensity), shape (P,)."""
    return jnp.ones_like(jnp.asarray(l_deg, dtype=float))


def bubbles_map(
    l_deg, b_deg, *, half_width_deg=20.0, height_deg=50.0, base_deg=0.0, edge_deg=2.0
):
    """Geometric stand-in for the Fermi bubbles: two uniform elliptical lobes.

    Lobes centred on (0, +-(base + height)/2) with semi-axes ``half_width_deg`` in l and
    ``(height - base)/2`` in |b|, smooth logistic edge of width ``edge_deg`` (so the
    template is differentiable in its shape parameters). Extent after Su, Slatyer &
    Finkbeiner 2010 (arXiv 1005.5480): |b| up to ~50 deg, ~40 deg wide. This is not the
    spectral-component bubbles template of Ackermann et al. 2014; pass your own map for
    that.

    Returns:
        Unit-intensity template, shape (P,).
    """
    lc = jnp.asarray(l_deg)
    bc = jnp.abs(jnp.asarray(b_deg))
    centre, semi = 0.5 * (base_deg + height_deg), 0.5 * (height_deg - base_deg)
    rho = jnp.sqrt((lc / half_width_deg) ** 2 + ((bc - centre) / semi) ** 2)
    return 1 / (1 + jnp.exp((rho - 1) * semi / edge_deg))


def _cyl(x, y):
    return jnp.sqrt(x**2 + y**2)


def gas_map(l_deg, b_deg, *, r_gas=4.0, z_gas=0.15, r_sun=8.5, n_nodes=96):
    """pi0 + bremsstrahlung proxy: ``int n_gas ds`` with n ~ exp(-R/R_g) sech^2(z/z_g).

    An analytic gas-like disk (scale length R_g [kpc], height z_g [kpc]) standing in for
    the Fermi-LAT diffuse model (gll_iem), which is not bundled; analyses such as
    Calore et al. 2015 use GALPROP/gas-map templates instead. Arbitrary units, shape
    (P,).
    """
    fn = lambda x, y, z, r: jnp.exp(-_cyl(x, y) / r_gas) / jnp.cosh(z / z_gas) ** 2  # noqa: E731
    return los_integral(fn, l_deg, b_deg, r_sun, n_nodes=n_nodes)


def ic_map(l_deg, b_deg, *, r_ic=6.0, z_ic=2.0, r_sun=8.5, n_nodes=96):
    """Inverse-Compton proxy: ``int exp(-R/R_ic) sech(z/z_ic) ds`` (broad, smooth).

    Mimics the kpc-thick emissivity of CR electrons on the interstellar radiation field
    (Strong, Moskalenko & Reimer 2000, astro-ph/9811296). Arbitrary units, shape (P,).
    """
    fn = lambda x, y, z, r: jnp.exp(-_cyl(x, y) / r_ic) / jnp.cosh(z / z_ic)  # noqa: E731
    return los_integral(fn, l_deg, b_deg, r_sun, n_nodes=n_nodes)


def disk_map(l_deg, b_deg, *, r_d=5.0, z_s=0.3, r_sun=8.5, n_nodes=96):
    """Stellar disk ``int exp(-R/R_d) exp(-|z|/z_s) ds`` (NPTFit: R_d=5, z_s=0.3).

    Thin disk defaults from Mishra-Sharma et al. 2017 (NPTFit, arXiv 1612.03173) and
    Lee et al. 2016 (arXiv 1506.05124); the thick disk uses z_s = 1 kpc. Arbitrary
    units.
    """
    fn = lambda x, y, z, r: jnp.exp(-_cyl(x, y) / r_d - jnp.abs(z) / z_s)  # noqa: E731
    return los_integral(fn, l_deg, b_deg, r_sun, n_nodes=n_nodes)


def bulge_map(
    l_deg,
    b_deg,
    *,
    x0=1.59,
    y0=0.62,
    z0=0.43,
    bar_angle_deg=20.0,
    r_sun=8.5,
    n_nodes=96,
):
    """Boxy bulge: Dwek et al. 1995 model G2, ``exp(-r_s^2 / 2)``.

    Here ``r_s^4 = ((x/x0)^2 + (y/y0)^2)^2 + (z/z0)^4`` in the bar frame (kpc, angle ~20
    deg).

    Reference: Dwek et al. 1995, ApJ 445, 716 (COBE/DIRBE fit, as used for the GCE bulge
    templates of Macias et al. 2018, arXiv 1611.06644). Arbitrary units, shape (P,).
    """
    ca, sa = np.cos(bar_angle_deg * DEGREE), np.sin(bar_angle_deg * DEGREE)

    def fn(x, y, z, r):
        xb, yb = x * ca - y * sa, x * sa + y * ca
        rs4 = ((xb / x0) ** 2 + (yb / y0) ** 2) ** 2 + (z / z0) ** 4
        return jnp.exp(-0.5 * jnp.sqrt(rs4))

    return los_integral(fn, l_deg, b_deg, r_sun, n_nodes=n_nodes)
