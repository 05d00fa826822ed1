"""Cost of ``fsync`` per commit of a ``jaxdm.store.SimulationStore`` append.

Each commit writes the rows, flushes, raises ``n_committed`` and flushes again; with
``fsync=True`` both flushes are followed by ``os.fsync``. Rounds alternate fsync off/on
on fresh stores in the same directory (interleaved, so machine load hits both alike);
reported: median seconds per commit and the on/off ratio.

    PYTHONPATH=. python benchmarks/store_fsync.py --dir /tmp --rounds 5
"""

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

from jaxdm.store import SimulationStore


def time_commits(directory, *, fsync, x_shape, rows, n_commits):
    path = os.path.join(directory, f"bench-{fsync}.h5")
    times = []
    with SimulationStore.create(path, theta_dim=4, x_shape=x_shape, overwrite=True,
                                fsync=fsync, chunk_rows=rows) as st:  # fmt: skip
        r = st.add_region(np.zeros(4), np.ones(4))
        rng = np.random.default_rng(0)
        theta = rng.uniform(size=(rows, 4)).astype(np.float32)
        x = rng.normal(size=(rows, *x_shape)).astype(np.float32)
        for _ in range(n_commits):
            t0 = time.perf_counter()
            st.append(theta, x, r)
            times.append(time.perf_counter() - t0)
    os.remove(path)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=tempfile.gettempdir())
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--commits", type=int, default=20)
    args = ap.parse_args()
    cases = {"1024 rows x (16,)": ((16,), 1024), "64 rows x (64, 64)": ((64, 64), 64)}
    for name, (x_shape, rows) in cases.items():
        res = {False: [], True: []}
        for _ in range(args.rounds):
            for fsync in (False, True):
                res[fsync] += time_commits(
                    args.dir, fsync=fsync, x_shape=x_shape, rows=rows,
                    n_commits=args.commits,
                )  # fmt: skip
        off, on = statistics.median(res[False]), statistics.median(res[True])
        mb = rows * (4 + int(np.prod(x_shape))) * 4 / 1e6
        print(f"{name} ({mb:.2f} MB/commit): no fsync {off * 1e3:.2f} ms, "
              f"fsync {on * 1e3:.2f} ms, +{(on - off) * 1e3:.2f} ms "
              f"({on / off:.1f}x) per commit")  # fmt: skip


if __name__ == "__main__":
    main()
