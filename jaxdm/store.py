"""On-disk simulation banks: chunked, appendable, resumable HDF5 stores of (theta, x).

A :class:`SimulationStore` is one HDF5 file with resizable, chunked datasets

* ``theta``  (n, theta_dim)   parameters,
* ``x``      (n, *x_shape)    simulated observations,
* ``region`` (n,)             index of the prior region each row was drawn from,
* ``regions`` (n_regions, 2, theta_dim)  the boxes ``[low, high]`` of those regions,

and a file attribute ``n_committed``: the number of rows that were written completely.
Rows are committed in three steps (resize and write the data, flush, then raise
``n_committed`` and flush again), so a run killed in the middle of an append leaves at
most some *uncommitted* rows beyond ``n_committed``; they are ignored on reopening and
overwritten by the next append. Nothing committed is lost and nothing is duplicated.
A writer killed by SIGKILL also leaves HDF5's "open for write" superblock flag set,
which :meth:`SimulationStore.open` clears (as ``h5clear -s``; ``jaxdm._h5recover``)
when no live process holds the file.
:func:`simulate_into` derives the key of every simulation batch from the absolute row
index it starts at, so a resumed run continues exactly where the interrupted one
stopped.

Why HDF5 (h5py) rather than zarr: a bank is a single file that is easy to move between
a cluster and a laptop, h5py is already a dependency of the scientific stack the
project targets (and installed everywhere the tests run), HDF5 gives chunked,
resizable datasets with partial reads of arbitrary sorted row sets, which is exactly
what minibatch streaming needs, and a single writer appending in place is the access
pattern of simulation-based inference. zarr's strength (many concurrent writers to a
directory store / object storage) is not needed here.

Integrity. Every dataset carries HDF5's Fletcher32 checksum per chunk, and the file is
written in the HDF5 1.10 format (``libver="v110"``), whose metadata (object headers,
attributes such as ``n_committed``, chunk indices, superblock) is checksummed too; a
flipped byte is therefore an error on reading (:class:`jaxdm.serialise.ChecksumError`
for data chunks, ``ValueError`` on opening for metadata), never a silently wrong
number. Files written before checksums were added open with a ``UserWarning``. With
``fsync=True`` every commit also forces the file to disk (``os.fsync`` after each
flush), so a committed row survives a power loss, not only a killed process; its cost
per commit is measured in ``benchmarks/RESULTS.md``.

A store, or a subset of its rows (:meth:`SimulationStore.source`), is a *chunk source*
for :func:`jaxdm.train.fit`: it has ``n_rows`` and ``iter_chunks(key, chunk_size)``
yielding shuffled chunks ``{"theta": ..., "x": ...}`` that cover every selected row
exactly once per epoch, reading only one chunk into memory at a time.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator

import h5py
import jax
import numpy as np

from ._args import check_int
from ._checks import check_key
from ._h5recover import clear_killed_writer_flag
from .serialise import ChecksumError

__all__ = ["SimulationStore", "StoreSource", "simulate_into"]

_FORMAT = "jaxdm-simulation-store"
_VERSION = 1
_DATASETS = ("theta", "x", "region", "regions")
_LIBVER = ("v110", "v110")  # checksummed metadata; readable by HDF5 >= 1.10


class _ChunkSourceMixin:
    """Chunk-source methods of a bank with ``n_rows`` rows.

    Shared by :class:`SimulationStore` and :class:`~jaxdm.sharded_store.ShardedStore`.
    """

    def source(self, rows=None) -> StoreSource:
        """A chunk source over ``rows`` (default all) for :func:`jaxdm.train.fit`."""
        rows = np.arange(self.n_rows) if rows is None else _as_rows(rows)
        if rows.ndim != 1 or (
            rows.size and (rows.min() < 0 or rows.max() >= self.n_rows)
        ):
            raise ValueError(f"`rows` must be 1-D indices in [0, {self.n_rows}).")
        if np.unique(rows).size != rows.size:
            raise ValueError("`rows` must not contain duplicates.")
        return StoreSource(self, rows)

    def iter_chunks(self, key, chunk_size: int) -> Iterator[dict[str, np.ndarray]]:
        """Yield shuffled chunks over all committed rows (the chunk-source protocol)."""
        return self.source().iter_chunks(key, chunk_size)

    def iter_chunk_blocks(self, key, chunk_size: int, index: int, count: int):
        """One process's blocks of the chunks (see StoreSource.iter_chunk_blocks)."""
        return self.source().iter_chunk_blocks(key, chunk_size, index, count)


