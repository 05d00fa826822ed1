"""Inner-Galaxy photon-count maps: expected counts, point-source draws, likelihood.

Model (per energy bin e, pixel p, exposure E_p [cm^2 s], solid angle Omega_p [sr]):

``mu_ep = PSF_e * [ E_p Omega_p ( sum_k I_k T_kp s_ke + <sigma v>/(8 pi m^2) N_e(m)
dJ/dOmega_p )
+ E_p F_p^src s_src,e ]``

with diffuse templates ``T_k`` normalised to unit mean over the ROI and intensities
``I_k`` [ph cm^-2 s^-1 sr^-1] over the full energy range, spectral fractions ``s_ke``,
Majorana dark matter annihilating to b b-bar, and point sources (fluxes F [ph cm^-2
s^-1]
over the full range). ``expected_counts`` replaces the sources by their mean (the flux
integral of dN/dF spread over the spatial template), so it is the mean of ``simulate``
over both point-source realisations and Poisson noise. Configuration defaults follow
NPTFit (arXiv 1612.03173), List et al. 2020 (arXiv 2006.12504) and Mishra-Sharma &
Cranmer 2022 (arXiv 2110.06931); see the submodules for the physics references.

Bad values raise, eagerly (ValueError) and under ``jit``/``vmap`` (an
``equinox.EquinoxRuntimeError`` when the compiled program runs), with a message that
names the argument (``params.dm_sigma_v``, ``exposure``, ``obs`` ...): see
``docs/architecture.md``, "Gamma: checked values".
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ..._checks import check_key, guard_finite, guard_in_range, guard_positive
from . import instrument as ins, point_sources as ps, spectra as sp, templates as tp
from .sky import cartesian_geometry, healpix_geometry

_DIFFUSE = ("iso", "bubbles", "pi0", "ic")
_AS = eqx.field(converter=jnp.asarray)


class GammaParams(eqx.Module):
    """Physical parameters of one map (arrays, differentiable).

    Attributes:
        dm_sigma_v: Annihilation cross-section [1e-26 cm^3/s].
        dm_mass: Dark-matter mass [GeV] (b b-bar channel).
        dm_gamma: gNFW inner slope.
        iso_norm: Isotropic intensity, ROI mean [ph cm^-2 s^-1 sr^-1], full energy
            range.
        bubbles_norm: Fermi-bubbles intensity, ROI mean [same units].
        pi0_norm: Gas-like pi0 + bremsstrahlung intensity, ROI mean [same units].
        ic_norm: Inverse-Compton intensity, ROI mean [same units].
        ps_norm: ``A`` of dN/dF at the highest break [1/(ph cm^-2 s^-1)].
        ps_indices: Indices (k+1,), highest-flux segment first.
        ps_breaks: Breaks [ph cm^-2 s^-1], (k,), decreasing.
    """

    dm_sigma_v: Array = eqx.field(converter=jnp.asarray, default=2.0)
    dm_mass: Array = eqx.field(converter=jnp.asarray, default=40.0)
    dm_gamma: Array = eqx.field(converter=jnp.asarray, default=1.2)
    iso_norm: Array = eqx.field(converter=jnp.asarray, default=1e-7)
    bubbles_norm: Array = eqx.field(converter=jnp.asarray, default=5e-7)
    pi0_norm: Array = eqx.field(converter=jnp.asarray, default=2e-6)
    ic_norm: Array = eqx.field(converter=jnp.asarray, default=1e-6)
    ps_norm: Array = eqx.field(converter=jnp.asarray, default=2.4e12)
    ps_indices: Array = eqx.field(converter=jnp.asarray, default=(10.0, -0.5))
    ps_breaks: Array = eqx.field(converter=jnp.asarray, default=(4e-10,))


class GammaConfig(eqx.Module):
    """Static configuration (hashable); geometry and PSF kernels are cached from it.

    Attributes:
        geometry: ``"cartesian"`` or ``"healpix"``.
        npix: Cartesian pixels per side.
        half_width_deg: Cartesian half width [deg].
        nside: HEALPix nside (power of 2).
        roi_radius_deg: ROI radius [deg] (25).
        b_cut_deg: Masked plane |b| [deg] (2).
        energy_edges: Bin edges [GeV] (default one bin 2-20 GeV).
        exposure: Uniform exposure [cm^2 s].
        psf: ``"gaussian"`` or ``"king"``.
        psf_sigma_2gev_deg: PSF sigma at 2 GeV [deg] (0.18, NPTFit examples).
        king_gamma: King-function tail index.
        ps_template: Spatial template of the sources: ``"disk"``, ``"thick_disk"``,
            ``"nfw2"`` or ``"bulge"``.
        max_sources: Static maximum number of sources.
        ps_f_min: Lowest source flux [ph cm^-2 s^-1].
        ps_f_max: Highest source flux [ph cm^-2 s^-1].
        ps_spectrum: (index, E_cut [GeV]) of the sources' cutoff power law.
        diffuse_indices: Photon indices of iso, bubbles, pi0, ic.
        r_s: Halo scale radius [kpc]; rho_sun [GeV/cm^3]; r_sun [kpc].
        n_los: Gauss-Legendre nodes along the line of sight.
    """

    geometry: str = eqx.field(static=True, default="healpix")
    npix: int = eqx.field(static=True, default=128)
    half_width_deg: float = eqx.field(static=True, default=20.0)
    nside: int = eqx.field(static=True, default=128)
    roi_radius_deg: float = eqx.field(static=True, default=25.0)
    b_cut_deg: float = eqx.field(static=True, default=2.0)
    energy_edges: tuple = eqx.field(static=True, default=(2.0, 20.0))
    exposure: float = eqx.field(static=True, default=ins.DEFAULT_EXPOSURE)
    psf: str = eqx.field(static=True, default="gaussian")
    psf_sigma_2gev_deg: float = eqx.field(static=True, default=0.18)
    king_gamma: float = eqx.field(static=True, default=2.5)
    ps_template: str = eqx.field(static=True, default="disk")
    max_sources: int = eqx.field(static=True, default=1000)
    ps_f_min: float = eqx.field(static=True, default=0.0)
    ps_f_max: float = eqx.field(static=True, default=float("inf"))
    ps_spectrum: tuple = eqx.field(static=True, default=(1.5, 3.0))
    diffuse_indices: tuple = eqx.field(static=True, default=(2.3, 1.9, 2.7, 2.4))
    r_s: float = eqx.field(static=True, default=20.0)
    rho_sun: float = eqx.field(static=True, default=0.4)
    r_sun: float = eqx.field(static=True, default=8.5)
    n_los: int = eqx.field(static=True, default=64)

    def __check_init__(self):
        """Validate the static fields (ValueError naming the field)."""
        if self.geometry not in ("cartesian", "healpix"):
            raise ValueError(
                f"`geometry` must be 'cartesian' or 'healpix'; got {self.geometry!r}."
            )
        sp.check_energy_edges(self.energy_edges)
        if not self.exposure > 0:
            raise ValueError(f"`exposure` must be > 0 [cm^2 s]; got {self.exposure}.")
        if self.ps_template not in ("disk", "thick_disk", "nfw2", "bulge"):
            raise ValueError(
                f"`ps_template` must be disk/thick_disk/nfw2/bulge; got "
                f"{self.ps_template!r}."
            )
        if int(self.max_sources) < 1:
            raise ValueError(f"`max_sources` must be >= 1; got {self.max_sources}.")
        ins.psf_profile(1.0, 1.0, self.psf, self.king_gamma)
        for name in ("psf_sigma_2gev_deg", "r_s", "rho_sun", "r_sun", "roi_radius_deg"):
            v = getattr(self, name)
            if not (
                isinstance(v, int | float | np.number) and np.isfinite(v) and v > 0
            ):
                raise ValueError(f"`{name}` must be a finite number > 0; got {v!r}.")
        if not (
            isinstance(self.b_cut_deg, int | float | np.number) and self.b_cut_deg >= 0
        ):
            raise ValueError(f"`b_cut_deg` must be >= 0; got {self.b_cut_deg!r}.")
        if isinstance(self.n_los, bool) or not isinstance(self.n_los, int | np.integer):
            raise ValueError(f"`n_los` must be an integer >= 2; got {self.n_los!r}.")
        if self.n_los < 2:
            raise ValueError(f"`n_los` must be an integer >= 2; got {self.n_los!r}.")
        if not (0 <= self.ps_f_min < self.ps_f_max):
            raise ValueError(
                f"need 0 <= `ps_f_min` < `ps_f_max`; got {self.ps_f_min!r}, "
                f"{self.ps_f_max!r}."
            )
        if len(self.diffuse_indices) != 4 or not np.all(
            np.isfinite(self.diffuse_indices)
        ):
            raise ValueError(
                "`diffuse_indices` must be 4 finite photon indices (iso, bubbles, pi0, "
                f"ic); got {self.diffuse_indices!r}."
            )


def geometry(config: GammaConfig):
    """The cached :class:`~jaxdm.simulators.gamma.sky.Geometry` of ``config``."""
    if config.geometry == "cartesian":
        return cartesian_geometry(
            config.npix, config.half_width_deg, config.roi_radius_deg, config.b_cut_deg
        )
    return healpix_geometry(config.nside, config.roi_radius_deg, config.b_cut_deg)


def _fixed_templates(config):
    """Shape-fixed templates as JAX arrays from a NumPy cache (built outside trace)."""
    return {k: jnp.asarray(v) for k, v in _fixed_templates_np(config).items()}


@functools.lru_cache(maxsize=16)
def _fixed_templates_np(config):
    with jax.ensure_compile_time_eval():
        return {k: np.asarray(v) for k, v in _compute_fixed_templates(config).items()}


def _compute_fixed_templates(config):
    g = geometry(config)
    ps_t = {
        "disk": lambda: tp.disk_map(g.l_deg, g.b_deg, r_sun=config.r_sun),
        "thick_disk": lambda: tp.disk_map(
            g.l_deg, g.b_deg, z_s=1.0, r_sun=config.r_sun
        ),
        "bulge": lambda: tp.bulge_map(g.l_deg, g.b_deg, r_sun=config.r_sun),
        "nfw2": lambda: tp.j_factor_map(
            g.l_deg, g.b_deg, tp.GNFWHalo(1.2, config.r_s, config.rho_sun, config.r_sun)
        ),
    }[config.ps_template]()
    return {
        "iso": tp.isotropic_map(g.l_deg, g.b_deg),
        "bubbles": tp.bubbles_map(g.l_deg, g.b_deg),
        "pi0": tp.gas_map(g.l_deg, g.b_deg, r_sun=config.r_sun),
        "ic": tp.ic_map(g.l_deg, g.b_deg, r_sun=config.r_sun),
        "ps": ps_t,
    }


def _unit_mean(t, roi, omega):
    w = roi * omega
    return t / (jnp.sum(t * w) / jnp.sum(w))


def _exposure(config, exposure, n_e, n_p):
    if exposure is None:
        return jnp.full((n_e, n_p), config.exposure)
    e = jnp.asarray(exposure)
    if not jnp.issubdtype(e.dtype, jnp.floating):
        e = e.astype(float)
    if e.ndim == 1:
        e = jnp.broadcast_to(e[None, :], (n_e, e.shape[0]))
    if e.shape != (n_e, n_p):
        raise ValueError(
            f"`exposure` must have shape ({n_p},) or ({n_e}, {n_p}) [cm^2 s]; "
            f"got {e.shape}."
        )
    return guard_positive(e, "exposure", allow_zero=True)


_NONNEGATIVE = (
    "dm_sigma_v",
    "iso_norm",
    "bubbles_norm",
    "pi0_norm",
    "ic_norm",
    "ps_norm",
)


def checked_params(params: GammaParams, config=None) -> GammaParams:
    """Return ``params`` with every field checked (eagerly and under ``jit``).

    ``dm_sigma_v`` and the intensities ``*_norm`` finite and >= 0, ``dm_mass`` > 0,
    ``0 <= dm_gamma < 3``, ``ps_indices`` finite, ``ps_breaks`` > 0; with a
    ``config`` also the source-count law's shape (breaks decreasing, finite number
    and flux for ``config.ps_f_min``/``ps_f_max``). Errors name ``params.<field>``.

    Raises:
        TypeError: If ``params`` is not a :class:`GammaParams`.
        ValueError: Concrete bad values (``equinox.EquinoxRuntimeError`` when traced).
    """
    if not isinstance(params, GammaParams):
        raise TypeError(f"`params` must be a GammaParams; got {type(params).__name__}.")
    new = {
        name: guard_positive(getattr(params, name), f"params.{name}", allow_zero=True)
        for name in _NONNEGATIVE
    }
    new["dm_mass"] = guard_positive(params.dm_mass, "params.dm_mass")
    new["dm_gamma"] = guard_in_range(
        params.dm_gamma, "params.dm_gamma", 0.0, 3.0, closed="left"
    )
    new["ps_indices"] = guard_finite(params.ps_indices, "params.ps_indices")
    new["ps_breaks"] = guard_positive(params.ps_breaks, "params.ps_breaks")
    if config is not None:
        _, new["ps_indices"], new["ps_breaks"] = ps._checked(
            None,
            new["ps_indices"],
            new["ps_breaks"],
            config.ps_f_min,
            config.ps_f_max,
            prefix="params.ps_",
        )
    return GammaParams(**new)


def _components(params, config, exposure=None, templates=None):
    """Pre-PSF expected counts: smooth (E, P), source-template counts per unit flux.

    ``params`` must already be checked (:func:`checked_params`).
    """
    if not isinstance(config, GammaConfig):
        raise TypeError(f"`config` must be a GammaConfig; got {type(config).__name__}.")
    g = geometry(config)
    fixed = _fixed_templates(config)
    if templates:
        for k, v in templates.items():
            if k not in _DIFFUSE + ("ps",):
                raise ValueError(
                    f"`templates` keys must be in {_DIFFUSE + ('ps',)}; got {k!r}."
                )
            if np.shape(v) != g.l_deg.shape:
                raise ValueError(
                    f"`templates[{k!r}]` must have shape {g.l_deg.shape}; got "
                    f"{np.shape(v)}."
                )
            fixed[k] = guard_positive(v, f"templates[{k!r}]", allow_zero=True)
    edges = config.energy_edges
    roi = jnp.asarray(g.roi, float)
    omega = jnp.asarray(g.omega_sr)
    n_e, n_p = len(edges) - 1, omega.shape[0]
    expo = _exposure(config, exposure, n_e, n_p)
    inten = jnp.zeros((n_e, n_p))
    for name, idx in zip(_DIFFUSE, config.diffuse_indices, strict=True):
        s = sp.power_law_bins(edges, idx)
        inten = (
            inten
            + getattr(params, name + "_norm")
            * (s / jnp.sum(s))[:, None]
            * _unit_mean(fixed[name], roi, omega)[None, :]
        )
    halo = tp.GNFWHalo(params.dm_gamma, config.r_s, config.rho_sun, config.r_sun)
    dj = tp.j_factor_map(g.l_deg, g.b_deg, halo, n_nodes=config.n_los)
    n_bins = sp.bbbar_bins(edges, params.dm_mass)
    pref = params.dm_sigma_v * 1e-26 / (8 * jnp.pi * params.dm_mass**2)
    inten = inten + pref * n_bins[:, None] * dj[None, :]
    smooth = expo * omega[None, :] * inten
    s_src = sp.cutoff_power_law_bins(edges, *config.ps_spectrum)
    s_src = s_src / jnp.sum(s_src)
    ps_prob = fixed["ps"] * omega * roi
    return smooth, expo * s_src[:, None], ps_prob / jnp.sum(ps_prob), roi


def _finish(pre, config):
    """Apply the PSF and the ROI mask; reshape to the output shape."""
    g = geometry(config)
    sig = ins.psf_sigmas(config.energy_edges, config.psf_sigma_2gev_deg)
    if config.geometry == "cartesian":
        h, w = g.shape
        k = ins.cartesian_kernels(
            sig, 2 * config.half_width_deg / config.npix, config.psf, config.king_gamma
        )
        out = ins.convolve_cartesian_unchecked(pre.reshape(-1, h, w), k)
        # FFT round-off leaves entries of order -1e-7 x the map's maximum where the
        # map is ~0. Every input was checked >= 0 before (params, exposure,
        # templates), so this floor removes round-off only, never a user's value.
        out = jnp.maximum(out.reshape(pre.shape), 0.0)
    else:
        nbr, wk = ins.healpix_kernels(
            g.nside, tuple(int(p) for p in g.pix), sig, config.psf, config.king_gamma
        )
        # Non-negative weights scattered: no round-off below zero.
        out = ins.convolve_healpix_unchecked(pre, nbr, wk)
    out = out * jnp.asarray(g.roi, pre.dtype)[None, :]
    return out.reshape((pre.shape[0],) + tuple(g.shape))


def expected_counts(
    params: GammaParams,
    config: GammaConfig | None = None,
    *,
    exposure=None,
    templates=None,
):
    """Noise-free expected counts (mean over point-source draws and Poisson noise).

    Args:
        params: :class:`GammaParams`.
        config: :class:`GammaConfig`.
        exposure: Optional exposure map [cm^2 s], (P,) or (E, P) over rendered pixels.
        templates: Optional dict replacing the spatial templates ``iso``, ``bubbles``,
            ``pi0``, ``ic`` or the source template ``ps`` by user maps (P,) (e.g. the
            Fermi-LAT diffuse model evaluated on the pixels).

    Returns:
        Counts, shape (E, H, W) for Cartesian or (E, P) for HEALPix; zero outside the
        ROI.
    """
    config = GammaConfig() if config is None else config
    params = checked_params(params, config)
    smooth, src_resp, ps_prob, _ = _components(params, config, exposure, templates)
    f_tot = ps.expected_flux(
        params.ps_norm,
        params.ps_indices,
        params.ps_breaks,
        config.ps_f_min,
        config.ps_f_max,
    )
    return _finish(smooth + src_resp * (f_tot * ps_prob)[None, :], config)


class GammaSimulation(eqx.Module):
    """Output of :func:`simulate`.

    Attributes:
        counts: Poisson counts, shape as :func:`expected_counts`.
        mean: Expected counts given the drawn sources (the Poisson mean).
        f_src: Fraction of the expected ROI counts that comes from point sources.
        n_sources: Number of sources drawn (before the ``max_sources`` cut).
        n_dropped: Sources drawn beyond ``max_sources`` and therefore not rendered
            (``max(n_sources - max_sources, 0)``); nonzero only in traced calls, where
            the up-front check of :func:`simulate` cannot run.
        fluxes: Source fluxes [ph cm^-2 s^-1], (max_sources,), zero where masked.
        pixels: Source pixel indices into the rendered pixels, (max_sources,).
        mask: Which entries of ``fluxes`` are real sources, (max_sources,).
    """

    counts: Array
    mean: Array
    f_src: Array
    n_sources: Array
    n_dropped: Array
    fluxes: Array
    pixels: Array
    mask: Array


def simulate(
    key,
    params: GammaParams,
    config: GammaConfig | None = None,
    *,
    exposure=None,
    templates=None,
) -> GammaSimulation:
    """Draw a point-source population and Poisson counts.

    At most ``config.max_sources`` sources are rendered (static shapes). With concrete
    (untraced) ``ps_norm``, ``ps_indices`` and ``ps_breaks`` a ValueError naming
    ``max_sources`` is raised when ``mean + 6 sqrt(mean)`` of the Poisson number of
    sources exceeds it, with the value needed. Under ``jit``/``vmap`` this sizing
    check cannot run (the cap is a static shape): the number of sources beyond the
    cap is then returned as ``n_dropped`` (a flag, not an error), and ``mean``,
    ``counts`` and ``f_src`` describe the rendered sources only. Invalid parameter
    values (a negative ``dm_sigma_v``, a NaN anywhere, a divergent source-count law
    ...) raise both eagerly and under ``jit`` (:func:`checked_params`), and so does a
    negative or NaN Poisson mean, for which ``jax.random.poisson`` would return -1.

    Args:
        key: Typed PRNG key.
        params: :class:`GammaParams`.
        config: :class:`GammaConfig`.
        exposure: Optional exposure map (see :func:`expected_counts`).
        templates: Optional user templates (see :func:`expected_counts`).

    Returns:
        A :class:`GammaSimulation`.

    Raises:
        ValueError: Invalid parameters, exposure or templates, or ``max_sources`` too
            small for concrete parameters (see above); under ``jit`` invalid values
            raise ``equinox.EquinoxRuntimeError`` instead.
    """
    config = GammaConfig() if config is None else config
    check_key(key)
    params = checked_params(params, config)
    check_source = not any(
        isinstance(v, jax.core.Tracer) for v in (params.ps_indices, params.ps_breaks)
    )
    if check_source:
        ps.check_source_counts(
            params.ps_indices, params.ps_breaks, config.ps_f_min, config.ps_f_max
        )
    smooth, src_resp, ps_prob, roi = _components(params, config, exposure, templates)
    k_ps, k_poisson = jax.random.split(key)
    fl, pix, mask, n, n_drop = ps.sample_population(
        k_ps,
        params.ps_norm,
        params.ps_indices,
        params.ps_breaks,
        ps_prob,
        config.max_sources,
        config.ps_f_min,
        config.ps_f_max,
    )
    src = src_resp * ps.source_flux_map(fl, pix, ps_prob.shape[0])[None, :]
    mean_s, mean_p = _finish(smooth, config), _finish(src, config)
    mean = mean_s + mean_p
    f_src = jnp.sum(mean_p) / jnp.maximum(jnp.sum(mean), 1e-30)
    # jax.random.poisson returns -1 for a negative or NaN mean: check it first. The
    # inputs are checked above, so this catches overflow (e.g. an astronomically
    # large ps_norm) rather than a user's sign error.
    mean = guard_positive(
        mean,
        "mean (the Poisson mean from params, exposure, templates)",
        allow_zero=True,
    )
    counts = jax.random.poisson(k_poisson, mean).astype(mean.dtype)
    return GammaSimulation(counts, mean, f_src, n, n_drop, fl, pix, mask)


def expected_f_src(
    params: GammaParams,
    config: GammaConfig | None = None,
    *,
    exposure=None,
    templates=None,
):
    """Ratio of mean point-source counts to mean total counts in the ROI (scalar)."""
    config = GammaConfig() if config is None else config
    params = checked_params(params, config)
    smooth, src_resp, ps_prob, _ = _components(params, config, exposure, templates)
    f_tot = ps.expected_flux(
        params.ps_norm,
        params.ps_indices,
        params.ps_breaks,
        config.ps_f_min,
        config.ps_f_max,
    )
    src = _finish(src_resp * (f_tot * ps_prob)[None, :], config)
    return jnp.sum(src) / jnp.sum(_finish(smooth, config) + src)


def log_likelihood(
    obs,
    params: GammaParams,
    config: GammaConfig | None = None,
    *,
    exposure=None,
    templates=None,
):
    """Poisson log-likelihood of counts under :func:`expected_counts` (ROI pixels only).

    Point sources enter through their mean (the Poisson-template limit); the full
    non-Poissonian likelihood (NPTFit) is not implemented.

    Args:
        obs: Observed counts, shape as :func:`expected_counts`; every pixel must be
            finite and >= 0 (also outside the ROI, where it is ignored).
        params: :class:`GammaParams`.
        config: :class:`GammaConfig`.
        exposure: Optional exposure map (see :func:`expected_counts`).
        templates: Optional user templates (see :func:`expected_counts`).

    Returns:
        Scalar log-likelihood.

    Raises:
        ValueError: Bad shape of ``obs``; negative or NaN counts (eagerly; an
            ``equinox.EquinoxRuntimeError`` under ``jit``) or bad parameters.
    """
    config = GammaConfig() if config is None else config
    mu = expected_counts(params, config, exposure=exposure, templates=templates)
    obs = jnp.asarray(obs)
    if obs.shape != mu.shape:
        raise ValueError(f"`obs` must have shape {mu.shape}; got {obs.shape}.")
    obs = guard_positive(obs, "obs", allow_zero=True).astype(mu.dtype)
    roi = jnp.asarray(geometry(config).roi).reshape(mu.shape[1:])
    mu = jnp.where(roi, mu, 1.0)
    ll = obs * jnp.log(mu) - mu - jax.scipy.special.gammaln(obs + 1)
    return jnp.sum(jnp.where(roi[None], ll, 0.0))
