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

import functools
import math
import os
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array

from .. import serialise
from .._args import check_int
from .._checks import check_array, check_key, finite_rows
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
from ..train import History, default_optimizer, fit
from .simulation import simulate_dataset

__all__ = [
    "NPE",
    "default_schedule_optimizer",
    "finite_rows",
    "load",
    "make_npe",
    "npe_loss",
    "run_npe",
    "save",
    "train_npe",
]

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

    def finite_rows(self, x) -> Array:
        """The row mask of the guards: True where an observation is entirely finite.

        Shape () for one observation (``x_shape``), (n_obs,) for a batch; the rows
        where it is False are the ones ``sample``, ``sample_and_log_prob`` and
        ``log_prob`` return as NaN under ``jit``. Same as
        ``finite_rows(x, event_ndim=len(x_shape))``.
        """
        self._n_obs(x)
        return finite_rows(x, event_ndim=len(self.x_shape))

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
        (n_obs, m). The embedding runs once per observation; everything is vmapped
        and compiled (see ``sample_and_log_prob`` for what recompiles).
        log q is -inf for a finite theta outside the support.

        Non-finite inputs: called eagerly, a non-finite observation (or theta) raises
        a ValueError naming its rows; under ``jit`` (values unknown at trace time) the
        result is NaN for exactly those observations (all their m thetas) and those
        thetas, and finite elsewhere. The observation mask is
        ``npe.finite_rows(x)`` (or :func:`finite_rows`).

        Args:
            theta: Parameters, shape (d,), (m, d), (n_obs, d) or (n_obs, m, d).
            x: One observation or a batch of observations.

        Returns:
            Log-densities with the shapes above.

        Raises:
            ValueError: For wrong shapes, or (eagerly) non-finite ``x`` or ``theta``.
        """
        theta = jnp.asarray(theta)
        x = jnp.asarray(x)
        n_obs = self._n_obs(x)
        want = (1, 2) if n_obs is None else (2, 3)
        if theta.ndim not in want or theta.shape[-1] != self.theta_dim:
            raise ValueError(
                f"`theta` must have {' or '.join(map(str, want))} dimensions with last "
                f"axis theta_dim={self.theta_dim} for x of shape {tuple(x.shape)}"
                f"; got {theta.shape}."
            )
        if n_obs is not None and theta.shape[0] != n_obs:
            raise ValueError(
                f"`theta` must have n_obs={n_obs} rows to match `x`; got "
                f"{theta.shape[0]}."
            )
        _raise_if_nonfinite(x, "x", len(self.x_shape))
        _raise_if_nonfinite(theta, "theta", 1)
        return _log_prob_compiled(self, theta, x)

    def sample_and_log_prob(self, key, x, n: int):
        """Draw ``n`` posterior samples per observation, with their log q.

        The computation is compiled (``eqx.filter_jit``) on first use: ``n`` is
        static, so each new ``n`` compiles once, as does each new shape/dtype of ``x``
        (one observation, or a new ``n_obs``) and each new estimator *structure*
        (hyperparameters); new weights, keys and observation values of a seen shape
        reuse the compiled code. Inside a user's ``jit`` it is inlined.

        Non-finite observations: called eagerly, a ValueError names the non-finite
        rows; under ``jit`` the samples and log q of exactly those observations are
        NaN and the others are unaffected. ``npe.finite_rows(x)`` (or
        :func:`finite_rows`) gives that row mask.

        Args:
            key: Typed PRNG key (split per observation for a batch).
            x: One observation (``x_shape``) or a batch (n_obs, *x_shape).
            n: Samples per observation (a Python int).

        Returns:
            ``(theta, log_q)`` with shapes (n, d) and (n,) for one observation, or
            (n_obs, n, d) and (n_obs, n) for a batch, all in one vmapped call.

        Raises:
            TypeError: For a legacy key or a non-int ``n``.
            ValueError: For ``n < 1``, a wrong ``x`` shape, or (eagerly) non-finite
                rows of ``x``.
        """
        check_key(key)
        n = check_int(n, "n", minimum=1)
        x = jnp.asarray(x)
        self._n_obs(x)
        _raise_if_nonfinite(x, "x", len(self.x_shape))
        return _sample_and_log_prob_compiled(self, key, x, n)

    def sample(self, key, x, n: int):
        """Draw ``n`` posterior samples per observation.

        See ``sample_and_log_prob``, also for what compiles and for the NaN rows of
        non-finite observations under ``jit``.

        Returns:
            Shape (n, theta_dim) for one observation, (n_obs, n, theta_dim) for a
            batch.
        """
        return self.sample_and_log_prob(key, x, n)[0]


def _raise_if_nonfinite(a, name: str, event_ndim: int) -> None:
    """Eager guard: ValueError naming the non-finite rows of a concrete ``a``.

    Traced values pass (the compiled functions poison their rows with NaN).
    """
    if isinstance(a, jax.core.Tracer) or not jnp.issubdtype(a.dtype, jnp.inexact):
        return
    ok = np.isfinite(np.asarray(a))
    if ok.all():
        return
    lead = a.ndim - event_ndim
    if lead == 0:
        raise ValueError(
            f"`{name}` has non-finite values (NaN/inf); a posterior needs a finite "
            f"{name}."
        )
    rows = np.argwhere(~ok.reshape(*a.shape[:lead], -1).all(axis=-1))
    listed = [tuple(r) if len(r) > 1 else int(r[0]) for r in rows[:10]]
    more = "" if len(rows) <= 10 else f" (first 10 of {len(rows)})"
    raise ValueError(
        f"`{name}` has non-finite values (NaN/inf) in rows {listed}{more}; remove "
        f"them, or call under jit to get NaN for those rows (row mask: "
        f"jaxdm.inference.finite_rows)."
    )


def _poison(out, ok):
    """NaN where ``ok`` (broadcast from the left over ``out``'s axes) is False."""
    ok = jnp.reshape(ok, ok.shape + (1,) * (out.ndim - ok.ndim))
    return jnp.where(ok, out, jnp.nan)


@eqx.filter_jit
def _sample_and_log_prob_compiled(npe: NPE, key, x, n: int):
    """Compiled body of ``NPE.sample_and_log_prob`` (``n`` static)."""
    jac = npe.theta_standardizer.log_abs_det_jacobian()

    def one_obs(k, xi):
        u, logq = npe.flow.sample_and_log_prob(k, npe.context(xi), (n,))
        theta = jax.vmap(npe.theta_standardizer.inverse)(u)
        ok = jnp.all(jnp.isfinite(xi))
        return _poison(theta, ok), _poison(logq + jac, ok)

    if x.shape == npe.x_shape:
        return one_obs(key, x)
    return jax.vmap(one_obs)(jax.random.split(key, x.shape[0]), x)


@eqx.filter_jit
def _log_prob_compiled(npe: NPE, theta, x):
    """Compiled body of ``NPE.log_prob``."""
    jac = npe.theta_standardizer.log_abs_det_jacobian()

    def one_obs(th, xi):
        ctx = npe.context(xi)

        def lp(t):
            out = npe.flow.log_prob(npe.theta_standardizer(t), ctx) + jac
            return jnp.where(jnp.all(jnp.isfinite(t)), out, jnp.nan)

        out = lp(th) if th.ndim == 1 else jax.vmap(lp)(th)
        return _poison(out, jnp.all(jnp.isfinite(xi)))

    if x.shape == npe.x_shape:
        return one_obs(theta, x)
    return jax.vmap(one_obs)(theta, x)


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
    n_bins: int = 10,
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
        TypeError: For a size that is not an int (e.g. ``flow_layers="5"``).
        ValueError: For unknown choices or non-positive sizes.
    """
    check_key(key)
    if isinstance(x_shape, str) or not (
        np.ndim(x_shape) == 0 or isinstance(x_shape, Sequence)
    ):
        raise TypeError(
            f"`x_shape` must be an int or a sequence of ints; got {x_shape!r}."
        )
    x_shape = (x_shape,) if np.ndim(x_shape) == 0 else tuple(x_shape)
    x_shape = tuple(check_int(s, "x_shape", minimum=1) for s in x_shape)
    theta_dim = check_int(theta_dim, "theta_dim", minimum=1)
    embedding_dim = check_int(embedding_dim, "embedding_dim", minimum=1)
    embedding_width = check_int(embedding_width, "embedding_width", minimum=1)
    embedding_depth = check_int(embedding_depth, "embedding_depth", minimum=0)
    cnn_channels = tuple(check_int(c, "cnn_channels", minimum=1) for c in cnn_channels)
    flow_layers = check_int(flow_layers, "flow_layers", minimum=1)
    flow_hidden = tuple(check_int(h, "flow_hidden", minimum=1) for h in flow_hidden)
    n_bins = check_int(n_bins, "n_bins", minimum=2)
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


@functools.lru_cache(maxsize=32)
def default_schedule_optimizer(
    learning_rate: float, steps_per_epoch: int, max_epochs: int
) -> optax.GradientTransformation:
    """``train_npe``'s default optimiser: warm-up then cosine decay, over the run.

    ``jaxdm.train.default_optimizer`` (AdamW, weight decay 1e-5, gradient clipping at
    5, NaN-skipping) with the rate rising linearly from ``learning_rate / 20`` to
    ``learning_rate`` over ``min(5, max_epochs // 4)`` epochs, then decaying on a
    cosine to ``learning_rate / 200`` at ``max_epochs`` (Loshchilov & Hutter 2017,
    arXiv:1608.03983). With the defaults (2e-3, 120 epochs) this is the recipe
    validated in ``benchmarks/RESULTS.md``. Cached per arguments, so repeated
    trainings of one size reuse the compiled epoch.
    """
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=learning_rate / 20,
        peak_value=learning_rate,
        warmup_steps=min(5, max_epochs // 4) * steps_per_epoch,
        decay_steps=max_epochs * steps_per_epoch,
        end_value=learning_rate / 200,
    )
    return default_optimizer(schedule)


def train_npe(
    key,
    npe: NPE,
    theta,
    x,
    *,
    optimizer: optax.GradientTransformation | None = None,
    learning_rate: float = 2e-3,
    batch_size: int = 200,
    max_epochs: int = 120,
    patience: int | None = None,
    val_fraction: float = 0.1,
    progress: bool = True,
    checkpoint: str | os.PathLike | None = None,
    every: int = 1,
    select_flow: bool = False,
    lr_backoffs: int = 2,
    overfit_fallback: bool = True,
):
    """Fit the standardisers on ``(theta, x)`` and train ``npe`` by maximum likelihood.

    Defaults: the benchmark-validated recipe (``benchmarks/RESULTS.md``, NPE
    sections; chosen on held-out log-likelihood): batch 200, 120 epochs of AdamW
    under a warm-up + cosine schedule peaking at ``learning_rate``
    (:func:`default_schedule_optimizer`), no early stopping (the schedule decides
    the length; the epoch with the best validation loss is returned), and a
    learning-rate back-off when the run overfits (``lr_backoffs``), followed by a
    MAF fallback (``overfit_fallback``).
    With ``make_npe``'s and these defaults, nothing tuned, at 10^4 simulations the
    mean C2ST over 10 sbibm-protocol observations is 0.548 on two_moons (published
    NPE: 0.61, Lueckmann et al. 2021; the old defaults gave 0.608), 0.892 on slcp
    (published 0.90) and 0.549 on gaussian_linear (published 0.55; 0.572 with the
    back-off alone, 0.655 on two observations before it); see RESULTS.md ("sbi5",
    "sbi7").

    Args:
        key: Typed PRNG key (minibatch order, validation split).
        npe: An estimator from :func:`make_npe`.
        theta: Parameters, shape (n, theta_dim).
        x: Observations, shape (n, *x_shape). Rows with NaN/inf raise; drop them
            explicitly with :func:`jaxdm.inference.drop_nonfinite` if intended.
        optimizer: Optax transformation; default
            ``default_schedule_optimizer(learning_rate, steps_per_epoch, max_epochs)``.
        learning_rate: Peak learning rate of the default schedule (ignored when
            ``optimizer`` is given).
        batch_size: Minibatch size.
        max_epochs: Epochs (the default schedule decays to its end value here).
        patience: Early-stopping patience in epochs; default ``max_epochs`` with the
            default schedule (no early stopping) and 20 with a user ``optimizer``.
        val_fraction: Validation fraction.
        progress: Show a progress bar.
        checkpoint: Checkpoint file: training resumes from it if it exists and
            saves its state there every ``every`` epochs (see :func:`jaxdm.train.fit`).
        every: Epochs between checkpoints.
        select_flow: Choose the flow family on the validation split (issue #20
            item 4; off by default). When True and ``npe`` is a :func:`make_npe`
            NSF with a built-in embedding (and ``val_fraction > 0``), its MAF twin
            (the same hyperparameters with ``flow="maf"``, initial weights from
            ``fold_in(key, 1)``) is trained too, with the same split, batches and
            optimiser, and the estimator with the lower best validation loss
            (held-out -log q) is returned; ``npe.hyperparams`` says which
            (``"flow"``). Doubles the training cost; with a checkpoint, the MAF
            twin's is ``checkpoint`` with ``.maf`` appended. Why it is not the
            default (``benchmarks/RESULTS.md``, "sbi4" section): at 10^4
            simulations it picks the MAF on gaussian_linear, two_moons and slcp; on
            gaussian_linear that helps (held-out log q 0.521 -> 0.631), but on
            two_moons the MAF's higher held-out log q (3.378 vs 3.148) came with a
            worse C2ST on the 4 observations measured (0.577 vs 0.548), on slcp
            too (5 observations, 0.897 vs 0.856), and gaussian_linear's first
            observation did not improve (0.669 vs 0.663).
        lr_backoffs: With the default optimiser, no ``patience`` and a validation
            split (the runs that follow the whole schedule), how many times the
            run may be repeated at a quarter of the peak rate when it
            overfits: when the best validation epoch lies in the first quarter of
            ``max_epochs`` (the validation loss rose for three quarters of the run),
            training restarts from the same initial weights and split at
            ``learning_rate / 4``, and the run with the lowest best validation loss
            (held-out -log q) is returned, with its history. 0 turns it off. Why
            (``benchmarks/RESULTS.md``, "sbi5"): at 10^4 simulations the NSF
            memorises gaussian_linear's 10-D x (best epoch 6 of 120, held-out mean
            log q 0.521 against the analytic 0.789), while slcp still improves at
            the end of the run (best epoch 90) and a lower rate for every task
            costs it (held-out -5.375 at 2e-3, -5.695 at 5e-4, -6.598 at 2e-4). The
            back-off triggers only on the overfitting run: two_moons (best epoch
            116) and slcp train once, unchanged, and gaussian_linear goes 2e-3 ->
            5e-4 (best epoch 16) -> 1.25e-4. Each back-off costs one more
            training. With ``select_flow`` each family backs off on its own.
        overfit_fallback: When the back-off has triggered (the first run
            overfitted, so at least one back-off ran) and ``npe`` is a
            :func:`make_npe` estimator with vector observations and a built-in
            ``"mlp"`` or ``"identity"`` embedding, one more run trains its
            fallback twin: the same hyperparameters with ``flow="maf"``,
            ``embedding="identity"`` (the standardised x itself is the context)
            and ``flow_linear_skip=True``, initial weights from ``fold_in(key, 2)``,
            the fitted standardisers, the same split and batches, at the last
            rate the back-off tried. The run with the lowest best validation loss
            (held-out -log q on the validation split, never a C2ST) over all runs
            is returned; ``npe.hyperparams`` says which (``"flow"``,
            ``"embedding"``, ``"flow_linear_skip"``). Runs that do not overfit
            (two_moons, slcp at 10^4 simulations: best epochs 112 and 69 of 120)
            never reach it, so they train exactly as with ``False``. Why
            (``benchmarks/RESULTS.md``, "sbi6" and "sbi7"): on gaussian_linear
            (10-D x, best epoch 6 of 120 at 2e-3) the NSF keeps overfitting at
            lower rates (held-out mean log q 0.638 at 1.25e-4 against the analytic
            0.789) while this MAF, with fewer parameters between x and the flow,
            reaches 0.727 at 2e-4; as a default for every task the same family
            hurt two_moons (C2ST 0.577 vs 0.548, "sbi4"), hence only as the
            overfitting run's fallback. With ``select_flow`` it is tried after the
            NSF's back-off only. Costs one more training when it triggers.

    Returns:
        ``(npe, history)``: the chosen estimator and its training history.

    Raises:
        TypeError: For non-int ``batch_size``, ``max_epochs``, ``patience`` or
            ``lr_backoffs``, or a ``select_flow`` / ``overfit_fallback`` that is not
            a bool.
        ValueError: For wrong shapes, mismatched lengths, non-finite rows or
            non-positive sizes.
    """
    check_key(key)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    max_epochs = check_int(max_epochs, "max_epochs", minimum=1)
    if patience is not None:
        patience = check_int(patience, "patience", minimum=1)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"`val_fraction` must lie in [0, 1); got {val_fraction}.")
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
    lr_backoffs = check_int(lr_backoffs, "lr_backoffs", minimum=0)
    n_val = int(round(val_fraction * theta.shape[0]))
    rates = ()
    if optimizer is None:
        if not learning_rate > 0:
            raise ValueError(f"`learning_rate` must be > 0; got {learning_rate}.")
        n_train = theta.shape[0] - n_val
        steps = max(1, n_train // batch_size)
        optimizer = default_schedule_optimizer(float(learning_rate), steps, max_epochs)
        if n_val > 0 and patience is None:
            rates = tuple(
                default_schedule_optimizer(
                    float(learning_rate) / 4**i, steps, max_epochs
                )
                for i in range(1, lr_backoffs + 1)
            )
        patience = max_epochs if patience is None else patience
    elif patience is None:
        patience = 20
    npe = _fit_standardizers(npe, np.asarray(theta), np.asarray(x))
    kw = dict(
        batch_size=batch_size,
        max_epochs=max_epochs,
        patience=patience,
        val_fraction=val_fraction,
        progress=progress,
        every=every,
    )
    if not isinstance(select_flow, bool):
        raise TypeError(f"`select_flow` must be True or False; got {select_flow!r}.")
    twin = _maf_twin(key, npe) if select_flow and n_val > 0 else None

    if not isinstance(overfit_fallback, bool):
        raise TypeError(
            f"`overfit_fallback` must be True or False; got {overfit_fallback!r}."
        )
    fallback = _overfit_fallback(key, npe) if overfit_fallback else None

    def run(model, ck, fallback=None):
        return _fit_with_backoff(
            key, model, (theta, x), (optimizer, *rates), max_epochs, ck, kw, fallback
        )

    if twin is None:
        return run(npe, checkpoint, fallback)
    maf, h_maf = run(
        twin, None if checkpoint is None else os.fspath(checkpoint) + ".maf"
    )
    nsf, h_nsf = run(npe, checkpoint, fallback)
    if _best_val(h_maf) < _best_val(h_nsf):
        return maf, h_maf
    return nsf, h_nsf


def _fit_with_backoff(
    key, npe, data, optimizers, max_epochs, checkpoint, kw, fallback=None
):
    """``fit`` with ``optimizers[0]``; refit with the next while the run overfits.

    A run overfits when its best validation epoch lies in the first quarter of
    ``max_epochs``. Every refit starts from ``npe`` (same weights, split, batches).
    When at least one refit ran and ``fallback`` (another estimator) is given, it is
    trained too, with the last optimiser tried. The run with the lowest best
    validation loss is returned. Refit ``i`` writes its checkpoint to
    ``checkpoint`` with ``.backoff{i}`` appended, the fallback with ``.fallback``.
    """
    best = fit(key, npe, npe_loss, data, optimizers[0], checkpoint=checkpoint, **kw)
    last, tried = best[1], 0
    for i, opt in enumerate(optimizers[1:], start=1):
        if not isinstance(last, History) or last.best_epoch >= max_epochs // 4:
            break
        ck = None if checkpoint is None else f"{os.fspath(checkpoint)}.backoff{i}"
        cand = fit(key, npe, npe_loss, data, opt, checkpoint=ck, **kw)
        last, tried = cand[1], i
        if _best_val(cand[1]) < _best_val(best[1]):
            best = cand
    if fallback is not None and tried > 0:
        ck = None if checkpoint is None else f"{os.fspath(checkpoint)}.fallback"
        cand = fit(
            key, fallback, npe_loss, data, optimizers[tried], checkpoint=ck, **kw
        )
        if _best_val(cand[1]) < _best_val(best[1]):
            best = cand
    return best


def _best_val(history) -> float:
    """Lowest finite validation loss of a history (inf when there is none)."""
    v = np.asarray(history.val_loss, np.float64)
    v = v[np.isfinite(v)]
    return float(v.min()) if v.size else np.inf


def _maf_twin(key, npe: NPE) -> NPE | None:
    """The MAF counterpart of a ``make_npe`` NSF (fitted standardisers kept), or None.

    None when ``npe`` is not an NSF or has a custom embedding (its structure cannot
    be rebuilt from the hyperparameters).
    """
    hyper = _thaw(npe.hyperparams)
    if hyper["flow"] != "nsf" or hyper["embedding"] == "custom":
        return None
    hyper["flow"] = "maf"
    twin = make_npe(jax.random.fold_in(key, 1), **hyper)
    return eqx.tree_at(
        lambda m: (m.x_standardizer, m.theta_standardizer),
        twin,
        (npe.x_standardizer, npe.theta_standardizer),
    )


def _overfit_fallback(key, npe: NPE) -> NPE | None:
    """``train_npe``'s fallback for overfitting runs (fitted standardisers kept).

    The ``make_npe`` twin of ``npe`` with ``flow="maf"``, ``embedding="identity"``
    and ``flow_linear_skip=True``, initial weights from ``fold_in(key, 2)``; None
    when ``npe`` has a custom, CNN or DeepSet embedding or non-vector observations
    (the identity context would be the flattened image or event set), or already
    is that family.
    """
    hyper = _thaw(npe.hyperparams)
    if hyper["embedding"] not in ("mlp", "identity") or len(npe.x_shape) != 1:
        return None
    want = dict(flow="maf", embedding="identity", flow_linear_skip=True)
    if all(hyper[k] == v for k, v in want.items()):
        return None
    hyper.update(want)
    twin = make_npe(jax.random.fold_in(key, 2), **hyper)
    return eqx.tree_at(
        lambda m: (m.x_standardizer, m.theta_standardizer),
        twin,
        (npe.x_standardizer, npe.theta_standardizer),
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
