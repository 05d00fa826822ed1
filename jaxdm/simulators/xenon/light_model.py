"""The analytic light-collection model: direct light, gas-gap emission, diffuse pools.

Per emission point ``(x, y, z)`` and PMT ``i`` the model gives the probability that
a photon reaches the photocathode (:func:`_collection`, shape ``(..., n_top +
n_bottom)``); geometry and parameters are in :mod:`.pmt`.

**Emission in the liquid** (S1). Direct light to a photocathode disk is its solid
angle ``Omega_i / 4 pi`` (:func:`_direct`), attenuated by ``exp(-L / lambda)`` over
the path ``L`` in the liquid (``lambda = optics.absorption_length``); light to the
top array is transmitted through the liquid surface (``surface_transmission``) only
inside the critical cone ``sin(theta_c) = 1 / n_liquid``. The rest joins the liquid
diffuse pool.

**Emission in the gas gap** (S2, and S1 of above-anode gas events), at height
``z_liquid < z < z_top``:

* up: direct solid angle of the top photocathodes (no refraction, no absorption);
* down: the liquid surface reflects the fraction ``R(theta)`` (Fresnel, gas to
  liquid, unpolarised) specularly, so the top array also sees the mirror image of the
  source at ``2 z_liquid - z`` weighted by ``R``; the transmitted light is refracted
  into the critical cone of the liquid: its intensity per liquid solid angle is
  ``n^2 cos(theta_l) / cos(theta_g) T(theta_g) / 4 pi`` (the Jacobian of Snell's law,
  ``sin(theta_g) = n sin(theta_l)``), so the bottom array's direct share is the disk
  integral of that intensity, attenuated along the liquid path. The source is put on
  the surface for this part (the lateral offset in the few-mm gas layer, at most
  ``(z - z_liquid) tan(theta_g)``, is neglected);
* the upward photons that miss the photocathodes hit the top array's face (PTFE
  between PMTs, PMT windows) and are reflected diffusely with probability
  ``gas_reflectivity``; in the gas slab a diffuse photon heading down is reflected by
  the surface with the Lambertian mean ``R_L = 2 int R(mu) mu dmu``, heading up it
  reaches a top photocathode with the coverage ``c = n_top a^2 / R^2`` or is
  reflected with ``(1 - c) gas_reflectivity``; summing the series, a reflected photon
  reaches the top photocathodes with ``R_L c / (1 - R_L s)`` and the liquid with
  ``(1 - R_L) / (1 - R_L s)``, ``s = (1 - c) gas_reflectivity``. Light entering the
  liquid this way, and transmitted light missing the bottom array, joins the liquid
  pool.

This is what makes S2 light top-heavy: about half of it goes up and is collected in
the gas without losses, while the half going down crosses ~1.5 m of liquid and the
lossy diffuse pool. Published S2 area fractions on the top array: XENON1T ~0.63
(the S2 AFT band of the XENON1T analysis, arXiv:1906.04717, as coded in the public
straxen ``x1t_cuts.S2AreaFractionTop``, centre 0.62-0.66 at large S2), i.e. TBA ~
0.26; the XENON1T science-run-0 window 0.5-0.72 (public ``lax`` cuts).

**Liquid diffuse pool.** Photons not collected directly bounce inside a closed
cylinder (radius ``tpc_radius``, ``z_bottom`` to ``z_top``): per surface interaction
a photon lands on each end cap with probability ``f_cap = pi R^2 / S`` and on the
wall with ``f_wall`` (area fractions). At the top cap it is totally reflected with
probability ``tir_fraction``, else reaches a top photocathode with coverage
``n_top a^2 / R^2``; at the bottom cap a bottom photocathode with
``n_bottom a^2 / R^2``; PTFE reflects with ``ptfe_reflectivity``. Between two
interactions it survives absorption with ``exp(-L_mean / lambda)``, ``L_mean = 4V/S``
(the mean chord of a convex body, Cauchy's formula). Summing the geometric series,
the pool reaches each top (bottom) PMT with ``s p_top / (1 - s p_back) / n_top``.
Photons absorbed on a direct path are counted in the pool (a small overestimate of
the pool, at most ``sum_i direct_i (exp(L / lambda) - 1)``).

References: Fresnel equations and Snell's law (Born & Wolf, Principles of Optics,
sec. 1.5); LXe refractive index 1.69 at 178 nm: Solovov et al., NIM A 516 (2004)
462; total internal reflection and the S1 bottom fraction: LZ TDR, arXiv:1703.09144,
sec. 6.5.3; mean chord ``4V/S``: Cauchy (1832), e.g. Kellerer, Radiat. Res. 47
(1971) 359.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..._args import check_int
from .pmt import LightConfig, OpticalParams, PMTArrays


def _gl_nodes(config: LightConfig):
    """Gauss-Legendre nodes/weights on [0, 1] and azimuths (static NumPy arrays)."""
    n_r = check_int(config.n_radial, "config.n_radial", minimum=1)
    n_phi = check_int(config.n_azimuthal, "config.n_azimuthal", minimum=3)
    t, w = np.polynomial.legendre.leggauss(n_r)
    phi = 2 * np.pi * (np.arange(n_phi) + 0.5) / n_phi
    return 0.5 * (t + 1.0), 0.5 * w, phi


def _direct(px, py, pz, xy, z_plane, a, config, cut=None):
    """Fraction of isotropic photons from (px, py, pz) reaching each disk directly.

    ``Omega / 4 pi = (1 / 4 pi) int_disk h / d^3 dA`` for disks of radius ``a``
    centred at ``xy`` (K, 2) in the plane ``z = z_plane``. The radial coordinate is
    mapped to ``g = h / sqrt(h^2 + r^2)`` (uniform Gauss-Legendre nodes in ``g``), in
    which the on-axis integrand is constant: the on-axis solid angle
    ``2 pi (1 - h / sqrt(h^2 + a^2))`` is exact and the peak of the integrand near a
    close disk is resolved. Azimuth: uniform midpoint nodes. ``cut(cos_theta)``
    multiplies each node (the critical-angle step).

    Returns:
        Shape (..., K).
    """
    t, w, phi = _gl_nodes(config)
    dtype = jnp.result_type(px, float)
    t, w = jnp.asarray(t, dtype), jnp.asarray(w, dtype)
    cos_p, sin_p = jnp.asarray(np.cos(phi), dtype), jnp.asarray(np.sin(phi), dtype)
    lead = (1,) * jnp.ndim(px)
    t, w = t.reshape(lead + (-1,)), w.reshape(lead + (-1,))
    h = jnp.abs(z_plane - pz)[..., None]  # (..., 1)
    g_min = h * jax.lax.rsqrt(h * h + a * a)
    g = g_min + (1.0 - g_min) * t  # (..., Mr)
    w_u = (1.0 - g_min) * w * 2.0 * h * h / (a * a * g**3)  # weights in r^2/a^2
    r = h * jnp.sqrt(jnp.maximum(1.0 / (g * g) - 1.0, 0.0))  # (..., Mr)
    r = r[..., None, :, None]  # (..., 1, Mr, 1)
    cx = xy[:, 0].reshape(lead + (-1, 1, 1))
    cy = xy[:, 1].reshape(lead + (-1, 1, 1))
    dx = cx + r * cos_p.reshape(lead + (1, 1, -1)) - px[..., None, None, None]
    dy = cy + r * sin_p.reshape(lead + (1, 1, -1)) - py[..., None, None, None]
    h4 = h[..., None, None, :]  # (..., 1, 1, 1)
    d2 = dx * dx + dy * dy + h4 * h4
    inv_d = jax.lax.rsqrt(d2)
    f = h4 * inv_d * inv_d * inv_d
    if cut is not None:
        f = f * cut(h4 * inv_d)
    f = jnp.sum(f, axis=-1) / phi.size  # (..., K, Mr)
    return 0.25 * a * a * jnp.sum(f * w_u[..., None, :], axis=-1)


# Floor of square-root arguments beyond the critical angle (finite gradients there;
# the logistic step or the total-reflection branch zeroes those values anyway).
_TINY = 1e-12
_MU_NODES, _MU_WEIGHTS = np.polynomial.legendre.leggauss(48)
_MU_NODES, _MU_WEIGHTS = 0.5 * (_MU_NODES + 1.0), 0.5 * _MU_WEIGHTS


def fresnel_reflectance(cos_i, n1, n2):
    """Unpolarised Fresnel reflectance at incidence ``cos_i`` from index n1 into n2.

    Total reflection (1) beyond the critical angle when ``n1 > n2``.

    Args:
        cos_i: Cosine of the angle of incidence, in [0, 1], any shape.
        n1: Refractive index of the incident medium.
        n2: Refractive index of the other medium.

    Returns:
        Reflectance in [0, 1], the shape of ``cos_i``.
    """
    sin2_t = (n1 / n2) ** 2 * (1.0 - cos_i * cos_i)
    # Floored inside the sqrt: its gradient is finite at total reflection.
    cos_t = jnp.sqrt(jnp.maximum(1.0 - sin2_t, _TINY))
    rs = ((n1 * cos_i - n2 * cos_t) / (n1 * cos_i + n2 * cos_t)) ** 2
    rp = ((n1 * cos_t - n2 * cos_i) / (n1 * cos_t + n2 * cos_i)) ** 2
    return jnp.where(sin2_t >= 1.0, 1.0, 0.5 * (rs + rp))


def surface_reflectance_means(n_liquid):
    """Mean gas-to-liquid reflectance: isotropic (``int R dmu``) and Lambertian.

    Returns:
        ``(R_iso, R_lambert)``: ``int_0^1 R(mu) dmu`` (a point source's downward
        hemisphere) and ``2 int_0^1 R(mu) mu dmu`` (diffuse light), dimensionless.
    """
    mu = jnp.asarray(_MU_NODES, jnp.result_type(n_liquid, float))
    w = jnp.asarray(_MU_WEIGHTS, mu.dtype)
    r = fresnel_reflectance(mu, 1.0, n_liquid)
    return jnp.sum(w * r), 2.0 * jnp.sum(w * r * mu)


def _refracted_intensity(cos_l, n, width):
    """Gas-to-liquid transmitted intensity per liquid solid angle, times 4 pi.

    ``n^2 cos_l / cos_g * T(cos_g)`` with ``T = 1 - R`` written in the stable form
    ``T / cos_g = 2 n cos_l [(cos_g + n cos_l)^-2 + (cos_l + n cos_g)^-2]``; zero
    outside the critical cone (a logistic step of width ``width`` in ``cos_l``).
    """
    cos_c = jnp.sqrt(1.0 - 1.0 / (n * n))
    cos_g = jnp.sqrt(jnp.maximum(1.0 - n * n * (1.0 - cos_l * cos_l), _TINY))
    t_over = (
        2.0
        * n
        * cos_l
        * (1.0 / (cos_g + n * cos_l) ** 2 + 1.0 / (cos_l + n * cos_g) ** 2)
    )
    return n * n * cos_l * t_over * jax.nn.sigmoid((cos_l - cos_c) / width)


def _pool(pmts: PMTArrays, optics: OpticalParams):
    """Probabilities that a liquid-pool photon reaches one top / one bottom PMT."""
    r, a = pmts.tpc_radius, pmts.photocathode_radius
    height = pmts.z_top - pmts.z_bottom
    cap = jnp.pi * r * r
    wall = 2 * jnp.pi * r * height
    f_cap = cap / (2 * cap + wall)
    f_wall = wall / (2 * cap + wall)
    survive = jnp.exp(-(2.0 * r * height / (r + height)) / optics.absorption_length)
    cov_top = pmts.n_top * a * a / (r * r)
    cov_bot = pmts.n_bottom * a * a / (r * r)
    tir, refl = optics.tir_fraction, optics.ptfe_reflectivity
    p_top = survive * f_cap * (1 - tir) * cov_top
    p_bot = survive * f_cap * cov_bot
    p_back = survive * (
        f_cap * tir
        + f_cap * (1 - tir) * (1 - cov_top) * refl
        + f_cap * (1 - cov_bot) * refl
        + f_wall * refl
    )
    return p_top / (1 - p_back) / pmts.n_top, p_bot / (1 - p_back) / pmts.n_bottom


def _pool_share(pmts, optics, shape):
    q_top, q_bot = _pool(pmts, optics)
    pool = jnp.concatenate(
        [
            jnp.broadcast_to(q_top, (pmts.n_top,)),
            jnp.broadcast_to(q_bot, (pmts.n_bottom,)),
        ]
    )
    return jnp.broadcast_to(pool, shape)


def _cell(v):
    return v[..., None, None, None]


def _emission(x, y, z, gas, pmts, optics, config):
    """Per-PMT collection (..., K) of emission in the liquid and/or the gas gap.

    ``gas``: False (every point in the liquid), True (every point in the gas gap)
    or a boolean array of the positions' shape (mixed batches; three disk
    quadratures in all: the top array, the bottom array and the mirror image).
    """
    a, n = pmts.photocathode_radius, optics.n_liquid
    lam, width = optics.absorption_length, optics.critical_width
    mixed = not isinstance(gas, bool)
    g = _cell(jnp.asarray(gas)) if mixed else gas
    shape = jnp.shape(z)
    z_liq = jnp.broadcast_to(pmts.z_liquid, shape)
    cos_c = jnp.sqrt(1.0 - 1.0 / n**2)
    up = _cell(jnp.maximum(pmts.z_liquid - z, 0.0))

    def cut_top(cos_t):
        step = jax.nn.sigmoid((cos_t - cos_c) / width)
        liquid = optics.surface_transmission * step * jnp.exp(-up / (cos_t * lam))
        return jnp.where(g, 1.0, liquid) if mixed else liquid

    # Gas points send their downward light into the liquid at the surface.
    z_b = z_liq if gas is True else (jnp.where(gas, z_liq, z) if mixed else z)
    depth = _cell(z_b - pmts.z_bottom)

    def cut_bottom(cos_t):
        att = jnp.exp(-depth / (cos_t * lam))
        if gas is False:
            return att
        refr = _refracted_intensity(cos_t, n, width)
        return att * (jnp.where(g, refr, 1.0) if mixed else refr)

    top = _direct(
        x, y, z, pmts.xy_top, pmts.z_top, a, config, None if gas is True else cut_top
    )
    bot = _direct(x, y, z_b, pmts.xy_bottom, pmts.z_bottom, a, config, cut_bottom)
    if gas is False:
        direct = jnp.concatenate([top, bot], axis=-1)
        rest = 1.0 - jnp.sum(direct, axis=-1, keepdims=True)
        return direct + rest * _pool_share(pmts, optics, direct.shape)

    # Gas gap: mirror image of the source in the liquid surface, Fresnel-weighted.
    z_g = jnp.where(gas, z, 0.5 * (pmts.z_liquid + pmts.z_top)) if mixed else z

    def cut_mirror(cos_t):
        r = fresnel_reflectance(cos_t, 1.0, n)
        return jnp.where(g, r, 0.0) if mixed else r

    z_image = 2.0 * pmts.z_liquid - z_g
    mirror = _direct(x, y, z_image, pmts.xy_top, pmts.z_top, a, config, cut_mirror)
    r_iso, r_lamb = surface_reflectance_means(n)
    # Upward photons missing the photocathodes (direct or after the mirror).
    missed = 0.5 * (1.0 + r_iso) - jnp.sum(top + mirror, axis=-1, keepdims=True)
    cov = pmts.n_top * a * a / pmts.tpc_radius**2
    s = (1.0 - cov) * optics.gas_reflectivity
    back = missed * optics.gas_reflectivity / (1.0 - r_lamb * s)
    # Light in the liquid that missed the bottom photocathodes joins the pool.
    rest = (
        0.5 * (1.0 - r_iso) - jnp.sum(bot, axis=-1, keepdims=True) + back * (1 - r_lamb)
    )
    top_gas = top + mirror + back * r_lamb * cov / pmts.n_top
    if mixed:
        gg = jnp.asarray(gas)[..., None]
        rest_liquid = 1.0 - jnp.sum(top, -1, keepdims=True)
        rest_liquid = rest_liquid - jnp.sum(bot, -1, keepdims=True)
        top = jnp.where(gg, top_gas, top)
        rest = jnp.where(gg, rest, rest_liquid)
    else:
        top = top_gas
    direct = jnp.concatenate([top, bot], axis=-1)
    return direct + rest * _pool_share(pmts, optics, direct.shape)


def _collection(x, y, z, pmts, optics, signal, config):
    """Per-PMT probability that an emitted photon reaches the photocathode (..., K).

    ``signal``: "s1" (emitted in the liquid), "s2" (in the gas), or a boolean array
    of the positions' shape, True where the emission is in the gas (mixed batches).
    """
    if isinstance(signal, str):
        return _emission(x, y, z, signal == "s2", pmts, optics, config)
    return _emission(x, y, z, jnp.asarray(signal), pmts, optics, config)
