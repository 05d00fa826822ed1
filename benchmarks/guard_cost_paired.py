r"""Paired A/B cost of the traced value checks (xenon and lensing, traced parameters).

Fifth session: "on" is the function as shipped, whatever its package's policy (xenon:
poison, ``jaxdm._poison``: the guards' sanitising ``where`` and the outputs' poison
``where``, no host callback; a raise-policy package: ``eqx.error_if``); "off" compiles
every check out generically: the poison scope is replaced by one that never matches
the trace (so no guard records, sanitises or poisons, and no public call poisons its
outputs) and ``equinox.error_if``/``branched_error_if`` are identities (so the
fallback raise checks vanish too); the predicates are then dead code and XLA drops
them, and the program is the unchecked one. ``--diagnose`` adds "raise" (the raise
policy: the same dummy scope with the real ``error_if``, a host callback) besides the
isolating programs below.

Issue #12 asks that the traced checks cost < 5 % on the xenon and lensing throughput
benchmarks. With the parameters closed over (the throughput scripts as written) the
checks run at trace time and the compiled programs are identical; the question is the
cost when the physical parameters are *traced arguments* (how a training set over
parameters is simulated), where the checks are ``eqx.error_if`` in the program.

Method, in one process:

- "on": the public function compiled as shipped; "off": the same function, same
  shapes and inputs, compiled while ``equinox.error_if`` and
  ``equinox.branched_error_if`` are replaced by identities (every check in the
  package is built on them, so the predicates become dead code and XLA drops them).
  Both are compiled and warmed up before timing; the HLO of "on" must contain a
  callback (the check) and that of "off" none, otherwise the script stops.
- ``--pairs`` short rounds; each times one call of "on" and one of "off" back to back,
  the order alternating between rounds (ABBA), so that the machine's load (a shared
  2-core VM) hits both alike. Each call is sized to take tens of milliseconds.
- Reported: the median of the per-pair ratios on/off with a bootstrap 95 % CI
  (percentile, 4000 resamples of the pairs), the median times, the median per-pair
  difference on - off [ms] with its CI (a fixed per-call cost shows as a constant
  difference across sizes, a per-event cost as a constant ratio), and whether the CI
  lies below 1.05 (target met), above 1.05 (target missed) or straddles it.

- ``--diagnose`` adds, in the same interleaved rounds, programs that separate the
  parts of a check's cost (each ratio is against "off"):

  - "callback beside": the unchecked program plus a ``lax.cond`` on a scalar
    reduction of the parameters whose never-taken branch holds a host callback
    (``jax.pure_callback``), returned as an extra scalar output: the per-event
    kernels and their inputs are exactly those of "off", nothing waits for it;
  - "callback always": the same with the callback called unconditionally;
  - "cond beside": the same with a ``lax.cond`` (NaN or identity on a scalar)
    instead of the callback: a conditional without host callback;
  - "select": every check compiled as ``jnp.where(pred, nan, x)`` on the checked
    values (no conditional, no callback): the parameter-gating cost of a poison
    policy (its output masks not included).

The default sizes are the throughput benchmarks' (``xenon_throughput.py``'s 10^6
events as n = 2^20; ``lensing_throughput.py``'s batch of 256 images).

Examples (first is the default)::

    PYTHONPATH=. python benchmarks/guard_cost_paired.py
    PYTHONPATH=. python benchmarks/guard_cost_paired.py --n 65536 --batch 64
    PYTHONPATH=. python benchmarks/guard_cost_paired.py --sim xenon --recoil NR \
        --n 65536 --pairs 150 --diagnose
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np


class _NoScope:
    """Stand-in for ``jaxdm._poison._SCOPE``: a scope that never matches the trace.

    Every ``poison_policy`` wrapper then sees an outer scope of another trace and
    runs its function without a scope of its own; every guard's ``record`` finds a
    foreign scope and returns False (falls back to ``error_if``); nothing is
    sanitised or poisoned. ``set``/``reset`` are no-ops, so it stays in place.
    """

    class _Never:
        trace = object()  # equal to no trace state
        crossed = False
        flags: list = []

    def get(self):
        return self._Never

    def set(self, value):
        return None

    def reset(self, token):
        return None


@contextlib.contextmanager
def raise_policy():
    """Within the block, the poison policy is off: checks fall back to ``error_if``."""
    from jaxdm import _poison

    saved = _poison._SCOPE
    _poison._SCOPE = _NoScope()
    try:
        yield
    finally:
        _poison._SCOPE = saved


@contextlib.contextmanager
def _error_if_identity():
    import equinox as eqx

    saved = eqx.error_if, eqx.branched_error_if
    eqx.error_if = lambda x, pred, msg: x
    eqx.branched_error_if = lambda x, pred, index, msgs: x
    try:
        yield
    finally:
        eqx.error_if, eqx.branched_error_if = saved


@contextlib.contextmanager
def checks_compiled_out():
    """Within the block no check of any policy is compiled (module docstring)."""
    with raise_policy(), _error_if_identity():
        yield


def _xenon_runners(n: int, recoil: str, reparameterized: bool):
    """(fn, args) with detector, spectrum and yields as traced arguments."""
    import jax
    import jax.numpy as jnp

    from jaxdm.simulators import xenon

    spec = xenon.tabulated_spectrum(jnp.array([1.0, 50.0]), jnp.ones(2), recoil)
    args = (jax.random.key(0), spec, xenon.lz_like(), xenon.YieldParams())

    def sim(k, s, d, y):
        return xenon.simulate_events(
            k, s, d, n, yields=y, reparameterized=reparameterized
        )

    return sim, args


def _lensing_runners(batch: int, with_subs: bool):
    """(fn, args): vmapped expected images, every parameter a traced argument."""
    import jax

    from benchmarks.lensing_guard_cost import _make
    from jaxdm.simulators import lensing

    # _make returns a compiled function and its batched params; rebuild the
    # uncompiled function from the same config so "on"/"off" trace it separately.
    _, b = _make(lensing, batch, with_subs)
    cfg = lensing.ObservationConfig(
        n_pix=100,
        pixel_scale=0.05,
        supersampling=2,
        psf=lensing.GaussianPSF(fwhm=0.1),
    )
    return jax.vmap(lambda p: lensing.expected_image(p, cfg)), (b,)


@contextlib.contextmanager
def checks_as_select():
    """Within the block, every equinox check traces to ``where(pred, nan, x)``."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    def poison(x, pred, *_):
        def leaf(v):
            v = jnp.asarray(v)
            if not jnp.issubdtype(v.dtype, jnp.inexact):
                return v
            return jnp.where(pred, jnp.nan, v)

        return jax.tree.map(leaf, x)

    saved = eqx.error_if, eqx.branched_error_if
    eqx.error_if = lambda x, pred, msg: poison(x, pred)
    eqx.branched_error_if = lambda x, pred, index, msgs: poison(x, pred)
    try:
        with raise_policy():
            yield
    finally:
        eqx.error_if, eqx.branched_error_if = saved


