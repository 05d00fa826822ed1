"""Learned xenon position reconstruction (jaxdm.reconstruction, issue 14)."""

import jax
import jax.numpy as jnp
import pytest

from jaxdm import reconstruction as rec
from jaxdm.simulators import xenon

SMALL = xenon.small_test_pmts()


def _centroid(h):
    return xenon.centroid_position(h, SMALL)


def test_simulators_do_not_import_the_learning_core():
    # Layering: imports point down; no module of the simulators imports the
    # learning core or anything above it (the network moved here from
    # xenon.position). Every import statement, at any depth, is resolved.
    import ast
    import pathlib

    import jaxdm

    pkg = pathlib.Path(jaxdm.__file__).parent
    above = ("train", "nn", "flows", "inference", "reconstruction", "anomaly")
    above += ("stats", "fits", "design", "store")
    for path in (pkg / "simulators").rglob("*.py"):
        parts = ["jaxdm", *path.relative_to(pkg).with_suffix("").parts]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = parts[: len(parts) - node.level] if node.level else []
                mods = [".".join([*base, *(node.module or "").split(".")]).strip(".")]
                if not node.module:
                    mods = [".".join([*base, a.name]) for a in node.names]
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            else:
                continue
            for mod in mods:
                top = mod.split(".")[1] if mod.startswith("jaxdm.") else None
                assert top not in above, f"{path} imports {mod}"


def test_net_position_bad_hits():
    net = rec.PositionNet(SMALL.n_top, 10.0, width=4, depth=1, key=jax.random.key(0))
    with pytest.raises(ValueError, match="hits"):
        rec.net_position(net, jnp.ones(37), SMALL)
    with pytest.raises(ValueError, match="hits"):
        rec.net_position(net, jnp.full(38, -1.0), SMALL)


@pytest.mark.slow
def test_network_trains_through_fit():
    net, hist = rec.train_position_net(
        jax.random.key(0), SMALL, n_train=512, max_epochs=3, width=16, depth=1
    )
    assert len(hist.train_loss) == 3
    hits, _ = xenon.simulate_s2_patterns(jax.random.key(1), 1000.0, 5, SMALL)
    assert rec.net_position(net, hits, SMALL).shape == (5, 2)


@pytest.mark.slow
def test_network_resolution_beats_centroid_at_wall():
    net, _ = rec.train_position_net(
        jax.random.key(0),
        SMALL,
        n_train=4000,
        max_epochs=60,
        width=64,
        depth=2,
        batch_size=32,
    )
    key = jax.random.key(5)
    kw = {"r_min": 8.5, "r_max": 9.5}
    nn_tab = xenon.position_resolution(
        key, lambda h: rec.net_position(net, h, SMALL), SMALL, [3000.0], 300, **kw
    )
    cen = xenon.position_resolution(key, _centroid, SMALL, [3000.0], 300, **kw)
    assert abs(float(nn_tab.radial_bias[0])) < 0.5
    assert float(nn_tab.sigma_x[0]) < 0.5 * float(cen.sigma_x[0])
