r"""Differentiable search-sensitivity objectives through :mod:`jaxdm.stats`.

Both objectives take the expected signal (at signal strength 1) and background
counts per bin, the output of a simulator's differentiable expectation as a function
of the design, and return a scalar whose gradient with respect to those counts (and
so with respect to the design) is exact:

- :func:`asimov_discovery_significance`: the median discovery significance
  :math:`Z_0 = \sqrt{q_{0,A}}` from the profile-likelihood ratio on the Asimov data
  set of :math:`\mu = 1` (Cowan, Cranmer, Gross & Vitells, arXiv:1007.1727, CCGV,
  eq. 97 without nuisances: :math:`Z_0 = \sqrt{2\sum_b[(s_b+b_b)\ln(1+s_b/b_b)-s_b]}`,
  tested), with background normalisation nuisances profiled by ``jaxdm.stats``'
  fits (optimistix BFGS; gradients by implicit differentiation of the minimum).
- :func:`expected_upper_limit`: the median expected CLs upper limit on the signal
  strength for background-only data (CCGV section 4 and eq. 89; ``stats.upper_limit``
  on the Asimov data of :math:`\mu = 0`). The limit solves
  :math:`\mathrm{CLs}_{\rm exp}(\mu; \theta) = \alpha`; its value comes from
  ``stats.upper_limit`` (bisection, not differentiable), and its gradient from the
  implicit-function theorem, :math:`d\mu/d\theta = -\partial_\theta h /
  \partial_\mu h` with :math:`h = \mathrm{CLs}_{\rm exp} - \alpha`, added as one
  Newton correction whose value is zero.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .. import stats

__all__ = ["asimov_discovery_significance", "expected_upper_limit"]


def _model(signal, background, background_sigma, constraint):
    return stats.binned_model(
        signal, background, background_sigma=background_sigma, constraint=constraint
    )


def _safe_sqrt(q):
    # sqrt has an infinite slope at 0; q = 0 means no sensitivity (gradient 0 there).
    pos = q > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, q, 1.0)), 0.0)


def asimov_discovery_significance(
    signal,
    background,
    *,
    background_sigma=None,
    constraint="normal",
    fitter: stats.Fitter = stats.profile.DEFAULT_FITTER,
):
    r"""Median expected discovery significance :math:`Z_0 = \sqrt{q_{0,A}}`.

    Args:
        signal: Expected signal counts at :math:`\mu = 1`, shape (B,) (or any shape,
            flattened).
        background: Expected background counts, shape of ``signal`` or (K, *shape)
            for K backgrounds.
        background_sigma: Relative normalisation uncertainty per background (K,)
            or scalar; None for none (then the closed form of CCGV eq. 97 holds).
        constraint: "normal" or "lognormal" (see ``jaxdm.stats.binned_model``).
        fitter: ``jaxdm.stats.Fitter`` settings of the profile fits.

    Returns:
        :math:`Z_0` (scalar, in standard deviations), differentiable in ``signal``
        and ``background``.
    """
    model = _model(signal, background, background_sigma, constraint)
    data = stats.asimov_data(model, 1.0)
    return _safe_sqrt(stats.q0(model, data, fitter=fitter))


def expected_upper_limit(
    signal,
    background,
    *,
    cl: float = 0.95,
    background_sigma=None,
    constraint="normal",
    fitter: stats.Fitter = stats.profile.DEFAULT_FITTER,
):
    r"""Median expected CLs upper limit on the signal strength (background only).

    Args:
        signal: Expected signal counts at :math:`\mu = 1`, shape (B,).
        background: Expected background counts, shape (B,) or (K, B).
        cl: Confidence level (0.95 or 0.9 typically).
        background_sigma: Relative normalisation uncertainty per background.
        constraint: "normal" or "lognormal".
        fitter: ``jaxdm.stats.Fitter`` settings.

    Returns:
        Median expected limit on :math:`\mu` (scalar, in units of the signal
        normalisation), differentiable in ``signal`` and ``background``; lower is
        better (minimise it). Multiply by the reference cross-section for a limit on
        a cross-section.
    """
    model = _model(signal, background, background_sigma, constraint)
    alpha = 1.0 - cl
    frozen = jax.lax.stop_gradient(model)
    data0 = stats.asimov_data(frozen, 0.0)
    mu0 = jax.lax.stop_gradient(
        stats.upper_limit(frozen, data0, cl=cl, fitter=fitter).expected[2]
    )

    def h(mu, m):
        q_a = stats.qtilde_mu(mu, m, stats.asimov_data(m, 0.0), fitter=fitter)
        return stats.expected_cls(q_a, (0.0,)).cls[..., 0] - alpha

    dh_dmu = jax.lax.stop_gradient(jax.grad(h)(mu0, frozen))
    h_val = h(mu0, model)
    return mu0 - (h_val - jax.lax.stop_gradient(h_val)) / dh_dmu
