"""NUTS and SVI runners for numpyro models: ArviZ output and loud diagnostics.

A model is a plain numpyro model function called as ``model(**data)``. The runners
return the posterior as an ArviZ ``DataTree`` (the ``InferenceData`` of ArviZ >= 1.0,
built by ``arviz_base.from_numpyro``), its ArviZ summary (mean, sd, R-hat, bulk/tail
ESS, from ``arviz_stats.summary``) and the divergence count. A NUTS fit whose
diagnostics fail (split R-hat above ``rhat_threshold``, any divergence, or bulk ESS
below ``min_ess``) emits a :class:`FitDiagnosticsWarning` and carries ``ok=False`` and
the list of ``problems`` in its result: it never returns silently.

ArviZ (``arviz-base``, ``arviz-stats``) is imported lazily, only by the runners, so
``import jaxdm.fits`` works without it; a missing install raises ImportError with the
pip command. R-hat is the rank-normalised split R-hat of Vehtari et al. (2021),
arXiv:1903.08008, whose 1.01 threshold is the issue's.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from numpyro.infer import MCMC, NUTS, SVI, Predictive, Trace_ELBO
from numpyro.infer.autoguide import AutoNormal

from .._args import check_int, check_real
from .._checks import check_key
from .compiled import CompiledPotential

__all__ = [
    "FitDiagnosticsWarning",
    "NutsResult",
    "SviResult",
    "check_init_in_support",
    "diagnose",
    "run_nuts",
    "run_svi",
]

_ARVIZ_HINT = (
    "jaxdm.fits runners need ArviZ: pip install 'arviz-base>=0.8' 'arviz-stats>=0.8' "
    "xarray-einstats"
)


class FitDiagnosticsWarning(UserWarning):
    """A fit's convergence diagnostics failed (R-hat, divergences, ESS, ELBO)."""


def _arviz():
    try:
        import arviz_base
        import arviz_stats
    except ImportError as err:  # pragma: no cover - exercised only without arviz
        raise ImportError(_ARVIZ_HINT) from err
    return arviz_base, arviz_stats


class NutsResult(NamedTuple):
    """The outcome of :func:`run_nuts`.

    Attributes:
        idata: ArviZ ``DataTree`` with groups ``posterior``, ``sample_stats`` (with
            ``diverging``), ``observed_data`` and, if requested,
            ``posterior_predictive``.
        summary: ``pandas.DataFrame`` from ``arviz_stats.summary`` (one row per
            scalar parameter; columns mean, sd, eti bounds, ess_bulk, ess_tail,
            r_hat, mcse), unrounded.
        samples: Posterior samples grouped by chain, ``{name: (chains, draws,
            ...)}``.
        num_divergences: Post-warmup divergent transitions, all chains.
        max_rhat: Largest split R-hat over all scalar parameters.
        min_ess: Smallest bulk ESS over all scalar parameters.
        ok: True when no diagnostic failed.
        problems: Human-readable description of each failed diagnostic.
    """

    idata: Any
    summary: Any
    samples: dict
    num_divergences: int
    max_rhat: float
    min_ess: float
    ok: bool
    problems: tuple[str, ...]


class SviResult(NamedTuple):
    """The outcome of :func:`run_svi`.

    Attributes:
        idata: ArviZ ``DataTree`` with a ``posterior`` group of ``num_samples``
            draws from the fitted guide (one chain).
        params: The fitted variational parameters (``svi.get_params``).
        guide: The guide (call ``guide.sample_posterior`` or use ``Predictive``).
        losses: ELBO loss per step, shape ``(num_steps,)``.
        samples: Guide draws ``{name: (num_samples, ...)}``.
        ok: False if the final loss is not finite or the loss rose over the last
            tenth of the run by more than ``loss_tolerance`` (relative).
        problems: Description of each failed check.
    """

    idata: Any
    params: dict
    guide: Any
    losses: jax.Array
    samples: dict
    ok: bool
    problems: tuple[str, ...]


def _check_data(data) -> dict:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise TypeError(
            "`data` must be a mapping of the model's keyword arguments "
            f"(model(**data)); got {type(data).__name__}."
        )
    return dict(data)


