"""A numpyro model's potential compiled once, batched over chains, for MAP and NUTS.

With an expensive likelihood (the NPTF of a Galactic Centre map: a 7,000-line XLA
program, ~13 s CPU to compile) the default numpyro path compiles it several times:
numpyro's vectorized initialisation (one ``jit(scan)``), the NUTS loop (which inlines
the likelihood in its own program) and ArviZ's ``from_numpyro`` (which re-runs the
model eagerly, op by op, to fill the ``log_likelihood`` group), on top of any MAP.
:func:`compile_potential` instead compiles ``jit(vmap(value_and_grad(potential)))``
ONCE at a fixed batch (the number of chains) and exposes it

* to the host (:attr:`CompiledPotential.value_and_grad`: NumPy in, NumPy out), for
  :func:`~jaxdm.fits.laplace_start`'s Adam and Hessian, and
* to traced code (:attr:`CompiledPotential.potential`) through ``jax.pure_callback``
  inside a ``custom_vjp`` whose forward returns the gradient computed with the value,
  so that numpyro's NUTS (``NUTS(potential_fn=...)``, used by
  :func:`~jaxdm.fits.run_nuts` when given ``potential=``) compiles its tree building
  around a d-vector only. Vectorized chains make one batched call per leapfrog step.

NUTS's semantics are numpyro's own (the kernel is unchanged; only where its potential
is computed moves). A non-finite potential or gradient (float32 overflow far from the
data) is returned as +inf with a zero gradient, which NUTS treats as a divergence, as
:func:`~jaxdm.fits.guard_support` does on the model path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from jax.flatten_util import ravel_pytree
from numpyro.infer import init_to_median
from numpyro.infer.util import constrain_fn, potential_energy, unconstrain_fn

from .._args import check_int
from .._checks import check_key

__all__ = ["CompiledPotential", "callback_potential", "compile_potential"]


class CompiledPotential(NamedTuple):
    """A model's potential (- log joint, numpyro's unconstrained space), compiled once.

    Attributes:
        value_and_grad: Host function ``z (..., d) -> (value (...), grad (..., d))``
            (NumPy, the model's float dtype), in chunks of ``num_batch`` rows of
            the one compiled program (a short chunk is padded, never recompiled).
        potential: Traceable ``z (d,) -> scalar`` (vmappable, differentiable once) that
            reaches ``value_and_grad`` by a host callback: numpyro's
            ``NUTS(potential_fn=...)``.
        constrain: ``z (..., d) -> {site: value (..., *site_shape)}``, the latent
            sites in the model's (constrained) parameter space (NumPy).
        unconstrain: ``{site: value} -> z (d,)``, the inverse (NumPy).
        init_z: numpyro's initial point (``init_strategy``), unconstrained, (d,).
        site_names: Latent site names in the order of ``z`` (sorted, as numpyro).
        observed: ``{site: value}`` of the observed sites (ArviZ observed_data).
        num_batch: Rows of one compiled call (the number of vectorized chains).
        dim: ``d``, the number of unconstrained scalars.
    """

    value_and_grad: Callable
    potential: Callable
    constrain: Callable
    unconstrain: Callable
    init_z: np.ndarray
    site_names: tuple
    observed: dict
    num_batch: int
    dim: int


def _batched_host_fn(vg, num_batch, dim, dtype):
    compiled = []  # the ahead-of-time compiled program, made on first use

    def host_vg(z):
        z = np.asarray(z, dtype)
        if z.shape[-1:] != (dim,):
            raise ValueError(
                f"`z` must have a last axis of size {dim} (unconstrained parameters); "
                f"got shape {z.shape}."
            )
        flat = z.reshape(-1, dim)
        vals, grads = [], []
        for i in range(0, flat.shape[0], num_batch):
            chunk = flat[i : i + num_batch]
            m = chunk.shape[0]
            if m < num_batch:  # pad to the compiled batch (no second compilation)
                pad = np.repeat(chunk[-1:], num_batch - m, 0)
                chunk = np.concatenate([chunk, pad])
            if not compiled:
                # Ahead of time (lower + compile), called directly: jit's cache
                # keys on the calling thread's config context, which differs when
                # NUTS calls back from XLA's runtime, and would compile it again.
                with jax.numpy_rank_promotion("allow"):
                    spec = jax.ShapeDtypeStruct((num_batch, dim), dtype)
                    compiled.append(vg.lower(spec).compile())
            v, g = compiled[0](chunk)
            host_vg.num_calls += 1
            v, g = np.asarray(v)[:m], np.asarray(g)[:m]
            bad = ~(np.isfinite(v) & np.all(np.isfinite(g), axis=-1))
            vals.append(np.where(bad, np.inf, v).astype(dtype))
            grads.append(np.where(bad[:, None], 0.0, g).astype(dtype))
        return (
            np.concatenate(vals).reshape(z.shape[:-1]),
            np.concatenate(grads).reshape(z.shape),
        )

    host_vg.num_calls = 0  # compiled calls so far (the fit's cost in evaluations)
    return host_vg


def _callback_potential(host_vg, dtype):
    def call(z):
        out = (
            jax.ShapeDtypeStruct(z.shape[:-1], dtype),
            jax.ShapeDtypeStruct(z.shape, dtype),
        )
        return jax.pure_callback(
            host_vg, out, z.astype(dtype), vmap_method="expand_dims"
        )

    @jax.custom_vjp
    def potential(z):
        return call(z)[0].astype(z.dtype)

    def fwd(z):
        v, g = call(z)
        return v.astype(z.dtype), g.astype(z.dtype)

    def bwd(g, ct):
        return (ct[..., None] * g,)

    potential.defvjp(fwd, bwd)
    return potential


def callback_potential(neg_log_density: Callable, dim: int, *, num_batch: int = 2,
                       dtype=np.float32):  # fmt: skip
    """Batched value + gradient of a potential, compiled once, and its traced twin.

    The building block of :func:`compile_potential`, for a potential that is not a
    numpyro model (e.g. ``benchmarks/nptf_speed.py``'s 11-parameter NPTF posterior).

    Args:
        neg_log_density: ``z (dim,) -> scalar``, jax-traceable and differentiable.
        dim: Length of ``z``.
        num_batch: Rows per compiled call (the number of vectorized chains).
        dtype: Float dtype of ``z``.

    Returns:
        ``(value_and_grad, potential)``: the host function ``z (..., dim) -> (value
        (...), grad (..., dim))`` (non-finite rows become value +inf, gradient 0;
        its attribute ``num_calls`` counts the compiled batched calls made)
        and the traceable ``potential(z)`` that reaches it by ``jax.pure_callback``
        (a ``custom_vjp``: NUTS's value and gradient cost one call).
    """
    dim = check_int(dim, "dim", minimum=1)
    num_batch = check_int(num_batch, "num_batch", minimum=1)
    dtype = np.dtype(dtype)
    vg = jax.jit(jax.vmap(jax.value_and_grad(neg_log_density)))
    host_vg = _batched_host_fn(vg, num_batch, dim, dtype)
    return host_vg, _callback_potential(host_vg, dtype)


def compile_potential(
    key,
    model: Callable,
    data: Mapping | None = None,
    *,
    num_batch: int = 2,
    init_strategy=init_to_median,
) -> CompiledPotential:
    """Compile a numpyro model's batched potential once (see the module docstring).

    The model is only ever traced, never run eagerly: numpyro's ``initialize_model``
    runs the model and its gradient op by op (each op compiled on its own: 12.7 s
    CPU for a 4-pixel NPTF model, against 3.3 s for the compiled value and
    gradient), so the sites, the initial point (``init_strategy``) and the
    (un)constraining maps are jitted functions of numpyro's handlers instead, which
    return only the latent and observed values (XLA removes the unused likelihood).
    The batched value and gradient is compiled on its first call. Only continuous
    latent sites are supported (NUTS's own restriction).

    Args:
        key: PRNG key of numpyro's initialisation.
        model: numpyro model, called as ``model(**data)``.
        data: Its keyword arguments.
        num_batch: Rows per compiled call: the number of vectorized chains (and of
            :func:`~jaxdm.fits.laplace_start`'s parallel Adam starts).
        init_strategy: numpyro init strategy of ``init_z`` (default: prior medians).

    Returns:
        :class:`CompiledPotential`.
    """
    check_key(key)
    num_batch = check_int(num_batch, "num_batch", minimum=1)
    data = dict(data or {})

    def probe(k):  # traced only: numpyro's initialize_model would run it eagerly
        seeded = numpyro.handlers.seed(model, k)
        init = numpyro.handlers.substitute(seeded, substitute_fn=init_strategy)
        tr = numpyro.handlers.trace(init).get_trace(**data)
        lat, obs = {}, {}
        for name, site in tr.items():
            if site["type"] != "sample":
                continue
            if site["is_observed"]:
                obs[name] = site["value"]
            elif site["fn"].support.is_discrete:
                raise ValueError(
                    f"`model` has the discrete latent site {name!r}; NUTS needs "
                    "continuous latent sites."
                )
            else:
                lat[name] = site["value"]
        return lat, obs

    with jax.numpy_rank_promotion("allow"):
        lat, obs = jax.jit(probe)(key)
        z_dict = jax.jit(partial(unconstrain_fn, model, (), data))(lat)
    z0, unravel = ravel_pytree(z_dict)
    dim = int(z0.shape[0])
    names = tuple(sorted(z_dict))
    observed = {k: np.asarray(v) for k, v in obs.items()}

    def neg_log_joint(z):
        return potential_energy(model, (), data, unravel(z))

    dtype = np.dtype(z0.dtype)
    host_vg, potential = callback_potential(
        neg_log_joint, dim, num_batch=num_batch, dtype=dtype
    )

    @jax.jit
    def _constrain(zf):
        def one(z):
            return constrain_fn(model, (), data, unravel(z))

        with jax.numpy_rank_promotion("allow"):
            return jax.vmap(one)(zf)

    _unconstrain = jax.jit(partial(unconstrain_fn, model, (), data))

    def constrain(z):
        z = np.asarray(z, dtype)
        out = _constrain(jnp.asarray(z.reshape(-1, dim)))
        return {
            k: np.asarray(v).reshape(z.shape[:-1] + v.shape[1:]) for k, v in out.items()
        }

    def unconstrain(values):
        missing = set(names) - set(values)
        if missing:
            raise ValueError(
                f"`init_params` lacks the latent sites {sorted(missing)}; the model's "
                f"latent sites are {list(names)}."
            )
        vals = {k: jnp.asarray(values[k], dtype) for k in names}
        with jax.numpy_rank_promotion("allow"):
            u = _unconstrain(vals)
        return np.asarray(ravel_pytree(u)[0], dtype)

    return CompiledPotential(
        value_and_grad=host_vg,
        potential=potential,
        constrain=constrain,
        unconstrain=unconstrain,
        init_z=np.asarray(z0, dtype),
        site_names=names,
        observed=observed,
        num_batch=num_batch,
        dim=dim,
    )
