"""INFERNO: exact-likelihood reference, loss gradients, benchmark ordering."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm import design
from jaxdm.design import inferno
from jaxdm.nn import MLP


def test_exact_likelihood_uncertainty_matches_paper():
    """De Castro & Dorigo (arXiv:1806.04743), synthetic benchmark: the exact
    likelihood's expected uncertainty on s is 16.9 events (r, lambda constrained).
    MC error of the Fisher estimate with 1e5 events ~0.4%; tolerance 0.2 events."""
    w = inferno.interval_width(inferno.exact_fisher(jax.random.key(0), 100_000))
    assert abs(float(w) - 16.9) < 0.2
    # Without nuisances the uncertainty is smaller; unconstrained larger.
    free = inferno.InfernoProblem(sigma_r=1e3, sigma_lam=1e3)
    fixed = inferno.InfernoProblem(sigma_r=1e-3, sigma_lam=1e-3)
    k = jax.random.key(1)
    w_free = inferno.interval_width(inferno.exact_fisher(k, 100_000, free))
    w_fixed = inferno.interval_width(inferno.exact_fisher(k, 100_000, fixed))
    assert float(w_fixed) < float(w) < float(w_free)


@pytest.mark.x64
def test_inferno_loss_gradient_matches_finite_differences():
    xs, eps = inferno.sample_benchmark(jax.random.key(2), 200)
    net = MLP(3, 4, width=8, depth=1, key=jax.random.key(3))
    net = jax.tree_util.tree_map(
        lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a,
        net,
    )
    w = net.layers[-1].weight

    def f(wt):
        m = eqx.tree_at(lambda n: n.layers[-1].weight, net, wt)
        return inferno.inferno_loss(m, (xs, eps), temperature=0.5)

    res = design.check_gradient(f, w, rtol=1e-4)
    assert res.ok, res


def test_binned_fisher_of_a_single_bin_is_counting():
    """One bin: only the total count informs s; with b known and r, lambda not
    changing the total, sigma(s) = sqrt(s + b) (Poisson)."""
    xs, eps = inferno.sample_benchmark(jax.random.key(4), 5000)
    f = inferno.binned_fisher(lambda x: jnp.zeros(x.shape[0], jnp.int32), xs, eps, 1)
    np.testing.assert_allclose(inferno.interval_width(f), np.sqrt(1050.0), rtol=1e-3)


@pytest.mark.slow
def test_inferno_beats_the_classifier_on_the_benchmark(tmp_path):
    """Paper: classifier 26.7, INFERNO 18.7, exact 16.9. Bounds: INFERNO below the
    classifier by > 3 events and within 2.5 events of the exact likelihood."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "experiments" / "inferno.py"
    spec = importlib.util.spec_from_file_location("inferno_experiment", path)
    exp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exp)

    class Args:
        n_train, n_test, bins, width, epochs = 10_000, 50_000, 10, 64, 10
        batch, temperature, seed, out = 1000, 0.1, 0, str(tmp_path)
        xenon_events = 0

    w = exp.main(Args)
    assert w["INFERNO"] < w["classifier"] - 3.0
    assert w["INFERNO"] < w["exact likelihood"] + 2.5


@pytest.mark.x64
def test_template_fisher_closed_form():
    """Two bins, one background with rate uncertainty: compare with the explicit
    Fisher matrix sum_i d mu_i d mu_i / mu_i + constraint (Cowan 1998)."""
    p = np.array([[0.8, 0.2], [0.3, 0.7]])
    n = np.array([10.0, 100.0])
    f = design.template_fisher(p, n, np.array([0.1]))
    mu = n @ p
    d = p * n[:, None]  # d mu_i / d theta_c
    expect = (d / mu) @ d.T + np.diag([0.0, 100.0])
    np.testing.assert_allclose(f, expect, rtol=1e-12)
    # The loss is the profiled relative error on the signal strength.
    res = design.check_gradient(
        lambda q: jnp.sqrt(
            jnp.linalg.inv(design.template_fisher(q, n, np.array([0.1])))[0, 0]
        ),
        jnp.asarray(p),
    )
    assert res.ok, res
