"""Cost of the gamma simulator's traced value checks: guards on vs off, same process.

``simulate`` under ``jit(vmap)`` with the parameters passed as (traced) arguments, so
the checks run inside the compiled program. "Off" patches ``jaxdm._checks._guard``
(and its import in ``point_sources``) to the identity before tracing the second
function; calls alternate on/off and the medians are compared. Maps as in
``gamma_throughput.py`` (5 bins, up to 1000 sources, batch 8).

Run: PYTHONPATH=. python benchmarks/gamma_guard_cost.py [pairs]
"""

import json
import sys
import time

import jax
import numpy as np

import jaxdm._checks as checks
from jaxdm.simulators import gamma as g
from jaxdm.simulators.gamma import point_sources as ps


def _compiled(cfg, guards):
    checks._guard = _ORIG if guards else (lambda x, bad, msg: x)
    ps._guard = checks._guard
    try:
        f = jax.jit(
            jax.vmap(lambda k, q: g.simulate(k, q, cfg).counts, in_axes=(0, None))
        )
        f(jax.random.split(jax.random.key(0), 8), g.GammaParams()).block_until_ready()
    finally:
        checks._guard = ps._guard = _ORIG
    return f


_ORIG = checks._guard


def main():
    """Print median seconds per batch of 8 maps with and without the checks."""
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    edges = tuple(float(e) for e in np.geomspace(2.0, 20.0, 6))
    common = dict(energy_edges=edges, max_sources=1000)
    res = {}
    for name, cfg in [
        ("cartesian 128x128", g.GammaConfig(geometry="cartesian", npix=128, **common)),
        ("healpix nside128", g.GammaConfig(nside=128, **common)),
    ]:
        p = g.GammaParams()
        fs = {"on": _compiled(cfg, True), "off": _compiled(cfg, False)}
        ts = {"on": [], "off": []}
        for i in range(pairs):
            for mode in ("on", "off") if i % 2 == 0 else ("off", "on"):
                ks = jax.random.split(jax.random.key(i + 1), 8)
                t = time.perf_counter()
                fs[mode](ks, p).block_until_ready()
                ts[mode].append(time.perf_counter() - t)
        on, off = np.median(ts["on"]), np.median(ts["off"])
        pair = np.median(np.array(ts["on"]) / np.array(ts["off"]))
        res[name] = dict(
            on_s=round(float(on), 4),
            off_s=round(float(off), 4),
            ratio_of_medians=round(float(on / off), 4),
            median_pair_ratio=round(float(pair), 4),
        )
    print(json.dumps(res))


if __name__ == "__main__":
    main()
