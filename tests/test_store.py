"""Tests of the HDF5 simulation store: append, resume, streaming, validation."""

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm.store import SimulationStore, simulate_into
from jaxdm.train import fit


def _simulate(key, theta):
    return theta * 2.0 + 0.01 * jax.random.normal(key, theta.shape)


def _sampler(key, n, low, high):
    return jax.random.uniform(key, (n, low.shape[0]), minval=low, maxval=high)


def test_roundtrip_and_streaming_every_row_once(tmp_path, getkey):
    with SimulationStore.create(
        tmp_path / "s.h5", theta_dim=2, x_shape=(3,), chunk_rows=8
    ) as st:
        r = st.add_region([0, 0], [100, 1])
        theta = np.stack([np.arange(50.0), np.full(50, 0.5)], 1)
        st.append(theta, np.ones((50, 3)), r)
        assert st.n_rows == 50
        np.testing.assert_array_equal(st.read()["theta"], theta)
        np.testing.assert_array_equal(st.read([7, 3])["theta"][:, 0], [7.0, 3.0])
        for epoch in range(2):
            chunks = list(st.iter_chunks(jax.random.key(epoch), 16))
            assert [c["theta"].shape[0] for c in chunks] == [16, 16, 16, 2]
            ids = np.concatenate([c["theta"][:, 0] for c in chunks])
            assert sorted(ids) == list(range(50))  # every row exactly once
            assert not np.array_equal(ids, np.arange(50))  # shuffled
        sub = st.source(st.rows_in([10, 0], [19, 1]))
        assert sub.n_rows == 10
        ids = np.concatenate([c["theta"][:, 0] for c in sub.iter_chunks(getkey(), 4)])
        assert sorted(ids) == list(range(10, 20))


def test_interrupt_and_resume_exact_count_no_duplicates(tmp_path):
    path = tmp_path / "bank.h5"
    key = jax.random.key(3)
    calls = {"n": 0}

    def crashing_sampler(k, n, low, high):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated interruption")
        return _sampler(k, n, low, high)

    st = SimulationStore.create(path, theta_dim=2, x_shape=(2,))
    with pytest.raises(KeyboardInterrupt):
        simulate_into(
            key,
            st,
            _simulate,
            crashing_sampler,
            100,
            low=[0, 0],
            high=[1, 1],
            batch_size=30,
        )
    assert st.n_rows == 60
    st.close()
    # A crash inside an append: rows written but never committed.
    with h5py.File(path, "r+") as f:
        for name in ("theta", "x", "region"):
            f[name].resize(75, axis=0)
        f["theta"][60:75] = -7.0
    st = SimulationStore.open(path)
    assert st.n_rows == 60
    rows = simulate_into(
        key, st, _simulate, _sampler, 100, low=[0, 0], high=[1, 1], batch_size=30
    )
    assert st.n_rows == 100
    assert rows.size == 100
    theta = st.read()["theta"]
    assert np.unique(theta, axis=0).shape[0] == 100
    assert np.all(theta >= 0)  # the uncommitted junk rows were overwritten
    # Same as an uninterrupted run with the same key.
    ref = SimulationStore.create(tmp_path / "ref.h5", theta_dim=2, x_shape=(2,))
    simulate_into(
        key, ref, _simulate, _sampler, 100, low=[0, 0], high=[1, 1], batch_size=30
    )
    np.testing.assert_array_equal(ref.read()["theta"], theta)
    # Calling again is a no-op: the request is already satisfied.
    simulate_into(key, st, _simulate, _sampler, 100, low=[0, 0], high=[1, 1])
    assert st.n_rows == 100
    ref.close()
    st.close()


def test_reuse_across_nested_regions(tmp_path, getkey):
    with SimulationStore.create(tmp_path / "s.h5", theta_dim=1, x_shape=(1,)) as st:
        simulate_into(getkey(), st, _simulate, _sampler, 200, low=[0.0], high=[1.0])
        rows = simulate_into(
            getkey(), st, _simulate, _sampler, 150, low=[0.0], high=[0.5]
        )
        n_reused = int(np.sum(rows < 200))
        assert 70 < n_reused < 130  # about half of the first round lies inside
        assert st.n_rows == 200 + 150 - n_reused
        th = st.read(rows)["theta"]
        assert np.all((th >= 0) & (th <= 0.5))
        assert len(st.regions) == 2


def test_errors_on_bad_input_and_corrupt_files(tmp_path):
    path = tmp_path / "s.h5"
    st = SimulationStore.create(path, theta_dim=2, x_shape=(3,))
    r = st.add_region([0, 0], [1, 1])
    with pytest.raises(ValueError, match="`x` must have shape"):
        st.append(np.zeros((4, 2)), np.zeros((4, 2)), r)
    with pytest.raises(ValueError, match="outside region"):
        st.append(np.full((1, 2), 5.0), np.zeros((1, 3)), r)
    with pytest.raises(ValueError, match="not finite"):
        st.append(np.zeros((1, 2)), np.full((1, 3), np.nan), r)
    st.append(np.zeros((4, 2)), np.zeros((4, 3)), r)
    st.close()
    with pytest.raises(ValueError, match="exists"):
        SimulationStore.create(path, theta_dim=2, x_shape=(3,))
    with h5py.File(path, "r+") as f:
        f["x"].resize(2, axis=0)
    with pytest.raises(ValueError, match="truncated"):
        SimulationStore.open(path)
    with h5py.File(path, "r+") as f:
        del f["x"]
    with pytest.raises(ValueError, match="missing datasets"):
        SimulationStore.open(path)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["theta"] = np.zeros((3, 2))
    with pytest.raises(ValueError, match="not a jaxdm simulation store"):
        SimulationStore.open(other)
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="not a readable HDF5"):
        SimulationStore.open(tmp_path / "junk.h5")


def test_store_streams_into_fit(tmp_path, getkey):
    """A store is a chunk source for jaxdm.train.fit: linear regression x = 2 theta."""
    with SimulationStore.create(tmp_path / "s.h5", theta_dim=1, x_shape=(1,)) as st:
        simulate_into(getkey(), st, _simulate, _sampler, 512, low=[0.0], high=[1.0])
        val = st.read(np.arange(64))

        def loss_fn(w, batch, key):
            return jnp.mean((batch["x"] - w * batch["theta"]) ** 2)

        w, hist = fit(
            getkey(),
            jnp.zeros(()),
            loss_fn,
            st,
            batch_size=64,
            max_epochs=30,
            validation_data=val,
            chunk_size=128,
            progress=False,
            optimizer=__import__("optax").adam(0.05),
        )
        assert abs(float(w) - 2.0) < 0.05
