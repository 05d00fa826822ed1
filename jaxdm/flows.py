"""Conditional normalizing flows (MAF, neural spline flows) with bounded-support priors.

Elementwise transforms are built inside the methods from the outputs of equinox MADE
conditioners (Germain et al. 2015, arXiv:1502.03509), never stored as fields. Layers:
masked autoregressive affine (Papamakarios et al. 2017, arXiv:1705.07057; distrax's
``ScalarAffine``) or rational-quadratic splines on [-B, B], identity outside (Durkan et
al. 2019, arXiv:1906.04032; ``jaxdm._rqspline``, distrax's parameterisation computed
batched, see that module for why), autoregressive or coupling, with order reversal
between layers. A coupling layer's conditioner outputs parameters for its transformed
half only. The flow output is mapped onto the prior support by a fixed bijector
(sigmoid+affine for a box, exp for positive), so samples never leave it.

Direction convention: ``forward`` maps base noise z (standard normal) to theta;
``inverse`` maps theta to z (one pass per layer, used by ``log_prob``). Autoregressive
sampling needs theta_dim sequential passes per layer (``lax.fori_loop``); coupling NSF
samples in one pass per layer.
"""

from __future__ import annotations

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ._checks import check_key
from ._rqspline import rq_forward, rq_inverse

with warnings.catch_warnings():
    # distrax imports tensorflow_probability's JAX backend, which touches
    # ``jax.core.pytype_aval_mappings`` at import time and makes every run print
    # "DeprecationWarning: jax.core.pytype_aval_mappings is deprecated" (jax >= 0.4.36;
    # the warning is TFP's to fix, not ours). Silence exactly that message, here only.
    warnings.filterwarnings(
        "ignore",
        message=r"jax\.core\.pytype_aval_mappings is deprecated",
        category=DeprecationWarning,
    )
    import distrax

__all__ = [
    "ACTIVATIONS",
    "Box",
    "ConditionalFlow",
    "Positive",
    "Real",
    "make_maf",
    "make_nsf",
]


class Real(eqx.Module):
    """Unbounded support R^d (identity bijector).

    Supports are fixed by the prior, never learned: every support class sets
    ``__jaxdm_frozen__ = True``, so ``jaxdm.train.fit`` leaves its leaves alone.
    """

    __jaxdm_frozen__ = True

    def bijector(self):
        """Return the identity bijector on R^d (event_ndims 1)."""
        return distrax.Block(
            distrax.Lambda(
                lambda x: x,
                lambda y: y,
                lambda x: jnp.zeros_like(x),
                lambda y: jnp.zeros_like(y),
                event_ndims_in=0,
            ),
            1,
        )

    def contains(self, theta: Array) -> Array:
        """True when all entries of theta are finite."""
        return jnp.all(jnp.isfinite(theta))


class Box(eqx.Module):
    """Box support prod_i [low_i, high_i] (sigmoid then affine).

    The bounds are the prior's, never learned: the class is marked frozen
    (``__jaxdm_frozen__``, skipped by ``jaxdm.train.fit``, weight decay included) and
    the bijector reads them through ``jax.lax.stop_gradient``, so a hand-written
    training loop gets zero gradients for them too.

    Attributes:
        low: Lower bounds, shape (d,) (units of theta).
        high: Upper bounds, shape (d,) (units of theta).
    """

    __jaxdm_frozen__ = True

    low: Array
    high: Array

    def __init__(self, low, high):
        """Validate and store the bounds."""
        low = jnp.atleast_1d(jnp.asarray(low, dtype=float))
        high = jnp.atleast_1d(jnp.asarray(high, dtype=float))
        if low.shape != high.shape or low.ndim != 1:
            raise ValueError(
                "`low` and `high` must be 1-D of equal shape, "
                f"got {low.shape}, {high.shape}"
            )
        if not bool(jnp.all(high > low)):
            raise ValueError(
                f"`high` must exceed `low` elementwise, got low={low}, high={high}"
            )
        self.low, self.high = low, high

    def bijector(self):
        """Return theta = low + (high - low) * sigmoid(u) (event_ndims 1)."""
        low = jax.lax.stop_gradient(self.low)
        high = jax.lax.stop_gradient(self.high)
        return distrax.Block(
            distrax.Chain(
                [
                    distrax.ScalarAffine(low, high - low),
                    distrax.Sigmoid(),
                ]
            ),
            1,
        )

    def contains(self, theta: Array) -> Array:
        """True when low <= theta <= high in every dimension."""
        return jnp.all((theta >= self.low) & (theta <= self.high))


