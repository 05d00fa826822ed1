"""Non-Poissonian template fitting (NPTF) in JAX: the photon-count PGF of point sources.

The counts in pixel p from Poisson templates of mean ``mu_p`` plus unresolved point
sources with a broken power-law ``dN/dF`` have the probability generating function
(Malyshev & Hogg 2011, arXiv:1104.0010; Lee, Lisanti, Safdi, Slatyer & Xue 2016,
arXiv:1412.6099, eqs. 4-9; Mishra-Sharma, Rodd & Safdi 2017, arXiv:1612.03173 (NPTFit),
eqs. 2.5-2.13)

``P_p(t) = exp[ sum_{m>=1} x_m^p (t^m - 1) ]``, with
``x_m^p = mu_p delta_{m1} + sum_pop w_p int dF dN/dF int df rho(f) Pois(m; f F E_p)``

where ``w_p`` is the fraction of a population's sources in pixel p, ``E_p`` the exposure
[cm^2 s] (counts per unit flux) and ``rho(f)`` the PSF correction: the number of pixels,
per source, that receive the fraction f of its flux (``sum_j rho_j f_j = 1``). The
count probabilities follow from ``p_0 = exp(-x_tot)``,
``p_k = (1/k) sum_{n=1}^k n x_n p_{k-n}`` (NPTFit eq. 2.11), evaluated here in log
space so that bright pixels do not underflow in float32.

Where NPTFit writes ``x_m`` in closed form with incomplete gamma functions, this module
integrates over each power-law segment by Gauss-Legendre quadrature in the segment's
cumulative-flux variable (an inverse-CDF substitution, finite for n_1 > 2 and
n_last < 2 as NPTFit's priors require, including n_last >= 1 where the number of
faint sources diverges), which is smooth in the indices, breaks and normalisation,
so the likelihood is differentiable and runs under NUTS. Like NPTFit,
pixels share the point-source ``x_m`` within exposure regions (``n_exposure_regions``
groups of equal pixel number, sorted by exposure, each at its mean exposure), and the
PSF correction assumes the source density is constant on the PSF scale.

Speed: with concrete counts, each pixel's recursion runs only up to its own count
(buckets of pixels sharing ``k_b = 2^b - 1``), the mixture of the Poisson term and the
populations' ``x_m`` is formed per bucket, and the gradient of ``log p_c`` is closed
form (``d log p_c / d log x_n = x_n p_{c-n} / p_c``, from ``dP/dx_n = t^n P``) rather
than reverse mode through the O(k^2) recursion.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, logsumexp
from scipy.special import ndtr

from .._args import check_choice, check_int
from .._checks import guard_finite, guard_positive
from .nptf_fft import log_pmf_fft

__all__ = [
    "PSFCorrection",
    "PointSourcePopulation",
    "exposure_regions",
    "nptf_log_likelihood",
    "nptf_log_pmf",
    "population_log_x",
    "psf_correction_from_kernel",
    "psf_correction_gaussian",
]


class PointSourcePopulation(NamedTuple):
    """A broken power-law source-count law (the convention of ``gamma.GammaParams``).

    ``dN/dF = norm (F/F_b1)^-n_1`` above the highest break, continuous power laws
    ``~F^-n_k`` between successive breaks (NPTFit eq. 2.3).

    Attributes:
        norm: ``A``, sources per unit flux at ``breaks[0]`` in the whole template
            region [1/(ph cm^-2 s^-1)], scalar.
        indices: Power-law indices (k+1,), highest-flux segment first.
        breaks: Break fluxes [ph cm^-2 s^-1], (k,), strictly decreasing.
    """

    norm: jax.Array
    indices: jax.Array
    breaks: jax.Array


class PSFCorrection(NamedTuple):
    """Discretised PSF correction ``rho(f)``.

    Attributes:
        fractions: Flux fractions ``f_j`` in (0, 1], shape (J,).
        weights: ``rho_j``, pixels per source receiving ``f_j``, shape (J,), with
            ``sum_j weights_j fractions_j = 1`` (flux conservation).
    """

    fractions: jax.Array
    weights: jax.Array


def psf_correction_from_kernel(kernel, *, min_fraction: float = 1e-4) -> PSFCorrection:
    """PSF correction of sources at pixel centres: one entry per kernel pixel.

    This is exact for :func:`jaxdm.simulators.gamma.simulate`, which renders each
    source at its pixel centre and convolves with the (unit-sum) kernel. Entries below
    ``min_fraction`` are dropped and the rest renormalised so that the flux is
    conserved (their share is reported in the error if it exceeds 1e-3).

    Args:
        kernel: PSF kernel (K, K) summing to 1 (``gamma.cartesian_kernels(...)[0]``).
        min_fraction: Smallest flux fraction kept.

    Returns:
        :class:`PSFCorrection`.
    """
    k = np.asarray(kernel, float).ravel()
    if k.size == 0 or not np.all(np.isfinite(k)) or np.any(k < 0):
        raise ValueError("`kernel` must be a non-empty finite array with entries >= 0.")
    if abs(k.sum() - 1.0) > 1e-3:
        raise ValueError(f"`kernel` must sum to 1; got {k.sum():.6g}.")
    keep = k >= min_fraction
    lost = k[~keep].sum()
    if lost > 1e-3:
        raise ValueError(
            f"`min_fraction` = {min_fraction} drops {lost:.3g} of the flux (> 1e-3); "
            "lower it."
        )
    f = k[keep] / k[keep].sum()
    return PSFCorrection(jnp.asarray(f), jnp.ones(f.shape))


def psf_correction_gaussian(
    sigma_pix: float,
    *,
    n_sources: int = 4000,
    n_bins: int = 50,
    min_fraction: float = 1e-4,
    seed: int = 0,
) -> PSFCorrection:
    """NPTFit-style PSF correction for a Gaussian PSF, sources uniform in the pixel.

    As NPTFit's ``psf_correction`` (arXiv:1612.03173, section 3.3): place sources at
    uniform random positions inside a square pixel, integrate the Gaussian PSF (sigma
    in pixel units) over the neighbouring pixels in closed form (products of normal
    CDFs), and histogram the flux fractions in ``n_bins`` log-spaced bins above
    ``min_fraction``.

    Args:
        sigma_pix: PSF sigma in units of the pixel side (> 0).
        n_sources: Monte Carlo source positions.
        n_bins: Histogram bins of log f.
        min_fraction: Smallest fraction kept (the flux below is renormalised away).
        seed: NumPy seed of the positions.

    Returns:
        :class:`PSFCorrection` with bin-mean fractions and weights per source.
    """
    if not (np.isfinite(sigma_pix) and sigma_pix > 0):
        raise ValueError(f"`sigma_pix` must be finite and > 0; got {sigma_pix}.")
    n_sources = check_int(n_sources, "n_sources", minimum=10)
    n_bins = check_int(n_bins, "n_bins", minimum=2)
    rng = np.random.default_rng(seed)
    half = int(np.ceil(5 * sigma_pix)) + 1
    c = np.arange(-half, half + 1, dtype=float)
    pos = rng.uniform(-0.5, 0.5, (n_sources, 2))

    def axis(d):
        return ndtr((c[None, :] + 0.5 - d[:, None]) / sigma_pix) - ndtr(
            (c[None, :] - 0.5 - d[:, None]) / sigma_pix
        )

    f = (axis(pos[:, 0])[:, :, None] * axis(pos[:, 1])[:, None, :]).ravel()
    f = f[f >= min_fraction]
    edges = np.geomspace(min_fraction, 1.0 + 1e-12, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, f, side="right") - 1, 0, n_bins - 1)
    cnt = np.bincount(idx, minlength=n_bins).astype(float)
    fsum = np.bincount(idx, weights=f, minlength=n_bins)
    ok = cnt > 0
    frac = fsum[ok] / cnt[ok]
    w = cnt[ok] / n_sources
    w = w / np.sum(w * frac)  # flux conservation after the cut
    return PSFCorrection(jnp.asarray(frac), jnp.asarray(w))


def exposure_regions(exposure, n_regions: int = 1):
    """Group pixels into ``n_regions`` of equal size by exposure (NPTFit's ``nexp``).

    Args:
        exposure: Exposure per pixel [cm^2 s], (P,), concrete, > 0.
        n_regions: Number of regions.

    Returns:
        ``(region (P,) int, region_exposure (R,))``: region index of each pixel and
        each region's mean exposure [cm^2 s].
    """
    e = np.asarray(exposure, float)
    if e.ndim != 1 or not np.all(np.isfinite(e)) or np.any(e <= 0):
        raise ValueError(
            f"`exposure` must be a finite 1-D array > 0 [cm^2 s]; got shape {e.shape}."
        )
    n_regions = check_int(n_regions, "n_exposure_regions", minimum=1)
    order = np.argsort(e, kind="stable")
    region = np.empty(e.size, int)
    for r, chunk in enumerate(np.array_split(order, n_regions)):
        region[chunk] = r
    means = np.array([e[region == r].mean() for r in range(n_regions)])
    return region, means


def _checked_population(pop, i, dtype) -> PointSourcePopulation:
    if not isinstance(pop, PointSourcePopulation):
        raise TypeError(
            f"`populations[{i}]` must be a PointSourcePopulation; got "
            f"{type(pop).__name__}."
        )
    norm = guard_positive(
        jnp.asarray(pop.norm, dtype), f"populations[{i}].norm", allow_zero=True
    )
    ind = guard_finite(jnp.asarray(pop.indices, dtype), f"populations[{i}].indices")
    br = guard_positive(jnp.asarray(pop.breaks, dtype), f"populations[{i}].breaks")
    if norm.shape != () or ind.ndim != 1 or br.ndim != 1 or ind.size != br.size + 1:
        raise ValueError(
            f"`populations[{i}]` needs a scalar norm, indices (k+1,) and breaks (k,); "
            f"got shapes {norm.shape}, {ind.shape}, {br.shape}."
        )
    return PointSourcePopulation(norm, ind, br)


def _gauss_legendre_unit(n):
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w


def _segment_nodes(pop: PointSourcePopulation, f_min, f_max, n_nodes):
    """Quadrature log-nodes log F (S, n) and log number weights (S, n).

    Each power-law segment is integrated in its cumulative-FLUX variable (nodes
    ``x = (a + u (b - a))^(1/q)``, ``q = 2 - n``, number weight = flux weight / F),
    not the cumulative number: the flux of a segment is finite for every index the
    model allows (n_1 > 2 above the highest break, n_last < 2 below the lowest),
    whereas the number of sources below the lowest break diverges for n_last >= 1
    (a quadrature in the number variable gave NaN there). Nodes are returned as
    ``log F`` so that faint nodes do not underflow in float32.
    """
    n = pop.indices
    fb = pop.breaks
    xb = fb / fb[0]
    # Static infinite / zero limits stay constants: inf / F_b would give NaN grads.
    top = jnp.full((1,), jnp.inf, xb.dtype) if np.isinf(f_max) else f_max / fb[:1]
    bottom = jnp.zeros((1,), xb.dtype) if f_min == 0 else f_min / fb[:1]
    hi = jnp.concatenate([top, xb])
    lo = jnp.concatenate([xb, bottom])
    logc = jnp.concatenate(
        [jnp.zeros(1, xb.dtype), jnp.cumsum(jnp.log(xb) * (n[1:] - n[:-1]))]
    )
    q = 2.0 - n  # (S,): flux per segment ~ int x^(1-n) dx
    near = jnp.abs(q) < 1e-4
    qs = jnp.where(near, 1.0, q)

    def pw(x, p):
        bad = (x == 0) | jnp.isinf(x)
        return jnp.where(bad, 0.0, jnp.where(bad, 1.0, x) ** p)

    lo_s = jnp.where(lo > 0, lo, 1.0)
    hi_s = jnp.where(jnp.isfinite(hi), hi, 1.0)
    # Flux per segment in units of A F_b1^2: c_k int_lo^hi x^(1-n) dx.
    flux = jnp.where(
        near, jnp.log(hi_s / lo_s), (pw(hi, qs) - pw(lo, qs)) / qs
    ) * jnp.exp(logc)
    u, w = _gauss_legendre_unit(n_nodes)
    u = jnp.asarray(u, xb.dtype)[None, :]
    a, b = pw(lo, qs)[:, None], pw(hi, qs)[:, None]
    logx_pl = jnp.log(a + u * (b - a)) / qs[:, None]
    logx_log = jnp.log(lo_s)[:, None] + u * jnp.log(hi_s / lo_s)[:, None]
    logx = jnp.where(near[:, None], logx_log, logx_pl)
    logw = (
        jnp.log(pop.norm * fb[0] * flux)[:, None]
        + jnp.log(jnp.asarray(w, xb.dtype))[None, :]
        - logx
    )
    return jnp.log(fb[0]) + logx, logw


def population_log_x(
    pop: PointSourcePopulation,
    region_exposure,
    psf: PSFCorrection,
    k_max: int,
    *,
    f_min: float = 0.0,
    f_max: float = float("inf"),
    n_nodes: int = 48,
):
    """Log ``x_m`` of one population, per unit of source fraction, for m = 1..k_max.

    ``x_m = int dF dN/dF sum_j rho_j Pois(m; f_j F E)`` and
    ``x_tot = sum_{m>=1} x_m = int dF dN/dF sum_j rho_j (1 - exp(-f_j F E))`` for a
    pixel holding all of the population's sources (multiply by the pixel's source
    fraction ``w_p``).

    Args:
        pop: :class:`PointSourcePopulation`.
        region_exposure: Exposure per region [cm^2 s], (R,).
        psf: :class:`PSFCorrection`.
        k_max: Largest count (static).
        f_min: Lowest source flux [ph cm^-2 s^-1] (static).
        f_max: Highest source flux [ph cm^-2 s^-1] (static).
        n_nodes: Gauss-Legendre nodes per power-law segment (static).

    Returns:
        ``(log_x (R, k_max), log_x_tot (R,))``.
    """
    log_f, logw = _segment_nodes(pop, f_min, f_max, n_nodes)
    log_f = log_f.ravel()
    logw = logw.ravel()  # (Q,)
    expo = jnp.asarray(region_exposure, log_f.dtype)
    loglam = (
        jnp.log(expo)[:, None, None]
        + jnp.log(psf.fractions)[None, :, None]
        + log_f[None, None, :]
    )  # (R, J, Q), in log space: faint nodes must not underflow to log(0)
    lam = jnp.exp(loglam)
    base = logw[None, None, :] + jnp.log(psf.weights)[None, :, None]
    m = jnp.arange(1, k_max + 1, dtype=log_f.dtype)
    logpois = (
        m[:, None, None, None] * loglam[None]
        - lam[None]
        - gammaln(m + 1.0)[:, None, None, None]
    )
    log_x = logsumexp(logpois + base[None], axis=(2, 3)).T  # (R, k_max)
    # log(1 - e^-lam), = log(lam) - lam/2 + O(lam^2) for small lam (no underflow).
    small = lam < 1e-3
    log1m = jnp.where(
        small,
        loglam + jnp.log1p(-0.5 * jnp.where(small, lam, 0.0)),
        jnp.log(-jnp.expm1(-jnp.where(small, 1.0, lam))),
    )
    log_tot = logsumexp(base + log1m, axis=(1, 2))
    return log_x, log_tot


def _log_pmf_pixel(log_x, log_tot, k_max):
    """Log p_0..p_kmax of one pixel from log x_1..x_kmax and log x_tot.

    The recursion runs as a scan over blocks of ~sqrt(k_max) counts whose inner
    scans are rematerialised (``jax.checkpoint``) in reverse mode, so the gradient
    stores O(k_max^1.5) rather than O(k_max^2) numbers per pixel.
    """
    n = jnp.arange(1, k_max + 1)
    a = jnp.log(n.astype(log_x.dtype)) + log_x  # log(n x_n), (K,)
    logp0 = -jnp.exp(log_tot)
    # Reversed buffer: r[K - j] = log p_j, and -inf at indices > K (j < 0), so that
    # p_{k-1}, ..., p_{k-K} is one dynamic slice (whose transpose is cheap, unlike a
    # gather's scatter-add).
    big = k_max
    r0 = jnp.full((2 * big + 1,), -jnp.inf, log_x.dtype).at[big].set(logp0)

    def step(r, k):
        prev = jax.lax.dynamic_slice(r, (big - k + 1,), (big,))
        val = logsumexp(a + prev) - jnp.log(k.astype(log_x.dtype))
        return jax.lax.dynamic_update_slice(r, val[None], (big - k,)), None

    block = max(int(np.sqrt(k_max)), 1)
    n_blocks = k_max // block
    ks = jnp.arange(1, n_blocks * block + 1).reshape(n_blocks, block)

    @jax.checkpoint
    def run_block(buf, kb):
        return jax.lax.scan(step, buf, kb)[0], None

    r, _ = jax.lax.scan(run_block, r0, ks)
    r, _ = jax.lax.scan(step, r, jnp.arange(n_blocks * block + 1, k_max + 1))
    return r[: big + 1][::-1]


def _log_pmf_table(log_x, log_tot, k):
    """Log p_0..p_k of each pixel, (P, k + 1), by the forward recursion only."""
    return jax.vmap(_log_pmf_pixel, in_axes=(0, 0, None))(log_x, log_tot, k)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _log_pmf_at(log_x, log_tot, counts, k):
    """``log p_p(counts_p)`` (P,) from log x_1..x_k (P, k) and log x_tot (P,).

    The gradient is closed form rather than the reverse of the recursion: with
    ``P(t) = exp(sum_n x_n t^n - x_tot)``, ``dP/dx_n = t^n P`` and ``dP/dx_tot = -P``,
    so ``d log p_c / d log x_n = x_n p_{c-n} / p_c`` (0 for n > c) and
    ``d log p_c / d log x_tot = -x_tot``. It costs O(k) per pixel and stores only the
    forward table, instead of a reverse scan of O(k^2) work.
    """
    logp = _log_pmf_table(log_x, log_tot, k)
    return jnp.take_along_axis(logp, counts[:, None], axis=1)[:, 0]


def _log_pmf_at_fwd(log_x, log_tot, counts, k):
    logp = _log_pmf_table(log_x, log_tot, k)
    out = jnp.take_along_axis(logp, counts[:, None], axis=1)[:, 0]
    return out, (logp, log_x, log_tot, counts, out)


def _log_pmf_at_bwd(k, res, g):
    logp, log_x, log_tot, counts, out = res
    n = jnp.arange(1, k + 1)
    lag = counts[:, None] - n[None, :]  # c - n, (P, k)
    prev = jnp.take_along_axis(logp, jnp.clip(lag, 0, k), axis=1)
    term = jnp.where(lag >= 0, prev - out[:, None] + log_x, -jnp.inf)
    g_log_x = g[:, None] * jnp.exp(term)
    g_log_tot = -g * jnp.exp(log_tot)
    return g_log_x, g_log_tot, np.zeros(counts.shape, jax.dtypes.float0)


_log_pmf_at.defvjp(_log_pmf_at_fwd, _log_pmf_at_bwd)


def _log_pmf_fft_at(log_x, log_tot, counts, k):
    """As :func:`_log_pmf_at` by the tilted FFT of :mod:`jaxdm.fits.nptf_fft`."""
    del k  # the FFT length follows log_x's last axis
    return log_pmf_fft(log_x, log_tot, counts, _FFT_FACTOR)


# FFT length / (K + 1): 8 keeps the aliased pi_{c+N} below float32 rounding on the
# benchmark's 11-parameter problem across its prior (4 left up to 0.09 in log L).
_FFT_FACTOR = 8
# Smallest count bucket K for which method="auto" takes the FFT (CPU, jax 0.10).
_FFT_MIN_K = 127


def nptf_log_pmf(
    mu,
    populations: Sequence[PointSourcePopulation],
    source_fractions,
    exposure,
    psf: PSFCorrection,
    k_max: int,
    *,
    n_exposure_regions: int = 1,
    f_min: float = 0.0,
    f_max: float = float("inf"),
    n_nodes: int = 48,
):
    """Per-pixel log probabilities of 0..k_max counts (Poisson + point sources).

    Args:
        mu: Poisson-template mean counts per pixel, (P,), >= 0.
        populations: Point-source populations (possibly empty).
        source_fractions: Fraction of each population's sources in each pixel,
            (n_pop, P), rows summing to <= 1 (the spatial template times solid angle,
            normalised over the population's region).
        exposure: Exposure per pixel [cm^2 s], (P,), concrete.
        psf: :class:`PSFCorrection`.
        k_max: Largest count (static).
        n_exposure_regions: Exposure regions (NPTFit's ``nexp``).
        f_min: Lowest source flux [ph cm^-2 s^-1].
        f_max: Highest source flux [ph cm^-2 s^-1].
        n_nodes: Quadrature nodes per power-law segment.

    Returns:
        ``log p`` of shape (P, k_max + 1).
    """
    k_max = check_int(k_max, "k_max", minimum=1)
    mu, populations, wts, region, r_expo = _checked_inputs(
        mu, populations, source_fractions, exposure, n_exposure_regions
    )
    log_x, log_tot = _log_x_core(
        mu, populations, wts, region, r_expo, psf, k_max, f_min, f_max, n_nodes
    )
    return jax.vmap(_log_pmf_pixel, in_axes=(0, 0, None))(log_x, log_tot, k_max)


def _checked_inputs(mu, populations, source_fractions, exposure, n_exposure_regions):
    mu = jnp.asarray(mu)
    if not jnp.issubdtype(mu.dtype, jnp.floating):
        mu = mu.astype(float)
    mu = guard_positive(mu, "mu", allow_zero=True)
    populations = tuple(
        _checked_population(p, i, mu.dtype) for i, p in enumerate(populations)
    )
    if mu.ndim != 1:
        raise ValueError(f"`mu` must be 1-D (P,) [counts]; got shape {mu.shape}.")
    n_pix = mu.shape[0]
    region, r_expo = exposure_regions(exposure, n_exposure_regions)
    if region.shape[0] != n_pix:
        raise ValueError(
            f"`exposure` must have shape ({n_pix},) like `mu`; got {region.shape}."
        )
    wts = jnp.asarray(source_fractions, mu.dtype)
    if wts.shape != (len(populations), n_pix):
        raise ValueError(
            f"`source_fractions` must have shape ({len(populations)}, {n_pix}) "
            f"(populations, pixels); got {wts.shape}."
        )
    wts = guard_positive(wts, "source_fractions", allow_zero=True)
    return mu, populations, wts, jnp.asarray(region), jnp.asarray(r_expo, mu.dtype)


@functools.partial(jax.jit, static_argnums=(3, 4, 5, 6, 7))
def _population_terms(populations, r_expo, psf, k_max, f_min, f_max, n, dtype):
    """Stacked log x_m (n_pop, R, k_max) and log x_tot (n_pop, R) of the populations."""
    if not populations:
        return jnp.zeros((0, r_expo.shape[0], k_max), dtype), jnp.zeros(
            (0, r_expo.shape[0]), dtype
        )
    out = [
        population_log_x(pop, r_expo, psf, k_max, f_min=f_min, f_max=f_max, n_nodes=n)
        for pop in populations
    ]
    return jnp.stack([o[0] for o in out]), jnp.stack([o[1] for o in out])


def _mix(log_mu, log_w, region, lx, lt, k):
    """Per-pixel log x_1..x_k (P, k) and log x_tot (P,) of Poisson + populations.

    ``log_mu`` (P,), ``log_w`` (n_pop, P), ``region`` (P,) int, ``lx`` (n_pop, R, >=k),
    ``lt`` (n_pop, R). Only the first ``k`` terms are formed, so that each count
    bucket pays for its own pixels and counts, not for all pixels up to ``k_max``.
    """
    n_pix = log_mu.shape[0]
    poiss = jnp.full((1, n_pix, k), -jnp.inf, log_mu.dtype).at[0, :, 0].set(log_mu)
    ps = log_w[:, :, None] + lx[:, region, :k]  # (n_pop, P, k)
    log_x = logsumexp(jnp.concatenate([poiss, ps]), axis=0)
    log_tot = logsumexp(jnp.concatenate([log_mu[None], log_w + lt[:, region]]), axis=0)
    return log_x, log_tot


def _log_x_core(mu, populations, wts, region, r_expo, psf, k_max, f_min, f_max, n):
    lx, lt = _population_terms(
        populations, r_expo, psf, k_max, f_min, f_max, n, mu.dtype
    )
    return _mix(jnp.log(mu), jnp.log(wts), region, lx, lt, k_max)


def nptf_log_likelihood(
    counts,
    mu,
    populations: Sequence[PointSourcePopulation],
    source_fractions,
    exposure,
    psf: PSFCorrection,
    *,
    k_max: int | None = None,
    n_exposure_regions: int = 1,
    f_min: float = 0.0,
    f_max: float = float("inf"),
    n_nodes: int = 48,
    method: str = "auto",
):
    """NPTF log-likelihood ``sum_p log p_p(counts_p)`` of a counts map.

    Args:
        counts: Observed counts per pixel, (P,), integers >= 0 (checked).
        mu: Poisson mean per pixel, (P,).
        populations: Point-source populations; with none this is the Poisson
            log-likelihood.
        source_fractions: (n_pop, P), see :func:`nptf_log_pmf`.
        exposure: Exposure per pixel [cm^2 s], (P,), concrete.
        psf: :class:`PSFCorrection`.
        k_max: Static largest count; default ``max(counts)`` (``counts`` concrete).
            Must be >= every count (checked when ``counts`` is concrete).
        n_exposure_regions: Exposure regions.
        f_min: Lowest source flux [ph cm^-2 s^-1].
        f_max: Highest source flux [ph cm^-2 s^-1].
        n_nodes: Quadrature nodes per power-law segment.
        method: How ``p_c`` is obtained from the ``x_m``: ``"fft"`` reads it off the
            exponentially tilted PGF by a real FFT (:mod:`jaxdm.fits.nptf_fft`; no
            sequential loop, cost ~ K log K per pixel, gradient by autodiff through
            the FFT); ``"recursion"`` runs NPTFit's recursion (eq. 2.11, cost ~ K^2
            in K sequential steps) with the closed-form gradient; ``"auto"``
            (default) uses the recursion for count buckets with K < 128 and the FFT
            above, where it is 2-9x cheaper (measured CPU time of the vmapped value
            and gradient; ``benchmarks/RESULTS.md``, fifth session). They agree to
            float32 rounding.

    Returns:
        Scalar log-likelihood.

    Raises:
        ValueError: Negative, NaN or non-integer counts; ``counts`` of the wrong shape
            or above ``k_max``.
    """
    counts = jnp.asarray(counts)
    mu = jnp.asarray(mu)
    if counts.shape != mu.shape:
        raise ValueError(
            f"`counts` must have the shape of `mu` {mu.shape}; got {counts.shape}."
        )
    concrete = not isinstance(counts, jax.core.Tracer)
    if concrete:  # checked in NumPy: a jnp check inside a jit trace is traced
        c = np.asarray(counts)
        if not np.all(np.isfinite(c)) or np.any(c < 0):
            raise ValueError(
                "`counts` must be finite and >= 0 (photon counts); got "
                f"min {np.nanmin(c) if np.any(np.isfinite(c)) else c.ravel()[0]} "
                f"and {int(np.sum(~np.isfinite(c)))} non-finite entries."
            )
        if np.any(c != np.round(c)):
            raise ValueError("`counts` must be integers >= 0 (photon counts).")
        if k_max is None:
            k_max = max(int(c.max()), 1)
        elif c.max() > k_max:
            raise ValueError(f"`k_max` = {k_max} is below max(counts) = {c.max()}.")
    else:
        counts = guard_positive(
            guard_finite(counts, "counts"), "counts", allow_zero=True
        )
        if k_max is None:
            raise ValueError("`k_max` is required when `counts` is traced.")
    k_max = check_int(k_max, "k_max", minimum=1)
    method = check_choice(method, "method", ("auto", "fft", "recursion"))

    def log_pmf_at(log_x, log_tot, at, k):
        fft = method == "fft" or (method == "auto" and k >= _FFT_MIN_K)
        return (_log_pmf_fft_at if fft else _log_pmf_at)(log_x, log_tot, at, k)

    mu, populations, wts, region, r_expo = _checked_inputs(
        mu, populations, source_fractions, exposure, n_exposure_regions
    )
    if not concrete:
        log_x, log_tot = _log_x_core(
            mu, populations, wts, region, r_expo, psf, k_max, f_min, f_max, n_nodes
        )
        idx = jnp.clip(counts.astype(jnp.int32), 0, k_max)
        return jnp.sum(log_pmf_at(log_x, log_tot, idx, k_max))
    # Concrete counts: run each pixel's recursion only up to (about) its own count,
    # in buckets of pixels whose counts share k_b = 2^b - 1 (as NPTFit, which recurses
    # to each pixel's count): cost sum_b n_b k_b^2 instead of P k_max^2. The
    # populations' x_m are formed once per exposure region; each bucket mixes them
    # into its own pixels' x_1..x_kb only.
    lx, lt = _population_terms(
        populations, r_expo, psf, k_max, f_min, f_max, n_nodes, mu.dtype
    )
    log_mu, log_w = jnp.log(mu), jnp.log(wts)
    c = np.asarray(counts).astype(int)
    bucket = np.ceil(np.log2(c + 2)).astype(int)
    total = 0.0
    for b in np.unique(bucket):
        idx = np.flatnonzero(bucket == b)
        k_b = min(int(2**b - 1), k_max)
        log_x, log_tot = _mix(log_mu[idx], log_w[:, idx], region[idx], lx, lt, k_b)
        at = jnp.asarray(c[idx], jnp.int32)
        total = total + jnp.sum(log_pmf_at(log_x, log_tot, at, k_b))
    return total
