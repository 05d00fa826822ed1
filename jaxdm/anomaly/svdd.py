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

Preprocessing. The score is a distance, so the input's scale along every direction
matters. By default the features are ZCA-whitened on background
(``jaxdm.nn.Whitener``: unit variance along every direction, not only along every
feature axis). On xenon summary features (cS1, log10 cS2, r, z, S2 width) the ER band
is thin in log10 cS2 at fixed cS1, the direction in which nuclear recoils differ (50
GeV WIMP recoils sit 3.2 background sd off along it); after per-feature
standardisation that direction has variance 0.12 against 1.0-1.97 for the cS1 + cS2,
r and z / S2-width directions, and the distance is dominated by the wide ones.
Whitening raised the AUC of 50 GeV WIMP recoils against ER background from 0.71 to
0.76 at 13.5k events x 20 epochs and from 0.86-0.89 to 0.90-0.92 at 2,000 x 5
(``benchmarks/RESULTS.md``, eighth session).
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from .._args import check_choice, check_int, check_real
from .._checks import check_key
from ..nn import Standardizer, Whitener
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
        standardizer: Frozen preprocessing fitted on background: a ``Whitener``
            (``standardize="whiten"``) or a ``Standardizer``.
        eps: Smallest |c_j| (static).
        standardize: ``"whiten"``, True (per-feature) or False (none) (static).
        event_shape: (d,) (static).
        trained: Set by ``fit_score`` (static).
    """

    net: _Net
    centre: Frozen
    standardizer: Standardizer | Whitener
    eps: float = eqx.field(static=True)
    # XLA:CPU's fusion emitters cost this small network's epoch more compile time
    # than they save run time: without them a first default-size fit (13.5k x 5,
    # 20 epochs, after an AE's) took 0.755 s instead of 0.81 s (medians of 4
    # alternating processes), a later fit 0.31 s instead of 0.29 s
    # (benchmarks/RESULTS.md, eighth session). Not used for the AE and VAE, whose
    # later fits it slowed by 10-20 %.
    cpu_compiler_options: ClassVar[dict] = {"xla_cpu_use_fusion_emitters": False}
    standardize: bool | str = eqx.field(static=True)
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
        """Fit the preprocessing, then fix the centre from an initial pass."""
        std = fitted_standardizer(data["x"], self.event_shape,
                                  standardize=self.standardize)  # fmt: skip
        model = eqx.tree_at(lambda m: m.standardizer, self, std)
        # Host data moved by device_put and the centre cast on the host (no eager
        # staging / cast programs to compile); the initial pass and its mean are one
        # program cached per model structure (a jit of the bound method would
        # compile anew for every model).
        x = data["x"] if isinstance(data["x"], jax.Array) else jax.device_put(
            np.asarray(data["x"]))  # fmt: skip
        c = np.asarray(_mean_representation(model, x))
        c = np.where(np.abs(c) < self.eps, np.where(c < 0, -self.eps, self.eps), c)
        c = jax.device_put(c.astype(x.dtype))
        return eqx.tree_at(lambda m: m.centre, model, Frozen(c))


@eqx.filter_jit
def _mean_representation(model: DeepSVDD, x: Array) -> Array:
    """Mean of ``model.represent`` over the rows of ``x`` (rep_dim,)."""
    return jnp.mean(jax.vmap(model.represent)(x), axis=0)


def make_deep_svdd(
    key,
    *,
    dim: int,
    rep_dim: int = 32,
    width: int = 64,
    depth: int = 1,
    eps: float = 0.1,
    standardize: bool | str = "whiten",
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
        standardize: Preprocessing fitted on background: ``"whiten"`` (ZCA
            whitening, the default; module docstring), True (standardise each
            feature: PyOD's ``DeepSVDD`` preprocessing) or False (none).
        bias: Give the layers bias terms. Leave False: with biases the network can
            collapse to the constant c (module docstring); True is for tests.
        activation: Hidden activation, ``"leaky_relu"`` (slope 0.1, Ruff et al.'s
            choice) or ``"relu"`` (PyOD's). Bounded activations are not offered:
            they allow the collapse (Ruff et al. 2018, Prop. 3).
        output_activation: ``"linear"`` or ``"relu"`` (PyOD's ``DeepSVDD`` applies
            its hidden activation to the output too). With
            ``activation="relu", output_activation="relu"`` and the default sizes
            this is PyOD 3.6.7's network. With standardised inputs, on LXe
            validation data (the recipe of
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
    if isinstance(standardize, str) and standardize != "whiten":
        raise ValueError(
            f"`standardize` must be 'whiten', True or False; got {standardize!r}."
        )
    standardize = standardize if standardize == "whiten" else bool(standardize)
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
        standardizer=(
            Whitener.identity(dim)
            if standardize == "whiten"
            else identity_standardizer((dim,))
        ),  # fmt: skip
        eps=eps,
        standardize=standardize,
        event_shape=(dim,),
        trained=False,
    )