class Positive(eqx.Module):
    """Positive orthant (0, inf)^d via theta = exp(u)."""

    __jaxdm_frozen__ = True

    def bijector(self):
        """Return the elementwise exp bijector (event_ndims 1)."""
        return distrax.Block(
            distrax.Lambda(
                jnp.exp, jnp.log, lambda x: x, lambda y: -jnp.log(y), event_ndims_in=0
            ),
            1,
        )

    def contains(self, theta: Array) -> Array:
        """True when all entries of theta are > 0 (and finite)."""
        return jnp.all((theta > 0) & jnp.isfinite(theta))


class _MaskedLinear(eqx.Module):
    """Linear layer whose weight is multiplied by a fixed 0/1 connectivity mask.

    The mask is a boolean array: not an inexact leaf, so no optimiser (``fit``'s or
    one filtered with ``eqx.is_inexact_array``) can move it, weight decay included;
    the autoregressive structure cannot drift during training.
    """

    weight: Array
    bias: Array
    mask: Array

    def __init__(self, n_in, n_out, mask, key, scale=None):
        kw, _ = jax.random.split(key)
        lim = 1.0 / np.sqrt(n_in) if scale is None else scale
        self.weight = jax.random.uniform(kw, (n_out, n_in), minval=-lim, maxval=lim)
        self.bias = jnp.zeros((n_out,))
        self.mask = jnp.asarray(mask, dtype=bool)

    def masked_weight(self):
        """The weight with the disallowed connections set to zero."""
        return jnp.where(self.mask, self.weight, 0.0)

    def __call__(self, x):
        return self.masked_weight() @ x + self.bias


ACTIVATIONS = {
    "gelu": jax.nn.gelu,
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "tanh": jnp.tanh,
}


