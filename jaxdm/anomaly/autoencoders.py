r"""Autoencoder and beta-VAE ("different") scores, for vectors and for images.

Following Herrero-Garcia, Patrick & Scaffidi (arXiv:2110.12248), who trained both on
XENON1T-like background, the autoencoder's score is the reconstruction error
:math:`\frac{1}{D}\sum_i (x_i - y_i)^2` of the (standardised) event, and the
beta-VAE's training loss and score are, exactly as written in that paper,

.. math::

    L = \frac{1}{D}\sum_i (x_i - y_i)^2
        + \beta \sum_j \left(\sigma_j^2 + \mu_j^2 - \log\sigma_j - 1\right),

with :math:`(\mu, \log\sigma)` the encoder's outputs and :math:`y` the decoding of
:math:`z = \mu + \sigma\epsilon` (training) or of :math:`z = \mu` (the score, which is
then deterministic). Note that this regulariser has :math:`-\log\sigma` where the
Gaussian KL divergence has :math:`-\log\sigma^2` (and a factor 1/2); it is the paper's
expression, kept as published. The image versions use strided convolutions
(:class:`ConvEncoder`, :class:`ConvDecoder`) with the same losses.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from .._args import check_choice, check_int, check_real
from .._checks import check_key
from ..nn import Standardizer
from ._base import AbstractTrainableScore, fitted_standardizer, identity_standardizer

__all__ = [
    "Autoencoder",
    "ConvDecoder",
    "ConvEncoder",
    "DropoutMLP",
    "VariationalAutoencoder",
    "dropout_masks",
    "make_autoencoder",
    "make_conv_autoencoder",
    "make_conv_vae",
    "make_vae",
]


class ConvEncoder(eqx.Module):
    """Strided-convolution encoder of a (C, H, W) image to a vector.

    Each stage is a 3x3 convolution with stride 2 (halving H and W) and a GELU; a
    linear head maps the flattened feature map to ``out_size``.
    """

    convs: tuple[eqx.nn.Conv2d, ...]
    head: eqx.nn.Linear

    def __init__(self, image_shape, out_size, *, channels=(16, 32), key):
        """Build the encoder for images of shape ``image_shape`` = (C, H, W)."""
        c, h, w = image_shape
        keys = jax.random.split(key, len(channels) + 1)
        convs, cin = [], c
        for ch, k in zip(channels, keys[:-1], strict=True):
            convs.append(eqx.nn.Conv2d(cin, ch, 3, stride=2, padding=1, key=k))
            cin, h, w = ch, (h + 1) // 2, (w + 1) // 2
        self.convs = tuple(convs)
        self.head = eqx.nn.Linear(cin * h * w, out_size, key=keys[-1])

    def __call__(self, x: Array) -> Array:
        """Encode one image (C, H, W) to (out_size,)."""
        for conv in self.convs:
            x = jax.nn.gelu(conv(x))
        return self.head(x.ravel())


class ConvDecoder(eqx.Module):
    """Transposed-convolution decoder of a vector to a (C, H, W) image.

    A linear map to a (channels[0], H / 2^k, W / 2^k) feature map, then k stages of
    4x4 transposed convolutions with stride 2 (doubling H and W); H and W must be
    divisible by 2^k.
    """

    head: eqx.nn.Linear
    deconvs: tuple[eqx.nn.ConvTranspose2d, ...]
    start: tuple[int, int, int] = eqx.field(static=True)

    def __init__(self, image_shape, in_size, *, channels=(32, 16), key):
        """Build the decoder for images of shape ``image_shape`` = (C, H, W)."""
        c, h, w = image_shape
        k = len(channels)
        if h % 2**k or w % 2**k:
            raise ValueError(
                f"`image_shape` H and W must be divisible by 2**{k} = {2**k} for "
                f"{k} decoder stages; got {tuple(image_shape)}."
            )
        keys = jax.random.split(key, k + 1)
        self.start = (channels[0], h // 2**k, w // 2**k)
        self.head = eqx.nn.Linear(in_size, int(jnp.prod(jnp.array(self.start))),
                                  key=keys[0])  # fmt: skip
        outs = (*channels[1:], c)
        self.deconvs = tuple(
            eqx.nn.ConvTranspose2d(a, b, 4, stride=2, padding=1, key=kk)
            for a, b, kk in zip(channels, outs, keys[1:], strict=True)
        )

    def __call__(self, z: Array) -> Array:
        """Decode (in_size,) to one image (C, H, W)."""
        x = jax.nn.gelu(self.head(z)).reshape(self.start)
        for i, deconv in enumerate(self.deconvs):
            x = deconv(x)
            if i < len(self.deconvs) - 1:
                x = jax.nn.gelu(x)
        return x


def _mse(x: Array, y: Array) -> Array:
    return jnp.mean((x - y) ** 2)


class DropoutMLP(eqx.Module):
    """MLP on one example with (inverted) dropout after every hidden activation.

    Dropout is applied only when a ``key`` is passed (training); without one the
    network is deterministic (scoring), as in PyTorch's ``train()``/``eval()``
    modes that PyOD's ``AutoEncoder`` relies on.

    Attributes:
        layers: Linear layers in -> width (x depth) -> out.
        rate: Probability of zeroing a hidden unit in training (static, in [0, 1)).
        activation: Elementwise hidden activation (static).
    """

    layers: tuple[eqx.nn.Linear, ...]
    rate: float = eqx.field(static=True)
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(self, in_size, out_size, *, width, depth, rate=0.0,
                 activation=jax.nn.gelu, key):  # fmt: skip
        """Build the network (sizes as for ``jaxdm.nn.MLP``)."""
        sizes = [in_size] + [width] * depth + [out_size]
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = tuple(
            eqx.nn.Linear(a, b, key=k)
            for a, b, k in zip(sizes[:-1], sizes[1:], keys, strict=True)
        )
        self.rate = float(rate)
        self.activation = activation

    def masks(self, key, n: int) -> tuple[Array, ...]:
        """Dropout multipliers for ``n`` examples: per hidden layer (n, width).

        Each entry is 0 (dropped) or ``1 / keep`` with ``keep`` the keep
        probability, so the expected activation is unchanged (inverted dropout).
        Every unit is dropped independently with probability :attr:`drop_prob`
        (``rate`` on a 2**-16 grid, see :func:`dropout_masks`, which draws the
        masks of several networks at once).
        """
        return dropout_masks(key, n, (self,))[0]

    def _threshold(self) -> int:
        """Drop threshold on 16-bit draws: round(rate * 2**16), at most 2**16 - 1."""
        return min(round(self.rate * 65536), 65535)

    @property
    def drop_prob(self) -> float:
        """The exact drop probability of :meth:`masks`: ``rate`` on the 2**-16 grid."""
        return self._threshold() / 65536

    def __call__(self, x: Array, masks: tuple[Array, ...] | None = None) -> Array:
        """Map one example (in_size,) to (out_size,).

        Args:
            x: One example (in_size,).
            masks: This example's dropout multipliers (one (width,) per hidden
                layer, from :meth:`masks`) in training; None (no dropout) to score.
        """
        for i, layer in enumerate(self.layers[:-1]):
            x = self.activation(layer(x))
            if masks is not None:
                x = x * masks[i]
        return self.layers[-1](x)


def dropout_masks(key, n: int, nets) -> tuple[tuple[Array, ...], ...]:
    """Dropout multipliers of several :class:`DropoutMLP` networks from one draw.

    Args:
        key: Typed PRNG key.
        n: Examples (rows) in the minibatch.
        nets: The networks (a sequence of :class:`DropoutMLP`).

    Returns:
        Per network, per hidden layer, an (n, width) array of 0 (dropped) and
        ``1 / (1 - p)``, with ``p = net.drop_prob``: ``net.rate`` rounded to a
        multiple of 2**-16 (0.2 -> 0.199997), because each decision compares 16
        random bits with ``round(rate * 2**16)``, so that one 32-bit word of
        ``jax.random.bits`` serves two units. Units and examples are independent.

    On CPU the random bits are most of the cost of a training step of these small
    networks, and that cost grows with the words drawn and the number of draws:
    16-bit decisions and one draw for the encoder and decoder together cut the
    mask cost of the benchmark AE's step from 0.74 to ~0.25 s CPU per 4,220 steps
    (``benchmarks/RESULTS.md``, anomaly6). Per-example keys would cost far more.
    """
    nets = tuple(nets)
    dt = nets[0].layers[-1].weight.dtype
    widths = [[h.out_features for h in net.layers[:-1]] for net in nets]
    total = sum(sum(w) for w in widths)
    words = jax.random.bits(key, (n, (total + 1) // 2), jnp.uint32)
    half = jax.lax.bitcast_convert_type(words, jnp.uint16)  # (n, words, 2)
    half = half.reshape(n, -1)
    out, start = [], 0
    for net, ws in zip(nets, widths, strict=True):
        threshold = net._threshold()
        scale = 65536.0 / (65536 - threshold)  # 1 / keep probability, exact
        layers = []
        for w in ws:
            bits = half[:, start : start + w]
            keep = bits >= jnp.uint16(threshold)
            layers.append(jnp.where(keep, jnp.asarray(scale, dt), jnp.zeros((), dt)))
            start += w
        out.append(tuple(layers))
    return tuple(out)


class Autoencoder(AbstractTrainableScore):
    """Reconstruction error of a (standardised) event: mean (x - y)^2.

    Attributes:
        encoder: Event -> latent (``latent_dim``,).
        decoder: Latent -> event.
        standardizer: Frozen standardisation fitted on background.
        standardize: Whether ``prepare`` fits it (static).
        scope: ``"element"`` (vectors) or ``"global"`` (images) standardisation.
        event_shape: Shape of one event (static).
        trained: Set by ``fit_score`` (static).
    """

    encoder: Callable
    decoder: Callable
    standardizer: Standardizer
    standardize: bool = eqx.field(static=True)
    scope: str = eqx.field(static=True)
    event_shape: tuple[int, ...] = eqx.field(static=True)
    trained: bool = eqx.field(static=True)

    def reconstruct(self, x: Array) -> Array:
        """Reconstruction y of one event, in standardised units."""
        return self.decoder(self.encoder(self.standardizer(x)))

    def _score(self, x: Array) -> Array:
        return _mse(self.standardizer(x), self.reconstruct(x))

    def _train_error(self, x: Array, enc_masks, dec_masks) -> Array:
        """Reconstruction error of one event with dropout (``DropoutMLP`` nets)."""
        xs = self.standardizer(x)
        return _mse(xs, self.decoder(self.encoder(xs, enc_masks), dec_masks))

    def loss(self, batch: dict, key) -> Array:
        """Mean reconstruction error of the batch (with dropout if the nets have it)."""
        x = batch["x"]
        if _has_dropout(self.encoder) and _has_dropout(self.decoder):
            enc_m, dec_m = dropout_masks(key, x.shape[0], (self.encoder, self.decoder))
            return jnp.mean(jax.vmap(self._train_error)(x, enc_m, dec_m))
        return jnp.mean(jax.vmap(self._score)(x))

    def prepare(self, data: dict) -> Autoencoder:
        """Fit the standardisation on background."""
        std = fitted_standardizer(
            data["x"], self.event_shape, standardize=self.standardize, scope=self.scope
        )
        return eqx.tree_at(lambda m: m.standardizer, self, std)


def _has_dropout(net) -> bool:
    return isinstance(net, DropoutMLP) and net.rate > 0


class VariationalAutoencoder(AbstractTrainableScore):
    r"""beta-VAE score of arXiv:2110.12248 (module docstring): MSE + beta * KL term.

    Attributes:
        encoder: Event -> (2 * latent_dim,): mu and log sigma.
        decoder: Latent -> event.
        standardizer: Frozen standardisation fitted on background.
        beta: Weight of the latent regulariser (static, >= 0).
        latent_dim: Latent size (static).
        standardize, scope, event_shape, trained: As for :class:`Autoencoder`.
        score_terms: ``"loss"`` (default): the score is the training loss
            ``MSE + beta * KL`` at ``z = mu``, as in arXiv:2110.12248;
            ``"reconstruction"``: the MSE term alone at ``z = mu`` (PyOD's ``VAE``
            scores the reconstruction distance only). Static.
    """

    encoder: Callable
    decoder: Callable
    standardizer: Standardizer
    beta: float = eqx.field(static=True)
    latent_dim: int = eqx.field(static=True)
    standardize: bool = eqx.field(static=True)
    scope: str = eqx.field(static=True)
    event_shape: tuple[int, ...] = eqx.field(static=True)
    trained: bool = eqx.field(static=True)
    score_terms: str = eqx.field(static=True, default="loss")

    def encode(self, x: Array) -> tuple[Array, Array]:
        """(mu, log sigma), each (latent_dim,), of one raw event."""
        h = self.encoder(self.standardizer(x))
        return h[: self.latent_dim], h[self.latent_dim :]

    def _terms(self, x: Array, eps: Array, enc_masks=None, dec_masks=None):
        """(MSE, KL term) of one event; dropout masks only for ``DropoutMLP`` nets."""
        xs = self.standardizer(x)
        h = self.encoder(xs) if enc_masks is None else self.encoder(xs, enc_masks)
        mu, log_sigma = h[: self.latent_dim], h[self.latent_dim :]
        sigma = jnp.exp(log_sigma)
        z = mu + sigma * eps
        y = self.decoder(z) if dec_masks is None else self.decoder(z, dec_masks)
        kl = jnp.sum(sigma**2 + mu**2 - log_sigma - 1.0)
        return _mse(xs, y), kl

    def _loss_one(self, x: Array, eps: Array, enc_masks=None, dec_masks=None):
        mse, kl = self._terms(x, eps, enc_masks, dec_masks)
        return mse + self.beta * kl

    def _score(self, x: Array) -> Array:
        mse, kl = self._terms(x, jnp.zeros((self.latent_dim,), x.dtype))
        return mse if self.score_terms == "reconstruction" else mse + self.beta * kl

    def loss(self, batch: dict, key) -> Array:
        """Mean loss with reparameterised latent samples z = mu + sigma * eps."""
        x = batch["x"]
        if _has_dropout(self.encoder) and _has_dropout(self.decoder):
            key, k_drop = jax.random.split(key)
            eps = jax.random.normal(key, (x.shape[0], self.latent_dim), x.dtype)
            enc_m, dec_m = dropout_masks(k_drop, x.shape[0],
                                         (self.encoder, self.decoder))  # fmt: skip
            return jnp.mean(jax.vmap(self._loss_one)(x, eps, enc_m, dec_m))
        eps = jax.random.normal(key, (x.shape[0], self.latent_dim), x.dtype)
        return jnp.mean(jax.vmap(self._loss_one)(x, eps))

    def prepare(self, data: dict) -> VariationalAutoencoder:
        """Fit the standardisation on background."""
        std = fitted_standardizer(
            data["x"], self.event_shape, standardize=self.standardize, scope=self.scope
        )
        return eqx.tree_at(lambda m: m.standardizer, self, std)


def _check_common(key, latent_dim):
    check_key(key)
    return check_int(latent_dim, "latent_dim", minimum=1)


def make_autoencoder(
    key, *, dim: int, latent_dim: int = 2, width: int = 64, depth: int = 2,
    dropout: float = 0.2, standardize: bool = True,
) -> Autoencoder:  # fmt: skip
    """Untrained MLP autoencoder score for events of shape (dim,).

    Args:
        key: Typed PRNG key.
        dim: Features per event.
        latent_dim: Bottleneck size. Choose it on a validation split; it should
            hold the background's independent degrees of freedom (for the LXe
            summary features of ``benchmarks/anomaly_vs_pyod.py``: energy, r, z,
            hence 3; with 2 the AUC drops from ~0.95 to ~0.75, see
            ``benchmarks/anomaly_validation.py``).
        width: Hidden width of encoder and decoder.
        depth: Hidden layers of encoder and decoder.
        dropout: Probability of zeroing each hidden unit in training (in [0, 1);
            0 = none). Default 0.2, PyOD's ``AutoEncoder`` default: without it the
            network also learns to reconstruct off-background events and the AUC
            falls with training (validation AUC 0.91-0.94 -> 0.78-0.87 from 5 to
            20 epochs at latent 4; with 0.2: 0.95 -> 0.93).
        standardize: Standardise features on background first.
    """
    latent_dim = _check_common(key, latent_dim)
    dim = check_int(dim, "dim", minimum=1)
    width = check_int(width, "width", minimum=1)
    depth = check_int(depth, "depth", minimum=0)
    dropout = _check_dropout(dropout)
    k1, k2 = jax.random.split(key)
    enc = DropoutMLP(dim, latent_dim, width=width, depth=depth, rate=dropout, key=k1)
    dec = DropoutMLP(latent_dim, dim, width=width, depth=depth, rate=dropout, key=k2)
    return Autoencoder(
        encoder=enc, decoder=dec, standardizer=identity_standardizer((dim,)),
        standardize=bool(standardize), scope="element", event_shape=(dim,),
        trained=False,
    )  # fmt: skip


def make_vae(
    key, *, dim: int, latent_dim: int = 2, beta: float = 1.0, width: int = 64,
    depth: int = 2, dropout: float = 0.0, score_terms: str = "loss",
    standardize: bool = True,
) -> VariationalAutoencoder:  # fmt: skip
    """Untrained MLP beta-VAE score (arXiv:2110.12248 loss) for events (dim,).

    Args:
        key: Typed PRNG key.
        dim: Features per event.
        latent_dim: Latent size.
        beta: Weight of the latent regulariser (>= 0). With this loss (MSE
            averaged over the D features) beta acts like a Gaussian decoder noise
            variance ``beta * D`` on the (standardised) features, and, as in
            probabilistic PCA (Lucas et al., arXiv:1911.02469), a latent direction
            is used only where the data's variance (a covariance eigenvalue)
            exceeds it; otherwise the latent collapses onto the prior and the
            score is the distance to the mean. The LXe features of
            ``benchmarks/anomaly_vs_pyod.py`` (D = 5) have standardised
            eigenvalues 0.04, 0.12, 1.0, 1.9, 2.0, so beta 1 (beta * D = 5)
            collapses completely (held-out background MSE 1.00, AUC 0.855 at
            latent 2 or 3), beta 0.3 nearly (0.862), while 0.1 / 0.03 / 0.01 keep
            the three large directions (AUC 0.927 / 0.939 / 0.941 at latent 3;
            13,500 events, 20 epochs, validation seed). Choose beta * D below the
            variances to be modelled; the benchmark uses 0.03 (0.01 was unstable
            at 2,000 events).
        width: Hidden width of encoder and decoder.
        depth: Hidden layers of encoder and decoder.
        dropout: Probability of zeroing each hidden unit in training (in [0, 1);
            0 = none, the default). PyOD's ``VAE`` uses 0.2 (and, with its default
            ``capacity=0``, no KL term at all); see ``benchmarks/anomaly_validation.py``
            for the validation-split comparison on LXe features.
        score_terms: ``"loss"`` (MSE + beta * KL at z = mu, arXiv:2110.12248) or
            ``"reconstruction"`` (the MSE alone at z = mu).
        standardize: Standardise features on background first.
    """
    latent_dim = _check_common(key, latent_dim)
    dim = check_int(dim, "dim", minimum=1)
    width = check_int(width, "width", minimum=1)
    depth = check_int(depth, "depth", minimum=0)
    beta = _check_beta(beta)
    dropout = _check_dropout(dropout)
    score_terms = check_choice(score_terms, "score_terms", ("loss", "reconstruction"))
    k1, k2 = jax.random.split(key)
    enc = DropoutMLP(dim, 2 * latent_dim, width=width, depth=depth, rate=dropout,
                     key=k1)  # fmt: skip
    dec = DropoutMLP(latent_dim, dim, width=width, depth=depth, rate=dropout, key=k2)
    return VariationalAutoencoder(
        encoder=enc, decoder=dec, standardizer=identity_standardizer((dim,)),
        beta=beta, latent_dim=latent_dim, standardize=bool(standardize),
        scope="element", event_shape=(dim,), trained=False, score_terms=score_terms,
    )  # fmt: skip


def _check_dropout(dropout):
    dropout = check_real(dropout, "dropout")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"`dropout` must lie in [0, 1); got {dropout}.")
    return dropout


def _check_beta(beta):
    beta = check_real(beta, "beta")
    if beta < 0:
        raise ValueError(f"`beta` must be >= 0; got {beta}.")
    return beta


def _image_shape(image_shape):
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"`image_shape` must be (C, H, W) positive; got {shape}.")
    return shape


def make_conv_autoencoder(
    key, *, image_shape, latent_dim: int = 8, channels=(16, 32),
    standardize: bool = True,
) -> Autoencoder:  # fmt: skip
    """Untrained convolutional autoencoder score for images (C, H, W).

    Args:
        key: Typed PRNG key.
        image_shape: (C, H, W); H and W divisible by 2**len(channels).
        latent_dim: Bottleneck size.
        channels: Channels of the encoder stages (the decoder mirrors them).
        standardize: Standardise with one global mean/std fitted on background.
    """
    latent_dim = _check_common(key, latent_dim)
    shape = _image_shape(image_shape)
    k1, k2 = jax.random.split(key)
    enc = ConvEncoder(shape, latent_dim, channels=tuple(channels), key=k1)
    dec = ConvDecoder(shape, latent_dim, channels=tuple(channels)[::-1], key=k2)
    return Autoencoder(
        encoder=enc, decoder=dec, standardizer=identity_standardizer(shape),
        standardize=bool(standardize), scope="global", event_shape=shape,
        trained=False,
    )  # fmt: skip


def make_conv_vae(
    key, *, image_shape, latent_dim: int = 8, beta: float = 1.0, channels=(16, 32),
    standardize: bool = True,
) -> VariationalAutoencoder:  # fmt: skip
    """Untrained convolutional beta-VAE score for images (C, H, W).

    Args:
        key: Typed PRNG key.
        image_shape: (C, H, W); H and W divisible by 2**len(channels).
        latent_dim: Latent size.
        beta: Weight of the latent regulariser (>= 0).
        channels: Channels of the encoder stages (the decoder mirrors them).
        standardize: Standardise with one global mean/std fitted on background.
    """
    latent_dim = _check_common(key, latent_dim)
    shape = _image_shape(image_shape)
    beta = _check_beta(beta)
    k1, k2 = jax.random.split(key)
    enc = ConvEncoder(shape, 2 * latent_dim, channels=tuple(channels), key=k1)
    dec = ConvDecoder(shape, latent_dim, channels=tuple(channels)[::-1], key=k2)
    return VariationalAutoencoder(
        encoder=enc, decoder=dec, standardizer=identity_standardizer(shape),
        beta=beta, latent_dim=latent_dim, standardize=bool(standardize),
        scope="global", event_shape=shape, trained=False,
    )  # fmt: skip
