"""Score base classes and the training entry point shared by every anomaly score.

A score is an equinox module with ``score(x)`` for ONE event (larger = more
anomalous) and ``scores(xs)``, its ``vmap`` over a batch. Learned scores are built
untrained by a ``make_*`` factory and trained on background through
:func:`fit_score`, which calls ``jaxdm.train.fit`` (the library's one training loop)
with the score's own ``loss``; asking an untrained score for a value is a ValueError.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from .._checks import guard_finite
from ..train import fit, trainable_filter

__all__ = ["AbstractScore", "AbstractTrainableScore", "fit_score"]


def check_events(x, event_shape: tuple[int, ...], name: str, *, batch: bool) -> Array:
    """``x`` as a float array of shape ``event_shape`` (or ``(n, *event_shape)``).

    Host input stays a numpy array (of JAX's dtypes); JAX arrays stay JAX arrays.

    Raises:
        ValueError: For a wrong shape (the message names ``name``, the expected and
            the given shape).
    """
    if not isinstance(x, jax.Array):  # host data stays on the host (numpy casts):
        x = np.asarray(x)  # jnp.asarray would compile a staging program per shape
        x = x.astype(jax.dtypes.canonicalize_dtype(x.dtype), copy=False)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    want = ("n", *event_shape) if batch else tuple(event_shape)
    ok = x.ndim == len(want) and tuple(x.shape[int(batch) :]) == tuple(event_shape)
    if not ok:
        raise ValueError(
            f"`{name}` must have shape {want} (one event has shape "
            f"{tuple(event_shape)}); got {tuple(x.shape)}."
        )
    return x


class AbstractScore(eqx.Module):
    """An anomaly score: a scalar per event, larger meaning more anomalous.

    Attributes:
        event_shape: Shape of one event (static), e.g. ``(d,)`` or ``(C, H, W)``.
        trained: Whether the score may be evaluated (static).
    """

    event_shape: eqx.AbstractVar[tuple[int, ...]]
    trained: eqx.AbstractVar[bool]

    @abc.abstractmethod
    def _score(self, x: Array) -> Array:
        """Score of one checked, finite event ``x`` of shape ``event_shape``."""

    def score(self, x) -> Array:
        """Anomaly score of one event (scalar; larger = more anomalous).

        Args:
            x: One event, shape ``event_shape``, finite.

        Raises:
            ValueError: If the score is untrained, ``x`` has the wrong shape, or
                (eagerly) ``x`` has NaN/inf; under ``jit`` a non-finite ``x`` is an
                ``EquinoxRuntimeError`` naming ``x``.
        """
        if not self.trained:
            raise ValueError(
                f"{type(self).__name__} is untrained: its score is asked for before "
                "training. Train it with jaxdm.anomaly.fit_score on background "
                "events first."
            )
        x = check_events(x, self.event_shape, "x", batch=False)
        x = guard_finite(x, "x")
        return self._score(x)

    def scores(self, xs) -> Array:
        """Scores of a batch of events ``xs`` of shape (n, *event_shape) -> (n,)."""
        if not self.trained:
            return self.score(xs)  # raises the untrained error
        xs = check_events(xs, self.event_shape, "xs", batch=True)
        xs = guard_finite(xs, "xs")
        return _batched_scores(self, xs)


@eqx.filter_jit
def _batched_scores(score: AbstractScore, xs: Array) -> Array:
    """``vmap`` of ``score._score`` over checked events, compiled once per shape."""
    return jax.vmap(score._score)(xs)


class AbstractTrainableScore(AbstractScore):
    """A score learned by minimising ``loss`` on a training set (see fit_score).

    ``cpu_compiler_options`` (class attribute): XLA options ``fit_score`` compiles
    the training epoch with when JAX's default backend is the CPU (none by default;
    ``jaxdm.train.fit``'s ``compiler_options``).
    """

    cpu_compiler_options: ClassVar[dict] = {}

    @abc.abstractmethod
    def loss(self, batch: dict, key) -> Array:
        """Mean training loss of a minibatch ``batch`` (dict with ``"x"``, ...)."""

    @abc.abstractmethod
    def prepare(self, data: dict) -> AbstractTrainableScore:
        """Fit what is fixed before training (standardisation, centres) on ``data``."""


def fit_score(
    key,
    model: AbstractTrainableScore,
    x,
    *,
    labels=None,
    weights=None,
    optimizer=None,
    **fit_kwargs,
):
    """Train an anomaly score with ``jaxdm.train.fit`` and mark it trained.

    Args:
        key: Typed PRNG key.
        model: An untrained score from a ``make_*`` factory.
        x: Training events, shape (n, *event_shape): background only for the
            unsupervised scores; the mixed samples for the supervised ones.
        labels: Per-event labels (n,), for scores that need them (anomaly
            awareness: 1 = known anomaly; classifiers: 1 = signal / mixture 1).
        weights: Optional per-event loss weights (n,) for the classifiers.
        optimizer: An optax optimiser (default ``jaxdm.train.default_optimizer()``).
        **fit_kwargs: Passed to ``jaxdm.train.fit`` (``batch_size``, ``max_epochs``,
            ``patience``, ``progress`` ...). ``compiler_options`` defaults to the
            score's ``cpu_compiler_options`` on a CPU backend, else XLA's defaults.

    Returns:
        ``(trained score, history)``.

    Raises:
        TypeError: If ``model`` is not a trainable score.
        ValueError: For events of the wrong shape, NaN/inf rows, or labels/weights
            whose length differs from ``x`` (messages name the argument).
    """
    if not isinstance(model, AbstractTrainableScore):
        raise TypeError(
            "`model` must be a trainable anomaly score (from a jaxdm.anomaly make_* "
            f"factory); got {type(model).__name__}."
        )
    x = check_events(x, model.event_shape, "x", batch=True)
    data = {"x": np.asarray(x)}
    for name, arr in (("labels", labels), ("weights", weights)):
        if arr is None:
            continue
        arr = np.asarray(arr, dtype=np.asarray(x).dtype)
        if arr.shape != (x.shape[0],):
            raise ValueError(
                f"`{name}` must have shape ({x.shape[0]},), one entry per event of "
                f"`x`; got {arr.shape}."
            )
        data["y" if name == "labels" else "w"] = arr
    bad = ~np.isfinite(np.asarray(x).reshape(x.shape[0], -1)).all(axis=1)
    if bad.any():
        raise ValueError(
            f"`x` has {int(bad.sum())} events with NaN/inf (first at row "
            f"{int(np.argmax(bad))}); drop them before training."
        )
    model = model.prepare(data)
    if model.cpu_compiler_options and jax.default_backend() == "cpu":
        fit_kwargs.setdefault("compiler_options", dict(model.cpu_compiler_options))
    flat, history = fit(key, _Flat.of(model), _flat_loss, data, optimizer, **fit_kwargs)
    model = flat.model()
    # ``fit`` returns parameters replicated over its devices. Scores are evaluated
    # on one device: a jitted ``eqx.error_if`` (the NaN-event guard) over
    # replicated arrays aborts the process on a multi-device CPU (jax 0.10).
    model = jax.device_put(model, jax.devices()[0])
    return dataclasses.replace(model, trained=True), history


class _FrozenRest(eqx.Module):
    """The non-trainable part of a score (arrays here are never trained)."""

    __jaxdm_frozen__ = True

    tree: object


class _Flat(eqx.Module):
    """A score with its trainable arrays concatenated into one vector, for ``fit``.

    ``fit_score`` trains this instead of the score itself: the optimiser (AdamW with
    clipping and NaN-skipping) then updates one array instead of one per weight and
    bias, which halves XLA's compilation of ``fit``'s epoch on CPU (measured for the
    AE of ``benchmarks/anomaly_vs_pyod.py``) and gives the same updates: Adam(W) is
    elementwise and the gradient clipping uses the global norm either way.

    Attributes:
        flat: All trainable arrays of the score, raveled and concatenated (n,).
        rest: The score without them (frozen).
        treedef, shapes, dtypes: How to cut ``flat`` back into arrays (static).
    """

    flat: Array
    rest: _FrozenRest
    treedef: object = eqx.field(static=True)
    shapes: tuple = eqx.field(static=True)
    dtypes: tuple = eqx.field(static=True)

    @classmethod
    def of(cls, model) -> _Flat:
        """Split ``model`` into its flat trainable vector and the rest."""
        params, rest = eqx.partition(model, trainable_filter(model))
        leaves, treedef = jax.tree.flatten(params)
        # Concatenated on the host and moved by device_put: an eager or jitted
        # concatenate (and jnp.asarray of a host array, in jax 0.10) would be one
        # more XLA compilation in the first fit_score of a process.
        dtype = jnp.result_type(*leaves)
        flat = jax.device_put(
            np.concatenate([np.asarray(a).astype(dtype).ravel() for a in leaves])
        )
        return cls(
            flat=flat,
            rest=_FrozenRest(rest),
            treedef=treedef,
            shapes=tuple(tuple(a.shape) for a in leaves),
            dtypes=tuple(jnp.dtype(a.dtype).name for a in leaves),
        )

    def model(self):
        """The score with its arrays cut back out of ``flat``.

        Cut on the host (numpy slices, then ``device_put`` per array): no XLA
        compilation, unlike eager or jitted slicing of the device array.
        """
        flat, leaves, start = np.asarray(self.flat), [], 0
        for shape, dt in zip(self.shapes, self.dtypes, strict=True):
            size = int(np.prod(shape, dtype=np.int64))
            leaves.append(jax.device_put(flat[start : start + size].reshape(shape)
                                         .astype(dt)))  # fmt: skip
            start += size
        params = jax.tree.unflatten(self.treedef, leaves)
        return eqx.combine(params, self.rest.tree)

    def _model(self):
        """The score cut out of ``flat`` (traced, inside the training loss)."""
        leaves, start = [], 0
        for shape, dt in zip(self.shapes, self.dtypes, strict=True):
            size = int(np.prod(shape, dtype=np.int64))
            leaves.append(self.flat[start : start + size].reshape(shape).astype(dt))
            start += size
        params = jax.tree.unflatten(self.treedef, leaves)
        return eqx.combine(params, self.rest.tree)


def _flat_loss(flat: _Flat, batch: dict, key) -> Array:
    """``fit``'s loss: the score's own ``loss``.

    A module-level function (not a closure made per call), so that ``fit``'s
    compiled epoch is reused by later ``fit_score`` calls on models of the same
    structure.
    """
    return flat._model().loss(batch, key)


class Frozen(eqx.Module):
    """Fixed arrays of a score (centres, reference samples): never trained."""

    __jaxdm_frozen__ = True

    value: Array

    def get(self) -> Array:
        """The stored array, with gradients stopped."""
        return jax.lax.stop_gradient(self.value)


def identity_standardizer(event_shape) -> eqx.Module:
    """A ``jaxdm.nn.Standardizer`` with mean 0 and std 1 (no standardisation)."""
    from ..nn import Standardizer

    dt = jnp.result_type(float)
    return Standardizer(jnp.zeros(event_shape, dt), jnp.ones(event_shape, dt))


def fitted_standardizer(x, event_shape, *, standardize: bool | str,
                        scope: str = "element"):  # fmt: skip
    """The preprocessing fitted on ``x``.

    A ``Standardizer`` (``standardize`` True), a ZCA ``Whitener`` of vectors
    (``"whiten"``), else the identity.
    """
    from ..nn import Standardizer, Whitener

    if standardize == "whiten":
        return Whitener.fit(np.asarray(x).reshape(len(x), -1))
    if not standardize:
        return identity_standardizer(event_shape)
    return Standardizer.fit(np.asarray(x), scope=scope)
