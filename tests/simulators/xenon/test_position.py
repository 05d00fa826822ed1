"""Position reconstruction from the top S2 hit pattern (issue 14)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm.simulators import xenon
from jaxdm.simulators.xenon import position as pos

SMALL = xenon.small_test_pmts()
_ML = jax.jit(lambda h: xenon.likelihood_position(h, SMALL).xy)


def _centroid(h):
    return xenon.centroid_position(h, SMALL)


def test_centroid_biased_inward_near_wall_likelihood_not():
    # Events 8.5-9.5 cm from the axis of the 10 cm test TPC (outermost PMT centres
    # at 7 cm), S2 = 3000 phd. The centroid cannot leave the PMT hull and the
    # diffuse light pulls it further in; the likelihood fit of the light model is
    # unbiased (|bias| well below its resolution) with sub-cm resolution.
    key = jax.random.key(11)
    kw = {"r_min": 8.5, "r_max": 9.5}
    cen = xenon.position_resolution(key, _centroid, SMALL, [3000.0], 200, **kw)
    ml = xenon.position_resolution(key, _ML, SMALL, [3000.0], 200, **kw)
    assert float(cen.radial_bias[0]) < -3.0
    assert abs(float(ml.radial_bias[0])) < 0.3, float(ml.radial_bias[0])
    assert float(ml.sigma_x[0]) < 1.5
    assert float(ml.sigma_y[0]) < 1.5


def test_likelihood_resolution_improves_with_s2_size():
    tab = xenon.position_resolution(
        jax.random.key(2), _ML, SMALL, [300.0, 3000.0], 200, r_max=7.0
    )
    assert tab.s2.shape == tab.sigma_x.shape == (2,)
    # Poisson statistics: sigma ~ 1/sqrt(S2), so a 10x larger S2 gives ~3x better.
    assert float(tab.sigma_x[1]) < 0.5 * float(tab.sigma_x[0])
    assert float(tab.sigma_x[1]) < 0.6


def test_likelihood_fit_batches_and_converges():
    hits, xy = xenon.simulate_s2_patterns(jax.random.key(4), 5000.0, 6, SMALL)
    fit = xenon.likelihood_position(hits.reshape(2, 3, -1), SMALL)
    assert fit.xy.shape == (2, 3, 2)
    assert fit.nll.shape == (2, 3)
    assert bool(jnp.all(fit.converged))
    np.testing.assert_allclose(fit.xy.reshape(6, 2), xy, atol=1.0)


def test_centroid_exact_for_symmetric_pattern():
    hits = jnp.zeros(38).at[0].set(10.0).at[1].set(10.0)
    xy = xenon.centroid_position(hits, SMALL)
    np.testing.assert_allclose(xy, 0.5 * (SMALL.xy_top[0] + SMALL.xy_top[1]), 1e-6)


@pytest.mark.parametrize(
    ("hits", "match"),
    [
        (jnp.full(38, -1.0), "hits"),
        (jnp.full(38, jnp.nan), "hits"),
        (jnp.ones(37), "hits"),
    ],
)
def test_bad_hits_raise(hits, match):
    with pytest.raises(ValueError, match=match):
        xenon.centroid_position(hits, SMALL)
    with pytest.raises(ValueError, match=match):
        xenon.likelihood_position(hits, SMALL)


def test_empty_top_array_raises_in_fit():
    with pytest.raises(ValueError, match="top array is empty"):
        xenon.likelihood_position(jnp.zeros(38).at[30].set(5.0), SMALL)


def test_resolution_table_bad_radii():
    with pytest.raises(ValueError, match="r_max"):
        xenon.position_resolution(
            jax.random.key(0), _centroid, SMALL, [100.0], 10, r_max=20.0
        )


def test_position_module_exports():
    for name in ("centroid_position", "likelihood_position", "position_resolution"):
        assert getattr(xenon, name) is getattr(pos, name)
    # The learned reconstruction lives above the learning core (layering).
    assert not hasattr(xenon, "train_position_net")
