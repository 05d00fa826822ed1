"""Gamma-ray template fits of Galactic Centre maps: Poisson and non-Poissonian (NPTF).

Two numpyro models of a counts map from :mod:`jaxdm.simulators.gamma`:

* :func:`poisson_template_model`: the Poisson likelihood of the map under
  ``gamma.expected_counts``, with free template normalisations (iso, bubbles, pi0,
  IC), dark-matter cross-section, gNFW inner slope ``dm_gamma`` and a diffuse-model
  mismodelling nuisance: a log-normal normalisation of the pi0 (gas) template per
  Galactocentric ring of angular radius (as the ring-by-ring diffuse fits of
  Calore, Cholis & Weniger 2015, arXiv:1409.0042), prior width ``ring_sigma``.
* :func:`nptf_model`: the NPTF likelihood (:mod:`jaxdm.fits.nptf`) with Poisson
  templates (diffuse + DM) and a point-source population with a broken power law
  (free norm, indices and break), as in Lee et al. 2016 (arXiv:1506.05124) and
  NPTFit (arXiv:1612.03173).

:func:`nptf_inputs` extracts what the NPTF needs from a ``GammaConfig``: per-pixel
Poisson means of a set of templates, the point-source spatial fractions, the exposure
and the PSF correction of the simulator's kernel.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from ..simulators import gamma as g
from ..simulators.gamma import simulation as _gsim
from .nptf import (
    PointSourcePopulation,
    PSFCorrection,
    nptf_log_likelihood,
    psf_correction_from_kernel,
)
from .support import guard_support

__all__ = [
    "NPTFInputs",
    "nptf_inputs",
    "nptf_model",
    "poisson_template_model",
    "ring_index",
]

_ZERO_PS = {"ps_norm": 0.0}


class NPTFInputs(NamedTuple):
    """Per-ROI-pixel inputs of the NPTF likelihood (one energy bin).

    Attributes:
        templates: Poisson mean counts per unit normalisation, ``{name: (P,)}`` over
            ROI pixels (PSF-convolved), for ``"dm"`` (per 1e-26 cm^3/s) and each
            diffuse template (per unit of its ``*_norm``).
        source_fractions: Fraction of the point sources in each ROI pixel, (1, P).
        exposure: Point-source counts per unit flux [cm^2 s], (P,).
        psf: :class:`~jaxdm.fits.nptf.PSFCorrection` of the simulator's kernel.
        pixels: Indices of the ROI pixels in the flattened map, (P,).
    """

    templates: dict
    source_fractions: jax.Array
    exposure: np.ndarray
    psf: PSFCorrection
    pixels: np.ndarray


def nptf_inputs(
    params: g.GammaParams,
    config: g.GammaConfig,
    *,
    names=("iso", "pi0", "ic", "dm"),
    energy_bin: int | None = None,
) -> NPTFInputs:
    """Templates, source fractions, exposure and PSF correction of a Cartesian config.

    Sources are rendered at pixel centres by ``gamma.simulate`` and convolved with
    the PSF kernel, so the PSF correction from that kernel is exact
    (:func:`~jaxdm.fits.nptf.psf_correction_from_kernel`). The DM template is taken at
    ``params.dm_gamma`` and ``params.dm_mass``.

    Args:
        params: Reference ``GammaParams`` (point-source fields are ignored).
        config: ``GammaConfig`` with ``geometry="cartesian"``.
        names: Poisson templates to return (subset of iso, bubbles, pi0, ic, dm).
            A fit must list every template with a nonzero norm in its maps (free or
            fixed in :func:`nptf_model`'s priors; ``GammaParams``' defaults include
            isotropic and bubbles emission): a left-out template is absorbed by the
            others and biases them (``experiments/gce_nptf.py`` lost its f_src to
            this: IC at its prior's edge, the DM absorbing the rest).
        energy_bin: Which energy bin of ``config`` to fit (its templates, exposure
            and PSF kernel; the point-source flux keeps the units of
            ``GammaParams.ps_norm``); ``None`` requires a one-bin config. The
            likelihood is that of one bin's map, e.g. bin 0 of the maps of a
            multi-bin simulation.

    Returns:
        :class:`NPTFInputs`.
    """
    n_bins = len(config.energy_edges) - 1
    if config.geometry != "cartesian" or (energy_bin is None and n_bins != 1):
        raise ValueError(
            "`config` must be Cartesian with one energy bin for the NPTF (or pass "
            f"`energy_bin`); got geometry={config.geometry!r}, "
            f"energy_edges={config.energy_edges}."
        )
    b = 0 if energy_bin is None else energy_bin
    if isinstance(b, bool) or not isinstance(b, int) or not 0 <= b < n_bins:
        raise ValueError(
            f"`energy_bin` must be an int in [0, {n_bins}) (the config's energy "
            f"bins); got {energy_bin!r}."
        )
    geom = g.geometry(config)
    pix = np.flatnonzero(geom.roi)
    zero = {
        "iso_norm": 0.0,
        "bubbles_norm": 0.0,
        "pi0_norm": 0.0,
        "ic_norm": 0.0,
        "dm_sigma_v": 0.0,
        "ps_norm": 0.0,
    }
    templates = {}
    for name in names:
        field = "dm_sigma_v" if name == "dm" else f"{name}_norm"
        p = eqx.tree_at(
            lambda q: [getattr(q, k) for k in zero],
            params,
            [jnp.asarray(1.0 if k == field else 0.0) for k in zero],
        )
        templates[name] = g.expected_counts(p, config)[b].ravel()[pix]
    checked = g.checked_params(params, config)
    _, src_resp, ps_prob, _ = _gsim._components(checked, config)
    sig = g.psf_sigmas(config.energy_edges, config.psf_sigma_2gev_deg)
    kernel = g.cartesian_kernels(
        sig, 2 * config.half_width_deg / config.npix, config.psf, config.king_gamma
    )[b]
    return NPTFInputs(
        templates=templates,
        source_fractions=jnp.asarray(ps_prob)[pix][None, :],
        exposure=np.asarray(src_resp)[b][pix],
        psf=psf_correction_from_kernel(kernel),
        pixels=pix,
    )


def ring_index(config: g.GammaConfig, n_rings: int) -> np.ndarray:
    """Ring of each ROI pixel: ``n_rings`` equal-width annuli of angular GC distance."""
    geom = g.geometry(config)
    pix = np.flatnonzero(geom.roi)
    r = np.hypot(np.asarray(geom.l_deg)[pix], np.asarray(geom.b_deg)[pix])
    edges = np.linspace(0.0, config.roi_radius_deg, n_rings + 1)
    return np.clip(np.searchsorted(edges, r, side="right") - 1, 0, n_rings - 1)


def _check_counts(counts, n_pix):
    c = np.asarray(counts)
    if c.shape != (n_pix,):
        raise ValueError(
            f"`counts` must be the ROI pixel counts, shape ({n_pix},); got {c.shape}."
        )
    if not np.all(np.isfinite(c)) or np.any(c < 0) or np.any(c != np.round(c)):
        raise ValueError("`counts` must be finite integers >= 0 (photon counts).")
    return jnp.asarray(c, jnp.float32 if c.dtype != np.float64 else c.dtype)


def poisson_template_model(
    counts,
    config: g.GammaConfig,
    priors: dict,
    *,
    reference: g.GammaParams | None = None,
    n_rings: int = 0,
    ring_sigma: float = 0.1,
):
    """Numpyro model: Poisson template fit with ``gamma.expected_counts``.

    Args:
        counts: Observed counts over the ROI pixels, (P,) (``pixels`` order of
            :func:`nptf_inputs`).
        config: ``GammaConfig``.
        priors: ``{field: (low, high)}`` uniform priors for the free ``GammaParams``
            fields (e.g. ``iso_norm``, ``pi0_norm``, ``ic_norm``, ``dm_sigma_v``,
            ``dm_gamma``); the other fields come from ``reference``.
        reference: ``GammaParams`` of the fixed fields (default: ``GammaParams()``).
        n_rings: Number of Galactocentric rings with a free pi0 normalisation
            nuisance (0: none).
        ring_sigma: Log-normal prior width of each ring normalisation.
    """
    reference = g.GammaParams() if reference is None else reference
    vals = {}
    for name, (lo, hi) in priors.items():
        vals[name] = numpyro.sample(name, dist.Uniform(lo, hi))
    p = eqx.tree_at(
        lambda q: [getattr(q, k) for k in vals], reference, list(vals.values())
    )
    pix = np.flatnonzero(g.geometry(config).roi)
    counts = _check_counts(counts, pix.size)
    if n_rings > 0:
        rings = ring_index(config, n_rings)
        with numpyro.plate("rings", n_rings):
            ring_norm = numpyro.sample("ring_norm", dist.LogNormal(0.0, ring_sigma))
        p_gas = eqx.tree_at(
            lambda q: [getattr(q, k) for k in (*_NON_GAS, "pi0_norm")],
            p,
            [jnp.asarray(0.0)] * len(_NON_GAS) + [p.pi0_norm],
        )
        p_rest = eqx.tree_at(lambda q: q.pi0_norm, p, jnp.asarray(0.0))
        mu_gas = g.expected_counts(p_gas, config)[0].ravel()[pix]
        mu = (
            g.expected_counts(p_rest, config)[0].ravel()[pix]
            + mu_gas * ring_norm[rings]
        )
    else:
        mu = g.expected_counts(p, config)[0].ravel()[pix]
    numpyro.sample("counts", dist.Poisson(mu), obs=counts)


_NON_GAS = ("iso_norm", "bubbles_norm", "ic_norm", "dm_sigma_v", "ps_norm")


def nptf_model(
    counts,
    inputs: NPTFInputs,
    priors: dict,
    *,
    k_max: int,
    f_min: float = 0.0,
    f_max: float = float("inf"),
    n_nodes: int = 32,
):
    """Numpyro model: NPTF fit with Poisson templates and one point-source population.

    Free parameters (uniform priors ``{name: (low, high)}``, or a number to fix
    the parameter): one normalisation per
    entry of ``inputs.templates`` (named as the template, in its units), and the
    point-source law ``ps_log10_norm`` (log10 A [1/(ph cm^-2 s^-1)]), ``ps_n1``,
    ``ps_n2`` and ``ps_log10_break`` (log10 F_b [ph cm^-2 s^-1]).

    A traced point with a non-finite or out-of-support parameter (a NUTS proposal
    after an overflowing leapfrog step) has log density -inf and is rejected as a
    divergence (:func:`~jaxdm.fits.support.guard_support`); the likelihood's own
    argument guards are then never reached with NaN. Concrete values outside the
    priors raise ValueError.

    Args:
        counts: ROI-pixel counts (P,), concrete integers >= 0.
        inputs: :class:`NPTFInputs`.
        priors: Uniform prior bounds per parameter.
        k_max: Largest count in the likelihood (>= max(counts)).
        f_min: Lowest source flux [ph cm^-2 s^-1].
        f_max: Highest source flux [ph cm^-2 s^-1].
        n_nodes: Quadrature nodes per segment.
    """
    ps_names = ("ps_log10_norm", "ps_n1", "ps_n2", "ps_log10_break")
    free, s = {}, {}
    for k in (*inputs.templates, *ps_names):
        v = priors[k]
        if isinstance(v, tuple | list):
            free[k] = numpyro.sample(k, dist.Uniform(*v))
        else:
            s[k] = jnp.asarray(v)  # a number fixes the parameter
    # A NaN / out-of-support NUTS proposal: log density -inf, not a raised guard.
    s.update(guard_support(free, {k: priors[k] for k in free}))
    mu = 0.0
    for name, tmpl in inputs.templates.items():
        mu = mu + s[name] * tmpl
    pop = PointSourcePopulation(
        10.0 ** s["ps_log10_norm"],
        jnp.stack([s["ps_n1"], s["ps_n2"]]),
        (10.0 ** s["ps_log10_break"])[None],
    )
    ll = nptf_log_likelihood(
        counts,
        mu,
        [pop],
        inputs.source_fractions,
        inputs.exposure,
        inputs.psf,
        k_max=k_max,
        f_min=f_min,
        f_max=f_max,
        n_nodes=n_nodes,
    )
    numpyro.factor("nptf_loglike", ll)