class SimulationStore(_ChunkSourceMixin):
    """A chunked HDF5 bank of simulations (see the module docstring).

    Open with :meth:`create` or :meth:`open`; use as a context manager or call
    :meth:`close`.

    Attributes:
        path: File path.
        theta_dim: Number of parameters per row.
        x_shape: Shape of one observation.
        fsync: Whether each commit forces the file to disk.
    """

    def __init__(self, path: str | os.PathLike, file: h5py.File, *, fsync=False):
        """Wrap an open, validated file (use :meth:`create` / :meth:`open`)."""
        self.path = os.fspath(path)
        self._f = file
        self.fsync = bool(fsync)
        self.theta_dim = int(file["theta"].shape[1])
        self.x_shape = tuple(int(s) for s in file["x"].shape[1:])

    # ------------------------------------------------------------------ creation

    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        *,
        theta_dim: int,
        x_shape: tuple[int, ...],
        dtype=np.float32,
        chunk_rows: int = 1024,
        overwrite: bool = False,
        fsync: bool = False,
    ) -> SimulationStore:
        """Create an empty store.

        Args:
            path: Destination ``.h5`` file.
            theta_dim: Number of parameters.
            x_shape: Shape of one observation, e.g. ``(2,)`` or ``(64, 64)``.
            dtype: Storage dtype of theta and x.
            chunk_rows: Rows per HDF5 chunk (I/O granularity).
            overwrite: Replace an existing file; otherwise an existing file is an error.
            fsync: Force the file to disk at every commit (see the module docstring).

        Returns:
            The open store (mode ``"r+"``).

        Raises:
            TypeError: For a size that is not an int (e.g. ``chunk_rows="64"``).
            ValueError: For bad sizes or an existing file without ``overwrite``.
            FileNotFoundError: If the directory of ``path`` does not exist.
        """
        theta_dim = check_int(theta_dim, "theta_dim", minimum=1)
        if not isinstance(x_shape, tuple | list):
            raise TypeError(
                f"`x_shape` must be a tuple of ints; got {x_shape!r} "
                f"({type(x_shape).__name__})."
            )
        x_shape = tuple(check_int(s, "x_shape", minimum=1) for s in x_shape)
        chunk_rows = check_int(chunk_rows, "chunk_rows", minimum=1)
        directory = os.path.dirname(os.path.abspath(os.fspath(path)))
        if not os.path.isdir(directory):
            raise FileNotFoundError(
                f"`path` {os.fspath(path)!r}: directory {directory!r} does not exist."
            )
        if os.path.exists(path) and not overwrite:
            raise ValueError(
                f"`path` {os.fspath(path)!r} exists; use SimulationStore.open to "
                "resume "
                "or overwrite=True to replace it."
            )
        f = h5py.File(path, "w", libver=_LIBVER)
        # A fixed-length string: h5py writes str attributes as variable-length
        # strings in a global heap, which HDF5 does not checksum (a flipped byte
        # in its collection size made reading the attribute hang); fixed-length
        # ones live in the checksummed object header.
        f.attrs["format"] = np.bytes_(_FORMAT)
        f.attrs["version"] = _VERSION
        f.attrs["n_committed"] = 0
        c = chunk_rows
        f.create_dataset(
            "theta",
            (0, theta_dim),
            maxshape=(None, theta_dim),
            dtype=dtype,
            chunks=(c, theta_dim),
            fletcher32=True,
        )
        f.create_dataset(
            "x",
            (0, *x_shape),
            maxshape=(None, *x_shape),
            dtype=dtype,
            chunks=(c, *x_shape),
            fletcher32=True,
        )
        f.create_dataset(
            "region",
            (0,),
            maxshape=(None,),
            dtype=np.int32,
            chunks=(c,),
            fletcher32=True,
        )
        f.create_dataset(
            "regions",
            (0, 2, theta_dim),
            maxshape=(None, 2, theta_dim),
            dtype=np.float64,
            chunks=(16, 2, theta_dim),
            fletcher32=True,
        )
        store = cls(path, f, fsync=fsync)
        store._sync()
        return store

    @classmethod
    def open(
        cls, path: str | os.PathLike, mode: str = "r+", *, fsync: bool = False
    ) -> SimulationStore:
        """Open an existing store and validate its layout.

        Args:
            path: File written by :meth:`create`.
            mode: ``"r+"`` (append/resume) or ``"r"`` (read only).
            fsync: Force the file to disk at every commit.

        Returns:
            The open store. Rows beyond the committed count (left by an interrupted
            append) are ignored and will be overwritten.

        Raises:
            FileNotFoundError: If ``path`` does not exist (also a ValueError, as
                before).
            ValueError: If the file is not a jaxdm store, misses a dataset, its
                datasets have inconsistent shapes or fewer rows than committed, or
                its metadata fails its checksum.

        Warns:
            UserWarning: For a store written without checksums (before they were
                added): corruption of its data would go undetected.
        """
        if mode not in ("r", "r+"):
            raise ValueError(f"`mode` must be 'r' or 'r+'; got {mode!r}.")
        if not os.path.exists(path):
            raise _MissingStoreError(f"`path` {os.fspath(path)!r} does not exist.")
        try:
            try:
                f = h5py.File(path, mode)
            except OSError as err:
                # A writer killed by SIGKILL leaves the "open for write" flag set and
                # HDF5 refuses the file; clear it unless a live process holds it.
                if "consistency flags" not in str(err) or not clear_killed_writer_flag(
                    path
                ):
                    raise
                f = h5py.File(path, mode)
        except OSError as err:
            raise ValueError(
                f"`path` {os.fspath(path)!r} is not a readable HDF5 file: {err}"
            ) from err
        try:
            _validate(f, os.fspath(path))
            unchecked = [d for d in _DATASETS if not f[d].fletcher32]
            store = cls(path, f, fsync=fsync)
        except ValueError:
            f.close()
            raise
        except Exception as err:  # h5py raises KeyError/OSError/... for bad metadata
            f.close()
            raise ValueError(
                f"`path` {os.fspath(path)!r}: its metadata could not be read "
                f"({type(err).__name__}: {err}); the file is corrupt."
            ) from err
        if unchecked:
            warnings.warn(
                f"`path` {os.fspath(path)!r}: datasets {unchecked} have no Fletcher32 "
                "checksums (written by an older jaxdm), so corruption would go "
                "undetected; copy the rows into a new store to add them.",
                UserWarning,
                stacklevel=2,
            )
        return store

    def _sync(self) -> None:
        """Flush to the OS and, with ``fsync``, force the file to disk."""
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.id.get_vfd_handle())

    def _get(self, name: str, sel):
        """Read ``dataset[sel]``; a checksum failure is a ChecksumError."""
        try:
            return self._f[name][sel]
        except OSError as err:
            raise ChecksumError(
                f"store `path` {self.path!r}: reading dataset {name!r} failed ({err}); "
                "its Fletcher32 checksum does not match: the file is corrupt."
            ) from err

    def close(self) -> None:
        """Flush and close the file."""
        if self._f.id.valid:
            self._f.close()

    def __enter__(self) -> SimulationStore:
        """Enter a ``with`` block."""
        return self

    def __exit__(self, *exc) -> None:
        """Close on leaving a ``with`` block."""
        self.close()

    # ------------------------------------------------------------------ contents

    @property
    def n_rows(self) -> int:
        """Number of committed simulations."""
        return int(self._f.attrs["n_committed"])

    @property
    def regions(self) -> np.ndarray:
        """All registered regions, shape (n_regions, 2, theta_dim) (low, high rows)."""
        return self._get("regions", ...)

    def region_ids(self) -> np.ndarray:
        """Region index of every committed row, shape (n_rows,)."""
        return self._get("region", slice(0, self.n_rows))

    def add_region(self, low, high) -> int:
        """Register a box region ``[low, high]`` (reusing an identical one).

        Args:
            low: Lower corner, shape (theta_dim,).
            high: Upper corner, shape (theta_dim,), ``high > low``.

        Returns:
            The region's index.
        """
        box = _region_box(low, high, self.theta_dim)
        regs = self.regions
        for i, r in enumerate(regs):
            if np.array_equal(r, box):
                return i
        ds = self._f["regions"]
        ds.resize(len(regs) + 1, axis=0)
        ds[len(regs)] = box
        self._sync()
        return len(regs)

    def append(self, theta, x, region: int) -> None:
        """Append rows and commit them.

        Args:
            theta: Parameters, shape (n, theta_dim).
            x: Observations, shape (n, *x_shape).
            region: Index (an int, from :meth:`add_region`) of the region theta was
                drawn from.

        Raises:
            TypeError: If ``region`` is not an integer (``1.5``, ``"0"``, ``True``).
            ValueError: For wrong shapes, non-finite values, theta outside the region,
                or an unknown region.
        """
        region = check_int(region, "region")
        theta = np.asarray(theta)
        x = np.asarray(x)
        if theta.ndim != 2 or theta.shape[1] != self.theta_dim:
            raise ValueError(
                f"`theta` must have shape (n, {self.theta_dim}); got {theta.shape}."
            )
        if x.shape != (theta.shape[0], *self.x_shape):
            raise ValueError(
                f"`x` must have shape {(theta.shape[0], *self.x_shape)}; got {x.shape}."
            )
        bad = ~(
            np.all(np.isfinite(theta), axis=1)
            & np.all(np.isfinite(x.reshape(x.shape[0], -1)), axis=1)
        )
        if np.any(bad):
            raise ValueError(
                f"{int(bad.sum())} rows of `theta`/`x` are not finite (first at row "
                f"{int(np.argmax(bad))}); bad simulations are reported, not stored."
            )
        regs = self.regions
        if not 0 <= region < len(regs):
            raise ValueError(f"`region` must be in [0, {len(regs)}); got {region}.")
        lo, hi = regs[region]
        if not np.all((theta >= lo) & (theta <= hi)):
            raise ValueError(
                f"`theta` has rows outside region {region} = [{lo}, {hi}]."
            )
        n0, n = self.n_rows, theta.shape[0]
        for name, val in (("theta", theta), ("x", x), ("region", np.full(n, region))):
            ds = self._f[name]
            if ds.shape[0] < n0 + n:
                ds.resize(n0 + n, axis=0)
            ds[n0 : n0 + n] = val
        self._sync()
        self._f.attrs["n_committed"] = n0 + n
        self._sync()

    def read(self, rows=None) -> dict[str, np.ndarray]:
        """Read rows into memory.

        Args:
            rows: Integer row indices (any order); default all committed rows.

        Returns:
            ``{"theta": (m, theta_dim), "x": (m, *x_shape)}`` in the order of ``rows``.
        """
        n = self.n_rows
        if rows is None:
            return {
                "theta": self._get("theta", slice(0, n)),
                "x": self._get("x", slice(0, n)),
            }
        rows = _as_rows(rows)
        if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= n)):
            raise ValueError(f"`rows` must be 1-D indices in [0, {n}); got {rows}.")
        order = np.argsort(rows, kind="stable")
        srt = rows[order]
        uniq, inv = np.unique(srt, return_inverse=True)
        out = {}
        for name in ("theta", "x"):
            vals = self._get(name, uniq if uniq.size else slice(0, 0))
            tmp = vals[inv]
            res = np.empty_like(tmp)
            res[order] = tmp
            out[name] = res
        return out

    def rows_in(self, low, high) -> np.ndarray:
        """Indices of committed rows whose theta lies inside the box ``[low, high]``.

        These rows are draws from the prior truncated to the box when they were drawn
        from a region that contains it (truncation rounds shrink nested boxes), so they
        can be reused for training in that box.

        Returns:
            Sorted row indices, shape (m,).
        """
        low = np.asarray(low)
        high = np.asarray(high)
        idx = []
        step = max(1, self._f["theta"].chunks[0] * 16)
        for start in range(0, self.n_rows, step):
            th = self._get("theta", slice(start, min(start + step, self.n_rows)))
            inside = np.all((th >= low) & (th <= high), axis=1)
            idx.append(start + np.nonzero(inside)[0])
        return np.concatenate(idx) if idx else np.zeros(0, np.int64)


