"""Event classes beyond single scatters: samplers of interaction records and rates.

Every sampler returns an :class:`~.interactions.Interactions` record of ``n`` events
with ``n_sites`` site slots and its class ``label``; the quanta of every site come
from the NEST chain of :func:`~.simulate.simulate_energies` (ER by default, flat in
``energy_range``). Classes and the feature that sets each apart (tested in
``tests/simulators/xenon/test_event_classes.py``):

* ``single_scatter``: one site uniform in the fiducial volume.
* ``multiple_scatter``: ``n_scatters`` sites, vertical separations
  ``U(min_dz, max_dz)`` cm, lateral ``N(0, lateral_cm)``: several S2 pulses.
* ``s2_only``: no S1, by two paths. (a) One site of a sub-keV deposit (0.1-0.5 keV
  ER), whose S1 falls below the coincidence threshold. (b) Below-cathode / cathode
  events (:func:`sample_below_cathode_s2_only`): decays on the cathode wires and in
  the thin layer just below the cathode plane, whose scintillation is lost (emitted
  on or inside the wire surface, or shadowed; ``s1_fraction``) and of whose
  electrons only a fraction ``charge_fraction`` passes up through the cathode grid
  into the drift field; they drift the full length, so their S2 is the widest of
  the TPC (maximum diffusion plus the cathode-wire stretch) and small. The XENON1T
  S2-only search (PRL 123, 251801 (2019), arXiv:1907.11485) names such cathode
  events as a background and removes them by the S2 width. The mixture takes path
  (b) with the fraction ``s2_only_below_cathode / (s2_only +
  s2_only_below_cathode)`` of the rates.
* ``gate`` / ``cathode``: a site within ``grid_depth`` cm of the gate (below it) or
  the cathode (above it), region ``GATE``/``CATHODE``: the charge drifts through the
  non-uniform field around the wires, which stretches the S2 beyond the diffusion
  width of its drift time (``PulseParams.gate_stretch``/``cathode_stretch``, a
  phenomenological Gaussian spread; LUX, Akerib et al. PRD 104, 012011 (2021),
  arXiv:2011.09602, tag such events by their S2 pulse shape), at the extreme
  drift times (near 0 or the maximum).
* ``gas``: a site above the anode (region ``GAS``): a fast, weak S2 at near-zero
  drift time and a slow, top-heavy S1.
* ``accidental``: an isolated S1 (a light-only site below the cathode) paired with
  an isolated S2 (a charge-only site, ``n_photons = 0``, at a random depth) whose
  arrival is uniform over the maximum drift time: the S2 width does not match the
  apparent drift time.

Rates (:class:`EventClassRates`) are parameters of the mixture sampler
:func:`sample_event_classes`. The accidental rate follows the usual model
``R_acc = R_S1 R_S2 dt_max`` of isolated S1 and S2 rates and the maximum drift time
(e.g. XENON1T, PRD 99, 112009 (2019), arXiv:1902.11297; LZ, PRD 108, 012010 (2023),
arXiv:2211.17120).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..._args import check_real
from ..._checks import check_key
from ..._poison import poison_policy
from .detector import Detector, _sample_positions, check_detector
from .event_rates import EventClassRates, check_rates, class_probabilities
from .interactions import (
    ACCIDENTAL,
    BELOW_CATHODE,
    CATHODE,
    CATHODE_EVENT,
    GAS,
    GAS_EVENT,
    GATE,
    GATE_EVENT,
    LIQUID,
    MULTIPLE,
    S2_ONLY,
    SINGLE,
    Interactions,
    make_interactions,
)
from .pulse_timing import PulseParams
from .simulate import simulate_energies


def _quanta(key, energy, detector, recoil_type, yields):
    ev = simulate_energies(key, energy.ravel(), recoil_type, detector, yields=yields)
    shape = energy.shape
    return ev.n_photons.reshape(shape), ev.n_electrons.reshape(shape)


def _energies(key, shape, energy_range):
    lo, hi = energy_range
    if not (0 <= lo < hi):
        raise ValueError(
            f"`energy_range` must be (low, high) with 0 <= low < high; got "
            f"{energy_range!r}."
        )
    return lo + (hi - lo) * jax.random.uniform(key, shape)


def _pad(a, n_sites, fill=0.0):
    a = jnp.asarray(a)
    if a.ndim == 1:
        a = a[:, None]
    extra = n_sites - a.shape[1]
    if extra < 0:
        raise ValueError(f"`n_sites` must be >= {a.shape[1]}; got {n_sites}.")
    return jnp.concatenate([a, jnp.full((a.shape[0], extra), fill, a.dtype)], axis=1)


def _start(key, n, detector, n_sites):
    check_key(key)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"`n` must be a positive int; got {n!r}.")
    if isinstance(n_sites, bool) or not isinstance(n_sites, int) or n_sites < 1:
        raise ValueError(f"`n_sites` must be a positive int; got {n_sites!r}.")
    return check_detector(detector)


def _one_site(
    key,
    n,
    detector,
    n_sites,
    z,
    xy,
    region,
    label,
    energy_range,
    recoil,
    yields,
    *,
    photons=True,
):
    k_e, k_q = jax.random.split(key)
    e = _energies(k_e, (n,), energy_range)
    n_ph, n_el = _quanta(k_q, e, detector, recoil, yields)
    if not photons:
        n_ph = jnp.zeros_like(n_ph)
    return make_interactions(
        _pad(xy[0], n_sites),
        _pad(xy[1], n_sites),
        _pad(z, n_sites, -1.0),
        _pad(n_ph, n_sites),
        _pad(n_el, n_sites),
        energy=_pad(e, n_sites),
        recoil_type=1 if recoil == "NR" else 0,
        region=_pad(jnp.full((n,), region, jnp.int32), n_sites, LIQUID),
        mask=_pad(jnp.ones((n,), bool), n_sites, False),
        label=jnp.full((n,), label, jnp.int32),
    )


@poison_policy
def sample_single_scatters(
    key,
    n: int,
    detector: Detector,
    *,
    n_sites: int = 2,
    energy_range=(1.5, 20.0),
    recoil_type: str = "ER",
    yields=None,
) -> Interactions:
    """Single scatters uniform in the fiducial volume (label ``SINGLE``)."""
    detector = _start(key, n, detector, n_sites)
    k_p, k = jax.random.split(key)
    x, y, z = _sample_positions(k_p, detector, n)
    return _one_site(
        k,
        n,
        detector,
        n_sites,
        z,
        (x, y),
        LIQUID,
        SINGLE,
        energy_range,
        recoil_type,
        yields,
    )


@poison_policy
def sample_multiple_scatters(
    key,
    n: int,
    detector: Detector,
    *,
    n_sites: int = 2,
    n_scatters: int = 2,
    min_dz: float = 1.0,
    max_dz: float = 3.0,
    lateral_cm: float = 5.0,
    energy_range=(1.5, 20.0),
    recoil_type: str = "ER",
    yields=None,
) -> Interactions:
    """Multiple scatters: ``n_scatters`` sites at once (label ``MULTIPLE``).

    The first site is uniform in the fiducial volume; each next one lies
    ``U(min_dz, max_dz)`` cm below the previous (above it where that would leave the
    TPC) and ``N(0, lateral_cm)`` away in x and y (kept inside the TPC radius).
    """
    detector = _start(key, n, detector, n_sites)
    if not 2 <= n_scatters <= n_sites:
        raise ValueError(
            f"`n_scatters` must lie in [2, n_sites={n_sites}]; got {n_scatters}."
        )
    if not 0 < min_dz < max_dz:
        raise ValueError(f"need 0 < `min_dz` < `max_dz`; got {min_dz}, {max_dz}.")
    k_p, k_dz, k_xy, k_e, k_q = jax.random.split(key, 5)
    x0, y0, z0 = _sample_positions(k_p, detector, n)
    dz = min_dz + (max_dz - min_dz) * jax.random.uniform(k_dz, (n, n_scatters - 1))
    dxy = lateral_cm * jax.random.normal(k_xy, (2, n, n_scatters - 1))
    zs, xs, ys = [z0], [x0], [y0]
    for i in range(n_scatters - 1):
        down = zs[-1] - dz[:, i]
        zs.append(jnp.where(down >= -detector.height, down, zs[-1] + dz[:, i]))
        xn, yn = xs[-1] + dxy[0, :, i], ys[-1] + dxy[1, :, i]
        r = jnp.sqrt(xn**2 + yn**2)
        scale = jnp.minimum(1.0, 0.99 * detector.radius / jnp.maximum(r, 1e-6))
        xs.append(xn * scale)
        ys.append(yn * scale)
    z = jnp.clip(jnp.stack(zs, 1), -detector.height, 0.0)
    e = _energies(k_e, (n, n_scatters), energy_range)
    n_ph, n_el = _quanta(k_q, e, detector, recoil_type, yields)
    m = jnp.ones((n, n_scatters), bool)
    return make_interactions(
        _pad(jnp.stack(xs, 1), n_sites),
        _pad(jnp.stack(ys, 1), n_sites),
        _pad(z, n_sites, -1.0),
        _pad(n_ph, n_sites),
        _pad(n_el, n_sites),
        energy=_pad(e, n_sites),
        recoil_type=1 if recoil_type == "NR" else 0,
        mask=_pad(m, n_sites, False),
        label=jnp.full((n,), MULTIPLE, jnp.int32),
    )


@poison_policy
def sample_s2_only(
    key,
    n: int,
    detector: Detector,
    *,
    n_sites: int = 2,
    energy_range=(0.1, 0.5),
    recoil_type: str = "ER",
    yields=None,
) -> Interactions:
    """S2-only events: sub-keV deposits whose S1 is below threshold (``S2_ONLY``)."""
    detector = _start(key, n, detector, n_sites)
    k_p, k = jax.random.split(key)
    x, y, z = _sample_positions(k_p, detector, n)
    return _one_site(
        k,
        n,
        detector,
        n_sites,
        z,
        (x, y),
        LIQUID,
        S2_ONLY,
        energy_range,
        recoil_type,
        yields,
    )


@poison_policy
def sample_below_cathode_s2_only(
    key,
    n: int,
    detector: Detector,
    *,
    n_sites: int = 2,
    below_depth: float = 0.5,
    charge_fraction: float = 0.3,
    s1_fraction: float = 0.0,
    energy_range=(1.5, 20.0),
    recoil_type: str = "ER",
    yields=None,
) -> Interactions:
    """S2-only events from the cathode and just below it (label ``S2_ONLY``).

    One site ``U(0, below_depth)`` cm below the cathode plane, region ``CATHODE``
    (rendered with the full drift time and the cathode-wire stretch of
    :class:`~.pulse_timing.PulseParams`); its NEST quanta are thinned binomially:
    each electron reaches the drift field with ``charge_fraction`` (field lines
    leaking through the cathode grid), each photon is kept with ``s1_fraction``
    (default 0: no S1). ``charge_fraction`` 0.3 and ``below_depth`` 0.5 cm are
    assumptions of this model (the leakage depends on the grid and the two fields);
    fit them to a detector's cathode-event population for physics use.

    Args:
        key: Typed PRNG key.
        n: Number of events (static).
        detector: Detector parameters.
        n_sites: Site slots per event.
        below_depth: Depth of the layer below the cathode [cm], > 0.
        charge_fraction: Probability that an electron drifts up, in (0, 1].
        s1_fraction: Probability that a photon is emitted into the TPC, [0, 1].
        energy_range: (low, high) deposited energy [keV].
        recoil_type: "ER" or "NR".
        yields: NEST yield parameters.

    Returns:
        :class:`Interactions` of ``n`` events.
    """
    detector = _start(key, n, detector, n_sites)
    _range(below_depth, "below_depth", 0.0, np.inf, " cm", low_open=True)
    _range(charge_fraction, "charge_fraction", 0.0, 1.0, "", low_open=True)
    _range(s1_fraction, "s1_fraction", 0.0, 1.0, "")
    k_p, k_d, k, k_c, k_l = jax.random.split(key, 5)
    x, y, _ = _sample_positions(k_p, detector, n)
    z = -detector.height - below_depth * jax.random.uniform(k_d, (n,))
    rec = _one_site(
        k,
        n,
        detector,
        n_sites,
        z,
        (x, y),
        CATHODE,
        S2_ONLY,
        energy_range,
        recoil_type,
        yields,
    )
    n_el = jax.random.binomial(k_c, rec.n_electrons, charge_fraction)
    n_ph = jax.random.binomial(k_l, rec.n_photons, s1_fraction)
    n_el = jnp.where(rec.mask, n_el, 0.0).astype(rec.n_electrons.dtype)
    n_ph = jnp.where(rec.mask, n_ph, 0.0).astype(rec.n_photons.dtype)
    return eqx.tree_at(lambda r: (r.n_electrons, r.n_photons), rec, (n_el, n_ph))


def _range(value, name, low, high, unit, *, low_open=False):
    value = check_real(value, name)
    if not (low < value if low_open else low <= value) or not value <= high:
        lo = "(" if low_open else "["
        raise ValueError(f"`{name}` must lie in {lo}{low}, {high}]{unit}; got {value}.")
    return value


def _grid(key, n, detector, n_sites, where, grid_depth, energy_range, recoil, yields):
    detector = _start(key, n, detector, n_sites)
    k_p, k_d, k = jax.random.split(key, 3)
    x, y, _ = _sample_positions(k_p, detector, n)
    d = grid_depth * jax.random.uniform(k_d, (n,))
    if where == "gate":
        z, region, label = -d, GATE, GATE_EVENT
    else:
        z, region, label = -detector.height + d, CATHODE, CATHODE_EVENT
    return _one_site(
        k, n, detector, n_sites, z, (x, y), region, label, energy_range, recoil, yields
    )


@poison_policy
def sample_gate_events(
    key,
    n: int,
    detector: Detector,
    *,
    n_sites: int = 2,
    grid_depth: float = 0.5,
    energy_range=(1.5, 20.0),
    recoil_type: str = "ER",
    yields=None,
) -> Interactions:
    """Gate-grid events: within ``grid_depth`` cm below the gate (``GATE_EVENT``)."""
    return _grid(
        key, n, detector, n_sites, "gate", grid_depth, energy_range, recoil_type, yields
    )


@poison_policy
def sample_cathode_events(
    key,
    n: int,
    detector: Detector,
    *,
    n_sites: int = 2,
    grid_depth: float = 0.5,
    energy_range=(1.5, 20.0),
    recoil_type: str = "ER",
    yields=None,
) -> Interactions:
    """Cathode-grid events: within ``grid_depth`` cm above the cathode."""
    return _grid(
        key,
        n,
        detector,
        n_sites,
        "cathode",
        grid_depth,
        energy_range,
        recoil_type,
        yields,
    )


@poison_policy
def sample_gas_events(
    key,
    n: int,
    detector: Detector,
    *,
    n_sites: int = 2,
    pulse: PulseParams | None = None,
    gas_depth: float = 1.0,
    energy_range=(1.5, 20.0),
    recoil_type: str = "ER",
    yields=None,
) -> Interactions:
    """Above-anode gas events: ``U(0, gas_depth)`` cm above the anode (``GAS_EVENT``).

    Quanta use the liquid yields (a documented simplification: the gas yields
    differ, and the S2 light per electron is scaled by
    ``PulseParams.gas_gain_fraction`` when rendered).
    """
    detector = _start(key, n, detector, n_sites)
    pulse = PulseParams() if pulse is None else pulse
    k_p, k_d, k = jax.random.split(key, 3)
    x, y, _ = _sample_positions(k_p, detector, n)
    z = pulse.anode_height + gas_depth * jax.random.uniform(k_d, (n,))
    return _one_site(
        k,
        n,
        detector,
        n_sites,
        z,
        (x, y),
        GAS,
        GAS_EVENT,
        energy_range,
        recoil_type,
        yields,
    )


@poison_policy
def sample_accidentals(
    key,
    n: int,
    detector: Detector,
    *,
    n_sites: int = 2,
    s1_energy_range=(1.5, 20.0),
    s2_energy_range=(1.5, 20.0),
    below_cathode_cm: float = 2.0,
    recoil_type: str = "ER",
    yields=None,
) -> Interactions:
    """Accidental coincidences (``ACCIDENTAL``): isolated S1 + isolated S2.

    Site 0: light only, ``U(0, below_cathode_cm)`` cm below the cathode (region
    ``BELOW_CATHODE``: its charge is not extracted), at t = 0. Site 1: charge only
    (``n_photons = 0``), uniform in the fiducial volume, at a time that puts its mean
    S2 arrival uniformly in ``[0, dt_max]``.
    """
    detector = _start(key, n, detector, n_sites)
    if n_sites < 2:
        raise ValueError(f"`n_sites` must be >= 2 for accidentals; got {n_sites}.")
    k1, k2, k_d, k_p1, k_p2, k_t = jax.random.split(key, 6)
    a = _one_site(
        k1,
        n,
        detector,
        1,
        jnp.zeros(n),
        (jnp.zeros(n),) * 2,
        BELOW_CATHODE,
        ACCIDENTAL,
        s1_energy_range,
        recoil_type,
        yields,
    )
    b = _one_site(
        k2,
        n,
        detector,
        1,
        jnp.zeros(n),
        (jnp.zeros(n),) * 2,
        LIQUID,
        ACCIDENTAL,
        s2_energy_range,
        recoil_type,
        yields,
        photons=False,
    )
    x1, y1, _ = _sample_positions(k_p1, detector, n)
    z1 = -detector.height - below_cathode_cm * jax.random.uniform(k_d, (n,))
    x2, y2, z2 = _sample_positions(k_p2, detector, n)
    t_max = detector.height / detector.drift_velocity
    t2 = (jax.random.uniform(k_t, (n,)) * t_max + z2 / detector.drift_velocity) * 1e3
    m = jnp.ones((n, 2), bool)
    return make_interactions(
        _pad(jnp.stack([x1, x2], 1), n_sites),
        _pad(jnp.stack([y1, y2], 1), n_sites),
        _pad(jnp.stack([z1, z2], 1), n_sites, -1.0),
        _pad(jnp.stack([a.n_photons[:, 0], jnp.zeros(n)], 1), n_sites),
        _pad(jnp.stack([jnp.zeros(n), b.n_electrons[:, 0]], 1), n_sites),
        t=_pad(jnp.stack([jnp.zeros(n), t2], 1), n_sites),
        energy=_pad(jnp.stack([a.energy[:, 0], b.energy[:, 0]], 1), n_sites),
        recoil_type=1 if recoil_type == "NR" else 0,
        region=_pad(
            jnp.stack([jnp.full(n, BELOW_CATHODE), jnp.full(n, LIQUID)], 1),
            n_sites,
            LIQUID,
        ),
        mask=_pad(m, n_sites, False),
        label=jnp.full((n,), ACCIDENTAL, jnp.int32),
    )


SAMPLERS = (
    sample_single_scatters,
    sample_multiple_scatters,
    sample_s2_only,
    sample_gate_events,
    sample_cathode_events,
    sample_gas_events,
    sample_accidentals,
)


@poison_policy
def sample_event_classes(
    key,
    n: int,
    rates: EventClassRates,
    detector: Detector,
    *,
    n_sites: int = 2,
    yields=None,
) -> Interactions:
    """Mixture of all classes: each event's class drawn with probability ∝ its rate.

    Every class sampler runs on ``n`` events (default options) and each event takes
    the record of its drawn class; ``label`` holds the class. An S2-only event
    comes from :func:`sample_below_cathode_s2_only` with probability
    ``s2_only_below_cathode / (s2_only + s2_only_below_cathode)``, else from
    :func:`sample_s2_only`.

    Args:
        key: Typed PRNG key.
        n: Number of events (static).
        rates: :class:`EventClassRates` (checked: finite, >= 0, not all zero).
        detector: Detector parameters.
        n_sites: Site slots per event (>= 2).
        yields: NEST yield parameters.

    Returns:
        :class:`Interactions` of ``n`` events.
    """
    detector = _start(key, n, detector, n_sites)
    rates = check_rates(rates)
    p = class_probabilities(rates, detector)
    keys = jax.random.split(key, len(SAMPLERS) + 1)
    recs = [
        s(k, n, detector, n_sites=n_sites, yields=yields)
        for s, k in zip(SAMPLERS, keys[1:], strict=True)
    ]
    # S2-only: the below-cathode path with its share of the S2-only rate.
    k_mix, k_path, k_bc = jax.random.split(keys[0], 3)
    s2_total = rates.s2_only + rates.s2_only_below_cathode
    share = rates.s2_only_below_cathode / jnp.where(s2_total > 0, s2_total, 1.0)
    below = sample_below_cathode_s2_only(
        k_bc, n, detector, n_sites=n_sites, yields=yields
    )
    take = jax.random.bernoulli(k_path, share, (n,))
    idx = SAMPLERS.index(sample_s2_only)
    recs[idx] = jax.tree.map(
        lambda b, a: jnp.where(take.reshape((n,) + (1,) * (a.ndim - 1)), b, a),
        below,
        recs[idx],
    )
    cls = jax.random.choice(k_mix, len(SAMPLERS), (n,), p=p)
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *recs)
    return jax.tree.map(lambda a: a[cls, jnp.arange(n)], stacked)
