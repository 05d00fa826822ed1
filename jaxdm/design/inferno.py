r"""INFERNO: summary networks trained on the expected profiled uncertainty.

De Castro & Dorigo (Comput. Phys. Commun. 244, 170 (2019), arXiv:1806.04743) train a
network ``f(x)`` whose softmax outputs define a soft histogram of the data (the
summary); the loss is the expected variance of the parameter of interest after
profiling the nuisance parameters, :math:`(I^{-1})_{00}`, with :math:`I` the Fisher
information of the Poisson likelihood of that histogram on Asimov data (plus the
nuisance constraints). The nuisance dependence of the background histogram is made
differentiable by a reparameterised simulation: fixed base noise is transformed by
the nuisance values. neos (Simpson & Heinrich, arXiv:2203.05570) is the related
method with a KDE histogram and profile-likelihood losses (here :mod:`.objectives`).

The module also holds the paper's synthetic 3-D benchmark (section 4):
background :math:`\mathcal N((x_0,x_1)|(2+r,0),\mathrm{diag}(5,9))\,
\mathrm{Exp}(x_2|\lambda)`, signal :math:`\mathcal N((x_0,x_1)|(1,1), I)\,
\mathrm{Exp}(x_2|2)` (exponentials with these means), 50 signal and 1000
background events expected,
nominal :math:`r=0, \lambda=3`, Gaussian constraints :math:`\sigma_r = 0.4`,
:math:`\sigma_\lambda = 1` and ``b`` known: with these settings the exact
likelihood's expected uncertainty on ``s`` is 16.9 events, the paper's value for
the optimal inference (their 26.7 for a classifier and 18.7 for INFERNO are the
numbers to compare with; tested for the exact one). :func:`exact_fisher` is the Fisher
information of the exact extended unbinned likelihood (the optimal reference),
:func:`binned_fisher` that of any hard or soft binning, with the nuisance
dependence of the background template by analytic density-ratio reweighting.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from .fisher import poisson_fisher

__all__ = [
    "InfernoProblem",
    "template_fisher",
    "template_inferno_loss",
    "binned_fisher",
    "exact_fisher",
    "inferno_loss",
    "interval_width",
    "sample_benchmark",
]


class InfernoProblem(eqx.Module):
    """The synthetic benchmark's constants (static).

    Attributes:
        s: Expected signal events (parameter of interest, nominal).
        b: Expected background events.
        r: Nominal background shift of x0.
        lam: Nominal background exponential rate of x2.
        sigma_r: Gaussian constraint width on r (inf: unconstrained).
        sigma_lam: Gaussian constraint width on lam.
    """

    s: float = eqx.field(static=True, default=50.0)
    b: float = eqx.field(static=True, default=1000.0)
    r: float = eqx.field(static=True, default=0.0)
    lam: float = eqx.field(static=True, default=3.0)
    sigma_r: float = eqx.field(static=True, default=0.4)
    sigma_lam: float = eqx.field(static=True, default=1.0)

    def nominal(self):
        """Nominal (s, r, lam), shape (3,)."""
        return jnp.array([self.s, self.r, self.lam])

    def constraint_fisher(self):
        """Fisher information of the Gaussian constraints, shape (3, 3)."""
        return jnp.diag(
            jnp.array([0.0, 1.0 / self.sigma_r**2, 1.0 / self.sigma_lam**2])
        )


def background_from_noise(eps, r, lam):
    """Reparameterised background: base noise (n, 3) -> events (n, 3)."""
    x0 = 2.0 + r + jnp.sqrt(5.0) * eps[:, 0]
    x1 = 3.0 * eps[:, 1]
    x2 = -jnp.log(eps[:, 2]) * lam  # eps[:, 2] ~ U(0, 1); lam is the mean
    return jnp.stack([x0, x1, x2], axis=-1)


def sample_benchmark(key, n: int):
    """Signal events (n, 3) and background base noise (n, 3) (normal, normal, U)."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    xs = jnp.concatenate(
        [
            jnp.array([[1.0, 1.0]]) + jax.random.normal(k1, (n, 2)),
            2.0 * jax.random.exponential(k2, (n, 1)),
        ],
        axis=-1,
    )
    eps = jnp.concatenate(
        [
            jax.random.normal(k3, (n, 2)),
            jax.random.uniform(k4, (n, 1), minval=1e-7, maxval=1.0),
        ],
        axis=-1,
    )
    return xs, eps


def _log_fb(x, r, lam):
    return (
        -0.5 * ((x[..., 0] - 2.0 - r) ** 2 / 5.0 + x[..., 1] ** 2 / 9.0)
        - jnp.log(2 * jnp.pi * jnp.sqrt(45.0))
        - jnp.log(lam)
        - x[..., 2] / lam
    )


def _log_fs(x):
    return (
        -0.5 * ((x[..., 0] - 1.0) ** 2 + (x[..., 1] - 1.0) ** 2)
        - jnp.log(2 * jnp.pi)
        - jnp.log(2.0)
        - x[..., 2] / 2.0
    )


