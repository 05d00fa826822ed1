"""Raw events: summed S1/S2 waveforms plus per-PMT S1/S2 hit patterns and TBA.

:func:`simulate_raw_events` renders an :class:`~.interactions.Interactions` record
(for single scatters from the fast simulator:
``interactions_from_events(simulate_events(...))``) into

* the summed waveform (:func:`~.waveform.simulate_waveform`, 10 ns samples);
* the S1 hit pattern: per site, detected photons ``Bin(n_photons, p_detect)`` (the
  waveform's detection probability, ``g1 lce(z)``, from
  :func:`~.pulse_timing.site_response`) shared over the PMTs by
  ``Multinomial(n_det, p_i / sum_j p_j)`` (drawn photon by photon by the inverse
  CDF up to 256 photons per site, the excess by ``jax.random.multinomial``: exact
  and ~10x faster than a 494-way scan of binomials) with ``p`` the map of
  :mod:`.hit_pattern` at the site (S1 geometry in the liquid and below the cathode;
  gas geometry for sites above the liquid);
* the S2 hit pattern: per site, electrons reaching the gas
  ``Bin(n_electrons, p_charge)`` (lifetime and extraction, as in the waveform),
  each giving ``gain`` phd on average, shared over the PMTs by the S2 map at the
  site's (x, y) and the electroluminescence height ``pmts.z_s2``: per-PMT counts
  ``Poisson(n_ext gain p_i / sum p)`` (the single-electron gain spread is not put
  into the per-PMT counts);
* the S1 and S2 top/bottom asymmetries.

The waveform fixes the totals' *means* (``sum`` of the mean hit pattern equals the
integral of :func:`~.waveform.expected_waveform` for ``spe_resolution``-free
pulses), while the PMT map fixes the *shape* of the pattern; the hit-pattern draws
are independent of the waveform's photon draws given the record (the sampled
pattern is not a split of the sampled waveform's photons). :func:`expected_raw_events`
gives the differentiable means of all of it.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ..._checks import check_key
from ..._poison import poison_policy
from ..._typing import Array
from . import _guards as _g
from .hit_pattern import DEFAULT_LIGHT_CONFIG, _collection, top_bottom_asymmetry
from .interactions import GAS, Interactions
from .pmt import LightConfig, OpticalParams, PMTArrays, check_optics, check_pmt_arrays
from .pulse_timing import site_response
from .waveform import (
    Waveform,
    WaveformConfig,
    WaveformParams,
    expected_waveform,
    simulate_waveform,
)


class RawEvents(eqx.Module):
    """Raw data of events (``batch`` = the record's event shape).

    Attributes:
        waveform: :class:`~.waveform.Waveform` (S1 and S2 windows).
        s1_hits: S1 detected photons per PMT [phd], ``(*batch, n_top + n_bottom)``.
        s2_hits: S2 phd per PMT, ``(*batch, n_top + n_bottom)``.
        s1_tba: S1 top/bottom asymmetry, ``batch`` (NaN for an empty pattern).
        s2_tba: S2 top/bottom asymmetry, ``batch``.
    """

    waveform: Waveform
    s1_hits: Array
    s2_hits: Array
    s1_tba: Array
    s2_tba: Array


def _shares(record, pmts, optics, config):
    """Per-site PMT shares of S1 and S2 light, each ``(*batch, k, n_pmt)``."""
    in_gas = record.region == GAS
    z = jnp.where(record.mask, record.z, -0.5 * pmts.height)
    x = jnp.where(record.mask, record.x, 0.0)
    y = jnp.where(record.mask, record.y, 0.0)
    p1 = _collection(x, y, z, pmts, optics, in_gas, config)
    p2 = _collection(x, y, jnp.full_like(z, pmts.z_s2), pmts, optics, "s2", config)
    norm = lambda p: p / jnp.sum(p, axis=-1, keepdims=True)  # noqa: E731
    return norm(p1), norm(p2)


def _check_sites(record, pmts):
    """Masked sites must lie inside the TPC and between the PMT planes."""
    m = record.mask
    r2 = jnp.where(m, record.x**2 + record.y**2, 0.0)
    x = _g.guard_relation(
        record.x,
        r2 > pmts.tpc_radius**2,
        "`record.x`, `record.y`: a site lies outside the TPC radius (pmts.tpc_radius).",
    )
    z = jnp.where(m, record.z, -0.5 * pmts.height)
    gas = record.region == GAS
    bad_z = (z <= pmts.z_bottom) | (z >= pmts.z_top) | (gas & (z <= pmts.z_liquid))
    bad_z = bad_z | (~gas & (z > 0.0))
    z = _g.guard_relation(
        record.z,
        bad_z,
        "`record.z`: a site lies outside the region its `record.region` allows "
        "(liquid/grid/below-cathode sites need pmts.z_bottom < z <= 0, gas sites "
        "pmts.z_liquid < z < pmts.z_top).",
    )
    return eqx.tree_at(lambda r: (r.x, r.z), record, (x, z))


def _prepare(record, params, pmts, optics):
    if not isinstance(record, Interactions):
        raise TypeError(
            f"`record` must be an Interactions; got {type(record).__name__}."
        )
    if not isinstance(params, WaveformParams):
        raise TypeError(
            f"`params` must be a WaveformParams; got {type(params).__name__}."
        )
    pmts = check_pmt_arrays(pmts)
    optics = check_optics(OpticalParams() if optics is None else optics)
    record = _check_sites(record, pmts)
    return record, pmts, optics


# Photons per site drawn one by one (inverse CDF) in the S1 multinomial; the excess
# of a larger site goes through jax.random.multinomial (module docstring of raw).
_S1_PHOTON_CAPACITY = 256


def _multinomial(key, n, p, capacity=_S1_PHOTON_CAPACITY):
    """Exact multinomial counts ``(..., K)`` of ``n`` (...) trials, rows ``p`` (..., K).

    ``jax.random.multinomial`` draws K binomials in sequence (a 494-step scan of
    rejection samplers for the LZ-like arrays). Here up to ``capacity`` trials per
    row are drawn at once by the inverse CDF (one uniform each, ``searchsorted`` in
    the cumulative ``p``) and counted; rows with more trials get the excess from
    ``jax.random.multinomial`` (run only if any row overflows, under ``lax.cond``).
    The sum of independent Multinomial(m, p) and Multinomial(n - m, p) counts is
    Multinomial(n, p): the result is exact for every ``n``.
    """
    k_cat, k_rest = jax.random.split(key)
    shape, k = p.shape, p.shape[-1]
    flat_p = p.reshape(-1, k)
    flat_n = jnp.broadcast_to(n, shape[:-1]).reshape(-1)
    cdf = jnp.cumsum(flat_p, axis=-1)
    u = jax.random.uniform(k_cat, (flat_p.shape[0], capacity), p.dtype) * cdf[:, -1:]
    idx = jax.vmap(lambda c, v: jnp.searchsorted(c, v, side="right"))(cdf, u)
    take = (jnp.arange(capacity)[None, :] < flat_n[:, None]).astype(p.dtype)
    counts = jax.vmap(lambda i, w: jnp.zeros(k, p.dtype).at[i].add(w, mode="drop"))(
        jnp.minimum(idx, k - 1), take
    )
    over = jnp.maximum(flat_n - capacity, 0.0)
    extra = jax.lax.cond(
        jnp.any(over > 0),
        lambda: jax.random.multinomial(k_rest, over, flat_p).astype(p.dtype),
        lambda: jnp.zeros_like(flat_p),
    )
    return (counts + extra).reshape(shape)


def _one_hits(key, record, params, pmts, optics, light_config):
    """Per event: S1 detected photons per site and shares, and the S2 pattern."""
    resp = site_response(record, params.detector, params.pulse)
    sh1, sh2 = _shares(record, pmts, optics, light_config)
    k1, k3, k4 = jax.random.split(key, 3)
    n_ph = jnp.where(record.mask, jnp.round(record.n_photons), 0.0)
    n_det = jax.random.binomial(k1, n_ph, resp.p_detect).astype(n_ph.dtype)
    n_e = jnp.where(record.mask, jnp.round(record.n_electrons), 0.0)
    n_ext = jax.random.binomial(k3, n_e, resp.p_charge).astype(n_e.dtype)
    mu2 = jnp.sum((n_ext * resp.gain)[:, None] * sh2, axis=0)
    s2 = jax.random.poisson(k4, mu2).astype(mu2.dtype)
    return n_det, sh1, s2


def _batch_hits(key, flat, params, pmts, optics, light_config):
    """S1 and S2 patterns of a flat batch of events, each (n, n_pmt)."""
    k_ev, k_s1 = jax.random.split(key)
    keys = jax.random.split(k_ev, flat.label.shape[0])
    n_det, sh1, s2 = jax.vmap(_one_hits, in_axes=(0, 0, None, None, None, None))(
        keys, flat, params, pmts, optics, light_config
    )
    s1 = _multinomial(k_s1, n_det, sh1).sum(axis=-2)
    return s1, s2


def _one_mean(record, params, pmts, optics, light_config):
    resp = site_response(record, params.detector, params.pulse)
    sh1, sh2 = _shares(record, pmts, optics, light_config)
    n_ph = jnp.where(record.mask, record.n_photons, 0.0)
    n_e = jnp.where(record.mask, record.n_electrons, 0.0)
    s1 = jnp.sum((n_ph * resp.p_detect)[:, None] * sh1, axis=0)
    s2 = jnp.sum((n_e * resp.p_charge * resp.gain)[:, None] * sh2, axis=0)
    return s1, s2


def _flat(record):
    batch = record.label.shape
    flat = jax.tree.map(lambda a: a.reshape((-1,) + a.shape[len(batch) :]), record)
    return batch, flat


@poison_policy
def simulate_raw_events(
    key,
    record: Interactions,
    params: WaveformParams,
    pmts: PMTArrays,
    optics: OpticalParams | None = None,
    *,
    config: WaveformConfig | None = None,
    light_config: LightConfig = DEFAULT_LIGHT_CONFIG,
) -> RawEvents:
    """Sample waveforms, S1/S2 hit patterns and TBA of events (module docstring).

    Args:
        key: Typed PRNG key.
        record: :class:`~.interactions.Interactions`, per-site fields
            ``(*batch, k)``; sites inside the TPC radius and between the PMT planes.
        params: :class:`~.waveform.WaveformParams` (detector and pulse shapes).
        pmts: PMT geometry (its radius should match ``params.detector.radius``).
        optics: Optical parameters of the pattern shape.
        config: Waveform layout (default :class:`~.waveform.WaveformConfig`).
        light_config: Light-collection quadrature.

    Returns:
        :class:`RawEvents`.

    Raises:
        ValueError: Bad record, parameters, layouts or windows (as
            :func:`~.waveform.simulate_waveform` and :func:`~.hit_pattern.
            expected_hit_pattern`; under ``jit``: NaN outputs, the xenon poison
            policy of ``jaxdm._poison``).
    """
    check_key(key)
    config = WaveformConfig() if config is None else config
    record, pmts, optics = _prepare(record, params, pmts, optics)
    k_wf, k_hit = jax.random.split(key)
    wf = simulate_waveform(k_wf, record, params, config)
    batch, flat = _flat(record)
    s1, s2 = _batch_hits(k_hit, flat, params, pmts, optics, light_config)
    s1 = s1.reshape(*batch, -1)
    s2 = s2.reshape(*batch, -1)
    return RawEvents(
        waveform=wf,
        s1_hits=s1,
        s2_hits=s2,
        s1_tba=top_bottom_asymmetry(s1, pmts),
        s2_tba=top_bottom_asymmetry(s2, pmts),
    )


@poison_policy
def expected_raw_events(
    record: Interactions,
    params: WaveformParams,
    pmts: PMTArrays,
    optics: OpticalParams | None = None,
    *,
    config: WaveformConfig | None = None,
    light_config: LightConfig = DEFAULT_LIGHT_CONFIG,
) -> RawEvents:
    """Means of :func:`simulate_raw_events` (differentiable; TBA of the means).

    Same arguments as :func:`simulate_raw_events` without the key.
    """
    config = WaveformConfig() if config is None else config
    record, pmts, optics = _prepare(record, params, pmts, optics)
    wf = expected_waveform(record, params, config)
    batch, flat = _flat(record)
    s1, s2 = jax.vmap(_one_mean, in_axes=(0, None, None, None, None))(
        flat, params, pmts, optics, light_config
    )
    s1 = s1.reshape(*batch, -1)
    s2 = s2.reshape(*batch, -1)
    return RawEvents(
        waveform=wf,
        s1_hits=s1,
        s2_hits=s2,
        s1_tba=top_bottom_asymmetry(s1, pmts),
        s2_tba=top_bottom_asymmetry(s2, pmts),
    )


@poison_policy
def simulate_hit_patterns(
    key,
    record: Interactions,
    params: WaveformParams,
    pmts: PMTArrays,
    optics: OpticalParams | None = None,
    *,
    light_config: LightConfig = DEFAULT_LIGHT_CONFIG,
):
    """S1 and S2 hit patterns of events without the waveforms (same draws' rules).

    The pattern part of :func:`simulate_raw_events` (module docstring), for image
    classifiers and position studies that do not need the pulse shapes.

    Args:
        key: Typed PRNG key.
        record: :class:`~.interactions.Interactions`, per-site ``(*batch, k)``.
        params: :class:`~.waveform.WaveformParams` (detection, lifetime, gain).
        pmts: PMT geometry.
        optics: Optical parameters.
        light_config: Light-collection quadrature.

    Returns:
        ``(s1_hits, s2_hits)`` [phd], each ``(*batch, n_top + n_bottom)``.
    """
    check_key(key)
    record, pmts, optics = _prepare(record, params, pmts, optics)
    batch, flat = _flat(record)
    s1, s2 = _batch_hits(key, flat, params, pmts, optics, light_config)
    return s1.reshape(*batch, -1), s2.reshape(*batch, -1)
