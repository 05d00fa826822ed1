"""Posterior samples streamed from a store into a posterior bank: bounded, resumable."""

import jax
import numpy as np
import pytest

from jaxdm.inference.amortised import read_posterior_samples, sample_posteriors_into
from jaxdm.inference.npe import make_npe
from jaxdm.store import SimulationStore

N, S = 40, 6


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    path = tmp_path_factory.mktemp("amortised") / "obs.h5"
    npe = make_npe(jax.random.key(0), theta_dim=2, x_shape=3, flow_layers=2,
                   flow_hidden=(8,), embedding_dim=4, embedding_width=8)  # fmt: skip
    x = np.asarray(jax.random.normal(jax.random.key(1), (N, 3)), np.float32)
    with SimulationStore.create(path, theta_dim=2, x_shape=(3,)) as st:
        st.add_region([-10, -10], [10, 10])
        st.append(np.zeros((N, 2), np.float32), x, 0)
    return npe, path, x


class _Dies:
    """An observation store whose process 'dies' after ``n_ok`` chunk reads."""

    def __init__(self, store, n_ok):
        self.store, self.n_rows, self.left = store, store.n_rows, n_ok

    def read(self, rows):
        if self.left == 0:
            raise KeyboardInterrupt("killed")
        self.left -= 1
        return self.store.read(rows)


def test_streamed_samples_resume_after_a_kill(setup, tmp_path):
    npe, path, x = setup
    key = jax.random.key(7)
    with SimulationStore.open(path, "r") as st:
        full = sample_posteriors_into(key, npe, st, tmp_path / "full.h5", S,
                                      chunk_size=16, progress=False)  # fmt: skip
        assert full["n_obs"] == N
        assert full["n_resumed"] == 0
        with pytest.raises(KeyboardInterrupt):
            sample_posteriors_into(key, npe, _Dies(st, 2), tmp_path / "cut.h5", S,
                                   chunk_size=16, progress=False)  # fmt: skip
        part, _ = read_posterior_samples(tmp_path / "cut.h5")
        assert part.shape == (32, S, 2)  # two committed chunks survive
        again = sample_posteriors_into(key, npe, st, tmp_path / "cut.h5", S,
                                       chunk_size=16, progress=False)  # fmt: skip
        assert again["n_resumed"] == 32
    a, la = read_posterior_samples(tmp_path / "full.h5")
    b, lb = read_posterior_samples(tmp_path / "cut.h5")
    np.testing.assert_array_equal(a, b)  # bitwise: same keys, same compiled shape
    np.testing.assert_array_equal(la, lb)
    assert a.shape == (N, S, 2)
    assert np.all(np.isfinite(a))
    # Observation i uses fold_in(key, i), whatever the chunking.
    th, lq = npe.sample_and_log_prob(jax.random.fold_in(key, 17), x[17], S)
    np.testing.assert_allclose(a[17], th, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(la[17], lq, rtol=1e-5, atol=1e-5)
    other = sample_posteriors_into(key, npe, x, tmp_path / "c7.h5", S, chunk_size=7,
                                   progress=False)  # fmt: skip
    assert other["n_obs"] == N
    np.testing.assert_allclose(read_posterior_samples(tmp_path / "c7.h5")[0], a,
                               rtol=1e-5, atol=1e-6)  # fmt: skip


def test_bank_of_another_run_is_refused(setup, tmp_path):
    npe, _, x = setup
    sample_posteriors_into(jax.random.key(1), npe, x[:5], tmp_path / "p.h5", 2,
                           progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="another run"):
        sample_posteriors_into(jax.random.key(2), npe, x[:5], tmp_path / "p.h5", 2,
                               progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="committed"):
        read_posterior_samples(tmp_path / "p.h5", [5])


CHILD = """
import sys, jax, numpy as np
from jaxdm.inference.npe import make_npe
from jaxdm.inference.amortised import sample_posteriors_into
npe = make_npe(jax.random.key(0), theta_dim=2, x_shape=3, flow_layers=2,
               flow_hidden=(8,), embedding_dim=4, embedding_width=8)
x = np.asarray(jax.random.normal(jax.random.key(1), (20000, 3)), np.float32)
sample_posteriors_into(jax.random.key(7), npe, x, sys.argv[1], 6, chunk_size=16,
                       progress=False)
"""


@pytest.mark.slow
def test_sigkilled_run_resumes_bitwise(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "post.h5"
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    env = dict(os.environ, PYTHONPATH=root)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(out)], env=env)
    t0 = time.monotonic()
    while not out.exists() and time.monotonic() - t0 < 300:
        time.sleep(0.01)
    # Chunks are allocated as written (~1.2 kB each): wait for ~10 of them, so some
    # commits, well before the 1250th.
    while out.stat().st_size < 20_000 and time.monotonic() - t0 < 300:
        time.sleep(0.01)
    time.sleep(np.random.default_rng(0).uniform(0.0, 0.2))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    npe = make_npe(jax.random.key(0), theta_dim=2, x_shape=3, flow_layers=2,
                   flow_hidden=(8,), embedding_dim=4, embedding_width=8)  # fmt: skip
    x = np.asarray(jax.random.normal(jax.random.key(1), (20000, 3)), np.float32)
    res = sample_posteriors_into(jax.random.key(7), npe, x, out, 6, chunk_size=16,
                                 progress=False)  # fmt: skip
    assert 0 < res["n_resumed"] < 20000  # killed mid-run, after some commits
    ref = sample_posteriors_into(jax.random.key(7), npe, x, tmp_path / "ref.h5", 6,
                                 chunk_size=16, progress=False)  # fmt: skip
    assert ref["n_resumed"] == 0
    a = read_posterior_samples(out)
    b = read_posterior_samples(tmp_path / "ref.h5")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
