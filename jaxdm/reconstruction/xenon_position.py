"""Learned horizontal position reconstruction of xenon-TPC S2 hit patterns.

:class:`PositionNet` is an MLP (:class:`jaxdm.nn.MLP`) on the normalised top-array
pattern and ``log10`` of the top total; :func:`train_position_net` trains it on
simulated S2 patterns (:func:`jaxdm.simulators.xenon.simulate_s2_patterns`) through
:func:`jaxdm.train.fit` (mean squared error in units of the TPC radius);
:func:`net_position` applies it to a batch. It lives here, above the learning core,
because the simulators do not import ``jaxdm.nn``/``jaxdm.train``; the analytic
reconstructions (centroid, maximum-likelihood fit of the light model) stay in
:mod:`jaxdm.simulators.xenon.position`, and
:func:`jaxdm.simulators.xenon.position_resolution` measures any of them against
the true position (the approach of neural position reconstruction in XENON1T,
arXiv:1906.04717, sec. III).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import nn
from .._args import check_int
from .._checks import check_key, guard_finite, guard_positive
from .._typing import Array
from ..simulators import xenon
from ..simulators.xenon import OpticalParams, PMTArrays
from ..train import fit


class PositionNet(eqx.Module):
    """MLP from a top hit pattern to (x, y).

    Input features: the normalised top pattern ``n_top c_i / sum c - 1`` and
    ``log10(sum c) - 3`` (both of order one); output ``(x, y) / tpc_radius``.
    Acts on one pattern (vmap for batches); :meth:`__call__` returns [cm].

    Attributes:
        mlp: The network (``jaxdm.nn.MLP``).
        n_top: Number of top PMTs (static).
        tpc_radius: Output scale [cm] (static).
    """

    mlp: nn.MLP
    n_top: int = eqx.field(static=True)
    tpc_radius: float = eqx.field(static=True)

    def __init__(self, n_top: int, tpc_radius: float, *, width=128, depth=3, key):
        """Build the network for ``n_top`` top PMTs."""
        self.n_top = check_int(n_top, "n_top", minimum=1)
        self.tpc_radius = float(tpc_radius)
        self.mlp = nn.MLP(n_top + 1, 2, width=width, depth=depth, key=key)

    def features(self, top):
        """Features (n_top + 1,) of one top pattern (n_top,)."""
        tot = jnp.sum(top)
        share = self.n_top * top / jnp.maximum(tot, 1e-12) - 1.0
        return jnp.concatenate([share, jnp.log10(jnp.maximum(tot, 1.0))[None] - 3.0])

    def __call__(self, top) -> Array:
        """(x, y) [cm] of one top pattern of shape (n_top,)."""
        return self.tpc_radius * self.mlp(self.features(top))


def train_position_net(
    key,
    pmts: PMTArrays,
    optics: OpticalParams | None = None,
    *,
    n_train: int = 20_000,
    s2_range=(200.0, 20_000.0),
    width: int = 128,
    depth: int = 3,
    max_epochs: int = 60,
    batch_size: int = 256,
    progress: bool = False,
):
    """Train a :class:`PositionNet` on simulated S2 patterns via ``jaxdm.train.fit``.

    Training events: positions uniform over the TPC cross-section, S2 sizes
    log-uniform in ``s2_range`` [phd], Poisson hit patterns
    (:func:`jaxdm.simulators.xenon.simulate_s2_patterns`). Loss: mean squared
    error of ``(x, y) / R``.

    Args:
        key: Typed PRNG key.
        pmts: PMT geometry.
        optics: Optical parameters.
        n_train: Number of simulated training events.
        s2_range: (low, high) S2 sizes [phd], 0 < low < high.
        width: MLP width.
        depth: MLP hidden layers.
        max_epochs: Passed to :func:`jaxdm.train.fit`.
        batch_size: Passed to :func:`jaxdm.train.fit`.
        progress: Show the training progress bar.

    Returns:
        ``(net, history)``.
    """
    check_key(key)
    n_train = check_int(n_train, "n_train", minimum=16)
    lo, hi = (float(v) for v in s2_range)
    if not (0 < lo < hi):
        raise ValueError(f"`s2_range` must satisfy 0 < low < high; got {s2_range!r}.")
    pmts = xenon.check_pmt_arrays(pmts)
    k_s2, k_sim, k_net, k_fit = jax.random.split(key, 4)
    s2 = 10 ** jax.random.uniform(
        k_s2, (n_train,), minval=jnp.log10(lo), maxval=jnp.log10(hi)
    )
    hits, xy = xenon.simulate_s2_patterns(k_sim, s2, n_train, pmts, optics)
    top = hits[:, : pmts.n_top]
    net = PositionNet(
        pmts.n_top, float(pmts.tpc_radius), width=width, depth=depth, key=k_net
    )
    scale = float(pmts.tpc_radius)

    def loss_fn(model, batch, _key):
        pred = jax.vmap(model.mlp)(jax.vmap(model.features)(batch["top"]))
        return jnp.mean(jnp.sum((pred - batch["xy"] / scale) ** 2, axis=-1))

    return fit(
        k_fit,
        net,
        loss_fn,
        {"top": top, "xy": xy},
        max_epochs=max_epochs,
        batch_size=batch_size,
        progress=progress,
        outliers="warn",
        outlier_z=None,
    )


def net_position(net: PositionNet, hits, pmts: PMTArrays) -> Array:
    """(x, y) [cm] from a trained :class:`PositionNet`, shape (..., 2)."""
    pmts = xenon.check_pmt_arrays(pmts)
    hits = jnp.asarray(hits)
    k = pmts.n_top + pmts.n_bottom
    if hits.ndim < 1 or hits.shape[-1] != k:
        raise ValueError(
            f"`hits` must have shape (..., n_top + n_bottom = {k}); got {hits.shape}."
        )
    hits = guard_positive(guard_finite(hits, "hits"), "hits", allow_zero=True)
    top = hits[..., : pmts.n_top]
    if top.shape[-1] != net.n_top:
        raise ValueError(
            f"`net` was built for {net.n_top} top PMTs; `pmts` has {top.shape[-1]}."
        )
    flat = top.reshape(-1, net.n_top)
    return jax.vmap(net)(flat).reshape(*top.shape[:-1], 2)
