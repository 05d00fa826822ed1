"""Multi-process training: two CPU processes under jax.distributed (gloo) vs one."""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from jaxdm import distributed
from jaxdm.store import SimulationStore

WORKER = os.path.join(os.path.dirname(__file__), "multihost_worker.py")
ES_WORKER = os.path.join(os.path.dirname(__file__), "multihost_es_worker.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run(tmp_path, nproc, tag, ckpt=None, *, worker=WORKER, args=None, rc=0):
    """Start ``nproc`` workers (``worker PID NPROC PORT OUT *args``), wait, read JSON.

    ``args`` default to the store and ``ckpt`` of ``multihost_worker.py``. Every
    worker must exit with ``rc``; with ``rc != 0`` no output is read.
    """
    port = str(_free_port())
    outs = [str(tmp_path / f"{tag}{p}.json") for p in range(nproc)]
    if args is None:
        args = [str(tmp_path / "bank.h5")] + ([str(ckpt)] if ckpt else [])
    procs = [
        subprocess.Popen(
            [sys.executable, worker, str(p), str(nproc), port, outs[p], *args],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        for p in range(nproc)
    ]
    for p in procs:
        try:
            log = p.communicate(timeout=300)[0].decode()
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        assert p.returncode == rc, log[-3000:]
    if rc != 0:
        return None
    results = []
    for o in outs:
        with open(o) as f:
            results.append(json.load(f))
    return results


def _bank(path, n=250):
    theta = np.random.default_rng(0).uniform(size=(n, 2)).astype(np.float32)
    x = theta + 0.1 * np.random.default_rng(1).normal(size=(n, 2)).astype(np.float32)
    with SimulationStore.create(path, theta_dim=2, x_shape=(2,)) as st:
        st.append(theta, x, st.add_region([0, 0], [1, 1]))


@pytest.mark.slow  # three processes and six compilations: ~40 s on a quiet machine
def test_two_processes_train_like_one(tmp_path):
    _bank(tmp_path / "bank.h5")
    (one,) = _run(tmp_path, 1, "single")
    two = _run(tmp_path, 2, "multi", ckpt=tmp_path / "ckpt.eqx")
    assert one["process_count"] == 1
    assert [r["process_count"] for r in two] == [2, 2]
    assert [r["n_devices"] for r in two] == [2, 2]
    # The processes agree exactly (replicated losses, same early-stopping state) ...
    for k in ("train_loss", "val_loss", "best_epoch", "log_prob", "nre_train_loss",
              "nre_val_loss", "nre_log_ratio"):  # fmt: skip
        assert two[0][k] == two[1][k], k
    # ... and equal the one-process run on the same global batches to float tolerance
    # (the sum over a batch is reduced in another order across two devices).
    for k in ("train_loss", "val_loss", "log_prob", "nre_train_loss", "nre_val_loss",
              "nre_log_ratio"):  # fmt: skip
        np.testing.assert_allclose(two[0][k], one[k], rtol=2e-5, atol=2e-6)
    # Streaming from the store, each process read only its half of every chunk
    # (2 epochs x 250 rows; chunks of 100 split 50/50, the last 25/25), plus the
    # 250-row sample every process reads to fit the standardisers.
    assert one["rows_read"] == 250 + 500
    assert [r["rows_read"] for r in two] == [250 + 250, 250 + 250]
    assert two[0]["best_epoch"] == one["best_epoch"]
    # In memory, each process's device holds only its half of the training rows
    # (173 of 192 after the validation split, padded to 174), one process none
    # of them sharded (it keeps them replicated, as before).
    assert one["rows_held"] == []
    assert [r["rows_held"] for r in two] == [[[174, 87]], [[174, 87]]]
    # Only process 0 wrote the checkpoint.
    assert two[0]["saves"] >= 1
    assert two[1]["saves"] == 0
    assert (tmp_path / "ckpt.eqx").exists()


@pytest.mark.slow  # five processes: ~60 s on a quiet machine
def test_two_processes_early_stop_and_resume_after_a_kill(tmp_path):
    ckpt = tmp_path / "ckpt.eqx"
    # Both processes are SIGKILLed right after the checkpoint of epoch 3 is on disk.
    _run(tmp_path, 2, "kill", worker=ES_WORKER, args=[str(ckpt), "kill"], rc=-9)
    assert ckpt.exists()
    two = _run(tmp_path, 2, "resume", worker=ES_WORKER, args=[str(ckpt), "resume"])
    (one,) = _run(tmp_path, 1, "one", worker=ES_WORKER,
                  args=[str(tmp_path / "one.eqx"), "resume"])  # fmt: skip
    fresh = two[0]["fresh"]
    # The validation loss falls, then rises: training stops early, after patience
    # (2) epochs without improvement, and returns the best epoch's weights.
    n = len(fresh["val_loss"])
    assert fresh["stopped_early"]
    assert n < 40
    assert 3 < fresh["best_epoch"] == n - 3
    assert fresh["val_of_returned"] == pytest.approx(min(fresh["val_loss"]), rel=1e-6)
    # Both processes stop at the same epoch with the same best weights ...
    for k in ("resumed", "fresh"):
        assert two[0][k] == two[1][k], k
    # ... the resumed run trained only the epochs after the checkpoint and ends
    # bitwise equal to the uninterrupted one ...
    assert [r["resumed_epochs"] for r in two] == [n - 3, n - 3]
    assert [r["fresh_epochs"] for r in two] == [n, n]
    assert two[0]["resumed"] == fresh
    # ... and one process (fresh checkpoint file: no resume) takes the same decisions
    # with the same weights to float tolerance (a batch is summed in another order).
    assert one["resumed_epochs"] == one["fresh_epochs"] == n
    for run in (one["resumed"], one["fresh"]):
        assert (run["best_epoch"], run["stopped_early"]) == (fresh["best_epoch"], True)
        for k in ("weight", "val_loss", "train_loss"):
            np.testing.assert_allclose(run[k], fresh[k], rtol=2e-5, atol=1e-6)


def test_unanswered_coordinator_times_out_with_clear_message():
    with socket.socket() as s:  # a port that is bound but never accepts
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        t0 = time.monotonic()
        with pytest.raises(TimeoutError, match="coordinator_address.*did not answer"):
            distributed.wait_for_coordinator(f"127.0.0.1:{port}", timeout=1.0)
        assert time.monotonic() - t0 < 10


def test_process_rows_tile_the_rows():
    for n in (0, 1, 7, 10):
        for count in (1, 2, 3, 4):
            blocks = [distributed.process_rows(n, i, count) for i in range(count)]
            rows = np.concatenate([np.arange(n)[b] for b in blocks])
            np.testing.assert_array_equal(rows, np.arange(n))
    with pytest.raises(ValueError, match="process_index"):
        distributed.process_rows(5, 2, 2)


def test_bad_coordinator_address_is_refused():
    with pytest.raises(ValueError, match="coordinator_address"):
        distributed.wait_for_coordinator("localhost", timeout=1.0)
    with pytest.raises(ValueError, match="process_id"):
        distributed.initialize("127.0.0.1:1234", 2, 2)
