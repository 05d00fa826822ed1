r"""Design spaces: experiment parameters as differentiable inputs to the simulators.

**Xenon TPC** (:class:`XenonDesign`, :func:`xenon_expected_counts`). The design sets
the drift field [V/cm], g1 [phd/photon], the fiducial cylinder (radius, lower and
upper z [cm]), the S1 coincidence and raw S2 thresholds [phd], on top of a base
:class:`jaxdm.simulators.xenon.Detector`; the expected (cS1, log10 cS2) histograms of
the signal (an SI WIMP) and the backgrounds come from
``xenon.expected_histogram``, whose NEST-like yields depend on the field and whose
acceptances depend on g1 and the thresholds, so the gradient with respect to every
design parameter is exact for the Gaussian expectation. Exposure is the fiducial
mass times a fixed live time. Backgrounds (assumptions, documented in
:class:`XenonScenario`):

- internal ER (beta decays of Rn/Kr daughters, uniform in the liquid): flat in
  energy; default 20 events/(t yr keV), the order of LZ's first search (PRL 131,
  041002 (2023), arXiv:2207.03764: ~330 mostly-ER events in 5.5 t x 60 d);
- external ER (gammas from the walls), whose rate per unit mass falls as
  :math:`e^{-d/\lambda}` with the distance ``d`` to the nearest of the side wall,
  the cathode and the gate, :math:`\lambda = 6` cm (1 MeV photons in liquid xenon:
  mass attenuation 0.058 cm^2/g (NIST XCOM) at 2.89 g/cm^3); its mean over the
  fiducial cylinder is a Gauss-Legendre integral differentiable in the fiducial
  bounds; the wall rate is an assumption to be replaced by a detector's own
  background model;
- 8B CEvNS (``xenon.b8_spectrum``).

Two run conditions (:func:`xenon_two_run_counts`) split the live time between two
designs by a fraction ``f``; their histograms are concatenated into one binned
likelihood.

**Gamma rays** (:func:`gamma_design_counts`): ROI radius, plane-mask latitude and
energy-bin edges as soft weights on expected counts rendered once on fine bins.
**Lensing** (:func:`lensing_design_fisher`): exposure time (shot-noise variance
:math:`\mu/t`) against PSF width (a Gaussian blur of differentiable width applied
to the PSF-free expected image); the pixel scale, a static field of
``ObservationConfig``, is a traced design variable in :mod:`.lensing_pixels`.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ..simulators import xenon
from .fisher import gaussian_fisher
from .objectives import asimov_discovery_significance
from .soft_histogram import soft_cut

__all__ = [
    "XenonDesign",
    "XenonScenario",
    "gamma_design_counts",
    "gamma_soft_roi",
    "gaussian_blur",
    "lensing_design_fisher",
    "wall_exposure_fraction",
    "xenon_design_from_detector",
    "xenon_detector",
    "xenon_discovery_significance",
    "xenon_expected_counts",
    "xenon_two_run_counts",
]


class XenonDesign(eqx.Module):
    """Xenon TPC design parameters (arrays, differentiable).

    Attributes:
        drift_field: Drift field [V/cm], > 0.
        g1: Photon detection efficiency [phd/photon], in (0, 1].
        fid_radius: Fiducial radius [cm], <= TPC radius.
        fid_z_min: Lower fiducial z [cm] (>= -TPC height).
        fid_z_max: Upper fiducial z [cm] (< 0, > fid_z_min).
        s1_coincidence: S1 n-fold coincidence threshold [phd].
        s2_threshold: Raw S2 threshold [phd].
    """

    drift_field: jnp.ndarray = eqx.field(converter=jnp.asarray)
    g1: jnp.ndarray = eqx.field(converter=jnp.asarray)
    fid_radius: jnp.ndarray = eqx.field(converter=jnp.asarray)
    fid_z_min: jnp.ndarray = eqx.field(converter=jnp.asarray)
    fid_z_max: jnp.ndarray = eqx.field(converter=jnp.asarray)
    s1_coincidence: jnp.ndarray = eqx.field(converter=jnp.asarray)
    s2_threshold: jnp.ndarray = eqx.field(converter=jnp.asarray)


class XenonScenario(eqx.Module):
    """Static physics scenario of a xenon design study (hashable).

    Attributes:
        base: Base detector (fields not in :class:`XenonDesign` are taken from it).
        live_time: Live time [year].
        wimp_mass: WIMP mass [GeV/c^2].
        wimp_sigma: Reference SI WIMP-nucleon cross-section [cm^2] (signal
            strength 1).
        er_internal_rate: Internal flat ER rate [events/(tonne year keV)].
        wall_rate: External ER rate at a wall [events/(tonne year keV)] (assumption).
        attenuation_length: Gamma attenuation length [cm].
        cs1_edges: cS1 bin edges [phd].
        log10_cs2_edges: log10 cS2 bin edges.
        n_grid: Energy-grid points per spectrum.
        n_depth: Depth nodes of the expected histogram.
        n_gl: Gauss-Legendre nodes per cS1 bin.
    """

    base: xenon.Detector
    live_time: float = eqx.field(static=True, default=1.0)
    wimp_mass: float = eqx.field(static=True, default=50.0)
    wimp_sigma: float = eqx.field(static=True, default=1e-47)
    er_internal_rate: float = eqx.field(static=True, default=20.0)
    wall_rate: float = eqx.field(static=True, default=2000.0)
    attenuation_length: float = eqx.field(static=True, default=6.0)
    cs1_edges: tuple = eqx.field(
        static=True, default=tuple(float(v) for v in np.linspace(3, 63, 7))
    )
    log10_cs2_edges: tuple = eqx.field(
        static=True, default=tuple(float(v) for v in np.linspace(2.6, 4.2, 7))
    )
    n_grid: int = eqx.field(static=True, default=24)
    n_depth: int = eqx.field(static=True, default=3)
    n_gl: int = eqx.field(static=True, default=3)


def xenon_design_from_detector(det: xenon.Detector) -> XenonDesign:
    """The design of an existing detector (e.g. ``xenon.lz_like()``)."""
    return XenonDesign(
        drift_field=det.drift_field,
        g1=det.g1,
        fid_radius=det.fid_radius,
        fid_z_min=det.fid_z_min,
        fid_z_max=det.fid_z_max,
        s1_coincidence=det.s1_coincidence,
        s2_threshold=det.s2_threshold,
    )


def xenon_detector(design: XenonDesign, base: xenon.Detector) -> xenon.Detector:
    """``base`` with the design's fields replaced (differentiable in ``design``)."""
    names = (
        "drift_field",
        "g1",
        "fid_radius",
        "fid_z_min",
        "fid_z_max",
        "s1_coincidence",
        "s2_threshold",
    )
    return eqx.tree_at(
        lambda d: [getattr(d, n) for n in names],
        base,
        [jnp.asarray(getattr(design, n), base.g1.dtype) for n in names],
    )


