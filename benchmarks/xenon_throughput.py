"""Full-chain LXe event throughput on the CPU: jaxdm vs nestpy vs appletree.

Chain for every tool: recoil energy (uniform 1-50 keV) and position -> quanta with
fluctuations (NEST-like) -> S1 (photon detection, DPE, PMT smearing) and S2 (drift
attachment, extraction, SE gain) -> corrected cS1/cS2 and thresholds, for NR and ER at
a fixed field. Tools:

* jaxdm: ``xenon.simulate_events`` under ``eqx.filter_jit`` (LZ-like detector), exact
  (binomial) mode and the reparameterised mode, batches of ``--n-jax`` events;
* nestpy: ``nestpy.helpers.run_nest`` (the vectorised C++ ``runNESTvec`` full chain,
  LZ_WS2022 detector), ``--n-nest`` events;
* appletree: XENONnT's JAX simulator, ``ERBand`` of the bundled Rn220 context and
  ``NR`` of the bundled neutron context (compiled simulate functions), ``--n-apt``.

Run in the benchmark environment (peers are not jaxdm dependencies)::

    PYTHONPATH=/work/main /work/bench-xenon/bin/python benchmarks/xenon_throughput.py

Best of ``--repeat`` interleaved rounds after a warm-up (compilation excluded).
"""

import argparse
import time

import numpy as np


def jaxdm_runners(n):
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from jaxdm.simulators import xenon

    det = xenon.lz_like()
    out = {}
    for rt in ("NR", "ER"):
        spec = xenon.tabulated_spectrum(jnp.array([1.0, 50.0]), jnp.ones(2), rt)
        for rep in (False, True):
            f = eqx.filter_jit(
                lambda k, s=spec, r=rep: xenon.simulate_events(
                    k, s, det, n, reparameterized=r
                )
            )
            state = {"key": jax.random.key(0)}

            def run(f=f, state=state):
                state["key"], sub = jax.random.split(state["key"])
                jax.block_until_ready(f(sub))

            out[f"jaxdm {rt}{' (reparam.)' if rep else ''}"] = (run, n)
    return out


def nestpy_runners(n):
    import nestpy
    from nestpy import helpers

    det = nestpy.detectors.LZ_WS2022()
    e = np.random.default_rng(0).uniform(1.0, 50.0, n)
    out = {}
    for name, it in (("NR", nestpy.interactions.NR), ("ER", nestpy.interactions.beta)):
        out[f"nestpy {name}"] = (lambda it=it: helpers.run_nest(it, det, e), n)
    return out


def appletree_runners(n):
    import appletree as apt
    import jax
    from appletree.utils import get_file_path

    out = {}
    for name, instruct, llh, comp in (
        ("ER", "rn220.json", "rn220_llh", "rn220_er"),
        ("NR", "neutron_low.json", "neutron_llh", "neutron_nr"),
    ):
        ctx = apt.Context(get_file_path(instruct))
        c = ctx[llh][comp]
        params = ctx.par_manager.get_all_parameter()
        state = {"key": jax.random.PRNGKey(0)}

        def run(c=c, params=params, state=state):
            state["key"], res = c.simulate(state["key"], n, params)
            jax.block_until_ready(res)

        out[f"appletree {name}"] = (run, n)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-jax", type=int, default=1_000_000)
    p.add_argument("--n-nest", type=int, default=20_000)
    p.add_argument("--n-apt", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    import jax

    print(f"jax {jax.__version__}, devices {jax.devices()}")
    runners = jaxdm_runners(args.n_jax)
    for name, make, n in (
        ("nestpy", nestpy_runners, args.n_nest),
        ("appletree", appletree_runners, args.n_apt),
    ):
        try:
            runners.update(make(n))
        except ImportError as err:
            print(f"{name} unavailable: {err}")
    for run, _ in runners.values():
        run()  # compile / warm up everything first
    # Interleaved rounds: every tool is timed once per round, so a change of the
    # machine's load (shared host) affects all tools alike; best round per tool.
    times = {k: [] for k in runners}
    for _ in range(args.repeat):
        for k, (run, _) in runners.items():
            t = time.perf_counter()
            run()
            times[k].append(time.perf_counter() - t)
    rates = {k: runners[k][1] / min(v) for k, v in times.items()}
    for k, v in rates.items():
        print(f"{k:28s} {v:12.4g} events/s")
    for rt in ("NR", "ER"):
        j = rates[f"jaxdm {rt}"]
        for peer, target in (("nestpy", 30.0), ("appletree", 10.0)):
            if f"{peer} {rt}" in rates:
                ratio = j / rates[f"{peer} {rt}"]
                print(f"{rt}: jaxdm / {peer} = {ratio:.1f}x (target >= {target:.0f}x)")


if __name__ == "__main__":
    main()
