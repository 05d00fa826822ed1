"""Wall-clock of NRE posterior sampling for 10 two_moons observations, 10^6 prior draws.

One process per measurement, so old and new code can be interleaved in rounds on a
loaded machine (run the old code from a worktree of the base commit):

    for r in 1 2 3; do
      PYTHONPATH=/tmp/base-nre python benchmarks/nre_sampling_time.py --mode before
      PYTHONPATH=. python benchmarks/nre_sampling_time.py --mode after
    done

``before``: ``importance_samples`` + ``resample`` (10^4 draws) per observation, as the
old API ran (op by op). ``after``: one ``importance_samples`` call for the 10
observations (compiled, chunked), then ``resample`` per observation; timed twice in
the process (first call includes compilation; wall and process CPU time are
printed), and
``ratio_sampling.sample_mcmc`` (10^4 draws per observation, 30 steps) likewise. The
estimator is the default one trained for 5 epochs (timing does not depend on the
weights).
"""

import argparse
import json
import os
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from jaxdm.inference import nre
from jaxdm.tasks import get_task, observation


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=("before", "after"), required=True)
    p.add_argument("--task", default="two_moons")
    p.add_argument("--n-obs", type=int, default=10)
    p.add_argument("--n-prior", type=int, default=1_000_000)
    p.add_argument("--n-samples", type=int, default=10_000)
    p.add_argument(
        "--only",
        default="",
        help="comma-separated subset of the mode's samplers (after: sir,sir_loop,mcmc)",
    )
    p.add_argument(
        "--save",
        default="",
        help="write each sampler's draws (first call) to this .npz, to check that "
        "two code versions draw the same samples",
    )
    p.add_argument(
        "--cache-dir",
        default="",
        help="JAX persistent compilation cache directory (every program cached): "
        "a second process's first call then loads instead of compiling",
    )
    a = p.parse_args()
    warnings.simplefilter("ignore")
    if a.cache_dir:
        jax.config.update("jax_compilation_cache_dir", a.cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    task = get_task(a.task)
    th, x = task.sample_joint(jax.random.key(0), 2000)
    m = nre.make_ratio_estimator(
        jax.random.key(1), theta_dim=task.theta_dim, x_shape=(task.x_dim,)
    )
    m, _ = nre.train_ratio_estimator(jax.random.key(2), m, th, x, max_epochs=5)
    xs = jnp.stack(
        [
            observation(jax.random.fold_in(jax.random.key(1000), i), task)[1]
            for i in range(a.n_obs)
        ]
    )
    prior = jax.block_until_ready(task.sample_prior(jax.random.key(3), a.n_prior))
    out = {"mode": a.mode, "task": a.task, "n_obs": a.n_obs, "n_prior": a.n_prior}

    def sir_before():
        return [
            nre.resample(
                jax.random.key(4 + i),
                nre.importance_samples(m, prior, xs[i]),
                0,
                a.n_samples,
            )
            for i in range(a.n_obs)
        ]

    def sir_after():
        ws = nre.importance_samples(m, prior, xs)
        return nre.resample(jax.random.key(4), ws, 0, a.n_samples)

    def sir_loop():
        ws = nre.importance_samples(m, prior, xs)
        return [
            nre.resample(
                jax.random.key(4 + i),
                jax.tree.map(lambda v, i=i: v[i], ws),
                0,
                a.n_samples,
            )
            for i in range(a.n_obs)
        ]

    def mcmc():
        from jaxdm.inference.ratio_sampling import sample_mcmc

        low, high = task.support.low, task.support.high
        return sample_mcmc(
            jax.random.key(5), m, prior, xs, a.n_samples, low=low, high=high
        )

    fns = (
        {"sir": sir_before}
        if a.mode == "before"
        else {
            "sir": sir_after,
            "sir_loop": sir_loop,
            "mcmc": mcmc,
        }
    )
    if a.only:
        fns = {k: fns[k] for k in a.only.split(",")}
    draws = {}
    for name, fn in fns.items():
        for call in ("first", "repeat"):
            t0, c0 = time.perf_counter(), time.process_time()
            r = jax.block_until_ready(fn())
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            out[f"{name}_{call}_s"] = round(wall, 2)
            out[f"{name}_{call}_cpu_s"] = round(cpu, 2)
            print(f"{name} {call}: wall {wall:.2f} s, CPU {cpu:.2f} s", flush=True)
            if call == "first":
                r = getattr(r, "theta", r)  # sample_mcmc's MCMCSamples
                draws[name] = np.asarray(jnp.stack(r) if isinstance(r, list) else r)
            if a.mode == "before":
                break
    out["load_avg_1min"] = os.getloadavg()[0]
    if a.save:
        np.savez(a.save, **{k: v for k, v in draws.items() if v.ndim})
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