def wall_exposure_fraction(det: xenon.Detector, attenuation_length, *, n: int = 24):
    r"""Mean over the fiducial cylinder of :math:`\sum_w e^{-d_w/\lambda}`.

    ``d_w`` are the distances to the side wall (``radius - r``), the gate (``-z``)
    and the cathode (``z + height``); Gauss-Legendre in r (weight ``2 pi r``) and z.

    Args:
        det: Detector (geometry and fiducial cut) [cm].
        attenuation_length: :math:`\lambda` [cm].
        n: Nodes per dimension (static).

    Returns:
        Dimensionless scalar (1 at a wall, ~0 deep inside).
    """
    x, w = np.polynomial.legendre.leggauss(n)
    x, w = jnp.asarray(x), jnp.asarray(w) / 2.0
    r = 0.5 * det.fid_radius * (1.0 + x)
    wr = w * 2.0 * r / det.fid_radius  # (a/2) w_GL * 2 r / a^2: sums to 1
    z = (
        0.5 * (det.fid_z_max + det.fid_z_min)
        + 0.5 * (det.fid_z_max - det.fid_z_min) * x
    )
    lam = attenuation_length
    side = jnp.sum(wr * jnp.exp(-(det.radius - r) / lam))
    ends = jnp.sum(w * (jnp.exp(z / lam) + jnp.exp(-(z + det.height) / lam)))
    return side + ends


