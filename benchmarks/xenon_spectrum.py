"""WIMP spectrum: one vmapped jit call (closed-form eta) vs wimprates (scipy quad).

jaxdm evaluates dR/dE on n_energies x n_masses points in a single ``jit(vmap)`` call;
wimprates (https://github.com/JelleAalbers/wimprates) integrates the velocity
distribution numerically with ``scipy.integrate.quad`` for every energy. Both use the
same physics: SI, Helm form factor, standard halo model v0 = 238, v_esc = 544 km/s,
rho0 = 0.3 GeV/cm^3, wimprates' annual-average Earth speed, mean atomic weight
A = 131.293 and nucleon mass 1 u (wimprates' conventions, set in jaxdm by arguments).

wimprates 0.5.0 multiplies its speed distribution by k = erf(z) - 2z exp(-z^2)/sqrt(pi)
where Lewin & Smith divide by it (its f(v) integrates to k^2 = 0.970); agreement is
therefore reported both raw and against wimprates / k^2.

wimprates is too slow for the full grid, so it is timed on a random subset of grid
points and its cost extrapolated per evaluation. Needs the benchmark venv:
``/work/bench-xenon/bin/python benchmarks/xenon_spectrum.py``.
"""

import argparse
import math
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from jaxdm.constants import AMU_GEV
from jaxdm.simulators.xenon import spectra as S


def main():
    """Run the comparison and print a summary (markdown-ready)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-energies", type=int, default=10_000)
    ap.add_argument("--n-masses", type=int, default=100)
    ap.add_argument("--n-ref", type=int, default=300, help="wimprates evaluations")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--x64", action="store_true", help="run jaxdm in float64")
    args = ap.parse_args()
    if args.x64:
        jax.config.update("jax_enable_x64", True)

    warnings.simplefilter("ignore")
    import numericalunits as nu
    import wimprates as wr

    v_earth = float(wr.v_earth() / (nu.km / nu.s))
    halo = S.HaloModel(rho0=0.3, v0=238.0, v_esc=544.0, v_earth=v_earth)
    target = S.Target(
        A=np.array([131.293]), Z=np.asarray(54.0), abundance=np.array([1.0])
    )
    energies = np.linspace(0.5, 100.0, args.n_energies)
    masses = np.geomspace(10.0, 1000.0, args.n_masses)
    sigma = 1e-45

    @jax.jit
    def grid(e, m):
        return jax.vmap(
            lambda mi: S.wimp_si_rate(
                e, mi, sigma, halo=halo, target=target, nucleon_mass_gev=AMU_GEV
            )
        )(m)

    e_j, m_j = jnp.asarray(energies), jnp.asarray(masses)
    t0 = time.perf_counter()
    out = grid(e_j, m_j).block_until_ready()
    t_compile = time.perf_counter() - t0
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        out = grid(e_j, m_j).block_until_ready()
        times.append(time.perf_counter() - t0)
    t_jax = float(np.median(times))
    n_eval = args.n_energies * args.n_masses
    out = np.asarray(out)

    # Natural xenon (9 isotopes) for reference.
    @jax.jit
    def grid_nat(e, m):
        return jax.vmap(lambda mi: S.wimp_si_rate(e, mi, sigma))(m)

    grid_nat(e_j, m_j).block_until_ready()
    t_nat = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        grid_nat(e_j, m_j).block_until_ready()
        t_nat.append(time.perf_counter() - t0)

    # wimprates on a random subset of the same grid points, in the same process.
    rng = np.random.default_rng(args.seed)
    ie = rng.integers(0, args.n_energies, args.n_ref)
    im = rng.integers(0, args.n_masses, args.n_ref)
    ref = np.empty(args.n_ref)
    t0 = time.perf_counter()
    for k in range(args.n_ref):
        ref[k] = wr.rate_wimp_std(energies[ie[k]], masses[im[k]], sigma)
    t_ref = (time.perf_counter() - t0) / args.n_ref

    z = 544.0 / 238.0
    kk = math.erf(z) - 2 * z * math.exp(-(z**2)) / math.sqrt(math.pi)
    ours = out[im, ie]
    # Compare where the rate is not in its last decades before the kinematic endpoint
    # (both -> 0 there and relative differences are meaningless): rate > 1e-6 of the
    # rate at the lowest energy for that mass.
    keep = ref > 1e-6 * out[im, 0]
    raw = np.abs(ours[keep] / ref[keep] - 1)
    corr = np.abs(ours[keep] / (ref[keep] / kk**2) - 1)
    zero_ok = np.all(ours[ref == 0] < 1e-6 * out[im[ref == 0], 0])

    print(f"jax {jax.__version__}, wimprates {wr.__version__}, dtype {out.dtype}")
    print(f"grid {args.n_energies} energies x {args.n_masses} masses = {n_eval:.3g}")
    print(
        f"jaxdm compile {t_compile:.2f} s; one call {t_jax * 1e3:.2f} ms (median of "
        f"{args.reps}) = {t_jax / n_eval * 1e9:.2f} ns/eval"
    )
    print(f"jaxdm natural Xe (9 isotopes): {np.median(t_nat) * 1e3:.2f} ms/call")
    print(
        f"wimprates: {t_ref * 1e3:.3f} ms/eval over {args.n_ref} subset evals -> "
        f"full grid extrapolated {t_ref * n_eval:.0f} s"
    )
    print(f"speed-up per evaluation: {t_ref / (t_jax / n_eval):.3g}x (target >= 1e3)")
    print(
        f"compared points: {keep.sum()} of {args.n_ref} (ref == 0: "
        f"{(ref == 0).sum()}, ours there ~0: {zero_ok})"
    )
    print(
        f"max rel. diff raw: {raw.max():.4g} (median {np.median(raw):.4g}); vs "
        f"wimprates/k^2 (k^2 = {kk**2:.6f}): max {corr.max():.3g}, median "
        f"{np.median(corr):.3g} (target <= 1e-3)"
    )


if __name__ == "__main__":
    main()
