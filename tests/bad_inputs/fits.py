"""Bad inputs to ``jaxdm.fits``: counts, priors, shapes, NaN features."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from jaxdm import fits
from jaxdm.simulators import gamma, xenon
from tests.bad_inputs.case import Case

PSF = fits.PSFCorrection(jnp.ones(1), jnp.ones(1))
EXPO = (1e11, 1e11)  # static tuple: exposure regions are computed eagerly
POP = fits.PointSourcePopulation(
    jnp.asarray(2e11), jnp.asarray([10.0, -0.5]), jnp.asarray([1e-10])
)


def _normal_model(y):
    tau = numpyro.sample("tau", dist.HalfNormal(1.0))
    numpyro.sample("y", dist.Normal(0.0, tau), obs=y)


def _trace(model, *args, **kwargs):
    return numpyro.handlers.trace(
        numpyro.handlers.seed(model, jax.random.key(0))
    ).get_trace(*args, **kwargs)


CASES = [
    Case(
        "fits.nptf_log_likelihood: negative counts",
        fits.nptf_log_likelihood,
        (
            jnp.array([1.0, -1.0]),
            jnp.array([1.0, 1.0]),
            [POP],
            jnp.array([[0.1, 0.1]]),
            EXPO,
            PSF,
        ),
        {"k_max": 5},
        match="counts",
    ),  # fmt: skip
    Case(
        "fits.nptf_log_likelihood: NaN counts",
        fits.nptf_log_likelihood,
        (
            jnp.array([1.0, jnp.nan]),
            jnp.array([1.0, 1.0]),
            [POP],
            jnp.array([[0.1, 0.1]]),
            EXPO,
            PSF,
        ),
        {"k_max": 5},
        match="counts",
    ),  # fmt: skip
    Case(
        "fits.nptf_log_likelihood: counts of the wrong shape",
        fits.nptf_log_likelihood,
        (
            jnp.array([1.0, 2.0, 3.0]),
            jnp.array([1.0, 1.0]),
            [POP],
            jnp.array([[0.1, 0.1]]),
            EXPO,
            PSF,
        ),
        {"k_max": 5},
        match="counts",
    ),  # fmt: skip
    Case(
        "fits.nptf_log_pmf: source_fractions of the wrong shape",
        fits.nptf_log_pmf,
        (jnp.array([1.0, 1.0]), [POP], jnp.array([0.1, 0.1, 0.1]), EXPO, PSF, 5),
        match="source_fractions",
    ),
    Case(
        "fits.nptf_log_pmf: negative population norm",
        fits.nptf_log_pmf,
        (
            jnp.array([1.0, 1.0]),
            [fits.PointSourcePopulation(jnp.asarray(-1.0), POP.indices, POP.breaks)],
            jnp.array([[0.1, 0.1]]),
            EXPO,
            PSF,
            5,
        ),
        match=r"populations\[0\].norm",
    ),  # fmt: skip
    Case(
        "fits.run_nuts: init value outside the prior's support",
        fits.run_nuts,
        (jax.random.key(0), _normal_model, {"y": jnp.ones(3)}),
        {"init_params": {"tau": -1.0}, "progress_bar": False},
        match=r"init_params\['tau'\]",
        modes=("eager",),
    ),
    Case(
        "fits.run_nuts: data not a mapping",
        fits.run_nuts,
        (jax.random.key(0), _normal_model, np.ones(3)),
        match="data",
        modes=("eager",),
    ),
    Case(
        "fits.wimp_binned_model: rate prior below 0 (outside support)",
        _trace,
        (fits.wimp_binned_model, None),
        {
            "detector": xenon.lz_like(),
            "bins": (np.linspace(2, 80, 3), np.linspace(2.5, 4.5, 3)),
            "exposure": 1.0,
            "priors": {"er_rate": (-1.0, 2.0)},
        },
        match=r"priors\['er_rate'\]",
        modes=("eager",),
    ),  # fmt: skip
    Case(
        "fits.wimp_binned_model: counts of the wrong shape",
        _trace,
        (fits.wimp_binned_model, np.ones((3, 3))),
        {
            "detector": xenon.lz_like(),
            "bins": (np.linspace(2, 80, 3), np.linspace(2.5, 4.5, 3)),
            "exposure": 1.0,
        },
        match="counts",
        modes=("eager",),
    ),  # fmt: skip
    Case(
        "fits.wimp_unbinned_model: NaN in observed features",
        _trace,
        (fits.wimp_unbinned_model, np.array([[10.0, 3.0], [np.nan, 3.1]])),
        {
            "detector": xenon.lz_like(),
            "region": ((2.0, 80.0), (2.5, 4.5)),
            "exposure": 1.0,
        },
        match="events",
        modes=("eager",),
    ),  # fmt: skip
    Case(
        "fits.wimp_binned_model: nuisance value outside its prior support",
        numpyro.infer.util.log_density,
        (
            fits.wimp_binned_model,
            (),
            {
                "counts": None,
                "detector": xenon.lz_like(),
                "exposure": 1.0,
                "bins": (np.linspace(2, 80, 3), np.linspace(2.5, 4.5, 3)),
            },
            {
                "log10_mass": 1.7,
                "log10_sigma": -46.0,
                "er_rate": 0.5,
                "b8_scale": 1.0,
                "neutron_rate": 0.01,
                "g1": 0.9,
                "g2_scale": 1.0,
                "electron_lifetime": 6500.0,
                "drift_field": 193.0,
            },
        ),
        match="`g1` = 0.9 is outside its prior support",
        modes=("eager",),
    ),  # fmt: skip
    Case(
        "fits.nptf_inputs: energy_bin outside the config's bins",
        fits.nptf_inputs,
        (
            gamma.GammaParams(),
            gamma.GammaConfig(
                geometry="cartesian",
                npix=8,
                energy_edges=(2.0, 5.0, 20.0),
                n_los=4,
            ),
        ),
        {"names": ("iso",), "energy_bin": 2},
        match="energy_bin",
        modes=("eager",),
    ),  # fmt: skip
]