def xenon_expected_counts(
    design: XenonDesign, scenario: XenonScenario, *, live_time=None
):
    """Expected signal and background histograms of a design.

    Args:
        design: :class:`XenonDesign`.
        scenario: :class:`XenonScenario`.
        live_time: Live time [year] (default ``scenario.live_time``; may be traced).

    Returns:
        ``(signal, background)``: WIMP counts at ``scenario.wimp_sigma``, shape
        (Bx, By), and background counts, shape (2, Bx, By) (ER, 8B NR).
    """
    det = xenon_detector(design, scenario.base)
    t = scenario.live_time if live_time is None else live_time
    exposure = det.fiducial_mass_tonne * t
    wall = wall_exposure_fraction(det, scenario.attenuation_length)
    er_rate = scenario.er_internal_rate + scenario.wall_rate * wall
    bins = (jnp.asarray(scenario.cs1_edges), jnp.asarray(scenario.log10_cs2_edges))
    kw = dict(n_depth=scenario.n_depth, n_gl=scenario.n_gl)
    n = scenario.n_grid

    def hist(src):
        model = xenon.XenonModel(sources=(src,), exposure=exposure)
        return xenon.expected_histogram(model, det, bins, **kw)

    sig = hist(
        xenon.wimp_spectrum(
            scenario.wimp_mass, scenario.wimp_sigma, e_min=1.0, e_max=60.0, n_grid=n
        )
    )
    er = hist(xenon.flat_er_spectrum(er_rate, e_min=0.5, e_max=20.0, n_grid=n))
    b8 = hist(xenon.b8_spectrum(e_min=0.5, e_max=5.0, n_grid=n))
    return sig, jnp.stack([er, b8])


def xenon_two_run_counts(design_a, design_b, fraction_a, scenario: XenonScenario):
    """Histograms of two run conditions sharing the live time (``fraction_a`` in A).

    Returns:
        ``(signal, background)`` with the two runs' bins concatenated: shapes
        (2 Bx By,) and (2, 2 Bx By,).
    """
    t = scenario.live_time
    sa, ba = xenon_expected_counts(design_a, scenario, live_time=fraction_a * t)
    sb, bb = xenon_expected_counts(design_b, scenario, live_time=(1 - fraction_a) * t)
    sig = jnp.concatenate([sa.ravel(), sb.ravel()])
    bkg = jnp.concatenate([ba.reshape(2, -1), bb.reshape(2, -1)], axis=1)
    return sig, bkg


def xenon_discovery_significance(
    design: XenonDesign, scenario: XenonScenario, *, background_sigma=None
):
    """Asimov discovery significance Z0 of a design (through ``jaxdm.stats``).

    Args:
        design: :class:`XenonDesign`.
        scenario: :class:`XenonScenario`.
        background_sigma: Relative normalisation uncertainty of (ER, 8B), or None.

    Returns:
        Z0 (scalar), differentiable in every design parameter.
    """
    sig, bkg = xenon_expected_counts(design, scenario)
    # Bins with no background at all carry no background template; the stats model
    # requires a background wherever there is signal, so floor it at 1e-9 events.
    bkg = bkg.at[0].add(1e-9)
    return asimov_discovery_significance(sig, bkg, background_sigma=background_sigma)


def gamma_soft_roi(l_deg, b_deg, roi_radius, b_cut, softness):
    r"""Soft ROI weight of each pixel: disc around the GC minus the plane mask.

    :math:`w = \Phi((R - \psi)/\tau)\,\Phi((|b| - b_{cut})/\tau)` with
    :math:`\cos\psi = \cos b \cos l`; as :math:`\tau \to 0` it is the hard ROI of
    ``jaxdm.simulators.gamma`` (``psi < R`` and ``|b| > b_cut``).

    Args:
        l_deg: Pixel longitudes [deg], shape (P,).
        b_deg: Pixel latitudes [deg], shape (P,).
        roi_radius: ROI radius R [deg] (differentiable).
        b_cut: Plane-mask half-height [deg] (differentiable).
        softness: :math:`\tau` [deg], > 0.

    Returns:
        Weights in [0, 1], shape (P,).
    """
    lon = jnp.deg2rad(jnp.asarray(l_deg))
    lat = jnp.deg2rad(jnp.asarray(b_deg))
    psi = jnp.rad2deg(jnp.arccos(jnp.clip(jnp.cos(lat) * jnp.cos(lon), -1.0, 1.0)))
    return soft_cut(roi_radius - psi, 0.0, softness) * soft_cut(
        jnp.abs(jnp.asarray(b_deg)) - b_cut, 0.0, softness
    )


