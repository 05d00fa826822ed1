"""NN-compressed likelihood: a signal/background classifier as a 1-D summary.

Carrara, Kravitz et al. (LUX/LZ), arXiv:2201.05734, train a classifier on simulated
signal and background events in the full event space (r, z, S1, S2, ...) and set
limits on 1-D templates of its output, which is (a monotone function of) the
likelihood ratio ``p_s(x) / p_b(x)`` when the classifier is optimal, so at ``mu -> 0``
no information on the signal strength is lost (the likelihood ratio is a sufficient
statistic for ``mu`` in the mixture ``mu s p_s + b p_b`` at small ``mu``). Here the
classifier is a ``jaxdm.nn.MLP`` on standardised features trained by
``jaxdm.train.fit`` with the binary cross-entropy; :func:`compressed_templates`
histograms any compressor's output into templates (expected counts and MC
uncertainties for the Barlow-Beeston-lite term of :func:`.likelihood.binned_model`).
:func:`random_projection` is a deliberately poor compressor (a random direction in
standardised feature space), the control of the information check.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from .._args import check_int
from .._checks import check_key, guard_finite, guard_positive
from .._typing import Array
from ..nn import MLP, Standardizer
from ..train import fit

__all__ = [
    "Compressor",
    "compressed_templates",
    "random_projection",
    "train_compressor",
]


class Compressor(eqx.Module):
    """A learned (or random) map from event features to (0, 1).

    Attributes:
        standardizer: Feature standardisation (frozen during training).
        net: Map from standardised features (F,) to one logit (1,).
    """

    standardizer: Standardizer
    net: eqx.Module

    def logit(self, x) -> Array:
        """Logit of one event, ``x`` of shape (F,) -> scalar."""
        return self.net(self.standardizer(x))[0]

    def __call__(self, x) -> Array:
        """Summary in (0, 1) of one event (the signal-class probability); vmap it."""
        return jax.nn.sigmoid(self.logit(x))


class _Linear(eqx.Module):
    w: Array

    def __call__(self, z):
        return jnp.atleast_1d(z @ self.w)


def random_projection(key, features) -> Compressor:
    """A compressor that projects standardised features on a random unit vector.

    Args:
        key: PRNG key.
        features: Training features, shape (n, F) (for the standardisation).
    """
    check_key(key)
    features = guard_finite(jnp.asarray(features), "features")
    w = jax.random.normal(key, (features.shape[1],), features.dtype)
    return Compressor(Standardizer.fit(features), _Linear(w / jnp.linalg.norm(w)))


def train_compressor(
    key,
    signal_features,
    background_features,
    *,
    width: int = 64,
    depth: int = 3,
    max_epochs: int = 30,
    batch_size: int = 512,
    learning_rate: float = 2e-3,
    progress: bool = True,
) -> tuple[Compressor, object]:
    """Train a signal-vs-background classifier with ``jaxdm.train.fit``.

    Classes are weighted to equal total weight (balanced binary cross-entropy), so
    the output estimates ``p_s / (p_s + p_b)`` of the event densities.

    Args:
        key: PRNG key.
        signal_features: Signal events, shape (n_s, F).
        background_features: Background events, shape (n_b, F).
        width: MLP hidden width.
        depth: MLP hidden layers.
        max_epochs: Epoch cap (early stopping on 10% held-out events, patience 5).
        batch_size: Minibatch size.
        learning_rate: AdamW learning rate.
        progress: Show the progress bar.

    Returns:
        ``(compressor, history)``.
    """
    check_key(key)
    xs = guard_finite(jnp.asarray(signal_features), "signal_features")
    xb = guard_finite(jnp.asarray(background_features, xs.dtype), "background_features")
    if xs.ndim != 2 or xb.ndim != 2 or xs.shape[1] != xb.shape[1]:
        raise ValueError(
            "`signal_features` and `background_features` must be (n, F) with the same "
            f"F; got {xs.shape} and {xb.shape}."
        )
    width = check_int(width, "width", minimum=1)
    depth = check_int(depth, "depth", minimum=0)
    k_init, k_fit, k_perm = jax.random.split(key, 3)
    x = jnp.concatenate([xs, xb])
    y = jnp.concatenate([jnp.ones(xs.shape[0]), jnp.zeros(xb.shape[0])]).astype(x.dtype)
    w = jnp.where(y > 0, 0.5 * x.shape[0] / xs.shape[0], 0.5 * x.shape[0] / xb.shape[0])
    perm = jax.random.permutation(k_perm, x.shape[0])
    x, y, w = x[perm], y[perm], w[perm]
    model = Compressor(
        Standardizer.fit(x), MLP(x.shape[1], 1, width=width, depth=depth, key=k_init)
    )

    def loss_fn(m, batch, _key):
        xb_, yb_, wb_ = batch
        logits = jax.vmap(m.logit)(xb_)
        return jnp.mean(wb_ * optax.sigmoid_binary_cross_entropy(logits, yb_))

    return fit(
        k_fit,
        model,
        loss_fn,
        (x, y, w),
        optax.adamw(learning_rate),
        batch_size=batch_size,
        max_epochs=max_epochs,
        patience=5,
        progress=progress,
    )


def compressed_templates(compressor, features, weights, edges):
    """Histogram a compressor's output: expected counts and sum of squared weights.

    Args:
        compressor: A callable on one event (F,) -> scalar summary.
        features: MC events, shape (n, F).
        weights: Per-event weights (expected counts each), shape (n,), >= 0.
        edges: Bin edges of the summary, shape (B + 1,), increasing.

    Returns:
        ``(sum_w, sum_w2)``, each (B,): the template and its MC variance. Events
        outside ``edges`` are not counted (choose edges that cover the summary's
        range, e.g. [0, 1] for a classifier).
    """
    features = guard_finite(jnp.asarray(features), "features")
    weights = guard_positive(
        jnp.asarray(weights, features.dtype), "weights", allow_zero=True
    )
    t = jax.vmap(compressor)(features)
    idx = jnp.searchsorted(edges, t, side="right") - 1
    nb = edges.shape[0] - 1
    idx = jnp.where(t == edges[-1], nb - 1, idx)
    inside = (idx >= 0) & (idx < nb)
    ic = jnp.clip(idx, 0, nb - 1)
    sw = jnp.zeros(nb, features.dtype).at[ic].add(jnp.where(inside, weights, 0.0))
    sw2 = jnp.zeros(nb, features.dtype).at[ic].add(jnp.where(inside, weights**2, 0.0))
    return sw, sw2
