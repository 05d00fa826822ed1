r"""Neural ratio estimation (NRE-A/B/C, BNRE) with marginal heads sharing one embedding.

The estimator learns :math:`\log r(\theta_M, x) = \log p(x \mid \theta_M) - \log p(x)`
for chosen 1-D and 2-D marginals :math:`\theta_M` of theta (the design of swyft, Miller
et al. 2021, arXiv 2107.01214; used for TMNRE in Anau Montel et al. 2022, arXiv
2205.09126): an embedding :math:`s(x)` shared by all marginals and one MLP head
:math:`f_M(\theta_M, s(x))` per marginal; the heads are trained jointly by summing their
losses. The training objective is one family with three options:

* ``"A"`` (binary NRE, Hermans et al. 2020, arXiv 1903.04057): classify joint pairs
  :math:`(\theta, x)` against marginal pairs :math:`(\theta', x)`; at optimum
  :math:`f = \log r` exactly.
* ``"B"`` (contrastive NRE, Durkan et al. 2020, arXiv 2002.03712): pick the true theta
  among ``K`` candidates with a softmax; at optimum :math:`f = \log r + c(x)`.
* ``"C"`` (contrastive NRE, Miller et al. 2022, arXiv 2210.06170): ``K`` candidates and
  an independent class with odds ``gamma``; the decision function is
  :math:`d(\Theta, x) = \sum_k r_k / (K/\gamma + \sum_k r_k)` and the loss
  :math:`\frac{\gamma}{1+\gamma}[-\log d(\Theta_{joint}, x)] +
  \frac{1}{1+\gamma}[-\log(1 - d(\Theta_{marg}, x))]`, unbiased at optimum. ``K=1,
  gamma=1`` is NRE-A.
* ``balance > 0`` adds the balancing penalty of BNRE (Delaunoy et al. 2022, arXiv
  2208.13624), :math:`\lambda (\mathbb{E}_{joint} d + \mathbb{E}_{marg} d - 1)^2`,
  which makes the estimator conservative (``"A"`` and ``"C"`` only).

Contrastive sets are built inside a minibatch by rolling theta (as in lampe/sbi): the
``j``-th roll pairs :math:`x_i` with :math:`\theta_{i+j}`, a draw from the prior
independent of :math:`x_i`.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import serialise
from .._checks import check_array, check_key, finite_rows, guard_finite
from ..nn import Flatten, Standardizer
from ..train import fit

__all__ = [
    "LowESSWarning",
    "RatioEstimator",
    "WeightedSamples",
    "all_marginals",
    "coverage",
    "dispersed_starts",
    "importance_samples",
    "joint_head",
    "load",
    "make_ratio_estimator",
    "marginal_grid",
    "nre_loss",
    "observation_mask",
    "resample",
    "sample_nuts",
    "save",
    "sbc_ranks",
    "train_ratio_estimator",
]

_METHODS = ("A", "B", "C")


def all_marginals(theta_dim: int, *, pairs: bool = True, joint: bool = False):
    """All 1-D marginals, optionally all 2-D pairs and the full joint.

    Args:
        theta_dim: Number of parameters.
        pairs: Include every pair (i, j), i < j.
        joint: Include the tuple of all parameters (needed for :func:`sample_nuts`).

    Returns:
        A tuple of index tuples.
    """
    m = [(i,) for i in range(theta_dim)]
    if pairs:
        m += [(i, j) for i in range(theta_dim) for j in range(i + 1, theta_dim)]
    if joint and tuple(range(theta_dim)) not in m:
        m.append(tuple(range(theta_dim)))
    return tuple(m)


class RatioEstimator(eqx.Module):
    """Log likelihood-to-evidence ratios of several marginals of theta.

    Attributes:
        embedding: Network ``x -> features`` (one standardised observation).
        heads: One MLP per marginal, ``concat(theta_M, features) -> scalar``.
        x_norm: Frozen observation standardisation.
        theta_norm: Frozen parameter standardisation.
        marginals: Index tuples of the marginals (static).
        theta_dim: Number of parameters (static).
        x_shape: Shape of one observation (static).
        method: ``"A"``, ``"B"`` or ``"C"`` (static).
        n_contrastive: K, candidates per contrastive set (static).
        gamma: Odds of the dependent class for NRE-C (static).
        balance: BNRE penalty weight lambda; 0 disables it (static).
        hyperparams: Factory keyword arguments, for :func:`save` (static).
    """

    embedding: eqx.Module
    heads: tuple
    x_norm: Standardizer
    theta_norm: Standardizer
    marginals: tuple = eqx.field(static=True)
    theta_dim: int = eqx.field(static=True)
    x_shape: tuple = eqx.field(static=True)
    method: str = eqx.field(static=True)
    n_contrastive: int = eqx.field(static=True)
    gamma: float = eqx.field(static=True)
    balance: float = eqx.field(static=True)
    hyperparams: tuple = eqx.field(static=True)

    @property
    def n_marginals(self) -> int:
        """Number of marginal heads."""
        return len(self.marginals)

    def features(self, x) -> jax.Array:
        """Embedding of one observation x (x_shape,) -> (n_features,)."""
        return self.embedding(self.x_norm(x))

    def head_logits(self, theta, feat) -> jax.Array:
        """All marginals' log ratios for one theta (theta_dim,) and features: (M,)."""
        z = self.theta_norm(theta)
        return jnp.stack(
            [
                h(jnp.concatenate([z[jnp.asarray(m)], feat]))[0]
                for h, m in zip(self.heads, self.marginals, strict=True)
            ]
        )

    def __call__(self, theta, x) -> jax.Array:
        """Log ratios of all marginals for one theta and one x, shape (n_marginals,)."""
        return self.head_logits(theta, self.features(x))

    def log_ratio(self, theta, x) -> jax.Array:
        """Log ratio log r(theta_M, x) of every marginal, for one or many inputs.

        Observations are checked (see :func:`observation_mask`): eagerly a
        non-finite observation raises ValueError naming its rows; under ``jit`` the
        outputs of exactly those rows are NaN (the others are unaffected).

        Args:
            theta: Parameters, shape (theta_dim,) or (n, theta_dim) (all marginals are
                read from the full vector).
            x: One observation (x_shape) or a batch (m, *x_shape).

        Returns:
            Shape (n_marginals,) for one pair; (n, n_marginals) for many theta and one
            x (the embedding is evaluated once); (m, n_marginals) for paired batches
            with n == m; (m, n, n_marginals) for many x and an unpaired theta batch
            given as (n, theta_dim) with ``n != m``.
        """
        theta = check_array(theta, "theta")
        x, valid = _checked_observations(self, x, "x")
        batched_x = x.ndim == len(self.x_shape) + 1
        if theta.shape[-1] != self.theta_dim or theta.ndim > 2:
            raise ValueError(
                f"`theta` must have shape ({self.theta_dim},) or "
                f"(n, {self.theta_dim}); got {theta.shape}."
            )
        if not batched_x:
            feat = self.features(x)
            if theta.ndim == 1:
                out = self.head_logits(theta, feat)
            else:
                out = jax.vmap(self.head_logits, (0, None))(theta, feat)
            return _poison_rows(out, valid)
        feats = jax.vmap(self.features)(x)
        if theta.ndim == 1:
            out = jax.vmap(self.head_logits, (None, 0))(theta, feats)
        elif theta.shape[0] == x.shape[0]:
            out = jax.vmap(self.head_logits)(theta, feats)
        else:
            out = jax.vmap(jax.vmap(self.head_logits, (0, None)), (None, 0))(
                theta, feats
            )
        return _poison_rows(out, valid)


