"""ShardedStore: concurrent writers, one logical bank, SIGKILL safety, duck typing."""

import os
import signal
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import jax
import numpy as np
import pytest

from jaxdm.sharded_store import ShardedStore
from jaxdm.store import SimulationStore, simulate_into

N, B = 96, 8


def _rows(start, stop):
    """Deterministic content of absolute rows [start, stop) (theta in [0, 1])."""
    r = np.arange(start, stop, dtype=np.float32)
    theta = np.stack([(r % 97) / 97, (r % 89) / 89], axis=1).astype(np.float32)
    x = np.stack([r, -r, r * 0.5], axis=1).astype(np.float32)
    return theta, x


def _fill(path, starts, n_threads):
    st = ShardedStore.create(path, theta_dim=2, x_shape=(3,))
    region = st.add_region([0, 0], [1, 1])

    def write(s):
        th, x = _rows(s, min(s + B, N))
        ShardedStore.open(path).write_shard(s, th, x, region)

    with ThreadPoolExecutor(n_threads) as ex:
        list(ex.map(write, starts))
    return ShardedStore.open(path, "r")


def test_four_writers_read_like_one(tmp_path):
    starts = list(range(0, N, B))
    one = _fill(tmp_path / "one", starts, 1)
    rng = np.random.default_rng(0)
    four = _fill(tmp_path / "four", list(rng.permutation(starts)), 4)
    assert one.n_rows == four.n_rows == N
    a, b = one.read(), four.read()
    np.testing.assert_array_equal(a["theta"], b["theta"])
    np.testing.assert_array_equal(a["x"], b["x"])
    np.testing.assert_array_equal(a["x"], _rows(0, N)[1])
    key = jax.random.key(3)
    for ca, cb in zip(one.iter_chunks(key, 20), four.iter_chunks(key, 20), strict=True):
        np.testing.assert_array_equal(ca["x"], cb["x"])
    rows = np.array([95, 0, 17, 17, 40])
    np.testing.assert_array_equal(four.read(rows)["x"], _rows(0, N)[1][rows])
    np.testing.assert_array_equal(four.region_ids(), np.zeros(N, np.int32))
    th = a["theta"]
    inside = np.nonzero(np.all((th >= 0.2) & (th <= 0.6), axis=1))[0]
    np.testing.assert_array_equal(four.rows_in([0.2, 0.2], [0.6, 0.6]), inside)
    four.verify()
    single = four.to_single_file(tmp_path / "single.h5")
    np.testing.assert_array_equal(single.read()["x"], a["x"])
    single.close()


def test_recommitted_batch_replaces_never_duplicates(tmp_path):
    st = ShardedStore.create(tmp_path / "b", theta_dim=2, x_shape=(3,))
    r = st.add_region([0, 0], [1, 1])
    th, x = _rows(0, B)
    st.write_shard(0, th, x, r)
    st.write_shard(0, th, x, r)  # a batch recomputed after its worker died
    st.refresh()
    assert st.n_rows == B
    assert st.committed_ranges() == [(0, B)]
    with pytest.raises(ValueError, match="overlap"):
        st.write_shard(4, *_rows(4, 4 + B), r)
    assert len(st.remove_orphans()) == 1  # the replaced shard file
    np.testing.assert_array_equal(st.read()["x"], x)


def test_simulate_into_and_training_take_a_sharded_store(tmp_path):
    def simulate(key, theta):
        return theta + 0.1 * jax.random.normal(key, theta.shape)

    def sampler(key, n, low, high):
        return jax.random.uniform(key, (n, 2), minval=low, maxval=high)

    key = jax.random.key(0)
    with SimulationStore.create(tmp_path / "a.h5", theta_dim=2, x_shape=(2,)) as a:
        ra = simulate_into(key, a, simulate, sampler, 40, low=[0, 0], high=[1, 1],
                           batch_size=16)  # fmt: skip
        ra2 = simulate_into(key, a, simulate, sampler, 10, low=[0, 0], high=[.5, .5],
                            batch_size=16)  # fmt: skip
        da = a.read()
    b = ShardedStore.create(tmp_path / "b", theta_dim=2, x_shape=(2,))
    rb = simulate_into(key, b, simulate, sampler, 40, low=[0, 0], high=[1, 1],
                       batch_size=16)  # fmt: skip
    rb2 = simulate_into(key, b, simulate, sampler, 10, low=[0, 0], high=[.5, .5],
                        batch_size=16)  # fmt: skip
    np.testing.assert_array_equal(ra, rb)
    np.testing.assert_array_equal(ra2, rb2)
    db = b.read()
    np.testing.assert_array_equal(da["x"], db["x"])
    np.testing.assert_array_equal(da["theta"], db["theta"])
    # The chunk source that fit streams from yields the same chunks from either store.
    with SimulationStore.open(tmp_path / "a.h5", "r") as a:
        np.testing.assert_array_equal(a.region_ids(), b.region_ids())
        np.testing.assert_array_equal(a.regions, b.regions)
        k = jax.random.key(5)
        for ca, cb in zip(a.iter_chunks(k, 13), b.iter_chunks(k, 13), strict=True):
            np.testing.assert_array_equal(ca["x"], cb["x"])
            np.testing.assert_array_equal(ca["theta"], cb["theta"])


