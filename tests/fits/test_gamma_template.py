"""Poisson template model with ring nuisances: log density and gradients."""

import jax
import numpy as np
from numpyro.infer.util import log_density
from scipy import stats

from jaxdm.fits import nptf_inputs, poisson_template_model
from jaxdm.simulators import gamma as g

CFG = g.GammaConfig(geometry="cartesian", npix=12, half_width_deg=12.0,
                    energy_edges=(2.0, 20.0), n_los=8)  # fmt: skip
TRUTH = g.GammaParams(dm_sigma_v=1.0, pi0_norm=2e-7, iso_norm=2e-8, ic_norm=1e-7)


def test_template_model_is_poisson_and_differentiable():
    pix = np.flatnonzero(g.geometry(CFG).roi)
    mu = np.asarray(g.expected_counts(TRUTH, CFG)[0]).ravel()[pix]
    counts = np.random.default_rng(0).poisson(mu).astype(np.float32)
    priors = {"pi0_norm": (0.0, 1e-6), "dm_sigma_v": (0.0, 5.0),
              "dm_gamma": (0.5, 1.8)}  # fmt: skip
    data = {"counts": counts, "config": CFG, "priors": priors, "reference": TRUTH,
            "n_rings": 3, "ring_sigma": 0.1}  # fmt: skip
    vals = {"pi0_norm": 2e-7, "dm_sigma_v": 1.0, "dm_gamma": 1.2,
            "ring_norm": np.ones(3, np.float32)}  # fmt: skip

    def ld(v):
        return log_density(poisson_template_model, (), data, v)[0]

    # Unit ring norms reproduce the Poisson likelihood of expected_counts.
    prior = (
        -np.log(1e-6)
        - np.log(5.0)
        - np.log(1.3)
        + stats.lognorm.logpdf(1.0, 0.1).sum() * 3
    )
    np.testing.assert_allclose(
        float(ld(vals)), stats.poisson.logpmf(counts, mu).sum() + prior, rtol=1e-4
    )
    grads = jax.grad(ld)(vals)
    assert np.isfinite(float(grads["dm_gamma"]))
    assert np.all(np.isfinite(np.asarray(grads["ring_norm"])))


def test_nptf_inputs_of_one_energy_bin_of_a_multi_bin_config():
    # Each bin's templates are that bin's expected counts, and the point-source
    # counts per unit flux summed over bins give the simulator's PS expectation
    # (flux conservation across bins: the flux keeps the units of ps_norm).
    cfg = g.GammaConfig(geometry="cartesian", npix=8, half_width_deg=8.0,
                        energy_edges=(2.0, 5.0, 20.0), n_los=4)  # fmt: skip
    p = g.GammaParams(dm_sigma_v=0.0, iso_norm=1e-7, bubbles_norm=0.0, pi0_norm=0.0,
                      ic_norm=0.0, ps_norm=0.0)  # fmt: skip
    iso = np.asarray(g.expected_counts(p, cfg))
    ps = g.GammaParams(dm_sigma_v=0.0, iso_norm=0.0, bubbles_norm=0.0,
                       pi0_norm=0.0, ic_norm=0.0, ps_norm=2e11)  # fmt: skip
    ps_counts = float(np.sum(g.expected_counts(ps, cfg)))
    flux = float(g.expected_flux(ps.ps_norm, ps.ps_indices, ps.ps_breaks))
    total = 0.0
    for b in (0, 1):
        inp = nptf_inputs(p, cfg, names=("iso",), energy_bin=b)
        np.testing.assert_allclose(
            np.asarray(inp.templates["iso"]) * 1e-7,
            iso[b].ravel()[inp.pixels], rtol=1e-5,
        )  # fmt: skip
        total += float(np.sum(inp.source_fractions[0] * inp.exposure)) * flux
    np.testing.assert_allclose(total, ps_counts, rtol=1e-4)
