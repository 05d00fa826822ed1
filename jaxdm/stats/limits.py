"""Hypothesis tests and CLs / CLs+b upper limits by root finding (asymptotic).

``hypotest`` evaluates one signal strength; ``upper_limit`` solves
``CLs(mu) = 1 - cl`` (or ``CLs+b(mu) = 1 - cl``) for the observed data and for the
expected background-only bands, with optimistix's bisection after an expanding
bracket (no grid). Both are pure JAX: ``jax.vmap`` over hypotheses (a scan over
masses or operators is one compiled call) and over data sets (toys, for coverage).

The Asimov data set for the bands is built, as in pyhf and RooStats, from the
conditional fit to the observed data at ``mu = 0``: counts ``nu(0, t_hat_hat(0))``,
auxiliary data ``t_hat_hat(0)`` (Cowan, Cranmer, Gross & Vitells 2011,
arXiv:1007.1727, sec. 5). Requires a model with ``asimov`` (binned models).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx

from .._args import check_choice, check_real
from .._checks import guard_positive
from .._typing import Array
from .asymptotics import N_SIGMA, CLs, cls_from_q, expected_cls
from .profile import DEFAULT_FITTER, FitResult, Fitter, fit_conditional, fit_free
from .test_statistics import STATISTICS, from_fits

__all__ = ["HypoTest", "UpperLimit", "hypotest", "upper_limit"]

METHODS = ("cls", "clsb")


class HypoTest(eqx.Module):
    """Asymptotic test of one signal strength.

    Attributes:
        mu: Tested signal strength.
        q: Observed statistic (``q~_mu`` or ``q_mu``).
        q_asimov: The statistic on the Asimov data of ``mu' = 0``.
        observed: Observed :class:`.asymptotics.CLs`.
        expected: Expected :class:`.asymptotics.CLs` at ``N_SIGMA`` (trailing axis 5).
        converged: All fits converged.
    """

    mu: Array
    q: Array
    q_asimov: Array
    observed: CLs
    expected: CLs
    converged: Array


class UpperLimit(eqx.Module):
    """Upper limit on the signal strength.

    Attributes:
        observed: Observed limit.
        expected: Expected limits at ``N_SIGMA = (-2, -1, 0, 1, 2)``, shape (5,):
            the median is ``expected[2]``, the 68% band ``expected[1:4:2]``, the 95%
            band ``expected[0::4]``.
        converged: All fits and root searches converged.
    """

    observed: Array
    expected: Array
    converged: Array


class _Refs(eqx.Module):
    free: FitResult
    zero: FitResult
    asimov: object
    asimov_ref: Array


def _better(a: FitResult, b: FitResult) -> FitResult:
    """The fit with the lower nll (elementwise under vmap)."""
    pick_b = b.nll < a.nll
    return jax.tree.map(lambda x, y: jnp.where(pick_b, y, x), a, b)


def _references(model, data, fitter):
    zero = fit_conditional(model, 0.0, data, fitter=fitter)
    # Two starts for the free fit (the moment estimate, and mu = 0 at the profiled
    # nuisances): one fit per limit, and the reference q~ needs the global minimum.
    free = _better(
        fit_free(model, data, fitter=fitter),
        fit_free(model, data, mu0=0.0, t0=zero.t, fitter=fitter),
    )
    asimov = model.asimov(jnp.zeros_like(zero.mu), zero.t)
    return _Refs(free, zero, asimov, model.nll(zero.mu, zero.t, asimov))


def _q_pair(mu, model, data, refs: _Refs, statistic, fitter):
    cond = fit_conditional(model, mu, data, t0=refs.zero.t, fitter=fitter)
    q = from_fits(statistic, mu, cond, refs.free, refs.zero)
    cond_a = fit_conditional(model, mu, refs.asimov, t0=refs.zero.t, fitter=fitter)
    q_a = jnp.maximum(2.0 * (cond_a.nll - refs.asimov_ref), 0.0)
    return q, q_a, cond.converged & cond_a.converged


def _check(statistic, fitter):
    check_choice(statistic, "statistic", STATISTICS)
    if not isinstance(fitter, Fitter):
        raise TypeError(f"`fitter` must be a Fitter; got {type(fitter).__name__}.")


def hypotest(
    mu, model, data, *, statistic: str = "qtilde", fitter: Fitter = DEFAULT_FITTER
) -> HypoTest:
    """Asymptotic CLs, CLs+b, CLb (observed and expected bands) at one ``mu``.

    Args:
        mu: Tested signal strength (>= 0 for "qtilde").
        model: A binned model (:func:`.likelihood.binned_model`).
        data: Observed :class:`.likelihood.BinnedData`.
        statistic: "qtilde" (``q~_mu``, default, as in pyhf) or "q" (``q_mu``).
        fitter: Minimiser settings.
    """
    _check(statistic, fitter)
    return _hypotest(mu, model, data, statistic, fitter)


@eqx.filter_jit
def _hypotest(mu, model, data, statistic, fitter):
    mu = jnp.asarray(mu, data.aux.dtype)
    if statistic == "qtilde":
        mu = guard_positive(mu, "mu", allow_zero=True)
    refs = _references(model, data, fitter)
    q, q_a, ok = _q_pair(mu, model, data, refs, statistic, fitter)
    ok = ok & refs.free.converged & refs.zero.converged
    return HypoTest(
        mu, q, q_a, cls_from_q(q, q_a, statistic=statistic), expected_cls(q_a), ok
    )


def _mu_scale(model, refs):
    """Rough width of mu_hat (nuisances fixed) from the Asimov curvature at mu = 0."""

    def nll_mu(m):
        return model.nll(m, refs.zero.t, refs.asimov)

    curv = jax.grad(jax.grad(nll_mu))(jnp.zeros_like(refs.zero.mu))
    return 1.0 / jnp.sqrt(jnp.maximum(curv, jnp.finfo(curv.dtype).tiny))


def upper_limit(
    model,
    data,
    *,
    cl: float = 0.95,
    statistic: str = "qtilde",
    method: str = "cls",
    fitter: Fitter = DEFAULT_FITTER,
    rtol: float | None = None,
    max_steps: int = 80,
) -> UpperLimit:
    """Observed and expected upper limits on ``mu`` at confidence level ``cl``.

    Solves ``CLs(mu) = 1 - cl`` ("cls", Read 2002) or ``CLs+b(mu) = 1 - cl`` ("clsb")
    by bisection (optimistix) inside a bracket ``[0, hi]`` whose upper end doubles from
    five Asimov widths of ``mu_hat`` until it contains the root; the expected limits
    solve the same equation with the expected CLs of :func:`.asymptotics.expected_cls`.

    Args:
        model: A binned model.
        data: Observed :class:`.likelihood.BinnedData`.
        cl: Confidence level in (0, 1), e.g. 0.95 or 0.9.
        statistic: "qtilde" or "q".
        method: "cls" or "clsb".
        fitter: Minimiser settings.
        rtol: Relative tolerance on the limit (default 1e-6 in float64, 1e-4 in
            float32).
        max_steps: Bisection steps cap.

    Returns:
        :class:`UpperLimit` (observed, expected (5,), converged).
    """
    _check(statistic, fitter)
    check_choice(method, "method", METHODS)
    cl = check_real(cl, "cl")
    if not 0.0 < cl < 1.0:
        raise ValueError(f"`cl` must lie in (0, 1); got {cl}.")
    return _upper_limit(model, data, cl, statistic, method, fitter, rtol, max_steps)


@eqx.filter_jit
def _upper_limit(model, data, cl, statistic, method, fitter, rtol, max_steps):
    alpha = 1.0 - cl
    dtype = data.aux.dtype
    f64 = jnp.dtype(dtype) == jnp.float64
    if rtol is None:
        rtol = 1e-6 if f64 else 1e-4
    # The search runs on x = mu / scale (scale: Asimov width of mu_hat), so the
    # tolerances are relative to the problem; optimistix's bisection stops when the
    # bracket is below atol + rtol |x| and |CLs - alpha| < atol.
    atol_f = 1e-7 if f64 else 5e-5
    refs = _references(model, data, fitter)
    scale = _mu_scale(model, refs)
    n_sigma = jnp.asarray(N_SIGMA, dtype)

    def pick(c):
        return c.cls if method == "cls" else c.clsb

    def excess_observed(mu, _):
        q, q_a, _ = _q_pair(mu, model, data, refs, statistic, fitter)
        return pick(cls_from_q(q, q_a, statistic=statistic)) - alpha

    def excess_expected(mu, n):
        # Expected bands need only the Asimov fit (half the work of the observed).
        cond_a = fit_conditional(model, mu, refs.asimov, t0=refs.zero.t, fitter=fitter)
        q_a = jnp.maximum(2.0 * (cond_a.nll - refs.asimov_ref), 0.0)
        return pick(expected_cls(q_a, n[None]))[..., 0] - alpha

    def solve(excess, which):
        def cond(c):
            hi, f, i = c
            return (f > 0) & (i < 60)

        def body(c):
            hi, _, i = c
            return 2.0 * hi, excess(2.0 * hi * scale, which), i + 1

        def scaled(x, w):
            return excess(x * scale, w)

        hi0 = 5.0 + jnp.maximum(refs.free.mu, 0.0) / scale
        hi, f_hi, _ = jax.lax.while_loop(cond, body, (hi0, scaled(hi0, which), 0))
        sol = optx.root_find(
            scaled,
            optx.Bisection(rtol=rtol, atol=atol_f, flip=True),
            0.5 * hi,
            args=which,
            options=dict(lower=jnp.zeros_like(hi), upper=hi),
            max_steps=max_steps,
            throw=False,
        )
        ok = (f_hi <= 0) & (sol.result == optx.RESULTS.successful)
        return sol.value * scale, ok

    observed, ok_obs = solve(excess_observed, jnp.zeros((), dtype))
    expected, ok_exp = jax.vmap(lambda n: solve(excess_expected, n))(n_sigma)
    # With q~ a negative mu_hat enters only through its sign (the reference is then
    # the fit at mu = 0), so a free fit stopped on the nu >= 0 wall is harmless.
    free_ok = refs.free.converged
    if statistic == "qtilde":
        free_ok = free_ok | (refs.free.mu < 0)
    ok = ok_obs & jnp.all(ok_exp) & free_ok & refs.zero.converged
    return UpperLimit(observed, expected, ok)
