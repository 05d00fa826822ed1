r"""Cost of the traced checks of the xenon raw renderers (issue #12, poison policy).

The record and the waveform parameters are *traced arguments* of the compiled
program (as when rendering a training set over detector parameters), so every value
check is in the program. Variants, compiled in one process and timed in interleaved
rounds (order reversed every other round):

- "poison": the public function as shipped (xenon poison policy: the conditions
  gate the outputs through ``jnp.where``; no host callback, asserted);
- "raise": the same checks under the raise policy (traced while
  ``jaxdm._poison.record`` refuses every condition, so each guard attaches
  ``equinox.error_if``; callbacks asserted present): the cost before this change;
- "off": the shipped function traced while ``jaxdm._poison.record`` accepts and
  drops every condition, so no output is gated and the predicates are dead code.

Reported per program: median per-round ratios poison/off and raise/off, and the
median times. ``--n`` events per call (LZ-like single scatters, LZ-like PMT arrays
for the patterns; the small default waveform layout of the anomaly experiment).

    PYTHONPATH=. python benchmarks/xenon_raw_guard_cost.py --n 256 --rounds 30
"""

from __future__ import annotations

import argparse
import contextlib
import time

import jax
import numpy as np

from jaxdm import _poison
from jaxdm.simulators import xenon

CFG = xenon.WaveformConfig(
    dt=50.0, s1_samples=40, s2_samples=1000, spe_taps=2, max_s2_electrons=2048
)


@contextlib.contextmanager
def _record_returns(value):
    """Within the block, ``_poison.record`` takes (True) or refuses (False) all."""
    saved = _poison.record
    _poison.record = lambda bad: value
    try:
        yield
    finally:
        _poison.record = saved


VARIANTS = {
    "poison": contextlib.nullcontext,
    "raise": lambda: _record_returns(False),
    "off": lambda: _record_returns(True),
}


def _compile(fn, args, variant):
    jax.clear_caches()
    jitted = jax.jit(fn)
    with VARIANTS[variant]():
        compiled = jitted.lower(*args).compile()
    has_cb = "callback" in compiled.as_text()
    if has_cb != (variant == "raise"):
        raise RuntimeError(f"{variant}: host callback in the program: {has_cb}")
    jax.block_until_ready(compiled(*args))
    return compiled


def measure(label, fn, args, rounds):
    compiled = {v: _compile(fn, args, v) for v in VARIANTS}
    names = tuple(VARIANTS)
    t = {v: [] for v in names}
    for i in range(rounds):
        for v in names if i % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            jax.block_until_ready(compiled[v](*args))
            t[v].append(time.perf_counter() - t0)
    t = {v: np.array(x) for v, x in t.items()}
    line = (
        f"{label:24s} poison/off {np.median(t['poison'] / t['off']):.3f}  "
        f"raise/off {np.median(t['raise'] / t['off']):.3f}  median ms: "
        + ", ".join(f"{v} {1e3 * np.median(x):.1f}" for v, x in t.items())
    )
    print(line, flush=True)
    return line


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--rounds", type=int, default=30)
    a = p.parse_args(argv)
    det = xenon.lz_like()
    spec = xenon.flat_er_spectrum(1.0, e_min=2.0, e_max=20.0)
    ev = xenon.simulate_events(jax.random.key(0), spec, det, a.n)
    ev = jax.tree.map(lambda v: v[np.asarray(ev.r) < 72.0], ev)
    rec = xenon.interactions_from_events(ev, n_sites=2)
    params = xenon.WaveformParams(det)
    pmts = xenon.lz_like_pmts()
    key = jax.random.key(1)
    print(f"jax {jax.__version__}, {int(rec.label.shape[0])} events per call")

    def waveform(k, r, p):
        return xenon.simulate_waveform(k, r, p, CFG)

    def hits(k, r, p, m):
        return xenon.simulate_hit_patterns(k, r, p, m)

    def raw(k, r, p, m):
        return xenon.simulate_raw_events(k, r, p, m, config=CFG)

    measure("simulate_waveform", waveform, (key, rec, params), a.rounds)
    measure("simulate_hit_patterns", hits, (key, rec, params, pmts), a.rounds)
    measure("simulate_raw_events", raw, (key, rec, params, pmts), a.rounds)


if __name__ == "__main__":
    main()