def _beside(fn, kind: str):
    """``fn`` plus a scalar extra output: a host callback or a cond, nothing gated."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    def g(*a):
        out = fn(*a)
        leaves = [
            x
            for x in jax.tree.leaves(a)
            if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)
        ]
        s = sum(jnp.sum(x) for x in leaves)
        if kind == "callback":  # in a branch that is never taken (s is finite)

            def host(v):
                return jax.pure_callback(
                    lambda w: np.zeros((), np.float32),
                    jax.ShapeDtypeStruct((), jnp.float32),
                    v,
                )

            t = jax.lax.cond(jnp.isnan(s), host, lambda v: v, s)
        elif kind == "callback always":
            t = jax.pure_callback(
                lambda v: np.zeros((), np.float32),
                jax.ShapeDtypeStruct((), jnp.float32),
                s,
            )
        else:
            t = jax.lax.cond(jnp.isnan(s), lambda v: v + jnp.nan, lambda v: v, s)
        return out, t

    return g


# variant -> (trace-time switch, wraps fn as, callback expected in the program;
# None: not checked, reported)
VARIANTS = {
    "on": (contextlib.nullcontext, None, None),
    "off": (checks_compiled_out, None, False),
    "raise": (raise_policy, None, True),
    "callback beside": (checks_compiled_out, "callback", True),
    "callback always": (checks_compiled_out, "callback always", True),
    "cond beside": (checks_compiled_out, "cond", False),
    "select": (checks_as_select, None, False),
}


def _compile(fn, args, variant: str):
    import jax

    switch, wrap, want_cb = VARIANTS[variant]
    if wrap is not None:
        fn = _beside(fn, wrap)
    # jax caches traces per function: clear them so that every variant (and any
    # inner jit) is traced afresh under its own switch setting.
    jax.clear_caches()
    jitted = jax.jit(lambda *a: fn(*a))
    with switch():
        compiled = jitted.lower(*args).compile()
    hlo = compiled.as_text()
    has_cb = "callback" in hlo
    if want_cb is None:
        print(f"  [{variant}: host callback in the program: {has_cb}]", flush=True)
    elif has_cb != want_cb:
        raise RuntimeError(
            f"variant {variant!r}: callback in compiled program: {has_cb}, "
            f"expected {want_cb}; the switch did not work."
        )
    jax.block_until_ready(compiled(*args))  # warm up
    return compiled


def _bootstrap_median_ci(r, reps=4000, seed=0):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(r), (reps, len(r)))
    meds = np.median(np.asarray(r)[idx], axis=1)
    return np.percentile(meds, [2.5, 97.5])


def measure(fn, args, pairs: int, variants=("on", "off")):
    """Interleaved timing; returns {variant: per-call seconds (pairs,)}.

    Each round calls every variant once, in an order reversed every other round
    (ABBA for two variants).
    """
    import jax

    compiled = {v: _compile(fn, args, v) for v in variants}
    t = {v: [] for v in variants}
    for i in range(pairs):
        order = variants if i % 2 == 0 else variants[::-1]
        for v in order:
            f = compiled[v]
            t0 = time.perf_counter()
            jax.block_until_ready(f(*args))
            t[v].append(time.perf_counter() - t0)
    return {v: np.array(x) for v, x in t.items()}


def report(label, t_on, t_off):
    """One line: median per-pair ratio on/off with its CI, times, verdict."""
    ratios = t_on / t_off
    lo, hi = _bootstrap_median_ci(ratios)
    dlo, dhi = 1e3 * _bootstrap_median_ci(t_on - t_off)
    verdict = "met" if hi < 1.05 else ("MISSED" if lo > 1.05 else "unresolved")
    line = (
        f"{label:50s} median on/off {np.median(ratios):.3f} "
        f"[95% CI {lo:.3f}-{hi:.3f}], pairs {len(ratios)}, "
        f"median ms on {1e3 * np.median(t_on):.1f} off {1e3 * np.median(t_off):.1f}"
        f", on-off {1e3 * np.median(t_on - t_off):+.2f} ms [{dlo:+.2f}, {dhi:+.2f}]"
        f" -> <5% {verdict}"
    )
    print(line, flush=True)
    return line


def _run(label, fn, args, pairs, diagnose):
    variants = tuple(VARIANTS) if diagnose else ("on", "off")
    t = measure(fn, args, pairs, variants)
    lines = [report(label, t["on"], t["off"])]
    for v in variants[2:]:
        lines.append(report(f"  {v}", t[v], t["off"]))
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sim", nargs="+", default=["xenon", "lensing"])
    p.add_argument("--pairs", type=int, default=100)
    p.add_argument("--n", type=int, default=1 << 20, help="xenon events per call")
    p.add_argument("--batch", type=int, default=256, help="lensing images per call")
    p.add_argument(
        "--recoil", nargs="+", default=["NR", "ER"], help="xenon recoil types"
    )
    p.add_argument(
        "--scenes",
        nargs="+",
        default=["plain", "subhalos"],
        help="lensing scenes: 'plain' (SIE + shear + Sersic), 'subhalos' (+50 tNFW)",
    )
    p.add_argument(
        "--diagnose",
        action="store_true",
        help="also time the isolating programs (module docstring) vs off",
    )
    a = p.parse_args(argv)
    import os

    import equinox as eqx
    import jax

    print(
        f"jax {jax.__version__}, equinox {eqx.__version__}, pairs {a.pairs}, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    lines = []
    if "xenon" in a.sim:
        for recoil in a.recoil:
            for rep in (False, True):
                fn, args = _xenon_runners(a.n, recoil, rep)
                label = f"xenon {recoil}{' reparam.' if rep else ''} n={a.n}"
                lines += _run(label, fn, args, a.pairs, a.diagnose)
    if "lensing" in a.sim:
        for subs in [s == "subhalos" for s in a.scenes]:
            fn, args = _lensing_runners(a.batch, subs)
            label = f"lensing {'50 subhalos' if subs else 'no subhalos'} b={a.batch}"
            lines += _run(label, fn, args, a.pairs, a.diagnose)
    print(f"load average at the end {os.getloadavg()[0]:.1f}", flush=True)
    return lines


if __name__ == "__main__":
    main()