def check_init_in_support(model: Callable, data: Mapping, init_params: Mapping):
    """Raise ValueError if an initial value lies outside its prior's support.

    Args:
        model: numpyro model, called as ``model(**data)``.
        data: Model keyword arguments.
        init_params: ``{site name: value}`` in the constrained (physical) space.

    Raises:
        ValueError: Naming ``init_params[name]``, the support and the value, when a
            value is outside the support of that site's prior, or when a name is not
            a latent site of the model.
    """
    tr = numpyro.handlers.trace(
        numpyro.handlers.seed(model, jax.random.key(0))
    ).get_trace(**data)
    latent = {
        k: s for k, s in tr.items() if s["type"] == "sample" and not s["is_observed"]
    }
    for name, value in init_params.items():
        if name not in latent:
            raise ValueError(
                f"`init_params[{name!r}]` is not a latent sample site of the model; "
                f"latent sites: {sorted(latent)}."
            )
        support = latent[name]["fn"].support
        inside = np.asarray(support(jnp.asarray(value)))
        if not inside.all():
            raise ValueError(
                f"`init_params[{name!r}]` = {np.asarray(value)} is outside the "
                f"support of its prior ({support}); a prior outside support cannot "
                "start a chain."
            )


def run_nuts(
    key,
    model: Callable,
    data: Mapping | None = None,
    *,
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 2,
    target_accept: float = 0.8,
    dense_mass: bool = False,
    init_params: Mapping | None = None,
    rhat_threshold: float = 1.01,
    min_ess: float = 100.0,
    chain_method: str = "sequential",
    posterior_predictive: bool = False,
    progress_bar: bool = True,
    inverse_mass_matrix=None,
    adapt_mass_matrix: bool = True,
    potential: CompiledPotential | None = None,
) -> NutsResult:
    """Sample a numpyro model with NUTS and report R-hat, ESS and divergences.

    Args:
        key: PRNG key (``jax.random.key``).
        model: numpyro model function, called as ``model(**data)``.
        data: Keyword arguments of the model (observations and static settings).
        num_warmup: Warmup (adaptation) steps per chain.
        num_samples: Kept draws per chain.
        num_chains: Number of chains (>= 2 for a meaningful R-hat).
        target_accept: NUTS target acceptance probability.
        dense_mass: Adapt a dense mass matrix.
        init_params: Optional ``{site: value}`` starting point (physical space); each
            value is checked against its prior's support.
        rhat_threshold: Largest acceptable split R-hat (Vehtari et al. 2021: 1.01).
        min_ess: Smallest acceptable bulk ESS (total over chains).
        chain_method: numpyro's ``"sequential"``, ``"vectorized"`` or
            ``"parallel"``.
        posterior_predictive: Also draw the observed sites from the posterior
            predictive (stored in ``idata.posterior_predictive``).
        progress_bar: Show numpyro's tqdm progress bar.
        inverse_mass_matrix: Optional initial inverse mass matrix in numpyro's
            unconstrained space, (d, d) with ``dense_mass=True`` or (d,); e.g.
            :func:`~jaxdm.fits.laplace_start`'s Laplace covariance.
        adapt_mass_matrix: Adapt the mass matrix during warmup (False keeps
            ``inverse_mass_matrix``; only the step size adapts).
        potential: Optional :func:`~jaxdm.fits.compile_potential` of the same
            ``model`` and ``data``: NUTS (numpyro's kernel, unchanged) then runs on
            its ``potential`` (``NUTS(potential_fn=...)``), so the likelihood is
            compiled once for the whole fit (MAP, Hessian and every leapfrog step)
            instead of inside numpyro's initialisation and NUTS programs; use
            ``chain_method="vectorized"`` with ``num_chains == potential.num_batch``
            for one batched call per leapfrog step. Chains start at
            ``init_params`` (else the prior medians). The posterior holds the
            latent sites (constrained) and ``observed_data`` the observed sites; the
            ``log_likelihood`` group that ``from_numpyro`` fills by re-running the
            model is omitted.

    Returns:
        :class:`NutsResult`; if a diagnostic fails, ``ok`` is False, ``problems``
        lists why, and a :class:`FitDiagnosticsWarning` is emitted.

    Raises:
        TypeError: ``key`` is not a typed key or ``data`` is not a mapping.
        ValueError: A bad count or threshold, or an ``init_params`` value outside its
            prior's support.
    """
    check_key(key)
    data = _check_data(data)
    num_warmup = check_int(num_warmup, "num_warmup", minimum=1)
    num_samples = check_int(num_samples, "num_samples", minimum=1)
    num_chains = check_int(num_chains, "num_chains", minimum=1)
    target_accept = check_real(target_accept, "target_accept")
    if not 0.0 < target_accept < 1.0:
        raise ValueError(f"`target_accept` must be in (0, 1); got {target_accept}.")
    rhat_threshold = check_real(rhat_threshold, "rhat_threshold")
    if rhat_threshold < 1.0:
        raise ValueError(f"`rhat_threshold` must be >= 1; got {rhat_threshold}.")
    if init_params is not None and potential is None:
        check_init_in_support(model, data, init_params)
    if inverse_mass_matrix is not None:
        want = 2 if dense_mass else 1
        imm = np.asarray(inverse_mass_matrix)
        if imm.ndim != want or not np.all(np.isfinite(imm)):
            raise ValueError(
                f"`inverse_mass_matrix` must be a finite {want}-D array "
                f"({'(d, d) with dense_mass=True' if dense_mass else '(d,)'}); "
                f"got shape {imm.shape}."
            )
    azb, azs = _arviz()
    if potential is not None:
        return _run_nuts_compiled(
            key, model, data, potential, num_warmup, num_samples, num_chains,
            target_accept, dense_mass, init_params, rhat_threshold, min_ess,
            chain_method, posterior_predictive, progress_bar, inverse_mass_matrix,
            adapt_mass_matrix,
        )  # fmt: skip
    init_strategy = (
        numpyro.infer.init_to_median
        if init_params is None
        else numpyro.infer.init_to_value(values=dict(init_params))
    )
    mcmc = _nuts_mcmc(
        dict(model=model, init_strategy=init_strategy), jnp.result_type(float),
        target_accept, dense_mass, inverse_mass_matrix, adapt_mass_matrix,
        num_warmup, num_samples, num_chains, chain_method, progress_bar,
    )  # fmt: skip
    k_run, k_pred = jax.random.split(key)
    # numpyro's samplers rely on implicit rank promotion (e.g. eps * scale with a
    # sample_shape); allow it inside numpyro even where a caller set "raise".
    with jax.numpy_rank_promotion("allow"):
        mcmc.run(k_run, extra_fields=("diverging",), **data)
    ppc = None
    if posterior_predictive:
        flat = mcmc.get_samples()
        with jax.numpy_rank_promotion("allow"):
            ppc = Predictive(model, posterior_samples=flat)(k_pred, **_unobserved(data))
        observed = _observed_sites(model, data)
        ppc = {
            k: np.asarray(v).reshape(num_chains, num_samples, *np.shape(v)[1:])
            for k, v in ppc.items()
            if k in observed
        }
    with jax.numpy_rank_promotion("allow"):  # arviz traces the numpyro model
        idata = azb.from_numpyro(mcmc, posterior_predictive=ppc)
    samples = {
        k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()
    }
    return _nuts_result(idata, samples, rhat_threshold, min_ess)