class MADE(eqx.Module):
    """Masked autoregressive conditioner (params of dim i see y[deg < deg_i], context).

    Args:
        degrees: Input degrees, shape (d,), ints >= 1.
        context_dim: Context size (connected to every hidden unit).
        hidden: Hidden widths.
        n_params: Parameters output per dimension.
        key: PRNG key.
        outputs: Indices of the dimensions whose parameters are produced (default all;
            a coupling layer only needs its transformed half).
        activation: Hidden-layer nonlinearity, a key of ``ACTIVATIONS``.
        linear_skip: Add masked direct input-to-output connections (Germain et al.
            2015, Sec. 4), initialised at zero: the parameters get a term linear in
            the context and the allowed inputs besides the MLP's, so e.g. a Gaussian
            posterior whose mean is linear in x is exactly representable.
    """

    layers: tuple[_MaskedLinear, ...]
    skip: _MaskedLinear | None
    d: int = eqx.field(static=True)
    n_params: int = eqx.field(static=True)
    n_out: int = eqx.field(static=True)
    activation: str = eqx.field(static=True)

    def __init__(
        self,
        degrees,
        context_dim,
        hidden,
        n_params,
        key,
        outputs=None,
        activation="gelu",
        *,
        linear_skip=False,
    ):
        """Build masks and layers."""
        degrees = np.asarray(degrees)
        d = len(degrees)
        outputs = np.arange(d) if outputs is None else np.asarray(outputs)
        dmax = int(degrees.max())
        keys = jax.random.split(key, len(hidden) + 2)
        in_deg = np.concatenate([degrees, np.zeros(context_dim, int)])
        layers, prev = [], in_deg
        for i, h in enumerate(hidden):
            hdeg = np.arange(h) % dmax  # 0..dmax-1; degree-0 units see context only
            mask = hdeg[:, None] >= prev[None, :]
            if i == 0:
                mask = (
                    mask & (np.arange(len(prev)) < d)[None, :]
                    | (np.arange(len(prev)) >= d)[None, :]
                )
            layers.append(_MaskedLinear(len(prev), h, mask, keys[i]))
            prev = hdeg
        out_deg = np.repeat(degrees[outputs], n_params)
        mask = out_deg[:, None] > prev[None, :]
        layers.append(
            _MaskedLinear(len(prev), len(out_deg), mask, keys[-2], scale=1e-3)
        )
        self.layers = tuple(layers)
        self.skip = None
        if linear_skip:
            # Output i may see inputs of lower degree; the context (degree 0) always.
            mask = out_deg[:, None] > in_deg[None, :]
            self.skip = _MaskedLinear(len(in_deg), len(out_deg), mask, keys[-1], 0.0)
        self.d, self.n_params, self.n_out = d, n_params, len(outputs)
        self.activation = activation

    def __call__(self, y, context):
        """Return params of shape (n_outputs, n_params)."""
        first = self.layers[0]
        w = first.masked_weight()
        # The context term is separate so that, vmapped over samples of one
        # observation, it is computed once rather than per sample.
        h = w[:, : self.d] @ y + (w[:, self.d :] @ context + first.bias)
        act = ACTIVATIONS[self.activation]
        for layer in self.layers[1:]:
            h = layer(act(h))
        if self.skip is not None:
            ws = self.skip.masked_weight()
            h = h + ws[:, : self.d] @ y + (ws[:, self.d :] @ context + self.skip.bias)
        return h.reshape(self.n_out, self.n_params)

    def columns(self, y: Array, context: Array) -> Array:
        """Batched call on columns: ``y`` (d, n) gives params (n_outputs, n_params, n).

        The same function as ``__call__`` applied to every column of ``y``, computed
        with the batch as the minor axis so that each parameter of each output is a
        contiguous length-n row for the elementwise transforms that follow.
        ``__call__`` is kept as its own per-example form: writing it as
        ``columns(y[:, None], context)[..., 0]`` made a vmapped training step 1.2-1.3x
        slower (two_moons 1.66 -> 2.02 ms, slcp 3.72 -> 4.74 ms on the 2-core CPU).
        """
        first = self.layers[0]
        w = first.masked_weight()
        h = w[:, : self.d] @ y + (w[:, self.d :] @ context + first.bias)[:, None]
        act = ACTIVATIONS[self.activation]
        for layer in self.layers[1:]:
            wl = layer.masked_weight()
            h = wl @ act(h) + layer.bias[:, None]
        if self.skip is not None:
            ws = self.skip.masked_weight()
            h = h + (
                ws[:, : self.d] @ y
                + (ws[:, self.d :] @ context + self.skip.bias)[:, None]
            )
        return h.reshape(self.n_out, self.n_params, y.shape[1])


_SCALE_SHIFT = float(np.log(np.expm1(1.0)))


