r"""Classifier scores: weak supervision (CWoLa) and the training sets they learn from.

A :class:`ClassifierScore` is an MLP whose output is the logit of "class 1"; trained
with the binary cross-entropy it estimates :math:`\log p_1(x)/p_0(x)` up to a constant,
so its logit is a monotone function of the likelihood ratio and a valid score.

**CWoLa** ("classification without labels"; Metodiev, Nachman & Thaler 2017,
arXiv:1708.02949): given two *mixed* samples :math:`M_1 = f_1 S + (1-f_1) B` and
:math:`M_2 = f_2 S + (1-f_2) B` with unknown signal fractions :math:`f_1 > f_2`, the
optimal classifier of :math:`M_1` against :math:`M_2` is a monotone function of the
signal/background likelihood ratio, so it ranks events as the fully supervised
classifier would, with a statistical cost that shrinks as :math:`f_1 - f_2` grows.
This is how a detector can be trained on impure calibration data instead of
simulation. :func:`cwola_training_set` labels the two samples and balances them.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array

from .._args import check_int
from .._checks import check_key
from ..nn import MLP, Standardizer
from ._base import AbstractTrainableScore, fitted_standardizer, identity_standardizer

__all__ = ["ClassifierScore", "cwola_training_set", "make_classifier"]


class ClassifierScore(AbstractTrainableScore):
    """Logit of class 1 (signal, mixture 1, or anomaly) from an MLP.

    Attributes:
        net: MLP event -> (1,).
        standardizer: Frozen standardisation fitted on the training events.
        standardize: Whether ``prepare`` fits it (static).
        event_shape: (d,) (static).
        trained: Set by ``fit_score`` (static).
    """

    net: MLP
    standardizer: Standardizer
    standardize: bool = eqx.field(static=True)
    event_shape: tuple[int, ...] = eqx.field(static=True)
    trained: bool = eqx.field(static=True)

    def _score(self, x: Array) -> Array:
        return self.net(self.standardizer(x))[0]

    def loss(self, batch: dict, key) -> Array:
        """(Weighted) mean binary cross-entropy of the logits against ``y``."""
        logit = jax.vmap(self._score)(batch["x"])
        ce = optax.sigmoid_binary_cross_entropy(logit, batch["y"])
        w = batch.get("w")
        if w is None:
            return jnp.mean(ce)
        return jnp.sum(w * ce) / jnp.sum(w)

    def prepare(self, data: dict) -> ClassifierScore:
        """Check the labels and fit the standardisation on all training events."""
        if "y" not in data:
            raise ValueError("`labels` is required to train a classifier score.")
        y = np.asarray(data["y"])
        if not np.isin(y, (0.0, 1.0)).all() or len(np.unique(y)) != 2:
            raise ValueError(
                f"`labels` must hold both classes 0 and 1; got values {np.unique(y)}."
            )
        std = fitted_standardizer(data["x"], self.event_shape,
                                  standardize=self.standardize)  # fmt: skip
        return eqx.tree_at(lambda m: m.standardizer, self, std)


def make_classifier(
    key, *, dim: int, width: int = 64, depth: int = 2, standardize: bool = True
) -> ClassifierScore:
    """Untrained MLP classifier score for events of shape (dim,).

    Args:
        key: Typed PRNG key.
        dim: Features per event.
        width: Hidden width.
        depth: Hidden layers.
        standardize: Standardise features on the training events first.
    """
    check_key(key)
    dim = check_int(dim, "dim", minimum=1)
    net = MLP(dim, 1, width=width, depth=depth, key=key)
    return ClassifierScore(
        net=net,
        standardizer=identity_standardizer((dim,)),
        standardize=bool(standardize),
        event_shape=(dim,),
        trained=False,
    )


def _balanced(x1, x0, name1, name0):
    x1 = np.asarray(x1)
    x0 = np.asarray(x0)
    if x1.ndim < 2 or x0.ndim < 2 or x1.shape[1:] != x0.shape[1:]:
        raise ValueError(
            f"`{name1}` and `{name0}` must be event arrays (n, *event_shape) with "
            f"the same event shape; got {x1.shape} and {x0.shape}."
        )
    if len(x1) == 0 or len(x0) == 0:
        raise ValueError(f"`{name1}` and `{name0}` must both be non-empty.")
    x = np.concatenate([x1, x0])
    y = np.concatenate([np.ones(len(x1)), np.zeros(len(x0))])
    n = len(x)
    w = np.concatenate([np.full(len(x1), n / (2 * len(x1))),
                        np.full(len(x0), n / (2 * len(x0)))])  # fmt: skip
    return x, y, w


def cwola_training_set(mixture_1, mixture_2):
    """Labels and class-balancing weights for CWoLa (module docstring).

    Args:
        mixture_1: Events of the sample with the larger signal fraction
            (n1, *event_shape).
        mixture_2: Events of the other sample (n2, *event_shape).

    Returns:
        ``(x, labels, weights)``: events (n1 + n2, ...), labels 1 for mixture 1 and
        0 for mixture 2, and weights giving each sample equal total weight (mean 1);
        pass them to ``fit_score(key, make_classifier(...), x, labels=labels,
        weights=weights)``.
    """
    return _balanced(mixture_1, mixture_2, "mixture_1", "mixture_2")
