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


# ------------------------------------------------------------------ integrity


def _small_store(path, n=40):
    st = SimulationStore.create(path, theta_dim=2, x_shape=(3,), chunk_rows=8)
    r = st.add_region([0, 0], [1, 1])
    rng = np.random.default_rng(0)
    st.append(rng.uniform(size=(n, 2)), rng.normal(size=(n, 3)), r)
    return st


def _flip(path, offset, mask=0x01):
    raw = bytearray(path.read_bytes())
    raw[offset] ^= mask
    path.write_bytes(bytes(raw))


def test_flipped_byte_in_store_data_is_an_error_not_a_number(tmp_path):
    """Issue #12.5: Fletcher32 turns a flipped data byte into a clear error."""
    from jaxdm.serialise import ChecksumError

    path = tmp_path / "s.h5"
    st = _small_store(path)
    assert all(st._f[d].fletcher32 for d in ("theta", "x", "region", "regions"))
    clean = st.read()
    off = st._f["x"].id.get_chunk_info(2).byte_offset  # rows 16..23
    st.close()
    _flip(path, off + 5)
    with SimulationStore.open(path, "r") as st:
        np.testing.assert_array_equal(st.read(np.arange(16))["x"], clean["x"][:16])
        with pytest.raises(ChecksumError, match="'x'.*Fletcher32.*corrupt"):
            st.read()
        with pytest.raises(ChecksumError, match="corrupt"):
            list(st.iter_chunks(jax.random.key(0), 8))


@pytest.mark.parametrize(
    "n_offsets",
    [
        pytest.param(60, id="sample"),
        pytest.param(None, marks=pytest.mark.slow, id="full_sweep"),
    ],
)
def test_flipped_byte_anywhere_in_store_metadata_is_detected(tmp_path, n_offsets):
    """HDF5 1.10 metadata checksums: no byte outside the data chunks flips silently.

    The default run flips 60 random bytes before the first data chunk (fixed seed),
    the slow run every one of them (~4,100). A flip in a variable-length string
    attribute's global heap, which HDF5 does not checksum, used to make reading the
    attribute hang; the store now writes fixed-length strings only (no global heap),
    and the full sweep checks that no flip hangs or passes silently.
    """
    path = tmp_path / "s.h5"
    st = _small_store(path, n=16)
    clean = st.read()
    data_start = min(
        st._f[d].id.get_chunk_info(i).byte_offset
        for d in ("theta", "x", "region")
        for i in range(st._f[d].id.get_num_chunks())
    )
    st.close()
    orig = path.read_bytes()
    silent = []
    offsets = range(data_start)
    if n_offsets is not None:
        offsets = np.random.default_rng(0).choice(data_start, n_offsets, replace=False)
    for offset in offsets:
        _flip(path, offset, 0x10)
        try:
            with SimulationStore.open(path, "r") as st:
                got = st.read()
                same = st.n_rows == 16 and all(
                    np.array_equal(got[k], clean[k]) for k in clean
                )
            if not same:
                silent.append(offset)
        except (ValueError, OSError):
            pass  # detected
        path.write_bytes(orig)
    assert silent == []


def test_store_has_no_unchecksummed_global_heap(tmp_path):
    """Fixed-length attributes only: a global heap ("GCOL") is not checksummed."""
    path = tmp_path / "s.h5"
    _small_store(path, n=16).close()
    assert b"GCOL" not in path.read_bytes()
    with SimulationStore.open(path, "r") as st:
        assert st.n_rows == 16


def test_old_store_without_checksums_opens_with_a_warning(tmp_path):
    path = tmp_path / "old.h5"
    with h5py.File(path, "w") as f:  # the layout written before checksums
        f.attrs.update(format="jaxdm-simulation-store", version=1, n_committed=2)
        f.create_dataset("theta", data=np.zeros((2, 1)), maxshape=(None, 1))
        f.create_dataset("x", data=np.zeros((2, 1)), maxshape=(None, 1))
        f.create_dataset("region", data=np.zeros(2, np.int32), maxshape=(None,))
        f.create_dataset("regions", data=np.array([[[0.0], [1.0]]]))
    with pytest.warns(UserWarning, match="no Fletcher32 checksums"):
        with SimulationStore.open(path, "r") as st:
            assert st.n_rows == 2


def test_fsync_commits_and_append_refuses_non_integer_region(tmp_path):
    with SimulationStore.create(tmp_path / "s.h5", theta_dim=1, x_shape=(1,),
                                fsync=True) as st:  # fmt: skip
        r = st.add_region([0.0], [1.0])
        st.append(np.full((3, 1), 0.5), np.zeros((3, 1)), r)
        assert st.fsync
        for bad in (0.0, 1.5, "0", True, None):
            with pytest.raises(TypeError, match="`region` must be an int"):
                st.append(np.full((1, 1), 0.5), np.zeros((1, 1)), bad)
        st.append(np.full((1, 1), 0.5), np.zeros((1, 1)), np.int64(r))
        assert st.n_rows == 4
        with pytest.raises(TypeError, match="`rows` must be integer"):
            st.read([0.5, 1.0])
    with SimulationStore.open(tmp_path / "s.h5", fsync=True) as st:
        assert st.n_rows == 4