class ConditionalFlow(eqx.Module):
    """Conditional normalizing flow q(theta | context).

    Attributes:
        conditioners: One MADE per layer.
        support: Real(), Box or Positive.
        theta_dim, context_dim: Sizes.
        kind: "maf" or "nsf".
        n_bins, bound: Spline hyperparameters (nsf).
        autoregressive: False for coupling (nsf with theta_dim >= 2).
    """

    conditioners: tuple[MADE, ...]
    support: eqx.Module
    theta_dim: int = eqx.field(static=True)
    context_dim: int = eqx.field(static=True)
    kind: str = eqx.field(static=True)
    n_bins: int = eqx.field(static=True)
    bound: float = eqx.field(static=True)
    autoregressive: bool = eqx.field(static=True)

    def _n_fixed(self):
        """Leading dimensions a layer passes through unchanged (0: autoregressive)."""
        return 0 if self.autoregressive else self.theta_dim // 2

    def _transform(self, params, v, inverse):
        """Elementwise transform of the active dimensions ``v`` and its log|det|.

        ``params`` (n_active, n_params, *batch) and ``v`` (n_active, *batch); the
        log-det is summed over the active dimensions, shape ``batch``.
        """
        if self.kind == "maf":
            shift, raw = params[:, 0], params[:, 1]
            scale = jax.nn.softplus(raw + _SCALE_SHIFT) + 1e-3
            bij = distrax.ScalarAffine(shift, scale)
            fn = bij.inverse_and_log_det if inverse else bij.forward_and_log_det
            out, ld = fn(v)
        elif inverse:
            out, ld = rq_inverse(v, jnp.moveaxis(params, 1, -1), self.bound)
        else:
            out, ld = rq_forward(v, params, self.bound, axis=1)
        return out, jnp.sum(ld, axis=0)

    def _layer_inverse(self, made, y, context):
        m = self._n_fixed()
        x, ld = self._transform(made(y, context), y[m:], inverse=True)
        return jnp.concatenate([y[:m], x]), ld

    def forward_and_log_det(self, z: Array, context: Array) -> tuple[Array, Array]:
        """Map base noise z (theta_dim,) to theta; return (theta, log|dtheta/dz|)."""
        theta, ld = self._forward_columns(z[None], context)
        return theta[0], ld[0]

    def _forward_columns(self, z: Array, context: Array) -> tuple[Array, Array]:
        """``forward_and_log_det`` of every row of ``z`` (n, theta_dim), one context.

        Computed on the transposed state (theta_dim, n) with ``MADE.columns``, so
        that on a CPU the conditioner matmuls put the samples on the minor axis and
        each spline parameter is a contiguous row. The inverse direction
        (``inverse_and_log_det``) uses the per-example ``MADE.__call__``; the tests
        check each against the other.
        """
        m = self._n_fixed()
        x = z.T
        total = jnp.zeros(z.shape[:1], z.dtype)
        for made in self.conditioners:

            def step(y, made=made, x_in=x):
                yn, ld = self._transform(made.columns(y, context), x_in[m:], False)
                return jnp.concatenate([x_in[:m], yn]), ld

            y = x
            if self.autoregressive:
                y = jax.lax.fori_loop(0, self.theta_dim, lambda i, y: step(y)[0], y)
            x, ld = step(y)
            x = x[::-1]
            total = total + ld
        theta, ld = self.support.bijector().forward_and_log_det(x.T)
        return theta, total + ld

    def inverse_and_log_det(self, theta: Array, context: Array) -> tuple[Array, Array]:
        """Map theta to z; return (z, log|det dz/dtheta|)."""
        x, total = self.support.bijector().inverse_and_log_det(theta)
        for made in reversed(self.conditioners):
            x = x[::-1]
            x, ld = self._layer_inverse(made, x, context)
            total = total + ld
        return x, total

    def log_prob(self, theta: Array, context: Array) -> Array:
        """Log q(theta | context) (scalar); -inf outside the support."""
        theta = jnp.asarray(theta)
        context = jnp.asarray(context)
        if theta.shape != (self.theta_dim,):
            raise ValueError(
                f"`theta` must have shape ({self.theta_dim},), got {theta.shape}"
            )
        if context.shape != (self.context_dim,):
            raise ValueError(
                f"`context` must have shape ({self.context_dim},), got {context.shape}"
            )
        inside = self.support.contains(theta)
        safe = jnp.where(
            inside, theta, self.support.bijector().forward(jnp.zeros_like(theta))
        )
        z, ld = self.inverse_and_log_det(safe, context)
        lp = jnp.sum(jax.scipy.stats.norm.logpdf(z)) + ld
        return jnp.where(inside, lp, -jnp.inf)

    def sample_and_log_prob(
        self, key, context: Array, sample_shape=()
    ) -> tuple[Array, Array]:
        """Draw theta ~ q(.|context), shape (*sample_shape, theta_dim), and log q.

        A non-finite ``context`` raises a ValueError when called eagerly; under
        ``jit`` every sample and log q is NaN instead (the mask is
        ``jnp.all(jnp.isfinite(context))``).
        """
        check_key(key)
        context = jnp.asarray(context)
        if context.shape != (self.context_dim,):
            raise ValueError(
                f"`context` must have shape ({self.context_dim},), got {context.shape}"
            )
        if (
            not isinstance(context, jax.core.Tracer)
            and not np.isfinite(np.asarray(context)).all()
        ):
            bad = np.flatnonzero(~np.isfinite(np.asarray(context))).tolist()
            raise ValueError(
                f"`context` has non-finite values (NaN/inf) at entries {bad}."
            )
        sample_shape = (
            tuple(sample_shape)
            if not isinstance(sample_shape, int)
            else (sample_shape,)
        )
        n = int(np.prod(sample_shape))
        z = jax.random.normal(
            key,
            (n, self.theta_dim),
            dtype=context.dtype
            if jnp.issubdtype(context.dtype, jnp.floating)
            else float,
        )
        theta, ld = self._forward_columns(z, context)
        lp = jnp.sum(jax.scipy.stats.norm.logpdf(z), axis=-1) - ld
        ok = jnp.all(jnp.isfinite(context))
        theta = jnp.where(ok, theta, jnp.nan)
        lp = jnp.where(ok, lp, jnp.nan)
        return theta.reshape(*sample_shape, self.theta_dim), lp.reshape(sample_shape)

    def sample(self, key, context: Array, sample_shape=()) -> Array:
        """Draw theta ~ q(.|context), shape (*sample_shape, theta_dim)."""
        return self.sample_and_log_prob(key, context, sample_shape)[0]


