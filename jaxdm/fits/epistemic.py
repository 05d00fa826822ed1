"""Epistemic uncertainty of networks: deep ensembles and a mean-field BNN (numpyro SVI).

* Deep ensembles (Lakshminarayanan, Pritzel & Blundell 2017, arXiv:1612.01474): M
  members from different initialisations and minibatch orders, each trained by
  :func:`jaxdm.train.fit`; the predictive mean and spread are taken over members.
* Mean-field Bayesian MLP (Blundell et al. 2015, arXiv:1505.05424): independent
  Normal priors on all weights, a factorised Gaussian posterior fitted by numpyro SVI
  (``AutoNormal`` via :func:`jaxdm.fits.run_svi`); predictive draws from the guide.
  This is the one learned model here that does not train through ``jaxdm.train.fit``:
  its objective is the ELBO over a numpyro model, which numpyro's SVI optimises.

Both serve regressors (Gaussian likelihood with a fixed noise ``sigma``) and binary
classifiers (Bernoulli logits); calibration plots are ``jaxdm.plots.
reliability_diagram`` and ``expected_calibration_error``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.infer import Predictive

from .._args import check_choice, check_int
from ..train import fit
from .runners import run_svi

__all__ = [
    "bnn_model",
    "bnn_predict",
    "ensemble_predict",
    "fit_bnn",
    "train_ensemble",
]


def train_ensemble(
    key,
    make_model: Callable,
    loss_fn: Callable,
    data,
    optimizer=None,
    *,
    n_members: int = 5,
    **fit_kw,
):
    """Train ``n_members`` models, each through :func:`jaxdm.train.fit`.

    Args:
        key: PRNG key (split into one init key and one training key per member).
        make_model: ``make_model(key) -> eqx.Module``.
        loss_fn: ``loss_fn(model, batch, key) -> scalar`` as for ``fit``.
        data: Training pytree (rows first).
        optimizer: optax transformation (``fit``'s default if None).
        n_members: Ensemble size.
        **fit_kw: Passed to ``fit`` (``max_epochs``, ``batch_size``, ``progress`` ...).

    Returns:
        ``(members, histories)``: lists of trained models and their ``History``.
    """
    n_members = check_int(n_members, "n_members", minimum=2)
    members, hist = [], []
    for k in jax.random.split(key, n_members):
        k_init, k_fit = jax.random.split(k)
        m, h = fit(k_fit, make_model(k_init), loss_fn, data, optimizer, **fit_kw)
        members.append(m)
        hist.append(h)
    return members, hist


def ensemble_predict(members: Sequence, x, *, kind: str = "regression"):
    """Predictive mean and spread of an ensemble on a batch ``x`` (N, D).

    Args:
        members: Trained models mapping one row (D,) to an output (1,) (regression
            mean or classification logit).
        x: Inputs (N, D).
        kind: ``"regression"`` (spread = std of member means) or
            ``"classification"`` (members' sigmoid probabilities; spread = their std).

    Returns:
        ``(mean (N,), spread (N,))``.
    """
    kind = check_choice(kind, "kind", ("regression", "classification"))
    outs = jnp.stack([jax.vmap(m)(x)[:, 0] for m in members])  # (M, N)
    if kind == "classification":
        outs = jax.nn.sigmoid(outs)
    return outs.mean(0), outs.std(0)


def bnn_model(x, y=None, *, width: int = 16, depth: int = 2, prior_scale: float = 1.0,
              kind: str = "regression", sigma: float = 0.1):  # fmt: skip
    """Numpyro model: MLP with Normal(0, prior_scale) weights (tanh activations).

    Args:
        x: Inputs (N, D).
        y: Targets (N,) (regression, real) or labels in {0, 1}; ``None`` to predict.
        width: Hidden width.
        depth: Hidden layers.
        prior_scale: Prior std of every weight and bias.
        kind: ``"regression"`` (Normal(f(x), sigma)) or ``"classification"``
            (Bernoulli(logits=f(x))).
        sigma: Regression noise std (same units as ``y``).
    """
    h = x
    sizes = [x.shape[1]] + [width] * depth + [1]
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        w = numpyro.sample(
            f"w{i}", dist.Normal(0.0, prior_scale).expand((a, b)).to_event(2)
        )
        c = numpyro.sample(
            f"b{i}", dist.Normal(0.0, prior_scale).expand((b,)).to_event(1)
        )
        h = h @ w + c[None, :]
        if i < len(sizes) - 2:
            h = jnp.tanh(h)
    f = numpyro.deterministic("f", h[:, 0])
    with numpyro.plate("data", x.shape[0]):
        if kind == "regression":
            numpyro.sample("y", dist.Normal(f, sigma), obs=y)
        else:
            numpyro.sample("y", dist.Bernoulli(logits=f), obs=y)


def fit_bnn(
    key, x, y, *, num_steps: int = 2000, progress_bar: bool = False, **model_kw
):
    """Mean-field Gaussian posterior of :func:`bnn_model` by SVI (``run_svi``)."""
    kind = model_kw.get("kind", "regression")
    check_choice(kind, "kind", ("regression", "classification"))
    data = {"x": jnp.asarray(x), "y": jnp.asarray(y), **model_kw}
    res = run_svi(key, bnn_model, data, num_steps=num_steps, num_samples=10,
                  progress_bar=progress_bar,
                  optimizer=numpyro.optim.Adam(1e-2))  # fmt: skip
    return res, model_kw


def bnn_predict(key, fitted, x, *, num_samples: int = 200):
    """Predictive mean and spread of a fitted BNN at ``x`` (N, D).

    Regression: mean and std of f(x) over posterior draws (epistemic part);
    classification: of sigmoid(f(x)).
    """
    res, model_kw = fitted
    pred = Predictive(bnn_model, guide=res.guide, params=res.params,
                      num_samples=num_samples, return_sites=["f"])  # fmt: skip
    f = pred(key, jnp.asarray(x), None, **model_kw)["f"]
    if model_kw.get("kind", "regression") == "classification":
        f = jax.nn.sigmoid(f)
    return f.mean(0), f.std(0)
