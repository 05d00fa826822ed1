"""Bad inputs to the xenon raw-waveform layer (waveforms, pulses, event classes).

Policy: eagerly raise with a message naming the public argument; under
``eqx.filter_jit`` the xenon poison policy (``jit_expect="poison"``), and per row
under ``vmap`` (the ``vmap`` cases at the end, with ``with_valid``). Parameters are
``jnp`` arrays so that the traced path is exercised.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxdm._poison import with_valid
from jaxdm.simulators import xenon
from tests.bad_inputs.case import Case

_KEY = jax.random.key(0)
_DET = xenon.lz_like()
_PARAMS = xenon.WaveformParams(_DET)
_CFG = xenon.WaveformConfig(s2_samples=3000, max_s1_photons=64, max_s2_electrons=256)

# 14 us S2 window with an 8 us pre-trigger: holds an S2 from 20 cm (1 us box,
# sigma 0.5 us), not one from 140 cm (sigma 1.4 us: 8 + 1 + 7 us).
_SHORT = xenon.WaveformConfig(s2_pre=8000.0, s2_samples=1400)


def _rec(z=-20.0, n_ph=50.0, n_e=30.0, t=0.0):
    return xenon.Interactions(
        x=jnp.zeros((1, 2)),
        y=jnp.zeros((1, 2)),
        z=jnp.full((1, 2), z),
        t=jnp.full((1, 2), t),
        energy=jnp.full((1, 2), 5.0),
        recoil_type=jnp.zeros((1, 2), jnp.int32),
        region=jnp.zeros((1, 2), jnp.int32),
        n_photons=jnp.full((1, 2), n_ph),
        n_electrons=jnp.full((1, 2), n_e),
        mask=jnp.array([[True, False]]),
        label=jnp.zeros((1,), jnp.int32),
    )


def _pulse(**kw):
    p = xenon.PulseParams()
    names = tuple(kw)
    return eqx.tree_at(
        lambda q: tuple(getattr(q, n) for n in names),
        p,
        tuple(jnp.asarray(v, jnp.float32) for v in kw.values()),
    )


def _wave(record=None, params=_PARAMS, config=_CFG):
    return xenon.simulate_waveform(
        _KEY, _rec() if record is None else record, params, config
    )


def _expected(record=None, params=_PARAMS, config=_CFG):
    return xenon.expected_waveform(_rec() if record is None else record, params, config)


def _rates(**kw):
    base = dict(
        single=1.0,
        multiple=1.0,
        s2_only=1.0,
        gate=1.0,
        cathode=1.0,
        gas=1.0,
        isolated_s1=1.0,
        isolated_s2=0.01,
    )
    base.update(kw)
    return xenon.EventClassRates(**{k: jnp.asarray(v) for k, v in base.items()})


CASES = [
    Case(
        "xenon.simulate_waveform: S2 window shorter than the S2",
        lambda: _wave(config=xenon.WaveformConfig(s2_samples=50)),
        match=r"config\.s2_samples",
        jit_expect="poison",
    ),
    Case(
        "xenon.expected_waveform: S2 window shorter than the S2 (deep event)",
        lambda r: _expected(r, config=_SHORT),
        (_rec(z=-140.0),),
        match=r"config\.s2_samples",
        jit_expect="poison",
    ),
    Case(
        "xenon.simulate_waveform: S1 window shorter than the S1",
        lambda: _wave(config=xenon.WaveformConfig(s1_samples=10)),
        match=r"config\.s1_samples",
        jit_expect="poison",
    ),
    Case(
        "xenon.simulate_waveform: NaN photon count",
        _wave,
        (_rec(n_ph=jnp.nan),),
        match=r"record\.n_photons",
        jit_expect="poison",
    ),
    Case(
        "xenon.simulate_waveform: negative electron count",
        _wave,
        (_rec(n_e=-3.0),),
        match=r"record\.n_electrons",
        jit_expect="poison",
    ),
    Case(
        "xenon.simulate_waveform: NaN height",
        _wave,
        (_rec(z=jnp.nan),),
        match=r"record\.z",
        jit_expect="poison",
    ),
    Case(
        "xenon.simulate_waveform: more photons than max_s1_photons",
        _wave,
        (_rec(n_ph=5000.0),),
        match=r"config\.max_s1_photons",
        jit_expect="poison",
    ),
    Case(
        "xenon.simulate_waveform: more electrons than max_s2_electrons",
        _wave,
        (_rec(n_e=5000.0),),
        match=r"config\.max_s2_electrons",
        jit_expect="poison",
    ),
    Case(
        "xenon.simulate_waveform: negative triplet lifetime",
        lambda p: _wave(params=xenon.WaveformParams(_DET, p)),
        (_pulse(tau_triplet=-24.0),),
        match=r"params\.pulse\.tau_triplet",
        jit_expect="poison",
    ),
    Case(
        "xenon.expected_waveform: anode below the liquid surface",
        lambda p: _expected(params=xenon.WaveformParams(_DET, p)),
        (_pulse(anode_height=0.2),),
        match=r"params\.pulse\.anode_height",
        jit_expect="poison",
    ),
    Case(
        "xenon.expected_waveform: NaN diffusion constant",
        lambda d: _expected(params=xenon.WaveformParams(d)),
        (eqx.tree_at(lambda d: d.diffusion_long, _DET, jnp.asarray(jnp.nan)),),
        match=r"params\.detector\.diffusion_long",
        jit_expect="poison",
    ),
    Case(
        "xenon.WaveformConfig: string sample count",
        lambda: xenon.WaveformConfig(s2_samples="4000"),
        match=r"config\.s2_samples",
        modes=("eager",),
    ),
    Case(
        "xenon.WaveformConfig: zero sample width",
        lambda: xenon.WaveformConfig(dt=0.0),
        match=r"config\.dt",
        modes=("eager",),
    ),
    Case(
        "xenon.make_interactions: negative photon count",
        lambda n: xenon.make_interactions(jnp.zeros(2), jnp.zeros(2), -1.0, n, 1.0),
        (jnp.array([1.0, -2.0]),),
        match="n_photons",
        jit_expect="poison",
    ),
    Case(
        "xenon.make_interactions: region code out of range",
        lambda r: xenon.make_interactions(
            jnp.zeros(2), jnp.zeros(2), -1.0, 1.0, 1.0, region=r
        ),
        (jnp.array([0, 7]),),
        match="region",
        jit_expect="poison",
    ),
    Case(
        "xenon.sample_event_classes: negative rate",
        lambda r: xenon.sample_event_classes(_KEY, 4, r, _DET),
        (_rates(gate=-1.0),),
        match=r"rates\.gate",
        modes=("eager",),  # under jit: the check_rates cases (same guard)
    ),
    Case(
        "xenon.class_probabilities: negative rate",
        lambda r: xenon.class_probabilities(xenon.check_rates(r), _DET),
        (_rates(cathode=-1.0),),
        match=r"rates\.cathode",
        jit_expect="poison",
    ),
    Case(
        "xenon.class_probabilities: NaN isolated S2 rate",
        lambda r: xenon.class_probabilities(xenon.check_rates(r), _DET),
        (_rates(isolated_s2=jnp.nan),),
        match=r"rates\.isolated_s2",
        jit_expect="poison",
    ),
    Case(
        "xenon.class_probabilities: all rates zero",
        lambda r: xenon.class_probabilities(xenon.check_rates(r), _DET),
        (
            _rates(
                single=0.0,
                multiple=0.0,
                s2_only=0.0,
                gate=0.0,
                cathode=0.0,
                gas=0.0,
                isolated_s1=0.0,
            ),
        ),
        match="rates",
        jit_expect="poison",
    ),
    Case(
        "xenon.sample_multiple_scatters: n_scatters above n_sites",
        lambda: xenon.sample_multiple_scatters(_KEY, 4, _DET, n_scatters=3),
        match="n_scatters",
        modes=("eager",),
    ),
    Case(
        "xenon.reduce_waveforms: not a Waveform",
        lambda: xenon.reduce_waveforms(jnp.zeros(10), _PARAMS, _CFG),
        match="waveform",
        modes=("eager",),
    ),
]


def rows_poisoned(bad):
    """``flagged`` of a ``vmap(with_valid(fn))`` case: exactly the ``bad`` rows.

    ``out = (tree, valid)``: ``valid`` is False exactly in the bad rows; in those
    rows every float leaf is NaN, every signed integer leaf -1 and every boolean
    leaf False; in the other rows float leaves are finite and integer leaves not -1.
    """
    bad = np.asarray(bad, bool)

    def flagged(out):
        tree, valid = out
        if not np.array_equal(np.asarray(valid), ~bad):
            return False
        for leaf in jax.tree_util.tree_leaves(tree):
            if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
                continue
            rows = np.asarray(leaf).reshape(bad.shape[0], -1)
            if np.issubdtype(rows.dtype, np.inexact):
                ok = np.all(np.isnan(rows[bad])) and np.all(np.isfinite(rows[~bad]))
            elif np.issubdtype(rows.dtype, np.bool_):
                ok = not np.any(rows[bad])
            else:
                ok = np.all(rows[bad] == -1) and not np.any(rows[~bad] == -1)
            if not ok:
                return False
        return True

    return flagged


def _row_record(z, n_e):
    return xenon.make_interactions(
        jnp.zeros(2), jnp.zeros(2), z, jnp.full(2, 50.0), n_e,
        energy=jnp.full(2, 5.0), mask=jnp.array([True, False]),
    )  # fmt: skip


_Z3 = jnp.array([[-20.0, -1.0], [jnp.nan, -1.0], [-30.0, -1.0]])
_NE3 = jnp.array([[30.0, 0.0], [30.0, 0.0], [-4.0, 0.0]])

CASES += [
    Case(
        "xenon.make_interactions: vmap, NaN z in row 1 only",
        jax.vmap(with_valid(_row_record)),
        (_Z3, jnp.full((3, 2), 30.0)),
        expect="nan",
        flagged=rows_poisoned([False, True, False]),
        modes=("jit",),
    ),
    Case(
        "xenon.expected_waveform: vmap, NaN z (row 1) and negative n_electrons (row 2)",
        jax.vmap(
            with_valid(
                lambda z, n_e: xenon.expected_waveform(
                    jax.tree.map(lambda a: a[None], _row_record(z, n_e)), _PARAMS, _CFG
                )
            )
        ),
        (_Z3, _NE3),
        expect="nan",
        flagged=rows_poisoned([False, True, True]),
        modes=("jit",),
    ),
    Case(
        "xenon.check_rates: vmap, negative gate rate in row 0 only",
        jax.vmap(
            with_valid(lambda r: xenon.class_probabilities(xenon.check_rates(r), _DET))
        ),
        (jax.tree.map(lambda a, b: jnp.stack([b, a, a]), _rates(), _rates(gate=-1.0)),),
        expect="nan",
        flagged=rows_poisoned([True, False, False]),
        modes=("jit",),
    ),
]
