"""Bad inputs to the simulation store (``jaxdm.store``) and estimator files.

File I/O runs on the host, so these cases are eager only. Each case builds its files
in a fresh temporary directory when it runs (nothing is written at import).
"""

import tempfile
from pathlib import Path

import jax
import numpy as np

from jaxdm import serialise
from jaxdm.store import SimulationStore, simulate_into
from tests.bad_inputs.case import Case

EAGER = ("eager",)


def _tmp() -> Path:
    return Path(tempfile.mkdtemp(prefix="jaxdm-bad-store-"))


def _store():
    st = SimulationStore.create(_tmp() / "s.h5", theta_dim=2, x_shape=(3,),
                                chunk_rows=8)  # fmt: skip
    r = st.add_region([0, 0], [1, 1])
    st.append(np.full((20, 2), 0.5), np.ones((20, 3)), r)
    return st


def _append(theta=None, x=None, region=0):
    with _store() as st:
        theta = np.full((2, 2), 0.5) if theta is None else theta
        x = np.ones((2, 3)) if x is None else x
        st.append(theta, x, region)
        return st.read()["x"]


def _create(**kw):
    kw = {"theta_dim": 2, "x_shape": (3,), **kw}
    path = kw.pop("path", _tmp() / "s.h5")
    with SimulationStore.create(path, **kw) as st:
        return st.n_rows


def _read(rows):
    with _store() as st:
        return st.read(rows)["x"]


def _add_region(low, high):
    with _store() as st:
        return st.add_region(low, high)


def _chunks(chunk_size):
    with _store() as st:
        return [c["x"] for c in st.iter_chunks(jax.random.key(0), chunk_size)]


def _simulate_into(**kw):
    with _store() as st:
        kw = {"n_total": 30, "low": [0, 0], "high": [1, 1], **kw}
        return simulate_into(
            jax.random.key(0), st, lambda k, t: jax.numpy.ones(3),
            lambda k, n, lo, hi: jax.random.uniform(k, (n, 2)), **kw,
        )  # fmt: skip


def _corrupt_store_read():
    st = _store()
    path = Path(st.path)
    off = st._f["x"].id.get_chunk_info(1).byte_offset
    st.close()
    raw = bytearray(path.read_bytes())
    raw[off + 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with SimulationStore.open(path, "r") as st:
        return st.read()["x"]


def _saved():
    from jaxdm.inference import nre

    m = nre.make_ratio_estimator(jax.random.key(0), theta_dim=1, x_shape=(2,))
    path = _tmp() / "m.eqx"
    nre.save(path, m)
    return nre, m, path


def _load_corrupt():
    nre, _, path = _saved()
    raw = bytearray(path.read_bytes())
    raw[-7] ^= 0x20
    path.write_bytes(bytes(raw))
    return nre.load(path).theta_norm.mean


def _save(path):
    nre, m, _ = _saved()
    nre.save(path, m)
    return m.theta_norm.mean


def _load(path):
    return serialise.load(path, lambda key, **kw: None)


CASES = [
    Case("store.append: region=1.5 (not an int)", _append, kwargs={"region": 1.5},
         match="`region` must be an int", modes=EAGER),
    Case("store.append: region='0' (a string)", _append, kwargs={"region": "0"},
         match="`region` must be an int", modes=EAGER),
    Case("store.append: region out of range", _append, kwargs={"region": 3},
         match="`region` must be in", modes=EAGER),
    Case("store.append: NaN in x", _append,
         kwargs={"x": np.array([[1.0, np.nan, 0.0], [1.0, 1.0, 1.0]])},
         match="`x`", modes=EAGER),
    Case("store.append: theta outside the region", _append,
         kwargs={"theta": np.full((2, 2), 5.0)}, match="`theta`", modes=EAGER),
    Case("store.create: chunk_rows='64' (a string)", _create,
         kwargs={"chunk_rows": "64"}, match="`chunk_rows` must be an int",
         modes=EAGER),
    Case("store.create: theta_dim=0", _create, kwargs={"theta_dim": 0},
         match="`theta_dim`", modes=EAGER),
    Case("store.create: directory does not exist", _create,
         kwargs={"path": "/nonexistent-jaxdm-dir/s.h5"}, match="`path`",
         modes=EAGER),
    Case("store.open: missing file", SimulationStore.open,
         ("/nonexistent-jaxdm-dir/s.h5",), match="`path`", modes=EAGER),
    Case("store.read: float row indices", _read, (np.array([0.5, 1.0]),),
         match="`rows`", modes=EAGER),
    Case("store.add_region: high below low", _add_region, ([0, 0], [-1, 1]),
         match="`high`", modes=EAGER),
    Case("store.iter_chunks: chunk_size=0", _chunks, (0,), match="`chunk_size`",
         modes=EAGER),
    Case("store.simulate_into: n_total='30' (a string)", _simulate_into,
         kwargs={"n_total": "30"}, match="`n_total` must be an int", modes=EAGER),
    Case("store.read: flipped byte in a data chunk", _corrupt_store_read,
         match="`path`.*corrupt", modes=EAGER),
    Case("store.nre.load: flipped byte in a saved estimator", _load_corrupt,
         match="`path`.*corrupt", modes=EAGER),
    Case("store.nre.save: directory does not exist", _save,
         ("/nonexistent-jaxdm-dir/m.eqx",), match="`path`", modes=EAGER),
    Case("store.serialise.load: missing file", _load,
         ("/nonexistent-jaxdm-dir/m.eqx",), match="`path`.*does not exist",
         modes=EAGER),
    Case("store.serialise.load: not a path", _load, (3,), match="`path`",
         modes=EAGER),
]  # fmt: skip