class StoreSource:
    """A set of rows of a :class:`SimulationStore`, streamed in shuffled chunks.

    Attributes:
        store: The store.
        rows: Selected row indices, shape (n_rows,).
        n_rows: Number of selected rows.
    """

    def __init__(self, store: SimulationStore, rows: np.ndarray):
        """Select ``rows`` of ``store``."""
        self.store = store
        self.rows = rows
        self.n_rows = int(rows.size)

    def iter_chunks(self, key, chunk_size: int) -> Iterator[dict[str, np.ndarray]]:
        """Yield ``{"theta", "x"}`` chunks covering every selected row exactly once.

        The rows are permuted by ``key``; each chunk is read from disk (sorted read,
        then put back in the shuffled order), so at most ``chunk_size`` rows are in
        memory at a time.

        Args:
            key: Typed PRNG key.
            chunk_size: Maximum rows per chunk.
        """
        check_key(key)
        chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
        seed = np.asarray(jax.random.key_data(key)).astype(np.uint32).ravel()
        perm = np.random.default_rng(seed).permutation(self.rows)
        for start in range(0, self.n_rows, int(chunk_size)):
            yield self.store.read(perm[start : start + int(chunk_size)])

    def iter_chunk_blocks(self, key, chunk_size: int, index: int, count: int):
        """Yield ``(block, n_chunk)``: one process's part of each chunk.

        The chunks are those of :meth:`iter_chunks` (same key, same rows, same
        order); ``block`` holds rows ``jaxdm.distributed.process_rows(n_chunk, index,
        count)`` of the chunk, read from disk, so ``count`` processes together read
        every row once (``jaxdm.train.fit`` gathers the blocks under
        ``jax.distributed``).
        """
        check_key(key)
        chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
        seed = np.asarray(jax.random.key_data(key)).astype(np.uint32).ravel()
        perm = np.random.default_rng(seed).permutation(self.rows)
        for start in range(0, self.n_rows, int(chunk_size)):
            rows = perm[start : start + int(chunk_size)]
            base, extra = divmod(rows.size, count)
            lo = index * base + min(index, extra)
            yield self.store.read(rows[lo : lo + base + (index < extra)]), rows.size

    def read(self) -> dict[str, np.ndarray]:
        """All selected rows in memory, in row order."""
        return self.store.read(self.rows)