@pytest.mark.slow
def test_tmnre_rounds_on_a_sharded_bank_equal_single_file(tmp_path):
    from jaxdm.inference import nre
    from jaxdm.inference.truncation import Box, run_tmnre

    def simulate(key, theta):
        return theta + 0.05 * jax.random.normal(key, theta.shape)

    def make(key):
        return nre.make_ratio_estimator(
            key, theta_dim=2, x_shape=(2,), marginals=[(0,), (1,)], method="C", width=16
        )

    x_obs = simulate(jax.random.key(0), jax.numpy.array([1.3, -2.1]))
    box0 = Box(np.full(2, -5.0), np.full(2, 5.0))
    kw = {"max_epochs": 10, "batch_size": 64, "patience": 5, "learning_rate": 3e-3}
    runs = []
    for store in (
        SimulationStore.create(tmp_path / "a.h5", theta_dim=2, x_shape=(2,)),
        ShardedStore.create(tmp_path / "b", theta_dim=2, x_shape=(2,)),
    ):
        runs.append(
            run_tmnre(
                jax.random.key(1),
                simulate,
                x_obs,
                box0,
                make,
                n_sims=300,
                max_rounds=2,
                epsilon=1e-5,
                store=store,
                simulate_batch=128,
                train_kwargs=kw,
            )
        )
    for ra, rb in zip(*runs, strict=True):
        np.testing.assert_array_equal(ra.theta, rb.theta)
        np.testing.assert_array_equal(ra.x, rb.x)
        np.testing.assert_array_equal(ra.new_box.low, rb.new_box.low)
        np.testing.assert_array_equal(ra.new_box.high, rb.new_box.high)


def _writer(path, region, order, pipe_w):
    """Child process: write batches in ``order``, report each commit, never return."""
    try:
        st = ShardedStore.open(path)
        for s in order:
            st.write_shard(s, *_rows(s, min(s + B, N)), region)
            os.write(pipe_w, f"{s}\n".encode())
    finally:
        os._exit(0)


def test_sigkill_of_a_writer_loses_and_duplicates_nothing(tmp_path):
    rng = np.random.default_rng(2026)
    starts = np.arange(0, N, B)
    for trial in range(10):
        path = tmp_path / f"t{trial}"
        st = ShardedStore.create(path, theta_dim=2, x_shape=(3,))
        region = st.add_region([0, 0], [1, 1])
        order = rng.permutation(starts)
        r, w = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # JAX warns about fork
            pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            os.close(r)
            _writer(path, region, order, w)
        os.close(w)
        time.sleep(rng.uniform(0.0, 0.15))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        with os.fdopen(r) as f:
            reported = {int(v) for v in f.read().split()}
        st.refresh()
        committed = {s for s, _ in st.committed_ranges()}
        assert reported <= committed  # nothing committed is lost
        ranges = st.committed_ranges()
        assert len(ranges) == len(set(ranges))
        expect = np.concatenate([_rows(s, min(s + B, N))[1] for s in sorted(committed)]
                                or [np.zeros((0, 3), np.float32)])  # fmt: skip
        np.testing.assert_array_equal(st.read()["x"], expect)
        st.remove_orphans()
        for s in order:  # resume: rewrite what is missing
            if s not in committed:
                st.write_shard(int(s), *_rows(s, min(s + B, N)), region)
        st.refresh()
        assert st.n_rows == N
        np.testing.assert_array_equal(st.read()["x"], _rows(0, N)[1])
        st.verify()
