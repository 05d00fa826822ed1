"""Event sampler: recoil energies -> quanta -> S1/S2 -> corrected, thresholded events.

The chain per event (NEST v2 logic, Szydagis et al. 2021, arXiv:2102.10209):

1. position uniform in the fiducial cylinder; energy from the recoil spectrum;
2. total quanta ``N_q ~ round(Normal(m, sqrt(F m)))``; ions ``N_i ~ Bin(N_q, p_i)``;
   electrons ``N_e ~ round(Normal(N_i (1-r), sqrt(N_i r (1-r) + omega^2 N_i^2)))``
   clipped to [0, N_i] (binomial recombination plus excess); photons ``N_q - N_e``;
3. S1: detected photons ``Bin(N_ph, g1 lce(z))``, double-photoelectron emission
   ``Bin(n_det, p_dpe)``, PMT resolution; n-fold coincidence on the detected photons;
4. S2: survival ``Bin(N_e, exp(-t_d/tau))``, extraction ``Bin(., eta)``, Gaussian
   single-electron gain times ``s2_area_scale`` (NEST's 1/NewMean, see
   :class:`~.detector.Detector`); position smearing ``sigma_xy = pos_res / sqrt(S2)``;
   S2 width from longitudinal diffusion;
5. corrections ``cS1 = S1 / lce(z)``, ``cS2 = S2 / exp(-t_d / tau)``.

Binomials follow NEST's ``BinomFluct`` rule: exact (inverse CDF) where the skewness
exceeds 1/3, the rounded normal approximation elsewhere.

``reparameterized=True`` replaces every binomial by its Gaussian approximation
``n p + sqrt(n p (1-p)) eps`` and drops the rounding, so that samples are
differentiable functions of all physics and detector parameters (energies are
differentiable through the inverse-CDF sampler). The approximation breaks down at low
quanta: for fewer than ~10 expected photons/electrons (ER below ~1 keV, NR below
~3-5 keV, S1 of a few phd) the Gaussian misses the discreteness, the skewness and the
``n >= 0`` boundary (values are clipped at 0), so threshold effects near the S1
coincidence level are not reproduced; use the exact mode for those.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr

from ... import _checks, _poison
from ..._checks import check_key
from ..._poison import poison_policy
from ..._random import normal
from ..._typing import Array
from . import _guards as _g
from .detector import (
    Detector,
    _electron_survival,
    _light_collection,
    _s2_width,
    _sample_positions,
    check_detector,
)
from .spectra import RecoilSpectrum, _sample_energies, check_spectrum
from .yields import YieldParams, _quanta_fluctuation_params, check_yields

ER, NR = 0, 1


class Events(eqx.Module):
    """Simulated events; every field has shape (n,).

    Attributes:
        energy: True recoil energy [keV].
        recoil_type: 0 for ER, 1 for NR (int32).
        x: Reconstructed x [cm] (smeared).
        y: Reconstructed y [cm] (smeared).
        z: True height [cm] (negative below the gate; from the drift time).
        n_photons: Number of scintillation photons produced.
        n_electrons: Number of electrons escaping recombination.
        s1: S1 [phd].
        s2: S2 [phd].
        cs1: Light-collection-corrected S1 [phd].
        cs2: Electron-lifetime-corrected S2 [phd].
        s2_width: S2 Gaussian sigma [us].
        passed: True when the S1 coincidence and the S2 threshold are met.
    """

    energy: Array
    recoil_type: Array
    x: Array
    y: Array
    z: Array
    n_photons: Array
    n_electrons: Array
    s1: Array
    s2: Array
    cs1: Array
    cs2: Array
    s2_width: Array
    passed: Array

    @property
    def r(self) -> Array:
        """Reconstructed radius [cm]."""
        return jnp.sqrt(self.x**2 + self.y**2)


_K_INV = 32  # inversion terms: the inversion is used only for mean < 9, sd < 3


def _binomial_draw(g, n, p):
    """Binomial draw driven by one standard normal ``g`` per element (elementwise).

    NEST's ``BinomFluct`` rule decides the method: where the skewness
    ``|1 - 2p| / sqrt(n p (1-p))`` exceeds 1/3 (so the variance is below 9 after
    reflecting to p <= 1/2) the draw is exact, by inverse-CDF with ``u = Phi(g)`` and
    the recursive pmf (32 terms: the exact branch has mean < 9 and sd < 3, so the
    sum reaches beyond mean + 7 sd); elsewhere it is the rounded normal
    ``round(n p + sqrt(n p (1-p)) g)`` clipped to [0, n], as in NEST.
    ``Bin(n, p) = n - Bin(n, 1-p)`` keeps p <= 1/2 for the inversion.
    """
    n = jnp.maximum(n, 0.0)
    p = jnp.clip(p, 0.0, 1.0)
    flip = p > 0.5
    ps = jnp.where(flip, 1.0 - p, p)
    var = n * ps * (1.0 - ps)
    exact = var < 9.0 * (1.0 - 2.0 * ps) ** 2
    ps_s = jnp.where(exact, ps, 0.0)
    q = ps_s / (1.0 - ps_s)
    mean = n * ps_s
    u = ndtr(g)
    pmf0 = jnp.exp(n * jnp.log1p(-ps_s))

    # Statically unrolled: XLA fuses the recursion into one elementwise kernel (a
    # rolled loop would stream the (n,) carries through memory _K_INV times).
    pmf, cdf, k_inv = pmf0, pmf0, jnp.zeros_like(n)
    for i in range(_K_INV):
        # Stop counting in the far upper tail (pmf underflow / float32 cdf < 1).
        k_inv = k_inv + ((cdf < u) & ((i < mean) | (pmf > 1e-9)))
        pmf = pmf * jnp.maximum(n - i, 0.0) * (q / (i + 1.0))
        cdf = cdf + pmf
    k_inv = jnp.minimum(k_inv, n)
    k_norm = jnp.clip(jnp.round(n * ps + jnp.sqrt(var) * g), 0.0, n)
    k = jnp.where(exact, k_inv, k_norm)
    return jnp.where(flip, n - k, k)


# Events per chunk of the exact binomial (see _binomial).
_CHUNK = 1 << 15


def _binomial(n, p, reparameterized, eps):
    p = jnp.clip(p, 0.0, 1.0)
    if reparameterized:
        return jnp.maximum(
            n * p + jnp.sqrt(jnp.maximum(n * p * (1 - p), 0.0)) * eps, 0.0
        )
    n, p, eps = jnp.broadcast_arrays(n, p, eps)
    size = n.size
    if size <= _CHUNK:
        return _binomial_draw(eps, n, p)
    # The draw runs as a loop over chunks so that XLA materialises it once: as a
    # plain elementwise expression XLA:CPU re-fuses the unrolled inversion into
    # every consumer (S1, S2, corrections, thresholds; the optimization_barriers
    # below did not stop that), which made the chain 1.7x slower.
    m = -(-size // _CHUNK)
    pad = m * _CHUNK - size

    def blocks(a):
        return jnp.pad(a.ravel(), (0, pad)).reshape(m, _CHUNK)

    out = jax.lax.map(lambda a: _binomial_draw(*a), (blocks(eps), blocks(n), blocks(p)))
    return out.ravel()[:size].reshape(n.shape)


@eqx.filter_jit
def _events_from_energies(
    key,
    energy,
    recoil_type: str,
    detector: Detector,
    yields: YieldParams,
    reparameterized: bool,  # noqa: FBT001 (private, positional for filter_jit)
    bad=None,
) -> Events:
    # Compiled once per (shape, dtype, recoil_type, mode) and cached across calls;
    # under an outer jit this is inlined. Inputs are checked by the public callers
    # (eagerly, or by the traced poison policy).
    n = energy.shape[0]
    rep = reparameterized
    k_pos, k_norm = jax.random.split(key)
    x, y, z = _sample_positions(k_pos, detector, n)
    recoil = jnp.full((n,), NR if recoil_type == "NR" else ER, jnp.int32)
    if bad is not None:
        # Poison policy (simulate_events): a NaN energy and depth make every
        # float output NaN through the chain (max/min/clip/round propagate NaN;
        # the binomial draws are elementwise, without loops on values) and every
        # threshold comparison False; x, y come from S2, the type is set to -1.
        # Written here, each output is materialised once (a mask at the end cost
        # 10-13 % per event: XLA kept both the unmasked intermediate and its copy).
        z = jnp.where(bad, jnp.nan, z)
        recoil = jnp.where(bad, -1, recoil)
    # One draw of all standard normals (fewer RNG kernels to compile).
    g = jax.lax.optimization_barrier(normal(k_norm, (11, n)))
    st = _quanta_fluctuation_params(
        energy, detector.drift_field, detector.density, yields, recoil_type
    )
    n_q = jnp.maximum(st.n_quanta + jnp.sqrt(st.fano * st.n_quanta) * g[0], 0.0)
    if not rep:
        n_q = jnp.round(n_q)
    n_i = jax.lax.optimization_barrier(_binomial(n_q, st.ion_prob, rep, g[1]))
    r = st.recomb_prob
    sd_e = jnp.sqrt(n_i * r * (1 - r) + (st.omega * n_i) ** 2)
    n_e = n_i * (1 - r) + sd_e * g[2]
    if not rep:
        n_e = jnp.round(n_e)
    n_e = jnp.clip(n_e, 0.0, n_i)
    n_ph = n_q - n_e

    lce = _light_collection(z, detector)
    surv = _electron_survival(z, detector)
    # Photon detection and electron survival x extraction in one binomial call
    # (Bin(Bin(n, s), eta) = Bin(n, s eta)).
    both = _binomial(
        jnp.stack([n_ph, n_e]),
        jnp.stack([detector.g1 * lce, surv * detector.extraction_efficiency]),
        rep,
        g[3:5],
    )
    # The barriers keep the reparameterised chain ~7 % faster (measured); the exact
    # draws are materialised by _binomial's chunk loop.
    n_det, n_ext = jax.lax.optimization_barrier((both[0], both[1]))
    n_phe = jax.lax.optimization_barrier(
        n_det + _binomial(n_det, detector.p_dpe, rep, g[5])
    )
    s1_phe = n_phe + detector.spe_resolution * jnp.sqrt(n_phe) * g[6]
    s1 = jnp.maximum(s1_phe, 0.0) / (1.0 + detector.p_dpe)
    s2 = detector.se_gain * n_ext + detector.se_width * jnp.sqrt(n_ext) * g[7]
    s2 = jnp.maximum(detector.s2_area_scale * s2, 0.0)

    sigma_xy = detector.pos_res / jnp.sqrt(jnp.maximum(s2, 1.0))
    x_rec = x + sigma_xy * g[8]
    y_rec = y + sigma_xy * g[9]
    # Width estimated from n_ext electron arrival times: relative error 1/sqrt(2 n).
    w_mean = _s2_width(z, detector)
    g_w = g[10]
    w = w_mean * (1.0 + g_w / jnp.sqrt(2.0 * jnp.maximum(n_ext, 1.0)))
    passed = (n_det >= detector.s1_coincidence) & (s2 >= detector.s2_threshold)
    return Events(
        energy=energy,
        recoil_type=recoil,
        x=x_rec,
        y=y_rec,
        z=z,
        n_photons=n_ph,
        n_electrons=n_e,
        s1=s1,
        s2=s2,
        cs1=s1 / lce,
        cs2=s2 / surv,
        s2_width=jnp.maximum(w, 0.0),
        passed=passed,
    )


def _check_common(key, detector, yields, recoil_type=None, *, deferred=None):
    """Key, recoil type, detector and yields (checked eagerly and when traced)."""
    check_key(key)
    if recoil_type is not None and recoil_type not in ("ER", "NR"):
        raise ValueError(f"`recoil_type` must be 'ER' or 'NR'; got {recoil_type!r}.")
    detector = check_detector(detector, deferred=deferred)
    yields = check_yields(
        YieldParams() if yields is None else yields, "yields", deferred=deferred
    )
    return detector, yields


def _check_n(n, name="n"):
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"`{name}` must be a positive int; got {n!r}.")


@poison_policy
def simulate_energies(
    key,
    energy,
    recoil_type: str,
    detector: Detector,
    *,
    yields: YieldParams | None = None,
    reparameterized: bool = False,
) -> Events:
    """Simulate events of given recoil energies (the chain: module docstring).

    Args:
        key: Typed PRNG key.
        energy: Recoil energies [keV], shape (n,), finite and >= 0 (checked
            eagerly; under ``jit`` a bad value poisons the outputs).
        recoil_type: "ER" or "NR" (static).
        detector: Detector parameters (unbatched; vmap for several).
        yields: NEST yield parameters (default :class:`YieldParams`).
        reparameterized: Gaussian approximations instead of binomials, no rounding
            (differentiable; breaks down below ~10 quanta, see module docstring).

    Returns:
        :class:`Events` of n events.

    Raises:
        ValueError: For negative or non-finite energies or bad detector/yield values
            (under ``jit``/``vmap``: NaN/-1/False outputs, ``with_valid`` False).
    """
    detector, yields = _check_common(key, detector, yields, recoil_type)
    energy = jnp.asarray(energy)
    if energy.ndim != 1:
        raise ValueError(f"`energy` must have shape (n,); got {energy.shape}.")
    energy = _g.guard_values(energy, "energy", low=0.0)
    return _events_from_energies(
        key, energy, recoil_type, detector, yields, reparameterized
    )


@poison_policy(poisons_itself=True)
def simulate_events(
    key,
    source,
    detector: Detector,
    n: int,
    *,
    yields: YieldParams | None = None,
    reparameterized: bool = False,
) -> Events:
    """Draw ``n`` events from a recoil spectrum through the full detector chain.

    Args:
        key: Typed PRNG key.
        source: A :class:`~jaxdm.simulators.xenon.RecoilSpectrum` (energies by exact
            inverse-CDF sampling; its ``recoil_type`` selects the ER or NR yields).
        detector: Detector parameters.
        n: Number of events (static int).
        yields: NEST yield parameters (default :class:`YieldParams`).
        reparameterized: Differentiable Gaussian approximations (module docstring).

    Returns:
        :class:`Events` of ``n`` events (all drawn, ``passed`` flags the thresholds).
    """
    _check_n(n)
    # Traced: all parameter checks fused into one recorded condition (see
    # _guards.attach_to_leaves); eagerly each raises at once.
    deferred = []
    source = _check_source(source, "source", deferred=deferred)
    detector, yields = _check_common(
        key, detector, yields, source.recoil_type, deferred=deferred
    )
    rate = _g.guard_relation(
        source.rate,
        source.total_rate() <= 0,
        "`source.rate` integrates to zero: there are no energies to sample.",
        deferred=deferred,
    )
    source, detector, yields, rate = _g.attach_to_leaves(
        (source, detector, yields, rate), deferred
    )
    k_e, k_ev = jax.random.split(key)
    energy = _sample_energies(k_e, source.energy, rate, n)
    # Poison at the source (see _events_from_energies): every output then carries
    # it without a second masked copy of each per-event array.
    bad = _poison.pending()
    if bad is not None:
        energy = jnp.where(bad, jnp.nan, energy)
    return _events_from_energies(
        k_ev, energy, source.recoil_type, detector, yields, reparameterized, bad
    )


def _check_source(source, name, *, deferred=None):
    if not isinstance(source, RecoilSpectrum):
        raise TypeError(
            f"`{name}` must be a RecoilSpectrum; got {type(source).__name__}."
        )
    return check_spectrum(source, name, deferred=deferred)


class ExposureEvents(eqx.Module):
    """Events of a whole exposure, padded to a static size.

    Attributes:
        events: :class:`Events`, fields of shape (max_events,).
        component: Index of the source each event came from, shape (max_events,)
            (-1 for padding).
        mask: True for real events (before thresholds), shape (max_events,).
        counts: Poisson number of events drawn per component, shape (n_sources,).
    """

    events: Events
    component: Array
    mask: Array
    counts: Array


@poison_policy
def sample_exposure(
    key,
    sources,
    detector: Detector,
    exposure,
    max_events: int,
    *,
    yields: YieldParams | None = None,
    reparameterized: bool = False,
) -> ExposureEvents:
    """Source-mixture sampler: Poisson numbers of events per component for an exposure.

    Component ``k`` contributes ``N_k ~ Poisson(exposure * R_k)`` events, ``R_k`` its
    total rate [events/(t yr)]. Each component is simulated at the static size
    ``max_events``; the first ``N_k`` events of every component are packed into one
    array of ``max_events`` rows (mask marks them; overflow beyond ``max_events``
    raises when concrete and poisons the outputs when traced).

    Args:
        key: Typed PRNG key.
        sources: Sequence of RecoilSpectrum (static length).
        detector: Detector parameters.
        exposure: Exposure [tonne year], > 0.
        max_events: Static capacity (choose a few sigma above the expected total).
        yields: NEST yield parameters.
        reparameterized: Differentiable Gaussian chain (the counts stay Poisson).

    Returns:
        :class:`ExposureEvents`.
    """
    _check_n(max_events, "max_events")
    if len(sources) == 0:
        raise ValueError("`sources` must contain at least one RecoilSpectrum.")
    sources = [_check_source(s, f"sources[{i}]") for i, s in enumerate(sources)]
    detector, yields = _check_common(key, detector, yields)
    exposure = _g.guard_values(exposure, "exposure", low=0.0, allow_equal=False)
    keys = jax.random.split(key, len(sources) + 1)
    mus = jnp.stack([exposure * s.total_rate() for s in sources])
    # jax.random.poisson returns -1 for a negative or NaN mean: the inputs above
    # exclude both; this check keeps it that way (raise policy).
    mus = _g.guard_values(mus, "exposure * sources[k].total_rate()", low=0.0)
    counts = jax.random.poisson(keys[0], mus)
    # Overflow: an error eagerly; traced, poison (the call's outputs NaN/-1/False and
    # ``with_valid`` False), or error_if outside a poison scope.
    counts = _checks._guard(
        counts,
        jnp.sum(counts) > max_events,
        "sample_exposure: more events drawn than `max_events`; raise `max_events`.",
    )
    per = []
    for i, s in enumerate(sources):
        k_e, k_ev = jax.random.split(keys[i + 1])
        # A component with zero rate has no events (counts 0): draw placeholder
        # energies at its grid start, which the mask removes.
        energy = _sample_energies(k_e, s.energy, s.rate, max_events)
        energy = jnp.where(s.total_rate() > 0, energy, s.energy[0])
        per.append(
            _events_from_energies(
                k_ev, energy, s.recoil_type, detector, yields, reparameterized
            )
        )
    stacked = jax.tree.map(lambda *a: jnp.concatenate(a), *per)
    comp = jnp.repeat(jnp.arange(len(sources)), max_events)
    idx_in = jnp.tile(jnp.arange(max_events), len(sources))
    real = idx_in < counts[comp]
    # Stable ordering: real events first (component order), then padding.
    order = jnp.argsort(~real, stable=True)[:max_events]
    events = jax.tree.map(lambda a: a[order], stacked)
    mask = real[order]
    return ExposureEvents(
        events=events,
        component=jnp.where(mask, comp[order], -1),
        mask=mask,
        counts=counts,
    )
