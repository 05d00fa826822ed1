"""Binned Poisson and unbinned extended likelihoods with constrained nuisances.

The binned model is ``nu_b(mu, t) = mu s_b + gamma_b(t) sum_k f_k(t_k) b_kb`` with
signal template ``s`` (expected counts at signal strength ``mu = 1``), background
templates ``b_k``, one normalisation nuisance per background (``f_k``, Gaussian or
log-normal, :mod:`.constraints`) and, optionally, one Barlow-Beeston-lite factor
``gamma_b`` per bin for the finite MC statistics of the background templates. Its
negative log-likelihood is

    -log L = sum_b [nu_b - n_b log nu_b + log n_b!]
             + sum_j [(t_j - a_j)^2 / 2 + log(2 pi) / 2]

(Cowan, Cranmer, Gross & Vitells 2011, arXiv:1007.1727, eq. 6-8, and the HistFactory
convention of pyhf). Every model here is an ``eqx.Module`` with ``n_nuisance``,
``nll(mu, t, data)``, ``expected(mu, t)`` and ``nominal_aux()``, which is all that
:mod:`.profile` needs.

Numerics: the unconstrained fit of ``mu`` may wander where a bin's expectation is
not positive (negative ``mu`` with a large signal). There ``log nu`` is continued below
``nu = tiny`` (1e-30 in float64, 1e-15 in float32) by its second-order Taylor
polynomial, and a quadratic wall ``k/2 min(nu, 0)^2`` (``k`` = 1e4 per count^2: steep
enough to matter nowhere else, soft enough for BFGS to converge on it) stops bins
with ``n = 0``, whose term ``nu`` alone would fall without bound, from going negative.
Both cost nothing where every ``nu_b > 0``, which holds at the minimum of any fit
whose expectation is physical; at a physical boundary (``nu_b -> 0`` in an empty bin)
the wall lets ``nu_b`` reach about ``-1/k``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln

from .._checks import guard_positive
from .._typing import Array
from .constraints import CONSTRAINTS, constraint_nll, normalisation_factor

__all__ = [
    "BinnedData",
    "BinnedModel",
    "UnbinnedData",
    "UnbinnedModel",
    "asimov_data",
    "binned_model",
    "poisson_nll",
]


def _tiny(dtype):
    return 1e-30 if jnp.dtype(dtype) == jnp.float64 else 1e-15


def _safe_log(nu):
    tau = _tiny(nu.dtype)
    d = (nu - tau) / tau
    cont = jnp.log(tau) + d - 0.5 * d * d
    return jnp.where(nu > tau, jnp.log(jnp.maximum(nu, tau)), cont)


def poisson_nll(counts, expected) -> Array:
    """Poisson negative log-likelihood summed over bins, ``sum nu - n log nu + log n!``.

    Args:
        counts: Observed counts ``n`` (>= 0, real values allowed for Asimov data).
        expected: Expected counts ``nu`` (same shape); ``n = 0`` bins contribute
            ``nu`` even where ``nu = 0``.
    """
    # Per bin, nu - n log nu + log n! is rewritten as
    #   (nu - n) + n log(n / nu) + R(n),   R(n) = log n! - n log n + n,
    # the same number without cancelling terms of size n log n: in float32 the
    # direct form lost ~6e-8 n log n per bin (0.005 at n = 10^4), enough to stall
    # the profile fits and the limit search at large counts.
    # log(n / nu) by log1p only where n and nu are close (there the difference of
    # logs cancels); elsewhere the plain difference, whose first and second
    # derivatives stay finite for tiny nu (those of log1p((n - nu)/nu) overflow).
    pos = counts > 0
    n_safe = jnp.where(pos, counts, 1.0)
    # (Only above one expected event: below, nothing large cancels, and tiny nu
    # would underflow nu^3 in the second derivative.)
    near = (expected > 1.0) & (jnp.abs(n_safe - expected) < 0.5 * expected)
    nu_n = jnp.where(near, expected, 1.0)
    n_n = jnp.where(near, n_safe, 1.0)
    log_ratio = jnp.where(
        near,
        jnp.log1p((n_n - nu_n) / nu_n),
        jnp.log(n_safe) - _safe_log(expected),
    )
    term = jnp.where(pos, counts * log_ratio + _stirling_remainder(n_safe), 0.0)
    k = 1e4
    wall = 0.5 * k * jnp.minimum(expected, 0.0) ** 2
    return jnp.sum((expected - counts) + term + wall)


def _stirling_remainder(n):
    """``log n! - n log n + n`` for n > 0 (real n: ``log Gamma(n + 1)``).

    Direct below n = 15, where nothing large cancels; above, the Stirling series
    ``0.5 log(2 pi n) + 1/(12n) - 1/(360n^3) + 1/(1260n^5) - 1/(1680n^7)``
    (Abramowitz & Stegun 6.1.41; truncation error < 1/(1188 n^9) < 3e-14).
    """
    small = n < 15.0
    ns = jnp.where(small, n, 1.0)
    direct = gammaln(ns + 1.0) - ns * jnp.log(ns) + ns
    nl = jnp.where(small, 15.0, n)
    inv = 1.0 / nl
    inv2 = inv * inv
    series = 0.5 * jnp.log(2.0 * jnp.pi * nl) + inv * (
        1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 / 1680.0))
    )
    return jnp.where(small, direct, series)


class BinnedData(eqx.Module):
    """Observed data of a binned model.

    Attributes:
        counts: Observed counts per bin, shape (B,) (events; real for Asimov data).
        aux: Auxiliary measurements of the nuisances, shape (P,), in units of the
            constraint widths (nominal 0).
    """

    counts: Array
    aux: Array


class BinnedModel(eqx.Module):
    """Binned signal-plus-background model with constrained nuisance parameters.

    Build it with :func:`binned_model` (which validates the inputs).

    Attributes:
        signal: Expected signal counts per bin at ``mu = 1``, shape (B,).
        background: Expected counts of each background sample, shape (K, B).
        background_sigma: Relative normalisation uncertainty of each background,
            shape (K,) (0: no uncertainty; its nuisance is then inert).
        mc_delta: Relative MC uncertainty of the total background per bin, shape
            (B,), or None for exact templates (no Barlow-Beeston-lite factors).
        constraint: Static tuple of "normal"/"lognormal", one per background.
    """

    signal: Array
    background: Array
    background_sigma: Array
    mc_delta: Array | None
    constraint: tuple[str, ...] = eqx.field(static=True)

    @property
    def n_bins(self) -> int:
        """Number of bins B."""
        return self.signal.shape[-1]

    @property
    def n_nuisance(self) -> int:
        """Number of nuisance parameters: K backgrounds (+ B MC-statistics factors)."""
        return self.background.shape[0] + (0 if self.mc_delta is None else self.n_bins)

    def nominal_aux(self) -> Array:
        """Nominal auxiliary data (all 0), shape (P,)."""
        return jnp.zeros((self.n_nuisance,), self.signal.dtype)

    def expected(self, mu, t) -> Array:
        """Expected counts ``nu(mu, t)`` per bin, shape (B,)."""
        k = self.background.shape[0]
        fac = (
            jnp.stack(
                [
                    normalisation_factor(
                        t[i], self.background_sigma[i], self.constraint[i]
                    )
                    for i in range(k)
                ]
            )
            if k
            else jnp.zeros((0,), self.signal.dtype)
        )
        bkg = jnp.sum(fac[:, None] * self.background, axis=0)
        if self.mc_delta is not None:
            bkg = bkg * (1.0 + self.mc_delta * t[k:])
        return mu * self.signal + bkg

    def nll(self, mu, t, data: BinnedData) -> Array:
        """Negative log-likelihood ``-log L(mu, t; data)``, scalar."""
        return poisson_nll(data.counts, self.expected(mu, t)) + constraint_nll(
            t, data.aux
        )

    def sample(self, key, mu, t) -> BinnedData:
        """One pseudo-experiment: ``n ~ Poisson(nu(mu, t))``, ``a ~ N(t, 1)``."""
        kn, ka = jax.random.split(key)
        nu = jnp.maximum(self.expected(mu, t), 0.0)
        counts = jax.random.poisson(kn, nu).astype(nu.dtype)
        aux = t + jax.random.normal(ka, t.shape, nu.dtype)
        return BinnedData(counts, aux)

    def asimov(self, mu, t) -> BinnedData:
        """Asimov data at ``(mu, t)``: counts ``nu(mu, t)`` and aux ``t``."""
        return BinnedData(self.expected(mu, t), jnp.asarray(t))


def binned_model(
    signal,
    background,
    *,
    background_sigma=None,
    constraint="normal",
    mc_delta=None,
) -> BinnedModel:
    """Build a validated :class:`BinnedModel`.

    Args:
        signal: Expected signal counts at ``mu = 1``, shape (B,) or any shape (it is
            flattened: 2-D templates become B = Bx * By bins). >= 0 and not all 0.
        background: Background templates, shape (K, *signal.shape) or
            ``signal.shape`` (one background). >= 0; their sum must be > 0 in every
            bin where the signal is > 0 (otherwise ``mu`` is unbounded by any
            background-free observation and no model can describe it).
        background_sigma: Relative normalisation uncertainty per background, shape
            (K,) or scalar (default 0: none). >= 0.
        constraint: "normal" or "lognormal", or one per background.
        mc_delta: Relative MC uncertainty per bin of the total background, same
            shape as ``signal`` (see :func:`.constraints.mc_relative_uncertainty`),
            or None (exact templates).

    Raises:
        ValueError: naming ``signal``, ``background``, ``background_sigma``,
            ``constraint`` or ``mc_delta`` for negative or non-finite entries,
            shape mismatches, or an empty template (no bins, or all zero).
    """
    signal = jnp.asarray(signal)
    if not jnp.issubdtype(signal.dtype, jnp.floating):
        signal = signal.astype(jnp.result_type(float))
    shape = signal.shape
    if signal.size == 0:
        raise ValueError("`signal` is an empty template: it has no bins.")
    background = jnp.asarray(background, signal.dtype)
    if background.shape == shape:
        background = background[None]
    if background.shape[1:] != shape or background.shape[0] < 1:
        raise ValueError(
            f"`background` must have shape (K, {', '.join(map(str, shape))}) or "
            f"{shape} to match `signal`; got {background.shape}."
        )
    signal = guard_positive(signal.reshape(-1), "signal", allow_zero=True)
    background = guard_positive(
        background.reshape(background.shape[0], -1), "background", allow_zero=True
    )
    signal = _check_nonempty(signal, "signal")
    background = _check_nonempty_rows(background)
    k = background.shape[0]
    if background_sigma is None:
        background_sigma = jnp.zeros((k,), signal.dtype)
    background_sigma = (
        jnp.broadcast_to(jnp.asarray(background_sigma, signal.dtype), (k,))
        if jnp.ndim(background_sigma) == 0
        else jnp.asarray(background_sigma, signal.dtype)
    )
    if background_sigma.shape != (k,):
        raise ValueError(
            f"`background_sigma` must have shape ({k},); got {background_sigma.shape}."
        )
    background_sigma = guard_positive(
        background_sigma, "background_sigma", allow_zero=True
    )
    kinds = (constraint,) * k if isinstance(constraint, str) else tuple(constraint)
    if len(kinds) != k or any(c not in CONSTRAINTS for c in kinds):
        raise ValueError(
            f"`constraint` must be one of {list(CONSTRAINTS)} or a sequence of {k} of "
            f"them; got {constraint!r}."
        )
    if mc_delta is not None:
        mc_delta = jnp.asarray(mc_delta, signal.dtype)
        if mc_delta.shape != shape:
            raise ValueError(
                f"`mc_delta` must have the shape of `signal` {shape}; got "
                f"{mc_delta.shape}."
            )
        mc_delta = guard_positive(mc_delta.reshape(-1), "mc_delta", allow_zero=True)
    return BinnedModel(signal, background, background_sigma, mc_delta, kinds)


def _check_nonempty(x, name):
    msg = f"`{name}` is an empty template: all its expected counts are 0."
    if isinstance(x, jax.core.Tracer):
        return eqx.error_if(x, jnp.sum(x) <= 0, msg)
    if not bool(jnp.sum(x) > 0):
        raise ValueError(msg)
    return x


def _check_nonempty_rows(background):
    bad = jnp.sum(background, axis=1) <= 0
    msg = (
        "`background` has an empty template (a sample whose expected counts are all 0)."
    )
    if isinstance(background, jax.core.Tracer):
        return eqx.error_if(background, jnp.any(bad), msg)
    if bool(jnp.any(bad)):
        raise ValueError(msg)
    return background


def asimov_data(model, mu, t=None):
    """Asimov data set (CCGV 2011, sec. 5): expected counts and aux at ``(mu, t)``.

    Args:
        model: A binned or unbinned-with-binned-expectation model (needs ``asimov``).
        mu: Signal strength of the Asimov data set.
        t: Nuisance values (default: nominal, 0). For the expected limits of
            :mod:`.limits` they are the conditional best fit to the observed data at
            ``mu``, as in pyhf and RooStats.
    """
    if t is None:
        t = model.nominal_aux()
    return model.asimov(jnp.asarray(mu, model.signal.dtype), jnp.asarray(t))


class UnbinnedData(eqx.Module):
    """Events of an unbinned extended likelihood, padded to a fixed size.

    Attributes:
        signal_pdf: Normalised signal density at each event, shape (N,) [1/unit of x].
        background_pdf: Normalised density of each background at each event,
            shape (N, K).
        mask: 1 for a real event, 0 for padding, shape (N,) (toys of varying size
            are vmapped at a common N).
        aux: Auxiliary measurements, shape (K,).
    """

    signal_pdf: Array
    background_pdf: Array
    mask: Array
    aux: Array


class UnbinnedModel(eqx.Module):
    """Extended unbinned likelihood ``-log L = nu_tot - sum_i log sum_c nu_c p_c(x_i)``.

    Attributes:
        signal_rate: Expected signal events at ``mu = 1`` (> 0).
        background_rate: Expected events of each background, shape (K,).
        background_sigma: Relative normalisation uncertainty per background, (K,).
        constraint: Static tuple of "normal"/"lognormal", one per background.
    """

    signal_rate: Array
    background_rate: Array
    background_sigma: Array
    constraint: tuple[str, ...] = eqx.field(static=True)

    @property
    def n_nuisance(self) -> int:
        """Number of nuisance parameters (one per background)."""
        return self.background_rate.shape[0]

    def nominal_aux(self) -> Array:
        """Nominal auxiliary data (all 0), shape (K,)."""
        return jnp.zeros((self.n_nuisance,), self.background_rate.dtype)

    def rates(self, mu, t) -> Array:
        """Expected events per component ``(signal, backgrounds...)``, shape (K+1,)."""
        fac = jnp.stack(
            [
                normalisation_factor(t[i], self.background_sigma[i], self.constraint[i])
                for i in range(self.n_nuisance)
            ]
        )
        return jnp.concatenate(
            [jnp.atleast_1d(mu * self.signal_rate), fac * self.background_rate]
        )

    def nll(self, mu, t, data: UnbinnedData) -> Array:
        """Extended negative log-likelihood (without the constant ``log N!``)."""
        nu = self.rates(mu, t)
        pdf = jnp.concatenate([data.signal_pdf[:, None], data.background_pdf], axis=1)
        dens = pdf @ nu
        ll = jnp.sum(jnp.where(data.mask > 0, _safe_log(dens), 0.0))
        return jnp.sum(nu) - ll + constraint_nll(t, data.aux)
