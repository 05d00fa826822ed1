r"""Deep SVDD score (Ruff et al. 2018, ICML, "Deep One-Class Classification").

A network :math:`\phi` maps each event to a representation; training minimises the
mean squared distance :math:`\lVert\phi(x) - c\rVert^2` of background to a centre
:math:`c` that is fixed before training as the mean of :math:`\phi` over the
background in an initial forward pass (entries with :math:`|c_j| < \epsilon` are set
to :math:`\pm\epsilon`, as Ruff et al. do). The score is that squared distance.

Collapse. The objective has a trivial minimum where :math:`\phi` is the constant
:math:`c`. Ruff et al. (Sec. 3.3, Prop. 2) show it is reachable only through bias
terms (or bounded activations): a bias-free network with an unbounded activation
maps inputs to a constant only with all weights zero, which gives
:math:`\phi \equiv 0 \ne c`. The network here therefore has no bias terms and uses
unbounded activations (leaky ReLU by default; ReLU, with a ReLU on the output too, is
PyOD's ``DeepSVDD`` network); ``bias=True`` exists only to demonstrate the collapse in
tests.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from .._args import check_choice, check_int, check_real
from .._checks import check_key
from ..nn import Standardizer
from ._base import (
    AbstractTrainableScore,
    Frozen,
    fitted_standardizer,
    identity_standardizer,
)

__all__ = ["DeepSVDD", "make_deep_svdd"]


_ACTIVATIONS = {
    "leaky_relu": lambda x: jax.nn.leaky_relu(x, 0.1),
    "relu": jax.nn.relu,
    "linear": lambda x: x,
}


class _Net(eqx.Module):
    """Bias-free MLP; ``activation`` after hidden layers, ``output_activation`` last."""

    layers: tuple[eqx.nn.Linear, ...]
    activation: str = eqx.field(static=True, default="leaky_relu")
    output_activation: str = eqx.field(static=True, default="linear")

    def __call__(self, x):
        act = _ACTIVATIONS[self.activation]
        for layer in self.layers[:-1]:
            x = act(layer(x))
        return _ACTIVATIONS[self.output_activation](self.layers[-1](x))


class DeepSVDD(AbstractTrainableScore):
    """Squared distance of the network output to the fixed centre.

    Attributes:
        net: Bias-free MLP, event -> (rep_dim,).
        centre: Frozen centre c (rep_dim,), set by ``prepare`` from an initial pass.
        standardizer: Frozen standardisation fitted on background.
        eps: Smallest |c_j| (static).
        standardize: Whether ``prepare`` fits the standardisation (static).
        event_shape: (d,) (static).
        trained: Set by ``fit_score`` (static).
    """

    net: _Net
    centre: Frozen
    standardizer: Standardizer
    eps: float = eqx.field(static=True)
    standardize: bool = eqx.field(static=True)
    event_shape: tuple[int, ...] = eqx.field(static=True)
    trained: bool = eqx.field(static=True)

    def represent(self, x: Array) -> Array:
        """Network output phi(x) (rep_dim,) of one raw event."""
        return self.net(self.standardizer(x))

    def _score(self, x: Array) -> Array:
        return jnp.sum((self.represent(x) - self.centre.get()) ** 2)

    def loss(self, batch: dict, key) -> Array:
        """Mean squared distance of the batch to the centre."""
        return jnp.mean(jax.vmap(self._score)(batch["x"]))

    def prepare(self, data: dict) -> DeepSVDD:
        """Fit the standardisation, then fix the centre from an initial pass."""
        std = fitted_standardizer(data["x"], self.event_shape,
                                  standardize=self.standardize)  # fmt: skip
        model = eqx.tree_at(lambda m: m.standardizer, self, std)
        # Host data moved by device_put and the centre cast on the host (no eager
        # staging / cast programs to compile); the representation is one program
        # cached per model structure (a jit of the bound method compiled anew for
        # every model). The mean stays a separate reduction: fused into the same
        # program, XLA:CPU sums in another order (centre off by 1 ulp).
        x = data["x"] if isinstance(data["x"], jax.Array) else jax.device_put(
            np.asarray(data["x"]))  # fmt: skip
        c = np.asarray(jnp.mean(_representations(model, x), axis=0))
        c = np.where(np.abs(c) < self.eps, np.where(c < 0, -self.eps, self.eps), c)
        c = jax.device_put(c.astype(x.dtype))
        return eqx.tree_at(lambda m: m.centre, model, Frozen(c))


@eqx.filter_jit
def _representations(model: DeepSVDD, x: Array) -> Array:
    """``model.represent`` of every row of ``x`` (n, rep_dim)."""
    return jax.vmap(model.represent)(x)


def make_deep_svdd(
    key,
    *,
    dim: int,
    rep_dim: int = 32,
    width: int = 64,
    depth: int = 1,
    eps: float = 0.1,
    standardize: bool = True,
    bias: bool = False,
    activation: str = "leaky_relu",
    output_activation: str = "linear",
) -> DeepSVDD:
    """Untrained Deep SVDD score for events of shape (dim,).

    Args:
        key: Typed PRNG key.
        dim: Features per event.
        rep_dim: Output (representation) size.
        width: Hidden width.
        depth: Hidden layers. The defaults (one hidden layer of 64, output 32)
            are PyOD's ``DeepSVDD`` network (``hidden_neurons=[64, 32]``), chosen
            over 64-64-8 on a validation split (AUC 0.82-0.90 vs 0.75-0.80 at 5
            epochs, ``benchmarks/anomaly_validation.py``). Train with a small
            learning rate (PyOD and Ruff et al.: 1e-4); the AUC falls when
            trained long, as the representation forgets what the loss ignores.
        eps: Smallest |c_j| of the centre (Ruff et al. use 0.1).
        standardize: Standardise features on background first.
        bias: Give the layers bias terms. Leave False: with biases the network can
            collapse to the constant c (module docstring); True is for tests.
        activation: Hidden activation, ``"leaky_relu"`` (slope 0.1, Ruff et al.'s
            choice) or ``"relu"`` (PyOD's). Bounded activations are not offered:
            they allow the collapse (Ruff et al. 2018, Prop. 3).
        output_activation: ``"linear"`` or ``"relu"`` (PyOD's ``DeepSVDD`` applies
            its hidden activation to the output too). With
            ``activation="relu", output_activation="relu"`` and the default sizes
            this is PyOD 3.6.7's network. On LXe validation data (the recipe of
            ``benchmarks/anomaly_vs_pyod.py`` with data seeds 7, 8, 9; 13.5k
            events, 20 epochs, 4 keys each) its AUC is 0.743 against 0.736 for
            the default, within the seed-to-seed spread; at 2,000 events x 5
            epochs it is 0.845 against 0.882, worse (``benchmarks/RESULTS.md``,
            anomaly7). Hence the default stays leaky ReLU / linear.
    """
    check_key(key)
    dim = check_int(dim, "dim", minimum=1)
    rep_dim = check_int(rep_dim, "rep_dim", minimum=1)
    width = check_int(width, "width", minimum=1)
    depth = check_int(depth, "depth", minimum=0)
    eps = check_real(eps, "eps")
    activation = check_choice(activation, "activation", ("leaky_relu", "relu"))
    output_activation = check_choice(output_activation, "output_activation",
                                     ("linear", "relu"))  # fmt: skip
    if not eps > 0:
        raise ValueError(f"`eps` must be > 0; got {eps}.")
    sizes = [dim] + [width] * depth + [rep_dim]
    keys = jax.random.split(key, len(sizes) - 1)
    layers = tuple(
        eqx.nn.Linear(a, b, use_bias=bool(bias), key=k)
        for a, b, k in zip(sizes[:-1], sizes[1:], keys, strict=True)
    )
    centre = Frozen(jnp.zeros((rep_dim,), jnp.result_type(float)))
    return DeepSVDD(
        net=_Net(layers, activation, output_activation),
        centre=centre,
        standardizer=identity_standardizer((dim,)),
        eps=eps,
        standardize=bool(standardize),
        event_shape=(dim,),
        trained=False,
    )
