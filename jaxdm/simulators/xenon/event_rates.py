"""Rates of the event classes and the accidental-coincidence rate model.

The mixture sampler :func:`~.event_classes.sample_event_classes` draws each event's
class with probability proportional to its rate. The accidental rate follows the
usual model ``R_acc = R_S1 R_S2 dt_max`` of isolated S1 and S2 rates and the maximum
drift time (e.g. XENON1T, PRD 99, 112009 (2019), arXiv:1902.11297; LZ, PRD 108,
012010 (2023), arXiv:2211.17120).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from ..._poison import poison_policy
from ..._typing import Array
from . import _guards as _g
from .detector import Detector


def _arr(x):
    return jnp.asarray(x, dtype=jnp.result_type(float))


class EventClassRates(eqx.Module):
    """Rates of the event classes in the whole active volume.

    Attributes:
        single, multiple, s2_only, gate, cathode, gas: Rates [events/day]
            (``s2_only``: sub-threshold-S1 events).
        isolated_s1: Rate of isolated S1 pulses [Hz].
        isolated_s2: Rate of isolated S2 pulses [Hz].
        s2_only_below_cathode: Rate of S2-only events from the cathode and the
            layer below it [events/day] (default 0; same ``S2_ONLY`` label).
    """

    single: Array = eqx.field(converter=_arr)
    multiple: Array = eqx.field(converter=_arr)
    s2_only: Array = eqx.field(converter=_arr)
    gate: Array = eqx.field(converter=_arr)
    cathode: Array = eqx.field(converter=_arr)
    gas: Array = eqx.field(converter=_arr)
    isolated_s1: Array = eqx.field(converter=_arr)
    isolated_s2: Array = eqx.field(converter=_arr)
    s2_only_below_cathode: Array = eqx.field(default=0.0, converter=_arr)


@poison_policy
def lz_like_event_rates() -> EventClassRates:
    """Illustrative LZ-like rates (order of magnitude, not a fit to LZ data).

    Isolated S1 ~ 1 Hz and isolated S2 ~ 10 mHz are the orders of magnitude of the
    lone-pulse rates behind the accidental backgrounds of the tonne-scale TPCs
    (XENON1T arXiv:1902.11297; LZ arXiv:2211.17120): with LZ's 951 us maximum drift
    they give ~1e-5 Hz ~ 0.8 accidental pairs per day before analysis cuts. The
    other rates are placeholders of plausible size for a few-tonne TPC at low
    energy; replace them by measured values for any physics use.
    """
    return EventClassRates(
        single=50.0,
        multiple=20.0,
        s2_only=10.0,
        gate=5.0,
        cathode=5.0,
        gas=2.0,
        isolated_s1=1.0,
        isolated_s2=0.01,
        s2_only_below_cathode=2.0,
    )


@poison_policy
def check_rates(rates: EventClassRates, name: str = "rates") -> EventClassRates:
    """Every rate finite and >= 0 (eagerly and under ``jit``), at least one > 0."""
    if not isinstance(rates, EventClassRates):
        raise TypeError(
            f"`{name}` must be an EventClassRates; got {type(rates).__name__}."
        )
    fields = ("single", "multiple", "s2_only", "gate", "cathode", "gas")
    fields += ("s2_only_below_cathode",)
    rules = tuple(_g.nonnegative(f) for f in fields + ("isolated_s1", "isolated_s2"))
    rel = (
        (
            None,
            lambda xp, r: (
                sum(getattr(r, f) for f in fields) + r.isolated_s1 * r.isolated_s2 <= 0
            ),
            f"`{name}`: every rate is zero; there is nothing to sample.",
        ),
    )
    return _g.guard_rules(rates, rules, name, relation=rel)


@poison_policy
def accidental_rate(rates: EventClassRates, detector: Detector):
    """Accidental-coincidence rate ``R_S1 R_S2 dt_max`` [events/day]."""
    t_max_s = detector.height / detector.drift_velocity * 1e-6
    return rates.isolated_s1 * rates.isolated_s2 * t_max_s * 86400.0


@poison_policy
def class_probabilities(rates: EventClassRates, detector: Detector):
    """Fractions of the seven classes (order of ``CLASS_NAMES``), shape (7,)."""
    r = jnp.stack(
        [
            rates.single,
            rates.multiple,
            rates.s2_only + rates.s2_only_below_cathode,
            rates.gate,
            rates.cathode,
            rates.gas,
            accidental_rate(rates, detector),
        ]
    )
    return r / jnp.sum(r)
