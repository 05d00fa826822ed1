"""Spatial templates: gNFW J/D-factor maps, diffuse proxies, stellar disk and bulge.

All line-of-sight integrals use Gauss-Legendre quadrature in the variable ``t`` with
``s = s_* + r_min sinh(t)``, where ``s_*`` is the distance of closest approach to the
Galactic Centre along the line of sight and ``r_min = R_sun sin(psi)`` the impact
parameter: the Jacobian ``r_min cosh t`` removes the cusp of GC-peaked densities. The
``t`` range is split at the point of closest approach (``t = 0``), with half of the
nodes on each side, so that the nodes cluster where a cusp peaks; 64 nodes reach
1e-8 relative accuracy for gNFW and gNFW^2 (0.5 <= gamma <= 1.45, 1e-4 deg <= psi
<= 180 deg, tested against adaptive quadrature).

Line-of-sight extent. J- and D-factors integrate to ``s_max = 1e5`` kpc
(:data:`S_MAX_CONVERGED`) by default: the untruncated profile, converged to < 1e-7
(the D-factor's tail falls as s^-2, so a 60 kpc cut biases D by up to 6% towards the
anticentre, J by up to 6e-4). Pass a smaller ``s_max`` for a truncated halo. The
arbitrary-unit diffuse proxies (gas, IC, disk, bulge) fall exponentially and keep
``s_max = 60`` kpc.

Galactocentric frame: the Sun at (x, y, z) = (R_sun, 0, 0), a point at distance s
towards (l, b) sits at ``x = R_sun - s cos b cos l``, ``y = -s cos b sin l``,
``z = s sin b`` (kpc).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ..._checks import guard_finite, guard_in_range, guard_positive
from ...constants import DEGREE, KPC_CM

#: Default line-of-sight extent of J- and D-factors [kpc]: the untruncated profile
#: (the D-factor tail beyond 1e5 kpc is < 1e-7 of the total for the default halo).
S_MAX_CONVERGED = 1e5

#: Smallest angle from the Galactic Centre at which a line of sight is evaluated
#: [rad]; closer directions (a pixel centred on the GC) take the value at this angle
#: (impact parameter 8.5e-7 kpc), which keeps float32 finite for steep cusps.
PSI_FLOOR = 1e-7

#: Lower end [rad] of the numerical psi integral of a cone (10 x PSI_FLOOR); the cusp
#: below it is added in closed form (see :func:`j_factor_cone`).
CONE_CUSP_PSI = 1e-6


class GNFWHalo(eqx.Module):
    """Generalised NFW profile ``rho = rho_s (r/r_s)^-gamma (1 + r/r_s)^(gamma-3)``.

    Normalised by the local density ``rho(R_sun) = rho_sun``. Defaults: gamma = 1.2 (the
    GCE best fit, Daylan et al. 2016, arXiv 1402.6703; Calore et al. 2015, arXiv
    1409.0042), r_s = 20 kpc, rho_sun = 0.4 GeV/cm^3, R_sun = 8.5 kpc (Calore et al.).

    Functions taking a halo check it (eagerly: ValueError; under ``jit``: an
    ``equinox.EquinoxRuntimeError``), naming ``halo.<field>``: ``0 <= gamma < 3``
    (``< 1.5`` for the annihilation J-factor of a cone, which diverges otherwise),
    ``r_s``, ``rho_sun``, ``r_sun`` finite and > 0.

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


def checked_halo(halo: GNFWHalo | None, name: str = "halo", gamma_max: float = 3.0):
    """Return ``halo`` (default :class:`GNFWHalo` if None) with its fields guarded.

    Args:
        halo: The halo or None.
        name: The public argument name used in messages (``"<name>.gamma"`` ...).
        gamma_max: Exclusive upper bound on ``gamma``.

    Returns:
        A :class:`GNFWHalo` whose fields carry the checks when traced.

    Raises:
        TypeError: If ``halo`` is not a :class:`GNFWHalo`.
        ValueError: Concrete out-of-range fields (EquinoxRuntimeError when traced).
    """
    if halo is None:
        return GNFWHalo()
    if not isinstance(halo, GNFWHalo):
        raise TypeError(f"`{name}` must be a GNFWHalo; got {type(halo).__name__}.")
    return GNFWHalo(
        guard_in_range(halo.gamma, f"{name}.gamma", 0.0, gamma_max, closed="left"),
        guard_positive(halo.r_s, f"{name}.r_s"),
        guard_positive(halo.rho_sun, f"{name}.rho_sun"),
        guard_positive(halo.r_sun, f"{name}.r_sun"),
    )