def _nuts_mcmc(
    target, dtype, target_accept, dense_mass, inverse_mass_matrix, adapt_mass_matrix,
    num_warmup, num_samples, num_chains, chain_method, progress_bar,
):  # fmt: skip
    """A numpyro MCMC on NUTS; ``target`` holds ``model=`` or ``potential_fn=``."""
    kernel = NUTS(
        **target,
        target_accept_prob=target_accept,
        dense_mass=dense_mass,
        inverse_mass_matrix=(
            None
            if inverse_mass_matrix is None
            else jnp.asarray(inverse_mass_matrix, dtype)
        ),
        adapt_mass_matrix=bool(adapt_mass_matrix),
    )
    return MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method=chain_method,
        progress_bar=progress_bar,
    )


def _nuts_result(idata, samples, rhat_threshold, min_ess) -> NutsResult:
    summ, n_div, max_rhat, min_ess_seen, problems = diagnose(
        idata, rhat_threshold=rhat_threshold, min_ess=min_ess
    )
    if problems:
        warnings.warn(
            "NUTS diagnostics failed: " + "; ".join(problems),
            FitDiagnosticsWarning,
            stacklevel=3,
        )
    return NutsResult(
        idata=idata,
        summary=summ,
        samples=samples,
        num_divergences=n_div,
        max_rhat=max_rhat,
        min_ess=min_ess_seen,
        ok=not problems,
        problems=problems,
    )