def observation_mask(model: RatioEstimator, x) -> jax.Array:
    """Which observations are usable: True where every entry of a row is finite.

    This is the row mask of the guarded NRE functions (:meth:`RatioEstimator.
    log_ratio`, :func:`importance_samples`, :func:`resample`,
    :func:`jaxdm.inference.ratio_sampling.sample_mcmc`): under ``jit`` their outputs
    are NaN exactly in the rows where this mask is False (eagerly they raise).

    Args:
        model: The estimator (its ``x_shape`` defines a row).
        x: One observation (x_shape) or a batch (m, *x_shape).

    Returns:
        Boolean array, shape () for one observation or (m,) for a batch.
    """
    x = _check_observation_shape(model, x, "x")
    return finite_rows(x, event_ndim=len(model.x_shape))


def _check_observation_shape(model, x, name):
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    if (
        x.ndim < len(model.x_shape)
        or x.shape[x.ndim - len(model.x_shape) :] != model.x_shape
        or x.ndim > len(model.x_shape) + 1
    ):
        raise ValueError(
            f"`{name}` must have shape {model.x_shape} or (m, *{model.x_shape}); "
            f"got {x.shape}."
        )
    return x


def _checked_observations(model, x, name: str = "x"):
    """``(x, valid)``: non-finite rows raise eagerly; traced, they are zeroed.

    The zeroed rows keep NaN out of shared computations; callers put NaN back into
    exactly those rows of their outputs with :func:`_poison_rows`.
    """
    x = _check_observation_shape(model, x, name)
    lead = x.shape[: x.ndim - len(model.x_shape)]
    if not isinstance(x, jax.core.Tracer):
        # On the host: as jnp operations on a concrete x, the isfinite/all kernels
        # were compiled op by op for every new shape (~0.08 s CPU on a first call).
        valid = np.all(np.isfinite(np.asarray(x).reshape(*lead, -1)), axis=-1)
        bad = np.nonzero(~np.atleast_1d(valid))[0]
        if bad.size:
            where = (
                f"in rows {bad.tolist()[:20]}{' ...' if bad.size > 20 else ''} "
                f"({bad.size} of {x.shape[0]})"
                if lead
                else "(the single observation)"
            )
            raise ValueError(
                f"`{name}` has non-finite entries (NaN or inf) {where}; remove or "
                "repair those observations (jaxdm.inference.nre.observation_mask "
                "gives the row mask)."
            )
        return x, valid  # numpy: a jnp copy compiled a staging program (0.04 s)
    valid = jnp.all(jnp.isfinite(x.reshape(*lead, -1)), axis=-1)
    mask = valid.reshape(valid.shape + (1,) * len(model.x_shape))
    return jnp.where(mask, x, jnp.zeros((), x.dtype)), valid


def _poison_rows(out, valid):
    """NaN in the leading rows of ``out`` where ``valid`` is False."""
    mask = valid.reshape(valid.shape + (1,) * (out.ndim - valid.ndim))
    return jnp.where(mask, out, jnp.asarray(jnp.nan, out.dtype))


def make_ratio_estimator(
    key,
    *,
    theta_dim: int,
    x_shape: Sequence[int],
    marginals: Sequence[Sequence[int]] | None = None,
    embedding: eqx.Module | None = None,
    n_features: int | None = None,
    width: int = 64,
    depth: int = 2,
    method: str = "C",
    n_contrastive: int = 2,
    gamma: float = 1.0,
    balance: float = 0.0,
) -> RatioEstimator:
    """Build an untrained :class:`RatioEstimator`.

    Args:
        key: Typed PRNG key.
        theta_dim: Number of parameters.
        x_shape: Shape of one observation.
        marginals: Index tuples of the marginals to learn; default the joint
            ``(0, ..., theta_dim - 1)`` only. Use :func:`all_marginals` for swyft's
            1-D + 2-D set.
        embedding: Network mapping one standardised observation to a feature vector of
            length ``n_features`` (e.g. ``jaxdm.nn.CNNEmbedding``); default: flatten.
        n_features: Output size of ``embedding`` (required with a custom embedding).
        width: Hidden width of each head.
        depth: Hidden layers of each head.
        method: ``"A"`` (NRE-A), ``"B"`` (NRE-B) or ``"C"`` (NRE-C).
        n_contrastive: K >= 1 (``"A"`` uses 1; ``"B"`` needs >= 2).
        gamma: NRE-C odds of the dependent class, > 0.
        balance: BNRE penalty weight lambda >= 0 (Delaunoy et al. use 100).

    Returns:
        The estimator (identity standardisation until trained).
    """
    check_key(key)
    if method not in _METHODS:
        raise ValueError(f"`method` must be one of {_METHODS}; got {method!r}.")
    theta_dim = int(theta_dim)
    if theta_dim < 1:
        raise ValueError(f"`theta_dim` must be >= 1; got {theta_dim}.")
    x_shape = tuple(int(s) for s in x_shape)
    marginals = (
        (tuple(range(theta_dim)),)
        if marginals is None
        else tuple(tuple(int(i) for i in m) for m in marginals)
    )
    for m in marginals:
        if not m or len(set(m)) != len(m) or min(m) < 0 or max(m) >= theta_dim:
            raise ValueError(
                f"`marginals` entries must be distinct indices in [0, {theta_dim}); "
                f"got {m}."
            )
    k = 1 if method == "A" else int(n_contrastive)
    if k < 1 or (method == "B" and k < 2):
        raise ValueError(
            f"`n_contrastive` must be >= {2 if method == 'B' else 1}; got {k}."
        )
    if not gamma > 0:
        raise ValueError(f"`gamma` must be > 0; got {gamma}.")
    if balance < 0 or (balance > 0 and method == "B"):
        raise ValueError(
            f"`balance` must be >= 0 and is undefined for NRE-B; got {balance}."
        )
    k_emb, k_heads = jax.random.split(key)
    if embedding is None:
        embedding = Flatten()
        n_features = int(np.prod(x_shape))
    elif n_features is None:
        raise ValueError("`n_features` is required with a custom `embedding`.")
    heads = tuple(
        eqx.nn.MLP(
            len(m) + int(n_features), 1, width, depth, activation=jax.nn.gelu, key=kk
        )
        for m, kk in zip(
            marginals, jax.random.split(k_heads, len(marginals)), strict=True
        )
    )
    hp = (
        ("theta_dim", theta_dim),
        ("x_shape", list(x_shape)),
        ("marginals", [list(m) for m in marginals]),
        ("width", width),
        ("depth", depth),
        ("method", method),
        ("n_contrastive", k),
        ("gamma", float(gamma)),
        ("balance", float(balance)),
    )
    return RatioEstimator(
        embedding=embedding,
        heads=heads,
        x_norm=Standardizer(jnp.zeros(x_shape), jnp.ones(x_shape)),
        theta_norm=Standardizer(jnp.zeros(theta_dim), jnp.ones(theta_dim)),
        marginals=marginals,
        theta_dim=theta_dim,
        x_shape=x_shape,
        method=method,
        n_contrastive=k,
        gamma=float(gamma),
        balance=float(balance),
        hyperparams=hp,
    )


