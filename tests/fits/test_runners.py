"""Runners: ArviZ round-trip, diagnostics that fail loudly, SVI."""

import jax
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

from jaxdm.fits import FitDiagnosticsWarning, diagnose, run_nuts, run_svi


def normal_model(y, sigma=1.0):
    mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
    tau = numpyro.sample("tau", dist.HalfNormal(5.0))
    with numpyro.plate("obs", y.shape[0]):
        numpyro.sample("y", dist.Normal(mu, sigma * tau), obs=y)


Y = jax.random.normal(jax.random.key(3), (40,)) * 2.0 + 1.5


def test_nuts_summary_holds_every_parameter_and_recovers_truth():
    res = run_nuts(
        jax.random.key(0),
        normal_model,
        {"y": Y},
        num_warmup=300,
        num_samples=400,
        rhat_threshold=1.03,
        progress_bar=False,
        posterior_predictive=True,
    )
    assert set(res.summary.index) == {"mu", "tau"}
    assert set(res.idata.posterior.data_vars) == {"mu", "tau"}
    assert "posterior_predictive" in res.idata.children
    assert res.idata.posterior_predictive["y"].shape == (2, 400, 40)
    assert res.ok
    assert res.num_divergences == 0
    assert res.max_rhat < 1.03
    # conjugate-ish check: posterior mean of mu near the sample mean (sd 2/sqrt(40))
    mu = float(res.summary.loc["mu", "mean"])
    assert abs(mu - float(Y.mean())) < 0.1


def test_nuts_failed_diagnostics_warn_and_flag():
    # 30 draws cannot reach a bulk ESS of 1e6: the runner must warn and flag it.
    with pytest.warns(FitDiagnosticsWarning, match="ESS"):
        res = run_nuts(
            jax.random.key(1),
            normal_model,
            {"y": Y},
            num_warmup=30,
            num_samples=30,
            min_ess=1e6,
            progress_bar=False,
        )
    assert not res.ok
    assert any("ESS" in p for p in res.problems)


def test_diagnose_flags_stuck_chains_and_divergences():
    import arviz_base as azb

    rng = np.random.default_rng(0)
    good = rng.normal(size=(4, 500))
    stuck = good + np.array([0.0, 0.0, 0.0, 3.0])[:, None]  # one chain elsewhere
    div = np.zeros((4, 500), bool)
    dt = azb.from_dict({"posterior": {"a": good}, "sample_stats": {"diverging": div}})
    _, n_div, rhat, _, problems = diagnose(dt)
    assert problems == ()
    assert n_div == 0
    assert rhat < 1.01
    div[2, 17] = True
    dt = azb.from_dict({"posterior": {"a": stuck}, "sample_stats": {"diverging": div}})
    _, n_div, rhat, _, problems = diagnose(dt)
    assert n_div == 1
    assert rhat > 1.2
    assert any("divergent" in p for p in problems)
    assert any("R-hat" in p for p in problems)


def test_init_outside_support_is_rejected():
    with pytest.raises(ValueError, match=r"init_params\['tau'\].*support"):
        run_nuts(
            jax.random.key(0),
            normal_model,
            {"y": Y},
            init_params={"tau": -1.0},
            progress_bar=False,
        )


def test_data_must_be_mapping():
    with pytest.raises(TypeError, match="`data`"):
        run_nuts(jax.random.key(0), normal_model, Y, progress_bar=False)


def test_svi_recovers_mean_and_returns_idata():
    res = run_svi(
        jax.random.key(2),
        normal_model,
        {"y": Y},
        num_steps=1500,
        num_samples=400,
        progress_bar=False,
    )
    assert res.ok
    assert set(res.idata.posterior.data_vars) == {"mu", "tau"}
    assert abs(np.mean(res.samples["mu"]) - float(Y.mean())) < 0.2