def _run_nuts_compiled(
    key, model, data, potential, num_warmup, num_samples, num_chains, target_accept,
    dense_mass, init_params, rhat_threshold, min_ess, chain_method,
    posterior_predictive, progress_bar, inverse_mass_matrix, adapt_mass_matrix,
):  # fmt: skip
    """run_nuts on a :class:`CompiledPotential` (NUTS(potential_fn=...))."""
    if not isinstance(potential, CompiledPotential):
        raise TypeError(
            "`potential` must be a CompiledPotential (fits.compile_potential); got "
            f"{type(potential).__name__}."
        )
    azb, _ = _arviz()
    dtype = potential.init_z.dtype
    z0 = (
        potential.init_z
        if init_params is None
        else potential.unconstrain(dict(init_params))
    )
    if not np.all(np.isfinite(z0)):  # the model is not run eagerly to check it
        raise ValueError(
            f"`init_params` {dict(init_params)} has a value outside the support of "
            "its prior (its unconstrained value is not finite); a prior outside "
            "support cannot start a chain."
        )
    mcmc = _nuts_mcmc(
        dict(potential_fn=potential.potential), dtype,
        target_accept, dense_mass, inverse_mass_matrix, adapt_mass_matrix,
        num_warmup, num_samples, num_chains, chain_method, progress_bar,
    )  # fmt: skip
    k_run, k_pred = jax.random.split(key)
    init = jnp.asarray(np.broadcast_to(z0, (num_chains, z0.shape[0])))
    with jax.numpy_rank_promotion("allow"):
        mcmc.run(
            k_run,
            init_params=init if num_chains > 1 else init[0],
            extra_fields=("diverging",),
        )
    z = np.asarray(mcmc.get_samples(group_by_chain=True))
    samples = potential.constrain(z.reshape(num_chains, num_samples, -1))
    div = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["diverging"])
    groups = {
        "posterior": samples,
        "sample_stats": {"diverging": div.reshape(num_chains, num_samples)},
        "observed_data": {k: np.asarray(v) for k, v in potential.observed.items()},
    }
    if posterior_predictive:
        flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in samples.items()}
        with jax.numpy_rank_promotion("allow"):
            ppc = Predictive(model, posterior_samples=flat)(k_pred, **data)
        groups["posterior_predictive"] = {
            k: np.asarray(v).reshape(num_chains, num_samples, *np.shape(v)[1:])
            for k, v in ppc.items()
            if k in potential.observed
        }
    idata = azb.from_dict(
        groups,
        attrs={"posterior": {"inference_library": "numpyro", "method": "NUTS"}},
    )
    return _nuts_result(idata, samples, rhat_threshold, min_ess)


def diagnose(idata, *, rhat_threshold: float = 1.01, min_ess: float = 100.0):
    """R-hat, bulk ESS and divergences of an ArviZ ``DataTree`` posterior.

    Args:
        idata: ArviZ ``DataTree`` with a ``posterior`` group (chain, draw, ...) and,
            optionally, ``sample_stats.diverging``.
        rhat_threshold: Largest acceptable rank-normalised split R-hat.
        min_ess: Smallest acceptable bulk ESS.

    With a single chain (``num_chains=1``) the R-hat column is computed on the
    chain's two halves treated as two chains (rank-normalised split R-hat over four
    quarter-chains), rather than left NaN; use >= 2 chains where possible.

    Returns:
        ``(summary, num_divergences, max_rhat, min_ess, problems)``: the unrounded
        ``arviz_stats.summary`` DataFrame, the divergence count, the worst R-hat and
        ESS, and a tuple of problem descriptions (empty if all checks pass).
    """
    azb, azs = _arviz()
    summ = azs.summary(idata, round_to="none")
    post = idata.posterior
    if post.sizes.get("chain", 0) == 1 and post.sizes.get("draw", 0) >= 8:
        # One chain: ArviZ's R-hat is NaN (it needs chains to compare). Use the
        # chain's two halves as two chains instead (ArviZ then splits each again:
        # the rank-normalised split R-hat over four quarter-chains), which detects
        # a chain that is still drifting. The ESS columns are the one-chain ones.
        half = post.sizes["draw"] // 2
        halves = {}
        for name in post.data_vars:
            v = np.asarray(post[name])[0, : 2 * half]
            halves[name] = v.reshape(2, half, *v.shape[1:])
        summ_h = azs.summary(azb.from_dict({"posterior": halves}), round_to="none")
        summ["r_hat"] = np.asarray(summ_h["r_hat"], dtype=float)
    n_div = 0
    if "sample_stats" in idata.children and "diverging" in idata.sample_stats:
        n_div = int(np.asarray(idata.sample_stats["diverging"]).sum())
    rhat = np.asarray(summ["r_hat"], dtype=float)
    ess = np.asarray(summ["ess_bulk"], dtype=float)
    # Over the finite entries (np.nanmax warns on an all-NaN array, e.g. the split
    # R-hat of a single chain); a non-finite entry is a problem of its own below.
    fin_r, fin_e = rhat[np.isfinite(rhat)], ess[np.isfinite(ess)]
    max_rhat = float(fin_r.max()) if fin_r.size else math.nan
    min_ess_seen = float(fin_e.min()) if fin_e.size else math.nan
    problems = []
    if n_div > 0:
        problems.append(f"{n_div} divergent transitions after warmup")
    if not np.isfinite(rhat).all() or max_rhat > rhat_threshold:
        bad = np.where(np.isfinite(rhat), rhat, np.inf)
        worst = summ.index[int(np.argmax(bad))]
        problems.append(
            f"max split R-hat {max_rhat:.4f} > {rhat_threshold} (worst: {worst})"
        )
    if not np.isfinite(ess).all() or min_ess_seen < min_ess:
        problems.append(f"min bulk ESS {min_ess_seen:.1f} < {min_ess}")
    return summ, n_div, max_rhat, min_ess_seen, tuple(problems)


