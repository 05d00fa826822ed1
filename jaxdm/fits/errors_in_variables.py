"""Errors-in-variables classification: latent true features through a trained network.

For objects with observed features ``x_obs`` (N, D) and per-object Gaussian
uncertainties ``x_err`` (N, D), the numpyro model :func:`eiv_classifier_model` has
latent true features ``x ~ Normal(prior_mean, prior_scale)`` and
``x_obs ~ Normal(x, x_err)``; the latent features go through a trained jaxdm
classifier (a module mapping one row (D,) to a logit (1,)), giving each object's
posterior class probability ``p = sigmoid(f(x))`` with its spread (Gammaldi et al.
2022, arXiv:2207.09307, who name this and the alternative of feeding the uncertainties
as extra input features). As ``x_err -> 0`` the posterior of ``p`` collapses to the
classifier's output at ``x_obs``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

__all__ = ["eiv_classifier_model", "eiv_class_probabilities"]


def _check(x_obs, x_err):
    xo = np.asarray(x_obs, float)
    xe = np.asarray(x_err, float)
    if xo.ndim != 2:
        raise ValueError(f"`x_obs` must have shape (N, D); got {xo.shape}.")
    if xe.shape != xo.shape:
        raise ValueError(
            f"`x_err` must have the shape of `x_obs` {xo.shape}; got {xe.shape}."
        )
    if not np.all(np.isfinite(xo)):
        rows = np.flatnonzero(~np.isfinite(xo).all(1))
        raise ValueError(
            f"`x_obs` has NaN/inf in observed features (rows {rows[:10]})."
        )
    if not np.all(np.isfinite(xe)) or np.any(xe <= 0):
        raise ValueError("`x_err` must be finite and > 0 (per-object uncertainties).")


def eiv_classifier_model(x_obs, x_err, *, classifier, prior_mean=0.0, prior_scale=3.0):
    """Numpyro model: latent features with measurement errors through a classifier.

    Args:
        x_obs: Observed features (N, D), finite.
        x_err: Gaussian standard deviations (N, D), > 0, same units as ``x_obs``.
        classifier: Trained module, one row (D,) -> logit (1,).
        prior_mean: Mean of the population prior on the true features (broadcasts to
            (N, D)).
        prior_scale: Std of that prior (> 0).

    Sites: ``x`` (N, D) latent, ``p`` (N,) deterministic class-1 probability.
    """
    _check(x_obs, x_err)
    x_obs, x_err = jnp.asarray(x_obs), jnp.asarray(x_err)
    loc = jnp.broadcast_to(jnp.asarray(prior_mean, x_obs.dtype), x_obs.shape)
    scale = jnp.broadcast_to(jnp.asarray(prior_scale, x_obs.dtype), x_obs.shape)
    x = numpyro.sample("x", dist.Normal(loc, scale).to_event(2))
    numpyro.deterministic("p", jax.nn.sigmoid(jax.vmap(classifier)(x)[:, 0]))
    numpyro.sample("x_obs", dist.Normal(x, x_err).to_event(2), obs=x_obs)


def eiv_class_probabilities(result):
    """Posterior mean and std of each object's class-1 probability from ``run_nuts``."""
    p = np.asarray(result.idata.posterior["p"]).reshape(
        -1, result.idata.posterior["p"].shape[-1]
    )
    return p.mean(0), p.std(0)
