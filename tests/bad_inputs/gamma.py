"""Bad inputs to the gamma-ray simulator (jaxdm.simulators.gamma).

Policy (docs/architecture.md, "Gamma: checked values"): raise, naming the argument,
eagerly (ValueError) and under jit (EquinoxRuntimeError). Parameters are built as jnp
arrays so that the jit runs trace them.
"""

import jax
import jax.numpy as jnp

from jaxdm.simulators import gamma as g
from tests.bad_inputs.case import Case

CFG = g.GammaConfig(nside=8, energy_edges=(2.0, 20.0), max_sources=16, n_los=16)
_P = {"ps_norm": jnp.asarray(0.0), "dm_sigma_v": jnp.asarray(2.0)}
NPIX = g.geometry(CFG).l_deg.size


def _params(**kw):
    return g.GammaParams(**{**_P, **{k: jnp.asarray(v) for k, v in kw.items()}})


def _obs(bad):
    return jnp.ones((1, NPIX)).at[0, 3].set(bad)


def _halo(**kw):
    base = {"gamma": 1.2, "r_s": 20.0, "rho_sun": 0.4, "r_sun": 8.5}
    return g.GNFWHalo(**{k: jnp.asarray(v) for k, v in {**base, **kw}.items()})


_PSI = jnp.array([1.0, 5.0])
_KEY = jax.random.key(0)

