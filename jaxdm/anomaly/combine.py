r"""Rank normalisation on background and the "rare and different" combination.

Caron, Hendriks & Verheyen (arXiv:2106.10164) observe that a density score ("rare":
:math:`-\log p(x)` of a flow) and an out-of-distribution score ("different": Deep
SVDD or an autoencoder's reconstruction) flag different anomalies, and combine the
two. Scores on different scales are first made comparable by **rank normalisation on
background**: each score :math:`s_k` becomes its background tail probability

.. math::

    p_k(x) = \frac{1 + \#\{b \in B : s_k(b) \ge s_k(x)\}}{1 + |B|} \in (0, 1],

computed against a held-out background reference sample :math:`B` (a conformal
p-value: under background it is uniform on the grid
:math:`\{1, \dots, |B|+1\}/(|B|+1)`).
The combined score is, by ``method``:

- ``"fisher"`` (default): :math:`-\sum_k \log p_k` (Fisher's combination of the two
  background p-values; large when either tail is extreme and larger when both are);
- ``"mean"``: :math:`1 - \frac{1}{K}\sum_k p_k` (the mean rank);
- ``"max"``: :math:`1 - \min_k p_k` (the most extreme of the two).

The combinations are written here from the rank-normalised definitions above; see
arXiv:2106.10164 for the study of such products and sums of normalised scores. They
are NOT checked to be the paper's own combination formula: its text was not
available to verify the equation it uses, so none of the three is claimed to
reproduce it.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import Array

from .._args import check_choice
from ._base import AbstractScore, Frozen, check_events

__all__ = ["RareAndDifferent", "background_tail_probability", "combine_rare_different"]


def background_tail_probability(reference, s) -> Array:
    """Conformal background tail probability of score value(s) ``s``.

    Args:
        reference: Background scores sorted ascending, shape (n_ref,).
        s: Score value(s), any shape.

    Returns:
        (1 + #{reference >= s}) / (1 + n_ref), the shape of ``s``.
    """
    n = reference.shape[0]
    below = jnp.searchsorted(reference, s, side="left")
    return (1.0 + (n - below)) / (1.0 + n)


class RareAndDifferent(AbstractScore):
    """Combination of rank-normalised scores (module docstring).

    Attributes:
        components: The trained scores combined (e.g. a flow density and a Deep SVDD).
        references: Frozen, sorted background scores of each component.
        method: ``"fisher"``, ``"mean"`` or ``"max"`` (static).
        event_shape: Shared event shape (static).
        trained: True (static; the components are trained).
    """

    components: tuple[AbstractScore, ...]
    references: tuple[Frozen, ...]
    method: str = eqx.field(static=True)
    event_shape: tuple[int, ...] = eqx.field(static=True)
    trained: bool = eqx.field(static=True)

    def tail_probabilities(self, x: Array) -> Array:
        """Background tail probability of each component's score, shape (K,)."""
        return jnp.stack([
            background_tail_probability(r.get(), c._score(x))
            for c, r in zip(self.components, self.references, strict=True)
        ])  # fmt: skip

    def _score(self, x: Array) -> Array:
        p = self.tail_probabilities(x)
        if self.method == "fisher":
            return -jnp.sum(jnp.log(p))
        if self.method == "mean":
            return 1.0 - jnp.mean(p)
        return 1.0 - jnp.min(p)


def combine_rare_different(
    rare: AbstractScore, different: AbstractScore, background, *, method="fisher"
) -> RareAndDifferent:
    """Combine a "rare" and a "different" score, rank-normalised on ``background``.

    Args:
        rare: A trained density score (e.g. :class:`FlowDensityScore`).
        different: A trained out-of-distribution score (Deep SVDD, (V)AE).
        background: Background reference events (n_ref, *event_shape), held out
            from the components' training, used for the rank normalisation.
        method: ``"fisher"``, ``"mean"`` or ``"max"`` (module docstring).

    Returns:
        A trained :class:`RareAndDifferent` score.

    Raises:
        ValueError: If a component is untrained, the event shapes differ, or
            ``background`` has the wrong shape or non-finite events.
    """
    method = check_choice(method, "method", ("fisher", "mean", "max"))
    comps = (rare, different)
    for name, c in (("rare", rare), ("different", different)):
        if not isinstance(c, AbstractScore):
            raise TypeError(f"`{name}` must be an anomaly score; got {type(c)}.")
        if not c.trained:
            raise ValueError(
                f"`{name}` ({type(c).__name__}) is untrained: train it with "
                "fit_score before combining."
            )
    if tuple(rare.event_shape) != tuple(different.event_shape):
        raise ValueError(
            f"`rare` and `different` must score events of one shape; got "
            f"{rare.event_shape} and {different.event_shape}."
        )
    shape = tuple(rare.event_shape)
    background = check_events(background, shape, "background", batch=True)
    refs = tuple(
        Frozen(jnp.asarray(np.sort(np.asarray(c.scores(background))))) for c in comps
    )
    return RareAndDifferent(
        components=comps,
        references=refs,
        method=method,
        event_shape=shape,
        trained=True,
    )
