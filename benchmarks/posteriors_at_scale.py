"""Amortised posteriors for 10^6 observations, store -> store, killed once and resumed.

Issue #19, item 4. The script

1. simulates a linear-Gaussian problem (theta ~ U(-1, 1)^2, x = A theta + 0.1 noise,
   x of 4 floats; ``A`` fixed below) into an observation store of ``--n-obs`` rows
   (:class:`jaxdm.store.SimulationStore`), and a training set of ``--n-train`` rows;
2. trains a small NPE on the training set (``train_npe``, through ``jaxdm.train.fit``);
3. runs :func:`jaxdm.inference.amortised.sample_posteriors_into` in a child process,
   observation store -> posterior bank, ``--n-samples`` draws per observation,
   SIGKILLs the child once the bank holds about ``--kill-at`` of its final size, then
   runs a second child that resumes from the bank's committed rows;
4. checks the bank: exactly ``n_obs`` committed rows, every row finite, no two rows
   alike (a duplicated or mis-placed chunk would repeat rows), and ``--n-check``
   random rows equal to a fresh draw with observation ``i``'s key ``fold_in(key, i)``.

It records wall time, peak resident memory (``ru_maxrss`` of each child, from
``os.wait4``), rows committed at the kill and at the end, in
``OUT/posteriors_at_scale.json`` and prints a table. Memory stays bounded by one
chunk (``chunk * n_samples * theta_dim`` floats) whatever ``--n-obs``.

Run: ``PYTHONPATH=. python benchmarks/posteriors_at_scale.py`` (defaults: 10^6
observations, 32 samples each, chunks of 4,096). ``--n-obs 20000`` takes ~1 min.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

THETA_DIM, X_DIM = 2, 4
A = np.array([[1.0, 0.5], [-0.3, 1.0], [0.8, -0.6], [0.2, 0.9]], np.float32)
NPE_HYPER = dict(theta_dim=THETA_DIM, x_shape=X_DIM, flow_layers=3,
                 flow_hidden=(32, 32), embedding_dim=8, embedding_width=32)  # fmt: skip


def simulate(seed: int, n: int):
    """``n`` draws of (theta, x) of the linear-Gaussian problem (float32)."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-1.0, 1.0, size=(n, THETA_DIM)).astype(np.float32)
    x = theta @ A.T + 0.1 * rng.standard_normal((n, X_DIM)).astype(np.float32)
    return theta, x.astype(np.float32)


def make_observations(path: str, n_obs: int, block: int = 200_000) -> None:
    from jaxdm.store import SimulationStore

    with SimulationStore.create(path, theta_dim=THETA_DIM, x_shape=(X_DIM,),
                                chunk_rows=8192, overwrite=True) as st:  # fmt: skip
        region = st.add_region([-1.0, -1.0], [1.0, 1.0])
        for i, start in enumerate(range(0, n_obs, block)):
            theta, x = simulate(1000 + i, min(block, n_obs - start))
            st.append(theta, x, region)


def train(path: str, n_train: int, epochs: int) -> dict:
    import jax

    from jaxdm.inference.npe import make_npe, save, train_npe

    theta, x = simulate(1, n_train)
    npe = make_npe(jax.random.key(0), **NPE_HYPER)
    t0 = time.perf_counter()
    npe, hist = train_npe(jax.random.key(1), npe, theta, x, batch_size=256,
                          max_epochs=epochs, progress=False)  # fmt: skip
    save(path, npe)
    return {"train_seconds": time.perf_counter() - t0,
            "best_val_loss": float(np.nanmin(hist.val_loss))}  # fmt: skip


def child(npe_path: str, obs_path: str, bank: str, n_samples: int, chunk: int) -> None:
    """Sample the posteriors (run in a child process, killed and resumed)."""
    import jax

    from jaxdm.inference.amortised import sample_posteriors_into
    from jaxdm.inference.npe import load
    from jaxdm.store import SimulationStore

    npe = load(npe_path)
    with SimulationStore.open(obs_path, "r") as st:
        res = sample_posteriors_into(jax.random.key(7), npe, st, bank, n_samples,
                                     chunk_size=chunk, progress=False)  # fmt: skip
    print("RESULT " + json.dumps(res), flush=True)


def _spawn(args, bank: str):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", args.out, bank,
           str(args.n_samples), str(args.chunk)]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, env=dict(os.environ))


def _wait(proc):
    """(returncode, peak RSS in MB, stdout) of a finished child."""
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read().decode()
    proc.stdout.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024.0, out


def _committed(bank: str) -> int:
    """Committed rows of a bank whose writer was killed.

    Clears HDF5's "open for write" flag first, as the resumed run would.
    """
    import h5py

    from jaxdm._h5recover import clear_killed_writer_flag

    try:
        f = h5py.File(bank, "r")
    except OSError:
        clear_killed_writer_flag(bank)
        f = h5py.File(bank, "r")
    with f:
        return int(f.attrs["n_committed"])