CASES = [
    Case(
        "gamma.expected_counts: negative dm_sigma_v",
        g.expected_counts,
        (_params(dm_sigma_v=-1.0), CFG),
        match=r"params\.dm_sigma_v",
    ),
    Case(
        "gamma.expected_counts: negative dm_mass",
        g.expected_counts,
        (_params(dm_mass=-40.0), CFG),
        match=r"params\.dm_mass",
    ),
    Case(
        "gamma.expected_counts: NaN iso_norm",
        g.expected_counts,
        (_params(iso_norm=jnp.nan), CFG),
        match=r"params\.iso_norm",
    ),
    Case(
        "gamma.expected_counts: dm_gamma = 3.5",
        g.expected_counts,
        (_params(dm_gamma=3.5), CFG),
        match=r"params\.dm_gamma",
    ),
    Case(
        "gamma.expected_counts: negative exposure map (was clipped)",
        g.expected_counts,
        (_params(), CFG),
        {"exposure": jnp.full(NPIX, 1e11).at[5].set(-1e11)},
        match="exposure",
    ),
    Case(
        "gamma.expected_counts: NaN in exposure map",
        g.expected_counts,
        (_params(), CFG),
        {"exposure": jnp.full(NPIX, 1e11).at[5].set(jnp.nan)},
        match="exposure",
    ),
    Case(
        "gamma.expected_counts: negative user template",
        g.expected_counts,
        (_params(), CFG),
        {"templates": {"pi0": -jnp.ones(NPIX)}},
        match="templates",
    ),
    Case(
        "gamma.simulate: negative dm_sigma_v",
        g.simulate,
        (_KEY, _params(dm_sigma_v=-2.0), CFG),
        match=r"params\.dm_sigma_v",
    ),
    Case(
        "gamma.simulate: NaN ps_norm",
        g.simulate,
        (_KEY, _params(ps_norm=jnp.nan), CFG),
        match=r"params\.ps_norm",
    ),
    Case(
        "gamma.simulate: ps_indices[0] <= 2 (infinite flux)",
        g.simulate,
        (_KEY, _params(ps_indices=jnp.array([1.5, -0.5])), CFG),
        match=r"params\.ps_indices",
    ),
    Case(
        "gamma.simulate: increasing ps_breaks",
        g.simulate,
        (
            _KEY,
            _params(
                ps_indices=jnp.array([3.0, 1.5, 0.5]),
                ps_breaks=jnp.array([1e-11, 1e-9]),
            ),
            CFG,
        ),
        match=r"params\.ps_breaks",
    ),
    Case(
        "gamma.simulate: NaN dm_mass",
        g.simulate,
        (_KEY, _params(dm_mass=jnp.nan), CFG),
        match=r"params\.dm_mass",
    ),
    Case(
        "gamma.log_likelihood: negative counts in obs",
        g.log_likelihood,
        (_obs(-3.0), _params(), CFG),
        match="`obs`",
    ),
    Case(
        "gamma.log_likelihood: NaN pixel in obs",
        g.log_likelihood,
        (_obs(jnp.nan), _params(), CFG),
        match="`obs`",
    ),
    Case(
        "gamma.expected_f_src: negative ps_norm",
        g.expected_f_src,
        (_params(ps_norm=-1e10), CFG),
        match=r"params\.ps_norm",
    ),
    Case(
        "gamma.j_factor_map: negative halo.gamma",
        g.j_factor_map,
        (jnp.zeros(2), _PSI, _halo(gamma=-0.5)),
        match=r"halo\.gamma",
    ),
    Case(
        "gamma.j_factor_map: NaN in b_deg",
        g.j_factor_map,
        (jnp.zeros(2), _PSI.at[1].set(jnp.nan), _halo()),
        match="b_deg",
    ),
    Case(
        "gamma.d_factor_map: NaN halo.rho_sun",
        g.d_factor_map,
        (jnp.zeros(2), _PSI, _halo(rho_sun=jnp.nan)),
        match=r"halo\.rho_sun",
    ),
    Case(
        "gamma.j_factor_cone: gamma >= 1.5 (divergent J)",
        g.j_factor_cone,
        (jnp.asarray(1.0), _halo(gamma=1.6)),
        match=r"halo\.gamma",
    ),
    Case(
        "gamma.j_factor_cone: negative psi_max_deg",
        g.j_factor_cone,
        (jnp.asarray(-1.0), _halo()),
        match="psi_max_deg",
    ),
    Case(
        "gamma.roi_j_factor: negative halo.r_s",
        g.roi_j_factor,
        (_halo(r_s=-20.0), g.RegionOfInterest(5.0, 2.0)),
        {"nside": 16},
        match=r"halo\.r_s",
    ),
    Case(
        "gamma.bbbar_bins: negative mass",
        g.bbbar_bins,
        ((2.0, 20.0), jnp.asarray(-40.0)),
        match="mass",
    ),
    Case(
        "gamma.cutoff_power_law_bins: negative e_cut",
        g.cutoff_power_law_bins,
        ((2.0, 20.0), jnp.asarray(1.5), jnp.asarray(-3.0)),
        match="e_cut",
    ),
    Case(
        "gamma.expected_number: negative norm",
        g.expected_number,
        (jnp.asarray(-1e10), jnp.array([10.0, -0.5]), jnp.array([4e-10])),
        match="norm",
    ),
    Case(
        "gamma.sample_population: NaN spatial_prob",
        g.sample_population,
        (
            _KEY,
            jnp.asarray(1e10),
            jnp.array([10.0, -0.5]),
            jnp.array([4e-10]),
            jnp.ones(4).at[2].set(jnp.nan),
            64,
        ),
        match="spatial_prob",
    ),
    Case(
        "gamma.convolve_healpix: NaN map",
        g.convolve_healpix,
        (
            jnp.ones((1, 3)).at[0, 1].set(jnp.nan),
            jnp.array([[0, 1], [1, 2], [2, 0]]),
            jnp.full((1, 3, 2), 0.5),
        ),
        match="maps",
    ),
]

# The region-of-interest API (static config, checked in Python at construction).
CASES += [
    Case(
        "gamma.RegionOfInterest: negative radius",
        g.RegionOfInterest,
        (-5.0, 2.0),
        match="radius_deg",
        modes=("eager",),
    ),
    Case(
        "gamma.RegionOfInterest: NaN latitude cut",
        g.RegionOfInterest,
        (20.0, float("nan")),
        match="b_min_deg",
        modes=("eager",),
    ),
    Case(
        "gamma.RegionOfInterest: latitude cut beyond the radius",
        g.RegionOfInterest,
        (2.0, 5.0),
        match="b_min_deg",
        modes=("eager",),
    ),
    Case(
        "gamma.roi_solid_angle: not a RegionOfInterest",
        g.roi_solid_angle,
        ("disc",),
        match="`roi`",
        modes=("eager",),
    ),
    Case(
        "gamma.roi_d_factor: nside not a power of 2",
        g.roi_d_factor,
        (None, g.RegionOfInterest(5.0, 2.0)),
        {"nside": 3},
        match="nside",
        modes=("eager",),
    ),
]