def _observed_sites(model, data) -> set[str]:
    tr = numpyro.handlers.trace(
        numpyro.handlers.seed(model, jax.random.key(0))
    ).get_trace(**data)
    return {k for k, s in tr.items() if s["type"] == "sample" and s["is_observed"]}


def _unobserved(data: dict) -> dict:
    """Model kwargs for predictive draws: keep everything (models use ``obs=``)."""
    return data


def run_svi(
    key,
    model: Callable,
    data: Mapping | None = None,
    *,
    guide: Callable | None = None,
    optimizer=None,
    num_steps: int = 2000,
    num_samples: int = 1000,
    num_particles: int = 1,
    loss_tolerance: float = 0.05,
    progress_bar: bool = True,
) -> SviResult:
    """Fit a numpyro model by stochastic variational inference (ELBO).

    Args:
        key: PRNG key.
        model: numpyro model, called as ``model(**data)``.
        data: Model keyword arguments.
        guide: numpyro guide; default ``AutoNormal(model)`` (mean-field Gaussian in
            the unconstrained space).
        optimizer: numpyro/optax optimizer; default ``numpyro.optim.Adam(1e-2)``.
        num_steps: Optimisation steps.
        num_samples: Guide draws stored in the result.
        num_particles: ELBO Monte Carlo particles per step.
        loss_tolerance: Relative rise of the mean loss over the last tenth of the run
            (vs the tenth before) beyond which the fit is flagged as not converged.
        progress_bar: Show a tqdm progress bar.

    Returns:
        :class:`SviResult`; a non-finite or rising final loss sets ``ok=False`` and
        emits :class:`FitDiagnosticsWarning`.
    """
    check_key(key)
    data = _check_data(data)
    num_steps = check_int(num_steps, "num_steps", minimum=10)
    num_samples = check_int(num_samples, "num_samples", minimum=1)
    num_particles = check_int(num_particles, "num_particles", minimum=1)
    azb, _ = _arviz()
    guide = AutoNormal(model) if guide is None else guide
    optimizer = numpyro.optim.Adam(1e-2) if optimizer is None else optimizer
    svi = SVI(model, guide, optimizer, loss=Trace_ELBO(num_particles=num_particles))
    k_run, k_draw = jax.random.split(key)
    with jax.numpy_rank_promotion("allow"):  # numpyro internals (see run_nuts)
        res = svi.run(k_run, num_steps, progress_bar=progress_bar, **data)
    losses = res.losses
    with jax.numpy_rank_promotion("allow"):
        samples = Predictive(guide, params=res.params, num_samples=num_samples)(
            k_draw, **data
        )
    samples = {k: np.asarray(v) for k, v in samples.items()}
    problems = []
    lf = np.asarray(losses, dtype=float)
    tenth = max(num_steps // 10, 1)
    if not np.isfinite(lf[-tenth:]).all():
        problems.append("non-finite ELBO loss at the end of the run")
    else:
        last, prev = lf[-tenth:].mean(), lf[-2 * tenth : -tenth].mean()
        if last - prev > loss_tolerance * max(abs(prev), 1.0):
            problems.append(
                f"ELBO loss rose over the last {tenth} steps ({prev:.4g} -> {last:.4g})"
            )
    if problems:
        warnings.warn(
            "SVI diagnostics failed: " + "; ".join(problems),
            FitDiagnosticsWarning,
            stacklevel=2,
        )
    idata = azb.from_dict(
        {"posterior": {k: v[None] for k, v in samples.items()}},
        attrs={"posterior": {"inference_library": "numpyro", "method": "SVI"}},
    )
    return SviResult(
        idata=idata,
        params=res.params,
        guide=guide,
        losses=losses,
        samples=samples,
        ok=not problems,
        problems=tuple(problems),
    )
