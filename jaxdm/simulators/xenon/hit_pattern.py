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

from ..._args import check_choice, check_int
from ..._checks import check_key
from ..._poison import poison_policy
from ..._typing import Array
from . import _guards as _g
from .light_model import _collection, _direct, _gl_nodes, _pool  # noqa: F401
from .pmt import LightConfig, OpticalParams, PMTArrays, check_optics, check_pmt_arrays

_SIGNALS = ("s1", "s2")
DEFAULT_LIGHT_CONFIG = LightConfig()


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


@poison_policy
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


@poison_policy
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


@poison_policy
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


@poison_policy
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


@poison_policy
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


@poison_policy
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


@poison_policy
def pmt_efficiency_for_g1(
    g1, pmts: PMTArrays, optics: OpticalParams | None = None
) -> Array:
    """Effective PMT efficiency that makes the model's volume-averaged g1 equal ``g1``.

    The losses of the light model sit in ``optics.absorption_length`` (its default
    gives the LZ-like arrays a mean S1 collection of 0.366, so g1 = 0.1136
    phd/photon, LZ arXiv:2207.03764, needs the default efficiency 0.31); scaling the
    per-photon efficiency to a measured g1 instead keeps the pattern shape (and the
    S2 top/bottom split) and moves the remaining mismatch into one number. Use as
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