def _check(theta_dim, context_dim, n_layers, support, activation):
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"`activation` must be one of {sorted(ACTIVATIONS)}, got {activation!r}"
        )
    for name, v, lo in (
        ("theta_dim", theta_dim, 1),
        ("context_dim", context_dim, 0),
        ("n_layers", n_layers, 1),
    ):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"`{name}` must be an int >= {lo}, got {v!r}")
    if not isinstance(support, (Real, Box, Positive)):
        raise TypeError(
            f"`support` must be Real(), Box or Positive(), got {type(support)}"
        )
    if isinstance(support, Box) and support.low.shape != (theta_dim,):
        raise ValueError(
            f"Box bounds must have shape ({theta_dim},), got {support.low.shape}"
        )


def make_maf(
    key,
    *,
    theta_dim,
    context_dim,
    n_layers=5,
    hidden=(64, 64),
    support=None,
    activation="gelu",
    linear_skip=False,
):
    """Build a conditional masked autoregressive flow (affine, softplus scale).

    ``activation`` is the conditioners' nonlinearity (``"gelu"``, ``"relu"``,
    ``"silu"`` or ``"tanh"``); ``linear_skip`` adds direct input-to-output connections
    to each conditioner (see ``MADE``).
    """
    check_key(key)
    support = Real() if support is None else support
    _check(theta_dim, context_dim, n_layers, support, activation)
    keys = jax.random.split(key, n_layers)
    deg = np.arange(1, theta_dim + 1)
    made = tuple(
        MADE(
            deg,
            context_dim,
            tuple(hidden),
            2,
            k,
            None,
            activation,
            linear_skip=linear_skip,
        )
        for k in keys
    )
    return ConditionalFlow(made, support, theta_dim, context_dim, "maf", 0, 0.0, True)


def make_nsf(
    key,
    *,
    theta_dim,
    context_dim,
    n_layers=5,
    n_bins=8,
    hidden=(64, 64),
    bound=5.0,
    support=None,
    autoregressive=None,
    activation="gelu",
    linear_skip=False,
):
    """Build a conditional rational-quadratic neural spline flow on [-bound, bound].

    ``activation`` is the conditioners' nonlinearity (``"gelu"``, ``"relu"``,
    ``"silu"`` or ``"tanh"``); ``linear_skip`` adds direct input-to-output connections
    to each conditioner (see ``MADE``).
    """
    check_key(key)
    support = Real() if support is None else support
    _check(theta_dim, context_dim, n_layers, support, activation)
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 2:
        raise ValueError(f"`n_bins` must be an int >= 2, got {n_bins!r}")
    if not bound > 0:
        raise ValueError(f"`bound` must be > 0, got {bound}")
    if autoregressive is None:
        autoregressive = theta_dim == 1
    if theta_dim == 1:
        autoregressive = True
    keys = jax.random.split(key, n_layers)
    if autoregressive:
        deg = np.arange(1, theta_dim + 1)
    else:
        deg = np.where(np.arange(theta_dim) >= theta_dim // 2, 2, 1)
    outputs = None if autoregressive else np.arange(theta_dim // 2, theta_dim)
    made = tuple(
        MADE(
            deg,
            context_dim,
            tuple(hidden),
            3 * n_bins + 1,
            k,
            outputs,
            activation,
            linear_skip=linear_skip,
        )
        for k in keys
    )
    return ConditionalFlow(
        made,
        support,
        theta_dim,
        context_dim,
        "nsf",
        n_bins,
        float(bound),
        bool(autoregressive),
    )
