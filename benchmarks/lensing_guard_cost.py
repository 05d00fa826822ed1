r"""Time cost of the lensing package's traced parameter checks, in one process.

The scene of ``benchmarks/lensing_throughput.py`` (100 x 100 pixels at 0.05",
supersampling 2, Gaussian PSF FWHM 0.1", SIE + shear + Sersic, with and without 50
tNFW subhalos; every parameter varies across the vmapped batch, float32) is rendered
by two copies of ``jaxdm.simulators.lensing``: the current one and a baseline
(``--base``: the ``lensing`` folder of an older checkout, imported under another
name; its absolute imports of ``jaxdm._checks`` etc. resolve to this checkout, which
is fine as long as those modules did not change). Both are compiled once, then timed
alternately (``--rounds`` pairs, order flipped every round) so that load on a shared
machine hits both alike; the median of the per-round time ratios is reported.

    git worktree add /tmp/base-lensing daf8cfe
    PYTHONPATH=. python benchmarks/lensing_guard_cost.py \\
        --base /tmp/base-lensing/jaxdm/simulators/lensing --batch 128 --rounds 15
"""

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np


def _load_as(name: str, folder: str):
    spec = importlib.util.spec_from_file_location(
        name, Path(folder) / "__init__.py", submodule_search_locations=[folder]
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _make(L, batch: int, with_subs: bool):
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    n_sub = 50
    rng = np.random.default_rng(0)
    m = 10 ** rng.uniform(7, 9, n_sub)
    xy = rng.uniform(-2.0, 2.0, (2, n_sub))
    c = L.concentration_duffy08(m, 0.5)
    tn = L.tnfw_params_from_mass(m, c, 6.0, 0.5, 1.0, x0=xy[0], y0=xy[1])
    tn = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32) * jnp.ones(n_sub), tn)
    cfg = L.ObservationConfig(
        n_pix=100, pixel_scale=0.05, supersampling=2, psf=L.GaussianPSF(fwhm=0.1)
    )

    def params(theta_e, d):
        lens = [
            L.SIEParams(
                theta_e=theta_e, q=0.75 + 5 * d, phi=0.4 + 10 * d, x0=0.02 + d,
                y0=-0.03 - d,
            ),
            L.ShearParams(gamma1=0.03 + d, gamma2=-0.02 - d),
        ]  # fmt: skip
        if with_subs:
            prof = eqx.tree_at(
                lambda t: (t.x0, t.y0), tn, (tn.x0 + 10 * d, tn.y0 - 10 * d)
            )
            lens.append(L.SubhaloPopulation(profile=prof, mask=jnp.ones(n_sub)))
        src = L.SersicParams(
            amplitude=20.0 * (1 + d), r_e=0.25 * (1 + d), n=4.0 + d, q=0.7 - 5 * d,
            phi=-0.5 + 10 * d, x0=0.06 + d, y0=0.08 - d,
        )  # fmt: skip
        return L.LensingParams(lens=tuple(lens), source=(src,))

    thetas = jnp.asarray(1.2 + 0.01 * np.arange(batch) / batch, jnp.float32)
    dq = jnp.asarray(1e-3 * np.arange(batch) / batch, jnp.float32)
    b = jax.vmap(params)(thetas, dq)
    f = jax.jit(jax.vmap(lambda p: L.expected_image(p, cfg)))
    f(b).block_until_ready()
    return f, b


def main(args):
    import jax

    from jaxdm.simulators import lensing as new

    base = _load_as("lensing_base", args.base)
    print(f"jax {jax.__version__}, batch {args.batch}, rounds {args.rounds}")
    for with_subs in (False, True):
        fb, bb = _make(base, args.batch, with_subs)
        fn, bn = _make(new, args.batch, with_subs)
        diff = float(np.max(np.abs(np.asarray(fb(bb)) - np.asarray(fn(bn)))))
        ratios, tb, tn = [], [], []
        for r in range(args.rounds):
            order = [("b", fb, bb), ("n", fn, bn)]
            if r % 2:
                order.reverse()
            t = {}
            for tag, f, b in order:
                t0 = time.perf_counter()
                f(b).block_until_ready()
                t[tag] = time.perf_counter() - t0
            ratios.append(t["n"] / t["b"])
            tb.append(t["b"])
            tn.append(t["n"])
        label = "50 tNFW subhalos" if with_subs else "no subhalos"
        q = np.percentile(ratios, [25, 50, 75])
        print(
            f"[{label}] median time new/base {q[1]:.3f} (IQR {q[0]:.3f}-{q[2]:.3f}); "
            f"median {args.batch / np.median(tb):.1f} vs "
            f"{args.batch / np.median(tn):.1f} img/s (base, new); "
            f"max |image diff| {diff:.2e}"
        )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--base", required=True, help="baseline lensing package folder")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--rounds", type=int, default=15)
    main(p.parse_args())