def _as_rows(rows) -> np.ndarray:
    arr = np.asarray(rows)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"`rows` must be integer row indices; got dtype {arr.dtype}.")
    return arr.astype(np.int64)


def _region_box(low, high, theta_dim: int) -> np.ndarray:
    """Validated region corners as a (2, theta_dim) float64 array (low, high)."""
    low = np.asarray(low, np.float64)
    high = np.asarray(high, np.float64)
    for name, v in (("low", low), ("high", high)):
        if v.shape != (theta_dim,) or not np.all(np.isfinite(v)):
            raise ValueError(
                f"`{name}` must be finite with shape ({theta_dim},); got {v}."
            )
    if not np.all(high > low):
        raise ValueError(f"`high` must exceed `low` everywhere; got {low}, {high}.")
    return np.stack([low, high])


class _MissingStoreError(FileNotFoundError, ValueError):
    """A store path that does not exist (FileNotFoundError; ValueError for old code)."""


def _validate(f: h5py.File, path: str) -> None:
    fmt = f.attrs.get("format")
    if isinstance(fmt, bytes | np.bytes_):
        fmt = fmt.decode("ascii", errors="replace")
    if fmt != _FORMAT:
        raise ValueError(
            f"{path!r} is not a jaxdm simulation store (format attribute)."
        )
    if int(f.attrs.get("version", -1)) != _VERSION:
        raise ValueError(
            f"{path!r} has store version {f.attrs.get('version')}; expected {_VERSION}."
        )
    missing = [d for d in _DATASETS if d not in f]
    if missing:
        raise ValueError(
            f"{path!r} is missing datasets {missing}; the file is corrupt."
        )
    if "n_committed" not in f.attrs:
        raise ValueError(
            f"{path!r} has no 'n_committed' attribute; the file is corrupt."
        )
    n = int(f.attrs["n_committed"])
    th, x, rg, regs = (f[d] for d in _DATASETS)
    if th.ndim != 2:
        raise ValueError(f"{path!r}: 'theta' must be 2-D; got shape {th.shape}.")
    if regs.ndim != 3 or regs.shape[1:] != (2, th.shape[1]):
        raise ValueError(
            f"{path!r}: 'regions' must have shape (r, 2, {th.shape[1]}); "
            f"got {regs.shape}."
        )
    for name, ds in (("theta", th), ("x", x), ("region", rg)):
        if ds.shape[0] < n:
            raise ValueError(
                f"{path!r}: dataset {name!r} has {ds.shape[0]} rows but {n} are "
                "committed;"
                " the file was truncated."
            )
    if n and int(np.max(rg[:n])) >= regs.shape[0]:
        raise ValueError(f"{path!r}: rows refer to unregistered regions.")


