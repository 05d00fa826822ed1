"""Neural building blocks (equinox): MLPs, CNN and DeepSet embeddings, whitening.

All modules act on ONE example (no batch axis); batch them with ``jax.vmap``.
An embedding is any callable ``Array -> Array`` of shape ``(out_size,)``.

References:
    He et al. (2016), "Deep Residual Learning for Image Recognition", arXiv:1512.03385.
    Zaheer et al. (2017), "Deep Sets", arXiv:1703.06114.
    Kessy, Lewin & Strimmer (2018), "Optimal Whitening and Decorrelation", The
    American Statistician 72, 309, arXiv:1512.00809 (ZCA whitening).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

__all__ = [
    "MLP",
    "CNNEmbedding",
    "DeepSetEmbedding",
    "FlaxEmbedding",
    "Flatten",
    "ResidualMLP",
    "Standardizer",
    "Whitener",
]


def _check_pos_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive int, got {value!r}")
    return value


class MLP(eqx.Module):
    """Multilayer perceptron acting on one example.

    Args:
        in_size: Input size.
        out_size: Output size.
        width: Hidden width.
        depth: Number of hidden layers (0 gives a linear map).
        activation: Elementwise activation.
        key: PRNG key for initialisation.
    """

    layers: tuple[eqx.nn.Linear, ...]
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(
        self, in_size, out_size, *, width=64, depth=2, activation=jax.nn.gelu, key
    ):
        """Build the MLP."""
        _check_pos_int("in_size", in_size)
        _check_pos_int("out_size", out_size)
        _check_pos_int("width", width)
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise ValueError(f"`depth` must be an int >= 0, got {depth!r}")
        sizes = [in_size] + [width] * depth + [out_size]
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = tuple(
            eqx.nn.Linear(a, b, key=k)
            for a, b, k in zip(sizes[:-1], sizes[1:], keys, strict=True)
        )
        self.activation = activation

    def __call__(self, x: Array) -> Array:
        """Map x of shape (in_size,) to (out_size,)."""
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)


class _ResBlock(eqx.Module):
    norm: eqx.nn.LayerNorm
    lin1: eqx.nn.Linear
    lin2: eqx.nn.Linear
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(self, width, activation, key):
        k1, k2 = jax.random.split(key)
        self.norm = eqx.nn.LayerNorm(width)
        self.lin1 = eqx.nn.Linear(width, width, key=k1)
        lin2 = eqx.nn.Linear(width, width, key=k2)
        # Start close to identity: small last-layer weights.
        self.lin2 = eqx.tree_at(lambda m: m.weight, lin2, lin2.weight * 0.1)
        self.activation = activation

    def __call__(self, x):
        h = self.lin1(self.activation(self.norm(x)))
        return x + self.lin2(self.activation(h))


class ResidualMLP(eqx.Module):
    """Residual MLP (pre-norm residual blocks) acting on one example.

    Args:
        in_size: Input size.
        out_size: Output size.
        width: Width of the residual stream.
        n_blocks: Number of residual blocks.
        activation: Elementwise activation.
        key: PRNG key.
    """

    inp: eqx.nn.Linear
    blocks: tuple[_ResBlock, ...]
    out: eqx.nn.Linear
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(
        self, in_size, out_size, *, width=64, n_blocks=2, activation=jax.nn.gelu, key
    ):
        """Build the residual MLP."""
        _check_pos_int("in_size", in_size)
        _check_pos_int("out_size", out_size)
        _check_pos_int("width", width)
        _check_pos_int("n_blocks", n_blocks)
        keys = jax.random.split(key, n_blocks + 2)
        self.inp = eqx.nn.Linear(in_size, width, key=keys[0])
        self.blocks = tuple(_ResBlock(width, activation, k) for k in keys[1:-1])
        self.out = eqx.nn.Linear(width, out_size, key=keys[-1])
        self.activation = activation

    def __call__(self, x: Array) -> Array:
        """Map x of shape (in_size,) to (out_size,)."""
        h = self.inp(x)
        for b in self.blocks:
            h = b(h)
        return self.out(self.activation(h))


class _ConvBlock(eqx.Module):
    conv1: eqx.nn.Conv2d
    conv2: eqx.nn.Conv2d
    skip: eqx.nn.Conv2d

    def __init__(self, cin, cout, key):
        k1, k2, k3 = jax.random.split(key, 3)
        self.conv1 = eqx.nn.Conv2d(cin, cout, 3, padding=1, key=k1)
        self.conv2 = eqx.nn.Conv2d(cout, cout, 3, padding=1, key=k2)
        self.skip = eqx.nn.Conv2d(cin, cout, 1, key=k3)

    def __call__(self, x):
        h = self.conv2(jax.nn.gelu(self.conv1(jax.nn.gelu(x))))
        return self.skip(x) + h


class CNNEmbedding(eqx.Module):
    """Small ResNet-style CNN embedding for images.

    Each stage is a residual block (two 3x3 convolutions plus 1x1 skip) followed by 2x2
    average pooling while both spatial sizes are >= 2; then a global average pool and a
    linear head.

    Args:
        in_channels: Number of image channels C.
        out_size: Embedding size.
        image_shape: (H, W) of the images.
        channels: Channels of the successive stages.
        key: PRNG key.
    """

    blocks: tuple[_ConvBlock, ...]
    head: eqx.nn.Linear
    in_channels: int = eqx.field(static=True)
    image_shape: tuple[int, int] = eqx.field(static=True)
    pool: tuple[bool, ...] = eqx.field(static=True)

    def __init__(
        self, in_channels, out_size, *, image_shape, channels=(16, 32, 64), key
    ):
        """Build the CNN."""
        _check_pos_int("in_channels", in_channels)
        _check_pos_int("out_size", out_size)
        image_shape = tuple(int(s) for s in image_shape)
        if len(image_shape) != 2 or min(image_shape) < 1:
            raise ValueError(
                f"`image_shape` must be (H, W) positive, got {image_shape}"
            )
        channels = tuple(int(c) for c in channels)
        if len(channels) == 0 or min(channels) < 1:
            raise ValueError(
                f"`channels` must be non-empty positive ints, got {channels}"
            )
        keys = jax.random.split(key, len(channels) + 1)
        cins = (in_channels,) + channels[:-1]
        self.blocks = tuple(
            _ConvBlock(a, b, k)
            for a, b, k in zip(cins, channels, keys[:-1], strict=True)
        )
        self.head = eqx.nn.Linear(channels[-1], out_size, key=keys[-1])
        h, w = image_shape
        pool = []
        for _ in channels:
            p = h >= 2 and w >= 2
            pool.append(p)
            if p:
                h, w = h // 2, w // 2
        self.pool = tuple(pool)
        self.in_channels = in_channels
        self.image_shape = image_shape

    def __call__(self, x: Array) -> Array:
        """Embed an image of shape (C, H, W) (or (H, W) if in_channels == 1)."""
        x = jnp.asarray(x)
        if x.ndim == 2 and self.in_channels == 1:
            x = x[None]
        if x.shape != (self.in_channels, *self.image_shape):
            raise ValueError(
                f"`x` must have shape {(self.in_channels, *self.image_shape)}, "
                f"got {x.shape}"
            )
        for block, p in zip(self.blocks, self.pool, strict=True):
            x = block(x)
            if p:
                c, h, w = x.shape
                x = x[:, : h // 2 * 2, : w // 2 * 2]
                x = x.reshape(c, h // 2, 2, w // 2, 2).mean(axis=(2, 4))
        return self.head(jax.nn.gelu(x.mean(axis=(1, 2))))


class DeepSetEmbedding(eqx.Module):
    """Permutation-invariant DeepSet embedding of a padded, masked set of events.

    Input rows are events ``(n_max, event_dim + 1)`` whose last column is a 0/1 mask.
    phi is applied per event, masked and pooled; log(1 + n) is appended; rho maps
    to the output.
    Padded rows have exactly zero influence.

    Args:
        event_dim: Features per event.
        out_size: Embedding size.
        width: Hidden width of phi and rho.
        depth: Hidden layers of phi and rho.
        pooling: "mean", "sum" or "max".
        key: PRNG key.
    """

    phi: MLP
    rho: MLP
    event_dim: int = eqx.field(static=True)
    pooling: str = eqx.field(static=True)

    def __init__(self, event_dim, out_size, *, width=64, depth=2, pooling="mean", key):
        """Build the DeepSet."""
        _check_pos_int("event_dim", event_dim)
        if pooling not in ("mean", "sum", "max"):
            raise ValueError(
                f"`pooling` must be 'mean', 'sum' or 'max', got {pooling!r}"
            )
        k1, k2 = jax.random.split(key)
        self.phi = MLP(event_dim, width, width=width, depth=depth, key=k1)
        self.rho = MLP(width + 1, out_size, width=width, depth=depth, key=k2)
        self.event_dim = event_dim
        self.pooling = pooling

    def __call__(self, x: Array) -> Array:
        """Embed events of shape (n_max, event_dim + 1) to (out_size,)."""
        x = jnp.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.event_dim + 1:
            raise ValueError(
                f"`x` must have shape (n_max, {self.event_dim + 1}), got {x.shape}"
            )
        mask = x[:, -1] > 0.5
        ev = jnp.where(mask[:, None], x[:, :-1], 0.0)
        h = jax.vmap(self.phi)(ev)
        n = mask.sum().astype(h.dtype)
        if self.pooling == "max":
            pooled = jnp.max(jnp.where(mask[:, None], h, -jnp.inf), axis=0)
            pooled = jnp.where(n > 0, pooled, 0.0)
        else:
            pooled = jnp.where(mask[:, None], h, 0.0).sum(axis=0)
            if self.pooling == "mean":
                pooled = pooled / jnp.maximum(n, 1.0)
        return self.rho(jnp.concatenate([pooled, jnp.log1p(n)[None]]))


class Standardizer(eqx.Module):
    """Affine standardisation z = (x - mean) / std with frozen, data-fitted statistics.

    Attributes:
        mean: Mean over the training set, shape of one example (units of x).
        std: Standard deviation, same shape (units of x).
    """

    # Fitted statistics, not parameters: `jaxdm.train.fit` leaves them untouched (no
    # gradient step, no weight decay).
    __jaxdm_frozen__ = True

    mean: Array
    std: Array

    @classmethod
    def fit(
        cls, data, *, scope: str = "element", min_std: float = 1e-8
    ) -> Standardizer:
        """Fit the statistics over the leading (example) axis of ``data``.

        Args:
            data: Training examples, shape (n, *example_shape).
            scope: ``"element"`` (one mean/std per element of an example) or
                ``"global"`` (one scalar mean/std for all elements, e.g. images).
            min_std: Floor of the standard deviation (constant features).

        Returns:
            A Standardizer with statistics of shape ``example_shape``, computed in
            float64 on the host and stored in the default float dtype.

        Raises:
            ValueError: For empty data, or rows with NaN/inf (statistics of such rows
                would be NaN and poison every later use; select the finite rows first,
                e.g. with ``jaxdm.train.screen_rows``).
        """
        data = np.asarray(data, np.float64)
        if data.ndim < 1 or data.shape[0] < 1:
            raise ValueError(
                f"`data` must have a non-empty leading axis, got {data.shape}"
            )
        bad = ~np.isfinite(data.reshape(data.shape[0], -1)).all(axis=1)
        if bad.any():
            raise ValueError(
                f"`data` has {int(bad.sum())} of {data.shape[0]} rows with NaN/inf "
                f"(first at row {int(np.argmax(bad))}); fit the standardisation on "
                "finite rows only."
            )
        if scope not in ("element", "global"):
            raise ValueError(f"`scope` must be 'element' or 'global', got {scope!r}")
        if not min_std > 0:
            raise ValueError(f"`min_std` must be > 0, got {min_std}")
        if scope == "element":
            mean, std = data.mean(axis=0), data.std(axis=0)
        else:
            mean = np.full(data.shape[1:], data.mean())
            std = np.full(data.shape[1:], data.std())
        dt = jnp.result_type(float)  # cast on the host: no XLA compilation
        std = np.maximum(std, min_std)
        # device_put, not jnp.asarray: no staging program compiled per shape
        return cls(jax.device_put(mean.astype(dt)), jax.device_put(std.astype(dt)))

    def __call__(self, x: Array) -> Array:
        """Standardise one example."""
        m, s = jax.lax.stop_gradient(self.mean), jax.lax.stop_gradient(self.std)
        return (x - m) / s

    def inverse(self, z: Array) -> Array:
        """Undo the standardisation."""
        m, s = jax.lax.stop_gradient(self.mean), jax.lax.stop_gradient(self.std)
        return z * s + m

    def log_abs_det_jacobian(self) -> Array:
        """log|det dz/dx| = -sum(log std) (scalar)."""
        return -jnp.sum(jnp.log(jax.lax.stop_gradient(self.std)))


class Whitener(eqx.Module):
    """ZCA (Mahalanobis) whitening z = W (x - mean), W = Sigma^(-1/2), frozen.

    Per-feature standardisation leaves correlated features correlated: a direction
    along which the training data hardly vary (e.g. log10 cS2 at fixed cS1 in a
    xenon TPC's ER band) keeps its tiny variance, and a distance-based score barely
    sees it. Whitening gives every direction unit variance. ZCA is the whitening
    closest to the input (Kessy, Lewin & Strimmer 2018): each whitened feature
    stays tied to its original one. Computed with numpy on the host (a d x d
    eigendecomposition once per fit), not with a library: scikit-learn's
    ``PCA(whiten=True)`` rotates to principal axes (PCA, not ZCA whitening) and is a
    dev-only dependency here.

    Attributes:
        mean: Mean over the training set, shape (d,) (units of x).
        matrix: W, shape (d, d) (units of 1/x), symmetric.
        inverse_matrix: W^-1 = Sigma^(1/2), shape (d, d) (units of x).
    """

    __jaxdm_frozen__ = True

    mean: Array
    matrix: Array
    inverse_matrix: Array

    @classmethod
    def identity(cls, dim: int) -> Whitener:
        """The identity map on vectors of shape (dim,) (mean 0, W = 1)."""
        dim = _check_pos_int("dim", dim)
        dt = jnp.result_type(float)
        eye = np.eye(dim, dtype=dt)
        return cls(*(jax.device_put(a) for a in (np.zeros(dim, dt), eye, eye)))

    @classmethod
    def fit(cls, data, *, min_std: float = 1e-8) -> Whitener:
        """Fit the mean and W = Sigma^(-1/2) over the rows of ``data`` (n, d).

        Args:
            data: Training vectors, shape (n, d), n >= 2.
            min_std: Floor of the standard deviation along each principal axis
                (sqrt of the covariance's eigenvalues), as ``Standardizer``'s
                ``min_std``: a constant or exactly collinear direction is scaled by
                1/min_std rather than by infinity.

        Returns:
            A Whitener computed in float64 on the host, stored in the default float
            dtype.

        Raises:
            ValueError: For data not of shape (n, d) with n >= 2, rows with NaN/inf,
                or ``min_std <= 0``.
        """
        data = np.asarray(data, np.float64)
        if data.ndim != 2 or data.shape[0] < 2:
            raise ValueError(
                f"`data` must have shape (n, d) with n >= 2, got {data.shape}"
            )
        bad = ~np.isfinite(data).all(axis=1)
        if bad.any():
            raise ValueError(
                f"`data` has {int(bad.sum())} of {data.shape[0]} rows with NaN/inf "
                f"(first at row {int(np.argmax(bad))}); fit the whitening on "
                "finite rows only."
            )
        if not min_std > 0:
            raise ValueError(f"`min_std` must be > 0, got {min_std}")
        mean = data.mean(axis=0)
        cov = np.cov(data, rowvar=False, bias=True).reshape(data.shape[1], -1)
        var, vec = np.linalg.eigh(cov)
        std = np.maximum(np.sqrt(np.maximum(var, 0.0)), min_std)
        matrix = (vec / std) @ vec.T
        inverse = (vec * std) @ vec.T
        dt = jnp.result_type(float)  # cast on the host: no XLA compilation
        return cls(*(jax.device_put(a.astype(dt)) for a in (mean, matrix, inverse)))

    def __call__(self, x: Array) -> Array:
        """Whiten one vector (d,)."""
        m, w = jax.lax.stop_gradient(self.mean), jax.lax.stop_gradient(self.matrix)
        return w @ (x - m)

    def inverse(self, z: Array) -> Array:
        """Undo the whitening of one vector (d,)."""
        m = jax.lax.stop_gradient(self.mean)
        return jax.lax.stop_gradient(self.inverse_matrix) @ z + m

    def log_abs_det_jacobian(self) -> Array:
        """log|det dz/dx| = log|det W| (scalar)."""
        return jnp.linalg.slogdet(jax.lax.stop_gradient(self.matrix))[1]


class Flatten(eqx.Module):
    """Identity embedding: one observation flattened to a vector."""

    def __call__(self, x: Array) -> Array:
        """Return ``x`` flattened, shape (x.size,)."""
        return jnp.ravel(x)


class FlaxEmbedding(eqx.Module):
    """Adapter letting a flax module act as an embedding (params are trainable leaves).

    Use ``FlaxEmbedding(linen_module, params)`` for flax.linen (``params`` from
    ``init``),
    or ``FlaxEmbedding.from_nnx(nnx_module)`` for flax.nnx.
    """

    params: Any
    apply_fn: Callable = eqx.field(static=True)

    def __init__(self, module_or_apply, params):
        """Wrap a linen module (or any ``apply(params, x)`` function) and its params."""
        apply = getattr(module_or_apply, "apply", module_or_apply)
        if not callable(apply):
            raise TypeError(
                "`module_or_apply` must be a linen module or callable, "
                f"got {type(module_or_apply)}"
            )
        self.apply_fn = apply
        self.params = params

    @classmethod
    def from_nnx(cls, module) -> FlaxEmbedding:
        """Wrap a flax.nnx module via ``nnx.split``; its state becomes trainable."""
        from flax import nnx

        graphdef, state = nnx.split(module)

        def apply(st, x):
            return nnx.merge(graphdef, st)(x)

        return cls(apply, state)

    def __call__(self, x: Array) -> Array:
        """Apply the wrapped module to one example."""
        return self.apply_fn(self.params, x)