def gnfw_density(r, halo: GNFWHalo):
    """Density of the gNFW halo [GeV/cm^3] at Galactocentric radius ``r`` [kpc].

    ``halo`` is not checked here (this is the integrand of the line-of-sight
    integrals, which check it once); see :func:`checked_halo`.
    """
    x, xs = r / halo.r_s, halo.r_sun / halo.r_s
    return (
        halo.rho_sun
        * (r / halo.r_sun) ** (-halo.gamma)
        * ((1 + x) / (1 + xs)) ** (halo.gamma - 3)
    )


def _gl(n):
    x, w = np.polynomial.legendre.leggauss(n)
    return jnp.asarray(x), jnp.asarray(w)


def _check_nodes(n, name):
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2:
        raise ValueError(f"`{name}` must be an integer >= 2; got {n!r}.")
    return int(n)


def _check_s_max(s_max):
    if isinstance(s_max, jax.core.Tracer):
        return guard_positive(s_max, "s_max")
    if not (np.ndim(s_max) == 0 and np.isfinite(s_max) and s_max > 0):
        raise ValueError(f"`s_max` must be a finite number > 0 [kpc]; got {s_max!r}.")
    return s_max


def los_integral(density_fn, l_deg, b_deg, r_sun=8.5, *, s_max=60.0, n_nodes=96):
    """Line-of-sight integral ``int_0^s_max density(x, y, z) ds`` [density * kpc].

    Gauss-Legendre in ``t`` (module docstring), ``n_nodes // 2`` nodes on each side of
    the point of closest approach to the Galactic Centre.

    Args:
        density_fn: ``f(x, y, z, r) -> density`` in Galactocentric kpc (``r`` the
            radius).
        l_deg: Longitudes [deg], shape (P,).
        b_deg: Latitudes [deg], shape (P,).
        r_sun: Sun's Galactocentric distance [kpc].
        s_max: Upper end of the line of sight [kpc].
        n_nodes: Gauss-Legendre nodes (even; an odd number is rounded down).

    Returns:
        Array of shape (P,).
    """
    n_nodes = _check_nodes(n_nodes, "n_nodes")
    s_max = _check_s_max(s_max)
    l_deg = guard_finite(jnp.asarray(l_deg), "l_deg")
    b_deg = guard_finite(jnp.asarray(b_deg), "b_deg")
    if l_deg.shape != b_deg.shape:
        raise ValueError(
            f"`l_deg` and `b_deg` must have the same shape; got {l_deg.shape} and "
            f"{b_deg.shape}."
        )
    l_r = l_deg * DEGREE
    b_r = b_deg * DEGREE
    cl, sl, cb, sb = jnp.cos(l_r), jnp.sin(l_r), jnp.cos(b_r), jnp.sin(b_r)
    cospsi = cb * cl
    # sin^2 psi = sin^2 b + cos^2 b sin^2 l, free of the cancellation in 1 - cos^2 psi;
    # floored at PSI_FLOOR (a direction at the Galactic Centre itself).
    sinpsi = jnp.sqrt(jnp.maximum(sb**2 + (cb * sl) ** 2, PSI_FLOOR**2))
    r_min = r_sun * sinpsi
    s_star = r_sun * cospsi
    t0 = jnp.arcsinh(-s_star / r_min)
    t1 = jnp.arcsinh((s_max - s_star) / r_min)
    tm = jnp.clip(jnp.zeros_like(t0), t0, t1)  # closest approach (t = 0) if passed
    x, w = _gl(max(n_nodes // 2, 1))
    lead = (1,) * t0.ndim
    x, w = x.reshape(lead + (-1,)), w.reshape(lead + (-1,))
    total = 0.0
    for a, b in ((t0, tm), (tm, t1)):
        half = 0.5 * (b - a)
        t = 0.5 * (a + b)[..., None] + half[..., None] * x
        s = s_star[..., None] + r_min[..., None] * jnp.sinh(t)
        r = r_min[..., None] * jnp.cosh(t)
        xg = r_sun - s * cospsi[..., None]
        yg = -s * (cb * sl)[..., None]
        zg = s * sb[..., None]
        f = density_fn(xg, yg, zg, r) * r  # ds = r_min cosh t dt = r dt
        total = total + half * jnp.sum(f * w, axis=-1)
    return total


def j_factor_map(
    l_deg,
    b_deg,
    halo: GNFWHalo | None = None,
    *,
    n_nodes=96,
    s_max=S_MAX_CONVERGED,
):
    """Annihilation J-factor per solid angle ``dJ/dOmega = int rho^2 ds``.

    Evaluated at the given directions (pixel centres): a pixel containing the
    Galactic Centre needs its own average (:func:`j_factor_cone`).

    Args:
        l_deg: Longitudes [deg], shape (P,).
        b_deg: Latitudes [deg], shape (P,).
        halo: The gNFW halo parameters (checked, see :class:`GNFWHalo`).
        n_nodes: Gauss-Legendre nodes along the line of sight.
        s_max: Line-of-sight extent [kpc]; the default is the untruncated profile.

    Returns:
        ``dJ/dOmega`` [GeV^2 cm^-5 sr^-1], shape (P,).
    """
    halo = checked_halo(halo)
    fn = lambda x, y, z, r: gnfw_density(r, halo) ** 2  # noqa: E731
    return KPC_CM * los_integral(
        fn, l_deg, b_deg, halo.r_sun, s_max=s_max, n_nodes=n_nodes
    )


def d_factor_map(
    l_deg,
    b_deg,
    halo: GNFWHalo | None = None,
    *,
    n_nodes=96,
    s_max=S_MAX_CONVERGED,
):
    """Decay D-factor per solid angle ``dD/dOmega = int rho ds`` [GeV cm^-2 sr^-1].

    Arguments as :func:`j_factor_map`; shape (P,).
    """
    halo = checked_halo(halo)
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
    s_max=S_MAX_CONVERGED,
):
    """J-factor (power=2) or D-factor (power=1) of a cone of half-angle psi_max.

    ``J = 2 pi int_0^psi_max sin(psi) dJ/dOmega(psi) dpsi``, split at
    ``psi_0 = CONE_CUSP_PSI = 1e-6`` rad:

    - ``[psi_0, psi_max]``: Gauss-Legendre (``n_psi`` nodes) in ``ln psi``, where the
      integrand ``psi^2 dJ/dOmega`` is smooth;
    - ``[0, psi_0]``: the cusp in closed form. For ``r << r_s`` the line-of-sight
      integral of ``rho^power ~ r^(-power gamma)`` scales as ``psi^-k`` with
      ``k = max(power gamma - 1, 0)``, so this piece is
      ``2 pi psi_0^2 dJ/dOmega(psi_0) / (2 - k)`` (small-angle ``sin psi = psi``;
      relative corrections O(R_sun psi_0 / r_s) ~ 4e-7 on a piece that is itself
      a fraction ``(psi_0 / psi_max)^(2 - k)`` of J). Finite for gamma < 1.5 (J) and
      gamma < 3 (D).

    Args:
        psi_max_deg: Cone half-angle [deg], in [1e-3, 180].
        halo: The gNFW halo (checked; gamma < 1.5 for power 2).
        power: 2 (annihilation J) or 1 (decay D).
        n_psi: Gauss-Legendre nodes in ln psi.
        n_nodes: Nodes along each line of sight.
        s_max: Line-of-sight extent [kpc].

    Returns:
        J [GeV^2 cm^-5] (power 2) or D [GeV cm^-2] (power 1), scalar.
    """
    if power not in (1, 2):
        raise ValueError(f"`power` must be 1 (decay) or 2 (annihilation); got {power}.")
    halo = checked_halo(halo, gamma_max=1.5 if power == 2 else 3.0)
    n_psi = _check_nodes(n_psi, "n_psi")
    psi_max = guard_in_range(psi_max_deg, "psi_max_deg", 1e-3, 180.0)
    psi_max = psi_max * DEGREE
    x, w = _gl(n_psi)
    psi_0 = jnp.full_like(psi_max, CONE_CUSP_PSI)
    lo, hi = jnp.log(psi_0), jnp.log(psi_max)
    psi = jnp.exp(0.5 * (lo + hi) + 0.5 * (hi - lo) * x)
    psi_all = jnp.concatenate([psi, jnp.reshape(psi_0, (1,))])
    fn = j_factor_map if power == 2 else d_factor_map
    dj = fn(
        jnp.zeros_like(psi_all),
        psi_all / DEGREE,
        halo,
        n_nodes=n_nodes,
        s_max=s_max,
    )
    body = 0.5 * (hi - lo) * jnp.sum(w * psi * jnp.sin(psi) * dj[:-1])
    k = jnp.maximum(power * halo.gamma - 1.0, 0.0)
    cusp = psi_0**2 * dj[-1] / (2.0 - k)
    return 2 * jnp.pi * (body + cusp)


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