def nre_loss(model: RatioEstimator, batch, key=None) -> jax.Array:
    """Mean NRE loss of a minibatch, summed over the marginal heads.

    Args:
        model: The estimator (its ``method``, ``n_contrastive``, ``gamma``, ``balance``
            select the objective; see the module docstring).
        batch: ``{"theta": (B, theta_dim), "x": (B, *x_shape)}`` joint draws,
            ``B >= 2 K``.
        key: Unused (the contrastive sets are rolls of the batch).

    Returns:
        Scalar loss.
    """
    del key
    theta, x = batch["theta"], batch["x"]
    kk = model.n_contrastive
    n_rolls = kk if model.method == "B" else 2 * kk
    feats = jax.vmap(model.features)(x)
    # logits[j, i, m]: head m on (theta_{i+j}, x_i).
    logits = jnp.stack(
        [
            jax.vmap(model.head_logits)(jnp.roll(theta, -j, axis=0), feats)
            for j in range(n_rolls)
        ]
    )
    if model.method == "B":
        loss = -jnp.mean(jax.nn.log_softmax(logits, axis=0)[0])
        return loss * model.n_marginals
    log_k_g = jnp.log(kk / model.gamma)
    lse_joint = jax.nn.logsumexp(logits[:kk], axis=0)
    lse_marg = jax.nn.logsumexp(logits[kk:], axis=0)
    log_d_joint = lse_joint - jnp.logaddexp(log_k_g, lse_joint)
    log_1md_marg = log_k_g - jnp.logaddexp(log_k_g, lse_marg)
    w = model.gamma / (1.0 + model.gamma)
    per_head = -(
        w * jnp.mean(log_d_joint, axis=0) + (1 - w) * jnp.mean(log_1md_marg, axis=0)
    )
    loss = jnp.sum(per_head)
    if model.balance > 0:
        d_joint = jnp.exp(log_d_joint)
        d_marg = -jnp.expm1(log_1md_marg)
        pen = (jnp.mean(d_joint, axis=0) + jnp.mean(d_marg, axis=0) - 1.0) ** 2
        loss = loss + model.balance * jnp.sum(pen)
    return loss


def _fit_norms(model: RatioEstimator, theta, x) -> RatioEstimator:
    # Images (2-D or more): one global scalar, so the spatial structure is kept.
    x_scope = "global" if len(model.x_shape) >= 2 else "element"
    return eqx.tree_at(
        lambda m: (m.theta_norm, m.x_norm),
        model,
        (Standardizer.fit(theta), Standardizer.fit(x, scope=x_scope)),
    )


