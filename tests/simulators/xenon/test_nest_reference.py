"""jaxdm's xenon chain against NEST where jaxdm claims NEST physics (issue #13).

Reference numbers were generated once with NEST v2.4 through nestpy 2.1.3
(``pip install nestpy==2.1.3`` in a separate venv; NEST: Szydagis et al.,
arXiv:2102.10209, https://github.com/NESTCollaboration/nest), float64, with the
default detector ``nestpy.detectors.DetectorExample_XENON10()`` (``OldW13eV = true``,
as in every NEST detector file) and ``c = nestpy.NESTcalc(det)``:

* mean yields: ``c.GetYields(nestpy.interactions.beta | NR, E, rho, F, 131.293, 54.,
  nestpy.default_nr_parameters)`` -> (PhotonYield, ElectronYield);
* W: ``c.WorkFunction(rho, 131.293, True).Wq_eV``;
* band medians: ``nestpy.helpers.run_nest(interaction, det, [E] * 20000)`` (NEST's
  full S1/S2 chain, random positions, seed ``RandomGen.rndm().set_seed(12345)``),
  median of ``s1c_phd`` and of ``log10(s2c_phd)`` (statistical error of the latter
  <= 0.0006 dex).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm.simulators import xenon

# (density [g/cm^3], field [V/cm]) -> rows (E [keV], n_photons, n_electrons), ER beta.
NEST_ER = {
    (2.90, 100.0): [
        (2.0, 55.90046, 92.90497),
        (10.0, 487.6600, 256.3672),
        (30.0, 1633.352, 598.7298),
    ],
    (2.90, 500.0): [
        (2.0, 49.82644, 98.97899),
        (10.0, 430.6398, 313.3873),
        (30.0, 1348.686, 883.3959),
    ],
    (2.861, 500.0): [
        (2.0, 47.93888, 99.61166),
        (10.0, 422.3648, 315.3878),
        (30.0, 1324.805, 888.4529),
    ],
}
# NR at 2.90 g/cm^3: field -> rows (E, n_photons, n_electrons). NEST truncates the
# mass number 131.293 to 131 and scales both yields by sqrt(131.293 / 131) (its
# per-isotope ``ScaleFactor`` in GetYieldNR); jaxdm has no per-isotope scaling, so
# the test divides that factor out.
NEST_NR = {
    100.0: [(5.0, 32.89883, 31.65898), (20.0, 203.7668, 93.36141)],
    500.0: [(5.0, 30.07331, 34.49467), (20.0, 195.4063, 101.7238)],
}
_NR_ISOTOPE_SCALE = float(np.sqrt(131.293 / 131.0))
# NEST W [eV] (OldW13eV = true) at 2.90 and 2.861 g/cm^3.
NEST_W = {2.90: 13.440370, 2.861: 13.554678}
# DetectorExample_XENON10 full chain: (recoil, E [keV]) -> (median cS1 [phd],
# median log10 cS2 [log10 phd]).
NEST_BAND = {
    ("ER", 3.0): (6.2757, 3.37498),
    ("ER", 10.0): (29.564, 3.77070),
    ("ER", 30.0): (89.057, 4.25073),
    ("NR", 10.0): (5.2723, 3.05062),
    ("NR", 30.0): (23.524, 3.39239),
}


@pytest.mark.parametrize("key", sorted(NEST_ER))
def test_er_yields_reproduce_nest(key):
    """ER Ne and Nph with NEST's reference density 2.90 and NEST's W (the defaults)
    reproduce NEST to 1e-3 at three energies and two fields (measured agreement:
    5e-8, float64). The pre-fix constants (reference density 2.888, W = 20.7 -
    1.01e-23 n_e) are off by 2e-3 and fail; W = 13.7 eV is off by up to 5.7%."""
    density, field = key
    rows = np.array(NEST_ER[key])
    y = xenon.er_mean_yields(
        jnp.asarray(rows[:, 0]), field, density, xenon.YieldParams()
    )
    np.testing.assert_allclose(y.n_photons, rows[:, 1], rtol=1e-3)
    np.testing.assert_allclose(y.n_electrons, rows[:, 2], rtol=1e-3)
    # The explicit 13.7 eV choice is a different convention, not NEST.
    y137 = xenon.er_mean_yields(
        jnp.asarray(rows[:, 0]), field, density, xenon.YieldParams(w_ev=xenon.W_DAHL_EV)
    )
    assert np.max(np.abs(np.asarray(y137.n_photons) / rows[:, 1] - 1)) > 0.01


@pytest.mark.parametrize("field", sorted(NEST_NR))
def test_nr_yields_reproduce_nest(field):
    """NR Ne and Nph reproduce NEST to 1e-4 once NEST's isotope factor is removed."""
    rows = np.array(NEST_NR[field])
    y = xenon.nr_mean_yields(jnp.asarray(rows[:, 0]), field, 2.90, xenon.YieldParams())
    np.testing.assert_allclose(y.n_photons, rows[:, 1] / _NR_ISOTOPE_SCALE, rtol=1e-4)
    np.testing.assert_allclose(y.n_electrons, rows[:, 2] / _NR_ISOTOPE_SCALE, rtol=1e-4)


