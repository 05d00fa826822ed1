"""WIMP numpyro models: finite log densities and gradients; slow NUTS coverage."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.util import log_density

from jaxdm.fits import (
    DEFAULT_WIMP_PRIORS,
    FitDiagnosticsWarning,
    nuisance_bounds,
    run_nuts,
    wimp_binned_model,
    wimp_model_params,
    wimp_unbinned_model,
)
from jaxdm.simulators import xenon

DET = xenon.lz_like()
BINS = (jnp.linspace(2.0, 80.0, 7), jnp.linspace(2.5, 4.5, 7))
TRUTH = {
    "log10_mass": float(np.log10(50.0)), "log10_sigma": -46.0, "er_rate": 0.5,
    "b8_scale": 1.0, "neutron_rate": 0.01, "g1": float(DET.g1), "g2_scale": 1.0,
    "electron_lifetime": float(DET.electron_lifetime),
    "drift_field": float(DET.drift_field),
}  # fmt: skip
KW = {"detector": DET, "bins": BINS, "exposure": 5.0, "n_grid": 32}


def expected(truth=TRUTH):
    m, d = wimp_model_params(truth, DET, 5.0, n_grid=32)
    return xenon.expected_histogram(m, d, BINS, n_depth=2, n_gl=3)


def test_binned_log_density_is_poisson_and_differentiable():
    mu = expected()
    counts = jax.random.poisson(jax.random.key(0), mu).astype(jnp.float32)
    data = {"counts": counts, **KW}

    @jax.jit
    def ll(params):
        return log_density(wimp_binned_model, (), data, params)[0]

    ld = ll(TRUTH)
    # log density = Poisson log-likelihood + log priors: check the likelihood part
    from scipy import stats

    pois = stats.poisson.logpmf(np.asarray(counts), np.asarray(mu)).sum()
    tr_prior = ld - pois
    assert np.isfinite(float(tr_prior))
    g = jax.jit(jax.grad(ll))(TRUTH)
    assert all(np.isfinite(float(v)) for v in g.values())
    assert float(g["log10_sigma"]) != 0.0
    assert float(g["log10_mass"]) != 0.0
    # A non-finite or out-of-support point (what an overflowing leapfrog step can
    # reach) has log density -inf inside jit (a divergence for NUTS), no raise;
    # eagerly it is a ValueError naming the parameter.
    for name, value in (("g1", np.nan), ("g1", 0.9), ("er_rate", -1.0),
                        ("drift_field", np.inf), ("log10_sigma", -50.0)):  # fmt: skip
        assert float(ll({**TRUTH, name: value})) == -np.inf, name
    with pytest.raises(ValueError, match="`g1` = 0.9 is outside its prior support"):
        log_density(wimp_binned_model, (), data, {**TRUTH, "g1": 0.9})


def test_wimp_spectrum_is_valid_over_the_whole_mass_prior():
    # Near the kinematic endpoint the SHM eta's closed form cancels to ~1e-9; in
    # float32 it went negative (e.g. m = 10**1.0045 GeV), the spectrum's rate >= 0
    # check raised and NUTS chains crashed. Scan the prior's log10 mass range.
    e = jnp.linspace(1.0, 50.0, 32)
    lms = jnp.linspace(*DEFAULT_WIMP_PRIORS["log10_mass"], 4001)
    r = np.asarray(
        jax.jit(jax.vmap(lambda m: xenon.wimp_si_rate(e, 10.0**m, 1e-45)))(lms)
    )
    assert np.isfinite(r).all()
    assert r.min() >= 0.0
    wimp_model_params({**TRUTH, "log10_mass": 1.0045}, DET, 5.0, n_grid=32)


def test_nuisance_supports_keep_the_detector_valid():
    b = nuisance_bounds(DET)
    assert set(b) == {"g1", "g2_scale", "electron_lifetime", "drift_field"}
    for _nominal, sd, lo, hi in b.values():
        assert 0 < lo < hi
        assert sd > 0
    assert b["g1"][3] < 1.0
    with pytest.raises(ValueError, match="detector.g1"):
        nuisance_bounds(eqx.tree_at(lambda d: d.g1, DET, 1.0))


@pytest.mark.slow
def test_unbinned_model_runs_and_grad_is_finite():
    events = jnp.asarray([[10.0, 3.2], [30.0, 3.6], [5.0, 3.0]])
    data = {"events": events, "detector": DET, "exposure": 5.0, "n_grid": 32,
            "region": ((2.0, 80.0), (2.5, 4.5))}  # fmt: skip
    g = jax.jit(jax.grad(lambda p: log_density(wimp_unbinned_model, (), data, p)[0]))(
        TRUTH
    )
    assert all(np.isfinite(float(v)) for v in g.values())


@pytest.mark.slow
def test_nuts_wimp_fit_covers_injected_mass_and_cross_section():
    # Coverage: 5 fixed-key pseudo-experiments at the nominal rate (~117 WIMP + ~34
    # background events, free g1/g2/lifetime/field nuisances); the injected log10
    # mass and log10 sigma must each lie in their central 95% credible interval in
    # >= 4 of 5. Binomial tolerance: with true 95% coverage, P(<= 3 of 5) = 2.3%;
    # an interval with 60% coverage passes with P(>= 4 of 5) = 34%.
    # Two chains: the split R-hat of one chain is undefined (NaN), which run_nuts
    # reports as a failed diagnostic. Before the bounded-support guard of
    # `_sample_params`, a chain could reach a non-finite point and the xenon `rate`
    # guard raised inside the sampler.
    # A fit may warn about its ESS (the mass is poorly constrained above ~50 GeV:
    # 400 draws gave a bulk ESS of 18 once); the warnings are collected and shown
    # with a failure, the coverage is what is asserted.
    mu = expected()
    hits = {"log10_mass": 0, "log10_sigma": 0}
    problems = []
    for i in range(5):
        counts = jax.random.poisson(jax.random.key(100 + i), mu).astype(jnp.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitDiagnosticsWarning)
            res = run_nuts(jax.random.key(i), wimp_binned_model,
                           {"counts": counts, **KW}, num_warmup=200,
                           num_samples=200, num_chains=2, progress_bar=False,
                           min_ess=20, rhat_threshold=1.1)  # fmt: skip
        problems.append(res.problems)
        for k in hits:
            lo, hi = np.quantile(res.samples[k], [0.025, 0.975])
            hits[k] += int(lo <= TRUTH[k] <= hi)
    assert min(hits.values()) >= 4, (hits, problems)


@pytest.mark.slow
def test_unbinned_asimov_fit_recovers_injected_parameters():
    """Bias check of the extended unbinned likelihood: an Asimov-like sample (events
    at the centres of 78 x 80 cells of the region, weighted by expected_histogram's
    counts, ~1,600 events at 50 t yr) is fitted by maximum likelihood in log10
    mass, log10 sigma and the ER rate (L-BFGS-B). The truth is recovered within
    0.003 dex and 1 % (measured 0.0005 dex, 0.0004 dex, 0.3 %). The former density
    (Gaussian in log10 cS2, independent S1/S2 acceptances, not normalised to mu)
    gave +0.013 dex in mass and -3.6 % in the ER rate on the same sample."""
    import scipy.optimize
    from jax.scipy.special import logsumexp

    from jaxdm.fits import event_log_density

    expo, region = 50.0, ((2.0, 80.0), (2.5, 4.5))
    xe, ye = np.linspace(2.0, 80.0, 79), np.linspace(2.5, 4.5, 81)
    m, d = wimp_model_params(TRUTH, DET, expo, n_grid=32)
    w = np.asarray(
        xenon.expected_histogram(m, d, tuple(map(jnp.asarray, (xe, ye))), n_depth=2)
    ).ravel()
    gx, gy = np.meshgrid(0.5 * (xe[1:] + xe[:-1]), 0.5 * (ye[1:] + ye[:-1]),
                         indexing="ij")  # fmt: skip
    keep = w > 1e-6
    ev = jnp.asarray(np.stack([gx.ravel(), gy.ravel()], 1)[keep])
    w = jnp.asarray(w[keep])
    names = ("log10_mass", "log10_sigma", "er_rate")

    @jax.jit
    @jax.value_and_grad
    def nll(p):
        vals = {**TRUTH, **{k: p[i] for i, k in enumerate(names)}}
        m, d = wimp_model_params(vals, DET, expo, n_grid=32)
        lr, mu = event_log_density(ev, m, d, region, n_depth=2)
        return -(jnp.sum(w * logsumexp(lr, axis=0)) - jnp.sum(mu))

    res = scipy.optimize.minimize(
        lambda p: tuple(np.asarray(a, float) for a in nll(jnp.asarray(p, "float32"))),
        np.array([1.9, -45.9, 0.45]),
        jac=True,
        method="L-BFGS-B",
        bounds=[(1.0, 3.0), (-48.0, -44.0), (0.01, 2.0)],
    )
    assert abs(res.x[0] - TRUTH["log10_mass"]) < 3e-3, res
    assert abs(res.x[1] - TRUTH["log10_sigma"]) < 3e-3, res
    assert abs(res.x[2] / TRUTH["er_rate"] - 1) < 0.01, res


def test_unbinned_log_density_is_the_extended_likelihood():
    """The unbinned model's log density minus its log prior is
    ``sum_i log sum_s mu_s f_s(x_i) - sum_s mu_s`` from event_log_density."""
    from jax.scipy.special import logsumexp
    from numpyro.infer.util import log_density as ld

    from jaxdm.fits import event_log_density

    region = ((2.0, 80.0), (2.5, 4.5))
    events = jnp.asarray([[10.0, 3.6], [30.0, 3.9], [5.0, 3.0]])
    data = {"events": events, "detector": DET, "exposure": 5.0, "n_grid": 8,
            "region": region, "fix_nuisances": True}  # fmt: skip
    vals = {k: TRUTH[k] for k in DEFAULT_WIMP_PRIORS}
    tot, tr = ld(wimp_unbinned_model, (), data, vals)
    prior = sum(
        float(site["fn"].log_prob(site["value"]))
        for site in tr.values()
        if site["type"] == "sample" and not site["is_observed"]
    )
    m, d = wimp_model_params(vals, DET, 5.0, n_grid=8)
    lr, mu = event_log_density(events, m, d, region, n_depth=2)
    want = float(jnp.sum(logsumexp(lr, axis=0)) - jnp.sum(mu))
    np.testing.assert_allclose(float(tot) - prior, want, rtol=1e-5)