def test_store_arguments_have_clear_messages(tmp_path):
    with pytest.raises(TypeError, match="`chunk_rows` must be an int; got '64'"):
        SimulationStore.create(tmp_path / "a.h5", theta_dim=1, x_shape=(1,),
                               chunk_rows="64")  # fmt: skip
    with pytest.raises(TypeError, match="`theta_dim` must be an int"):
        SimulationStore.create(tmp_path / "a.h5", theta_dim=2.0, x_shape=(1,))
    with pytest.raises(TypeError, match="`x_shape` must be a tuple"):
        SimulationStore.create(tmp_path / "a.h5", theta_dim=1, x_shape=3)
    with pytest.raises(FileNotFoundError, match="`path`.*does not exist"):
        SimulationStore.create(tmp_path / "no" / "a.h5", theta_dim=1, x_shape=(1,))
    with pytest.raises(FileNotFoundError, match="`path`.*does not exist"):
        SimulationStore.open(tmp_path / "missing.h5")


# ------------------------------------------------------- saved estimators


def _saved_estimator(tmp_path):
    from jaxdm.inference import nre

    m = nre.make_ratio_estimator(jax.random.key(0), theta_dim=2, x_shape=(3,))
    path = tmp_path / "m.eqx"
    nre.save(path, m)
    return nre, m, path


def test_flipped_byte_in_saved_estimator_is_detected(tmp_path):
    """Issue #12.5: the SHA-256 checksum catches a flip in the leaves or header."""
    from jaxdm.serialise import ChecksumError

    nre, m, path = _saved_estimator(tmp_path)
    back = nre.load(path)
    np.testing.assert_array_equal(
        back(jnp.ones(2), jnp.ones(3)), m(jnp.ones(2), jnp.ones(3))
    )
    orig = path.read_bytes()
    header_end = orig.index(b"\n")
    rng = np.random.default_rng(0)
    for offset in [*rng.integers(header_end + 1, len(orig), 8), header_end - 3]:
        _flip(path, int(offset))
        with pytest.raises(ChecksumError, match="`path`.*corrupt"):
            nre.load(path)
        path.write_bytes(orig)
    # A flip inside a hyperparameter of the header is caught too.
    flipped = orig.replace(b'"width":64', b'"width":65', 1)
    assert flipped != orig
    path.write_bytes(flipped)
    with pytest.raises(ChecksumError, match="corrupt"):
        nre.load(path)
    path.write_bytes(orig[:-10])  # truncated
    with pytest.raises(ChecksumError, match="corrupt"):
        nre.load(path)


def test_old_estimator_file_without_checksum_loads_with_warning(tmp_path):
    import json

    import equinox as eqx

    nre, m, path = _saved_estimator(tmp_path)
    line, _, payload = path.read_bytes().partition(b"\n")
    header = json.loads(line)
    del header["sha256"]
    header["version"] = 1  # the layout written before checksums
    path.write_bytes(json.dumps(header).encode() + b"\n" + payload)
    with pytest.warns(UserWarning, match="without a checksum"):
        back = nre.load(path)
    chex_equal = jax.tree.map(
        lambda a, b: bool(np.array_equal(a, b)),
        eqx.filter(back, eqx.is_array),
        eqx.filter(m, eqx.is_array),
    )
    assert all(jax.tree.leaves(chex_equal))
    # A current-version file that lost its checksum is corrupt, not old.
    header["version"] = 2
    path.write_bytes(json.dumps(header).encode() + b"\n" + payload)
    with pytest.raises(ValueError, match="lost its checksum"):
        nre.load(path)


def test_save_and_load_name_a_bad_path(tmp_path):
    nre, m, _ = _saved_estimator(tmp_path)
    with pytest.raises(FileNotFoundError, match="`path`.*directory.*does not exist"):
        nre.save(tmp_path / "nodir" / "m.eqx", m)
    with pytest.raises(IsADirectoryError, match="`path`.*is a directory"):
        nre.save(tmp_path, m)
    with pytest.raises(FileNotFoundError, match="`path`.*does not exist"):
        nre.load(tmp_path / "missing.eqx")
    with pytest.raises(TypeError, match="`path` must be a file path"):
        nre.load(3)
    assert not list(tmp_path.glob("*.tmp"))


def test_old_estimator_file_with_float_masks_loads_boolean_masks(tmp_path):
    """Files from before MADE masks became boolean stored them as 0/1 floats; they
    load back as exact booleans (never as trainable floats), and a non-0/1 value in a
    mask leaf is refused."""
    import io
    import json

    import equinox as eqx

    from jaxdm.inference import npe as npe_mod

    m = npe_mod.make_npe(
        jax.random.key(0), theta_dim=2, x_shape=(3,), flow="maf", flow_layers=1
    )
    path = tmp_path / "npe.eqx"
    npe_mod.save(path, m)
    line, _, _ = path.read_bytes().partition(b"\n")
    header = json.loads(line)
    del header["sha256"]
    header["version"] = 1

    def old_file(value):
        as_float = jax.tree.map(
            lambda a: (
                jnp.where(a, value, 0.0)
                if eqx.is_array(a) and a.dtype == jnp.bool_
                else a
            ),
            m,
        )
        buf = io.BytesIO()
        eqx.tree_serialise_leaves(buf, as_float)
        path.write_bytes(json.dumps(header).encode() + b"\n" + buf.getvalue())

    n_masks = sum(eqx.is_array(a) and a.dtype == jnp.bool_ for a in jax.tree.leaves(m))
    assert n_masks > 0
    old_file(1.0)
    with pytest.warns(UserWarning, match="without a checksum"):
        back = npe_mod.load(path)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(m), strict=True):
        if eqx.is_array(b):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    old_file(0.5)
    with (
        pytest.warns(UserWarning, match="without a checksum"),
        pytest.raises(ValueError, match="mask"),
    ):
        npe_mod.load(path)
