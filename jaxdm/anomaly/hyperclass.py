r"""Hyperclass training sets: background against a mixture of many signal models.

Caron, Ruiz de Austri & Zhang (arXiv:2207.07631) train one supervised classifier of
background against a *mixture of theories*: signal events drawn from many models and
model parameters at once (a "hyperclass"), so that the classifier learns what makes
signal-like events differ from background in general and stays sensitive to models
outside its training mixture. :func:`hyperclass_training_set` builds that training set
from per-model event samples (e.g. WIMP recoils at masses drawn from a prior), giving
every signal model the same total weight and the hyperclass as a whole the weight of
the background; train a :class:`~jaxdm.anomaly.ClassifierScore` on it with
``fit_score``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["hyperclass_training_set"]


def hyperclass_training_set(background, signals):
    """Events, labels and weights for a background-vs-hyperclass classifier.

    Args:
        background: Background events (n_b, *event_shape).
        signals: A sequence of signal samples, one per model or parameter draw,
            each (n_k, *event_shape).

    Returns:
        ``(x, labels, weights)``: labels 0 for background and 1 for the hyperclass;
        weights such that every signal model has the same total weight, the
        hyperclass the same total weight as the background, and the mean weight is 1.

    Raises:
        ValueError: For an empty list of signals, an empty sample or event shapes
            that differ (the message names the sample).
    """
    background = np.asarray(background)
    if background.ndim < 2 or background.shape[0] == 0:
        raise ValueError(
            f"`background` must be a non-empty event array (n, ...); got shape "
            f"{background.shape}."
        )
    signals = [np.asarray(s) for s in signals]
    if not signals:
        raise ValueError("`signals` must hold at least one signal sample.")
    for i, s in enumerate(signals):
        if s.ndim != background.ndim or s.shape[1:] != background.shape[1:]:
            raise ValueError(
                f"`signals[{i}]` must have events of shape {background.shape[1:]}; "
                f"got array shape {s.shape}."
            )
        if s.shape[0] == 0:
            raise ValueError(f"`signals[{i}]` is empty.")
    n = background.shape[0] + sum(s.shape[0] for s in signals)
    x = np.concatenate([background, *signals])
    y = np.concatenate([np.zeros(background.shape[0])]
                       + [np.ones(s.shape[0]) for s in signals])  # fmt: skip
    w_b = np.full(background.shape[0], n / (2 * background.shape[0]))
    w_s = [np.full(s.shape[0], n / (2 * len(signals) * s.shape[0])) for s in signals]
    return x, y, np.concatenate([w_b, *w_s])
