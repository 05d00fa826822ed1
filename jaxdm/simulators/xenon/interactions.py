"""Per-event interaction record: where, when and how many quanta, before the detector.

The raw-data layer (waveforms, PMT hit patterns) renders events from an
:class:`Interactions` record: for every event a fixed number ``k`` of interaction
sites (padded, ``mask`` marks the real ones), each with its position, time, recoil
type, TPC region and the numbers of scintillation photons and ionisation electrons
*produced* there. Everything the detector does to them (photon detection, electron
drift, attachment, extraction, electroluminescence, PMT response) happens in the
renderers (:mod:`.waveform`, and the PMT hit-pattern module), so that one record
feeds both.

Coordinates follow :mod:`.detector`: ``x, y`` [cm]; ``z`` [cm] relative to the gate,
negative in the liquid (``-height <= z <= 0``), positive above it (the liquid
surface, the gas gap and the anode lie at ``z > 0``; above-anode gas events have ``z``
above the anode). Times ``t`` [ns] are the interaction times relative to the event's
time origin (the first S1).

Regions (``region`` codes): ``LIQUID`` (the drift volume), ``GATE`` and ``CATHODE``
(interactions on or next to those grid wires; their charge drifts through the
non-uniform field around the wires), ``BELOW_CATHODE`` (the reverse-field region:
light but no extracted charge) and ``GAS`` (above the anode). Event-class labels
(``label``): see :data:`CLASS_NAMES`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ..._poison import poison_policy
from ..._typing import Array
from . import _guards as _g

# TPC regions of a site.
LIQUID, GATE, CATHODE, BELOW_CATHODE, GAS = 0, 1, 2, 3, 4
REGION_NAMES = ("liquid", "gate", "cathode", "below_cathode", "gas")

# Event classes (``Interactions.label``).
SINGLE, MULTIPLE, S2_ONLY, GATE_EVENT, CATHODE_EVENT, GAS_EVENT, ACCIDENTAL = range(7)
CLASS_NAMES = (
    "single_scatter",
    "multiple_scatter",
    "s2_only",
    "gate",
    "cathode",
    "gas",
    "accidental",
)


class Interactions(eqx.Module):
    """Interaction sites of events, padded to ``k`` sites per event.

    Shapes: per-site fields ``(*batch, k)``, ``label`` ``(*batch,)``; one event has
    ``batch = ()``. Padding sites have ``mask == False`` and zero quanta.

    Attributes:
        x: Site x [cm].
        y: Site y [cm].
        z: Site height [cm] relative to the gate (negative in the liquid).
        t: Interaction time [ns] relative to the event's time origin.
        energy: Deposited energy [keV] (0 for sites that only carry quanta, e.g. an
            isolated S2 from electron emission).
        recoil_type: 0 for ER, 1 for NR (int32): selects the S1 singlet fraction.
        region: TPC region code (int32, ``LIQUID`` ... ``GAS``).
        n_photons: Scintillation photons produced (float, integer-valued when
            sampled; a mean for :func:`mean_interactions`).
        n_electrons: Ionisation electrons escaping recombination at the site
            (before drift, attachment and extraction).
        mask: True for real sites (bool).
        label: Event class (int32, index into :data:`CLASS_NAMES`).
    """

    x: Array
    y: Array
    z: Array
    t: Array
    energy: Array
    recoil_type: Array
    region: Array
    n_photons: Array
    n_electrons: Array
    mask: Array
    label: Array

    @property
    def n_sites(self) -> int:
        """Static number of site slots ``k``."""
        return self.x.shape[-1]


def _f(x):
    return jnp.asarray(x, dtype=jnp.result_type(float))


@poison_policy
def make_interactions(
    x,
    y,
    z,
    n_photons,
    n_electrons,
    *,
    t=0.0,
    energy=0.0,
    recoil_type=0,
    region=LIQUID,
    mask=True,
    label=SINGLE,
) -> Interactions:
    """Build an :class:`Interactions` record from per-site arrays (broadcast).

    Args:
        x: Positions x [cm], shape ``(*batch, k)``.
        y: Positions y [cm].
        z: Heights [cm] relative to the gate (negative in the liquid).
        n_photons: Photons produced, >= 0.
        n_electrons: Electrons escaping recombination, >= 0.
        t: Interaction times [ns] (default 0).
        energy: Energies [keV] (default 0), >= 0.
        recoil_type: 0 (ER) or 1 (NR).
        region: Region codes (default ``LIQUID``).
        mask: Real-site flags (default all True).
        label: Event class, shape ``batch``.

    Returns:
        The record, every per-site field broadcast to one shape.

    Raises:
        ValueError: For non-finite positions/times, negative quanta or energies, or
            region/recoil codes out of range (under ``jit``: the poison policy,
            float fields NaN, codes -1, mask False).
    """
    x, y, z = (_g.guard_values(v, n) for v, n in ((x, "x"), (y, "y"), (z, "z")))
    t = _g.guard_values(t, "t")
    n_photons = _g.guard_values(n_photons, "n_photons", low=0.0)
    n_electrons = _g.guard_values(n_electrons, "n_electrons", low=0.0)
    energy = _g.guard_values(energy, "energy", low=0.0)
    region = jnp.asarray(region, jnp.int32)
    region = _g.guard_relation(
        region,
        (region < LIQUID) | (region > GAS),
        f"`region` codes must lie in [0, {GAS}] ({', '.join(REGION_NAMES)}).",
    )
    recoil_type = jnp.asarray(recoil_type, jnp.int32)
    recoil_type = _g.guard_relation(
        recoil_type,
        (recoil_type < 0) | (recoil_type > 1),
        "`recoil_type` must be 0 (ER) or 1 (NR).",
    )
    shape = jnp.broadcast_shapes(
        *(jnp.shape(a) for a in (x, y, z, t, energy, n_photons, n_electrons)),
        jnp.shape(region),
        jnp.shape(recoil_type),
        jnp.shape(mask),
    )
    if len(shape) == 0:
        raise ValueError("Per-site fields need a site axis: shape (*batch, k).")
    b = lambda a: jnp.broadcast_to(a, shape)  # noqa: E731
    mask = b(jnp.asarray(mask, bool))
    zero = jnp.zeros((), _f(0.0).dtype)
    return Interactions(
        x=b(_f(x)),
        y=b(_f(y)),
        z=b(_f(z)),
        t=b(_f(t)),
        energy=jnp.where(mask, b(_f(energy)), zero),
        recoil_type=b(recoil_type),
        region=b(region),
        n_photons=jnp.where(mask, b(_f(n_photons)), zero),
        n_electrons=jnp.where(mask, b(_f(n_electrons)), zero),
        mask=mask,
        label=jnp.broadcast_to(jnp.asarray(label, jnp.int32), shape[:-1]),
    )


@poison_policy
def interactions_from_events(events, n_sites: int = 1) -> Interactions:
    """Single-scatter records of events from :func:`~.simulate.simulate_events`.

    The first site carries the event (its ``x, y`` are the events' reconstructed
    positions, ``z`` the true height, the sampled photon and electron numbers); the
    other ``n_sites - 1`` slots are padding. Rendering the record and reducing the
    waveform (:func:`~.pulses.reduce_waveforms`) reproduces the fast summary path's
    S1/S2/width/drift on the same events in distribution.

    Args:
        events: :class:`~.simulate.Events` with fields of shape (n,).
        n_sites: Site slots per event (static, >= 1).

    Returns:
        :class:`Interactions` with per-site fields of shape (n, n_sites).
    """
    if isinstance(n_sites, bool) or not isinstance(n_sites, int) or n_sites < 1:
        raise ValueError(f"`n_sites` must be a positive int; got {n_sites!r}.")
    n = events.energy.shape[0]

    def pad(a, fill=0.0):
        a = jnp.asarray(a)[:, None]
        rest = jnp.full((n, n_sites - 1), fill, a.dtype)
        return jnp.concatenate([a, rest], axis=1)

    mask = pad(jnp.ones(n, bool), False)
    return make_interactions(
        pad(events.x),
        pad(events.y),
        pad(events.z, -1.0),
        pad(events.n_photons),
        pad(events.n_electrons),
        energy=pad(events.energy),
        recoil_type=pad(events.recoil_type, 0),
        mask=mask,
        label=jnp.full((n,), SINGLE, jnp.int32),
    )


@poison_policy
def stack_interactions(records) -> Interactions:
    """Concatenate records of the same ``k`` along the event axis."""
    return jax.tree.map(lambda *a: jnp.concatenate(a), *records)


@poison_policy
def select_events(records: Interactions, index) -> Interactions:
    """Take events ``index`` (an int array) from a batched record."""
    return jax.tree.map(lambda a: a[index], records)
