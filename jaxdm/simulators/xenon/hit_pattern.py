"""Per-PMT light collection, S1/S2 hit patterns, top-array images and the TBA.

The light-collection model (direct solid angle plus a diffuse PTFE/total-reflection
pool) is described in :mod:`.pmt`. Hit patterns have shape ``(..., n_top + n_bottom)``
(top array first) in detected photons [phd].

``expected_hit_pattern`` is the differentiable mean (in every position, geometry and
optical parameter); ``sample_hit_pattern`` draws the counts (multinomial: each
emitted photon reaches at most one PMT and is detected with ``pmt_efficiency``; or
Poisson, exact when the number of photons is itself Poisson).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..._args import check_choice, check_int
from ..._checks import check_key
from ..._typing import Array
from . import _guards as _g
from .pmt import LightConfig, OpticalParams, PMTArrays, check_optics, check_pmt_arrays

_SIGNALS = ("s1", "s2")
DEFAULT_LIGHT_CONFIG = LightConfig()


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


def _pool(pmts: PMTArrays, optics: OpticalParams):
    """Probabilities that a diffuse-pool photon reaches one top / one bottom PMT."""
    r, a = pmts.tpc_radius, pmts.photocathode_radius
    cap = jnp.pi * r * r
    wall = 2 * jnp.pi * r * (pmts.z_top - pmts.z_bottom)
    f_cap = cap / (2 * cap + wall)
    f_wall = wall / (2 * cap + wall)
    cov_top = pmts.n_top * a * a / (r * r)
    cov_bot = pmts.n_bottom * a * a / (r * r)
    tir, refl = optics.tir_fraction, optics.ptfe_reflectivity
    p_top = f_cap * (1 - tir) * cov_top
    p_bot = f_cap * cov_bot
    p_back = (
        f_cap * tir
        + f_cap * (1 - tir) * (1 - cov_top) * refl
        + f_cap * (1 - cov_bot) * refl
        + f_wall * refl
    )
    return p_top / (1 - p_back) / pmts.n_top, p_bot / (1 - p_back) / pmts.n_bottom


def _collection(x, y, z, pmts, optics, signal, config):
    """Per-PMT probability that an emitted photon reaches the photocathode (..., K)."""
    a = pmts.photocathode_radius
    t = optics.surface_transmission
    if signal == "s1":
        cos_c = jnp.sqrt(1.0 - 1.0 / optics.n_liquid**2)

        def cut(cos_t):
            return t * jax.nn.sigmoid((cos_t - cos_c) / optics.critical_width)

        top = _direct(x, y, z, pmts.xy_top, pmts.z_top, a, config, cut)
        bot = _direct(x, y, z, pmts.xy_bottom, pmts.z_bottom, a, config)
    else:
        top = _direct(x, y, z, pmts.xy_top, pmts.z_top, a, config)
        bot = t * _direct(x, y, z, pmts.xy_bottom, pmts.z_bottom, a, config)
    direct = jnp.concatenate([top, bot], axis=-1)
    rest = 1.0 - jnp.sum(direct, axis=-1, keepdims=True)
    q_top, q_bot = _pool(pmts, optics)
    pool = jnp.concatenate(
        [
            jnp.broadcast_to(q_top, (pmts.n_top,)),
            jnp.broadcast_to(q_bot, (pmts.n_bottom,)),
        ]
    )
    return direct + rest * jnp.broadcast_to(pool, direct.shape)


def _check_position(x, y, z, pmts, signal):
    x = _g.guard_values(x, "x")
    y = _g.guard_values(y, "y")
    r2 = x * x + y * y
    x = _g.guard_relation(
        x,
        r2 > pmts.tpc_radius**2,
        "`x`, `y`: the position lies outside the TPC (sqrt(x^2 + y^2) > "
        "pmts.tpc_radius).",
    )
    if signal == "s1":
        if z is None:
            raise ValueError(
                "`z` is required for signal='s1' (S1 emission height, cm)."
            )
        z = _g.guard_values(z, "z", upper=0.0)
        z = _g.guard_relation(
            z, z < -pmts.height, "`z` lies below the cathode (z < -pmts.height)."
        )
    elif z is None:
        z = pmts.z_s2
    else:
        z = _g.guard_values(z, "z")
        z = _g.guard_relation(
            z,
            (z <= pmts.z_liquid) | (z >= pmts.z_top),
            "`z` for signal='s2' must lie in the gas gap (pmts.z_liquid, pmts.z_top).",
        )
    x, y, z = jnp.broadcast_arrays(x, y, z)
    return x, y, z


def _prepare(x, y, z, pmts, optics, signal):
    signal = check_choice(signal, "signal", _SIGNALS)
    pmts = check_pmt_arrays(pmts)
    optics = check_optics(OpticalParams() if optics is None else optics)
    x, y, z = _check_position(x, y, z, pmts, signal)
    return x, y, z, pmts, optics, signal


def light_collection_map(
    x,
    y,
    z=None,
    *,
    pmts: PMTArrays,
    optics: OpticalParams | None = None,
    signal: str = "s1",
    config: LightConfig = DEFAULT_LIGHT_CONFIG,
) -> Array:
    """Probability that a photon emitted at (x, y, z) reaches each photocathode.

    Args:
        x: Emission x [cm], any shape broadcastable with ``y``/``z``.
        y: Emission y [cm]; ``sqrt(x^2 + y^2) <= pmts.tpc_radius``.
        z: S1: interaction height [cm] in ``[-pmts.height, 0]`` (required). S2: the
            emission height in the gas gap (default ``pmts.z_s2``).
        pmts: PMT geometry (:class:`~.pmt.PMTArrays`).
        optics: Optical parameters (default :class:`~.pmt.OpticalParams`).
        signal: "s1" (scintillation in the liquid) or "s2" (electroluminescence).
        config: Quadrature settings (static :class:`~.pmt.LightConfig`).

    Returns:
        Shape (..., n_top + n_bottom), dimensionless; the sum over PMTs is the light
        collection efficiency (before the PMT efficiency).
    """
    x, y, z, pmts, optics, signal = _prepare(x, y, z, pmts, optics, signal)
    return _collection(x, y, z, pmts, optics, signal, config)


def expected_hit_pattern(
    n_photons,
    x,
    y,
    z=None,
    *,
    pmts: PMTArrays,
    optics: OpticalParams | None = None,
    signal: str = "s1",
    config: LightConfig = DEFAULT_LIGHT_CONFIG,
) -> Array:
    """Mean detected photons per PMT [phd]: ``n_photons * pmt_efficiency * map``.

    Differentiable in ``n_photons``, the position, the geometry and the optics.

    Args:
        n_photons: Emitted photons (S1 scintillation or S2 electroluminescence),
            finite and >= 0, broadcastable with the position.
        x: Emission x [cm], any shape broadcastable with ``y``/``z``.
        y: Emission y [cm]; ``sqrt(x^2 + y^2) <= pmts.tpc_radius``.
        z: S1: interaction height [cm] in ``[-pmts.height, 0]`` (required). S2: the
            emission height in the gas gap (default ``pmts.z_s2``).
        pmts: PMT geometry (:class:`~.pmt.PMTArrays`).
        optics: Optical parameters (default :class:`~.pmt.OpticalParams`).
        signal: "s1" (scintillation in the liquid) or "s2" (electroluminescence).
        config: Quadrature settings (static :class:`~.pmt.LightConfig`).

    Returns:
        Shape (..., n_top + n_bottom) [phd].
    """
    x, y, z, pmts, optics, signal = _prepare(x, y, z, pmts, optics, signal)
    n = _g.guard_values(n_photons, "n_photons", low=0.0)
    n, x, y, z = jnp.broadcast_arrays(n, x, y, z)
    p = _collection(x, y, z, pmts, optics, signal, config)
    return (n * optics.pmt_efficiency)[..., None] * p


def sample_hit_pattern(
    key,
    n_photons,
    x,
    y,
    z=None,
    *,
    pmts: PMTArrays,
    optics: OpticalParams | None = None,
    signal: str = "s1",
    method: str = "multinomial",
    config: LightConfig = DEFAULT_LIGHT_CONFIG,
) -> Array:
    """Draw detected photons per PMT [phd] for one or a batch of emissions.

    ``method="multinomial"``: each of the ``n_photons`` photons is detected by at
    most one PMT, ``counts ~ Multinomial(n, [eps p_1, ..., eps p_K, rest])`` (exact;
    ``n_photons`` must be integer-valued). ``method="poisson"``: independent
    ``Poisson(n eps p_i)`` per PMT (exact when ``n_photons`` is a Poisson mean).
    Not differentiable (use :func:`expected_hit_pattern`).

    Args:
        key: Typed PRNG key.
        n_photons: Emitted photons, >= 0, broadcastable with the position.
        x: Emission x [cm], any shape broadcastable with ``y``/``z``.
        y: Emission y [cm]; ``sqrt(x^2 + y^2) <= pmts.tpc_radius``.
        z: S1: interaction height [cm] in ``[-pmts.height, 0]`` (required). S2: the
            emission height in the gas gap (default ``pmts.z_s2``).
        pmts: PMT geometry (:class:`~.pmt.PMTArrays`).
        optics: Optical parameters (default :class:`~.pmt.OpticalParams`).
        signal: "s1" (scintillation in the liquid) or "s2" (electroluminescence).
        config: Quadrature settings (static :class:`~.pmt.LightConfig`).
        method: "multinomial" or "poisson".

    Returns:
        Counts (float), shape (..., n_top + n_bottom) [phd].
    """
    check_key(key)
    method = check_choice(method, "method", ("multinomial", "poisson"))
    x, y, z, pmts, optics, signal = _prepare(x, y, z, pmts, optics, signal)
    n = _g.guard_values(n_photons, "n_photons", low=0.0)
    n, x, y, z = jnp.broadcast_arrays(n, x, y, z)
    p = optics.pmt_efficiency * _collection(x, y, z, pmts, optics, signal, config)
    if method == "poisson":
        return jax.random.poisson(key, n[..., None] * p).astype(p.dtype)
    n = _g.guard_relation(
        n, n != jnp.round(n), "`n_photons` must be integer-valued for the multinomial."
    )
    probs = jnp.concatenate([p, 1.0 - jnp.sum(p, -1, keepdims=True)], axis=-1)
    counts = jax.random.multinomial(key, n, jnp.clip(probs, 0.0, 1.0))
    return counts[..., :-1].astype(p.dtype)


def _check_hits(hits, pmts, name="hits"):
    hits = jnp.asarray(hits)
    k = pmts.n_top + pmts.n_bottom
    if hits.ndim < 1 or hits.shape[-1] != k:
        raise ValueError(
            f"`{name}` must have shape (..., n_top + n_bottom = {k}); got {hits.shape}."
        )
    return _g.guard_values(hits, name, low=0.0)


def top_bottom_asymmetry(hits, pmts: PMTArrays) -> Array:
    """TBA = (top - bottom) / (top + bottom) of a hit pattern.

    Args:
        hits: Counts per PMT [phd], shape (..., n_top + n_bottom), finite, >= 0.
        pmts: PMT geometry (gives ``n_top``).

    Returns:
        Shape (...); NaN where the pattern is empty (top + bottom = 0: undefined).
    """
    hits = _check_hits(hits, pmts)
    top = jnp.sum(hits[..., : pmts.n_top], axis=-1)
    bot = jnp.sum(hits[..., pmts.n_top :], axis=-1)
    tot = top + bot
    return jnp.where(tot > 0, (top - bot) / jnp.where(tot > 0, tot, 1.0), jnp.nan)


def hit_image(hits, pmts: PMTArrays, image_size: int = 16, array: str = "top"):
    """Rasterise one array's hit pattern onto a fixed square grid.

    The square ``[-tpc_radius, tpc_radius]^2`` is cut into ``image_size^2`` pixels;
    each PMT's count is added to the pixel containing its centre (PMTs sharing a
    pixel are summed, so the image total equals the array total). Row index runs
    along y, column along x. Linear in ``hits`` (differentiable).

    Args:
        hits: Counts per PMT [phd], shape (..., n_top + n_bottom), >= 0.
        pmts: PMT geometry.
        image_size: Pixels per side (static).
        array: "top" or "bottom".

    Returns:
        Shape (..., image_size, image_size) [phd per pixel].
    """
    image_size = check_int(image_size, "image_size", minimum=1)
    array = check_choice(array, "array", ("top", "bottom"))
    pmts = check_pmt_arrays(pmts)
    hits = _check_hits(hits, pmts)
    if array == "top":
        xy, h = pmts.xy_top, hits[..., : pmts.n_top]
    else:
        xy, h = pmts.xy_bottom, hits[..., pmts.n_top :]
    edge = (xy + pmts.tpc_radius) / (2 * pmts.tpc_radius) * image_size
    idx = jnp.clip(jnp.floor(edge).astype(jnp.int32), 0, image_size - 1)
    flat = idx[:, 1] * image_size + idx[:, 0]
    onehot = jax.nn.one_hot(flat, image_size * image_size, dtype=h.dtype)
    img = h @ onehot
    return img.reshape(*h.shape[:-1], image_size, image_size)


def mean_s1_collection(
    pmts: PMTArrays,
    optics: OpticalParams | None = None,
    *,
    n_r: int = 12,
    n_z: int = 12,
    config: LightConfig = DEFAULT_LIGHT_CONFIG,
) -> Array:
    """Volume-averaged S1 light collection of the model (before the PMT efficiency).

    Averages ``sum_i light_collection_map`` over the drift volume (uniform in
    ``r^2`` and ``z``: midpoint rule with ``n_r x n_z`` points on a ray; the map is
    nearly azimuthally symmetric).

    Args:
        pmts: PMT geometry.
        optics: Optical parameters (default :class:`~.pmt.OpticalParams`).
        n_r: Radial midpoints (static).
        n_z: Height midpoints (static).
        config: Quadrature settings.

    Returns:
        Scalar, dimensionless.
    """
    n_r = check_int(n_r, "n_r", minimum=1)
    n_z = check_int(n_z, "n_z", minimum=1)
    pmts = check_pmt_arrays(pmts)
    optics = check_optics(OpticalParams() if optics is None else optics)
    u = (jnp.arange(n_r) + 0.5) / n_r
    v = (jnp.arange(n_z) + 0.5) / n_z
    r = pmts.tpc_radius * jnp.sqrt(u)[:, None]
    z = -pmts.height * v[None, :]
    r, z = jnp.broadcast_arrays(r, z)
    m = _collection(r, jnp.zeros_like(r), z, pmts, optics, "s1", config)
    return jnp.mean(jnp.sum(m, axis=-1))


def pmt_efficiency_for_g1(
    g1, pmts: PMTArrays, optics: OpticalParams | None = None
) -> Array:
    """Effective PMT efficiency that makes the model's volume-averaged g1 equal ``g1``.

    The analytic model omits bulk absorption, grid shadowing and PMT window losses,
    so its light collection is an upper bound (about 0.82 for the LZ-like arrays
    against ``g1 / QE ~ 0.37`` measured); scaling the per-photon efficiency to a
    measured g1 (LZ: 0.1136 phd/photon, arXiv:2207.03764) puts those losses into one
    number while keeping the model's pattern shape. Use as
    ``eqx.tree_at(lambda o: o.pmt_efficiency, optics, pmt_efficiency_for_g1(...))``.

    Args:
        g1: Photon detection efficiency [phd/photon], in (0, 1].
        pmts: PMT geometry.
        optics: Optical parameters.

    Returns:
        Scalar efficiency [phd per photon reaching a photocathode].

    Raises:
        ValueError: If ``g1`` is outside (0, 1] or exceeds the model's mean light
            collection (no efficiency <= 1 reaches it).
    """
    g1 = _g.guard_values(g1, "g1", low=0.0, allow_equal=False, upper=1.0)
    lce = mean_s1_collection(pmts, optics)
    eff = g1 / lce
    return _g.guard_relation(
        eff,
        eff > 1.0,
        "`g1` exceeds the model's mean S1 light collection: no PMT efficiency <= 1 "
        "reaches it.",
    )
