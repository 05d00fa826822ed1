"""Flat LambdaCDM distances and the lensing critical surface density, in JAX."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from jaxdm._poison import poison_policy
from jaxdm.constants import ARCSEC, C_KM_S, G_MPC_KMS2_MSUN

# Gauss-Legendre nodes/weights on [-1, 1]; 64 nodes integrate 1/E(z) to ~1e-12 for
# z < 10 (E is smooth and analytic there).
_GL_X, _GL_W = np.polynomial.legendre.leggauss(64)


class Cosmology(eqx.Module):
    """Flat LambdaCDM background.

    Defaults are Planck 2018 (TT,TE,EE+lowE+lensing+BAO, Planck Collaboration 2020,
    A&A 641, A6, Table 2 last column): H0 = 67.66 km/s/Mpc, Omega_m = 0.3111.

    Attributes:
        h0: Hubble constant [km/s/Mpc], > 0.
        omega_m: Matter density today (radiation neglected), in (0, 1].
    """

    h0: float = eqx.field(static=True, default=67.66)
    omega_m: float = eqx.field(static=True, default=0.3111)

    def __check_init__(self):
        if not self.h0 > 0:
            raise ValueError(f"`h0` must be > 0 km/s/Mpc; got {self.h0}.")
        if not 0 < self.omega_m <= 1:
            raise ValueError(f"`omega_m` must lie in (0, 1]; got {self.omega_m}.")


PLANCK18 = Cosmology()
"""Planck 2018 flat LambdaCDM (the default cosmology)."""


@poison_policy
def hubble_rate(z, cosmo: Cosmology = PLANCK18):
    r"""Hubble rate :math:`H(z) = H_0\sqrt{\Omega_m(1+z)^3 + 1-\Omega_m}` [km/s/Mpc].

    Args:
        z: Redshift, any shape.
        cosmo: Background cosmology.

    Returns:
        H(z) [km/s/Mpc], same shape as ``z``.
    """
    z = jnp.asarray(z)
    return cosmo.h0 * jnp.sqrt(cosmo.omega_m * (1 + z) ** 3 + 1 - cosmo.omega_m)


@poison_policy
def comoving_distance(z, cosmo: Cosmology = PLANCK18):
    r"""Line-of-sight comoving distance :math:`D_C = c\int_0^z dz'/H(z')` [Mpc].

    Computed by 64-point Gauss-Legendre quadrature (Hogg 1999, astro-ph/9905116,
    eq. 15), so it is differentiable in ``z``.

    Args:
        z: Redshift >= 0, any shape.
        cosmo: Background cosmology.

    Returns:
        Comoving distance [Mpc], same shape as ``z``.
    """
    z = jnp.asarray(z)
    dt = jnp.result_type(z.dtype, jnp.float32)
    x = jnp.asarray(_GL_X, dt)
    w = jnp.asarray(_GL_W, dt)
    zz = 0.5 * z[..., None] * (x + 1)
    integrand = C_KM_S / hubble_rate(zz, cosmo)
    return 0.5 * z * jnp.sum(w * integrand, axis=-1)


@poison_policy
def angular_diameter_distance(z, cosmo: Cosmology = PLANCK18):
    """Angular-diameter distance D_A = D_C / (1 + z) [Mpc] (flat universe).

    Args:
        z: Redshift >= 0, any shape.
        cosmo: Background cosmology.

    Returns:
        D_A [Mpc], same shape as ``z``.
    """
    z = jnp.asarray(z)
    return comoving_distance(z, cosmo) / (1 + z)


@poison_policy
def angular_diameter_distance_z1z2(z1, z2, cosmo: Cosmology = PLANCK18):
    """Angular-diameter distance between z1 < z2 [Mpc] (Hogg 1999 eq. 19, flat).

    Args:
        z1: Lens redshift.
        z2: Source redshift, > z1.
        cosmo: Background cosmology.

    Returns:
        D_12 = (D_C(z2) - D_C(z1)) / (1 + z2) [Mpc].
    """
    z2 = jnp.asarray(z2)
    return (comoving_distance(z2, cosmo) - comoving_distance(z1, cosmo)) / (1 + z2)


def _check_redshifts(z_lens, z_source):
    from jaxdm._checks import _is_traced

    if _is_traced(z_lens) or _is_traced(z_source):
        return
    zl, zs = np.asarray(z_lens), np.asarray(z_source)
    if np.any(zl <= 0):
        raise ValueError(f"`z_lens` must be > 0; got {z_lens}.")
    if np.any(zs <= zl):
        raise ValueError(
            f"`z_source` must be larger than `z_lens` ({z_lens}); got {z_source}."
        )


@poison_policy
def sigma_crit(z_lens, z_source, cosmo: Cosmology = PLANCK18, *, unit="kpc"):
    r"""Critical surface density :math:`\Sigma_{cr} = c^2 D_s / (4\pi G D_d D_{ds})`.

    Args:
        z_lens: Lens redshift > 0.
        z_source: Source redshift > z_lens.
        cosmo: Background cosmology.
        unit: "kpc" for M_sun/kpc^2 or "arcsec" for M_sun/arcsec^2 (at the lens).

    Returns:
        Sigma_crit in the requested unit.

    Raises:
        ValueError: If z_source <= z_lens, z_lens <= 0 or ``unit`` is unknown.

    References:
        Schneider, Ehlers & Falco (1992), Gravitational Lenses, eq. 5.7.
    """
    _check_redshifts(z_lens, z_source)
    if unit not in ("kpc", "arcsec"):
        raise ValueError(f"`unit` must be 'kpc' or 'arcsec'; got {unit!r}.")
    d_d = angular_diameter_distance(z_lens, cosmo)
    d_s = angular_diameter_distance(z_source, cosmo)
    d_ds = angular_diameter_distance_z1z2(z_lens, z_source, cosmo)
    sig_mpc2 = C_KM_S**2 / (4 * jnp.pi * G_MPC_KMS2_MSUN) * d_s / (d_d * d_ds)
    sig_kpc2 = sig_mpc2 * 1e-6
    if unit == "kpc":
        return sig_kpc2
    kpc_per_arcsec = d_d * 1e3 * ARCSEC
    return sig_kpc2 * kpc_per_arcsec**2


@poison_policy
def critical_density(z, cosmo: Cosmology = PLANCK18):
    r"""Critical density :math:`\rho_c(z) = 3H(z)^2/(8\pi G)` [M_sun/kpc^3].

    Args:
        z: Redshift, any shape.
        cosmo: Background cosmology.

    Returns:
        rho_crit(z) [M_sun/kpc^3].
    """
    h_kpc = hubble_rate(z, cosmo) * 1e-3  # km/s/kpc
    from jaxdm.constants import G_KPC_KMS2_MSUN

    return 3 * h_kpc**2 / (8 * jnp.pi * G_KPC_KMS2_MSUN)