def inferno_loss(model, batch, key=None, *, problem=None, temperature=0.1):
    r"""INFERNO loss: :math:`\sqrt{(I^{-1})_{ss}}` of the softmax-binned likelihood.

    Args:
        model: Network (3,) -> (n_bins,) logits.
        batch: ``(signal_events (n, 3), background_noise (n, 3))``.
        key: Unused.
        problem: :class:`InfernoProblem` (default: the paper's).
        temperature: Softmax temperature (the histogram's softness).

    Returns:
        Expected profiled standard deviation of ``s`` [events], scalar.
    """
    del key
    problem = InfernoProblem() if problem is None else problem
    xs, eps = batch
    ps = jnp.mean(jax.nn.softmax(jax.vmap(model)(xs) / temperature, axis=-1), 0)

    def expected(theta):
        s, r, lam = theta
        xb = background_from_noise(eps, r, lam)
        pb = jnp.mean(jax.nn.softmax(jax.vmap(model)(xb) / temperature, -1), 0)
        return s * ps + problem.b * pb

    fisher = poisson_fisher(expected, problem.nominal()) + problem.constraint_fisher()
    e0 = jnp.zeros((3,)).at[0].set(1.0)
    return jnp.sqrt(jnp.linalg.solve(fisher, e0)[0])


def binned_fisher(bin_of, xs, eps, n_bins: int, problem=None):
    r"""Fisher information (3, 3) of a hard binning ``bin_of(x) -> int`` (n,).

    The background template's dependence on (r, lam) uses the analytic density
    ratio :math:`f_b(x|r,\lambda)/f_b(x|r_0,\lambda_0)` as event weights, so its
    derivatives exist for hard bins.
    """
    problem = InfernoProblem() if problem is None else problem
    xb = background_from_noise(eps, problem.r, problem.lam)
    ib, is_ = bin_of(xb), bin_of(xs)
    ps = jnp.zeros(n_bins).at[is_].add(1.0) / xs.shape[0]
    log_w0 = _log_fb(xb, problem.r, problem.lam)

    def expected(theta):
        s, r, lam = theta
        w = jnp.exp(_log_fb(xb, r, lam) - log_w0)
        pb = jnp.zeros(n_bins).at[ib].add(w) / xb.shape[0]
        return s * ps + problem.b * pb

    return poisson_fisher(expected, problem.nominal()) + problem.constraint_fisher()


def exact_fisher(key, n: int = 200_000, problem=None):
    r"""Fisher information (3, 3) of the exact extended unbinned likelihood.

    :math:`I = \int \nu\,\partial\log\nu\,\partial\log\nu^T dx` with
    :math:`\nu(x) = s f_s(x) + b f_b(x|r,\lambda)`, by Monte Carlo over the nominal
    mixture (``n`` events), plus the constraints.
    """
    problem = InfernoProblem() if problem is None else problem
    k_events, k_pick = jax.random.split(key)
    xs, eps = sample_benchmark(k_events, n)
    xb = background_from_noise(eps, problem.r, problem.lam)
    frac = problem.s / (problem.s + problem.b)
    pick = jax.random.uniform(k_pick, (n,)) < frac
    x = jnp.where(pick[:, None], xs, xb)

    def log_nu(theta, xi):
        s, r, lam = theta
        return jnp.logaddexp(
            jnp.log(s) + _log_fs(xi), jnp.log(problem.b) + _log_fb(xi, r, lam)
        )

    g = jax.vmap(jax.grad(log_nu), in_axes=(None, 0))(problem.nominal(), x)
    fisher = (problem.s + problem.b) * (g.T @ g) / n
    return fisher + problem.constraint_fisher()


def interval_width(fisher):
    """Expected uncertainty on ``s``, ``sqrt((I^-1)_ss)`` [events].

    The half-width of the asymptotic 68.3% interval (what INFERNO's table reports).
    """
    e0 = jnp.zeros((fisher.shape[0],), fisher.dtype).at[0].set(1.0)
    return jnp.sqrt(jnp.linalg.solve(fisher, e0)[0])


def template_fisher(fractions, totals, rel_sigmas):
    r"""Fisher matrix of binned templates with rate nuisances (POI first).

    :math:`\mu_i = \sum_c \theta_c N_c p_{ci}` with :math:`\theta_c = 1` nominal;
    component 0 is the signal (free), component ``c > 0`` has a Gaussian
    constraint of relative width ``rel_sigmas[c - 1]``.

    Args:
        fractions: Per-component bin fractions :math:`p_{ci}`, shape (C, B).
        totals: Expected events :math:`N_c`, shape (C,).
        rel_sigmas: Relative rate uncertainties of the backgrounds, shape (C - 1,).

    Returns:
        Fisher matrix over (signal strength, background rates), shape (C, C).
    """
    fractions = jnp.asarray(fractions)
    totals = jnp.asarray(totals, fractions.dtype)

    def expected(theta):
        return (theta * totals) @ fractions

    c = fractions.shape[0]
    prior = jnp.concatenate(
        [jnp.zeros((1,), fractions.dtype), 1.0 / jnp.asarray(rel_sigmas) ** 2]
    )
    return poisson_fisher(expected, jnp.ones((c,), fractions.dtype)) + jnp.diag(prior)


def template_inferno_loss(
    model, batch, key=None, *, totals, rel_sigmas, temperature=0.1
):
    """INFERNO loss for components whose nuisances are rates only.

    Args:
        model: Network (d,) -> (n_bins,) logits.
        batch: Tuple of event arrays, one per component, each (n, d); component 0
            is the signal.
        key: Unused.
        totals: Expected events per component (C,) (static or array).
        rel_sigmas: Relative rate uncertainties of components 1.. (C - 1,).
        temperature: Softmax temperature.

    Returns:
        Expected profiled uncertainty on the signal strength (relative), scalar.
    """
    del key
    fractions = jnp.stack(
        [
            jnp.mean(jax.nn.softmax(jax.vmap(model)(x) / temperature, -1), 0)
            for x in batch
        ]
    )
    fisher = template_fisher(fractions, totals, rel_sigmas)
    e0 = jnp.zeros((fisher.shape[0],), fisher.dtype).at[0].set(1.0)
    return jnp.sqrt(jnp.linalg.solve(fisher, e0)[0])
