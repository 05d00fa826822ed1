"""Simulation banks with concurrent writers: per-batch HDF5 shards, committed manifest.

A :class:`ShardedStore` is a directory::

    bank/
      schema.json                      format, version, theta_dim, x_shape, dtype
      regions.json                     registered prior boxes [[low, high], ...]
      shards/rows-<start>-<stop>-<token>.h5   one SimulationStore file per batch
      manifest/rows-<start>-<stop>.json       one committed manifest entry per batch

Any number of processes write disjoint row ranges ``[start, stop)`` at once
(:meth:`ShardedStore.write_shard`): each writes its rows into a private shard file
(a :class:`jaxdm.store.SimulationStore`, so Fletcher32 checksums on every chunk),
forces it to disk, renames it into place, then *commits* the batch by atomically
renaming a manifest entry (range, shard file, SHA-256 of the file, region) into
``manifest/``. A writer killed at any moment leaves either a committed entry whose
shard is complete, or no entry (a stray shard file or temporary file, ignored by
readers and removable with :meth:`ShardedStore.remove_orphans`): nothing committed is
lost, and since an entry is named by its row range, committing a batch twice (a
recomputed batch after a worker was killed) replaces it rather than duplicating it.
Overlapping ranges of different extent are refused.

Readers see one logical bank: the committed shards in the order of their first row,
concatenated. ``n_rows``, ``read``, ``rows_in``, ``region_ids``, ``source`` and
``iter_chunks`` behave as those of :class:`~jaxdm.store.SimulationStore`, so
:func:`jaxdm.train.fit`, :func:`jaxdm.store.simulate_into` and the TMNRE rounds
(:func:`jaxdm.inference.run_tmnre`) take either store. The rows do not depend on how
many writers produced them, only on their ranges.

Why per-batch HDF5 shards with a manifest rather than zarr v3 sharding: the shard
files are ordinary jaxdm stores (same checksums, same reader, h5py already a core
dependency, no new storage dependency), the commit of a batch is one atomic
``os.replace`` on any POSIX file system (a local disk, NFS, Lustre, GPFS, where
cluster campaigns write), whereas a zarr array written by many processes needs either
chunk-aligned writer regions or external locking and has no notion of a committed
row count. The single-file :class:`~jaxdm.store.SimulationStore` stays the default
for one process (one file to copy to a laptop); :meth:`ShardedStore.to_single_file`
compacts a finished bank into one.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid

import numpy as np

from ._args import check_int
from .store import SimulationStore, _as_rows, _ChunkSourceMixin, _region_box

__all__ = ["ShardedStore"]

_FORMAT = "jaxdm-sharded-store"
_VERSION = 1


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_json(path: str, obj) -> None:
    tmp = f"{path}.{uuid.uuid4().hex[:12]}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(os.path.dirname(path))


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _entry_name(start: int, stop: int) -> str:
    return f"rows-{start:015d}-{stop:015d}"


class ShardedStore(_ChunkSourceMixin):
    """A directory bank written by concurrent writers (see the module docstring).

    Attributes:
        path: Directory.
        theta_dim: Parameters per row.
        x_shape: Shape of one observation.
        dtype: Storage dtype of theta and x (a numpy dtype name).
    """

    def __init__(self, path: str | os.PathLike, schema: dict, mode: str):
        """Wrap a validated directory (use :meth:`create` / :meth:`open`)."""
        self.path = os.fspath(path)
        self.theta_dim = int(schema["theta_dim"])
        self.x_shape = tuple(int(s) for s in schema["x_shape"])
        self.dtype = str(schema["dtype"])
        self.mode = mode
        self._open: dict[str, SimulationStore] = {}
        self.refresh()

    # ------------------------------------------------------------------ creation

    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        *,
        theta_dim: int,
        x_shape: tuple[int, ...],
        dtype=np.float32,
        overwrite: bool = False,
    ) -> ShardedStore:
        """Create an empty bank directory.

        Args:
            path: Directory to create (its parent must exist).
            theta_dim: Number of parameters.
            x_shape: Shape of one observation.
            dtype: Storage dtype of theta and x.
            overwrite: Allow an existing *empty* sharded bank at ``path`` to be
                reused (a bank holding rows is never overwritten).

        Returns:
            The open store (writable).
        """
        theta_dim = check_int(theta_dim, "theta_dim", minimum=1)
        if not isinstance(x_shape, tuple | list):
            raise TypeError(f"`x_shape` must be a tuple of ints; got {x_shape!r}.")
        x_shape = tuple(check_int(s, "x_shape", minimum=1) for s in x_shape)
        path = os.fspath(path)
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise FileNotFoundError(
                f"`path` {path!r}: directory {parent!r} does not exist."
            )
        if os.path.exists(path):
            if not overwrite:
                raise ValueError(
                    f"`path` {path!r} exists; use ShardedStore.open to resume."
                )
            existing = cls.open(path)
            if existing.n_rows:
                raise ValueError(
                    f"`path` {path!r} holds {existing.n_rows} committed rows; "
                    "remove it explicitly to start again."
                )
        for sub in ("", "shards", "manifest"):
            os.makedirs(os.path.join(path, sub), exist_ok=True)
        schema = {
            "format": _FORMAT,
            "version": _VERSION,
            "theta_dim": theta_dim,
            "x_shape": list(x_shape),
            "dtype": np.dtype(dtype).name,
        }
        _atomic_json(os.path.join(path, "regions.json"), [])
        _atomic_json(os.path.join(path, "schema.json"), schema)
        return cls(path, schema, "r+")

    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        mode: str = "r+",
        *,
        theta_dim: int | None = None,
        x_shape: tuple[int, ...] | None = None,
    ) -> ShardedStore:
        """Open a bank; optionally check that it has the expected schema.

        Args:
            path: Directory written by :meth:`create`.
            mode: ``"r+"`` (write shards) or ``"r"``.
            theta_dim: Expected number of parameters (None: not checked).
            x_shape: Expected observation shape (None: not checked).

        Raises:
            FileNotFoundError: If ``path`` does not exist.
            ValueError: If it is not a sharded jaxdm bank, its schema differs from the
                expected one, or its manifest is inconsistent.
        """
        path = os.fspath(path)
        if mode not in ("r", "r+"):
            raise ValueError(f"`mode` must be 'r' or 'r+'; got {mode!r}.")
        if not os.path.exists(path):
            raise FileNotFoundError(f"`path` {path!r} does not exist.")
        schema_path = os.path.join(path, "schema.json")
        if not os.path.isdir(path) or not os.path.exists(schema_path):
            raise ValueError(
                f"`path` {path!r} is not a sharded jaxdm bank (no schema.json); a "
                "single-file bank opens with jaxdm.store.SimulationStore.open."
            )
        with open(schema_path) as f:
            schema = json.load(f)
        if schema.get("format") != _FORMAT or schema.get("version") != _VERSION:
            raise ValueError(
                f"`path` {path!r}: schema format {schema.get('format')!r} version "
                f"{schema.get('version')!r}; expected {_FORMAT!r} version {_VERSION}."
            )
        expected = {"theta_dim": theta_dim, "x_shape": x_shape}
        for name, want in expected.items():
            have = schema[name] if name == "theta_dim" else tuple(schema[name])
            if want is not None and (
                have != (tuple(want) if name == "x_shape" else want)
            ):
                raise ValueError(
                    f"`{name}`: the bank at {path!r} has {name} = {have}; expected "
                    f"{want} (wrong schema: another simulator or configuration?)."
                )
        return cls(path, schema, mode)

    # ------------------------------------------------------------------ manifest

    def refresh(self) -> None:
        """Re-read the manifest (rows committed by other writers since opening)."""
        mdir = os.path.join(self.path, "manifest")
        entries = []
        for name in os.listdir(mdir):
            if not name.endswith(".json"):
                continue  # temporary files of writers in flight
            with open(os.path.join(mdir, name)) as f:
                entries.append(json.load(f))
        entries.sort(key=lambda e: e["start"])
        for a, b in zip(entries, entries[1:], strict=False):
            if b["start"] < a["stop"]:
                raise ValueError(
                    f"bank {self.path!r}: manifest entries [{a['start']}, {a['stop']}) "
                    f"and [{b['start']}, {b['stop']}) overlap; the batches were "
                    "written with different batch sizes."
                )
        for e in entries:
            if not os.path.exists(os.path.join(self.path, "shards", e["file"])):
                raise ValueError(
                    f"bank {self.path!r}: committed shard {e['file']!r} is missing."
                )
        self._entries = entries
        sizes = np.array([e["stop"] - e["start"] for e in entries], np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        with open(os.path.join(self.path, "regions.json")) as f:
            self._regions = np.asarray(json.load(f), np.float64).reshape(
                -1, 2, self.theta_dim
            )

    def committed_ranges(self) -> list[tuple[int, int]]:
        """The committed absolute row ranges ``[(start, stop), ...]``, sorted."""
        return [(e["start"], e["stop"]) for e in self._entries]

    @property
    def n_rows(self) -> int:
        """Number of committed rows (the logical bank's length)."""
        return int(self._offsets[-1])

    @property
    def end_row(self) -> int:
        """One past the last committed absolute row (``n_rows`` if no gaps)."""
        return int(self._entries[-1]["stop"]) if self._entries else 0

    # ------------------------------------------------------------------ writing

    def _check_writable(self) -> None:
        if self.mode != "r+":
            raise ValueError(f"bank {self.path!r} is open read-only (mode='r').")

    @property
    def regions(self) -> np.ndarray:
        """Registered regions, shape (n_regions, 2, theta_dim)."""
        return self._regions.copy()

    def add_region(self, low, high) -> int:
        """Register a box ``[low, high]`` (an identical one is reused).

        Regions are registered by one process (the campaign's coordinator) before
        writers start; concurrent registrations from several processes are not
        supported.
        """
        self._check_writable()
        box = _region_box(low, high, self.theta_dim)
        for i, r in enumerate(self._regions):
            if np.array_equal(r, box):
                return i
        regions = np.concatenate([self._regions, box[None]])
        _atomic_json(os.path.join(self.path, "regions.json"), regions.tolist())
        self._regions = regions
        return len(regions) - 1

    def write_shard(self, start: int, theta, x, region: int) -> None:
        """Write and commit the absolute rows ``[start, start + len(theta))``.

        Safe to call from several processes at once for disjoint ranges, and again
        for an already committed range (the entry is replaced, not duplicated).

        Args:
            start: Absolute index of the first row.
            theta: Parameters, shape (n, theta_dim).
            x: Observations, shape (n, *x_shape).
            region: Index of the registered region theta was drawn from.

        Raises:
            ValueError: For mismatched shapes, non-finite rows, theta outside the
                region, or a range overlapping a committed range of another extent.
        """
        self._check_writable()
        start = check_int(start, "start", minimum=0)
        region = check_int(region, "region", minimum=0)
        theta, x = np.asarray(theta), np.asarray(x)
        if theta.ndim != 2 or theta.shape[1] != self.theta_dim or theta.shape[0] < 1:
            raise ValueError(
                f"`theta` must have shape (n >= 1, {self.theta_dim}); got "
                f"{theta.shape}."
            )
        if x.shape != (theta.shape[0], *self.x_shape):
            raise ValueError(
                f"`x` must have shape {(theta.shape[0], *self.x_shape)} (rows of "
                f"`theta`, then the bank's x_shape); got {x.shape}."
            )
        if region >= len(self._regions):
            self.refresh()
        if region >= len(self._regions):
            raise ValueError(
                f"`region` must be in [0, {len(self._regions)}); got {region}."
            )
        stop = start + theta.shape[0]
        name = _entry_name(start, stop)
        for e in self._entries_overlapping(start, stop):
            if (e["start"], e["stop"]) != (start, stop):
                raise ValueError(
                    f"rows [{start}, {stop}) overlap the committed range "
                    f"[{e['start']}, {e['stop']}) of another extent."
                )
        shard = f"{name}-{uuid.uuid4().hex[:12]}.h5"
        final = os.path.join(self.path, "shards", shard)
        tmp = final + ".tmp"
        with SimulationStore.create(
            tmp, theta_dim=self.theta_dim, x_shape=self.x_shape, dtype=self.dtype,
            chunk_rows=min(1024, theta.shape[0]), fsync=True,
        ) as s:  # fmt: skip
            lo, hi = self._regions[region]
            s.append(theta, x, s.add_region(lo, hi))
        os.replace(tmp, final)
        _fsync_dir(os.path.dirname(final))
        entry = {
            "start": start,
            "stop": stop,
            "file": shard,
            "sha256": _sha256(final),
            "region": region,
        }
        _atomic_json(os.path.join(self.path, "manifest", name + ".json"), entry)

    def _entries_overlapping(self, start: int, stop: int) -> list[dict]:
        # The committed ranges are in the entry names: no JSON to parse per write.
        out = []
        for name in os.listdir(os.path.join(self.path, "manifest")):
            if name.startswith("rows-") and name.endswith(".json"):
                a, b = (int(v) for v in name[5:-5].split("-"))
                if a < stop and start < b:
                    out.append({"start": a, "stop": b})
        return out

    def append(self, theta, x, region: int) -> None:
        """Commit rows after the last committed row (one writer; as SimulationStore).

        Raises:
            ValueError: If the bank has gaps (an unfinished campaign): appending
                after them would shift the logical row numbers.
        """
        self.refresh()
        if self.end_row != self.n_rows:
            raise ValueError(
                f"bank {self.path!r} has gaps in its committed rows (an unfinished "
                "campaign); finish it before appending."
            )
        self.write_shard(self.end_row, theta, x, region)
        self.refresh()

    def remove_orphans(self) -> list[str]:
        """Delete shard and temporary files no manifest entry refers to.

        Only while no writer is active (a writer's uncommitted shard is an orphan).

        Returns:
            The removed file names.
        """
        self._check_writable()
        self.refresh()
        keep = {e["file"] for e in self._entries}
        removed = []
        for sub in ("shards", "manifest"):
            for name in os.listdir(os.path.join(self.path, sub)):
                if (sub == "shards" and name not in keep) or name.endswith(".tmp"):
                    os.remove(os.path.join(self.path, sub, name))
                    removed.append(name)
        return removed

    def verify(self) -> None:
        """Check every committed shard against its manifest SHA-256.

        Raises:
            jaxdm.serialise.ChecksumError: For a shard whose bytes changed.
        """
        from .serialise import ChecksumError

        for e in self._entries:
            if _sha256(os.path.join(self.path, "shards", e["file"])) != e["sha256"]:
                raise ChecksumError(
                    f"bank {self.path!r}: shard {e['file']!r} does not match the "
                    "SHA-256 in its manifest entry: the file is corrupt."
                )

    # ------------------------------------------------------------------ reading

    def _shard(self, i: int) -> SimulationStore:
        name = self._entries[i]["file"]
        if name not in self._open:
            path = os.path.join(self.path, "shards", name)
            self._open[name] = SimulationStore.open(path, "r")
        return self._open[name]

    def read(self, rows=None) -> dict[str, np.ndarray]:
        """Read logical rows (any order; default all) as ``{"theta", "x"}``."""
        n = self.n_rows
        rows = np.arange(n) if rows is None else _as_rows(rows)
        if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= n)):
            raise ValueError(f"`rows` must be 1-D indices in [0, {n}); got {rows}.")
        out = {
            "theta": np.empty((rows.size, self.theta_dim), self.dtype),
            "x": np.empty((rows.size, *self.x_shape), self.dtype),
        }
        which = np.searchsorted(self._offsets, rows, side="right") - 1
        for i in np.unique(which):
            sel = np.nonzero(which == i)[0]
            part = self._shard(int(i)).read(rows[sel] - self._offsets[i])
            out["theta"][sel] = part["theta"]
            out["x"][sel] = part["x"]
        return out

    def region_ids(self) -> np.ndarray:
        """Region index of every committed row, shape (n_rows,)."""
        return np.concatenate(
            [np.full(e["stop"] - e["start"], e["region"], np.int32)
             for e in self._entries] or [np.zeros(0, np.int32)]
        )  # fmt: skip

    def rows_in(self, low, high) -> np.ndarray:
        """Sorted logical indices of committed rows with theta in ``[low, high]``."""
        low, high = np.asarray(low), np.asarray(high)
        idx = [np.zeros(0, np.int64)]
        for i in range(len(self._entries)):
            th = self._shard(i).read()["theta"]
            idx.append(self._offsets[i] + np.nonzero(
                np.all((th >= low) & (th <= high), axis=1))[0])  # fmt: skip
        return np.concatenate(idx)

    def to_single_file(self, path, *, chunk_rows: int = 1024) -> SimulationStore:
        """Copy the logical bank into a new single-file :class:`SimulationStore`."""
        out = SimulationStore.create(
            path, theta_dim=self.theta_dim, x_shape=self.x_shape, dtype=self.dtype,
            chunk_rows=chunk_rows,
        )  # fmt: skip
        for box in self._regions:
            out.add_region(box[0], box[1])
        for i, e in enumerate(self._entries):
            part = self._shard(i).read()
            out.append(part["theta"], part["x"], e["region"])
        return out

    def close(self) -> None:
        """Close the open shard files."""
        for s in self._open.values():
            s.close()
        self._open.clear()

    def __enter__(self) -> ShardedStore:
        """Enter a ``with`` block."""
        return self

    def __exit__(self, *exc) -> None:
        """Close on leaving a ``with`` block."""
        self.close()