def test_nest_w_value():
    """W(rho) equals NEST's WorkFunction (OldW13eV = true) to 1e-6."""
    for rho, w in NEST_W.items():
        np.testing.assert_allclose(xenon.nest_w_value(rho), w, rtol=1e-6)
        np.testing.assert_allclose(
            xenon.work_function(xenon.YieldParams(), rho), w, rtol=1e-6
        )
    np.testing.assert_allclose(
        xenon.work_function(xenon.YieldParams(w_ev=13.7), 2.9), 13.7, rtol=1e-7
    )


def test_nest_s2_area_scale_is_truncated_gaussian_mean():
    """1/NewMean: NewMean is the mean of N(1, sigma^2) truncated at 0 (scipy's
    truncnorm: 1/mean = 0.948178 at sigma = 0.58, 0.999320 at sigma = 0.31)."""
    np.testing.assert_allclose(xenon.nest_s2_area_scale(0.58), 0.948178, rtol=1e-5)
    np.testing.assert_allclose(xenon.nest_s2_area_scale(0.31), 0.999320, rtol=1e-5)
    det = xenon.nest_xenon10_like()
    np.testing.assert_allclose(det.g2, 19.107, rtol=1e-4)  # NEST CalculateG2
    np.testing.assert_allclose(det.g2_effective, 19.107 * 0.948178, rtol=1e-4)


def _medians(det, recoil, energy, n=20_000):
    ev = xenon.simulate_energies(jax.random.key(3), jnp.full((n,), energy), recoil, det)
    cs1, cs2 = np.asarray(ev.cs1), np.asarray(ev.cs2)
    ok = (cs1 > 0) & (cs2 > 0)
    return np.median(cs1[ok]), np.median(np.log10(cs2[ok]))


def test_band_medians_reproduce_nest():
    """NEST-configured detector (with NEST's S2 area scale) reproduces NEST's
    full-chain medians: log10 cS2 to 0.01 dex (measured <= 0.0035), cS1 to 2%
    (measured <= 1.0%). Without the area scale (1.0) every log10 cS2 median is
    0.024-0.027 dex high, which the same tolerance rejects."""
    det = xenon.nest_xenon10_like()
    plain = eqx.tree_at(lambda d: d.s2_area_scale, det, jnp.asarray(1.0))
    for (recoil, energy), (s1_ref, l2_ref) in NEST_BAND.items():
        s1, l2 = _medians(det, recoil, energy)
        assert abs(l2 - l2_ref) < 0.01, (recoil, energy, l2, l2_ref)
        assert abs(s1 / s1_ref - 1) < 0.02, (recoil, energy, s1, s1_ref)
        _, l2_plain = _medians(plain, recoil, energy)
        assert l2_plain - l2_ref > 0.02, (recoil, energy, l2_plain, l2_ref)
