"""Cost of the traced value checks on the xenon throughput benchmark.

Loads the xenon package of two source trees side by side in one process (the base
tree's ``jaxdm`` under the name ``jaxdm_base``), builds the four jaxdm runners of
``benchmarks/xenon_throughput.py`` (NR/ER, exact and reparameterised
``simulate_events`` under ``eqx.filter_jit``, LZ-like detector) for each, and times
them in interleaved pairs (base then checked, order alternating per round), so that
the load of a shared machine affects both alike. Prints the median over rounds of
the per-round ratio of times (checked / base): above 1 is a slowdown. By default the
detector, spectrum and yields are passed as traced arguments, so that their checks
(``eqx.error_if``) are part of the compiled program; ``--constants`` closes over
them as ``xenon_throughput.py`` does. Without ``--base`` the checked tree is compared
with itself compiled with the checks replaced by identities. Example::

    git worktree add /tmp/base-xenon daf8cfe
    PYTHONPATH=. python benchmarks/xenon_guard_cost.py --base /tmp/base-xenon
"""

import argparse
import importlib
import statistics
import sys
import time
import types
from pathlib import Path


def _load_base(tree):
    """Import ``<tree>/jaxdm/simulators/xenon`` as ``jaxdm_base.simulators.xenon``."""
    root = Path(tree).resolve() / "jaxdm"
    for name, path in (
        ("jaxdm_base", root),
        ("jaxdm_base.simulators", root / "simulators"),
    ):
        mod = types.ModuleType(name)
        mod.__path__ = [str(path)]
        sys.modules[name] = mod
    return importlib.import_module("jaxdm_base.simulators.xenon")


def _runners(xenon, n, traced):
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    det = xenon.lz_like()
    yields = xenon.YieldParams()
    out = {}
    for rt in ("NR", "ER"):
        spec = xenon.tabulated_spectrum(jnp.array([1.0, 50.0]), jnp.ones(2), rt)
        for rep in (False, True):
            if traced:
                # Parameters as arguments: traced, so their checks run at run time.
                g = eqx.filter_jit(
                    lambda k, s, d, y, r=rep: xenon.simulate_events(
                        k, s, d, n, yields=y, reparameterized=r
                    )
                )

                def f(k, g=g, s=spec):
                    return g(k, s, det, yields)
            else:
                # As in xenon_throughput.py: parameters are compile-time constants.
                f = eqx.filter_jit(
                    lambda k, s=spec, r=rep: xenon.simulate_events(
                        k, s, det, n, reparameterized=r
                    )
                )
            state = {"key": jax.random.key(0)}

            def run(f=f, state=state):
                state["key"], sub = jax.random.split(state["key"])
                jax.block_until_ready(f(sub))

            out[f"{rt}{' (reparam.)' if rep else ''}"] = run
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--base",
        default=None,
        help="source tree without the checks; without it, the checked tree is "
        "compared with itself compiled with the checks switched off",
    )
    p.add_argument("--n", type=int, default=1 << 18)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument(
        "--constants",
        action="store_true",
        help="close over the parameters as in xenon_throughput.py (the checks then "
        "run at trace time and the compiled programs are the same)",
    )
    args = p.parse_args()
    import jax
    import jax.numpy as jnp

    from jaxdm.simulators import xenon as new

    traced = not args.constants
    print(f"jax {jax.__version__}, n = {args.n}, rounds = {args.rounds}, {traced=}")
    if args.base is not None:
        runs = {
            "base": _runners(_load_base(args.base), args.n, traced),
            "new": _runners(new, args.n, traced),
        }
        for tree in runs.values():
            for run in tree.values():
                run()  # compile and warm up
    else:
        # Same code, compiled once with the guards replaced by identities (they are
        # applied at trace time, i.e. during the warm-up call) and once with them.
        from jaxdm.simulators.xenon import _guards

        saved = (_guards.guard_rules, _guards.guard_values, _guards.guard_relation)
        runs = {"base": _runners(new, args.n, traced)}
        _guards.guard_rules = lambda obj, *a, **k: obj
        _guards.guard_values = lambda x, *a, **k: jnp.asarray(x, dtype=float)
        _guards.guard_relation = lambda x, *a, **k: x
        for run in runs["base"].values():
            run()
        _guards.guard_rules, _guards.guard_values, _guards.guard_relation = saved
        runs["new"] = _runners(new, args.n, traced)
        for run in runs["new"].values():
            run()
    ratios = {k: [] for k in runs["new"]}
    for r in range(args.rounds):
        for k in ratios:
            t = {}
            for which in ("base", "new") if r % 2 == 0 else ("new", "base"):
                t0 = time.perf_counter()
                runs[which][k]()
                t[which] = time.perf_counter() - t0
            ratios[k].append(t["new"] / t["base"])
    for k, v in ratios.items():
        q = statistics.quantiles(v, n=4)
        print(
            f"{k:16s} median time ratio checked/base = {statistics.median(v):.3f} "
            f"(quartiles {q[0]:.3f}-{q[2]:.3f})"
        )


if __name__ == "__main__":
    main()
