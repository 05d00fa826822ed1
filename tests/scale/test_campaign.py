"""Dask campaigns: 2 workers, one killed mid-run, bitwise equal to a serial run."""

import os
import signal
import threading

import jax
import numpy as np
import pytest

from jaxdm.campaign import run_campaign, uniform_box
from jaxdm.sharded_store import ShardedStore
from jaxdm.store import SimulationStore, simulate_into
from jaxdm.tasks import two_moons

distributed = pytest.importorskip("distributed")

N, B = 600, 40


def test_two_workers_one_killed_equal_serial_run(tmp_path):
    key = jax.random.key(11)
    task = two_moons()
    low, high = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    with SimulationStore.create(tmp_path / "serial.h5", theta_dim=2, x_shape=(2,)) as s:
        simulate_into(key, s, task.simulate, uniform_box, N, low=low, high=high,
                      batch_size=B)  # fmt: skip
        serial = s.read()
    bank = ShardedStore.create(tmp_path / "bank", theta_dim=2, x_shape=(2,))
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        shards = os.path.join(bank.path, "manifest")

        def kill_when_started():  # kill one worker once some batches are committed
            while len(os.listdir(shards)) < 3:
                threading.Event().wait(0.02)
            os.kill(victim, signal.SIGKILL)

        killer = threading.Thread(target=kill_when_started, daemon=True)
        killer.start()
        report = run_campaign(key, bank, task.simulate, uniform_box, N, low=low,
                              high=high, batch_size=B, client=client,
                              progress=False)  # fmt: skip
        killer.join(timeout=60)
        assert not killer.is_alive()
        assert victim not in client.run(os.getpid).values()  # it really died
    assert report.n_batches == report.n_computed == N // B
    bank = ShardedStore.open(bank.path, "r")
    assert bank.n_rows == N
    assert bank.committed_ranges() == [(s, s + B) for s in range(0, N, B)]
    got = bank.read()
    np.testing.assert_array_equal(got["theta"], serial["theta"])  # bitwise
    np.testing.assert_array_equal(got["x"], serial["x"])
    # Resume: a second call finds every batch committed and computes nothing.
    again = run_campaign(key, ShardedStore.open(bank.path), task.simulate, uniform_box,
                         N, low=low, high=high, batch_size=B, client=None,
                         n_workers=1, progress=False)  # fmt: skip
    assert again.n_computed == 0
