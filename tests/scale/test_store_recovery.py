"""A store whose writer was SIGKILLed reopens (HDF5 'open for write' flag cleared)."""

import os
import signal
import time
import warnings

import numpy as np
import pytest

from jaxdm._h5recover import lookup3
from jaxdm.store import SimulationStore


def test_lookup3_reference_values():
    # Test vectors printed by driver5() of Bob Jenkins' lookup3.c (public domain).
    assert lookup3(b"") == 0xDEADBEEF
    assert lookup3(b"", 0xDEADBEEF) == 0xBD5B7DDE
    assert lookup3(b"Four score and seven years ago") == 0x17770551
    assert lookup3(b"Four score and seven years ago", 1) == 0xCD628161


def _child_holding_store(path, n, w):
    try:
        st = SimulationStore.create(path, theta_dim=2, x_shape=(3,))
        r = st.add_region([0, 0], [1, 1])
        st.append(np.full((n, 2), 0.5), np.arange(3 * n).reshape(n, 3), r)
        os.write(w, b"ready\n")
        time.sleep(60)  # killed here, file still open for writing
    finally:
        os._exit(0)


def _fork_writer(path, n):
    r, w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # JAX warns about fork
        pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(r)
        _child_holding_store(path, n, w)
    os.close(w)
    with os.fdopen(r) as f:
        assert f.readline().strip() == "ready"
    return pid


def test_killed_writer_store_reopens_and_resumes(tmp_path):
    path = tmp_path / "s.h5"
    pid = _fork_writer(path, 10)
    # While the writer lives, its file is not taken over.
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        SimulationStore.open(path)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    with SimulationStore.open(path) as st:  # without the fix: "consistency flags"
        assert st.n_rows == 10
        st.append(np.full((5, 2), 0.25), np.ones((5, 3)), 0)
    with SimulationStore.open(path, "r") as st:
        x = st.read()["x"]
    np.testing.assert_array_equal(x[:10], np.arange(30).reshape(10, 3))
    np.testing.assert_array_equal(x[10:], np.ones((5, 3)))
