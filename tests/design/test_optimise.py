"""Tests of jaxdm.design.optimise: bounds, constraints, path, diagnostics."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.scipy.special import ndtr
from scipy.optimize import brentq
from scipy.special import erf

from jaxdm import design


def _cut_significance(p):
    """s / sqrt(b) of a window [lo, hi] on N(0, 1) signal over a flat background."""
    s = 30.0 * (ndtr(p["hi"]) - ndtr(p["lo"]))
    b = 100.0 * (p["hi"] - p["lo"])
    return s / jnp.sqrt(b)


def _t_star():
    # d/dt [erf(t/sqrt2)/sqrt(t)] = 0  <=>  2 t sqrt(2/pi) exp(-t^2/2) = erf(t/sqrt2):
    # the classic optimal window of +-1.40 sigma for s/sqrt(b).
    return brentq(
        lambda t: (
            2 * t * np.sqrt(2 / np.pi) * np.exp(-(t**2) / 2) - erf(t / np.sqrt(2))
        ),
        0.5,
        3.0,
    )


BOUNDS = ({"lo": -5.0, "hi": 0.0}, {"lo": 0.0, "hi": 5.0})


def test_best_cut_on_gaussian_signal_over_flat_background():
    """Optimal window for s/sqrt(b): +-t* sigma with t* = 1.4008 (closed form)."""
    t = _t_star()
    assert abs(t - 1.4008) < 1e-3
    res = design.optimise_design(
        _cut_significance,
        {"lo": -3.0, "hi": 0.5},
        BOUNDS,
        optimizer=optax.adam(0.05),
        steps=400,
        maximize=True,
        progress=False,
    )
    # Tolerance 0.01 sigma: adam with lr 0.05 on a smooth 2-D objective.
    assert abs(float(res.params["lo"]) + t) < 0.01
    assert abs(float(res.params["hi"]) - t) < 0.01
    assert res.values.shape == (401,)
    assert res.path["lo"].shape == (401,)
    assert float(res.path["lo"][0]) == pytest.approx(-3.0, abs=1e-6)
    assert res.values[-1] > res.values[0]
    assert res.n_skipped == 0
    # Every iterate inside the open box.
    assert np.all(np.asarray(res.path["lo"]) < 0)
    assert np.all(np.asarray(res.path["lo"]) > -5)


def test_budget_constraint_lagrangian_is_active():
    """Width budget hi - lo <= 2 binds (free optimum 2.80): optimum is +-1."""
    cons = [design.Constraint(lambda p: p["hi"] - p["lo"] - 2.0, "le", 10.0)]
    kw = dict(steps=600, maximize=True, progress=False, constraints=cons)
    res = design.optimise_design(
        _cut_significance, {"lo": -0.5, "hi": 0.3}, BOUNDS, method="lagrangian", **kw
    )
    assert abs(float(res.params["hi"] - res.params["lo"]) - 2.0) < 1e-2
    assert abs(float(res.params["hi"] + res.params["lo"])) < 2e-2
    assert res.multipliers[0] > 0
    pen = design.optimise_design(
        _cut_significance, {"lo": -0.5, "hi": 0.3}, BOUNDS, method="penalty", **kw
    )
    # The quadratic penalty leaves an O(1/rho) violation the Lagrangian removes.
    assert float(pen.params["hi"] - pen.params["lo"]) > 2.0
    assert res.constraint_values.shape == (601, 1)


@pytest.mark.x64
def test_reparameterisation_round_trip():
    x = {"a": jnp.array([0.1, 0.9]), "b": jnp.array(3.0), "c": jnp.array(-2.0)}
    lo = {"a": 0.0, "b": 1.0, "c": -np.inf}
    hi = {"a": 1.0, "b": np.inf, "c": np.inf}
    u = design.to_unconstrained(x, (lo, hi))
    back = design.from_unconstrained(u, (lo, hi))
    for k in x:
        np.testing.assert_allclose(back[k], x[k], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(u["c"], -2.0)


def test_nan_gradient_is_skipped_and_reported():
    def f(p):
        # NaN beyond x > 1.2: the optimiser walks into it and must not follow it.
        return -p["x"] + 0.0 * jnp.sqrt(1.2 - p["x"])

    with pytest.warns(design.NonFiniteGradientWarning, match="skipped"):
        with pytest.raises(FloatingPointError, match="objective"):
            design.optimise_design(
                f,
                {"x": 0.5},
                None,
                optimizer=optax.sgd(1.0),
                steps=20,
                progress=False,
            )


def test_flat_objective_warns():
    with pytest.warns(design.FlatObjectiveWarning, match="flat"):
        design.optimise_design(
            lambda p: 0.0 * p["x"] + 1.0, {"x": 0.5}, None, steps=5, progress=False
        )


def test_noisy_objective_warns():
    # A step size far too large for x^2: sgd oscillates with growing amplitude.
    with pytest.warns(design.NoisyObjectiveWarning, match="worse"):
        design.optimise_design(
            lambda p: p["x"] ** 2,
            {"x": 0.5},
            None,
            optimizer=optax.sgd(1.01),
            steps=20,
            progress=False,
        )


def test_no_warning_on_a_clean_run():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        design.optimise_design(
            lambda p: (p["x"] - 0.3) ** 2, {"x": 0.5}, None, steps=50, progress=False
        )


@pytest.mark.x64
def test_check_gradient_agrees_and_detects_a_wrong_gradient():
    res = design.check_gradient(_cut_significance, {"lo": -1.0, "hi": 0.7})
    assert res.ok
    assert res.max_rel_error < 1.0

    @jax.custom_jvp
    def bad(x):
        return jnp.sin(x)

    @bad.defjvp
    def _bad_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return jnp.sin(x), 1.01 * jnp.cos(x) * t  # 1% wrong

    res = design.check_gradient(lambda p: jnp.sum(bad(p)), jnp.array([0.3, 1.1]))
    assert not res.ok