def simulate_into(
    key,
    store: SimulationStore,
    simulate: Callable,
    sample_theta: Callable,
    n_total: int,
    *,
    low,
    high,
    batch_size: int = 1024,
    reuse: bool = True,
) -> np.ndarray:
    """Fill ``store`` until the box ``[low, high]`` holds ``n_total`` simulations.

    Resumable: batch keys are ``fold_in(key, first_row_index)`` and only committed rows
    count, so calling again after an interruption completes the same set of
    simulations, without losing or duplicating any.

    Args:
        key: Typed PRNG key.
        store: An open, writable store.
        simulate: ``simulate(key, theta) -> x`` for ONE theta (theta_dim,) (vmapped).
        sample_theta: ``sample_theta(key, n, low, high) -> (n, theta_dim)`` draws from
            the prior truncated to the box.
        n_total: Required number of rows inside the box.
        low: Lower corner of the box, shape (theta_dim,).
        high: Upper corner, shape (theta_dim,).
        batch_size: Simulations per append (and per commit).
        reuse: Count committed rows from earlier (larger) regions that fall inside the
            box; otherwise only rows drawn from this exact region count.

    Returns:
        Sorted row indices of ``n_total`` simulations inside the box, (n_total,).
    """
    check_key(key)
    n_total = check_int(n_total, "n_total", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    region = store.add_region(low, high)
    sim = jax.jit(jax.vmap(simulate))

    def usable():
        if reuse:
            return store.rows_in(low, high)
        return np.nonzero(store.region_ids() == region)[0]

    rows = usable()
    while rows.size < n_total:
        n = min(int(batch_size), int(n_total) - rows.size)
        k = jax.random.fold_in(key, store.n_rows)
        k_th, k_x = jax.random.split(k)
        theta = np.asarray(sample_theta(k_th, n, np.asarray(low), np.asarray(high)))
        x = np.asarray(sim(jax.random.split(k_x, n), theta))
        store.append(theta, x, region)
        rows = np.concatenate([rows, np.arange(store.n_rows - n, store.n_rows)])
    return np.sort(rows[: int(n_total)])
