"""WIMP fits of liquid-xenon (cS1, log10 cS2) data with detector nuisances (numpyro).

Free parameters: ``log10_mass`` [log10 GeV], ``log10_sigma`` [log10 cm^2] (SI
WIMP-nucleon cross-section), and background rates: flat ER ``er_rate`` [events /
(tonne year keV)], the 8B CEvNS scale ``b8_scale`` (1 = the solar-model flux) and
the neutron normalisation ``neutron_rate`` [events / (tonne year keV) at 0 keV].
Detector nuisances with Gaussian priors around the detector's values: ``g1``
[phd/photon], ``g2_scale`` (relative single-electron gain, so g2 scales with it),
``electron_lifetime`` [us] and ``drift_field`` [V/cm]; with ``fix_nuisances`` they
stay at the nominal detector.

Two likelihoods of the same expectation (``xenon.expected_histogram``, the analytic
Gaussian propagation of the NEST-like chain; Qin & Tunnell 2024, arXiv:2408.09057,
fit a continuous LXe simulator with NUTS in the same spirit):

* :func:`wimp_binned_model`: Poisson counts per (cS1, log10 cS2) bin;
* :func:`wimp_unbinned_model`: the extended unbinned likelihood of event-level
  (cS1, log10 cS2), ``-mu_tot + sum_i log sum_s mu_s f_s(x_i)`` (Barlow 1990,
  NIM A297 496). ``mu_s f_s`` is exactly the density whose integral over a bin is
  ``expected_histogram``'s count for it (``xenon.event_log_rate``: per (energy,
  depth) node a bivariate Gaussian in (cS1, cS2), Jacobian to log10 cS2, S1
  coincidence probability given cS1, S2 threshold as a cut), and ``mu_s`` is its
  integral over the analysis region (``xenon.expected_in_region``). Before
  2026-12-01 the density was a Gaussian in log10 cS2 weighted by independent S1/S2
  acceptances while ``mu_s`` came from the histogram, so ``f_s`` was not normalised
  consistently with ``mu_s``.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import logsumexp

from ..simulators import xenon
from .support import guard_support

__all__ = [
    "DEFAULT_WIMP_PRIORS",
    "NUISANCE_SIGMAS",
    "event_log_density",
    "nuisance_bounds",
    "wimp_binned_model",
    "wimp_model_params",
    "wimp_unbinned_model",
]

#: Uniform prior bounds of the free parameters.
DEFAULT_WIMP_PRIORS = {
    "log10_mass": (1.0, 3.0),
    "log10_sigma": (-48.0, -44.0),
    "er_rate": (0.0, 2.0),
    "b8_scale": (0.0, 3.0),
    "neutron_rate": (0.0, 0.05),
}
#: Relative Gaussian prior widths of the nuisances (LZ-like calibration precision:
#: g1, g2 a few percent; lifetime and field ~10%).
NUISANCE_SIGMAS = {
    "g1": 0.03,
    "g2_scale": 0.03,
    "electron_lifetime": 0.1,
    "drift_field": 0.1,
}


def _check_priors(priors):
    pri = dict(DEFAULT_WIMP_PRIORS)
    for k, v in (priors or {}).items():
        if k not in DEFAULT_WIMP_PRIORS:
            raise ValueError(
                f"`priors` has unknown parameter {k!r}; known: "
                f"{sorted(DEFAULT_WIMP_PRIORS)}."
            )
        lo, hi = (float(x) for x in v)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"`priors[{k!r}]` must be finite (low < high); got {v}.")
        if k in ("er_rate", "b8_scale", "neutron_rate") and lo < 0:
            raise ValueError(
                f"`priors[{k!r}]` = {v} extends below 0, outside the support of a "
                "rate (>= 0)."
            )
        pri[k] = (lo, hi)
    return pri


def wimp_model_params(values: dict, detector, exposure, *, n_grid: int = 64):
    """``(XenonModel, Detector)`` from a dict of parameter values (see module doc)."""
    mass = 10.0 ** values["log10_mass"]
    # rate is linear in sigma: scale a 1e-45 cm^2 spectrum (no float32 underflow).
    s45 = 10.0 ** (values["log10_sigma"] + 45.0)
    wimp = xenon.wimp_spectrum(mass, 1e-45, e_min=1.0, e_max=50.0, n_grid=n_grid)
    b8 = xenon.b8_spectrum(e_min=0.5, e_max=5.0, n_grid=n_grid)
    sources = (
        _scaled(wimp, s45),
        xenon.flat_er_spectrum(values["er_rate"], e_min=0.5, e_max=20.0, n_grid=n_grid),
        _scaled(b8, values["b8_scale"]),
        xenon.neutron_spectrum(values["neutron_rate"], 20.0, e_min=1.0, e_max=60.0,
                               n_grid=n_grid),
    )  # fmt: skip
    det = detector
    if "g1" in values:
        det = eqx.tree_at(
            lambda d: (d.g1, d.se_gain, d.electron_lifetime, d.drift_field),
            detector,
            (
                jnp.asarray(values["g1"]),
                detector.se_gain * values["g2_scale"],
                jnp.asarray(values["electron_lifetime"]),
                jnp.asarray(values["drift_field"]),
            ),
        )
    return xenon.XenonModel(sources=sources, exposure=exposure), det


def _scaled(spec, scale):
    return eqx.tree_at(lambda s: s.rate, spec, spec.rate * scale)


def nuisance_bounds(detector) -> dict:
    """Centre, width and support ``(nominal, sigma, low, high)`` of each nuisance.

    Gaussian priors of relative width :data:`NUISANCE_SIGMAS` around the detector's
    value, truncated to +-5 sigma and to the physical range: g1 in (0, 1) (a photon
    detection probability), everything else > 0 (the lower edge is at least 1e-3 of
    the nominal value).

    Args:
        detector: Nominal ``xenon.Detector``.

    Returns:
        ``{name: (nominal, sigma, low, high)}`` for g1 [phd/photon], g2_scale
        (relative), electron_lifetime [us] and drift_field [V/cm].
    """
    out = {}
    for k, rel in NUISANCE_SIGMAS.items():
        nominal = 1.0 if k == "g2_scale" else float(np.asarray(getattr(detector, k)))
        if not (np.isfinite(nominal) and nominal > 0):
            raise ValueError(
                f"`detector.{k}` must be finite and > 0 to centre its prior; got "
                f"{nominal}."
            )
        lo = max(nominal * (1 - 5 * rel), 1e-3 * nominal)
        hi = nominal * (1 + 5 * rel)
        if k == "g1":
            if nominal >= 1.0:
                raise ValueError(f"`detector.g1` must be < 1; got {nominal}.")
            hi = min(hi, 0.5 * (1.0 + nominal))  # stays below 1
        out[k] = (nominal, rel * nominal, lo, hi)
    return out


def _sample_params(detector, priors, fix_nuisances):
    """Sample every free parameter on a bounded support that keeps the simulator valid.

    Each site has an interval support (uniform priors of :data:`DEFAULT_WIMP_PRIORS`,
    truncated Gaussians of :func:`nuisance_bounds`), so numpyro's NUTS moves in the
    unconstrained space through affine-sigmoid bijections whose every finite point
    maps strictly inside the physical ranges (rates >= 0, 0 < g1 < 1, positive g2,
    lifetime and field). Floating-point overflow in a leapfrog step can still give a
    non-finite unconstrained position (then the constrained value is NaN); such a
    point has log density -inf (a divergent transition for NUTS, which rejects it)
    and the simulator is evaluated at the prior centre instead of raising inside the
    sampler. With concrete (untraced) values outside the support, ValueError names
    the parameter.
    """
    pri = _check_priors(priors)
    vals, bounds = {}, {}
    for k in DEFAULT_WIMP_PRIORS:
        vals[k] = numpyro.sample(k, dist.Uniform(*pri[k]))
        bounds[k] = (pri[k][0], pri[k][1], 0.5 * (pri[k][0] + pri[k][1]))
    if not fix_nuisances:
        for k, (nominal, sd, lo, hi) in nuisance_bounds(detector).items():
            vals[k] = numpyro.sample(
                k, dist.TruncatedNormal(nominal, sd, low=lo, high=hi)
            )
            bounds[k] = (lo, hi, nominal)
    return guard_support(
        vals,
        {k: b[:2] for k, b in bounds.items()},
        fallback={k: b[2] for k, b in bounds.items()},
    )


def wimp_binned_model(
    counts,
    *,
    detector,
    bins,
    exposure: float,
    priors: dict | None = None,
    fix_nuisances: bool = False,
    n_grid: int = 64,
    n_depth: int = 2,
    n_gl: int = 3,
):
    """Numpyro model: binned Poisson WIMP fit with detector nuisances.

    Args:
        counts: Observed counts (Bx, By) in the bins of ``bins``; ``None`` to draw.
        detector: Nominal ``xenon.Detector`` (nuisance prior centres).
        bins: ``(cs1_edges [phd], log10_cs2_edges)``.
        exposure: Exposure [tonne year].
        priors: Overrides of :data:`DEFAULT_WIMP_PRIORS`.
        fix_nuisances: Keep g1, g2, lifetime and field at the detector's values.
        n_grid: Energy grid points per spectrum (static).
        n_depth: Depth quadrature nodes (static).
        n_gl: cS1 quadrature nodes per bin (static).
    """
    shape = (len(bins[0]) - 1, len(bins[1]) - 1)
    if counts is not None:
        c = np.asarray(counts)
        if c.shape != shape:
            raise ValueError(f"`counts` must have shape {shape} (bins); got {c.shape}.")
        if not np.all(np.isfinite(c)) or np.any(c < 0) or np.any(c != np.round(c)):
            raise ValueError("`counts` must be finite integer counts >= 0.")
    vals = _sample_params(detector, priors, fix_nuisances)
    model, det = wimp_model_params(vals, detector, exposure, n_grid=n_grid)
    mu = xenon.expected_histogram(model, det, bins, n_depth=n_depth, n_gl=n_gl)
    numpyro.deterministic("mu_total", jnp.sum(mu))
    numpyro.sample(
        "counts", dist.Poisson(jnp.maximum(mu, 1e-12)).to_event(2), obs=counts
    )


def event_log_density(events, model, detector, region, *, n_depth: int = 2):
    """Per-source log of ``mu_s f_s(x)`` at events and each source's ``mu_s``.

    ``mu_s f_s`` is the integrand of ``xenon.expected_histogram`` (its integral over
    a bin is that bin's expected count): the same bivariate Gaussian in (cS1, cS2)
    per (energy, depth) node, the Jacobian to log10 cS2, the S1 coincidence
    probability given cS1 and the S2 threshold as a cut (``xenon.event_log_rate``).
    ``mu_s`` is its integral over ``region`` (``xenon.expected_in_region``), so
    ``f_s`` is normalised on the region.

    Args:
        events: (N, 2) array of (cS1 [phd], log10 cS2), inside ``region``.
        model: ``xenon.XenonModel``.
        detector: ``xenon.Detector``.
        region: ``((cs1_lo, cs1_hi), (log10cs2_lo, log10cs2_hi))`` analysis region.
        n_depth: Depth nodes (static).

    Returns:
        ``(log_rate (S, N), mu (S,))``: log expected-event density per source at each
        event [log(1 / (phd dex))] and the expected events per source in the region.
    """
    log_rate = xenon.event_log_rate(model, detector, events, n_depth=n_depth)
    mu = xenon.expected_in_region(model, detector, region, n_depth=n_depth)
    return log_rate, mu


def wimp_unbinned_model(
    events,
    *,
    detector,
    region,
    exposure: float,
    priors: dict | None = None,
    fix_nuisances: bool = False,
    n_grid: int = 64,
    n_depth: int = 2,
):
    """Numpyro model: extended unbinned likelihood of (cS1, log10 cS2) events.

    Args:
        events: (N, 2) observed (cS1 [phd], log10 cS2) inside ``region``; no NaN.
        detector: Nominal detector.
        region: ``((cs1_lo, cs1_hi), (log10cs2_lo, log10cs2_hi))``.
        exposure: Exposure [tonne year].
        priors: Overrides of :data:`DEFAULT_WIMP_PRIORS`.
        fix_nuisances: Keep the detector nuisances fixed.
        n_grid: Energy grid points per spectrum.
        n_depth: Depth nodes.
    """
    ev = np.asarray(events, float)
    if ev.ndim != 2 or ev.shape[1] != 2:
        raise ValueError(f"`events` must have shape (N, 2); got {ev.shape}.")
    if not np.all(np.isfinite(ev)):
        raise ValueError("`events` must be finite (NaN in observed features).")
    try:
        (x0, x1), (y0, y1) = (tuple(float(v) for v in r) for r in region)
    except (TypeError, ValueError):
        raise ValueError(
            "`region` must be ((cs1_lo, cs1_hi), (log10cs2_lo, log10cs2_hi)); got "
            f"{region!r}."
        ) from None
    outside = ~(
        (ev[:, 0] >= x0) & (ev[:, 0] <= x1) & (ev[:, 1] >= y0) & (ev[:, 1] <= y1)
    )
    if outside.any():
        raise ValueError(
            f"`events` must lie inside `region` = {region}; {int(outside.sum())} of "
            f"{len(ev)} do not (e.g. {ev[np.argmax(outside)].tolist()})."
        )
    vals = _sample_params(detector, priors, fix_nuisances)
    model, det = wimp_model_params(vals, detector, exposure, n_grid=n_grid)
    log_rate, mu = event_log_density(jnp.asarray(ev), model, det, region,
                                     n_depth=n_depth)  # fmt: skip
    numpyro.deterministic("mu_total", jnp.sum(mu))
    numpyro.factor("extended_ll", jnp.sum(logsumexp(log_rate, axis=0)) - jnp.sum(mu))