def gamma_design_counts(
    maps, l_deg, b_deg, fine_log10_energy, *, roi_radius, b_cut, log10_edges, softness
):
    r"""Counts of gamma-ray components in a soft ROI and soft coarse energy bins.

    The simulator's energy binning and ROI are static configuration, so render the
    expected counts once on fine energy bins over a generous region
    (``gamma.expected_counts`` with a wide ``roi_radius_deg`` and ``b_cut_deg = 0``),
    and let the design choose the ROI radius, the plane-mask latitude and the
    coarse energy-bin edges through soft weights (:func:`gamma_soft_roi`, and
    :func:`.soft_histogram.soft_histogram`'s kernel on each fine bin's log10
    centre energy). Differentiable in ``roi_radius``, ``b_cut``, ``log10_edges``.

    Args:
        maps: Expected counts of C components on fine bins, shape (C, E_fine, P).
        l_deg: Pixel longitudes [deg], shape (P,).
        b_deg: Pixel latitudes [deg], shape (P,).
        fine_log10_energy: log10 of the fine bins' centre energies [log10 GeV],
            shape (E_fine,).
        roi_radius: ROI radius [deg].
        b_cut: Plane-mask half-height [deg].
        log10_edges: Coarse bin edges [log10 GeV], increasing, shape (K + 1,).
        softness: Softness of the ROI [deg] and of the energy edges [dex], > 0.

    Returns:
        Counts per component and coarse energy bin, shape (C, K).
    """
    w_pix = gamma_soft_roi(l_deg, b_deg, roi_radius, b_cut, softness)
    per_e = jnp.einsum("cep,p->ce", jnp.asarray(maps), w_pix)
    cdf = soft_cut(
        jnp.asarray(log10_edges)[None, :], fine_log10_energy[:, None], softness
    )
    # cdf[e, k] = P(edge_k > E_e); bin k holds Phi(e_{k+1}) - Phi(e_k).
    assign = cdf[:, 1:] - cdf[:, :-1]  # (E_fine, K)
    return per_e @ assign


def gaussian_blur(image, sigma_pix):
    r"""Blur an image with a Gaussian PSF of differentiable width (zero boundary).

    Separable banded matrices :math:`K_{ij} \propto e^{-(i-j)^2/2\sigma^2}`, each row
    normalised over the infinite grid (so flux leaving the edge is lost, as for the
    simulator's ``boundary="zero"``), applied as ``K @ image @ K.T``.

    Args:
        image: Image, shape (n, n) [any unit per pixel].
        sigma_pix: PSF standard deviation [pixels], > 0 (differentiable).

    Returns:
        Blurred image, shape (n, n).
    """
    image = jnp.asarray(image)
    n = image.shape[-1]
    d = jnp.arange(n)[:, None] - jnp.arange(n)[None, :]
    k = jnp.exp(-0.5 * (d / sigma_pix) ** 2)
    k = k / (jnp.sqrt(2 * jnp.pi) * sigma_pix)
    return k @ image @ k.T


def lensing_design_fisher(
    expected_unblurred,
    theta,
    *,
    exposure_time,
    psf_sigma,
    pixel_scale,
    background_sigma,
):
    r"""Fisher matrix of lens parameters as a function of exposure time and PSF width.

    Args:
        expected_unblurred: ``theta -> image`` [e-/s per pixel], rendered without a
            PSF (``ObservationConfig(psf=None, ...)`` at ``pixel_scale``).
        theta: Lens/source parameters (pytree).
        exposure_time: Exposure [s] (differentiable): shot-noise variance
            :math:`\mu/t`.
        psf_sigma: Gaussian PSF sigma [arcsec] (differentiable), applied by
            :func:`gaussian_blur`.
        pixel_scale: Pixel size [arcsec] (static; the rendering's).
        background_sigma: Background noise per pixel [e-/s].

    Returns:
        Fisher matrix, shape (n_params, n_params), Gaussian noise
        :math:`\mu/t + \sigma_{bkg}^2` (the simulator's ``log_likelihood``).
    """
    sigma_pix = psf_sigma / pixel_scale

    def mean(t):
        return gaussian_blur(expected_unblurred(t), sigma_pix)

    return gaussian_fisher(
        mean,
        theta,
        lambda m: jnp.maximum(m, 0.0) / exposure_time + background_sigma**2,
    )
