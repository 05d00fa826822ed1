"""Photon spectra integrated over energy bins (numbers of photons, GeV).

- Power law ``dN/dE ~ E^-index``.
- Exponential-cutoff power law ``E^-index exp(-E/E_cut)`` for pulsar-like sources
  (Fermi-LAT 2PC, Abdo et al. 2013, arXiv 1305.4385; GCE pulsar fits index ~1.5,
  E_cut ~ 3 GeV, Cholis, Hooper & Linden 2015, arXiv 1407.5583).
- b b-bar annihilation: the fit of Bergstrom, Ullio & Buckley 1998 (astro-ph/9712318),
  ``dN/dx = 0.73 x^-1.5 exp(-7.8 x)`` with ``x = E/m_chi`` for x < 1, per annihilation.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..._checks import guard_finite, guard_positive


def check_energy_edges(edges, name="energy_edges"):
    """Validate energy-bin edges: >= 2 finite, positive, increasing values [GeV].

    Returns:
        The edges as a tuple of floats.

    Raises:
        ValueError: Naming ``name`` if the edges are inconsistent.
    """
    e = np.asarray(edges, dtype=float)
    if (
        e.ndim != 1
        or e.size < 2
        or not np.all(np.isfinite(e))
        or np.any(e <= 0)
        or np.any(np.diff(e) <= 0)
    ):
        raise ValueError(
            f"`{name}` must be >= 2 positive, finite, strictly increasing "
            "energies [GeV]; "
            f"got {tuple(edges)}."
        )
    return tuple(float(v) for v in e)


def power_law_bins(edges, index):
    """Photon number per bin of ``dN/dE = E^-index`` [GeV^(1-index)], shape (E,)."""
    e = _edges(edges)
    index = guard_finite(index, "index")
    q = 1.0 - index
    safe = jnp.where(jnp.abs(q) < 1e-6, 1.0, q)
    pl = (e[1:] ** safe - e[:-1] ** safe) / safe
    return jnp.where(jnp.abs(q) < 1e-6, jnp.log(e[1:] / e[:-1]), pl)


def _edges(edges):
    """Concrete edges: the full check; traced edges: guarded positive."""
    if isinstance(edges, tuple | list) or isinstance(edges, np.ndarray):
        return jnp.asarray(check_energy_edges(edges))
    return guard_positive(edges, "energy_edges")


def _gl_bins(edges, fn, n=24):
    x, w = np.polynomial.legendre.leggauss(n)
    e = jnp.asarray(edges)
    lo, hi = jnp.log(e[:-1]), jnp.log(e[1:])
    le = 0.5 * (lo + hi)[:, None] + 0.5 * (hi - lo)[:, None] * jnp.asarray(x)[None, :]
    en = jnp.exp(le)
    return 0.5 * (hi - lo) * jnp.sum(jnp.asarray(w)[None, :] * en * fn(en), axis=-1)


def cutoff_power_law_bins(edges, index, e_cut):
    """Photon number per bin of ``E^-index exp(-E/e_cut)`` (Gauss-Legendre in ln E)."""
    edges = _edges(edges)
    index = guard_finite(index, "index")
    e_cut = guard_positive(e_cut, "e_cut")
    return _gl_bins(edges, lambda en: en ** (-index) * jnp.exp(-en / e_cut))


def bbbar_dnde(energy, mass):
    """Photons per annihilation per GeV, chi chi -> b b-bar (Bergstrom et al. 1998 fit).

    Args:
        energy: Photon energy [GeV].
        mass: Dark-matter mass [GeV].

    Returns:
        ``dN/dE`` [1/GeV], zero above the kinematic endpoint E = m.
    """
    mass = guard_positive(mass, "mass")
    energy = guard_positive(energy, "energy")
    x = energy / mass
    xs = jnp.clip(x, 1e-12, 1.0)
    return jnp.where(x < 1, 0.73 * xs**-1.5 * jnp.exp(-7.8 * xs) / mass, 0.0)


def bbbar_bins(edges, mass, n=32):
    """Photons per annihilation in each bin for b b-bar, integrating up to min(E_hi, m).

    Returns:
        Shape (E,), differentiable in ``mass``.
    """
    x, w = np.polynomial.legendre.leggauss(n)
    e = _edges(edges)
    mass = guard_positive(mass, "mass")
    lo = jnp.log(e[:-1])
    hi = jnp.log(jnp.maximum(jnp.minimum(e[1:], mass), e[:-1]))
    le = 0.5 * (lo + hi)[:, None] + 0.5 * (hi - lo)[:, None] * jnp.asarray(x)[None, :]
    en = jnp.exp(le)
    return (
        0.5
        * (hi - lo)
        * jnp.sum(jnp.asarray(w)[None, :] * en * bbbar_dnde(en, mass), axis=-1)
    )
