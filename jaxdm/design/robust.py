r"""Training robust to simulator mismodelling: learning to pivot, domain-adversarial.

Both are adversarial games written as **one** loss for ``jaxdm.train.fit`` through a
gradient-reversal layer (Ganin & Lempitsky, arXiv:1409.7495): :func:`gradient_reversal`
is the identity forwards and multiplies the gradient by :math:`-\lambda` backwards,
so minimising ``L_task(f) + L_adv(r(GRL(f)))`` trains the adversary ``r`` to
minimise its loss while the model ``f`` receives :math:`-\lambda\,\partial L_{adv}`,
i.e. it minimises :math:`L_{task} - \lambda L_{adv}`: the saddle point of Louppe,
Kagan & Cranmer's value function (arXiv:1611.01046, eq. 3) reached by simultaneous
gradient steps instead of their alternating ones (no change to ``fit`` needed).

- :class:`PivotClassifier` / :func:`pivot_loss`: a classifier whose output is made
  independent of a continuous nuisance ``z`` (e.g. a detector parameter varied in the
  simulation): the adversary models :math:`p(z | f(x))` with a Gaussian whose mean and
  log-variance are networks of the classifier output; its negative log-likelihood
  is the adversarial loss (Louppe et al. use a Gaussian mixture; one Gaussian
  suffices for the tests here).
- :class:`DomainAdversarialClassifier` / :func:`domain_adversarial_loss`: shared
  features, a label head trained on labelled simulation, and a domain head that
  tells simulation from unlabelled "data" through the reversal layer, so the
  features become domain-invariant (Ganin et al., JMLR 17, 59 (2016),
  arXiv:1505.07818).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from ..nn import MLP

__all__ = [
    "AdversarialBatch",
    "DomainAdversarialClassifier",
    "PivotClassifier",
    "domain_adversarial_loss",
    "gradient_reversal",
    "pivot_loss",
]


@jax.custom_vjp
def gradient_reversal(x, scale):
    r"""Identity forwards; gradient multiplied by ``-scale`` backwards."""
    del scale
    return x


def _grl_fwd(x, scale):
    return x, scale


def _grl_bwd(scale, g):
    return jax.tree_util.tree_map(lambda t: -scale * t, g), jnp.zeros_like(scale)


gradient_reversal.defvjp(_grl_fwd, _grl_bwd)


class AdversarialBatch(eqx.Module):
    """Rows for :func:`pivot_loss` and :func:`domain_adversarial_loss`.

    Attributes:
        x: Features, shape (n, d).
        y: Class label (0/1), shape (n,); ignored where ``labelled`` is 0.
        z: Nuisance value (pivot) or domain (0 simulation, 1 data), shape (n,).
        labelled: 1 where ``y`` is known (simulation), 0 otherwise, shape (n,).
        adversary_weight: 1 where the adversary sees the row (e.g. background only
            for a pivot on the background distribution), shape (n,).
    """

    x: jax.Array
    y: jax.Array
    z: jax.Array
    labelled: jax.Array
    adversary_weight: jax.Array


def _wmean(v, w):
    return jnp.sum(w * v) / jnp.maximum(jnp.sum(w), 1.0)


class PivotClassifier(eqx.Module):
    """Classifier ``f`` plus the adversary modelling ``p(z | f(x))`` (Gaussian).

    Attributes:
        classifier: Network (d,) -> (1,) logit.
        adversary: Network (1,) -> (2,): mean and log-variance of ``z``.
    """

    classifier: eqx.Module
    adversary: eqx.Module

    def __init__(self, in_size: int, *, width: int = 32, depth: int = 2, key):
        """Build both networks (``jaxdm.nn.MLP``)."""
        k1, k2 = jax.random.split(key)
        self.classifier = MLP(in_size, 1, width=width, depth=depth, key=k1)
        self.adversary = MLP(1, 2, width=width, depth=depth, key=k2)

    def __call__(self, x):
        """Probability of class 1 for one row ``x`` (d,), scalar."""
        return jax.nn.sigmoid(self.classifier(x)[0])


def pivot_loss(model: PivotClassifier, batch: AdversarialBatch, key=None, *, lam=1.0):
    r"""Classification cross-entropy minus ``lam`` times the adversary's NLL of ``z``.

    Args:
        model: :class:`PivotClassifier`.
        batch: :class:`AdversarialBatch` (``z``: the nuisance).
        key: Unused.
        lam: Trade-off :math:`\lambda` >= 0 (0: plain classifier, adversary trained
            but without effect).

    Returns:
        Scalar: the value whose gradient is the simultaneous-gradient step of the
        minimax game (the adversary's NLL enters with + sign, the reversal layer
        gives the classifier the - sign).
    """
    del key
    logits = jax.vmap(model.classifier)(batch.x)[:, 0]
    ce = optax.sigmoid_binary_cross_entropy(logits, batch.y)
    task = _wmean(ce, batch.labelled)
    s = jax.nn.sigmoid(logits)
    s = gradient_reversal(s, jnp.asarray(lam, s.dtype))
    out = jax.vmap(model.adversary)(s[:, None])
    mean, log_var = out[:, 0], jnp.clip(out[:, 1], -10.0, 10.0)
    nll = 0.5 * ((batch.z - mean) ** 2 * jnp.exp(-log_var) + log_var)
    return task + _wmean(nll, batch.adversary_weight)


class DomainAdversarialClassifier(eqx.Module):
    """Shared features with a label head and a domain head (DANN).

    Attributes:
        features: Network (d,) -> (k,).
        label_head: Network (k,) -> (1,) logit of the class.
        domain_head: Network (k,) -> (1,) logit of "data" vs simulation.
    """

    features: eqx.Module
    label_head: eqx.Module
    domain_head: eqx.Module

    def __init__(self, in_size: int, *, n_features=16, width=32, depth=2, key):
        """Build the three networks (``jaxdm.nn.MLP``)."""
        k1, k2, k3 = jax.random.split(key, 3)
        self.features = MLP(in_size, n_features, width=width, depth=depth, key=k1)
        self.label_head = MLP(n_features, 1, width=width, depth=1, key=k2)
        self.domain_head = MLP(n_features, 1, width=width, depth=1, key=k3)

    def __call__(self, x):
        """Probability of class 1 for one row ``x`` (d,), scalar."""
        return jax.nn.sigmoid(self.label_head(jax.nn.gelu(self.features(x)))[0])


def domain_adversarial_loss(
    model: DomainAdversarialClassifier, batch: AdversarialBatch, key=None, *, lam=1.0
):
    r"""Label cross-entropy on labelled rows + domain cross-entropy through the GRL.

    Args:
        model: :class:`DomainAdversarialClassifier`.
        batch: :class:`AdversarialBatch` (``z``: 0 simulation, 1 data).
        key: Unused.
        lam: Reversal strength :math:`\lambda` >= 0.

    Returns:
        Scalar loss.
    """
    del key
    h = jax.nn.gelu(jax.vmap(model.features)(batch.x))
    logits = jax.vmap(model.label_head)(h)[:, 0]
    task = _wmean(optax.sigmoid_binary_cross_entropy(logits, batch.y), batch.labelled)
    h_rev = gradient_reversal(h, jnp.asarray(lam, h.dtype))
    d_logits = jax.vmap(model.domain_head)(h_rev)[:, 0]
    dom = optax.sigmoid_binary_cross_entropy(d_logits, batch.z)
    return task + _wmean(dom, batch.adversary_weight)
