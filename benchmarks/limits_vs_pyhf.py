"""Limits and toys: jaxdm.stats (one vmapped jit call) vs pyhf (numpy and jax backends).

The same binned model in both: ``--n-bins`` bins, a falling background with one
Gaussian-constrained normalisation nuisance (10%; pyhf ``histosys``, linear
interpolation), and ``--n-hyp`` signal templates (Gaussian bumps of varying position
and width, standing in for 15 operators x 24 masses). Timed:

1. ``--n-hyp`` asymptotic hypothesis tests (q~_mu at mu = 1: observed CLs and the five
   expected CLs), jaxdm as one ``jit(vmap)`` call, pyhf ``infer.hypotest`` in a loop;
2. ``--n-hyp`` asymptotic CLs upper limits (observed + 5 expected), jaxdm by bisection
   in one ``jit(vmap)`` call, pyhf ``toms748_scan`` on ``--pyhf-limits`` of them
   (time extrapolated per limit);
3. ``--n-toys`` toys of one hypothesis (s+b and b-only each, toy CLs), jaxdm
   ``toy_hypotest``, pyhf's ``ToyCalculator`` (test statistic, both toy
   distributions, observed p-values) with ``--pyhf-toys`` toys (time extrapolated
   linearly: pyhf fits its toys one by one).

Agreement: every CLs of item 1 and every limit of item 2 that pyhf computed, relative
difference. Rounds are interleaved (jaxdm, pyhf-numpy, pyhf-jax) and medians reported.
Both tools run in float64. ``PYTHONPATH=. python benchmarks/limits_vs_pyhf.py``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jaxdm import stats  # noqa: E402

SIGMA = 0.1


def templates(n_bins, n_hyp, seed):
    """Background (n_bins,), signals (n_hyp, n_bins) and observed counts."""
    x = (np.arange(n_bins) + 0.5) / n_bins
    bkg = 200.0 * np.exp(-3.0 * x) + 5.0
    rng = np.random.default_rng(seed)
    pos = np.linspace(0.05, 0.95, n_hyp)
    width = 0.04 + 0.1 * rng.random(n_hyp)
    sig = np.exp(-0.5 * ((x[None] - pos[:, None]) / width[:, None]) ** 2)
    sig = 15.0 * sig / sig.sum(axis=1, keepdims=True)
    obs = rng.poisson(bkg).astype(float)
    return bkg, sig, obs


def pyhf_model(pyhf, sig, bkg):
    """The pyhf model with the jaxdm nuisance (histosys code 0: 1 + sigma t)."""
    spec = {
        "channels": [
            {
                "name": "c",
                "samples": [
                    {
                        "name": "sig",
                        "data": list(map(float, sig)),
                        "modifiers": [
                            {"name": "mu", "type": "normfactor", "data": None}
                        ],
                    },
                    {
                        "name": "bkg",
                        "data": list(map(float, bkg)),
                        "modifiers": [
                            {
                                "name": "u",
                                "type": "histosys",
                                "data": {
                                    "hi_data": list(map(float, bkg * (1 + SIGMA))),
                                    "lo_data": list(map(float, bkg * (1 - SIGMA))),
                                },
                            }
                        ],
                    },
                ],
            }
        ],
        "parameters": [{"name": "mu", "bounds": [[0.0, 50.0]]}],
    }
    return pyhf.Model(spec, modifier_settings={"histosys": {"interpcode": "code0"}})


def main():
    """Run the benchmark and print a markdown summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-bins", type=int, default=20)
    ap.add_argument("--n-hyp", type=int, default=360)
    ap.add_argument("--n-toys", type=int, default=10_000)
    ap.add_argument("--pyhf-limits", type=int, default=24)
    ap.add_argument("--pyhf-toys", type=int, default=300)
    ap.add_argument("--pyhf-hyp", type=int, default=360)
    ap.add_argument(
        "--pyhf-jax-hyp",
        type=int,
        default=24,
        help="hypotests with pyhf's jax backend (it compiles for each new model)",
    )
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--backends", default="numpy,jax")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    import pyhf

    bkg, sig, obs = templates(args.n_bins, args.n_hyp, args.seed)
    base = stats.binned_model(sig[0], bkg, background_sigma=SIGMA)
    data = stats.BinnedData(jnp.asarray(obs), base.nominal_aux())
    sigs = jnp.asarray(sig)

    def with_signal(s):
        return eqx_tree_at(base, s)

    hyp = jax.jit(jax.vmap(lambda s: stats.hypotest(1.0, with_signal(s), data)))
    lim = jax.jit(jax.vmap(lambda s: stats.upper_limit(with_signal(s), data)))

    # Toys at the median expected limit of the first template (a hypothesis near
    # the exclusion boundary, where toy CLs matters).
    mu_toys = float(stats.upper_limit(base, data).expected[2])

    def toys(key):
        return stats.toy_hypotest(key, mu_toys, base, data, n_toys=args.n_toys)

    timings = {k: [] for k in ("hyp", "lim", "toys")}
    compile_s = {}
    for name, fn, arg in (
        ("hyp", hyp, sigs),
        ("lim", lim, sigs),
        ("toys", toys, jax.random.key(0)),
    ):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(arg))
        compile_s[name] = time.perf_counter() - t0
    backends = [b for b in args.backends.split(",") if b]
    ref = {b: {k: [] for k in ("hyp", "lim", "toys")} for b in backends}
    models = [pyhf_model(pyhf, s, bkg) for s in sig]
    n_lim = min(args.pyhf_limits, args.n_hyp)
    n_hyp_p = min(args.pyhf_hyp, args.n_hyp)
    idx_lim = np.linspace(0, args.n_hyp - 1, n_lim).astype(int)
    pyhf_cls = {}
    pyhf_lims = {}
    failed = {}
    for r in range(args.rounds):
        t0 = time.perf_counter()
        h = jax.block_until_ready(hyp(sigs))
        timings["hyp"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        L = jax.block_until_ready(lim(sigs))
        timings["lim"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        tt = jax.block_until_ready(toys(jax.random.key(r + 1)))
        timings["toys"].append(time.perf_counter() - t0)
        for b in backends:
            if b == "numpy":
                pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())
            else:
                pyhf.set_backend("jax", pyhf.optimize.scipy_optimizer())
            d_p = [list(obs) + m.config.auxdata for m in models]
            if r == 0:  # warm-up (jax backend compiles)
                pyhf.infer.hypotest(1.0, d_p[0], models[0], test_stat="qtilde")
            n_b = n_hyp_p if b == "numpy" else min(n_hyp_p, args.pyhf_jax_hyp)
            t0 = time.perf_counter()
            cl = [
                pyhf.infer.hypotest(
                    1.0, d_p[i], models[i], test_stat="qtilde", return_expected_set=True
                )
                for i in range(n_b)
            ]
            ref[b]["hyp"].append((time.perf_counter() - t0) / n_b)
            pyhf_cls[b] = np.array(
                [[float(c[0])] + [float(e) for e in c[1]] for c in cl]
            )
            try:
                t0 = time.perf_counter()
                ls = []
                for i in idx_lim:
                    o, e = pyhf.infer.intervals.upper_limits.toms748_scan(
                        d_p[i], models[i], 0.01, 20.0, rtol=1e-6, test_stat="qtilde"
                    )
                    ls.append([float(o)] + [float(x) for x in e])
                ref[b]["lim"].append((time.perf_counter() - t0) / n_lim)
                pyhf_lims[b] = np.array(ls)
            except TypeError as err:  # pyhf 0.7.6 + jax: unhashable array in a cache
                failed[b] = f"toms748_scan failed: {err}"
                ref[b]["lim"].append(np.nan)
            t0 = time.perf_counter()
            # pyhf 0.7.6's hypotest always computes toy expected p-values with
            # np.percentile(interpolation=...), removed in NumPy 2.4: call the toy
            # calculator's observed path (all the fitting) directly instead.
            calc = pyhf.infer.utils.create_calculator(
                "toybased",
                d_p[0],
                models[0],
                ntoys=args.pyhf_toys,
                test_stat="qtilde",
                track_progress=False,
            )
            q_obs = calc.teststatistic(mu_toys)
            dist_sb, dist_b = calc.distributions(mu_toys)
            calc.pvalues(q_obs, dist_sb, dist_b)
            ref[b]["toys"].append((time.perf_counter() - t0) / args.pyhf_toys)
        print(f"round {r + 1}/{args.rounds} done", flush=True)
    p_sb, p_b, p_s = (float(x) for x in calc.pvalues(q_obs, dist_sb, dist_b))
    print(
        f"toys at mu = {mu_toys:.4f}: pyhf CLs+b {p_sb:.4f} CLb {p_b:.4f} CLs {p_s:.4f}"
    )

    ours_cls = np.concatenate(
        [np.asarray(h.observed.cls)[:, None], np.asarray(h.expected.cls)], axis=1
    )
    ours_lims = np.concatenate(
        [np.asarray(L.observed)[:, None], np.asarray(L.expected)], axis=1
    )
    print(f"\njax {jax.__version__}, pyhf {pyhf.__version__}, float64")
    print(f"model: {args.n_bins} bins, 1 constrained nuisance, {args.n_hyp} signals")
    print(f"jaxdm compile (s): {compile_s}")
    print(
        f"jaxdm converged: {bool(np.all(L.converged))}, toy CLs+b {float(tt.clsb):.4f} "
        f"CLb {float(tt.clb):.4f} CLs {float(tt.cls):.4f} +- {float(tt.cls_error):.4f}"
    )
    med = {k: float(np.median(v)) for k, v in timings.items()}
    per = {
        "hyp": med["hyp"] / args.n_hyp,
        "lim": med["lim"] / args.n_hyp,
        "toys": med["toys"] / args.n_toys,
    }
    label = {
        "hyp": f"{args.n_hyp} asymptotic hypotests",
        "lim": f"{args.n_hyp} CLs upper limits (obs + 5 expected)",
        "toys": f"{args.n_toys} toys of one hypothesis",
    }
    scale = {"hyp": args.n_hyp, "lim": args.n_hyp, "toys": args.n_toys}
    print(
        "\n| task | jaxdm (s) | "
        + " | ".join(f"pyhf-{b} (s)" for b in backends)
        + " | "
        + " | ".join(f"ratio vs {b}" for b in backends)
        + " |"
    )
    print("|---|---|" + "---|" * (2 * len(backends)))
    for k in ("hyp", "lim", "toys"):
        cells = [f"{np.median(ref[b][k]) * scale[k]:.2f}" for b in backends]
        ratios = [f"{np.median(ref[b][k]) / per[k]:.0f}x" for b in backends]
        print(
            f"| {label[k]} | {med[k]:.3f} | "
            + " | ".join(cells)
            + " | "
            + " | ".join(ratios)
            + " |"
        )
    for b in backends:
        n_b = len(pyhf_cls[b])
        rel_cls = np.abs(ours_cls[:n_b] / pyhf_cls[b] - 1)
        print(f"max |rel diff| vs pyhf-{b}: CLs {rel_cls.max():.2e} ({n_b} x 6)")
        if b in pyhf_lims:
            rel_lim = np.abs(ours_lims[idx_lim] / pyhf_lims[b] - 1)
            print(f"  limits {rel_lim.max():.2e} ({n_lim} x 6)")
        if b in failed:
            print(f"  pyhf-{b}: {failed[b]}")
    print(
        "(pyhf times for limits and toys are extrapolated from "
        f"{n_lim} limits and {args.pyhf_toys} toys per hypothesis)"
    )


def eqx_tree_at(model, s):
    """The model with its signal template replaced (a pytree surgery)."""
    import equinox as eqx

    return eqx.tree_at(lambda m: m.signal, model, s)


if __name__ == "__main__":
    main()
