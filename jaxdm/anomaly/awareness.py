r"""Anomaly-aware autoencoder score (after Khosa & Sanz, arXiv:2007.14462).

Khosa & Sanz train a model on background and add a loss term on a small sample of
*known* anomaly types, so that the model's notion of "normal" is shaped away from
anomalous directions and it becomes more sensitive to anomalies it has never seen. Their
model is a classifier of the background classes whose extra term drives its output
towards the uniform distribution on the anomalies; here the same idea is applied to an
autoencoder, which needs no background classes:

.. math::

    L = \langle e(x) \rangle_{\rm background}
        + \lambda\,\langle \max(0, m - e(x)) \rangle_{\rm known\ anomalies},

with :math:`e(x)` the standardised reconstruction error (:class:`Autoencoder`),
:math:`\lambda` the **awareness weight** (``awareness_weight``; 0 gives the plain
autoencoder) and :math:`m` a margin in units of the standardised squared error
(``margin``; a background event reconstructed at the level of its own spread has
:math:`e \approx 1`). The hinge pushes the known anomalies' errors above :math:`m`
without rewarding errors beyond it. The score is :math:`e(x)`. Training data are
background (label 0) plus the known anomalies (label 1), passed to ``fit_score`` as
``labels``; the standardisation is fitted on the background rows only.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from .._args import check_real
from ._base import AbstractTrainableScore, fitted_standardizer
from .autoencoders import Autoencoder, make_autoencoder

__all__ = ["AnomalyAwareAutoencoder", "make_anomaly_aware"]


class AnomalyAwareAutoencoder(AbstractTrainableScore):
    """Autoencoder trained with the anomaly-awareness term (module docstring).

    Attributes:
        ae: The underlying :class:`Autoencoder`.
        awareness_weight: lambda, weight of the known-anomaly hinge term (static).
        margin: m, target reconstruction error of known anomalies (static).
        event_shape: (d,) (static).
        trained: Set by ``fit_score`` (static).
    """

    ae: Autoencoder
    awareness_weight: float = eqx.field(static=True)
    margin: float = eqx.field(static=True)
    event_shape: tuple[int, ...] = eqx.field(static=True)
    trained: bool = eqx.field(static=True)

    def _score(self, x: Array) -> Array:
        return self.ae._score(x)

    def loss(self, batch: dict, key) -> Array:
        """Background reconstruction error plus lambda times the anomaly hinge."""
        e = jax.vmap(self.ae._score)(batch["x"])
        y = batch["y"]
        n_anom = jnp.sum(y)
        n_bkg = jnp.sum(1.0 - y)
        bkg = jnp.sum((1.0 - y) * e) / jnp.maximum(n_bkg, 1.0)
        hinge = jnp.sum(y * jax.nn.relu(self.margin - e)) / jnp.maximum(n_anom, 1.0)
        return bkg + self.awareness_weight * hinge

    def prepare(self, data: dict) -> AnomalyAwareAutoencoder:
        """Check the labels; fit the standardisation on the background rows."""
        if "y" not in data:
            raise ValueError(
                "`labels` is required for the anomaly-aware score: 0 for background, "
                "1 for the known anomalies."
            )
        y = np.asarray(data["y"])
        if not np.isin(y, (0.0, 1.0)).all():
            raise ValueError(f"`labels` must be 0 or 1; got values {np.unique(y)}.")
        bkg = np.asarray(data["x"])[y == 0]
        if bkg.shape[0] == 0:
            raise ValueError("`labels` marks no background event (label 0).")
        std = fitted_standardizer(bkg, self.event_shape,
                                  standardize=self.ae.standardize)  # fmt: skip
        return eqx.tree_at(lambda m: m.ae.standardizer, self, std)


def make_anomaly_aware(
    key,
    *,
    dim: int,
    awareness_weight: float = 1.0,
    margin: float = 2.0,
    latent_dim: int = 2,
    width: int = 64,
    depth: int = 2,
    standardize: bool = True,
) -> AnomalyAwareAutoencoder:
    """Untrained anomaly-aware autoencoder score for events (dim,).

    Args:
        key: Typed PRNG key.
        dim: Features per event.
        awareness_weight: lambda >= 0, weight of the known-anomaly term.
        margin: m > 0, standardised reconstruction error asked of known anomalies.
        latent_dim: Bottleneck size.
        width: Hidden width.
        depth: Hidden layers.
        standardize: Standardise features on background first.
    """
    lam = check_real(awareness_weight, "awareness_weight")
    if lam < 0:
        raise ValueError(f"`awareness_weight` must be >= 0; got {lam}.")
    margin = check_real(margin, "margin")
    if not margin > 0:
        raise ValueError(f"`margin` must be > 0; got {margin}.")
    ae = make_autoencoder(key, dim=dim, latent_dim=latent_dim, width=width,
                          depth=depth, standardize=standardize)  # fmt: skip
    return AnomalyAwareAutoencoder(
        ae=ae,
        awareness_weight=lam,
        margin=margin,
        event_shape=ae.event_shape,
        trained=False,
    )
