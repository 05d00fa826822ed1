"""Summed S1/S2 waveforms on a fixed sample grid: sampler and differentiable mean.

An event's record (:class:`~.interactions.Interactions`) is rendered into two
windows of a summed (all-PMT) waveform in phd per sample:

* the S1 window: ``config.s1_samples`` samples of ``config.dt`` ns starting
  ``config.s1_pre`` ns before the event time origin (t = 0);
* the S2 window: ``config.s2_samples`` samples starting at ``s2_start`` [ns], set by
  the trigger ``config.s2_pre`` ns before the earliest mean S2 arrival, rounded down
  to the sample grid (zero-suppressed digitisers store pulses with their start
  time in the same way). The drift time is recovered from the two windows
  (:mod:`.pulses`).

Sampling (:func:`simulate_waveform`), per site: detected photons
``Bin(n_photons, g1 lce(z))`` (binomials as in the fast path,
:func:`~.simulate.simulate_events`: NEST's rule, exact where skewed, rounded normal
elsewhere), each at ``t + Exp(tau_s or tau_t) + N(0, sigma_s1)``
with one or two photoelectrons (``p_dpe``) of Gaussian area (``spe_resolution``);
electrons reaching the gas ``Bin(n_electrons, p_charge)`` (lifetime, extraction),
each at ``t_s2 + N(0, sigma_s2)`` and emitting ``N(se_gain, se_width) *
s2_area_scale`` phd uniformly over the electroluminescence box. The box light per
sample is computed exactly (the ramp of every box is integrated over each sample,
not binned by its start). Both windows are convolved with the single-photoelectron
pulse (:func:`~.pulse_timing.spe_kernel`); light beyond a window's last sample is
added to that sample, so a window's integral is exactly the detected light
(with ``spe_resolution = 0`` and ``p_dpe = 0``, ``sum(s1)`` equals the number of
detected photons). Physics and references: :mod:`.pulse_timing`.

:func:`expected_waveform` is the mean of the sampler over the detection, timing and
gain fluctuations, from the analytic bin integrals of the same densities: it equals
the sampler's mean exactly (not an approximation), and is differentiable in every
field of :class:`~.detector.Detector`, :class:`~.pulse_timing.PulseParams` and the
record's quanta and positions.

Windows are checked: a window shorter than the pulse (S1: 10 triplet lifetimes past
the last site's time; S2: 5 sigma either side of the box) is an error naming
``config.s1_samples`` / ``config.s2_samples``, as is a draw with more photons or
electrons than the static ``config.max_s1_photons`` / ``config.max_s2_electrons``:
eagerly a ValueError; under ``jit``/``vmap`` the xenon poison policy
(``jaxdm._poison``: every output of the call, or of the ``vmap`` row, NaN, and
``with_valid`` False). These per-event conditions are evaluated inside the
per-event ``vmap`` and checked once outside it (:func:`_guard_events`), so the
compiled sampler holds no host callback.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp

from ..._args import check_int, check_real
from ..._checks import check_key
from ..._poison import poison_policy
from ..._random import normal, uniform
from ..._typing import Array
from . import _guards as _g
from .detector import Detector, check_detector
from .interactions import Interactions
from .pulse_timing import (
    PulseParams,
    box_gauss_cdf,
    check_pulse,
    emg_cdf,
    site_response,
    spe_kernel,
)
from .simulate import _binomial


@dataclasses.dataclass(frozen=True)
class WaveformConfig:
    """Static waveform layout (hashable).

    Attributes:
        dt: Sample width [ns] (default 10).
        s1_pre: S1 window start before t = 0 [ns].
        s1_samples: S1 window length [samples] (default 1.5 us: gas events have a
            100 ns triplet).
        s2_pre: S2 window start before the earliest mean S2 arrival [ns].
        s2_samples: S2 window length [samples] (default 50 us: an LZ-like S2 at the
            cathode spans ~20 us; XENONnT-like deep events need ~60 us).
        spe_taps: Length of the SPE pulse kernel [samples].
        max_s1_photons: Static capacity of detected S1 photons per event.
        max_s2_electrons: Static capacity of emitting electrons per event.
    """

    dt: float = 10.0
    s1_pre: float = 100.0
    s1_samples: int = 150
    s2_pre: float = 15000.0
    s2_samples: int = 5000
    spe_taps: int = 8
    max_s1_photons: int = 1024
    max_s2_electrons: int = 4096

    def __post_init__(self):
        for f in ("dt", "s1_pre", "s2_pre"):
            v = check_real(getattr(self, f), f"config.{f}")
            if v < 0 or (f == "dt" and v == 0):
                raise ValueError(f"`config.{f}` must be > 0; got {v}.")
        for f in (
            "s1_samples",
            "s2_samples",
            "spe_taps",
            "max_s1_photons",
            "max_s2_electrons",
        ):
            check_int(getattr(self, f), f"config.{f}", minimum=1)


class WaveformParams(eqx.Module):
    """Parameters of the raw-waveform model: the detector and the pulse shapes."""

    detector: Detector
    pulse: PulseParams = PulseParams()


class Waveform(eqx.Module):
    """Summed waveform windows of events.

    Attributes:
        s1: S1 window [phd/sample], shape ``(*batch, s1_samples)``; sample ``j``
            covers ``[j dt - s1_pre, (j+1) dt - s1_pre)`` ns.
        s2: S2 window [phd/sample], shape ``(*batch, s2_samples)``; sample ``j``
            covers ``s2_start + [j dt, (j+1) dt)`` ns.
        s2_start: S2 window start [ns], shape ``batch``.
    """

    s1: Array
    s2: Array
    s2_start: Array


def _check(record, params, config):
    if not isinstance(record, Interactions):
        raise TypeError(
            f"`record` must be an Interactions; got {type(record).__name__}."
        )
    if not isinstance(params, WaveformParams):
        raise TypeError(
            f"`params` must be a WaveformParams; got {type(params).__name__}."
        )
    if not isinstance(config, WaveformConfig):
        raise TypeError(
            f"`config` must be a WaveformConfig; got {type(config).__name__}."
        )
    params = WaveformParams(
        check_detector(params.detector, "params.detector"),
        check_pulse(params.pulse, "params.pulse"),
    )
    for f in ("x", "y", "z", "t"):
        v = _g.guard_values(getattr(record, f), f"record.{f}")
        record = eqx.tree_at(lambda r, f=f: getattr(r, f), record, v)
    for f in ("n_photons", "n_electrons", "energy"):
        v = _g.guard_values(getattr(record, f), f"record.{f}", low=0.0)
        record = eqx.tree_at(lambda r, f=f: getattr(r, f), record, v)
    return record, params


def _s2_start(resp, record, config):
    has_q = record.mask & (record.n_electrons * resp.p_charge > 0)
    t_first = jnp.min(jnp.where(has_q, resp.t_s2, jnp.inf))
    t_first = jnp.where(jnp.isfinite(t_first), t_first, 0.0)
    start = jnp.floor((t_first - config.s2_pre) / config.dt) * config.dt
    return jax.lax.stop_gradient(start), has_q


_S1_WINDOW = (
    "The S1 window is shorter than the S1 pulse (t - 5 sigma to t + 10 triplet "
    "lifetimes plus the SPE pulse): increase `config.s1_samples` or "
    "`config.s1_pre`, or check `record.t`."
)
_S2_WINDOW = (
    "The S2 window is shorter than the S2 (arrival +- 5 sigma of diffusion plus "
    "the electroluminescence box, from every site with charge): increase "
    "`config.s2_samples` or `config.s2_pre`."
)
_S1_CAPACITY = "More detected S1 photons than `config.max_s1_photons`; raise it."
_S2_CAPACITY = "More S2 electrons than `config.max_s2_electrons`; raise it."
# Per-event conditions returned by the renderers (last axis), in this order.
_SIMULATE_CHECKS = (_S1_WINDOW, _S2_WINDOW, _S1_CAPACITY, _S2_CAPACITY)
_EXPECTED_CHECKS = (_S1_WINDOW, _S2_WINDOW)


def _window_flags(record, resp, params, config, s2_start, has_q):
    """Whether a pulse does not fit in its window: ``(s1_bad, s2_bad)``."""
    p, dt = params.pulse, config.dt
    tail = config.spe_taps * dt
    has_l = record.mask & (record.n_photons > 0)
    s1_sd = 5.0 * p.s1_time_spread
    s1_lo = jnp.where(has_l, record.t - s1_sd + config.s1_pre, jnp.inf)
    s1_hi = jnp.where(has_l, record.t + 10.0 * resp.tau_t + s1_sd + tail, -jnp.inf)
    s1_bad = (jnp.min(s1_lo) < 0) | (
        jnp.max(s1_hi) + config.s1_pre > config.s1_samples * dt
    )
    lo = jnp.where(has_q, resp.t_s2 - 5.0 * resp.sigma_s2 - s2_start, jnp.inf)
    hi = jnp.where(
        has_q,
        resp.t_s2 + resp.el_width + 5.0 * resp.sigma_s2 + tail - s2_start,
        -jnp.inf,
    )
    s2_bad = (jnp.min(lo) < 0) | (jnp.max(hi) > config.s2_samples * dt)
    return s1_bad, s2_bad


def _guard_events(out, bad, messages):
    """Check the per-event conditions ``bad`` ``(*batch, len(messages))`` once.

    The renderers evaluate the window and capacity conditions inside their
    per-event ``vmap`` and return them; they are checked here, outside that inner
    trace, so that under the xenon poison policy they poison the call's outputs
    (no host callback in the program) and eagerly raise ValueError.
    """
    deferred = []
    for i, message in enumerate(messages):
        out = _g.guard_relation(out, bad[..., i], message, deferred=deferred)
    return _g.attach_to_leaves(out, deferred)


def _pmt_convolve(hist, kernel):
    """Convolve with the SPE pulse; light past the window goes to the last sample."""
    n = hist.shape[-1]
    full = jnp.convolve(hist, kernel)
    return full[:n].at[-1].add(jnp.sum(full[n:]))


def _slot_sites(counts, capacity):
    """Site index of each of ``capacity`` slots filled with ``counts`` per site."""
    csum = jnp.cumsum(counts)
    i = jnp.arange(capacity, dtype=csum.dtype)
    site = jnp.searchsorted(csum, i, side="right")
    return jnp.minimum(site, counts.shape[0] - 1), i < csum[-1]


def _one_event(key, record, params, config):
    det, pulse, dt = params.detector, params.pulse, config.dt
    resp = site_response(record, det, pulse)
    s2_start, has_q = _s2_start(resp, record, config)
    s1_bad, s2_bad = _window_flags(record, resp, params, config, s2_start, has_q)
    kernel = spe_kernel(pulse, dt, config.spe_taps)
    m, m2, k = config.max_s1_photons, config.max_s2_electrons, record.mask.shape[0]
    # Two fused draws for everything (jaxdm._random: one hash kernel each).
    k_u, k_g = jax.random.split(key)
    u = uniform(k_u, (3 * m,))
    g = normal(k_g, (2 * k + 2 * m + 2 * m2,))
    g_det, g_ext = g[:k], g[k : 2 * k]
    g_t1, g_a1 = g[2 * k : 2 * k + m], g[2 * k + m : 2 * k + 2 * m]
    g_t2, g_gain = g[2 * k + 2 * m : 2 * k + 2 * m + m2], g[2 * k + 2 * m + m2 :]

    # S1: detected photons, their times, photoelectrons and areas.
    n_ph = jnp.where(record.mask, jnp.round(record.n_photons), 0.0)
    n_det = _binomial(n_ph, resp.p_detect, False, g_det)
    s1_over = jnp.sum(n_det) > config.max_s1_photons
    site, valid = _slot_sites(n_det, m)
    tau = jnp.where(u[:m] < resp.f_singlet[site], resp.tau_s[site], resp.tau_t[site])
    t = record.t[site] - tau * jnp.log1p(-u[m : 2 * m]) + pulse.s1_time_spread * g_t1
    b = jnp.clip(jnp.floor((t + config.s1_pre) / dt), 0, config.s1_samples - 1)
    phe = 1.0 + (u[2 * m :] < det.p_dpe)
    area = phe + det.spe_resolution * jnp.sqrt(phe) * g_a1
    w = jnp.where(valid, area / (1.0 + det.p_dpe), 0.0)
    s1 = jnp.zeros(config.s1_samples, w.dtype).at[b.astype(jnp.int32)].add(w)

    # S2: emitting electrons, arrival times, gains, electroluminescence boxes.
    n_e = jnp.where(record.mask, jnp.round(record.n_electrons), 0.0)
    n_ext = _binomial(n_e, resp.p_charge, False, g_ext)
    s2_over = jnp.sum(n_ext) > config.max_s2_electrons
    site, valid = _slot_sites(n_ext, m2)
    t_e = resp.t_s2[site] + resp.sigma_s2[site] * g_t2
    gain = resp.gain[site] + resp.gain_sd[site] * g_gain
    width = resp.el_width[site] / dt  # [samples]
    rate = jnp.where(valid, gain / width, 0.0)  # [phd per sample]
    s_start = (t_e - s2_start) / dt
    s2 = _box_light(
        jnp.concatenate([s_start, s_start + width]),
        jnp.concatenate([rate, -rate]),
        config.s2_samples,
    )
    wf = Waveform(
        s1=_pmt_convolve(s1, kernel), s2=_pmt_convolve(s2, kernel), s2_start=s2_start
    )
    return wf, jnp.stack([s1_bad, s2_bad, s1_over, s2_over])


def _box_light(points, weights, n):
    """Light per sample of ramps ``w max(s - p, 0)`` (``p`` in samples), exactly.

    A box is a ramp up at its start and a ramp down at its end. Sample ``j`` gets
    ``sum_{p < j} w + sum_{j <= p < j+1} w (j + 1 - p)``.
    """
    idx = jnp.floor(points)
    full = (
        jnp.zeros(n + 2, weights.dtype)
        .at[jnp.clip(idx + 1, 0, n + 1).astype(jnp.int32)]
        .add(weights)
    )
    inside = (idx >= 0) & (idx < n)
    part = (
        jnp.zeros(n + 1, weights.dtype)
        .at[jnp.where(inside, idx, n).astype(jnp.int32)]
        .add(jnp.where(inside, weights * (idx + 1.0 - points), 0.0))
    )
    return jnp.cumsum(full)[:n] + part[:n]


def _one_expected(record, params, config):
    det, pulse, dt = params.detector, params.pulse, config.dt
    resp = site_response(record, det, pulse)
    s2_start, has_q = _s2_start(resp, record, config)
    s1_bad, s2_bad = _window_flags(record, resp, params, config, s2_start, has_q)
    kernel = spe_kernel(pulse, dt, config.spe_taps)
    mu_ph = jnp.where(record.mask, record.n_photons, 0.0) * resp.p_detect
    inner = jnp.arange(1, config.s1_samples) * dt - config.s1_pre
    x = inner[None, :] - record.t[:, None]
    sd = pulse.s1_time_spread
    cdf = resp.f_singlet[:, None] * emg_cdf(x, sd, resp.tau_s[:, None]) + (
        1.0 - resp.f_singlet[:, None]
    ) * emg_cdf(x, sd, resp.tau_t[:, None])
    ones = jnp.ones_like(cdf[:, :1])
    prob = jnp.diff(jnp.concatenate([0.0 * ones, cdf, ones], axis=1), axis=1)
    s1 = jnp.sum(mu_ph[:, None] * prob, axis=0)

    mu_e = jnp.where(record.mask, record.n_electrons, 0.0) * resp.p_charge
    edges = jnp.arange(config.s2_samples + 1) * dt + s2_start
    y = edges[None, :] - resp.t_s2[:, None]
    g = box_gauss_cdf(y, resp.sigma_s2[:, None], resp.el_width[:, None])
    s2 = jnp.sum((mu_e * resp.gain)[:, None] * jnp.diff(g, axis=1), axis=0)
    wf = Waveform(
        s1=_pmt_convolve(s1, kernel), s2=_pmt_convolve(s2, kernel), s2_start=s2_start
    )
    return wf, jnp.stack([s1_bad, s2_bad])


@eqx.filter_jit
def _expected_flat(flat, params, config):
    # Compiled once per (shapes, config); no checks inside (see _guard_events).
    return jax.vmap(_one_expected, in_axes=(0, None, None))(flat, params, config)


def _batched(fn, record, *args):
    batch = record.label.shape
    flat = jax.tree.map(lambda a: a.reshape((-1,) + a.shape[len(batch) :]), record)
    out = fn(flat, *args)
    return jax.tree.map(lambda a: a.reshape(batch + a.shape[1:]), out)


@poison_policy
def simulate_waveform(
    key, record: Interactions, params: WaveformParams, config: WaveformConfig
) -> Waveform:
    """Sample the summed S1/S2 waveforms of events (module docstring).

    Args:
        key: Typed PRNG key.
        record: :class:`Interactions`, per-site fields ``(*batch, k)``.
        params: :class:`WaveformParams` (unbatched; vmap for several).
        config: :class:`WaveformConfig` (static).

    Returns:
        :class:`Waveform` with ``batch`` leading axes.

    Raises:
        ValueError: Bad parameters or record fields, a window shorter than its
            pulse, more quanta than the static capacities (under ``jit``: NaN
            outputs, the xenon poison policy).
    """
    check_key(key)
    record, params = _check(record, params, config)

    def run(flat):
        keys = jax.random.split(key, flat.label.shape[0])
        return jax.vmap(_one_event, in_axes=(0, 0, None, None))(
            keys, flat, params, config
        )

    wf, bad = _batched(run, record)
    return _guard_events(wf, bad, _SIMULATE_CHECKS)


@poison_policy
def expected_waveform(
    record: Interactions, params: WaveformParams, config: WaveformConfig
) -> Waveform:
    """Mean waveform of events: the exact mean of :func:`simulate_waveform`.

    Differentiable in ``params`` (detector and pulse fields) and in the record's
    positions, times and quanta (``n_photons``/``n_electrons`` may be means, e.g. from
    :func:`~.yields.mean_yields`). Same arguments and errors as
    :func:`simulate_waveform` without the key.
    """
    record, params = _check(record, params, config)
    wf, bad = _batched(lambda flat: _expected_flat(flat, params, config), record)
    return _guard_events(wf, bad, _EXPECTED_CHECKS)
