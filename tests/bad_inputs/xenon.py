"""Bad inputs to the xenon simulator (``jaxdm.simulators.xenon``).

Policy (docs/architecture.md): poison under trace. Every case raises eagerly
(ValueError or TypeError naming the public argument); under ``eqx.filter_jit`` a
traced value check poisons every output (``jit_expect="poison"``), while static
errors (shapes, types, names) still raise. Bad parameters are ``jnp`` arrays or
modules of arrays so that the traced path is exercised. The vmap cases at the end
check that exactly the bad row is poisoned and flagged.
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
_E = jnp.array([2.0, 5.0, 10.0])
_ER = xenon.flat_er_spectrum(1.0, e_min=1.0, e_max=20.0, n_grid=8)
_NR = xenon.tabulated_spectrum(jnp.array([3.0, 30.0]), jnp.array([1.0, 0.1]), "NR")
_BINS = (jnp.linspace(2.0, 40.0, 4), jnp.linspace(2.5, 4.5, 4))


def _det(**kw):
    """The LZ-like detector with fields replaced (as arrays: traced under jit)."""
    names = tuple(kw)
    return eqx.tree_at(
        lambda d: tuple(getattr(d, n) for n in names),
        _DET,
        tuple(jnp.asarray(v, dtype=jnp.float32) for v in kw.values()),
    )


def _model(exposure=10.0, yields=None):
    return xenon.XenonModel(
        sources=(_ER, _NR),
        exposure=jnp.asarray(exposure),
        yields=xenon.YieldParams() if yields is None else yields,
    )


def _sim(detector, energy=_E, yields=None):
    return lambda: xenon.simulate_energies(_KEY, energy, "ER", detector, yields=yields)


def _events(source, detector, yields=None):
    return xenon.simulate_events(_KEY, source, detector, 16, yields=yields)


_NEG_RATE = eqx.tree_at(lambda s: s.rate, _ER, -_ER.rate)
_ZERO_RATE = eqx.tree_at(lambda s: s.rate, _ER, jnp.zeros_like(_ER.rate))
_BAD_HALO = eqx.tree_at(lambda h: h.v_esc, xenon.HaloModel(), jnp.asarray(200.0))

CASES = [
    Case(
        "xenon.simulate_energies: g1 > 1",
        xenon.simulate_energies,
        (_KEY, _E, "ER", _det(g1=1.2)),
        match=r"detector\.g1",
        jit_expect="poison",
    ),
    Case(
        "xenon.simulate_energies: negative drift velocity",
        xenon.simulate_energies,
        (_KEY, _E, "ER", _det(drift_velocity=-0.15)),
        match=r"detector\.drift_velocity",
        jit_expect="poison",
    ),
    Case(
        "xenon.simulate_energies: NaN electron lifetime",
        xenon.simulate_energies,
        (_KEY, _E, "NR", _det(electron_lifetime=float("nan"))),
        match=r"detector\.electron_lifetime",
        jit_expect="poison",
    ),
    Case(
        "xenon.simulate_energies: extraction efficiency 0",
        xenon.simulate_energies,
        (_KEY, _E, "ER", _det(extraction_efficiency=0.0)),
        match=r"detector\.extraction_efficiency",
        jit_expect="poison",
    ),
    Case(
        "xenon.simulate_energies: negative energy",
        xenon.simulate_energies,
        (_KEY, jnp.array([2.0, -1.0, 3.0]), "ER", _DET),
        match="`energy`",
        jit_expect="poison",
    ),
    Case(
        "xenon.simulate_energies: NaN energy",
        xenon.simulate_energies,
        (_KEY, jnp.array([2.0, jnp.nan]), "NR", _DET),
        match="`energy`",
        jit_expect="poison",
    ),
    Case(
        "xenon.simulate_energies: 2-D energy",
        xenon.simulate_energies,
        (_KEY, jnp.ones((2, 3)), "ER", _DET),
        match="`energy`",
    ),
    Case(
        "xenon.simulate_energies: unknown recoil type",
        xenon.simulate_energies,
        (_KEY, _E, "alpha", _DET),
        match="recoil_type",
    ),
    Case(
        "xenon.simulate_energies: legacy uint32 key",
        xenon.simulate_energies,
        (jax.random.PRNGKey(0), _E, "ER", _DET),
        match="`key`",
    ),
    Case(
        "xenon.simulate_energies: negative W",
        xenon.simulate_energies,
        (_KEY, _E, "ER", _DET),
        {"yields": xenon.YieldParams(w_ev=jnp.asarray(-13.7))},
        match=r"yields\.w_ev",
        jit_expect="poison",
    ),
    Case(
        "xenon.simulate_events: negative Fano factor",
        _events,
        (_NR, _DET, xenon.YieldParams(nr_fano=jnp.asarray(-0.4))),
        match=r"yields\.nr_fano",
        jit_expect="poison",
    ),
    Case(
        "xenon.simulate_events: source with a negative rate",
        _events,
        (_NEG_RATE, _DET),
        match=r"source\.rate",
        jit_expect="poison",
    ),
    Case(
        "xenon.simulate_events: source with zero total rate",
        _events,
        (_ZERO_RATE, _DET),
        match=r"rate",
        jit_expect="poison",
    ),
    Case(
        "xenon.simulate_events: n = 0",
        xenon.simulate_events,
        (_KEY, _ER, _DET, 0),
        match="`n`",
    ),
    Case(
        "xenon.sample_exposure: negative exposure (Poisson mean < 0)",
        xenon.sample_exposure,
        (_KEY, (_ER, _NR), _DET, jnp.asarray(-1.0), 64),
        match="`exposure`",
        jit_expect="poison",
    ),
    Case(
        "xenon.sample_exposure: NaN exposure (Poisson mean NaN)",
        xenon.sample_exposure,
        (_KEY, (_ER, _NR), _DET, jnp.asarray(jnp.nan), 64),
        match="`exposure`",
        jit_expect="poison",
    ),
    Case(
        "xenon.sample_exposure: negative source rate",
        xenon.sample_exposure,
        (_KEY, (_ER, _NEG_RATE), _DET, jnp.asarray(1.0), 64),
        match=r"sources\[1\]\.rate",
        jit_expect="poison",
    ),
    Case(
        "xenon.wimp_si_rate: negative WIMP mass",
        xenon.wimp_si_rate,
        (_E, jnp.asarray(-50.0), 1e-45),
        match="mass_gev",
        jit_expect="poison",
    ),
    Case(
        "xenon.wimp_si_rate: NaN WIMP mass",
        xenon.wimp_si_rate,
        (_E, jnp.asarray(jnp.nan), 1e-45),
        match="mass_gev",
        jit_expect="poison",
    ),
    Case(
        "xenon.wimp_si_rate: negative cross-section",
        xenon.wimp_si_rate,
        (_E, jnp.asarray(50.0), jnp.asarray(-1e-20)),
        match="sigma_cm2",
        jit_expect="poison",
    ),
    Case(
        "xenon.wimp_si_rate: negative energy",
        xenon.wimp_si_rate,
        (jnp.array([-1.0, 2.0]), jnp.asarray(50.0), 1e-45),
        match="energy_kev",
        jit_expect="poison",
    ),
    Case(
        "xenon.wimp_si_rate: halo with v_earth > v_esc",
        lambda e, h: xenon.wimp_si_rate(e, 50.0, 1e-45, halo=h),
        (_E, _BAD_HALO),
        match="v_esc",
        jit_expect="poison",
    ),
    Case(
        "xenon.wimp_spectrum: negative WIMP mass",
        xenon.wimp_spectrum,
        (jnp.asarray(-50.0), 1e-45),
        match="mass_gev",
        jit_expect="poison",
    ),
    Case(
        "xenon.eta_shm: negative v_min",
        xenon.eta_shm,
        (jnp.array([100.0, -5.0]),),
        match="v_min",
        jit_expect="poison",
    ),
    Case(
        "xenon.flat_er_rate: negative norm",
        xenon.flat_er_rate,
        (_E, jnp.asarray(-1.0)),
        match="`norm`",
        jit_expect="poison",
    ),
    Case(
        "xenon.neutron_nr_rate: zero e-folding energy",
        xenon.neutron_nr_rate,
        (_E, jnp.asarray(1.0), jnp.asarray(0.0)),
        match="e_fold_kev",
        jit_expect="poison",
    ),
    Case(
        "xenon.tabulated_rate: grid not increasing",
        xenon.tabulated_rate,
        (_E, jnp.array([0.0, 2.0, 1.0]), jnp.ones(3)),
        match="grid_kev",
        jit_expect="poison",
    ),
    Case(
        "xenon.expected_counts: negative exposure",
        xenon.expected_counts,
        (_ER, jnp.asarray(1.0), jnp.asarray(10.0), jnp.asarray(-2.0)),
        match="exposure_tonne_year",
        jit_expect="poison",
    ),
    Case(
        "xenon.er_mean_yields: negative field",
        xenon.er_mean_yields,
        (_E, jnp.asarray(-200.0), jnp.asarray(2.9), xenon.YieldParams()),
        match="`field`",
        jit_expect="poison",
    ),
    Case(
        "xenon.nr_mean_yields: NaN density",
        xenon.nr_mean_yields,
        (_E, jnp.asarray(200.0), jnp.asarray(jnp.nan), xenon.YieldParams()),
        match="`density`",
        jit_expect="poison",
    ),
    Case(
        "xenon.mean_yields: negative NR alpha",
        xenon.mean_yields,
        (_E, jnp.asarray(200.0), jnp.asarray(2.9)),
        {"params": xenon.YieldParams(nr_alpha=jnp.asarray(-11.0)), "recoil_type": "NR"},
        match=r"params\.nr_alpha",
        jit_expect="poison",
    ),
    Case(
        "xenon.nest_w_value: negative density",
        xenon.nest_w_value,
        (jnp.asarray(-2.9),),
        match="`density`",
        jit_expect="poison",
    ),
    Case(
        "xenon.signal_moments: z above the gate",
        xenon.signal_moments,
        (_E, jnp.asarray(5.0), "ER", _DET, xenon.YieldParams()),
        match="`z`",
        jit_expect="poison",
    ),
    Case(
        "xenon.expected_histogram: negative exposure",
        xenon.expected_histogram,
        (_model(exposure=-1.0), _DET, _BINS),
        match=r"params\.exposure",
        jit_expect="poison",
    ),
    Case(
        "xenon.expected_histogram: NaN ER recombination width",
        xenon.expected_histogram,
        (_model(yields=xenon.YieldParams(er_omega_width=jnp.asarray(jnp.nan))),),
        {"detector": _DET, "bins": _BINS},
        match=r"params\.yields\.er_omega_width",
        jit_expect="poison",
    ),
    Case(
        "xenon.expected_histogram: cS1 edges not increasing",
        xenon.expected_histogram,
        (_model(), _DET, (jnp.array([2.0, 1.0, 3.0]), _BINS[1])),
        match=r"bins\[0\]",
        jit_expect="poison",
    ),
    Case(
        "xenon.expected_total: fiducial radius beyond the TPC",
        xenon.expected_total,
        (_model(), _det(fid_radius=80.0)),
        match="fid_radius",
        jit_expect="poison",
    ),
    Case(
        "xenon.expected_histogram_1d: negative S2 threshold",
        xenon.expected_histogram_1d,
        (_model(), _det(s2_threshold=-1.0), "cs1", jnp.linspace(0.0, 50.0, 6)),
        match=r"detector\.s2_threshold",
        jit_expect="poison",
    ),
    Case(
        "xenon.log_likelihood: negative counts",
        xenon.log_likelihood,
        (jnp.full((3, 3), -1.0), _model(), _DET, _BINS),
        match="`counts`",
        jit_expect="poison",
    ),
    Case(
        "xenon.log_likelihood: NaN count",
        xenon.log_likelihood,
        (jnp.zeros((3, 3)).at[1, 1].set(jnp.nan), _model(), _DET, _BINS),
        match="`counts`",
        jit_expect="poison",
    ),
    Case(
        "xenon.log_likelihood: non-integer counts",
        xenon.log_likelihood,
        (jnp.full((3, 3), 0.5), _model(), _DET, _BINS),
        match="`counts`",
        jit_expect="poison",
    ),
    Case(
        "xenon.check_detector: not a Detector",
        xenon.check_detector,
        ({"g1": 0.1},),
        match="`detector`",
    ),
]

CASES += [
    Case(
        "xenon.nest_s2_area_scale: negative resolution",
        xenon.nest_s2_area_scale,
        (jnp.array(-0.5),),
        match="spe_resolution",
        jit_expect="poison",
    ),
    Case(
        "xenon.nest_s2_area_scale: NaN resolution",
        xenon.nest_s2_area_scale,
        (jnp.array(float("nan")),),
        match="spe_resolution",
        jit_expect="poison",
    ),
]


# Poison policy under vmap (issue #12): one bad row of a batch is NaN (counts -1,
# flags False) and flagged invalid exactly there; the other rows are finite and
# valid. jit mode only: vmap traces, so the eager mode would run the same program.
def _one_bad_row(bad_row: int):
    def flagged(out):
        value, valid = out
        valid = np.asarray(valid)
        if not np.array_equal(valid, np.arange(valid.shape[0]) != bad_row):
            return False
        for leaf in jax.tree_util.tree_leaves(value):
            x = np.asarray(leaf)
            if not np.issubdtype(x.dtype, np.inexact):
                continue
            rows = x.reshape(x.shape[0], -1)
            if not np.all(np.isnan(rows[bad_row])):
                return False
            if not np.all(np.isfinite(np.delete(rows, bad_row, axis=0))):
                return False
        return True

    return flagged


def _vmapped(fn):
    return jax.vmap(with_valid(fn))


CASES += [
    Case(
        "xenon.simulate_events (vmap): g1 > 1 in row 1 of 3",
        _vmapped(lambda k, g1: _events(_ER, eqx.tree_at(lambda d: d.g1, _DET, g1))),
        (jax.random.split(_KEY, 3), jnp.asarray([0.1, 1.3, 0.12])),
        expect="nan",
        flagged=_one_bad_row(1),
        modes=("jit",),
    ),
    Case(
        "xenon.wimp_si_rate (vmap): NaN mass in row 0 of 3",
        _vmapped(lambda m: xenon.wimp_si_rate(_E, m, 1e-45)),
        (jnp.asarray([jnp.nan, 30.0, 100.0]),),
        expect="nan",
        flagged=_one_bad_row(0),
        modes=("jit",),
    ),
    Case(
        "xenon.expected_histogram (vmap): negative exposure in row 2 of 3",
        _vmapped(
            lambda e: xenon.expected_histogram(_model(exposure=e), _DET, _BINS, n_gl=2)
        ),
        (jnp.asarray([1.0, 2.0, -1.0]),),
        expect="nan",
        flagged=_one_bad_row(2),
        modes=("jit",),
    ),
    Case(
        "xenon.eft_rate (vmap): negative mass in row 1 of 3",
        _vmapped(
            lambda m: xenon.eft_rate(_E, m, xenon.eft_couplings(1, isoscalar=1e-3))
        ),
        (jnp.asarray([50.0, -5.0, 200.0]),),
        expect="nan",
        flagged=_one_bad_row(1),
        modes=("jit",),
    ),
]
