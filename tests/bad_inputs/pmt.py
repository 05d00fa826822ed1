"""Bad inputs added by the pmt area: S2 optics, below-cathode S2-only, position net.

Raise eagerly, naming the public argument; under ``eqx.filter_jit`` the xenon
functions poison (``jit_expect="poison"``), ``reconstruction`` keeps raising.
Optical parameters are ``jnp`` arrays so that the traced checks are exercised.
"""

import jax
import jax.numpy as jnp

from jaxdm import reconstruction
from jaxdm.simulators import xenon
from tests.bad_inputs.case import Case

_P = xenon.small_test_pmts()


def _optics(**kw):
    return xenon.OpticalParams(**{k: jnp.asarray(v) for k, v in kw.items()})


def _s2_map(optics):
    return {"pmts": _P, "optics": optics, "signal": "s2"}


_NET = reconstruction.PositionNet(
    _P.n_top, 10.0, width=4, depth=1, key=jax.random.key(0)
)

CASES = [
    Case(
        "pmt.light_collection_map: negative absorption_length",
        xenon.light_collection_map,
        (jnp.asarray(0.0), jnp.asarray(0.0)),
        _s2_map(_optics(absorption_length=-5.0)),
        match="absorption_length",
        jit_expect="poison",
    ),
    Case(
        "pmt.light_collection_map: NaN absorption_length",
        xenon.light_collection_map,
        (jnp.asarray(0.0), jnp.asarray(0.0)),
        _s2_map(_optics(absorption_length=jnp.nan)),
        match="absorption_length",
        jit_expect="poison",
    ),
    Case(
        "pmt.light_collection_map: gas_reflectivity 1 (no losses: series diverges)",
        xenon.light_collection_map,
        (jnp.asarray(0.0), jnp.asarray(0.0)),
        _s2_map(_optics(gas_reflectivity=1.0)),
        match="gas_reflectivity",
        jit_expect="poison",
    ),
    Case(
        "pmt.sample_below_cathode_s2_only: charge_fraction 0",
        xenon.sample_below_cathode_s2_only,
        (jax.random.key(0), 4, xenon.lz_like()),
        {"charge_fraction": 0.0},
        match="charge_fraction",
        modes=("eager",),
    ),
    Case(
        "pmt.sample_below_cathode_s2_only: negative below_depth",
        xenon.sample_below_cathode_s2_only,
        (jax.random.key(0), 4, xenon.lz_like()),
        {"below_depth": -1.0},
        match="below_depth",
        modes=("eager",),
    ),
    Case(
        "pmt.check_rates: negative s2_only_below_cathode",
        xenon.check_rates,
        (
            xenon.EventClassRates(
                **{
                    k: jnp.asarray(1.0)
                    for k in ("single", "multiple", "s2_only", "gate", "cathode")
                },
                gas=jnp.asarray(1.0),
                isolated_s1=jnp.asarray(1.0),
                isolated_s2=jnp.asarray(0.01),
                s2_only_below_cathode=jnp.asarray(-1.0),
            ),
        ),
        match="s2_only_below_cathode",
        jit_expect="poison",
    ),
    Case(
        "pmt.net_position: negative hits",
        reconstruction.net_position,
        (_NET, jnp.full(38, -1.0), _P),
        match="hits",
    ),
    Case(
        "pmt.net_position: wrong pattern length",
        reconstruction.net_position,
        (_NET, jnp.ones(37), _P),
        match="hits",
        modes=("eager",),
    ),
]
