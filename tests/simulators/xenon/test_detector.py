"""Tests of the detector presets, validation, geometry and corrections."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm._poison import with_valid
from jaxdm.simulators import xenon


def test_presets_published_values():
    """g2 and fiducial masses of the presets match the published numbers.

    LZ WS2022 (arXiv:2207.03764): g2 = 47.1 phd/e, 5.5 t fiducial; XENONnT SR0
    (arXiv:2303.14729): g2 = 16.5 PE/e, 4.18 t fiducial. Tolerance 2%: the LZ
    fiducial volume is not an exact cylinder.
    """
    lz, nt = xenon.lz_like(), xenon.xenonnt_like()
    xenon.check_detector(lz)
    xenon.check_detector(nt)
    np.testing.assert_allclose(lz.g2, 47.1, rtol=0.01)
    np.testing.assert_allclose(nt.g2, 16.5, rtol=0.01)
    np.testing.assert_allclose(lz.fiducial_mass_tonne, 5.5, rtol=0.02)
    np.testing.assert_allclose(nt.fiducial_mass_tonne, 4.18, rtol=0.02)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("g1", 0.0, "g1"),
        ("g1", 1.2, "g1"),
        ("electron_lifetime", -5.0, "electron_lifetime"),
        ("drift_field", -1.0, "drift_field"),
        ("fid_radius", 80.0, "fid_radius"),
        ("fid_z_min", -200.0, "fiducial z"),
        ("extraction_efficiency", float("nan"), "extraction_efficiency"),
    ],
)
def test_bad_detector_rejected(field, value, match):
    det = xenon.lz_like()
    bad = jax.tree_util.tree_map(lambda x: x, det)
    bad = type(det)(
        **{**{k: getattr(det, k) for k in det.__dataclass_fields__}, field: value}
    )
    with pytest.raises(ValueError, match=match):
        xenon.check_detector(bad)
    with pytest.raises(TypeError, match="Detector"):
        xenon.check_detector({"g1": 0.1})


def test_geometry_and_corrections(getkey):
    """Positions fill the fiducial cylinder uniformly; survival and S2 width laws."""
    det = xenon.lz_like()
    x, y, z = xenon.sample_positions(getkey(), det, 20_000)
    r2 = np.asarray(x**2 + y**2)
    assert r2.max() <= float(det.fid_radius) ** 2 + 1e-3
    assert z.min() >= det.fid_z_min - 1e-4
    assert z.max() <= det.fid_z_max + 1e-4
    # Uniform in the disc: r^2 / R^2 is U(0, 1), mean 1/2 (5 sigma = 0.01).
    assert abs(r2.mean() / float(det.fid_radius) ** 2 - 0.5) < 0.01
    zz = jnp.array([-10.0, -100.0])
    t = xenon.drift_time(zz, det)
    np.testing.assert_allclose(t, -zz / det.drift_velocity, rtol=1e-6)
    np.testing.assert_allclose(
        xenon.electron_survival(zz, det), np.exp(-np.asarray(t) / 6500.0), rtol=1e-5
    )
    # sigma_t^2 - w0^2 is linear in drift time (diffusion): ratio 10 for 10x the drift.
    w = xenon.s2_width(zz, det)
    excess = np.asarray(w) ** 2 - float(det.s2_width0) ** 2
    np.testing.assert_allclose(excess[1] / excess[0], 10.0, rtol=1e-4)
    # Light collection averages to 1 over the height.
    zs = jnp.linspace(-det.height, 0.0, 101)
    np.testing.assert_allclose(
        jnp.mean(xenon.light_collection(zs, det)), 1.0, rtol=1e-5
    )


def test_checks_run_under_jit_and_vmap():
    """Poison policy: a bad row in a vmapped batch of detectors is NaN and flagged
    (eagerly: ValueError naming the field); a good batch runs; gradients pass."""
    import equinox as eqx

    det = xenon.lz_like()
    e = jnp.array([5.0, 10.0])

    def s1_mean(g1):
        d = eqx.tree_at(lambda d: d.g1, det, g1)
        return xenon.signal_moments(e, -50.0, "ER", d, xenon.YieldParams()).mean_cs1

    f = eqx.filter_jit(jax.vmap(with_valid(s1_mean)))
    out, valid = f(jnp.array([0.1, 0.12]))
    assert np.all(np.isfinite(np.asarray(out)))
    assert np.all(np.asarray(valid))
    # Poison policy: the bad row (only) is NaN and flagged; eagerly it raises.
    for g1, bad_row in (([0.1, 1.2], 1), ([jnp.nan, 0.1], 0)):
        out, valid = f(jnp.array(g1))
        np.testing.assert_array_equal(np.asarray(valid), np.arange(2) != bad_row)
        assert np.all(np.isnan(np.asarray(out)[bad_row]))
        assert np.all(np.isfinite(np.asarray(out)[1 - bad_row]))
    with pytest.raises(ValueError, match=r"detector\.g1"):
        s1_mean(jnp.asarray(1.2))
    g = jax.grad(lambda g1: jnp.sum(s1_mean(g1)))(jnp.asarray(0.1))
    assert np.isfinite(float(g))
    assert float(g) > 0
    # Geometry helpers check their arguments too.
    with pytest.raises(ValueError, match="`z`"):
        xenon.drift_time(jnp.array([1.0]), det)
    t, valid = eqx.filter_jit(with_valid(xenon.drift_time))(
        jnp.array([-1.0]), eqx.tree_at(lambda d: d.drift_velocity, det, -1.0)
    )
    assert not bool(valid)
    assert np.isnan(float(t[0]))
