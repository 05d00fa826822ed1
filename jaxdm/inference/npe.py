r"""Neural posterior estimation (NPE): a conditional flow q(theta | x) from simulations.

NPE fits :math:`q_\phi(\theta \mid x)` by maximising
:math:`\mathbb{E}_{p(\theta)p(x|\theta)} \log q_\phi(\theta \mid s_\psi(x))` over
simulated pairs, where :math:`s_\psi` is an embedding network trained jointly
(Papamakarios & Murray 2016; Greenberg et al. 2019; amortized, single-round variant
as in Lueckmann et al. 2021). Once trained, the posterior
of any observation is a forward pass: ``sample`` and ``log_prob`` are vmapped over
observations so thousands of observations are evaluated in one call.

Observations are standardised by statistics fitted on the training set (per element,
one global scalar for images, or not at all for masked event sets). Parameters with an
unbounded support are standardised too, with the Jacobian included in ``log_prob``;
bounded supports (``Box``, ``Positive``) are handled by the flow's support bijector, so
samples never leave the prior's support.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import serialise
from .._checks import check_array, check_key
from ..flows import (
    ACTIVATIONS,
    Box,
    ConditionalFlow,
    Positive,
    Real,
    make_maf,
    make_nsf,
)
from ..nn import MLP, CNNEmbedding, DeepSetEmbedding, Flatten, Standardizer
from ..train import fit
from .simulation import simulate_dataset

__all__ = ["NPE", "load", "make_npe", "npe_loss", "run_npe", "save", "train_npe"]

_EMBEDDINGS = ("mlp", "cnn", "deepset", "identity")


class NPE(eqx.Module):
    """A trained or untrained neural posterior estimator.

    Attributes:
        embedding: Network ``x -> context`` acting on one standardised observation.
        flow: Conditional flow over (standardised) theta given the context.
        x_standardizer: Fitted observation standardisation.
        theta_standardizer: Fitted parameter standardisation (identity for bounded
            supports).
        theta_dim: Number of parameters.
        x_shape: Shape of one observation.
        hyperparams: Factory keyword arguments, as a tuple of pairs (for ``save``).
    """

    embedding: eqx.Module
    flow: ConditionalFlow
    x_standardizer: Standardizer
    theta_standardizer: Standardizer
    theta_dim: int = eqx.field(static=True)
    x_shape: tuple[int, ...] = eqx.field(static=True)
    hyperparams: tuple = eqx.field(static=True)

    def context(self, x):
        """Embedding of one observation ``x`` (shape ``x_shape``), shape (context,)."""
        x = jnp.asarray(x)
        if tuple(x.shape) != self.x_shape:
            raise ValueError(
                f"`x` must have shape {self.x_shape} (one observation); got "
                f"{tuple(x.shape)}."
            )
        return self.embedding(self.x_standardizer(x))

    def _n_obs(self, x) -> int | None:
        """None for one observation, else the number of observations (leading axis)."""
        shape = tuple(jnp.shape(x))
        if shape == self.x_shape:
            return None
        if len(shape) == len(self.x_shape) + 1 and shape[1:] == self.x_shape:
            return shape[0]
        raise ValueError(
            f"`x` must have shape {self.x_shape} (one observation) or "
            f"(n_obs, {', '.join(map(str, self.x_shape))}); got {shape}."
        )

    def _log_prob_one(self, theta, x):
        """Log q(theta | x) for theta (theta_dim,) and one observation (scalar)."""
        u = self.theta_standardizer(theta)
        jac = self.theta_standardizer.log_abs_det_jacobian()
        return self.flow.log_prob(u, self.context(x)) + jac

    def log_prob(self, theta, x):
        """Posterior log-density log q(theta | x), in the units of theta.

        Shapes (d = theta_dim): one observation ``x`` (``x_shape``) with theta (d,)
        gives a scalar, with theta (m, d) gives (m,); a batch ``x`` (n_obs, *x_shape)
        with theta (n_obs, d) gives (n_obs,) (pairs), with theta (n_obs, m, d) gives
        (n_obs, m). The embedding runs once per observation; everything is vmapped.
        log q is -inf for theta outside the support.

        Args:
            theta: Parameters, shape (d,), (m, d), (n_obs, d) or (n_obs, m, d).
            x: One observation or a batch of observations.

        Returns:
            Log-densities with the shapes above.
        """
        theta = jnp.asarray(theta)
        n_obs = self._n_obs(x)
        want = (1, 2) if n_obs is None else (2, 3)
        if theta.ndim not in want or theta.shape[-1] != self.theta_dim:
            raise ValueError(
                f"`theta` must have {' or '.join(map(str, want))} dimensions with last "
                f"axis theta_dim={self.theta_dim} for x of shape {tuple(jnp.shape(x))}"
                f"; got {theta.shape}."
            )
        if n_obs is not None and theta.shape[0] != n_obs:
            raise ValueError(
                f"`theta` must have n_obs={n_obs} rows to match `x`; got "
                f"{theta.shape[0]}."
            )

        def one_obs(th, xi):
            ctx = self.context(xi)
            jac = self.theta_standardizer.log_abs_det_jacobian()

            def lp(t):
                return self.flow.log_prob(self.theta_standardizer(t), ctx) + jac

            return lp(th) if th.ndim == 1 else jax.vmap(lp)(th)

        if n_obs is None:
            return one_obs(theta, x)
        return jax.vmap(one_obs)(theta, jnp.asarray(x))

    def sample_and_log_prob(self, key, x, n: int):
        """Draw ``n`` posterior samples per observation, with their log q.

        Args:
            key: Typed PRNG key (split per observation for a batch).
            x: One observation (``x_shape``) or a batch (n_obs, *x_shape).
            n: Samples per observation.

        Returns:
            ``(theta, log_q)`` with shapes (n, d) and (n,) for one observation, or
            (n_obs, n, d) and (n_obs, n) for a batch, all in one vmapped call.
        """
        check_key(key)
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"`n` must be a positive int; got {n!r}.")
        n_obs = self._n_obs(x)
        jac = self.theta_standardizer.log_abs_det_jacobian()

        def one_obs(k, xi):
            u, logq = self.flow.sample_and_log_prob(k, self.context(xi), (int(n),))
            return jax.vmap(self.theta_standardizer.inverse)(u), logq + jac

        if n_obs is None:
            return one_obs(key, x)
        return jax.vmap(one_obs)(jax.random.split(key, n_obs), jnp.asarray(x))

    def sample(self, key, x, n: int):
        """Draw ``n`` posterior samples per observation (see ``sample_and_log_prob``).

        Returns:
            Shape (n, theta_dim) for one observation, (n_obs, n, theta_dim) for a
            batch.
        """
        return self.sample_and_log_prob(key, x, n)[0]


def npe_loss(model: NPE, batch, key):
    """Negative mean log q(theta | x) over a minibatch ``(theta, x)``."""
    del key
    theta, x = batch
    return -jnp.mean(jax.vmap(model._log_prob_one)(theta, x))


def _support_to_json(support) -> dict:
    if isinstance(support, Box):
        return {
            "kind": "box",
            "low": np.asarray(support.low).tolist(),
            "high": np.asarray(support.high).tolist(),
        }
    if isinstance(support, Positive):
        return {"kind": "positive"}
    if isinstance(support, Real):
        return {"kind": "real"}
    raise TypeError(
        "`support` must be jaxdm.flows.Real(), Box(low, high) or Positive(); "
        f"got {type(support).__name__}."
    )


def _support_from_json(spec):
    if not isinstance(spec, dict):
        return spec
    if spec["kind"] == "box":
        return Box(jnp.asarray(spec["low"]), jnp.asarray(spec["high"]))
    return Positive() if spec["kind"] == "positive" else Real()


def make_npe(
    key,
    *,
    theta_dim: int,
    x_shape: int | Sequence[int],
    embedding: str | eqx.Module = "mlp",
    embedding_dim: int = 32,
    embedding_width: int = 64,
    embedding_depth: int = 2,
    cnn_channels: Sequence[int] = (16, 32, 64),
    flow: str = "nsf",
    flow_layers: int = 5,
    flow_hidden: Sequence[int] = (64, 64),
    flow_activation: str = "gelu",
    flow_linear_skip: bool = False,
    n_bins: int = 8,
    support=None,
    x_standardization: str | None = None,
) -> NPE:
    """Build an untrained NPE (a key-first factory; train it with :func:`train_npe`).

    Args:
        key: Typed PRNG key for the initial weights.
        theta_dim: Number of parameters.
        x_shape: Shape of one observation (an int for vectors).
        embedding: ``"mlp"`` (vector x), ``"cnn"`` (image ``(H, W)`` or ``(C, H, W)``),
            ``"deepset"`` (event set ``(n_max, event_dim + 1)``, last column a 0/1
            mask),
            ``"identity"`` (flattened x as context), or an equinox module mapping one
            observation to a vector of length ``embedding_dim``.
        embedding_dim: Length of the embedding (the flow's context).
        embedding_width: Width of the MLP / DeepSet hidden layers.
        embedding_depth: Hidden layers of the MLP / DeepSet networks.
        cnn_channels: Channels of the CNN's residual stages (each halves H and W).
        flow: ``"nsf"`` (rational-quadratic neural spline flow) or ``"maf"``.
        flow_layers: Number of flow layers.
        flow_hidden: Hidden sizes of the flow conditioners.
        flow_activation: Nonlinearity of the flow conditioners (``"gelu"``,
            ``"relu"``, ``"silu"``, ``"tanh"``).
        flow_linear_skip: Give the flow conditioners direct input-to-output
            connections (``jaxdm.flows.MADE``).
        n_bins: Spline bins (NSF only).
        support: Prior support: ``jaxdm.flows.Real()`` (default), ``Box(low, high)`` or
            ``Positive()``; samples never leave it.
        x_standardization: ``"element"`` (per element), ``"global"`` (one scalar) or
            ``"none"``; default by embedding: element for mlp/identity, global for cnn,
            none for deepset (the mask column must stay 0/1).

    Returns:
        An :class:`NPE` with identity standardisers (fitted by :func:`train_npe`).

    Raises:
        ValueError: For unknown choices or non-positive sizes.
    """
    check_key(key)
    x_shape = (
        (int(x_shape),) if np.ndim(x_shape) == 0 else tuple(int(s) for s in x_shape)
    )
    if theta_dim < 1:
        raise ValueError(f"`theta_dim` must be >= 1; got {theta_dim}.")
    if any(s < 1 for s in x_shape):
        raise ValueError(f"`x_shape` entries must be >= 1; got {x_shape}.")
    if flow not in ("nsf", "maf"):
        raise ValueError(f"`flow` must be 'nsf' or 'maf'; got {flow!r}.")
    if flow_activation not in ACTIVATIONS:
        raise ValueError(
            f"`flow_activation` must be one of {sorted(ACTIVATIONS)}; got "
            f"{flow_activation!r}."
        )
    support = Real() if support is None else _support_from_json(support)
    support_json = _support_to_json(support)
    k_emb, k_flow = jax.random.split(key)

    custom = not isinstance(embedding, str)
    if custom:
        emb = embedding
        kind = "custom"
    elif embedding not in _EMBEDDINGS:
        raise ValueError(
            f"`embedding` must be one of {_EMBEDDINGS}; got {embedding!r}."
        )
    else:
        kind = embedding
        emb, embedding_dim = _build_embedding(
            k_emb, kind, x_shape, embedding_dim, embedding_width, embedding_depth,
            tuple(cnn_channels),
        )  # fmt: skip
    if x_standardization is None:
        x_standardization = {"cnn": "global", "deepset": "none"}.get(kind, "element")
    if x_standardization not in ("element", "global", "none"):
        raise ValueError(
            "`x_standardization` must be 'element', 'global' or 'none'; "
            f"got {x_standardization!r}."
        )

    make_flow = make_nsf if flow == "nsf" else make_maf
    flow_kw = dict(n_bins=n_bins) if flow == "nsf" else {}
    cflow = make_flow(
        k_flow,
        theta_dim=theta_dim,
        context_dim=embedding_dim,
        n_layers=flow_layers,
        hidden=tuple(flow_hidden),
        support=support,
        activation=flow_activation,
        linear_skip=bool(flow_linear_skip),
        **flow_kw,
    )
    hyper = dict(
        theta_dim=theta_dim,
        x_shape=list(x_shape),
        embedding=kind,
        embedding_dim=embedding_dim,
        embedding_width=embedding_width,
        embedding_depth=embedding_depth,
        cnn_channels=list(cnn_channels),
        flow=flow,
        flow_layers=flow_layers,
        flow_hidden=list(flow_hidden),
        flow_activation=flow_activation,
        flow_linear_skip=bool(flow_linear_skip),
        n_bins=n_bins,
        support=support_json,
        x_standardization=x_standardization,
    )
    return NPE(
        embedding=emb,
        flow=cflow,
        x_standardizer=Standardizer(jnp.zeros(x_shape), jnp.ones(x_shape)),
        theta_standardizer=Standardizer(jnp.zeros(theta_dim), jnp.ones(theta_dim)),
        theta_dim=theta_dim,
        x_shape=x_shape,
        hyperparams=tuple((k, _freeze(v)) for k, v in hyper.items()),
    )


def _freeze(v):
    if isinstance(v, dict):
        return tuple((k, _freeze(w)) for k, w in v.items())
    if isinstance(v, list):
        return tuple(_freeze(w) for w in v)
    return v


def _thaw(v):
    if (
        isinstance(v, tuple)
        and v
        and all(
            isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in v
        )
    ):
        return {k: _thaw(w) for k, w in v}
    if isinstance(v, tuple):
        return [_thaw(w) for w in v]
    return v


def _build_embedding(key, kind, x_shape, dim, width, depth, channels):
    x_size = math.prod(x_shape)
    if kind == "identity":
        return Flatten(), x_size
    if kind == "mlp":
        if len(x_shape) != 1:
            raise ValueError(
                f"embedding='mlp' needs vector observations; got x_shape={x_shape} "
                "(use 'cnn' for images or 'identity' to flatten)."
            )
        return MLP(x_size, dim, width=width, depth=depth, key=key), dim
    if kind == "cnn":
        if len(x_shape) == 2:
            n_channels, image = 1, x_shape
        elif len(x_shape) == 3:
            n_channels, image = x_shape[0], x_shape[1:]
        else:
            raise ValueError(
                f"embedding='cnn' needs x_shape (H, W) or (C, H, W); got {x_shape}."
            )
        emb = CNNEmbedding(
            n_channels, dim, image_shape=tuple(image), channels=channels, key=key
        )
        return emb, dim
    if len(x_shape) != 2 or x_shape[1] < 2:
        raise ValueError(
            "embedding='deepset' needs x_shape (n_max, event_dim + 1) with a final "
            f"0/1 mask column; got {x_shape}."
        )
    return (
        DeepSetEmbedding(x_shape[1] - 1, dim, width=width, depth=depth, key=key),
        dim,
    )


def _fit_standardizers(npe: NPE, theta, x) -> NPE:
    mode = dict(npe.hyperparams)["x_standardization"]
    xs = npe.x_standardizer if mode == "none" else Standardizer.fit(x, scope=mode)
    ts = npe.theta_standardizer
    if isinstance(npe.flow.support, Real):
        ts = Standardizer.fit(theta)
    return eqx.tree_at(
        lambda m: (m.x_standardizer, m.theta_standardizer), npe, (xs, ts)
    )


def train_npe(
    key,
    npe: NPE,
    theta,
    x,
    *,
    optimizer: optax.GradientTransformation | None = None,
    batch_size: int = 256,
    max_epochs: int = 300,
    patience: int = 20,
    val_fraction: float = 0.1,
    progress: bool = True,
    checkpoint: str | os.PathLike | None = None,
    every: int = 1,
):
    """Fit the standardisers on ``(theta, x)`` and train ``npe`` by maximum likelihood.

    Args:
        key: Typed PRNG key (minibatch order, validation split).
        npe: An estimator from :func:`make_npe`.
        theta: Parameters, shape (n, theta_dim).
        x: Observations, shape (n, *x_shape). Rows with NaN/inf raise; drop them
            explicitly with :func:`jaxdm.inference.drop_nonfinite` if intended.
        optimizer: Optax transformation (default: AdamW 5e-4, clipping, NaN-skipping).
        batch_size: Minibatch size.
        max_epochs: Maximum epochs.
        patience: Early-stopping patience in epochs.
        val_fraction: Validation fraction.
        progress: Show a progress bar.
        checkpoint: Checkpoint file: training resumes from it if it exists and
            saves its state there every ``every`` epochs (see :func:`jaxdm.train.fit`).
        every: Epochs between checkpoints.

    Returns:
        ``(npe, history)``.

    Raises:
        ValueError: For wrong shapes, mismatched lengths or non-finite rows.
    """
    check_key(key)
    theta = check_array(theta, "theta", shape=(None, npe.theta_dim))
    x = check_array(x, "x", shape=(None, *npe.x_shape))
    if theta.shape[0] != x.shape[0]:
        raise ValueError(
            f"`theta` and `x` must have the same number of rows; got {theta.shape[0]} "
            f"and {x.shape[0]}."
        )
    support = npe.flow.support
    inside = np.asarray(jax.vmap(support.contains)(theta))
    if not inside.all():
        raise ValueError(
            f"`theta` has {int((~inside).sum())} rows outside the estimator's support "
            f"{type(support).__name__}; the flow cannot put mass there."
        )
    npe = _fit_standardizers(npe, np.asarray(theta), np.asarray(x))
    return fit(
        key,
        npe,
        npe_loss,
        (theta, x),
        optimizer,
        batch_size=batch_size,
        max_epochs=max_epochs,
        patience=patience,
        val_fraction=val_fraction,
        progress=progress,
        checkpoint=checkpoint,
        every=every,
    )


def run_npe(
    key,
    sample_prior,
    simulator,
    *,
    n_simulations: int,
    support=None,
    npe_kwargs: dict | None = None,
    train_kwargs: dict | None = None,
    chunk_size: int = 4096,
    progress: bool = True,
):
    """Simulate a training set from the prior and ``simulator``, then train an NPE.

    Args:
        key: Typed PRNG key.
        sample_prior: ``sample_prior(key, n) -> theta`` of shape (n, theta_dim), or a
            numpyro distribution with event shape (theta_dim,).
        simulator: ``simulator(key, theta) -> x`` for one theta (vmapped).
        n_simulations: Simulation budget.
        support: Prior support for the flow (default ``Real()``); use ``Box`` /
            ``Positive`` for bounded priors so samples never leave them.
        npe_kwargs: Extra keyword arguments of :func:`make_npe`.
        train_kwargs: Extra keyword arguments of :func:`train_npe`.
        chunk_size: Simulations per compiled call.
        progress: Progress bars for simulation and training.

    Returns:
        ``(npe, history, (theta, x))`` with the training set as NumPy arrays.

    Raises:
        ValueError: If the simulator returns NaN/inf (drop such rows explicitly with
            :func:`jaxdm.inference.drop_nonfinite` and call :func:`train_npe`).
    """
    check_key(key)
    k_sim, k_init, k_train = jax.random.split(key, 3)
    theta, x = simulate_dataset(
        k_sim,
        sample_prior,
        simulator,
        n_simulations,
        chunk_size=chunk_size,
        progress=progress,
    )
    npe = make_npe(
        k_init,
        theta_dim=theta.shape[1],
        x_shape=x.shape[1:],
        support=support,
        **(npe_kwargs or {}),
    )
    train_kwargs = {"progress": progress, **(train_kwargs or {})}
    npe, history = train_npe(k_train, npe, theta, x, **train_kwargs)
    return npe, history, (theta, x)


def save(path: str | os.PathLike, npe: NPE) -> None:
    """Save a trained NPE with its hyperparameters (see :mod:`jaxdm.serialise`).

    Raises:
        ValueError: For estimators with a custom embedding module, whose structure
            cannot be rebuilt from JSON (save them with ``serialise.save`` and load
            with ``load(path, like=skeleton)``).
    """
    hyper = _thaw(npe.hyperparams)
    if hyper["embedding"] == "custom":
        raise ValueError(
            "this NPE has a custom embedding module; save it with "
            "jaxdm.serialise.save and load it with load(path, like=skeleton)."
        )
    serialise.save(path, npe, factory="make_npe", hyperparams=hyper)


def load(path: str | os.PathLike, *, like: NPE | None = None) -> NPE:
    """Load an NPE written by :func:`save` (or into the skeleton ``like``)."""
    if like is not None:
        return serialise.load(path, lambda key, **_: like)
    return serialise.load(path, make_npe, factory="make_npe")
