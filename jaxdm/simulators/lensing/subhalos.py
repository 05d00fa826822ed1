r"""Halo physics in physical units and subhalo populations (CDM and warm dark matter).

Masses are :math:`M_{200c}` [M_sun] at the lens redshift; populations are padded to a
static ``max_n`` with a 0/1 mask so sampling is jit- and vmap-compatible.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxdm._checks import _guard, check_key
from jaxdm._poison import poison_policy
from jaxdm.constants import ARCSEC

from ._guards import guard_finite, guard_positive, guard_positive_or_inf
from .cosmology import (
    PLANCK18,
    Cosmology,
    angular_diameter_distance,
    critical_density,
    sigma_crit,
)
from .mass import NFWParams, SubhaloPopulation, TNFWParams

# Duffy et al. (2008), MNRAS 390, L64, Table 1, NFW M200 (critical), full sample,
# 0 < z < 2: c = A (M / M_pivot)^B (1 + z)^C with M_pivot = 2e12 M_sun/h.
DUFFY08_A, DUFFY08_B, DUFFY08_C, DUFFY08_MPIVOT_H = 5.71, -0.084, -0.47, 2e12


@poison_policy
def concentration_duffy08(m200, z, cosmo: Cosmology = PLANCK18):
    """Concentration-mass relation of Duffy et al. (2008) for M200c.

    Args:
        m200: Halo mass M200c [M_sun], any shape.
        z: Redshift.
        cosmo: Cosmology (for h).

    Returns:
        c200, same shape as ``m200``.
    """
    m200 = guard_positive(m200, "m200")
    z = guard_positive(z, "z", allow_zero=True)
    h = cosmo.h0 / 100
    m_pivot = DUFFY08_MPIVOT_H / h
    return DUFFY08_A * (m200 / m_pivot) ** DUFFY08_B * (1 + z) ** DUFFY08_C


@poison_policy
def nfw_physical(m200, c, z, cosmo: Cosmology = PLANCK18):
    r"""Scale radius and density of an NFW halo from (M200c, c).

    :math:`r_{200} = (3M/(800\pi\rho_c))^{1/3}`, :math:`r_s=r_{200}/c`,
    :math:`\rho_s = M/(4\pi r_s^3[\ln(1+c)-c/(1+c)])` (Navarro et al. 1997).

    Args:
        m200: M200c [M_sun].
        c: Concentration r200/r_s.
        z: Redshift.
        cosmo: Cosmology.

    Returns:
        (r_s [kpc], rho_s [M_sun/kpc^3]).
    """
    m200 = guard_positive(m200, "m200")
    c = guard_positive(c, "c")
    rho_c = critical_density(z, cosmo)
    r200 = (3 * m200 / (4 * jnp.pi * 200 * rho_c)) ** (1 / 3)
    r_s = r200 / c
    rho_s = m200 / (4 * jnp.pi * r_s**3 * (jnp.log1p(c) - c / (1 + c)))
    return r_s, rho_s


def _angular(m200, c, z_lens, z_source, cosmo):
    r_s, rho_s = nfw_physical(m200, c, z_lens, cosmo)
    d_d_kpc = angular_diameter_distance(z_lens, cosmo) * 1e3
    theta_s = r_s / d_d_kpc / ARCSEC
    kappa_s = rho_s * r_s / sigma_crit(z_lens, z_source, cosmo, unit="kpc")
    return kappa_s, theta_s


@poison_policy
def nfw_params_from_mass(
    m200, c, z_lens, z_source, *, x0=0.0, y0=0.0, cosmo: Cosmology = PLANCK18
) -> NFWParams:
    r"""NFW lensing parameters (kappa_s, theta_s) from M200c [M_sun] and c.

    :math:`\kappa_s = \rho_s r_s/\Sigma_{cr}`, :math:`\theta_s = r_s/D_d`.

    Args:
        m200: M200c [M_sun].
        c: Concentration.
        z_lens: Lens redshift.
        z_source: Source redshift (> z_lens).
        x0: Centre x [arcsec].
        y0: Centre y [arcsec].
        cosmo: Cosmology.

    Returns:
        NFWParams.
    """
    x0, y0 = guard_finite(x0, "x0"), guard_finite(y0, "y0")
    kappa_s, theta_s = _angular(m200, c, z_lens, z_source, cosmo)
    return NFWParams(kappa_s=kappa_s, theta_s=theta_s, x0=x0, y0=y0)


@poison_policy
def tnfw_params_from_mass(
    m200, c, tau, z_lens, z_source, *, x0=0.0, y0=0.0, cosmo: Cosmology = PLANCK18
) -> TNFWParams:
    """Truncated-NFW lensing parameters from M200c [M_sun], c and tau = r_t/r_s.

    Args:
        m200: M200c [M_sun] (of the untruncated profile).
        c: Concentration.
        tau: Truncation radius over scale radius.
        z_lens: Lens redshift.
        z_source: Source redshift.
        x0: Centre x [arcsec].
        y0: Centre y [arcsec].
        cosmo: Cosmology.

    Returns:
        TNFWParams.
    """
    x0, y0 = guard_finite(x0, "x0"), guard_finite(y0, "y0")
    tau = guard_positive(tau, "tau")
    kappa_s, theta_s = _angular(m200, c, z_lens, z_source, cosmo)
    return TNFWParams(kappa_s=kappa_s, theta_s=theta_s, tau=tau, x0=x0, y0=y0)


@poison_policy
def half_mode_mass(m_wdm, cosmo: Cosmology = PLANCK18, *, omega_dm=0.2621):
    r"""Half-mode mass [M_sun] of a thermal-relic WDM particle of mass m_wdm [keV].

    Viel et al. (2005, PRD 71, 063534) eq. 7 gives the transfer-function scale
    :math:`\alpha = 0.049\,(m/\mathrm{keV})^{-1.11}(\Omega_{DM}/0.25)^{0.11}
    (h/0.7)^{1.22}\,h^{-1}\mathrm{Mpc}`; Schneider et al. (2012, MNRAS 424, 684)
    eqs. 7-8: :math:`\lambda_{hm} = 2\pi\alpha(2^{\nu/5}-1)^{-1/(2\nu)}`, ν = 1.12,
    :math:`M_{hm} = \frac{4\pi}{3}\bar\rho(\lambda_{hm}/2)^3`.

    Args:
        m_wdm: Thermal-relic mass [keV], > 0 (``inf`` gives 0, i.e. CDM).
        cosmo: Cosmology (h, Omega_m for the mean matter density).
        omega_dm: Dark-matter density (Planck 2018: 0.2621).

    Returns:
        M_hm [M_sun].
    """
    m_wdm = guard_positive_or_inf(m_wdm, "m_wdm")
    h = cosmo.h0 / 100
    nu = 1.12
    alpha = (
        0.049 * m_wdm**-1.11 * (omega_dm / 0.25) ** 0.11 * (h / 0.7) ** 1.22 / h
    )  # Mpc
    lam = 2 * jnp.pi * alpha * (2 ** (nu / 5) - 1) ** (-1 / (2 * nu))
    rho_m = cosmo.omega_m * critical_density(0.0, cosmo) * 1e9  # M_sun/Mpc^3
    return 4 * jnp.pi / 3 * rho_m * (lam / 2) ** 3


@poison_policy
def wdm_suppression(m, m_hm, *, beta=1.0, gamma=1.16):
    r"""WDM/CDM subhalo mass-function ratio :math:`(1+(m_{hm}/m)^\beta)^{-\gamma}`.

    Defaults β = 1, γ = 1.16 are Schneider et al. (2012) eq. 10.

    Args:
        m: Subhalo mass [M_sun].
        m_hm: Half-mode mass [M_sun] (0 for CDM).
        beta: Sharpness exponent.
        gamma: Suppression exponent.

    Returns:
        Ratio in (0, 1].
    """
    m = guard_positive(m, "m")
    m_hm = guard_positive(m_hm, "m_hm", allow_zero=True)
    return (1 + (m_hm / m) ** beta) ** (-gamma)


@poison_policy
def wdm_concentration_factor(m, m_hm, *, gamma1=15.0, gamma2=0.3):
    r"""WDM/CDM concentration ratio :math:`(1+\gamma_1 m_{hm}/m)^{-\gamma_2}`.

    Schneider et al. (2012) eq. 39 (γ1 = 15, γ2 = 0.3).

    Args:
        m: Halo mass [M_sun].
        m_hm: Half-mode mass [M_sun].
        gamma1: Coefficient.
        gamma2: Exponent.

    Returns:
        Ratio <= 1.
    """
    m = guard_positive(m, "m")
    m_hm = guard_positive(m_hm, "m_hm", allow_zero=True)
    return (1 + gamma1 * m_hm / m) ** (-gamma2)


class SubhaloConfig(eqx.Module):
    """Static settings of a subhalo population.

    Attributes:
        max_n: Padded array size (number of slots). A Poisson draw above it raises
            an error at run time (nothing is dropped silently): choose it with
            :func:`required_max_n`.
        m_min: Lower mass limit [M_sun].
        m_max: Upper mass limit [M_sun].
        alpha: Mass-function slope, dN/dm ∝ m^-alpha (1.9: Springel et al. 2008,
            MNRAS 391, 1685, Aquarius).
        field_radius: Radius of the disc where subhalos are placed [arcsec].
        positions: "uniform" in the disc, or "host" (surface density ∝ 1/R, the
            projected isothermal host, around the host centre).
        normalization: What the scene's ``sub_norm`` means: "number" (expected
            CDM count in [m_min, m_max]), "mass" (expected CDM total mass [M_sun]) or
            "fraction" (projected mass fraction of the isothermal host inside
            ``field_radius``).
        tau: Truncation radius / scale radius of the tNFW subhalos (modelling
            choice; None gives untruncated NFW).
        z_lens: Lens redshift.
        z_source: Source redshift (> z_lens).
        cosmo: Cosmology.
    """

    max_n: int = eqx.field(static=True, default=128)
    m_min: float = eqx.field(static=True, default=1e7)
    m_max: float = eqx.field(static=True, default=1e10)
    alpha: float = eqx.field(static=True, default=1.9)
    field_radius: float = eqx.field(static=True, default=2.5)
    positions: str = eqx.field(static=True, default="uniform")
    normalization: str = eqx.field(static=True, default="mass")
    tau: float | None = eqx.field(static=True, default=6.0)
    z_lens: float = eqx.field(static=True, default=0.5)
    z_source: float = eqx.field(static=True, default=1.0)
    cosmo: Cosmology = eqx.field(static=True, default=Cosmology())

    def __check_init__(self):
        if not (isinstance(self.max_n, int) and self.max_n >= 1):
            raise ValueError(f"`max_n` must be an int >= 1; got {self.max_n!r}.")
        if not 0 < self.m_min < self.m_max:
            raise ValueError(
                f"`m_min` and `m_max` must satisfy 0 < m_min < m_max; got "
                f"{self.m_min}, {self.m_max}."
            )
        if self.alpha == 1.0 or self.alpha == 2.0:
            raise ValueError(f"`alpha` = 1 and 2 are not supported; got {self.alpha}.")
        if self.positions not in ("uniform", "host"):
            raise ValueError(
                f"`positions` must be 'uniform' or 'host'; got {self.positions!r}."
            )
        if self.normalization not in ("number", "mass", "fraction"):
            raise ValueError(
                "`normalization` must be 'number', 'mass' or 'fraction'; got "
                f"{self.normalization!r}."
            )
        if not self.field_radius > 0:
            raise ValueError(f"`field_radius` must be > 0; got {self.field_radius}.")
        if self.tau is not None and not self.tau > 0:
            raise ValueError(f"`tau` must be > 0 or None; got {self.tau}.")
        if not 0 < self.z_lens < self.z_source:
            raise ValueError(
                f"`z_source` must be larger than `z_lens` > 0; got "
                f"z_lens={self.z_lens},"
                f" z_source={self.z_source}."
            )


@poison_policy
def mean_subhalo_mass(config: SubhaloConfig) -> float:
    r"""Mean mass :math:`\int m\,dN / \int dN` of the CDM mass function [M_sun].

    Args:
        config: Subhalo config.

    Returns:
        <m> [M_sun].
    """
    a, lo, hi = config.alpha, config.m_min, config.m_max
    num = (hi ** (2 - a) - lo ** (2 - a)) / (2 - a)
    den = (hi ** (1 - a) - lo ** (1 - a)) / (1 - a)
    return num / den


@poison_policy
def sample_masses(key, n, config: SubhaloConfig, dtype=None):
    """Draw n masses from dN/dm ∝ m^-alpha on [m_min, m_max] by inverse CDF.

    Args:
        key: Typed PRNG key.
        n: Number of draws (static).
        config: Subhalo config.
        dtype: Float dtype.

    Returns:
        Masses [M_sun], shape (n,).
    """
    u = jax.random.uniform(key, (n,), dtype or jnp.result_type(float))
    e = 1 - config.alpha
    lo, hi = config.m_min**e, config.m_max**e
    return (lo + u * (hi - lo)) ** (1 / e)


@poison_policy
def expected_cdm_number(sub_norm, config: SubhaloConfig, *, theta_e=None):
    """Expected number of CDM subhalos in [m_min, m_max] for a normalisation.

    Args:
        sub_norm: Number, total mass [M_sun] or projected mass fraction, per
            ``config.normalization``.
        config: Subhalo config.
        theta_e: Host Einstein radius [arcsec] (needed for "fraction").

    Returns:
        Expected CDM count (scalar).

    Raises:
        ValueError: If "fraction" is used without ``theta_e``, or ``sub_norm`` or
            ``theta_e`` is negative or NaN (under ``jit``: NaN output, poison).
    """
    sub_norm = guard_positive(sub_norm, "sub_norm", allow_zero=True)
    if config.normalization == "number":
        return jnp.asarray(sub_norm)
    if config.normalization == "mass":
        return sub_norm / mean_subhalo_mass(config)
    if theta_e is None:
        raise ValueError("`theta_e` is required when normalization='fraction'.")
    theta_e = guard_positive(theta_e, "theta_e", allow_zero=True)
    sig = sigma_crit(config.z_lens, config.z_source, config.cosmo, unit="arcsec")
    m_host = sig * jnp.pi * theta_e * config.field_radius  # SIS projected mass
    return sub_norm * m_host / mean_subhalo_mass(config)


@poison_policy
def required_max_n(mean_n: float, *, tail: float = 1e-9) -> int:
    """Smallest ``max_n`` with P(N > max_n) < ``tail`` for N ~ Poisson(mean_n).

    Args:
        mean_n: Expected number of CDM subhalos (largest over the prior).
        tail: Allowed probability of a draw above ``max_n`` (which raises).

    Returns:
        The required number of slots (int >= 1).
    """
    mean_n = float(mean_n)
    if not (np.isfinite(mean_n) and mean_n >= 0):
        raise ValueError(f"`mean_n` must be finite and >= 0; got {mean_n}.")
    if not 0 < tail < 1:
        raise ValueError(f"`tail` must be in (0, 1); got {tail}.")
    # Walk the Poisson pmf in log space until the survival function drops below tail.
    k, log_pmf = 0, -mean_n
    cdf = np.exp(log_pmf)
    while 1.0 - cdf >= tail and k < 10 * mean_n + 100:
        k += 1
        log_pmf += np.log(mean_n) - np.log(k)
        cdf += np.exp(log_pmf)
    return max(k, 1)


class SubhaloDraw(eqx.Module):
    """Raw draw of a padded subhalo population.

    Attributes:
        mass: M200c [M_sun], shape (max_n,).
        x: Positions x [arcsec], shape (max_n,).
        y: Positions y [arcsec], shape (max_n,).
        mask: 1 for surviving subhalos, 0 otherwise, shape (max_n,).
        cdm_mask: 1 for subhalos present before WDM suppression, shape (max_n,).
    """

    mass: jax.Array
    x: jax.Array
    y: jax.Array
    mask: jax.Array
    cdm_mask: jax.Array


@poison_policy
def sample_subhalos(
    key, sub_norm, m_wdm, config: SubhaloConfig, *, center=(0.0, 0.0), theta_e=None
) -> SubhaloDraw:
    """Draw a WDM subhalo population into fixed-size padded arrays.

    N_CDM ~ Poisson(expected CDM number), masses from the
    CDM mass function, then each is kept with probability
    ``wdm_suppression(m, half_mode_mass(m_wdm))`` (thinning a Poisson process gives
    exactly the suppressed mass function). Not differentiable in m_wdm.

    Args:
        key: Typed PRNG key.
        sub_norm: Normalisation (see ``SubhaloConfig.normalization``).
        m_wdm: Thermal-relic WDM mass [keV]; ``jnp.inf`` for CDM.
        config: Subhalo config.
        center: Host centre (x, y) [arcsec] for ``positions="host"``.
        theta_e: Host Einstein radius [arcsec] (for "fraction").

    Returns:
        SubhaloDraw with arrays of shape (max_n,).

    Raises:
        ValueError: For a negative/NaN ``sub_norm``, ``theta_e``, a NaN or
            non-positive ``m_wdm`` or a non-finite ``center`` (under ``jit``: the
            draw is poisoned, see :mod:`jaxdm._poison`).
        ValueError: With concrete inputs, when ``config.max_n`` is below
            :func:`required_max_n` for the expected number, or the draw has
            N_CDM > ``max_n``. Under ``jit``/``vmap`` such a draw is poisoned (NaN
            arrays, ``with_valid`` False) instead of truncating the population.
    """
    check_key(key)
    m_wdm = guard_positive_or_inf(m_wdm, "m_wdm")
    center = tuple(guard_finite(c, "center") for c in center)
    k_n, k_m, k_keep, k_r, k_phi = jax.random.split(key, 5)
    n_max = config.max_n
    mean_n = expected_cdm_number(sub_norm, config, theta_e=theta_e)
    # sub_norm and theta_e are checked above; this keeps jax.random.poisson from
    # ever seeing a negative or NaN mean (it would return -1).
    mean_n = _guard(
        mean_n,
        ~jnp.isfinite(mean_n) | (mean_n < 0),
        "`sub_norm` gives a negative or non-finite expected number of subhalos.",
        safe=0.0,
    )
    if not isinstance(mean_n, jax.core.Tracer):
        need = required_max_n(float(mean_n))
        if need > n_max:
            raise ValueError(
                f"`SubhaloConfig.max_n` = {n_max} is too small for an expected "
                f"{float(mean_n):.1f} CDM subhalos; use max_n >= {need}."
            )
    n = jax.random.poisson(k_n, mean_n)
    # Traced, this is recorded by the poison policy (the draw is NaN/-1 and
    # ``with_valid`` False), never truncated silently.
    n = _guard(
        n,
        n > n_max,
        "subhalo draw exceeds SubhaloConfig.max_n: raise max_n (see "
        "jaxdm.simulators.lensing.required_max_n) rather than truncating.",
        safe=n_max,
    )
    dt = jnp.result_type(float)
    m = sample_masses(k_m, n_max, config, dt)
    cdm = jnp.arange(n_max) < n
    m_hm = half_mode_mass(m_wdm, config.cosmo)
    keep = jax.random.uniform(k_keep, (n_max,), dt) < wdm_suppression(m, m_hm)
    u = jax.random.uniform(k_r, (n_max,), dt)
    r = config.field_radius * (jnp.sqrt(u) if config.positions == "uniform" else u)
    ang = jax.random.uniform(k_phi, (n_max,), dt, 0, 2 * jnp.pi)
    cx, cy = (0.0, 0.0) if config.positions == "uniform" else center
    return SubhaloDraw(
        mass=m,
        x=cx + r * jnp.cos(ang),
        y=cy + r * jnp.sin(ang),
        mask=(cdm & keep).astype(dt),
        cdm_mask=cdm.astype(dt),
    )


@poison_policy
def population_from_draw(draw: SubhaloDraw, m_wdm, config: SubhaloConfig):
    """Lensing profiles (tNFW or NFW) of a drawn population.

    Concentrations follow Duffy et al. (2008) at z_lens times the WDM factor of
    Schneider et al. (2012) eq. 39.

    Args:
        draw: Output of :func:`sample_subhalos`.
        m_wdm: WDM mass [keV] (``inf`` for CDM).
        config: Subhalo config.

    Returns:
        SubhaloPopulation with fields of shape (max_n,).
    """
    m_hm = half_mode_mass(m_wdm, config.cosmo)
    draw = eqx.tree_at(
        lambda d: (d.mass, d.x, d.y, d.mask),
        draw,
        (
            guard_positive(draw.mass, "draw.mass"),
            guard_finite(draw.x, "draw.x"),
            guard_finite(draw.y, "draw.y"),
            guard_finite(draw.mask, "draw.mask"),
        ),
    )
    c = concentration_duffy08(draw.mass, config.z_lens, config.cosmo)
    c = c * wdm_concentration_factor(draw.mass, m_hm)
    kappa_s, theta_s = _angular(
        draw.mass, c, config.z_lens, config.z_source, config.cosmo
    )
    if config.tau is None:
        prof = NFWParams(kappa_s=kappa_s, theta_s=theta_s, x0=draw.x, y0=draw.y)
    else:
        prof = TNFWParams(
            kappa_s=kappa_s,
            theta_s=theta_s,
            tau=jnp.full_like(kappa_s, config.tau),
            x0=draw.x,
            y0=draw.y,
        )
    return SubhaloPopulation(profile=prof, mask=draw.mask)
