"""Reduced quantities from raw waveforms: pulse areas, S2 shape, drift time, counts.

What a TPC's pulse processing computes per event, from the summed waveform of
:mod:`.waveform` (one event or a batch, ``jit``/``vmap``-able):

* ``s1_area``, ``s2_area`` [phd]: window integrals;
* area quantile times ``t_q`` (the time by which a fraction ``q`` of the area has
  arrived, linear within a sample; negative samples from the PMT resolution are
  set to 0 for the timing only);
* ``s2_width50`` [us]: the 50%-area width ``t_75 - t_25``; ``s2_rise_time`` [us]:
  ``t_50 - t_10``; ``s2_sigma`` [us]: the RMS width (the fast path's Gaussian
  ``s2_width`` when ``detector.s2_width0 = intrinsic_s2_width(pulse)``);
* ``drift_time`` [us]: ``t_50(S2) - t_50(S1) - w_EL / 2``, the median times of the
  two pulses less half the electroluminescence box (the S1 median delay, ~20 ns, is
  left in); ``z = -v_d drift_time`` [cm];
* ``cs1 = s1_area / lce(z)``, ``cs2 = s2_area / exp(-drift_time / tau_e)`` (the
  fast path's corrections);
* ``n_s2_pulses``: number of separate S2 pulses (upward crossings of 10% of the
  maximum by the S2 smoothed over ``smooth_us``), > 1 for resolved multiple scatters;
* ``s1_prompt_fraction``: fraction of the S1 area in the first ``prompt_ns`` after
  its 10% time (pulse-shape discrimination; slow for gas events).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ..._poison import poison_policy
from ..._typing import Array
from .pulse_timing import intrinsic_s2_width
from .waveform import Waveform, WaveformConfig, WaveformParams


class PulseFeatures(eqx.Module):
    """Reduced quantities of events (fields of shape ``batch``; units: module doc)."""

    s1_area: Array
    s2_area: Array
    cs1: Array
    cs2: Array
    drift_time: Array
    z: Array
    s2_width50: Array
    s2_rise_time: Array
    s2_sigma: Array
    n_s2_pulses: Array
    s1_prompt_fraction: Array


@poison_policy
def area_quantile_times(samples, q, dt):
    """Times [ns from the window start] by which fractions ``q`` of the area arrive.

    Args:
        samples: Waveform window, shape ``(n,)`` (negative samples count as 0).
        q: Fractions in (0, 1), shape ``(m,)``.
        dt: Sample width [ns].

    Returns:
        Shape ``(m,)``; linear interpolation inside the crossing sample.
    """
    return _quantile_times(samples, q, dt)


def _quantile_times(samples, q, dt):
    # Unchecked implementation of area_quantile_times for the per-event vmap of
    # reduce_waveforms (a public call there would be an inner-trace call).
    s = jnp.maximum(samples, 0.0)
    c = jnp.cumsum(s)
    target = jnp.asarray(q) * c[-1]
    j = jnp.clip(jnp.searchsorted(c, target, side="left"), 0, s.shape[0] - 1)
    prev = jnp.where(j > 0, c[j - 1], 0.0)
    frac = (target - prev) / jnp.maximum(s[j], 1e-12)
    return (j + jnp.clip(frac, 0.0, 1.0)) * dt


def _rms_width(samples, dt):
    s = jnp.maximum(samples, 0.0)
    tot = jnp.maximum(jnp.sum(s), 1e-12)
    t = (jnp.arange(s.shape[0]) + 0.5) * dt
    m = jnp.sum(s * t) / tot
    return jnp.sqrt(jnp.maximum(jnp.sum(s * (t - m) ** 2) / tot, 0.0))


def count_pulses(samples, dt, smooth_ns, frac=0.1):
    """Number of pulses: upward crossings of ``frac`` of the smoothed maximum."""
    n = max(1, int(round(smooth_ns / dt)))
    c = jnp.concatenate([jnp.zeros(1, samples.dtype), jnp.cumsum(samples)])
    m = samples.shape[0]
    lo = jnp.clip(jnp.arange(m) - n // 2, 0, m)
    hi = jnp.clip(lo + n, 0, m)
    sm = (c[hi] - c[lo]) / n
    above = sm > frac * jnp.max(sm)
    return jnp.sum(above[1:] & ~above[:-1]) + above[0].astype(jnp.int32)


def _one(wf, params, config, smooth_ns, prompt_ns):
    det, pulse, dt = params.detector, params.pulse, config.dt
    s1_area = jnp.sum(wf.s1)
    s2_area = jnp.sum(wf.s2)
    q1 = _quantile_times(wf.s1, jnp.array([0.1, 0.5]), dt)
    q2 = _quantile_times(wf.s2, jnp.array([0.1, 0.25, 0.5, 0.75]), dt)
    t50_s1 = q1[1] - config.s1_pre
    t50_s2 = q2[2] + wf.s2_start
    drift = (t50_s2 - t50_s1) * 1e-3 - 0.5 * pulse.el_width
    z = -det.drift_velocity * drift
    zc = jnp.clip(z, -det.height, 0.0)
    lce = 1.0 + det.lce_slope * (-zc / det.height - 0.5)
    surv = jnp.exp(-jnp.maximum(drift, 0.0) / det.electron_lifetime)
    # Prompt fraction: area within prompt_ns after the S1's 10% time.
    t = (jnp.arange(wf.s1.shape[0]) + 0.5) * dt
    prompt = jnp.sum(jnp.where(t <= q1[0] + prompt_ns, jnp.maximum(wf.s1, 0.0), 0.0))
    return PulseFeatures(
        s1_area=s1_area,
        s2_area=s2_area,
        cs1=s1_area / lce,
        cs2=s2_area / surv,
        drift_time=drift,
        z=z,
        s2_width50=(q2[3] - q2[1]) * 1e-3,
        s2_rise_time=(q2[2] - q2[0]) * 1e-3,
        s2_sigma=_rms_width(wf.s2, dt) * 1e-3,
        n_s2_pulses=count_pulses(wf.s2, dt, smooth_ns),
        s1_prompt_fraction=prompt
        / jnp.maximum(jnp.sum(jnp.maximum(wf.s1, 0.0)), 1e-12),
    )


@poison_policy
def reduce_waveforms(
    waveform: Waveform,
    params: WaveformParams,
    config: WaveformConfig,
    *,
    smooth_ns: float = 1000.0,
    prompt_ns: float = 40.0,
) -> PulseFeatures:
    """Reduced quantities (module docstring) of one event or a batch.

    Args:
        waveform: :class:`~.waveform.Waveform`, windows ``(*batch, samples)``.
        params: The :class:`~.waveform.WaveformParams` it was rendered with (the
            drift velocity, EL width, lifetime and light collection enter).
        config: Its :class:`~.waveform.WaveformConfig`.
        smooth_ns: Smoothing window of the S2 pulse counter [ns] (static).
        prompt_ns: Prompt window of the S1 prompt fraction [ns] (static).

    Returns:
        :class:`PulseFeatures`, fields of shape ``batch``. An empty window gives
        areas 0 and times at the window start (no NaN).
    """
    if not isinstance(waveform, Waveform):
        raise TypeError(
            f"`waveform` must be a Waveform; got {type(waveform).__name__}."
        )
    batch = waveform.s2_start.shape
    flat = jax.tree.map(lambda a: a.reshape((-1,) + a.shape[len(batch) :]), waveform)
    out = jax.vmap(_one, in_axes=(0, None, None, None, None))(
        flat, params, config, smooth_ns, prompt_ns
    )
    return jax.tree.map(lambda a: a.reshape(batch), out)


@poison_policy
def expected_s2_sigma(drift_time, params: WaveformParams, config: WaveformConfig):
    """RMS S2 width [us] of a bulk single scatter at ``drift_time`` [us].

    ``sqrt(intrinsic^2 + 2 D_L t_d / v_d^2)`` with the intrinsic width of
    :func:`~.pulse_timing.intrinsic_s2_width` (EL box and SPE pulse); the reference
    for the width-excess features of grid events and accidentals.
    """
    det = params.detector
    w0 = intrinsic_s2_width(params.pulse, config.dt, config.spe_taps)
    t = jnp.maximum(drift_time, 0.0)
    return jnp.sqrt(w0**2 + 2.0 * det.diffusion_long * t / det.drift_velocity**2)


class RawFeatures(eqx.Module):
    """Reduced quantities of raw events: the waveform's and the hit patterns' TBA.

    Attributes:
        pulses: :class:`PulseFeatures` of the summed waveform.
        s1_tba: S1 top/bottom asymmetry ``(top - bottom) / (top + bottom)``.
        s2_tba: S2 top/bottom asymmetry.
    """

    pulses: PulseFeatures
    s1_tba: Array
    s2_tba: Array


@poison_policy
def reduce_raw_events(
    raw, params: WaveformParams, config: WaveformConfig | None = None, **kwargs
) -> RawFeatures:
    """Reduced quantities of :class:`~.raw.RawEvents` (waveform features and TBA).

    Args:
        raw: Output of :func:`~.raw.simulate_raw_events` (or its expectation).
        params: The waveform parameters it was rendered with.
        config: Its waveform layout (default :class:`~.waveform.WaveformConfig`).
        **kwargs: ``smooth_ns``/``prompt_ns`` of :func:`reduce_waveforms`.

    Returns:
        :class:`RawFeatures`.
    """
    from .raw import RawEvents

    if not isinstance(raw, RawEvents):
        raise TypeError(f"`raw` must be a RawEvents; got {type(raw).__name__}.")
    config = WaveformConfig() if config is None else config
    return RawFeatures(
        pulses=reduce_waveforms(raw.waveform, params, config, **kwargs),
        s1_tba=raw.s1_tba,
        s2_tba=raw.s2_tba,
    )
