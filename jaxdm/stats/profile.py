"""Maximum-likelihood fits: conditional (profile) and unconditional, via optimistix.

All fits minimise a model's ``nll(mu, t, data)`` (see :mod:`.likelihood`) with
optimistix's BFGS (Kidger & Rader, optimistix), so they are pure JAX: they compile
once, run under ``jax.vmap`` over hypotheses and pseudo-experiments (a scan is one
compiled call) and differentiate through the solution by the implicit function
theorem. A model without nuisance parameters needs no conditional fit (the profile is
the likelihood itself).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import optimistix as optx

from .._typing import Array

__all__ = ["DEFAULT_FITTER", "FitResult", "Fitter", "fit_conditional", "fit_free"]


class Fitter(eqx.Module):
    """Settings of the minimiser (static, hashable).

    Attributes:
        rtol: Relative tolerance of BFGS (step and gradient criteria).
        atol: Absolute tolerance.
        max_steps: Iteration cap; a fit that hits it is reported unconverged.
    """

    rtol: float = eqx.field(static=True, default=1e-8)
    atol: float = eqx.field(static=True, default=1e-8)
    max_steps: int = eqx.field(static=True, default=256)

    def solver(self, dtype):
        """The optimistix BFGS solver for parameters of ``dtype``."""
        # float32 cannot reach 1e-8; floor the tolerances at a few ulps of the nll.
        floor = 1e-6 if jnp.dtype(dtype) == jnp.float32 else 0.0
        return optx.BFGS(rtol=max(self.rtol, floor), atol=max(self.atol, floor))


#: The default minimiser settings (BFGS, tolerances 1e-8 floored at 1e-6 in float32).
DEFAULT_FITTER = Fitter()


class FitResult(eqx.Module):
    """Result of one fit.

    Attributes:
        mu: Signal strength at the minimum (the hypothesis for a conditional fit).
        t: Nuisance parameters at the minimum, shape (P,).
        nll: Negative log-likelihood at the minimum.
        converged: Whether the minimiser met its tolerance within ``max_steps``.
    """

    mu: Array
    t: Array
    nll: Array
    converged: Array


def _minimise(fn, y0, args, fitter: Fitter):
    sol = optx.minimise(
        fn,
        fitter.solver(y0.dtype),
        y0,
        args=args,
        max_steps=fitter.max_steps,
        throw=False,
    )
    return sol.value, sol.result == optx.RESULTS.successful


def fit_conditional(
    model, mu, data, *, t0=None, fitter: Fitter = DEFAULT_FITTER
) -> FitResult:
    """Profile the nuisances at fixed ``mu``: ``t_hat_hat(mu) = argmin_t nll(mu, t)``.

    Args:
        model: A model of :mod:`.likelihood`.
        mu: Signal strength (scalar).
        data: Its data (``BinnedData`` / ``UnbinnedData``).
        t0: Starting point (default: the auxiliary data, the constraint's centre).
        fitter: Minimiser settings.

    Returns:
        :class:`FitResult` with ``mu`` as given.
    """
    mu = jnp.asarray(mu, data.aux.dtype)
    if model.n_nuisance == 0:
        t = data.aux
        return FitResult(mu, t, model.nll(mu, t, data), jnp.asarray(True))
    t0 = data.aux if t0 is None else jnp.asarray(t0, data.aux.dtype)

    def fn(t, args):
        return model.nll(args[0], t, args[1])

    t, ok = _minimise(fn, t0, (mu, data), fitter)
    return FitResult(mu, t, model.nll(mu, t, data), ok)


def fit_free(
    model, data, *, mu0=None, t0=None, fitter: Fitter = DEFAULT_FITTER
) -> FitResult:
    """Unconditional maximum-likelihood fit of ``(mu, t)``; ``mu`` is not bounded.

    Args:
        model: A model of :mod:`.likelihood`.
        data: Its data.
        mu0: Starting signal strength (default: the excess over the nominal
            background divided by the signal, for binned models; else 0).
        t0: Starting nuisances (default: the auxiliary data).
        fitter: Minimiser settings.

    Returns:
        :class:`FitResult`; ``mu`` can be negative (the one-sided statistics of
        :mod:`.test_statistics` handle that).
    """
    dtype = data.aux.dtype
    if mu0 is None:
        mu0 = _moment_start(model, data)
    t0 = data.aux if t0 is None else jnp.asarray(t0, dtype)
    y0 = jnp.concatenate([jnp.atleast_1d(jnp.asarray(mu0, dtype)), t0])

    def fn(y, args):
        return model.nll(y[0], y[1:], args)

    y, ok = _minimise(fn, y0, data, fitter)
    return FitResult(y[0], y[1:], model.nll(y[0], y[1:], data), ok)


def _moment_start(model, data):
    """Excess over the nominal background / total signal, kept inside nu >= 0.

    A deficit can make the moment estimate so negative that ``mu s + b`` is negative
    in the signal's bins; BFGS started there (on the ``nu >= 0`` penalty wall) was
    seen to stop, "converged", far from the minimum (a 2-D xenon template model, 8
    GeV WIMP, 3 % deficit: start mu = -1.2, end mu = 4.5 with an nll 212 above the
    fit at mu = 0). The start is clipped to half-way between 0 and the wall
    ``mu_wall = max_b(-b_b / s_b)``.
    """
    if hasattr(model, "signal") and hasattr(data, "counts"):
        b = model.expected(0.0, data.aux)
        s = model.signal
        mu0 = (jnp.sum(data.counts) - jnp.sum(b)) / jnp.sum(s)
        pos = s > 0
        wall = jnp.max(jnp.where(pos, -b / jnp.where(pos, s, 1.0), -jnp.inf))
        return jnp.maximum(mu0, 0.5 * wall)
    return jnp.zeros((), data.aux.dtype)
