"""Point-source populations with a multiply broken power-law source-count distribution.

``dN/dF = A (F/F_b1)^-n_1`` above the highest break ``F_b1`` and continuous power laws
``~ F^-n_k`` between successive breaks (NPTFit convention, Mishra-Sharma, Rodd & Safdi
2017, arXiv 1612.03173, eq. 2.3). ``A`` is the number of sources per unit flux
[1/(ph cm^-2 s^-1)] at ``F_b1`` in the whole template region; fluxes F [ph cm^-2 s^-1]
are integrated over the full energy range. Internally fluxes are in units of F_b1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..._checks import _guard, guard_finite, guard_positive


def _checked(norm, indices, breaks, f_min, f_max, prefix=""):
    """Guard a source-count law (eagerly and under jit); names ``<prefix>argument``.

    Value checks only: ``norm`` >= 0, ``indices`` finite, ``breaks`` > 0 and strictly
    decreasing, and the convergence conditions of :func:`check_source_counts`
    (``indices[0] > 2`` when ``f_max = inf``, ``indices[-1] < 1`` when ``f_min = 0``).
    """
    if norm is not None:
        norm = guard_positive(norm, f"{prefix}norm", allow_zero=True)
    indices = guard_finite(indices, f"{prefix}indices")
    breaks = guard_positive(breaks, f"{prefix}breaks")
    if indices.ndim != 1 or breaks.ndim != 1 or indices.size != breaks.size + 1:
        raise ValueError(
            f"`{prefix}indices` must have one more entry than `{prefix}breaks` (1-D); "
            f"got shapes {indices.shape} and {breaks.shape}."
        )
    breaks = _guard(
        breaks,
        jnp.any(jnp.diff(breaks) >= 0),
        f"`{prefix}breaks` must be strictly decreasing [ph cm^-2 s^-1].",
    )
    if np.isinf(f_max):
        indices = _guard(
            indices,
            ~(indices[0] > 2),
            f"`{prefix}indices`[0] must be > 2 for a finite flux with f_max = inf.",
        )
    if f_min == 0:
        indices = _guard(
            indices,
            ~(indices[-1] < 1),
            f"`{prefix}indices`[-1] must be < 1 for a finite number with f_min = 0.",
        )
    return norm, indices, breaks


def check_source_counts(indices, breaks, f_min=0.0, f_max=np.inf):
    """Validate a broken power law: indices (k+1,), strictly decreasing breaks (k,).

    The number integral must converge at low flux (``n_last < 1`` when f_min = 0) and
    the flux integral at high flux (``n_1 > 2`` when f_max = inf).

    Raises:
        ValueError: Naming ``ps_indices``, ``ps_breaks``, ``ps_f_min`` or ``ps_f_max``.
    """
    n = np.asarray(indices, float)
    fb = np.asarray(breaks, float)
    if n.ndim != 1 or fb.ndim != 1 or n.size != fb.size + 1 or fb.size < 1:
        raise ValueError(
            f"`ps_indices` must have one more entry than `ps_breaks` (>= 1); "
            f"got shapes {n.shape} and {fb.shape}."
        )
    if np.any(fb <= 0) or np.any(np.diff(fb) >= 0):
        raise ValueError(
            f"`ps_breaks` must be positive and strictly decreasing [ph/cm^2/s];"
            f" got {fb}."
        )
    if not 0 <= f_min < fb[-1] or not f_max > fb[0]:
        raise ValueError(
            f"need 0 <= `ps_f_min` < breaks < `ps_f_max`; got f_min={f_min}, "
            f"f_max={f_max}, breaks={fb}."
        )
    if np.isinf(f_max) and not n[0] > 2:
        raise ValueError(
            f"`ps_indices`[0] must be > 2 for a finite flux integral with "
            f"f_max = inf; got {n[0]}."
        )
    if f_min == 0 and not n[-1] < 1:
        raise ValueError(
            f"`ps_indices`[-1] must be < 1 for a finite number of sources with "
            f"f_min = 0; got {n[-1]}."
        )


def _segments(indices, breaks, f_min, f_max):
    """Edges (hi, lo) in units of F_b1 and continuity coefficients c_k per segment."""
    n = jnp.asarray(indices)
    fb = jnp.asarray(breaks)
    xb = fb / fb[0]
    hi = jnp.concatenate([jnp.asarray([f_max]) / fb[0], xb])
    lo = jnp.concatenate([xb, jnp.asarray([f_min]) / fb[0]])
    # c_k = c_{k-1} x_bk^(n_k - n_{k-1}), c_0 = 1.
    logc = jnp.concatenate([jnp.zeros(1), jnp.cumsum(jnp.log(xb) * (n[1:] - n[:-1]))])
    return n, hi, lo, jnp.exp(logc)


def _pw(x, q):
    """``x**q`` with limits 0**q = 0 (q > 0), inf**q = 0 (q < 0); NaN-free grads."""
    bad = (x == 0) | jnp.isinf(x)
    return jnp.where(bad, 0.0, jnp.where(bad, 1.0, x) ** q)


def _powint(lo, hi, p):
    q = p + 1.0
    close = jnp.abs(q) < 1e-6
    qs = jnp.where(close, 1.0, q)
    lo_s = jnp.where(close & (lo > 0), lo, 1.0)
    hi_s = jnp.where(close & jnp.isfinite(hi), hi, 1.0)
    return jnp.where(close, jnp.log(hi_s / lo_s), (_pw(hi, qs) - _pw(lo, qs)) / qs)


def _moments(indices, breaks, f_min, f_max, m):
    n, hi, lo, c = _segments(indices, breaks, f_min, f_max)
    return c * _powint(lo, hi, m - n)


def expected_number(norm, indices, breaks, f_min=0.0, f_max=np.inf):
    """Mean number of sources ``int dN/dF dF`` (dimensionless)."""
    norm, indices, breaks = _checked(norm, indices, breaks, f_min, f_max)
    fb1 = jnp.asarray(breaks)[0]
    return norm * fb1 * jnp.sum(_moments(indices, breaks, f_min, f_max, 0.0))


def expected_flux(norm, indices, breaks, f_min=0.0, f_max=np.inf):
    """Mean total flux ``int F dN/dF dF`` [ph cm^-2 s^-1]."""
    norm, indices, breaks = _checked(norm, indices, breaks, f_min, f_max)
    fb1 = jnp.asarray(breaks)[0]
    return norm * fb1**2 * jnp.sum(_moments(indices, breaks, f_min, f_max, 1.0))


def sample_fluxes(key, shape, indices, breaks, f_min=0.0, f_max=np.inf):
    """Inverse-CDF samples of F from the normalised dN/dF [ph cm^-2 s^-1].

    A segment is picked with probability proportional to its number integral, then
    ``x = (lo^q + u (hi^q - lo^q))^(1/q)``, ``q = 1 - n_k`` within it.
    """
    _, indices, breaks = _checked(None, indices, breaks, f_min, f_max)
    n, hi, lo, c = _segments(indices, breaks, f_min, f_max)
    w = c * _powint(lo, hi, -n)
    kseg, ku = jax.random.split(key)
    k = jax.random.categorical(kseg, jnp.log(w), shape=shape)
    u = jax.random.uniform(ku, shape, dtype=w.dtype)
    q, a, b = 1.0 - n[k], lo[k], hi[k]
    close = jnp.abs(q) < 1e-6
    qs = jnp.where(close, 1.0, q)
    x_pl = (_pw(a, qs) + u * (_pw(b, qs) - _pw(a, qs))) ** (1 / qs)
    x_log = jnp.where(close, a, 1.0) * (b / jnp.where(close, a, 1.0)) ** u
    return jnp.asarray(breaks)[0] * jnp.where(close, x_log, x_pl)


def _is_concrete(*xs):
    return not any(isinstance(x, jax.core.Tracer) for x in xs)


def check_max_sources(mean_number, max_sources):
    """Raise if a Poisson(``mean_number``) draw can exceed ``max_sources``.

    The criterion is ``mean + 6 sqrt(mean) > max_sources`` (a 6-sigma margin,
    P(N > max_sources) below ~1e-8 for the Gaussian limit of the Poisson law).

    Args:
        mean_number: Concrete mean number of sources (scalar or array; the largest
            entry is checked).
        max_sources: Static maximum number of sources.

    Raises:
        ValueError: Naming ``max_sources`` and the value needed.
    """
    m = float(np.max(np.asarray(mean_number)))
    need = int(np.ceil(m + 6.0 * np.sqrt(m)))
    if need > max_sources:
        raise ValueError(
            f"`max_sources` = {max_sources} is too small: the expected number of "
            f"point sources is {m:.4g}, so P(N > max_sources) is not negligible and "
            f"sources would be dropped; use `max_sources` >= {need} (mean + "
            f"6 sqrt(mean)) or lower `ps_norm`."
        )


def sample_population(
    key, norm, indices, breaks, spatial_prob, max_sources, f_min=0.0, f_max=np.inf
):
    """Poisson number of sources, fluxes and pixel positions with a static maximum.

    Shapes are static, so at most ``max_sources`` sources are kept. When ``norm``,
    ``indices`` and ``breaks`` are concrete (not traced), a ValueError is raised up
    front if the expected number of sources makes a draw above ``max_sources``
    non-negligible (:func:`check_max_sources`). Under ``jit``/``vmap``/``grad`` the
    check cannot run; then the excess is not silently lost but reported in
    ``n_dropped`` (``max(n_drawn - max_sources, 0)``), which callers should inspect
    (e.g. reject or flag simulations with ``n_dropped > 0``).

    Args:
        key: Typed PRNG key.
        norm: ``A`` [1/(ph cm^-2 s^-1)].
        indices: Power-law indices (k+1,).
        breaks: Breaks [ph cm^-2 s^-1], (k,), decreasing.
        spatial_prob: Unnormalised pixel probabilities (P,) (spatial template x solid
            angle).
        max_sources: Static maximum number of kept sources.
        f_min: Lowest flux.
        f_max: Highest flux.

    Returns:
        ``(fluxes (max_sources,), pixels (max_sources,) int, mask (max_sources,) bool,
        n_drawn int, n_dropped int)``; masked entries have zero flux.

    Raises:
        ValueError: Concrete parameters with ``mean + 6 sqrt(mean) > max_sources``.
    """
    mean_n = expected_number(norm, indices, breaks, f_min, f_max)
    if _is_concrete(norm, indices, breaks, mean_n):
        check_max_sources(mean_n, max_sources)
    spatial_prob = guard_positive(spatial_prob, "spatial_prob", allow_zero=True)
    spatial_prob = _guard(
        spatial_prob,
        ~(jnp.sum(spatial_prob) > 0),
        "`spatial_prob` must have a positive sum.",
    )
    mean_n = guard_positive(
        mean_n, "norm (the mean number of sources)", allow_zero=True
    )
    kn, kf, kp = jax.random.split(key, 3)
    n_drawn = jax.random.poisson(kn, mean_n)
    fl = sample_fluxes(kf, (max_sources,), indices, breaks, f_min, f_max)
    # Categorical draw by inverse CDF (searchsorted): O(P + n log P), unlike Gumbel-max.
    cdf = jnp.cumsum(spatial_prob)
    u = jax.random.uniform(kp, (max_sources,), dtype=cdf.dtype) * cdf[-1]
    pix = jnp.clip(jnp.searchsorted(cdf, u, side="right"), 0, cdf.shape[0] - 1)
    mask = jnp.arange(max_sources) < n_drawn
    n_dropped = jnp.maximum(n_drawn - max_sources, 0)
    return jnp.where(mask, fl, 0.0), pix, mask, n_drawn, n_dropped


def source_flux_map(fluxes, pixels, npix):
    """Sum source fluxes into pixels [ph cm^-2 s^-1], shape (npix,)."""
    return jnp.zeros(npix, fluxes.dtype).at[pixels].add(fluxes)
