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

What is and is not checked against arXiv:2106.10164. Its abstract (the part of the
paper reachable when this was written) says that "differentness" is quantified by
an ensemble of One-Class Deep SVDD models, "rareness" by an autoregressive flow,
and that "these two parameters are then combined into a single anomaly score using
different combination algorithms". The paper's own combination formulas, and how
it normalises the two scores before combining them, could not be read (searches of
public web pages, documentation and code for its text or code found only the
abstract; the DarkMachines challenge repository, arXiv:2105.14027, holds results,
not the method's code). So:

- rank normalisation on a background reference and the three combinations above
  are this module's own, written from their definitions; none is claimed to be
  the paper's equation, and results from them should not be quoted as
  reproducing arXiv:2106.10164;
- ``different`` is one score; for the paper's ensemble of Deep SVDDs, average
  their distances in a score of your own before combining.

Rank normalisation is used because it needs no assumption about the scale or
distribution of either score (the flow's -log p is unbounded, a Deep SVDD
distance is not comparable to it), and it makes each component a background
p-value, so that Fisher's method is the standard way to combine them. The two
p-values are correlated under background, so the Fisher score is used as a ranking
only (it is not chi^2 with 4 degrees of freedom): calibrate thresholds on
background, as ``jaxdm.anomaly.injection`` does.
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