def check_bank(bank: str, obs_path: str, npe_path: str, n_check: int) -> dict:
    """Rows committed, finiteness, distinct rows, and spot checks against the keys."""
    import h5py
    import jax

    from jaxdm.inference.npe import load
    from jaxdm.store import SimulationStore

    with h5py.File(bank, "r") as f:
        n, (n_obs, s, d) = int(f.attrs["n_committed"]), f["samples"].shape
        first = np.empty((n_obs, d), np.float32)
        finite, block = True, 65_536
        for a in range(0, n_obs, block):
            smp, lq = f["samples"][a : a + block], f["log_q"][a : a + block]
            finite &= bool(np.isfinite(smp).all() and np.isfinite(lq).all())
            first[a : a + block] = smp[:, 0]
        n_distinct = int(np.unique(first, axis=0).shape[0])
        rows = np.sort(np.random.default_rng(0).choice(n_obs, n_check, replace=False))
        got = f["samples"][rows], f["log_q"][rows]
    npe = load(npe_path)
    with SimulationStore.open(obs_path, "r") as st:
        x = st.read(rows)["x"]
    key = jax.random.key(7)
    err = 0.0
    for j, i in enumerate(rows):
        th, lq = npe.sample_and_log_prob(jax.random.fold_in(key, int(i)), x[j], s)
        err = max(err, float(np.max(np.abs(np.asarray(th) - got[0][j]))))
    return {"n_committed": n, "shape": [n_obs, s, d], "all_finite": finite,
            "n_distinct_rows": n_distinct, "spot_check_max_abs_diff": err,
            "n_spot_checks": int(n_check)}  # fmt: skip


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-obs", type=int, default=1_000_000)
    p.add_argument("--n-samples", type=int, default=32)
    p.add_argument("--chunk", type=int, default=4096)
    p.add_argument("--n-train", type=int, default=20_000)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument(
        "--kill-at",
        type=float,
        default=0.5,
        help="SIGKILL the first run at this fraction of the bank's size",
    )
    p.add_argument("--n-check", type=int, default=16)
    p.add_argument("--out", default="outputs/posteriors_at_scale")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    obs_path = os.path.join(args.out, "observations.h5")
    npe_path = os.path.join(args.out, "npe.eqx")
    bank = os.path.join(args.out, "posteriors.h5")
    for path in (bank,):
        if os.path.exists(path):
            os.remove(path)
    rec = {"n_obs": args.n_obs, "n_samples": args.n_samples, "chunk": args.chunk}
    t0 = time.perf_counter()
    make_observations(obs_path, args.n_obs)
    rec["simulate_seconds"] = time.perf_counter() - t0
    rec.update(train(npe_path, args.n_train, args.epochs))
    print(f"observations and NPE ready ({rec['simulate_seconds']:.0f} s + "
          f"{rec['train_seconds']:.0f} s)", flush=True)  # fmt: skip

    expected = args.n_obs * args.n_samples * (THETA_DIM + 1) * 4  # bytes of data
    t0 = time.perf_counter()
    proc = _spawn(args, bank)
    while proc.poll() is None:
        if os.path.exists(bank) and os.path.getsize(bank) >= args.kill_at * expected:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    rc1, rss1, _ = _wait(proc)
    rec["first_seconds"] = time.perf_counter() - t0
    rec["first_exit"] = rc1
    rec["first_peak_rss_mb"] = rss1
    rec["committed_at_kill"] = _committed(bank)
    print(f"first run exit {rc1} after {rec['first_seconds']:.0f} s, "
          f"{rec['committed_at_kill']} rows committed", flush=True)  # fmt: skip

    t0 = time.perf_counter()
    rc2, rss2, out = _wait(_spawn(args, bank))
    rec["second_seconds"] = time.perf_counter() - t0
    if rc2 != 0:
        raise RuntimeError(f"the resumed run failed (exit {rc2}):\n{out[-2000:]}")
    res = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    rec["second_peak_rss_mb"] = rss2
    rec["n_resumed"] = res["n_resumed"]
    rec["resumed_obs_per_second"] = res["obs_per_second"]
    rec["bank_bytes"] = os.path.getsize(bank)
    rec["chunk_buffer_mb"] = args.chunk * args.n_samples * (THETA_DIM + 1) * 4 / 2**20
    rec.update(check_bank(bank, obs_path, npe_path, args.n_check))
    rec["ok"] = bool(
        rc1 == -signal.SIGKILL
        and 0 < rec["committed_at_kill"] < args.n_obs
        and rec["n_resumed"] == rec["committed_at_kill"]
        and rec["n_committed"] == args.n_obs
        and rec["all_finite"]
        and rec["n_distinct_rows"] == args.n_obs
        and rec["spot_check_max_abs_diff"] < 1e-4
    )
    with open(os.path.join(args.out, "posteriors_at_scale.json"), "w") as f:
        json.dump(rec, f, indent=1)
    width = max(len(k) for k in rec)
    for k, v in rec.items():
        print(f"{k:<{width}}  " + (f"{v:.4g}" if isinstance(v, float) else f"{v}"))
    return rec


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        out, bank, s, c = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        child(os.path.join(out, "npe.eqx"), os.path.join(out, "observations.h5"), bank,
              s, c)  # fmt: skip
    else:
        rec = main()
        sys.exit(0 if rec["ok"] else 1)