def train_ratio_estimator(
    key,
    model: RatioEstimator,
    theta=None,
    x=None,
    *,
    source=None,
    validation=None,
    batch_size: int = 256,
    max_epochs: int = 1000,
    patience: int = 20,
    learning_rate: float | optax.Schedule = 1e-3,
    progress: bool = False,
    **fit_kwargs,
):
    """Fit the standardisations and train with :func:`jaxdm.train.fit`.

    The defaults train to convergence by early stopping, not to an epoch cap: on sbibm
    two_moons and slcp at 10^4 simulations (default estimator) the previous defaults
    (200 epochs, patience 15) ended at the cap with the validation loss still falling,
    while these stop on their own after 288 epochs (two_moons, best epoch 267,
    validation loss 0.0652 vs 0.0734 at the cap) and 282 epochs (slcp, best 261, 0.195
    vs 0.201); ``max_epochs`` is only a safety net (benchmarks/RESULTS.md, 2026-12-01).
    A warm-up + cosine schedule over 300 epochs ended worse on two_moons (0.0805), a
    constant 5e-4 needed 472 epochs for 0.0678.

    Args:
        key: Typed PRNG key.
        model: From :func:`make_ratio_estimator`.
        theta: Training parameters (n, theta_dim), or None with ``source``.
        x: Training observations (n, *x_shape).
        source: Instead of arrays, a chunk source (``jaxdm.store``) yielding
            ``{"theta", "x"}``; then ``validation`` (a dict of arrays) is required.
            The standardisations are fitted on the finite, non-outlier rows of one
            chunk; rows with NaN/inf are left out of training and counted in
            ``history.n_nonfinite_rows`` (see :func:`jaxdm.train.fit`).
        validation: Optional explicit validation ``{"theta", "x"}``.
        batch_size: Minibatch size (>= 2 K).
        max_epochs: Maximum epochs (a safety net; see above).
        patience: Early-stopping patience (epochs without validation improvement).
        learning_rate: AdamW learning rate, constant or an ``optax`` schedule (step
            -> rate).
        progress: Progress bar.
        **fit_kwargs: Passed on to :func:`jaxdm.train.fit` (e.g. ``checkpoint=path``
            and ``every=N`` to make training resumable, ``outliers``).

    Returns:
        ``(model, history)``.
    """
    from .._args import check_int
    from ..train import default_optimizer, screen_rows

    check_key(key)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    if batch_size < 2 * model.n_contrastive:
        raise ValueError(
            f"`batch_size` must be >= 2 * n_contrastive = {2 * model.n_contrastive}; "
            f"got {batch_size}."
        )
    if source is None:
        theta = check_array(theta, "theta", ndim=2)
        x = check_array(x, "x", shape=(theta.shape[0], *model.x_shape))
        data = {"theta": theta, "x": x}
        norm_data = data
    else:
        if validation is None:
            raise ValueError("`validation` is required when training from a `source`.")
        data = source
        # Standardisers from a sample of the source: finite, non-outlier rows only
        # (fit counts and reports the bad rows of the whole source).
        norm_data = next(iter(source.iter_chunks(key, 8192)))
        screen = screen_rows(norm_data, outlier_z=fit_kwargs.get("outlier_z", 1e6))
        keep = np.flatnonzero(~(screen.nonfinite | screen.outlier))
        if keep.size == 0:
            raise ValueError(
                f"`source` has no finite, non-outlier rows among the "
                f"{screen.nonfinite.size} read to fit the standardisations."
            )
        norm_data = {k: np.asarray(norm_data[k])[keep] for k in ("theta", "x")}
    model = _fit_norms(model, norm_data["theta"], norm_data["x"])
    return fit(
        key,
        model,
        nre_loss,
        data,
        default_optimizer(learning_rate),
        batch_size=batch_size,
        max_epochs=max_epochs,
        patience=patience,
        validation_data=validation,
        progress=progress,
        **fit_kwargs,
    )


# ----------------------------------------------------------------- posteriors


class LowESSWarning(UserWarning):
    """More posterior samples were requested than the importance weights support.

    Issued by :func:`resample` (and the SIR steps of :func:`coverage` and
    :func:`sbc_ranks`) when the number of requested draws exceeds the Kish effective
    sample size of the weights: multinomial resampling then repeats the same prior
    draws many times (on sbibm two_moons with 10^6 prior draws, only 52-70 % of 10^4
    resampled draws were distinct). Use more prior draws, a truncated prior, or the
    non-duplicating :func:`jaxdm.inference.ratio_sampling.sample_mcmc`. Silence it with
    ``warnings.simplefilter("ignore", LowESSWarning)``.
    """


class WeightedSamples(NamedTuple):
    """Prior samples weighted by the estimated ratio of each marginal.

    Attributes:
        theta: Prior draws, shape (..., n, theta_dim).
        log_weights: Normalised log weights per marginal, shape (..., n, n_marginals)
            (``logsumexp`` over n is 0); NaN in the rows of invalid observations.
        ess: Kish effective sample size (sum w)^2 / sum w^2 of each marginal's
            weights, shape (..., n_marginals); between 1 and n; NaN where invalid.
        valid: Whether the observation was finite, shape (...) (see
            :func:`observation_mask`).
    """

    theta: jax.Array
    log_weights: jax.Array
    ess: jax.Array
    valid: jax.Array


