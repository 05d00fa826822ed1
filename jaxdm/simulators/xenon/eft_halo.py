"""Velocity integral of the v_perp^2 terms of the NR-EFT rate (standard halo model)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ..._poison import poison_policy
from . import _guards as _g
from .spectra import HaloModel, _check_halo, _eta_shm

__all__ = ["eta_perp_shm"]


@poison_policy
def eta_perp_shm(v_min, halo: HaloModel | None = None):
    """``eta_perp(v_min) = int_{v > v_min} f(v) (v^2 - v_min^2) / v d^3v`` [km/s].

    The velocity integral of the ``v_perp^2`` terms of the EFT rate (1308.6288
    with ``v_perp^2 = v^2 - v_min^2``), in closed form for the standard halo model of
    :func:`.spectra.eta_shm` (Maxwellian truncated at ``v_esc`` in the Galactic frame,
    boosted by ``v_earth``). With the angular integral done first, ``int f v d^3v``
    above ``v_min`` is ``1/(N sqrt(pi) v0 vE) int v^2 [exp(-(v-vE)^2/v0^2) -
    exp(-min((v+vE)^2, v_esc^2)/v0^2)] dv`` up to ``v_esc + vE``, integrated with the
    antiderivative ``G(v; a) = sqrt(pi) v0/2 (a^2 + v0^2/2) erf((v-a)/v0) - v0^2/2
    (v+a) exp(-(v-a)^2/v0^2)`` of ``v^2 exp(-(v-a)^2/v0^2)``; ``eta_perp`` is that
    minus ``v_min^2 eta``. Checked against Monte Carlo in the tests.

    Args:
        v_min: Minimum speed [km/s], any shape, >= 0.
        halo: Halo parameters (default :class:`.spectra.HaloModel()`).

    Returns:
        eta_perp [km/s], shape of ``v_min``.
    """
    halo = _check_halo(halo)
    v_min = _g.guard_values(v_min, "v_min", low=0.0)
    return _eta_perp_shm(v_min, halo)


def _eta_perp_shm(v_min, halo):
    v0, ve, vesc = halo.v0, halo.v_earth, halo.v_esc
    erf = jax.scipy.special.erf
    rpi = math.sqrt(math.pi)
    z = vesc / v0
    ez = jnp.exp(-(z**2))
    norm = erf(z) - 2.0 * z * ez / rpi

    def G(v, a):
        return rpi * v0 / 2.0 * (a**2 + v0**2 / 2.0) * erf((v - a) / v0) - (
            v0**2 / 2.0
        ) * (v + a) * jnp.exp(-(((v - a) / v0) ** 2))

    vmax = vesc + ve
    vs = vesc - ve
    lo = jnp.minimum(v_min, vmax)
    first = G(vmax, ve) - G(lo, ve)
    lo_s = jnp.minimum(lo, vs)
    second = G(vs, -ve) - G(lo_s, -ve)
    lo_c = jnp.maximum(lo, vs)
    third = ez * (vmax**3 - lo_c**3) / 3.0
    h = (first - second - third) / (norm * rpi * v0 * ve)
    out = h - v_min**2 * _eta_shm(v_min, halo)
    return jnp.where(v_min < vmax, jnp.maximum(out, 0.0), 0.0)
