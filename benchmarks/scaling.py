"""Parallel efficiency here: Dask simulation workers, jax.distributed training.

* Simulation: :func:`jaxdm.campaign.run_campaign` fills a sharded bank with lensing
  images (``--n-pix`` pixels a side, SIE + shear + Sersic, noise) on a ``LocalCluster``
  of 1 and then 2 single-threaded workers; a warm-up campaign on the same cluster
  compiles the simulator on every worker first, so the rate is simulation + I/O.
* Training: ``jaxdm.train.fit`` on an NPE (``make_npe`` defaults, theta_dim 5,
  x_dim 20), in 1 and then 2 processes under ``jax.distributed`` (gloo), the same
  global batch; each process trains once to compile and once timed.

Efficiency = rate(2) / (2 rate(1)). Run: ``python benchmarks/scaling.py``. Each
process/worker is pinned to one XLA CPU thread pool of its own; with 2 cores shared
by other jobs the efficiency measured here is a floor, not a property of the code.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def lensing_simulator(n_pix):
    """A picklable ``simulate(key, theta)``: theta = (theta_e, source amplitude)."""
    import functools

    return functools.partial(_lens, n_pix=n_pix)


def _lens(key, theta, n_pix):
    import jax.numpy as jnp

    from jaxdm.simulators import lensing as L

    cfg = L.ObservationConfig(n_pix=n_pix, pixel_scale=5.0 / n_pix, supersampling=2,
                              psf=L.GaussianPSF(fwhm=0.1))  # fmt: skip
    f32 = jnp.float32
    lens = (L.SIEParams(theta_e=theta[0], q=f32(0.8), phi=f32(0.3), x0=f32(0.0),
                        y0=f32(0.0)),
            L.ShearParams(gamma1=f32(0.02), gamma2=f32(-0.01)))  # fmt: skip
    src = L.SersicParams(amplitude=theta[1], r_e=f32(0.3), n=f32(2.0), q=f32(0.7),
                         phi=f32(0.1), x0=f32(0.05), y0=f32(0.0))  # fmt: skip
    return L.simulate(key, L.LensingParams(lens=lens, source=(src,)), cfg).ravel()


def bench_simulation(n_workers, n_rows, batch, n_pix):
    import distributed
    import jax

    from jaxdm.campaign import run_campaign, uniform_box
    from jaxdm.sharded_store import ShardedStore

    sim = lensing_simulator(n_pix)
    low, high = np.array([0.8, 5.0]), np.array([1.6, 50.0])
    with tempfile.TemporaryDirectory() as tmp, distributed.LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True,
        dashboard_address=None,
    ) as cluster, distributed.Client(cluster) as client:  # fmt: skip
        for tag, n in (("warm", batch * n_workers * 2), ("timed", n_rows)):
            bank = ShardedStore.create(os.path.join(tmp, tag), theta_dim=2,
                                       x_shape=(n_pix * n_pix,))  # fmt: skip
            rep = run_campaign(jax.random.key(0), bank, sim, uniform_box, n, low=low,
                               high=high, batch_size=batch, client=client,
                               progress=False)  # fmt: skip
    return rep.rows_per_second


def _port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_worker(pid, nproc, port, out, n_rows, batch, epochs):
    """One process of the training benchmark (run by :func:`bench_training`)."""
    import jax

    if nproc > 1:
        from jaxdm import distributed

        distributed.initialize(f"127.0.0.1:{port}", nproc, pid, timeout=120)
    from jaxdm.inference.npe import make_npe, npe_loss
    from jaxdm.train import fit

    theta = np.asarray(jax.random.uniform(jax.random.key(1), (n_rows, 5)))
    x = np.array(jax.random.normal(jax.random.key(2), (n_rows, 20)))
    x[:, :5] += theta
    npe = make_npe(jax.random.key(0), theta_dim=5, x_shape=20)
    times = []
    for _ in range(2):  # the first call compiles
        t0 = time.perf_counter()
        fit(jax.random.key(3), npe, npe_loss, (theta, x), batch_size=batch,
            max_epochs=epochs, val_fraction=0.0, progress=False)  # fmt: skip
        times.append(time.perf_counter() - t0)
    steps = epochs * (n_rows // batch)
    with open(out, "w") as f:
        json.dump({"steps_per_s": steps / times[1], "compile_s": times[0]}, f)


def bench_training(nproc, n_rows, batch, epochs):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1",
               JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)  # fmt: skip
    port = str(_port())
    with tempfile.TemporaryDirectory() as tmp:
        outs = [os.path.join(tmp, f"{p}.json") for p in range(nproc)]
        procs = [subprocess.Popen([sys.executable, __file__, "--train-worker", str(p),
                                   str(nproc), port, outs[p], str(n_rows), str(batch),
                                   str(epochs)], env=env)
                 for p in range(nproc)]  # fmt: skip
        for p in procs:
            if p.wait(timeout=1800) != 0:
                raise RuntimeError("a training process failed")
        with open(outs[0]) as f:
            return json.load(f)["steps_per_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim-rows", type=int, default=4096)
    ap.add_argument("--sim-batch", type=int, default=256)
    ap.add_argument("--n-pix", type=int, default=48)
    ap.add_argument("--train-rows", type=int, default=8192)
    ap.add_argument("--train-batch", type=int, default=512)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--only", choices=("sim", "train"), default=None)
    ap.add_argument("--train-worker", nargs=7, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.train_worker:
        pid, nproc, port, out, n, b, e = a.train_worker
        train_worker(int(pid), int(nproc), port, out, int(n), int(b), int(e))
        return
    res = {}
    for n in (1, 2) if a.only != "train" else ():
        res[f"sim_{n}"] = bench_simulation(n, a.sim_rows, a.sim_batch, a.n_pix)
        print(f"simulation, {n} worker(s): {res[f'sim_{n}']:.1f} images/s", flush=True)
    for n in (1, 2) if a.only != "sim" else ():
        res[f"train_{n}"] = bench_training(n, a.train_rows, a.train_batch, a.epochs)
        print(f"training, {n} process(es): {res[f'train_{n}']:.2f} steps/s", flush=True)
    for what in ("sim", "train"):
        if f"{what}_1" in res:
            eff = res[f"{what}_2"] / (2 * res[f"{what}_1"])
            print(f"parallel efficiency, {what}: {eff:.2f}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
