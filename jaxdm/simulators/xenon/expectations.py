"""Expected xenon event counts in a region, per 1-D bin and in total.

Integrals of the density of :func:`.histogram.event_log_rate` (the model of
:func:`.histogram.expected_histogram`, described there) over a (cS1, log10 cS2)
rectangle, over 1-D bins of cS1, cS2, log10 cS2, true or reconstructed energy, and
over every (cS1, cS2): each node's cS1 Gaussian by ``n_gl`` Gauss-Legendre nodes
within 8 sigma, the cS2 (or reconstructed-energy) range exactly. Tested against the
2-D histogram (rel 1e-3) in tests/simulators/xenon/test_histogram.py.
"""

from __future__ import annotations

import jax.numpy as jnp

from ..._poison import poison_policy
from ..._typing import Array
from .detector import Detector
from .moments import (
    XenonModel,
    _check_edges,
    _check_inputs,
    _cs1_quadrature,
    _cs2_given_cs1,
    _expand,
    _lift,
    _node_integral,
    _p_s1_given_cs1,
    _s2_pass_cdf,
    _source_nodes,
)
from .yields import _work_function


def _check_region(region):
    try:
        (x0, x1), (y0, y1) = region
    except (TypeError, ValueError):
        raise ValueError(
            "`region` must be ((cs1_lo, cs1_hi), (log10cs2_lo, log10cs2_hi)); got "
            f"{region!r}."
        ) from None
    xe = _check_edges(jnp.asarray([x0, x1]), "region[0] (cS1 range)")
    ye = _check_edges(jnp.asarray([y0, y1]), "region[1] (log10 cS2 range)")
    return xe, ye


@poison_policy
def expected_in_region(
    params: XenonModel,
    detector: Detector,
    region,
    *,
    n_depth: int = 4,
    n_gl: int = 48,
) -> Array:
    """Expected events per source in a (cS1, log10 cS2) rectangle, shape (S,).

    The integral of the density of :func:`event_log_rate` over ``region`` (cS2
    exact; cS1 by ``n_gl`` Gauss-Legendre nodes over each node's Gaussian within
    ``mx +- 8 sx`` clipped to the region).

    Args:
        params: :class:`XenonModel`.
        detector: Detector parameters.
        region: ``((cs1_lo, cs1_hi) [phd], (log10cs2_lo, log10cs2_hi))``.
        n_depth: Gauss-Legendre depth nodes (static).
        n_gl: cS1 quadrature nodes per energy/depth node (static).
    """
    params, detector = _check_inputs(params, detector)
    xe, ye = _check_region(region)
    c0, c1 = 10.0 ** ye[0], 10.0 ** ye[1]

    def band(cm, cs, e):
        return jnp.maximum(
            _s2_pass_cdf(c1, cm, cs, e) - _s2_pass_cdf(c0, cm, cs, e), 0.0
        )

    out = []
    for source in params.sources:
        nd = _source_nodes(source, params, detector, n_depth)
        acc = _node_integral(nd, detector, xe[0], xe[1], band, n_gl)
        out.append(jnp.sum(nd.weight * acc))
    return jnp.stack(out)


