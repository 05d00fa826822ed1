r"""Flow-density ("rare") score: the negative log-density of an unconditional flow.

The background density :math:`p(x)` is modelled by a neural spline flow from
:mod:`jaxdm.flows` with no context (Durkan et al. 2019, arXiv:1906.04032), after an
optional standardisation :math:`z = (x - m)/s` fitted on background, so that
:math:`\log p(x) = \log q(z) - \sum_i \log s_i`. The score is :math:`-\log p(x)`
[nats], large where background is rare.

Dequantisation (Uria, Murray & Larochelle 2013, arXiv:1306.0186; Theis, van den Oord
& Bethge 2016, arXiv:1511.01844): integer-valued columns (photon counts, PMT
multiplicities) have no density; during training each such column is replaced by
:math:`x + u`, :math:`u \sim U(0, 1)`, which makes the flow's likelihood a lower bound
on the discrete log-probability. The score of an event evaluates the density at the
cell centre :math:`x + 1/2` in those columns (the midpoint rule for
:math:`\log \int_0^1 p(x + u)\,du`).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from .._args import check_int
from .._checks import check_key
from ..flows import ConditionalFlow, make_nsf
from ..nn import Standardizer
from ._base import AbstractTrainableScore, fitted_standardizer, identity_standardizer

__all__ = ["FlowDensityScore", "make_flow_density"]


class FlowDensityScore(AbstractTrainableScore):
    """Negative log-density [nats] of background under an unconditional flow.

    Attributes:
        flow: A :class:`jaxdm.flows.ConditionalFlow` with ``context_dim = 0``.
        standardizer: Frozen standardisation fitted on background (identity if off).
        discrete: Per-column flags of the dequantised integer columns (static).
        standardize: Whether ``prepare`` fits the standardisation (static).
        event_shape: ``(d,)`` (static).
        trained: Set by :func:`jaxdm.anomaly.fit_score` (static).
    """

    flow: ConditionalFlow
    standardizer: Standardizer
    discrete: tuple[bool, ...] = eqx.field(static=True)
    standardize: bool = eqx.field(static=True)
    event_shape: tuple[int, ...] = eqx.field(static=True)
    trained: bool = eqx.field(static=True)

    def log_density(self, x: Array) -> Array:
        """Log-density log p(x) [nats] of one (dequantised) event, shape (d,)."""
        z = self.standardizer(x)
        ctx = jnp.zeros((0,), z.dtype)
        return self.flow.log_prob(z, ctx) + self.standardizer.log_abs_det_jacobian()

    def _score(self, x: Array) -> Array:
        mask = jnp.asarray(self.discrete)
        return -self.log_density(jnp.where(mask, x + 0.5, x))

    def loss(self, batch: dict, key) -> Array:
        """Mean negative log-likelihood of the (dequantised) background batch."""
        x = batch["x"]
        mask = jnp.asarray(self.discrete)
        if any(self.discrete):
            u = jax.random.uniform(key, x.shape, x.dtype)
            x = jnp.where(mask, x + u, x)
        return -jnp.mean(jax.vmap(self.log_density)(x))

    def prepare(self, data: dict) -> FlowDensityScore:
        """Fit the standardisation on the (dequantised-centre) background events."""
        x = np.asarray(data["x"], np.float64) + 0.5 * np.asarray(self.discrete)
        std = fitted_standardizer(x, self.event_shape, standardize=self.standardize)
        return eqx.tree_at(lambda m: m.standardizer, self, std)


def make_flow_density(
    key,
    *,
    dim: int,
    n_layers: int = 4,
    hidden=(64, 64),
    n_bins: int = 8,
    bound: float = 5.0,
    standardize: bool = True,
    discrete=None,
) -> FlowDensityScore:
    """Build an untrained flow-density score (train it with ``fit_score``).

    Args:
        key: Typed PRNG key.
        dim: Features per event d.
        n_layers: Spline-flow layers.
        hidden: Hidden widths of each layer's conditioner.
        n_bins: Spline bins.
        bound: Spline interval [-bound, bound] in standardised units.
        standardize: Standardise features on background before the flow.
        discrete: Indices of integer-valued columns to dequantise (default none).

    Returns:
        An untrained :class:`FlowDensityScore`.
    """
    check_key(key)
    dim = check_int(dim, "dim", minimum=1)
    flags = np.zeros(dim, bool)
    if discrete is not None:
        idx = np.asarray(discrete, int).ravel()
        if idx.size and (idx.min() < 0 or idx.max() >= dim):
            raise ValueError(
                f"`discrete` must hold column indices in [0, {dim}); got {idx}."
            )
        flags[idx] = True
    flow = make_nsf(
        key,
        theta_dim=dim,
        context_dim=0,
        n_layers=n_layers,
        hidden=tuple(hidden),
        n_bins=n_bins,
        bound=bound,
    )
    return FlowDensityScore(
        flow=flow,
        standardizer=identity_standardizer((dim,)),
        discrete=tuple(bool(f) for f in flags),
        standardize=bool(standardize),
        event_shape=(dim,),
        trained=False,
    )
