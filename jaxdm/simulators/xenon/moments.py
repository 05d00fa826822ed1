"""Signal moments and the per-node Gaussian model behind the xenon expectations.

:func:`signal_moments` propagates the first two moments of (cS1, cS2) through the
chain of :mod:`.simulate` (laws of total expectation/variance); :class:`XenonModel`
holds the physics parameters of a template. The private helpers build, per source,
the bivariate-Gaussian nodes over the energy grid and Gauss-Legendre depth nodes and
the closed-form threshold integrals that :mod:`.histogram` (2-D histogram, density
at events, binned likelihood) and :mod:`.expectations` (region, 1-D and total
expectations) share; the method and its validation are described in
:mod:`.histogram`.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr, ndtr

from ..._poison import poison_policy
from ..._typing import Array
from . import _guards as _g
from .detector import Detector, _electron_survival, _light_collection, check_detector
from .spectra import RecoilSpectrum, check_spectrum
from .yields import (
    YieldParams,
    _check_recoil_type,
    _quanta_fluctuation_params,
    _quanta_moments,
    check_yields,
)


class XenonModel(eqx.Module):
    """Physics parameters of an expected histogram.

    Attributes:
        sources: Tuple of RecoilSpectrum (rates differentiable; types static).
        exposure: Exposure [tonne year].
        yields: NEST yield parameters.
    """

    sources: tuple
    exposure: Array = eqx.field(converter=jnp.asarray)
    yields: YieldParams = eqx.field(default_factory=YieldParams)


class SignalMoments(eqx.Module):
    """Moments of the corrected signals at given energies and depths.

    Attributes:
        mean_cs1: Mean cS1 [phd].
        var_cs1: Variance of cS1 [phd^2].
        mean_cs2: Mean cS2 [phd].
        var_cs2: Variance of cS2 [phd^2].
        cov: Covariance of cS1 and cS2 [phd^2].
        p_s1: Probability of passing the S1 coincidence.
        p_s2: Probability of passing the raw S2 threshold.
        mean_det: Mean number of detected S1 photons (before double-phe emission),
            the quantity the S1 coincidence counts.
        var_det: Its variance.
    """

    mean_cs1: Array
    var_cs1: Array
    mean_cs2: Array
    var_cs2: Array
    cov: Array
    p_s1: Array
    p_s2: Array
    mean_det: Array
    var_det: Array


@poison_policy
def signal_moments(
    energy, z, recoil_type: str, detector: Detector, yields: YieldParams
):
    """Means, variances, covariance and threshold acceptances of (cS1, cS2).

    Args:
        energy: Recoil energy [keV] (broadcasts with ``z``).
        z: Height [cm] (negative).
        recoil_type: "ER" or "NR".
        detector: Detector parameters.
        yields: Yield parameters.

    Returns:
        :class:`SignalMoments` of the broadcast shape.

    Raises:
        ValueError: (poisoned outputs under ``jit``) naming ``energy``, ``z``,
            ``detector.<field>`` or ``yields.<field>`` for bad values.
    """
    _check_recoil_type(recoil_type)
    energy = _g.guard_values(energy, "energy", low=0.0)
    z = _g.guard_values(z, "z", upper=0.0)
    detector = check_detector(detector)
    yields = check_yields(yields, "yields")
    return _signal_moments(energy, z, recoil_type, detector, yields)


def _signal_moments(energy, z, recoil_type, detector, yields):
    st = _quanta_fluctuation_params(
        energy, detector.drift_field, detector.density, yields, recoil_type
    )
    m_ph, m_e, v_ph, v_e, c_pe = _quanta_moments(st)
    d = detector
    lce = _light_collection(z, d)
    q = d.g1 * lce
    m_det = q * m_ph
    v_det = q * (1 - q) * m_ph + q**2 * v_ph
    p = d.p_dpe
    m_phe = (1 + p) * m_det
    v_phe = (1 + p) ** 2 * v_det + p * (1 - p) * m_det + d.spe_resolution**2 * m_phe
    scale1 = 1.0 / ((1 + p) * lce)
    mean_cs1 = m_phe * scale1
    var_cs1 = v_phe * scale1**2

    s = _electron_survival(z, d)
    t = s * d.extraction_efficiency
    m_ext = t * m_e
    v_ext = t * (1 - t) * m_e + t**2 * v_e
    gain, width = d.s2_area_scale * d.se_gain, d.s2_area_scale * d.se_width
    m_s2 = gain * m_ext
    v_s2 = gain**2 * v_ext + width**2 * m_ext
    mean_cs2 = m_s2 / s
    var_cs2 = v_s2 / s**2
    cov = d.g1 * d.g2_effective * c_pe

    p_s1 = ndtr((m_det - d.s1_coincidence + 0.5) / jnp.sqrt(v_det + 0.25))
    p_s2 = ndtr((m_s2 - d.s2_threshold) / jnp.sqrt(v_s2 + 1.0))
    return SignalMoments(
        mean_cs1, var_cs1, mean_cs2, var_cs2, cov, p_s1, p_s2, m_det, v_det
    )


def _check_edges(edges, name):
    x = jnp.asarray(edges, dtype=jnp.result_type(float))
    if x.ndim != 1 or x.shape[0] < 2:
        raise ValueError(
            f"`{name}` must be a 1-D array of >= 2 bin edges; got shape {x.shape}."
        )
    if isinstance(x, jax.core.Tracer):
        bad = ~jnp.isfinite(x).all() | jnp.any(jnp.diff(x) <= 0)
        return _g.guard_relation(
            x,
            bad,
            f"`{name}` must be finite and strictly increasing; got a traced value.",
        )
    e = np.asarray(x)
    if not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
        raise ValueError(f"`{name}` must be finite and strictly increasing; got {e}.")
    return x


def _check_inputs(params, detector):
    """Check the model and the detector (eagerly and when traced); return both."""
    if not isinstance(params, XenonModel):
        raise TypeError(f"`params` must be a XenonModel; got {type(params).__name__}.")
    if len(params.sources) == 0:
        raise ValueError("`params.sources` must contain at least one RecoilSpectrum.")
    for i, src in enumerate(params.sources):
        if not isinstance(src, RecoilSpectrum):
            raise TypeError(
                f"`params.sources[{i}]` must be a RecoilSpectrum; got "
                f"{type(src).__name__}."
            )
    params = XenonModel(
        sources=tuple(
            check_spectrum(src, f"params.sources[{i}]")
            for i, src in enumerate(params.sources)
        ),
        exposure=_g.guard_values(params.exposure, "params.exposure", low=0.0),
        yields=check_yields(params.yields, "params.yields"),
    )
    return params, check_detector(detector)


def _trapezoid_weights(energy):
    h = jnp.diff(energy)
    zero = jnp.zeros((1,), h.dtype)
    return 0.5 * (jnp.concatenate([h, zero]) + jnp.concatenate([zero, h]))


def _depth_nodes(detector, n_z):
    x, w = np.polynomial.legendre.leggauss(n_z)
    lo, hi = detector.fid_z_min, detector.fid_z_max
    z = 0.5 * (hi + lo) + 0.5 * (hi - lo) * jnp.asarray(x)
    return z, jnp.asarray(w) / 2.0


def _depth_cell_s2_cuts(detector, n_z):
    """cS2 threshold range [phd] over each depth node's cell, shapes (n_z,), (n_z,).

    The cells tile the fiducial height with lengths proportional to the
    Gauss-Legendre weights (each node lies inside its cell). Raw S2 >= threshold is
    ``cS2 >= s2_threshold / survival(z)``: lowest at the cell's top, highest at its
    bottom.
    """
    _, w = np.polynomial.legendre.leggauss(n_z)
    b = jnp.asarray(np.concatenate([[-1.0], -1.0 + np.cumsum(w)]))
    lo, hi = detector.fid_z_min, detector.fid_z_max
    zb = 0.5 * (hi + lo) + 0.5 * (hi - lo) * b
    cut = detector.s2_threshold / _electron_survival(zb, detector)
    return cut[1:], cut[:-1]


class _Nodes(NamedTuple):
    """Per-(energy, depth)-node Gaussian model of one source, fields of shape (G, Z).

    weight: expected events of the node before thresholds; (mx, sx), (my, sy), rho:
    the bivariate Gaussian of (cS1, cS2) [phd]; mean_det, var_det, c_det: moments of
    the detected S1 photons and their covariance with cS1; s2_lo, s2_hi: the cS2 cut
    over the node's depth cell.
    """

    weight: Array
    mx: Array
    sx: Array
    my: Array
    sy: Array
    rho: Array
    mean_det: Array
    var_det: Array
    c_det: Array
    s2_lo: Array
    s2_hi: Array


def _source_nodes(source, params, detector, n_z):
    """:class:`_Nodes` of one source (energy grid x Gauss-Legendre depth nodes)."""
    z, wz = _depth_nodes(detector, n_z)
    e = source.energy
    mom = _signal_moments(
        e[:, None], z[None, :], source.recoil_type, detector, params.yields
    )
    weight = (params.exposure * source.rate * _trapezoid_weights(e))[:, None] * wz[
        None, :
    ]
    rho = jnp.clip(mom.cov / jnp.sqrt(mom.var_cs1 * mom.var_cs2), -0.999, 0.999)
    # S1 coincidence given cS1: detected photons and cS1 are jointly Gaussian with
    # cov(n_det, cS1) = var(n_det) / lce = var(n_det) mean(cS1) / mean(n_det).
    c_det = mom.var_det * mom.mean_cs1 / jnp.maximum(mom.mean_det, 1e-30)
    s2_lo, s2_hi = _depth_cell_s2_cuts(detector, n_z)
    shape = weight.shape
    return _Nodes(
        weight,
        mom.mean_cs1,
        jnp.sqrt(mom.var_cs1),
        mom.mean_cs2,
        jnp.sqrt(mom.var_cs2),
        rho,
        mom.mean_det,
        mom.var_det,
        c_det,
        jnp.broadcast_to(s2_lo[None, :], shape),
        jnp.broadcast_to(s2_hi[None, :], shape),
    )


def _lift(a, ndim):
    """Prepend singleton axes to ``a`` up to ``ndim`` (explicit rank promotion)."""
    a = jnp.asarray(a)
    return a.reshape((1,) * (ndim - a.ndim) + a.shape)


def _expand(nodes, k):
    """Append ``k`` singleton axes to every field (broadcast against bins/nodes)."""
    return jax.tree.map(lambda a: a.reshape(a.shape + (1,) * k), nodes)


def _p_s1_given_cs1(nd, u, s1_coincidence, *, log=False):
    """P(n_det >= coincidence | cS1 = mx + sx u) (or its log), broadcast shape."""
    beta = nd.c_det / nd.sx**2
    m_det = nd.mean_det + beta * nd.sx * u
    v_det = jnp.maximum(nd.var_det - beta * nd.c_det, 0.0)
    t = (m_det - s1_coincidence + 0.5) / jnp.sqrt(v_det + 0.25)
    return log_ndtr(t) if log else ndtr(t)


def _cs2_given_cs1(nd, u):
    """Mean and sd [phd] of cS2 given cS1 = mx + sx u."""
    return nd.my + nd.rho * nd.sy * u, nd.sy * jnp.sqrt(1 - nd.rho**2)


def _s2_pass_fraction(c, nd):
    """Fraction of the node's depth cell whose S2 cut passes at cS2 = ``c`` [phd].

    Within a cell the cut rises from ``s2_lo`` (cell top) to ``s2_hi`` (bottom); the
    passing fraction is taken linear in cS2 between them (exactly linear in log cS2:
    the cut varies by < 10 % over a cell, so the difference is negligible).
    """
    return jnp.clip((c - nd.s2_lo) / (nd.s2_hi - nd.s2_lo), 0.0, 1.0)


def _dphi(a, b):
    """Phi(b) - Phi(a) for a <= b, accurate in both tails."""
    return jnp.where(a > 0, ndtr(-a) - ndtr(-b), ndtr(b) - ndtr(a))


def _s2_pass_cdf(c, mean, sd, nd):
    """``int_{-inf}^c N(t; mean, sd) r(t) dt`` with r = :func:`_s2_pass_fraction`.

    ``c=None`` is +infinity. Closed form: on the ramp, ``int_a^b phi(v) (v - a) dv =
    phi(a) - phi(b) - a (Phi(b) - Phi(a))`` in standard units.
    """
    a = (nd.s2_lo - mean) / sd
    top = (nd.s2_hi - mean) / sd
    b = top if c is None else (jnp.clip(c, nd.s2_lo, nd.s2_hi) - mean) / sd
    pdf = jnp.exp(-0.5 * a**2) - jnp.exp(-0.5 * b**2)
    ramp = jnp.maximum(pdf / jnp.sqrt(2 * jnp.pi) - a * _dphi(a, b), 0.0)
    ramp = ramp * sd / (nd.s2_hi - nd.s2_lo)
    if c is None:
        return ramp + ndtr(-top)
    return ramp + _dphi(top, jnp.maximum((c - mean) / sd, top))


def _cs1_quadrature(nd, x_lo, x_hi, n_gl, n_sigma=8.0):
    """Gauss-Legendre nodes for ``int_{x_lo}^{x_hi} N(x; mx, sx) g(x) dx`` per node.

    The interval is clipped to ``mx +- n_sigma sx`` (the Gaussian outside is < 1e-15).
    ``nd`` fields and ``x_lo``, ``x_hi`` broadcast to a shape S; returns the
    standardised cS1 nodes ``u`` and weights (pdf times interval weight), shape
    S + (n_gl,).
    """
    gx, gw = (jnp.asarray(a) for a in np.polynomial.legendre.leggauss(n_gl))
    lo = jnp.maximum(x_lo, nd.mx - n_sigma * nd.sx)
    hi = jnp.maximum(jnp.minimum(x_hi, nd.mx + n_sigma * nd.sx), lo)
    gx, gw = _lift(gx, lo.ndim + 1), _lift(gw, lo.ndim + 1)
    x = 0.5 * (lo + hi)[..., None] + 0.5 * (hi - lo)[..., None] * gx
    u = (x - nd.mx[..., None]) / nd.sx[..., None]
    pdf = jnp.exp(-0.5 * u**2) / (jnp.sqrt(2 * jnp.pi) * nd.sx[..., None])
    return u, pdf * 0.5 * (hi - lo)[..., None] * gw


def _node_integral(nd, detector, x_lo, x_hi, c_bounds, n_gl):
    """Per-node expected fraction with cS1 in [x_lo, x_hi] and cS2 in ``c_bounds``.

    ``nd`` fields, ``x_lo`` and ``x_hi`` broadcast to S; ``c_bounds(cm, cs, e)``
    returns the passing-cut probability of cS2 given the cS1 nodes (shape S +
    (n_gl,) + T). Returns shape S + T.
    """
    u, wx = _cs1_quadrature(nd, x_lo, x_hi, n_gl)
    e = _expand(nd, 1)
    cm, cs = _cs2_given_cs1(e, u)
    w = wx * _p_s1_given_cs1(e, u, detector.s1_coincidence)
    py = c_bounds(cm, cs, e)
    extra = py.ndim - w.ndim
    return jnp.sum(w.reshape(w.shape + (1,) * extra) * py, axis=w.ndim - 1)