@poison_policy
def expected_histogram_1d(
    params: XenonModel,
    detector: Detector,
    variable: str,
    edges,
    *,
    n_depth: int = 4,
    n_gl: int = 48,
):
    """Expected counts per 1-D bin of an event variable, differentiable.

    The marginal of the model of :func:`expected_histogram` (same thresholds as
    cuts correlated with the observables), integrated over the other observable.

    Args:
        params: :class:`XenonModel`.
        detector: Detector parameters.
        variable: One of "cs1" [phd], "cs2" [phd], "log10_cs2", "energy" (true recoil
            energy [keV], after thresholds), "energy_rec" (``W (cS1/g1 + cS2/g2)``
            [keV]).
        edges: Strictly increasing bin edges, shape (B + 1,).
        n_depth: Gauss-Legendre depth nodes (static).
        n_gl: cS1 quadrature nodes per energy/depth node (static).

    Returns:
        Expected counts, shape (B,).
    """
    params, detector = _check_inputs(params, detector)
    edges = _check_edges(edges, "edges")
    names = ("cs1", "cs2", "log10_cs2", "energy", "energy_rec")
    if variable not in names:
        raise ValueError(f"`variable` must be one of {names}; got {variable!r}.")
    total = jnp.zeros((edges.shape[0] - 1,), edges.dtype)
    inf = jnp.inf

    def all_cs2(cm, cs, e):
        return _s2_pass_cdf(None, cm, cs, e)

    def cs2_bins(ce):
        def f(cm, cs, e):
            cdf = _s2_pass_cdf(
                _lift(ce, cm.ndim + 1), cm[..., None], cs[..., None], _expand(e, 1)
            )
            return jnp.maximum(jnp.diff(cdf, axis=-1), 0.0)

        return f

    for source in params.sources:
        nd = _source_nodes(source, params, detector, n_depth)
        if variable == "cs1":
            acc = _node_integral(
                _expand(nd, 1),
                detector,
                _lift(edges[:-1], 3),
                _lift(edges[1:], 3),
                all_cs2,
                n_gl,
            )
        elif variable in ("cs2", "log10_cs2"):
            ce = 10.0**edges if variable == "log10_cs2" else edges
            acc = _node_integral(nd, detector, -inf, inf, cs2_bins(ce), n_gl)
        elif variable == "energy_rec":
            # E_rec = a cS1 + b cS2: a bin in E_rec given cS1 is a cS2 interval.
            w_kev = _work_function(params.yields, detector.density) * 1e-3
            a, b = w_kev / detector.g1, w_kev / detector.g2_effective

            u, wx = _cs1_quadrature(nd, -inf, inf, n_gl)
            e1 = _expand(nd, 1)
            cm, cs = _cs2_given_cs1(e1, u)
            x = e1.mx + e1.sx * u
            ce = (_lift(edges, 4) - a * x[..., None]) / b  # (G, Z, K, B + 1)
            cdf = _s2_pass_cdf(ce, cm[..., None], cs[..., None], _expand(e1, 1))
            py = jnp.maximum(jnp.diff(cdf, axis=-1), 0.0)
            w = wx * _p_s1_given_cs1(e1, u, detector.s1_coincidence)
            acc = jnp.sum(w[..., None] * py, axis=-2)
        else:  # true energy: each node's accepted count in the bin holding it
            acc_node = _node_integral(nd, detector, -inf, inf, all_cs2, n_gl)
            w = nd.weight * acc_node
            en = jnp.broadcast_to(source.energy[:, None], w.shape)
            idx = jnp.searchsorted(edges, en, side="right") - 1
            inside = (idx >= 0) & (idx < edges.shape[0] - 1)
            total = total + jnp.zeros_like(total).at[
                jnp.clip(idx, 0, total.shape[0] - 1)
            ].add(jnp.where(inside, w, 0.0))
            continue
        total = total + jnp.einsum("gz,gzb->b", nd.weight, acc)
    return total


@poison_policy
def expected_total(
    params: XenonModel, detector: Detector, *, n_depth: int = 4, n_gl: int = 48
) -> Array:
    """Expected number of events passing the thresholds (all cS1, cS2), scalar.

    The integral of :func:`expected_histogram`'s model over every (cS1, cS2).
    """
    params, detector = _check_inputs(params, detector)
    tot = jnp.zeros(())
    for source in params.sources:
        nd = _source_nodes(source, params, detector, n_depth)
        acc = _node_integral(
            nd, detector, -jnp.inf, jnp.inf,
            lambda cm, cs, e: _s2_pass_cdf(None, cm, cs, e), n_gl,
        )  # fmt: skip
        tot = tot + jnp.sum(nd.weight * acc)
    return tot
