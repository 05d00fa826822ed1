"""Horizontal position reconstruction from the top-array S2 hit pattern.

Two reconstructions, each ``hits (..., n_top + n_bottom) -> (x, y) (..., 2)`` [cm]:

* :func:`centroid_position`: the count-weighted mean of the top PMT centres. It
  cannot leave the convex hull of the PMT centres, so it is biased inward near the
  wall (the classic reason for likelihood methods; e.g. Solovov et al., IEEE TNS 59
  (2012) 3286, arXiv:1112.1481, for ZEPLIN-III).
* :func:`likelihood_position`: the maximum-likelihood fit of the light-collection
  model (:mod:`.hit_pattern`) with a Poisson likelihood per top PMT, the
  normalisation profiled out (``N = sum c / sum p``, so the fit uses the multinomial
  shape ``-sum_i c_i log(p_i / sum_j p_j)``), minimised by BFGS (optimistix),
  vmapped over events.

The learned reconstruction (an MLP trained through ``jaxdm.train.fit``) sits one
layer up, in :mod:`jaxdm.reconstruction.xenon_position` (the simulators do not import
the learning core). :func:`simulate_s2_patterns` makes its training data and
:func:`position_resolution` measures any reconstruction against the true position as
a function of the S2 size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optimistix as optx

from ..._args import check_int
from ..._checks import check_key
from ..._poison import poison_policy
from ..._typing import Array
from . import _guards as _g
from .hit_pattern import DEFAULT_LIGHT_CONFIG, _check_hits, _collection
from .pmt import LightConfig, OpticalParams, PMTArrays, check_optics, check_pmt_arrays


def _top(hits, pmts):
    pmts = check_pmt_arrays(pmts)
    hits = _check_hits(hits, pmts)
    return hits[..., : pmts.n_top], pmts


@poison_policy
def centroid_position(hits, pmts: PMTArrays) -> Array:
    """Count-weighted centroid of the top-array PMT centres.

    Args:
        hits: Counts per PMT [phd], shape (..., n_top + n_bottom), finite, >= 0.
        pmts: PMT geometry.

    Returns:
        (x, y) [cm], shape (..., 2); NaN where the top array saw nothing.
    """
    top, pmts = _top(hits, pmts)
    tot = jnp.sum(top, axis=-1, keepdims=True)
    xy = top @ pmts.xy_top
    return jnp.where(tot > 0, xy / jnp.where(tot > 0, tot, 1.0), jnp.nan)


def _local_centroid(top, pmts):
    """Centroid of the brightest top PMT and its neighbours (the fit's start).

    ``top`` has shape (n, n_top).

    Neighbours: centres within ``2.5 pmt_radius`` of the brightest PMT (its first
    ring on a close-packed array), so that the diffuse light spread over the whole
    array does not pull the start inward.
    """
    i_max = jnp.argmax(top, axis=-1)
    c_max = pmts.xy_top[i_max]  # (n, 2)
    d2 = jnp.sum((pmts.xy_top[None] - c_max[:, None, :]) ** 2, axis=-1)
    w = top * (d2 < (2.5 * pmts.pmt_radius) ** 2)
    return (w @ pmts.xy_top) / jnp.sum(w, axis=-1, keepdims=True)


class PositionFit(NamedTuple):
    """Result of :func:`likelihood_position`.

    Attributes:
        xy: Best-fit (x, y) [cm], shape (..., 2).
        nll: Profiled negative log-likelihood at the optimum, shape (...).
        converged: True where BFGS met its tolerance within ``max_steps``.
    """

    xy: Array
    nll: Array
    converged: Array


def _shape_nll(xy, top, pmts, optics, z_s2, config):
    """``-sum c_i log(p_i / sum p)`` over the top array (Poisson, N profiled)."""
    p = _collection(xy[0], xy[1], z_s2, pmts, optics, "s2", config)[: pmts.n_top]
    logq = jnp.log(p) - jnp.log(jnp.sum(p))
    return -jnp.sum(top * logq)


@poison_policy
def likelihood_position(
    hits,
    pmts: PMTArrays,
    optics: OpticalParams | None = None,
    *,
    max_steps: int = 64,
    rtol: float = 1e-5,
    atol: float = 1e-4,
    config: LightConfig = DEFAULT_LIGHT_CONFIG,
) -> PositionFit:
    """Maximum-likelihood (x, y) from the top hit pattern under the light model.

    BFGS (``optimistix.BFGS``), started from the local centroid around the
    brightest PMT, on the profiled Poisson likelihood (module docstring); the S2
    emission height is ``pmts.z_s2``. The position is constrained to the TPC
    cross-section by fitting ``w`` in
    ``(x, y) = R w / sqrt(1 + |w|^2)`` (a smooth bijection of the plane onto the
    open disk of radius ``R = pmts.tpc_radius``); ``converged`` flags fits that hit
    ``max_steps``.

    Args:
        hits: Counts per PMT [phd], shape (..., n_top + n_bottom), finite, >= 0,
            with a non-empty top array.
        pmts: PMT geometry (the same as the simulation's, or a model of it).
        optics: Optical parameters of the model (default :class:`OpticalParams`).
        max_steps: BFGS iteration limit (static).
        rtol: Relative tolerance of BFGS.
        atol: Absolute tolerance of BFGS.
        config: Quadrature settings.

    Returns:
        :class:`PositionFit`.
    """
    max_steps = check_int(max_steps, "max_steps", minimum=1)
    top, pmts = _top(hits, pmts)
    optics = check_optics(OpticalParams() if optics is None else optics)
    tot = jnp.sum(top, axis=-1)
    top = _g.guard_relation(
        top,
        tot <= 0,
        "`hits`: the top array is empty in some event; its position is undefined.",
    )
    solver = optx.BFGS(rtol=rtol, atol=atol)

    radius = pmts.tpc_radius

    def to_xy(w):
        return radius * w / jnp.sqrt(1.0 + jnp.sum(w * w))

    def fit_one(c, x0):
        def fn(w, _):
            return _shape_nll(to_xy(w), c, pmts, optics, pmts.z_s2, config)

        u = x0 / radius
        w0 = u / jnp.sqrt(jnp.maximum(1.0 - jnp.sum(u * u), 1e-6))
        sol = optx.minimise(fn, solver, w0, max_steps=max_steps, throw=False)
        ok = sol.result == optx.RESULTS.successful
        return to_xy(sol.value), fn(sol.value, None), ok

    batch = top.shape[:-1]
    flat_c = top.reshape(-1, pmts.n_top)
    flat_x = _local_centroid(flat_c, pmts)
    xy, nll, ok = jax.vmap(fit_one)(flat_c, flat_x)
    return PositionFit(
        xy=xy.reshape(*batch, 2), nll=nll.reshape(batch), converged=ok.reshape(batch)
    )


def _uniform_disk(key, n, radius):
    k1, k2 = jax.random.split(key)
    r = radius * jnp.sqrt(jax.random.uniform(k1, (n,)))
    phi = 2 * jnp.pi * jax.random.uniform(k2, (n,))
    return r * jnp.cos(phi), r * jnp.sin(phi)


@poison_policy
def simulate_s2_patterns(
    key,
    s2_phd,
    n: int,
    pmts: PMTArrays,
    optics: OpticalParams | None = None,
    *,
    r_max=None,
    config: LightConfig = DEFAULT_LIGHT_CONFIG,
):
    """S2 hit patterns at uniform positions for given mean S2 sizes.

    The number of emitted photons is set so that the mean detected S2 (all PMTs)
    equals ``s2_phd`` at each position; counts are Poisson per PMT.

    Args:
        key: Typed PRNG key.
        s2_phd: Mean S2 size [phd], scalar or shape (n,), > 0.
        n: Number of events (static).
        pmts: PMT geometry.
        optics: Optical parameters.
        r_max: Positions uniform in the disk of this radius [cm] (default the TPC
            radius).
        config: Quadrature settings.

    Returns:
        ``(hits (n, n_top + n_bottom), xy (n, 2))``.
    """
    check_key(key)
    n = check_int(n, "n", minimum=1)
    pmts = check_pmt_arrays(pmts)
    optics = check_optics(OpticalParams() if optics is None else optics)
    s2 = _g.guard_values(s2_phd, "s2_phd", low=0.0, allow_equal=False)
    r_max = pmts.tpc_radius if r_max is None else r_max
    r_max = _g.guard_values(r_max, "r_max", low=0.0, allow_equal=False)
    r_max = _g.guard_relation(
        r_max, r_max > pmts.tpc_radius, "`r_max` exceeds `pmts.tpc_radius`."
    )
    k_pos, k_hit = jax.random.split(key)
    x, y = _uniform_disk(k_pos, n, r_max)
    p = optics.pmt_efficiency * _collection(
        x, y, jnp.full_like(x, pmts.z_s2), pmts, optics, "s2", config
    )
    mu = p * (jnp.broadcast_to(s2, (n,)) / jnp.sum(p, axis=-1))[:, None]
    hits = jax.random.poisson(k_hit, mu).astype(mu.dtype)
    return hits, jnp.stack([x, y], axis=-1)


class ResolutionTable(NamedTuple):
    """Position resolution against truth per S2 size (all arrays of shape (k,)).

    Attributes:
        s2: Mean S2 size [phd].
        sigma_x: Standard deviation of ``x_rec - x_true`` [cm].
        sigma_y: Standard deviation of ``y_rec - y_true`` [cm].
        radial_bias: Mean of ``r_rec - r_true`` [cm] (negative: inward).
        n_events: Events per row.
    """

    s2: Array
    sigma_x: Array
    sigma_y: Array
    radial_bias: Array
    n_events: Array


@poison_policy
def position_resolution(
    key,
    reconstruct: Callable[[Array], Array],
    pmts: PMTArrays,
    s2_sizes,
    n_events: int = 500,
    optics: OpticalParams | None = None,
    *,
    r_min: float = 0.0,
    r_max=None,
) -> ResolutionTable:
    """Resolution of a reconstruction against the true (x, y), per S2 size.

    For each size, ``n_events`` S2 patterns at positions uniform in the annulus
    ``r_min <= r <= r_max`` (:func:`simulate_s2_patterns`, rejection-free: uniform
    in ``r^2``) are reconstructed by ``reconstruct(hits) -> (n, 2)``.

    Args:
        key: Typed PRNG key.
        reconstruct: Callable on hits (n, n_top + n_bottom) returning (n, 2) [cm].
        pmts: PMT geometry used to simulate.
        s2_sizes: Mean S2 sizes [phd], shape (k,), > 0.
        n_events: Events per size.
        optics: Optical parameters used to simulate.
        r_min: Inner radius of the annulus [cm].
        r_max: Outer radius [cm] (default the TPC radius).

    Returns:
        :class:`ResolutionTable`.
    """
    check_key(key)
    n_events = check_int(n_events, "n_events", minimum=2)
    pmts = check_pmt_arrays(pmts)
    optics = check_optics(OpticalParams() if optics is None else optics)
    sizes = jnp.atleast_1d(jnp.asarray(s2_sizes))
    sizes = _g.guard_values(sizes, "s2_sizes", low=0.0, allow_equal=False)
    r_max = float(pmts.tpc_radius) if r_max is None else float(r_max)
    if not 0.0 <= r_min < r_max <= float(pmts.tpc_radius):
        raise ValueError(
            "`r_min`, `r_max` must satisfy 0 <= r_min < r_max <= pmts.tpc_radius; "
            f"got {r_min}, {r_max}."
        )
    rows = []
    for i, s2 in enumerate(sizes):
        k_pos, k_hit = jax.random.split(jax.random.fold_in(key, i))
        u = jax.random.uniform(k_pos, (2, n_events))
        r = jnp.sqrt(r_min**2 + (r_max**2 - r_min**2) * u[0])
        x, y = r * jnp.cos(2 * jnp.pi * u[1]), r * jnp.sin(2 * jnp.pi * u[1])
        p = optics.pmt_efficiency * _collection(
            x, y, jnp.full_like(x, pmts.z_s2), pmts, optics, "s2", DEFAULT_LIGHT_CONFIG
        )
        mu = p * (s2 / jnp.sum(p, axis=-1))[:, None]
        hits = jax.random.poisson(k_hit, mu).astype(mu.dtype)
        rec = jnp.asarray(reconstruct(hits))
        d = rec - jnp.stack([x, y], axis=-1)
        rows.append(
            (
                jnp.std(d[:, 0]),
                jnp.std(d[:, 1]),
                jnp.mean(jnp.hypot(rec[:, 0], rec[:, 1]) - r),
            )
        )
    sx, sy, bias = (jnp.stack(c) for c in zip(*rows, strict=True))
    return ResolutionTable(
        s2=sizes,
        sigma_x=sx,
        sigma_y=sy,
        radial_bias=bias,
        n_events=jnp.full(sizes.shape, n_events),
    )