def _weighted_log_ratios(model, theta_prior, xs, chunk_size):
    """Normalised log weights (m, n, M) and Kish ESS (m, M) for observations xs.

    One compiled program for all observations: ``lax.map`` over the observations
    (one embedding each) and, inside, over chunks of ``chunk_size`` prior draws, so
    the activations held at once are ``chunk_size x width``. The draws are padded to
    a whole number of chunks with copies of the first draw (their ratios are
    computed and dropped): ``lax.map(..., batch_size=...)`` compiles the network a
    second time for a remainder chunk, which cost a third of the program's
    compilation (0.57 -> 0.38 s CPU, two_moons, 10^6 draws, chunk 1024; the log
    weights are bitwise the same).
    """
    n = theta_prior.shape[0]
    chunk = int(min(chunk_size, n))
    n_chunks = -(-n // chunk)
    pad = n_chunks * chunk - n
    if pad:
        fill = jnp.broadcast_to(theta_prior[:1], (pad, theta_prior.shape[1]))
        theta_prior = jnp.concatenate([theta_prior, fill])
    chunks = theta_prior.reshape(n_chunks, chunk, theta_prior.shape[1])

    def one(x):
        feat = model.features(x)
        lr = jax.lax.map(
            lambda t: jax.vmap(model.head_logits, (0, None))(t, feat), chunks
        )
        lr = lr.reshape(n_chunks * chunk, -1)[:n]
        return lr - jax.nn.logsumexp(lr, axis=0, keepdims=True)

    lw = jax.lax.map(one, xs)
    ess = jnp.exp(-jax.nn.logsumexp(2.0 * lw, axis=1))
    return lw, ess


def _importance_body(model, theta_prior, xs, valid, chunk_size: int, *, batched):
    """``importance_samples`` after its eager checks (traced inside one program).

    The NaN poisoning of invalid rows and the broadcast of the prior draws to every
    observation are compiled with the ratio evaluation: run eagerly they compiled
    and ran their own kernels over the (m, n, M) arrays on every first call.
    """
    lw, ess = _weighted_log_ratios(model, theta_prior, xs, chunk_size)
    vb = valid if batched else valid[None]
    lw, ess = _poison_rows(lw, vb), _poison_rows(ess, vb)
    if not batched:
        return WeightedSamples(theta_prior, lw[0], ess[0], valid)
    theta = jnp.broadcast_to(theta_prior, (xs.shape[0], *theta_prior.shape))
    return WeightedSamples(theta, lw, ess, valid)


@functools.partial(jax.jit, static_argnames=("static", "chunk_size", "batched"))
def _importance_program(params, static, theta_prior, xs, valid, chunk_size, batched):
    """The compiled :func:`_importance_body` (``jax.jit``, not ``eqx.filter_jit``).

    ``params`` are the model's arrays, ``static`` = (treedef, leaves) of the rest.
    ``eqx.filter_jit`` blocks until the outputs are ready (to report
    ``eqx.error_if`` failures, of which this program has none); ``jax.jit`` returns
    at once, so a following :func:`resample` compiles while the ratios are
    evaluated.
    """
    treedef, leaves = static
    model = eqx.combine(params, jax.tree.unflatten(treedef, leaves))
    return _importance_body(model, theta_prior, xs, valid, chunk_size, batched=batched)


def _run_importance(model, theta_prior, xs, valid, chunk_size: int, *, batched):
    """Dispatch the compiled importance program (returns before it has run).

    The non-array leaves of the model (activation functions...) must be hashable,
    as they must for ``eqx.filter_jit``.
    """
    params, rest = eqx.partition(model, eqx.is_array)
    leaves, treedef = jax.tree.flatten(rest)
    static = (treedef, tuple(leaves))
    return _importance_program(
        params,
        static,
        theta_prior,
        xs,
        valid,
        chunk_size=chunk_size,
        batched=batched,
    )


def importance_samples(
    model: RatioEstimator, theta_prior, x, *, chunk_size: int = 4096
) -> WeightedSamples:
    """Weight prior draws by the ratio: posterior ∝ prior × r (self-normalised).

    The ratio evaluation is compiled once per (model structure, number of prior
    draws, number of observations) and runs in chunks (``lax.map``): 10^6 prior
    draws for 10 two_moons observations, with resampling, took 6-12 s (19-27 s on
    the first call, compilation included) against 235-308 s for the previous
    op-by-op path, interleaved on a loaded 2-core machine (benchmarks/RESULTS.md,
    2026-12-01). The NaN poisoning and the broadcast of the draws are part of the
    same program, and :func:`resample` takes the whole batch: importance weights
    plus 10^4 draws for each of the 10 observations took 6.8-20.0 s on the first
    call against 11.2-22.9 s for the per-observation resampling of the fourth
    session, interleaved at load 7-11 ("sbi5" section). What is left is the
    network arithmetic (~1.5 CPU s for 10^7 evaluations of the default head) and
    ~1.3 CPU s of compilation on a first call ("sbi6" section); JAX's persistent
    compilation cache (``jax_compilation_cache_dir``, set by the user) removes the
    latter in later processes (first call 3.35 -> 2.1 CPU s there). Concrete
    prior draws and observations are checked on the host (numpy), so a first call
    with :func:`resample` compiles these two programs and nothing else ("sbi7").
    The call returns before the ratios are evaluated (asynchronous dispatch). Check
    :attr:`WeightedSamples.ess` before resampling: :func:`resample` warns
    (:class:`LowESSWarning`) when asked for more draws than it supports.

    Observations are guarded: eagerly a non-finite row raises ValueError naming the
    rows; under ``jit`` those rows' ``log_weights`` and ``ess`` are NaN and
    ``valid`` is False (the other rows are unaffected).

    Args:
        model: Trained estimator.
        theta_prior: Draws from the prior (or the truncated prior), (n, theta_dim);
            a non-finite draw raises (ValueError; ``EquinoxRuntimeError`` under
            ``jit``), since it would poison every observation's normalisation.
        x: One observation (x_shape) or a batch (m, *x_shape).
        chunk_size: Prior draws evaluated at once (memory ~ chunk_size x width).
            On 2 CPU cores 4096 used ~10% less CPU than 1024 and 1024 ran 2.2x
            faster than 65,536 (activations that stay in cache; two_moons, 10^6
            and 2 x 10^5 draws, 10 observations); raise it on an accelerator. The
            result does not depend on it (bitwise, on CPU).

    Returns:
        :class:`WeightedSamples` with log weights (n, M) or (m, n, M), ESS (M,) or
        (m, M) and ``valid`` () or (m,); ``theta`` is ``theta_prior``, broadcast to
        (m, n, theta_dim) for a batch.
    """
    # check_array checks a concrete theta_prior on the host (ValueError naming it);
    # guard_finite is for a traced one: eagerly it would compile its isfinite and
    # invert kernels for every new shape (~0.1 s CPU on a first call, 10^6 draws).
    theta_prior = check_array(theta_prior, "theta_prior", ndim=2)
    if isinstance(theta_prior, jax.core.Tracer):
        theta_prior = guard_finite(theta_prior, "theta_prior")
    if theta_prior.shape[1] != model.theta_dim:
        raise ValueError(
            f"`theta_prior` must have shape (n, {model.theta_dim}); "
            f"got {theta_prior.shape}."
        )
    chunk_size = _check_pos_int(chunk_size, "chunk_size")
    x, valid = _checked_observations(model, x, "x")
    batched = x.ndim == len(model.x_shape) + 1
    xs = x if batched else x[None]
    return _run_importance(model, theta_prior, xs, valid, chunk_size, batched=batched)


def _check_pos_int(v, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer):
        raise TypeError(f"`{name}` must be an int; got {type(v).__name__}.")
    if v < 1:
        raise ValueError(f"`{name}` must be >= 1; got {v}.")
    return int(v)


def _warn_low_ess(ess, n: int, what: str) -> None:
    """Warn (eagerly) when ``n`` draws exceed the ESS of any finite entry of ess."""
    if isinstance(ess, jax.core.Tracer):
        return
    ess = np.asarray(ess, np.float64)
    low = np.isfinite(ess) & (ess < n)
    if np.any(low):
        count = f" ({int(low.sum())} of {ess.size} below {n})" if ess.size > 1 else ""
        warnings.warn(
            LowESSWarning(
                f"{what}: {n} draws requested but the importance weights' effective "
                f"sample size is {ess[low].min():.0f}{count}; resampled draws "
                "repeat. Use more or truncated prior draws, or "
                "jaxdm.inference.ratio_sampling.sample_mcmc."
            ),
            stacklevel=3,
        )


def resample(key, ws: WeightedSamples, marginal: int, n: int) -> jax.Array:
    """Draw ``n`` unweighted samples of marginal ``marginal`` (multinomial resampling).

    Draws are taken with replacement, so they repeat when ``n`` approaches the
    effective sample size ``ws.ess``: eagerly a :class:`LowESSWarning` is issued when
    ``n > ws.ess[marginal]`` (under ``jit`` check ``ws.ess`` yourself). For draws that
    do not repeat use :func:`jaxdm.inference.ratio_sampling.sample_mcmc`. An invalid
    observation (``ws.valid`` False) gives NaN draws.

    ``ws`` may hold one observation (``theta`` (N, theta_dim)) or the batch that
    :func:`importance_samples` returns for m observations (``theta`` (m, N,
    theta_dim)); a batch is resampled in one compiled program (observation i with
    key ``jax.random.split(key, m)[i]``), compiled once per (m, N, n): indexing
    ``ws`` per observation in Python compiles a slice per array and is 10x slower
    on a first call (``benchmarks/RESULTS.md``, "sbi5").

    Returns:
        Full theta vectors, shape (n, theta_dim) or (m, n, theta_dim) (only the
        marginal's entries are distributed as its posterior).
    """
    check_key(key)
    if ws.theta.ndim not in (2, 3) or ws.log_weights.ndim != ws.theta.ndim:
        raise ValueError(
            "`ws` must hold one observation (theta (N, theta_dim)) or a batch (theta "
            f"(m, N, theta_dim)); got theta {ws.theta.shape} and log_weights "
            f"{ws.log_weights.shape}."
        )
    n_marg = ws.log_weights.shape[-1]
    marginal = int(marginal)
    if not 0 <= marginal < n_marg:
        raise ValueError(f"`marginal` must lie in [0, {n_marg}); got {marginal}.")
    n = _check_pos_int(n, "n")
    # Dispatch (trace and compile) the draws before the ESS check blocks on ``ws``:
    # JAX dispatches asynchronously, so when ``ws`` comes straight from
    # :func:`importance_samples` this compilation overlaps the ratio evaluation
    # instead of following it. The draws are the same either way.
    if ws.theta.ndim == 2:
        out = _resample_rows(key, ws.log_weights[:, marginal], ws.theta, ws.valid, n)
    else:
        out = _resample_batch(key, ws.log_weights, ws.theta, ws.valid, marginal, n)
    ess = ws.ess if isinstance(ws.ess, jax.core.Tracer) else np.asarray(ws.ess)
    _warn_low_ess(ess[..., marginal], n, "resample")  # numpy: no eager slice program
    return out


@functools.partial(jax.jit, static_argnums=4)
def _resample_rows(key, log_w, theta, valid, n: int):
    # One compiled program: op by op, each of the ~10 operations compiled its own
    # kernel on a first call (seconds on a loaded 2-core machine).
    idx = _resample_indices(key, log_w, n)
    return _poison_rows(theta[idx], jnp.broadcast_to(valid, (n,)))


@functools.partial(jax.jit, static_argnums=(4, 5))
def _resample_batch(key, log_w, theta, valid, marginal: int, n: int):
    keys = jax.random.split(key, theta.shape[0])

    def one(k, lw, th, v):
        idx = _resample_indices(k, lw[:, marginal], n)
        return _poison_rows(th[idx], jnp.broadcast_to(v, (n,)))

    return jax.vmap(one)(keys, log_w, theta, valid)


def marginal_grid(
    model: RatioEstimator,
    x,
    marginal: int,
    low,
    high,
    *,
    n_grid: int = 100,
    log_prior: Callable | None = None,
):
    """Normalised marginal posterior on a regular grid of the marginal's box.

    Args:
        model: Trained estimator.
        x: One observation.
        marginal: Index of the marginal head (1-D or 2-D).
        low: Box lower corner of the full theta, shape (theta_dim,).
        high: Upper corner, shape (theta_dim,).
        n_grid: Points per axis.
        log_prior: Optional log-density of the marginal's parameters ``(k,) -> scalar``;
            default uniform.

    Returns:
        ``(axes, density)``: a list of grid axes, each (n_grid,), and the density
        normalised to integrate to 1, shape (n_grid,) or (n_grid, n_grid).
    """
    m = model.marginals[marginal]
    if len(m) > 2:
        raise ValueError(
            f"`marginal` {marginal} has {len(m)} parameters; grids are 1-D/2-D."
        )
    low, high = jnp.asarray(low), jnp.asarray(high)
    axes = [jnp.linspace(low[i], high[i], n_grid) for i in m]
    mesh = jnp.stack([g.ravel() for g in jnp.meshgrid(*axes, indexing="ij")], -1)
    full = jnp.broadcast_to((low + high) / 2, (mesh.shape[0], model.theta_dim))
    full = full.at[:, jnp.asarray(m)].set(mesh)
    feat = model.features(jnp.asarray(x))
    lp = jax.vmap(lambda t: model.head_logits(t, feat)[marginal])(full)
    if log_prior is not None:
        lp = lp + jax.vmap(log_prior)(mesh)
    dens = jnp.exp(lp - jnp.max(lp)).reshape((n_grid,) * len(m))
    cell = np.prod([float(a[1] - a[0]) for a in axes])
    return axes, dens / (jnp.sum(dens) * cell)


def joint_head(model: RatioEstimator) -> int:
    """Index of the head that covers all parameters (raises if there is none)."""
    full = tuple(range(model.theta_dim))
    for i, m in enumerate(model.marginals):
        if tuple(sorted(m)) == full:
            return i
    raise ValueError(
        "`model` has no joint head; build it with joint=True marginals "
        "(all_marginals(theta_dim, joint=True))."
    )


def dispersed_starts(
    key, model: RatioEstimator, theta_prior, x, n: int, *, marginal=None, log_prior=None
) -> jax.Array:
    """``n`` distinct starting points drawn from the importance-weighted prior draws.

    The prior draws are weighted by ``log r`` of ``marginal`` (plus ``log_prior`` when
    the draws do not come from the prior itself) and ``n`` of them are drawn without
    replacement with probabilities proportional to the weights (Gumbel top-k, Kool et
    al. 2019, arXiv 1903.06059): spread over the posterior's modes, never repeated.

    Args:
        key: Typed PRNG key.
        model: Trained estimator.
        theta_prior: Candidate points, (n_prior, theta_dim), n_prior >= n.
        x: One observation.
        n: Number of starting points.
        marginal: Head index; default the joint head.
        log_prior: Optional ``(theta_dim,) -> scalar`` added to the log weights.

    Returns:
        Shape (n, theta_dim).
    """
    check_key(key)
    theta_prior = check_array(theta_prior, "theta_prior", shape=(None, model.theta_dim))
    n = _check_pos_int(n, "n")
    if n > theta_prior.shape[0]:
        raise ValueError(
            f"`n` ({n}) must not exceed the number of `theta_prior` rows "
            f"({theta_prior.shape[0]})."
        )
    marginal = joint_head(model) if marginal is None else int(marginal)
    lw = importance_samples(model, theta_prior, x).log_weights[:, marginal]
    if log_prior is not None:
        lw = lw + jax.vmap(log_prior)(theta_prior)
    g = lw + jax.random.gumbel(key, lw.shape, lw.dtype)
    return theta_prior[jax.lax.top_k(g, n)[1]]


def sample_nuts(
    key,
    model: RatioEstimator,
    x,
    log_prior: Callable,
    *,
    low=None,
    high=None,
    init=None,
    theta_prior=None,
    n_init_candidates: int = 10_000,
    num_samples: int = 1000,
    num_warmup: int = 500,
    num_chains: int = 1,
    marginal: int | None = None,
):
    """Sample the joint posterior with numpyro NUTS on ``log_prior + log_ratio``.

    The ratio estimator is the potential: U(theta) = -(log p(theta) + log r(theta, x)),
    with the head of the joint marginal (all parameters). For a box prior pass ``low``
    and ``high``: the chain then runs in an unconstrained space theta = low + (high -
    low) sigmoid(u), with the log-Jacobian added.

    Chains start from dispersed points: ``num_chains`` distinct draws from the
    importance-weighted prior sample (:func:`dispersed_starts`), taken from
    ``theta_prior`` or, for a box, from ``n_init_candidates`` uniform draws in it
    (weighted by ``log_prior + log r``). Without a box, ``theta_prior`` and ``init``
    the chains start at zero.

    Args:
        key: Typed PRNG key.
        model: Trained estimator with a joint head.
        x: One observation (a non-finite one raises ValueError).
        log_prior: ``log_prior(theta) -> scalar``.
        low: Optional box lower corner (theta_dim,).
        high: Optional box upper corner.
        init: Initial theta (theta_dim,) or per chain (num_chains, theta_dim);
            default dispersed importance samples (see above).
        theta_prior: Optional prior draws (n, theta_dim) for the starting points.
        n_init_candidates: Uniform box draws for the starting points when
            ``theta_prior`` is not given.
        num_samples: Samples per chain after warm-up.
        num_warmup: Warm-up steps.
        num_chains: Vectorised chains.
        marginal: Index of the joint head; default the one covering all parameters.

    Returns:
        Samples, shape (num_chains * num_samples, theta_dim).
    """
    from numpyro.infer import MCMC, NUTS

    check_key(key)
    marginal = joint_head(model) if marginal is None else int(marginal)
    x, _ = _checked_observations(model, x, "x")
    if x.ndim != len(model.x_shape):
        raise ValueError(f"`x` must be one observation of shape {model.x_shape}.")
    feat = model.features(x)
    boxed = low is not None
    if boxed:
        low, high = jnp.asarray(low), jnp.asarray(high)
    k_init, k_run = jax.random.split(key)

    def to_theta(u):
        if not boxed:
            return u, 0.0
        s = jax.nn.sigmoid(u)
        return low + (high - low) * s, jnp.sum(
            jnp.log(high - low) + jax.nn.log_sigmoid(u) + jax.nn.log_sigmoid(-u)
        )

    def potential(u):
        th, logdet = to_theta(u)
        return -(log_prior(th) + model.head_logits(th, feat)[marginal] + logdet)

    if init is None and (boxed or theta_prior is not None):
        k_cand, k_pick = jax.random.split(k_init)
        if theta_prior is None:
            cand = jax.random.uniform(
                k_cand,
                (int(n_init_candidates), model.theta_dim),
                low.dtype,
                low,
                high,
            )
            lp = log_prior
        else:
            cand, lp = theta_prior, None
        init = dispersed_starts(
            k_pick, model, cand, x, num_chains, marginal=marginal, log_prior=lp
        )
    if init is None:
        u0 = jnp.zeros((num_chains, model.theta_dim))
    else:
        init = jnp.broadcast_to(jnp.asarray(init), (num_chains, model.theta_dim))
        if boxed:
            # Keep starts strictly inside so that logit stays finite.
            eps = 1e-6 * (high - low)
            init = jnp.clip(init, (low + eps)[None], (high - eps)[None])
            u0 = jax.scipy.special.logit((init - low[None]) / (high - low)[None])
        else:
            u0 = init
    mcmc = MCMC(
        NUTS(potential_fn=potential),
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method="vectorized",
        progress_bar=False,
    )
    mcmc.run(k_run, init_params=u0 if num_chains > 1 else u0[0])
    u = mcmc.get_samples()
    return jax.vmap(lambda v: to_theta(v)[0])(u.reshape(-1, model.theta_dim))


def _log_ratio_grid(model: RatioEstimator, theta_prior, x, batch_size: int = 16):
    """Log r(theta_prior_j, x_i) for all pairs, (n_obs, n_prior, M), in chunks of x.

    ``lax.map`` with a batch size bounds the memory of the network activations to
    ``batch_size * n_prior`` rows instead of ``n_obs * n_prior``.
    """
    return jax.lax.map(
        lambda xi: model.log_ratio(theta_prior, xi), x, batch_size=batch_size
    )


def _guarded_batch(model, x, n_sims: int):
    """Check a batch of held-out observations for the diagnostics.

    Eagerly a non-finite row raises ValueError naming the rows; under ``jit`` the
    compiled program raises (``eqx.error_if``) naming ``x``: a coverage or rank
    statistic is never averaged over NaN rows.
    """
    x = check_array(x, "x", shape=(n_sims, *model.x_shape), finite=False)
    if isinstance(x, jax.core.Tracer):
        return guard_finite(x, "x")
    return _checked_observations(model, x, "x")[0]


@functools.partial(jax.jit, static_argnums=2)
def _resample_indices(key, log_w, n: int):
    """``n`` indices drawn with replacement with probabilities ∝ exp(log_w).

    Inverse-CDF sampling (memory O(len(log_w) + n)), the same law as
    ``jax.random.categorical(key, log_w, shape=(n,))`` without its (n, len) Gumbels.
    Compiled as one program (op by op, the softmax, cumsum and searchsorted each
    compiled their own kernels on a first call).
    """
    cdf = jnp.cumsum(jax.nn.softmax(log_w))
    u = jax.random.uniform(key, (n,), cdf.dtype) * cdf[-1]
    return jnp.minimum(jnp.searchsorted(cdf, u, side="right"), log_w.shape[0] - 1)


def coverage(
    key,
    model: RatioEstimator,
    theta_true,
    x,
    theta_prior,
    *,
    levels=None,
    n_posterior_samples: int = 500,
    log_prior: Callable | None = None,
):
    """Expected HPD coverage of every marginal posterior (Hermans et al. 2022).

    For each held-out pair the marginal posterior is the ratio-weighted prior sample;
    ``n_posterior_samples`` are resampled, and the credibility of the truth is the
    fraction with higher (log prior +) log ratio, fed to the foundation's
    :func:`jaxdm.inference.diagnostics.expected_coverage_from_log_probs`.

    Args:
        key: Typed PRNG key.
        model: Trained estimator.
        theta_true: True parameters, (n_sims, theta_dim).
        x: Their simulated observations, (n_sims, *x_shape).
        theta_prior: Prior draws for importance weighting, (n, theta_dim).
        levels: Nominal levels; default 0, 0.05, ..., 1.
        n_posterior_samples: Resampled posterior draws per observation.
        log_prior: Optional ``(theta_dim,) -> scalar`` log prior (uniform if None).

    Returns:
        A list, one :class:`~jaxdm.inference.diagnostics.CoverageResult` per marginal.

    Raises:
        ValueError: Eagerly, if a row of ``x`` is non-finite (the rows are named);
            under ``jit`` the program raises ``equinox.EquinoxRuntimeError`` naming
            ``x``: no coverage is ever averaged over NaN rows. Warns
            :class:`LowESSWarning` when ``n_posterior_samples`` exceeds an
            observation's effective sample size.
    """
    from .diagnostics import expected_coverage_from_log_probs

    check_key(key)
    theta_true = check_array(theta_true, "theta_true", ndim=2)
    x = _guarded_batch(model, x, theta_true.shape[0])
    theta_prior = check_array(theta_prior, "theta_prior", ndim=2)
    lr_prior = _log_ratio_grid(model, theta_prior, x)  # (s, n, M)
    lse = jax.nn.logsumexp(lr_prior, axis=1)  # (s, M)
    _warn_low_ess(
        jnp.exp(2 * lse - jax.nn.logsumexp(2 * lr_prior, axis=1)),
        n_posterior_samples,
        "coverage",
    )
    lp_prior = (
        jnp.zeros(theta_prior.shape[0])
        if log_prior is None
        else jax.vmap(log_prior)(theta_prior)
    )
    lr_true = model.log_ratio(theta_true, x)  # (s, M)
    lp_true_prior = (
        jnp.zeros(theta_true.shape[0])
        if log_prior is None
        else jax.vmap(log_prior)(theta_true)
    )
    keys = jax.random.split(key, x.shape[0])
    out = []
    for m in range(model.n_marginals):
        idx = jax.vmap(
            lambda k, lw, mm=m: _resample_indices(k, lw[:, mm], n_posterior_samples)
        )(keys, lr_prior)
        log_post = (
            lr_prior[..., m] - lse[:, m : m + 1] + lp_prior[None]
        )  # log prior + log r
        lps = jnp.take_along_axis(log_post, idx, axis=1)
        lpt = lr_true[:, m] - lse[:, m] + lp_true_prior
        out.append(expected_coverage_from_log_probs(lps, lpt, levels=levels))
    return out


def sbc_ranks(
    key,
    model: RatioEstimator,
    theta_true,
    x,
    theta_prior,
    *,
    n_posterior_samples: int = 100,
):
    """SBC ranks of every 1-D marginal (Talts et al. 2018), via importance resampling.

    For each held-out pair, ``n_posterior_samples`` draws of each 1-D marginal are
    resampled from ``theta_prior`` with the ratio weights, and ranked against the truth
    with the foundation's :func:`~jaxdm.inference.diagnostics.sbc_ranks_from_samples`.

    Args:
        key: Typed PRNG key.
        model: Trained estimator.
        theta_true: True parameters, (n_sims, theta_dim), drawn from the same
            (truncated) prior as ``theta_prior``.
        x: Their observations, (n_sims, *x_shape).
        theta_prior: Prior draws, (n, theta_dim).
        n_posterior_samples: L, draws per observation.

    Returns:
        ``(ranks, params)``: ranks in {0..L}, shape (n_sims, n_1d), and the parameter
        index of each column, a tuple of length n_1d.

    Raises:
        ValueError: Eagerly, if a row of ``x`` is non-finite (the rows are named);
            under ``jit`` the program raises ``equinox.EquinoxRuntimeError`` naming
            ``x``. Warns :class:`LowESSWarning` as :func:`coverage`.
    """
    from .diagnostics import sbc_ranks_from_samples

    check_key(key)
    theta_true = check_array(theta_true, "theta_true", ndim=2)
    x = _guarded_batch(model, x, theta_true.shape[0])
    theta_prior = check_array(theta_prior, "theta_prior", ndim=2)
    heads = [h for h, m in enumerate(model.marginals) if len(m) == 1]
    if not heads:
        raise ValueError("`model` has no 1-D marginal heads.")
    params = tuple(model.marginals[h][0] for h in heads)
    lr = _log_ratio_grid(model, theta_prior, x)  # (s, n, M)
    lse = jax.nn.logsumexp(lr[..., jnp.asarray(heads)], axis=1)
    _warn_low_ess(
        jnp.exp(2 * lse - jax.nn.logsumexp(2 * lr[..., jnp.asarray(heads)], axis=1)),
        n_posterior_samples,
        "sbc_ranks",
    )
    keys = jax.random.split(key, len(heads))
    cols = []
    for kh, h, i in zip(keys, heads, params, strict=True):
        idx = jax.vmap(
            lambda k, lw, hh=h: _resample_indices(k, lw[:, hh], n_posterior_samples)
        )(jax.random.split(kh, x.shape[0]), lr)
        cols.append(theta_prior[idx, i])  # (s, L)
    samples = jnp.stack(cols, -1)
    return sbc_ranks_from_samples(samples, theta_true[:, jnp.asarray(params)]), params


def save(path: str | os.PathLike, model: RatioEstimator) -> None:
    """Save an estimator (default flatten embedding) with its hyperparameters."""
    if not isinstance(model.embedding, Flatten):
        raise ValueError(
            "`save` supports the default embedding; save custom ones with "
            "jaxdm.serialise.save and your own factory."
        )
    serialise.save(
        path,
        model,
        factory="jaxdm.inference.nre.make_ratio_estimator",
        hyperparams=dict(model.hyperparams),
    )


def load(path: str | os.PathLike) -> RatioEstimator:
    """Load an estimator written by :func:`save`."""
    return serialise.load(
        path, make_ratio_estimator, factory="jaxdm.inference.nre.make_ratio_estimator"
    )
