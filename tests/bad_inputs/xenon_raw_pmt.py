"""Bad inputs to the xenon PMT arrays, hit patterns and position reconstruction.

Policy (docs/architecture.md, xenon raw data): eagerly raise (ValueError/TypeError)
naming the public argument; under ``eqx.filter_jit`` the poison policy
(``jit_expect="poison"``: every output NaN/-1/False) for traced value checks, while
static ones (shapes, options) still raise. Layouts and parameters are modules of
``jnp`` arrays so that the traced path is exercised.
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from jaxdm._poison import with_valid
from jaxdm.simulators import xenon
from tests.bad_inputs.case import Case
from tests.bad_inputs.xenon_raw_wave import rows_poisoned

_KEY = jax.random.key(0)
_P = xenon.small_test_pmts()
_GOOD = jnp.ones(38)


def _pmts(**kw):
    names = tuple(kw)
    return eqx.tree_at(
        lambda p: tuple(getattr(p, n) for n in names),
        _P,
        tuple(jnp.asarray(v, dtype=jnp.float32) for v in kw.values()),
    )


def _mean(n=100.0, x=0.0, y=0.0, z=-5.0, pmts=_P, optics=None, signal="s1"):
    return lambda: xenon.expected_hit_pattern(
        jnp.asarray(n),
        jnp.asarray(x),
        jnp.asarray(y),
        None if z is None else jnp.asarray(z),
        pmts=pmts,
        optics=optics,
        signal=signal,
    )


_OVERLAP = _pmts(xy_top=[[0.0, 0.0], [2.0, 0.0]])
_OUTSIDE = _pmts(xy_bottom=[[0.0, 0.0], [9.5, 0.0]])

CASES = [
    Case(
        "xenon_raw_pmt.expected_hit_pattern: negative n_photons",
        _mean(n=-1.0),
        match="n_photons",
        jit_expect="poison",
    ),
    Case(
        "xenon_raw_pmt.expected_hit_pattern: NaN x",
        _mean(x=jnp.nan),
        match="`x`",
        jit_expect="poison",
    ),
    Case(
        "xenon_raw_pmt.expected_hit_pattern: outside the TPC",
        _mean(x=12.0),
        match="outside the TPC",
        jit_expect="poison",
    ),
    Case(
        "xenon_raw_pmt.expected_hit_pattern: S1 above the gate",
        _mean(z=1.0),
        match="`z`",
        jit_expect="poison",
    ),
    Case(
        "xenon_raw_pmt.expected_hit_pattern: S1 below the cathode",
        _mean(z=-25.0),
        match="`z`",
        jit_expect="poison",
    ),
    Case(
        "xenon_raw_pmt.expected_hit_pattern: S1 without z", _mean(z=None), match="`z`"
    ),
    Case(
        "xenon_raw_pmt.expected_hit_pattern: S2 in the liquid",
        _mean(z=-1.0, signal="s2"),
        match="`z`",
        jit_expect="poison",
    ),
    Case(
        "xenon_raw_pmt.expected_hit_pattern: overlapping PMTs",
        _mean(pmts=_OVERLAP),
        match="overlap",
    ),
    Case(
        "xenon_raw_pmt.expected_hit_pattern: PMT outside the TPC",
        _mean(pmts=_OUTSIDE),
        match="outside the TPC",
    ),
    Case(
        "xenon_raw_pmt.expected_hit_pattern: zero PMTs",
        _mean(pmts=eqx.tree_at(lambda p: p.xy_top, _P, jnp.zeros((0, 2)))),
        match="at least one PMT",
    ),
    Case(
        "xenon_raw_pmt.expected_hit_pattern: photocathode larger than the PMT",
        _mean(pmts=_pmts(photocathode_radius=2.0)),
        match="photocathode_radius",
    ),
    Case(
        "xenon_raw_pmt.expected_hit_pattern: reflectivity 1.2",
        _mean(optics=xenon.OpticalParams(ptfe_reflectivity=jnp.asarray(1.2))),
        match="ptfe_reflectivity",
    ),
    Case(
        "xenon_raw_pmt.expected_hit_pattern: NaN PMT efficiency",
        _mean(optics=xenon.OpticalParams(pmt_efficiency=jnp.asarray(jnp.nan))),
        match="pmt_efficiency",
    ),
    Case(
        "xenon_raw_pmt.expected_hit_pattern: bad signal",
        _mean(signal="s3"),
        match="signal",
    ),
    Case(
        "xenon_raw_pmt.sample_hit_pattern: non-integer n_photons",
        lambda: xenon.sample_hit_pattern(
            _KEY,
            jnp.asarray(10.5),
            jnp.asarray(0.0),
            jnp.asarray(0.0),
            jnp.asarray(-5.0),
            pmts=_P,
        ),
        match="n_photons",
        jit_expect="poison",
    ),
    Case(
        "xenon_raw_pmt.sample_hit_pattern: legacy key",
        lambda: xenon.sample_hit_pattern(
            jax.random.PRNGKey(0), 10.0, 0.0, 0.0, -5.0, pmts=_P
        ),
        match="key",
    ),
    Case(
        "xenon_raw_pmt.top_bottom_asymmetry: negative counts",
        xenon.top_bottom_asymmetry,
        (_GOOD.at[3].set(-1.0), _P),
        match="hits",
        jit_expect="poison",
    ),
    Case(
        "xenon_raw_pmt.top_bottom_asymmetry: NaN counts",
        xenon.top_bottom_asymmetry,
        (_GOOD.at[3].set(jnp.nan), _P),
        match="hits",
        jit_expect="poison",
    ),
    Case(
        "xenon_raw_pmt.top_bottom_asymmetry: wrong PMT count",
        xenon.top_bottom_asymmetry,
        (jnp.ones(30), _P),
        match="hits",
    ),
    Case(
        "xenon_raw_pmt.hit_image: negative counts",
        xenon.hit_image,
        (_GOOD.at[0].set(-2.0), _P),
        match="hits",
        jit_expect="poison",
    ),
    Case(
        "xenon_raw_pmt.centroid_position: negative counts",
        xenon.centroid_position,
        (_GOOD.at[0].set(-2.0), _P),
        match="hits",
        jit_expect="poison",
    ),
    Case(
        "xenon_raw_pmt.likelihood_position: empty top array",
        xenon.likelihood_position,
        (jnp.zeros(38).at[25].set(3.0), _P),
        match="top array is empty",
        jit_expect="poison",
    ),
    Case(
        "xenon_raw_pmt.pmt_efficiency_for_g1: g1 above the light collection",
        xenon.pmt_efficiency_for_g1,
        (jnp.asarray(0.9), _P),
        match="g1",
        jit_expect="poison",
    ),
]

_PARAMS = xenon.WaveformParams(detector=xenon.lz_like())


def _rec(x=1.0, z=-5.0, region=0):
    return xenon.make_interactions(
        jnp.array([[x]]),
        jnp.array([[0.0]]),
        jnp.array([[z]]),
        jnp.array([[100.0]]),
        jnp.array([[50.0]]),
        region=jnp.array([[region]]),
    )


CASES += [
    Case(
        "xenon_raw_pmt.simulate_hit_patterns: site outside the TPC",
        lambda: xenon.simulate_hit_patterns(_KEY, _rec(x=11.0), _PARAMS, _P),
        match=r"record\.x",
        jit_expect="poison",
    ),
    Case(
        "xenon_raw_pmt.simulate_hit_patterns: liquid site above the gate",
        lambda: xenon.simulate_hit_patterns(_KEY, _rec(z=1.0), _PARAMS, _P),
        match=r"record\.z",
        jit_expect="poison",
    ),
    Case(
        "xenon_raw_pmt.simulate_hit_patterns: gas site above the top PMTs",
        lambda: xenon.simulate_hit_patterns(_KEY, _rec(z=4.0, region=4), _PARAMS, _P),
        match=r"record\.z",
        jit_expect="poison",
    ),
]

_HITS3 = jnp.ones((3, 38)).at[2, 5].set(-1.0)

CASES += [
    Case(
        "xenon_raw_pmt.top_bottom_asymmetry: vmap, negative count in row 2 only",
        jax.vmap(with_valid(lambda h: xenon.top_bottom_asymmetry(h, _P))),
        (_HITS3,),
        expect="nan",
        flagged=rows_poisoned([False, False, True]),
        modes=("jit",),
    ),
    Case(
        "xenon_raw_pmt.expected_hit_pattern: vmap, row 1 outside the TPC",
        jax.vmap(
            with_valid(
                lambda x: xenon.expected_hit_pattern(100.0, x, 0.0, -5.0, pmts=_P)
            )
        ),
        (jnp.array([0.0, 50.0, 2.0]),),
        expect="nan",
        flagged=rows_poisoned([False, True, False]),
        modes=("jit",),
    ),
    Case(
        "xenon_raw_pmt.centroid_position: vmap, NaN count in row 0 only",
        jax.vmap(with_valid(lambda h: xenon.centroid_position(h, _P))),
        (jnp.ones((2, 38)).at[0, 3].set(jnp.nan),),
        expect="nan",
        flagged=rows_poisoned([True, False]),
        modes=("jit",),
    ),
]
