r"""Lens mass profiles: deflection, convergence and potential (angles in arcsec).

Every profile is a pure function of ``(x, y, params)`` where ``x, y`` are image-plane
angles [arcsec] of any (equal) shape and ``params`` a small ``eqx.Module`` of arrays.
The deflection is the gradient of the lensing potential and satisfies the Poisson
equation :math:`\nabla\cdot\boldsymbol\alpha = 2\kappa`.

Elliptical conventions (lenstronomy's / Tessore & Metcalf 2015's "intermediate
axis" normalisation): the isothermal ellipsoid has
:math:`\kappa = \theta_E / (2\sqrt{q x'^2 + y'^2/q})` with the major axis along
:math:`x'` (rotated by the position angle ``phi`` [rad] counter-clockwise from
+x), so ``theta_E`` is the radius at which the *mean* convergence of the circle of
radius :math:`\theta_E\sqrt{q}\ldots\theta_E/\sqrt q` ellipse is one: the critical
curve ellipse has semi-axes :math:`\theta_E/\sqrt q` and :math:`\theta_E\sqrt q`.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from jaxdm._checks import check_in_range, check_positive
from jaxdm._fastmath import arctan, arctanh
from jaxdm._poison import poison_policy

from ._guards import checked_profile, unchecked


def _f(default=None):
    if default is None:
        return eqx.field(converter=jnp.asarray)
    return eqx.field(converter=jnp.asarray, default=default)


# ----------------------------------------------------------------------------- params
class SISParams(eqx.Module):
    """Singular isothermal sphere.

    Attributes:
        theta_e: Einstein radius [arcsec], >= 0.
        x0: Centre x [arcsec].
        y0: Centre y [arcsec].
    """

    _RULES: ClassVar[dict] = {"theta_e": (">=0",)}
    theta_e: jax.Array = _f()
    x0: jax.Array = _f(0.0)
    y0: jax.Array = _f(0.0)

    def __check_init__(self):
        check_positive(self.theta_e, "theta_e", allow_zero=True)


class SIEParams(eqx.Module):
    r"""Singular (or cored) isothermal ellipsoid.

    :math:`\kappa = \theta_E / (2\sqrt{q x'^2 + y'^2/q + q s^2})`; ``s = 0`` is the
    singular case (Kormann, Schneider & Bartelmann 1994; Keeton 2001,
    astro-ph/0102341, sec. 3.1 for the core).

    Attributes:
        theta_e: Einstein radius [arcsec] (intermediate-axis convention), >= 0.
        q: Axis ratio b/a in (0, 1].
        phi: Position angle of the major axis [rad], counter-clockwise from +x.
        x0: Centre x [arcsec].
        y0: Centre y [arcsec].
        s: Core radius [arcsec], >= 0.
    """

    _RULES: ClassVar[dict] = {
        "theta_e": (">=0",),
        "q": ("range", 0.0, 1.0, "right"),
        "s": (">=0",),
    }
    theta_e: jax.Array = _f()
    q: jax.Array = _f(1.0)
    phi: jax.Array = _f(0.0)
    x0: jax.Array = _f(0.0)
    y0: jax.Array = _f(0.0)
    s: jax.Array = _f(0.0)

    def __check_init__(self):
        check_positive(self.theta_e, "theta_e", allow_zero=True)
        check_in_range(self.q, "q", 0.0, 1.0, closed="right")
        check_positive(self.s, "s", allow_zero=True)


class EPLParams(eqx.Module):
    r"""Elliptical power law, :math:`\kappa = \frac{3-\gamma}{2}(b/R)^{\gamma-1}`.

    :math:`R = \sqrt{q^2 x'^2 + y'^2}` and :math:`b = \theta_E\sqrt q`
    (Tessore & Metcalf 2015, A&A 580, A79), so ``gamma = 2`` is the SIE.

    Attributes:
        theta_e: Einstein radius [arcsec], >= 0.
        gamma: 3D logarithmic slope, in (1, 3).
        q: Axis ratio in (0, 1].
        phi: Position angle [rad].
        x0: Centre x [arcsec].
        y0: Centre y [arcsec].
    """

    _RULES: ClassVar[dict] = {
        "theta_e": (">=0",),
        "gamma": ("range", 1.0, 3.0, "neither"),
        "q": ("range", 0.0, 1.0, "right"),
    }
    theta_e: jax.Array = _f()
    gamma: jax.Array = _f(2.0)
    q: jax.Array = _f(1.0)
    phi: jax.Array = _f(0.0)
    x0: jax.Array = _f(0.0)
    y0: jax.Array = _f(0.0)

    def __check_init__(self):
        check_positive(self.theta_e, "theta_e", allow_zero=True)
        check_in_range(self.gamma, "gamma", 1.0, 3.0, closed="neither")
        check_in_range(self.q, "q", 0.0, 1.0, closed="right")


class NFWParams(eqx.Module):
    r"""Navarro-Frenk-White halo in angular units.

    Build it from a mass with :func:`jaxdm.simulators.lensing.nfw_params_from_mass`.

    Attributes:
        kappa_s: :math:`\rho_s r_s/\Sigma_{cr}` (dimensionless), >= 0.
        theta_s: Scale radius :math:`r_s/D_d` [arcsec], > 0.
        x0: Centre x [arcsec].
        y0: Centre y [arcsec].
    """

    _RULES: ClassVar[dict] = {"kappa_s": (">=0",), "theta_s": (">0",)}
    kappa_s: jax.Array = _f()
    theta_s: jax.Array = _f()
    x0: jax.Array = _f(0.0)
    y0: jax.Array = _f(0.0)

    def __check_init__(self):
        check_positive(self.kappa_s, "kappa_s", allow_zero=True)
        check_positive(self.theta_s, "theta_s")


class TNFWParams(eqx.Module):
    r"""Truncated NFW, :math:`\rho = \rho_s/(x(1+x)^2)\,\tau^2/(\tau^2+x^2)`.

    Baltz, Marshall & Oguri (2009), JCAP 01, 015 (their n = 1 profile).

    Attributes:
        kappa_s: :math:`\rho_s r_s/\Sigma_{cr}`, >= 0.
        theta_s: Scale radius [arcsec], > 0.
        tau: Truncation radius over scale radius, > 0.
        x0: Centre x [arcsec].
        y0: Centre y [arcsec].
    """

    _RULES: ClassVar[dict] = {"kappa_s": (">=0",), "theta_s": (">0",), "tau": (">0",)}
    kappa_s: jax.Array = _f()
    theta_s: jax.Array = _f()
    tau: jax.Array = _f()
    x0: jax.Array = _f(0.0)
    y0: jax.Array = _f(0.0)

    def __check_init__(self):
        check_positive(self.kappa_s, "kappa_s", allow_zero=True)
        check_positive(self.theta_s, "theta_s")
        check_positive(self.tau, "tau")


class ShearParams(eqx.Module):
    r"""External shear, :math:`\psi = \frac12\gamma_1(x^2-y^2) + \gamma_2 xy`.

    Attributes:
        gamma1: Shear component along x/y axes (dimensionless).
        gamma2: Shear component along the diagonals (dimensionless).
    """

    gamma1: jax.Array = _f(0.0)
    gamma2: jax.Array = _f(0.0)


class PointMassParams(eqx.Module):
    r"""Point mass, :math:`\alpha = \theta_E^2\,\boldsymbol\theta/|\theta|^2`.

    Attributes:
        theta_e: Einstein radius [arcsec], >= 0.
        x0: Position x [arcsec].
        y0: Position y [arcsec].
    """

    _RULES: ClassVar[dict] = {"theta_e": (">=0",)}
    theta_e: jax.Array = _f()
    x0: jax.Array = _f(0.0)
    y0: jax.Array = _f(0.0)

    def __check_init__(self):
        check_positive(self.theta_e, "theta_e", allow_zero=True)


class SubhaloPopulation(eqx.Module):
    """A padded population of N subhalos: profile arrays of shape (N,) plus a mask.

    Attributes:
        profile: ``TNFWParams`` or ``NFWParams`` whose fields have shape (N,).
        mask: Shape (N,); 1 for a real subhalo, 0 for padding (a finite weight:
            each profile's contribution is multiplied by it).
    """

    profile: TNFWParams | NFWParams
    mask: jax.Array = _f()


# ---------------------------------------------------------------------------- helpers
def _safe_r(x, y):
    r2 = x * x + y * y
    tiny = jnp.asarray(1e-30 if r2.dtype == jnp.float64 else 1e-18, r2.dtype)
    return jnp.sqrt(jnp.maximum(r2, tiny))


def _rotate(x, y, phi):
    c, s = jnp.cos(phi), jnp.sin(phi)
    return c * x + s * y, -s * x + c * y


def _unrotate(ax, ay, phi):
    c, s = jnp.cos(phi), jnp.sin(phi)
    return c * ax - s * ay, s * ax + c * ay


# --------------------------------------------------------------------------------- SIS
@checked_profile
def sis_deflection(x, y, params: SISParams):
    r"""SIS deflection :math:`\alpha = \theta_E\,\hat{\boldsymbol\theta}` [arcsec].

    Args:
        x: Image-plane x [arcsec], any shape.
        y: Image-plane y [arcsec], same shape.
        params: SIS parameters.

    Returns:
        (alpha_x, alpha_y) [arcsec], each shaped like ``x``.
    """
    dx, dy = x - params.x0, y - params.y0
    r = _safe_r(dx, dy)
    return params.theta_e * dx / r, params.theta_e * dy / r


@checked_profile
def sis_convergence(x, y, params: SISParams):
    r"""SIS convergence :math:`\kappa = \theta_E/(2r)`.

    Args:
        x: x [arcsec].
        y: y [arcsec].
        params: SIS parameters.

    Returns:
        kappa, shaped like ``x``.
    """
    return params.theta_e / (2 * _safe_r(x - params.x0, y - params.y0))


@checked_profile
def sis_potential(x, y, params: SISParams):
    r"""SIS potential :math:`\psi = \theta_E r` [arcsec^2].

    Args:
        x: x [arcsec].
        y: y [arcsec].
        params: SIS parameters.

    Returns:
        psi [arcsec^2].
    """
    return params.theta_e * _safe_r(x - params.x0, y - params.y0)


# --------------------------------------------------------------------------------- SIE
def _atan_e(e, u):
    # atan(e u)/e; e >= 1e-4 (see _sie_frame) so the q -> 1 limit is smooth to
    # a relative error (e u)^2/3 < 4e-9.
    return arctan(e * u) / e


def _atanh_e(e, u):
    return arctanh(e * u) / e


def _sie_frame(x, y, params):
    xr, yr = _rotate(x - params.x0, y - params.y0, params.phi)
    q = params.q
    b = params.theta_e * jnp.sqrt(q)
    s = params.s
    psi = jnp.sqrt(jnp.maximum(q**2 * (s**2 + xr**2) + yr**2, 1e-30))
    e = jnp.sqrt(jnp.maximum(1 - q**2, 1e-8))
    return xr, yr, q, b, s, psi, e


@checked_profile
def sie_deflection(x, y, params: SIEParams):
    r"""SIE (optionally cored) deflection [arcsec].

    In the frame of the major axis, with :math:`b=\theta_E\sqrt q`,
    :math:`\psi=\sqrt{q^2(s^2+x^2)+y^2}` and :math:`e=\sqrt{1-q^2}`:
    :math:`\alpha_x = \frac{b}{e}\arctan\frac{e x}{\psi+s}`,
    :math:`\alpha_y = \frac{b}{e}\operatorname{artanh}\frac{e y}{\psi+q^2 s}`
    (Kormann et al. 1994, A&A 284, 285; Keeton 2001, astro-ph/0102341, eq. 33).
    Smooth at q = 1 (SIS/cored isothermal limit).

    Args:
        x: x [arcsec], any shape.
        y: y [arcsec], same shape.
        params: SIE parameters.

    Returns:
        (alpha_x, alpha_y) [arcsec].
    """
    xr, yr, q, b, s, psi, e = _sie_frame(x, y, params)
    ax = b * _atan_e(e, xr / (psi + s))
    ay = b * _atanh_e(e, yr / (psi + q**2 * s))
    return _unrotate(ax, ay, params.phi)


@checked_profile
def sie_convergence(x, y, params: SIEParams):
    r"""SIE convergence :math:`\kappa = b/(2\sqrt{q^2(s^2+x'^2)+y'^2})`.

    Args:
        x: x [arcsec].
        y: y [arcsec].
        params: SIE parameters.

    Returns:
        kappa, shaped like ``x``.
    """
    _, _, _, b, _, psi, _ = _sie_frame(x, y, params)
    return b / (2 * psi)


@checked_profile
def sie_potential(x, y, params: SIEParams):
    r"""SIE potential [arcsec^2] (Keeton 2001 eq. 33 with core).

    :math:`\phi = x\alpha_x + y\alpha_y - b s\ln\sqrt{(\psi+s)^2+(1-q^2)x^2}
    + b s \ln((1+q)s)`; for ``s = 0`` the last terms vanish.

    Args:
        x: x [arcsec].
        y: y [arcsec].
        params: SIE parameters.

    Returns:
        psi [arcsec^2], defined up to a constant.
    """
    xr, yr, q, b, s, psi, e = _sie_frame(x, y, params)
    ax = b * _atan_e(e, xr / (psi + s))
    ay = b * _atanh_e(e, yr / (psi + q**2 * s))
    has_core = s > 0
    ss = jnp.where(has_core, s, 1.0)
    core = (
        b
        * ss
        * (0.5 * jnp.log((psi + ss) ** 2 + (1 - q**2) * xr**2) - jnp.log((1 + q) * ss))
    )
    return xr * ax + yr * ay - jnp.where(has_core, core, 0.0)


# --------------------------------------------------------------------------------- EPL
def _epl_alpha_complex(x, y, params: EPLParams, n_terms: int):
    xr, yr = _rotate(x - params.x0, y - params.y0, params.phi)
    q = params.q
    t = params.gamma - 1
    b = params.theta_e * jnp.sqrt(q)
    zr, zi = q * xr, yr
    big_r = _safe_r(zr, zi)
    ang = jnp.arctan2(zi, zr)
    f = (1 - q) / (1 + q)
    e2 = jnp.exp(2j * ang)
    term = jnp.exp(1j * ang)
    total = term
    for n in range(1, n_terms):
        term = -f * (2 * n - (2 - t)) / (2 * n + (2 - t)) * e2 * term
        total = total + term
    alpha = 2 * b / (1 + q) * (b / big_r) ** (t - 1) * total
    return xr, yr, alpha, t


@checked_profile
def epl_deflection(x, y, params: EPLParams, *, n_terms: int = 40):
    r"""EPL deflection by the Tessore & Metcalf (2015) hypergeometric series [arcsec].

    :math:`\alpha^* = \frac{2b}{1+q}\left(\frac bR\right)^{t-1}\sum_n\Omega_n`,
    :math:`\Omega_0=e^{i\varphi}`, :math:`\Omega_n = -f\frac{2n-(2-t)}{2n+(2-t)}
    e^{2i\varphi}\Omega_{n-1}`, :math:`f=(1-q)/(1+q)`, :math:`t=\gamma-1`
    (Tessore & Metcalf 2015, A&A 580, A79, eqs. 23-29). Truncation error is below
    :math:`f^{N}/(1-f)` relative; the default ``n_terms = 40`` gives < 1e-7 for
    q >= 0.4 and < 3e-4 at q = 0.2.

    Args:
        x: x [arcsec].
        y: y [arcsec].
        params: EPL parameters.
        n_terms: Number of series terms (static).

    Returns:
        (alpha_x, alpha_y) [arcsec].
    """
    _, _, alpha, _ = _epl_alpha_complex(x, y, params, n_terms)
    return _unrotate(jnp.real(alpha), jnp.imag(alpha), params.phi)


@checked_profile
def epl_convergence(x, y, params: EPLParams):
    r"""EPL convergence :math:`\kappa = \frac{2-t}{2}(b/R)^t`, :math:`R^2=q^2x'^2+y'^2`.

    Args:
        x: x [arcsec].
        y: y [arcsec].
        params: EPL parameters.

    Returns:
        kappa.
    """
    xr, yr = _rotate(x - params.x0, y - params.y0, params.phi)
    t = params.gamma - 1
    b = params.theta_e * jnp.sqrt(params.q)
    return (2 - t) / 2 * (b / _safe_r(params.q * xr, yr)) ** t


@checked_profile
def epl_potential(x, y, params: EPLParams, *, n_terms: int = 40):
    r"""EPL potential :math:`\psi = (x'\alpha_{x'} + y'\alpha_{y'})/(2-t)` [arcsec^2].

    Tessore & Metcalf (2015) eq. 15.

    Args:
        x: x [arcsec].
        y: y [arcsec].
        params: EPL parameters.
        n_terms: Number of series terms.

    Returns:
        psi [arcsec^2].
    """
    xr, yr, alpha, t = _epl_alpha_complex(x, y, params, n_terms)
    return (xr * jnp.real(alpha) + yr * jnp.imag(alpha)) / (2 - t)


# ---------------------------------------------------------------------- NFW and tNFW
def _nfw_F(x):
    r"""F(x) = arccosh(1/x)/sqrt(1-x^2) (x<1), arccos(1/x)/sqrt(x^2-1) (x>1).

    Written as :math:`\ln((1+s)/x)/s` and :math:`\arctan(s)/s` with
    :math:`s=\sqrt{|x^2-1|}` (one sqrt, one log, one arctan per call), and a
    Taylor series within 1e-3 of x = 1.
    """
    d = x - 1
    near = jnp.abs(d) < 1e-3
    xs = jnp.where(near, 0.5, x)
    sd = jnp.sqrt(jnp.abs(xs * xs - 1))
    lo = jnp.log((1 + sd) / xs) / sd
    hi = arctan(sd) / sd
    series = 1 - 2 * d / 3 + 7 * d**2 / 15 - 12 * d**3 / 35
    return jnp.where(near, series, jnp.where(xs < 1, lo, hi))


@poison_policy
def nfw_enclosed_fraction(x):
    r"""NFW projected mass in units of :math:`4\pi\rho_s r_s^3`.

    :math:`h(x)=\ln(x/2)+F(x)`.

    Bartelmann (1996), A&A 313, 697; Golse & Kneib (2002), A&A 390, 821, eq. 10.

    Args:
        x: Projected radius over r_s, > 0.

    Returns:
        h(x), same shape.
    """
    return jnp.log(x / 2) + _nfw_F(x)


def _xy_scaled(x, y, params):
    dx, dy = x - params.x0, y - params.y0
    r = _safe_r(dx, dy)
    return dx, dy, r, r / params.theta_s


@checked_profile
def nfw_deflection(x, y, params: NFWParams):
    r"""NFW deflection :math:`\alpha = 4\kappa_s\theta_s h(x)/x` [arcsec].

    Golse & Kneib (2002) eq. 10 (spherical limit).

    Args:
        x: x [arcsec].
        y: y [arcsec].
        params: NFW parameters.

    Returns:
        (alpha_x, alpha_y) [arcsec].
    """
    dx, dy, r, u = _xy_scaled(x, y, params)
    amp = 4 * params.kappa_s * params.theta_s * nfw_enclosed_fraction(u) / u
    return amp * dx / r, amp * dy / r


@checked_profile
def nfw_convergence(x, y, params: NFWParams):
    r"""NFW convergence :math:`\kappa = 2\kappa_s(1-F(x))/(x^2-1)`.

    Bartelmann (1996) eq. 11; the x -> 1 limit 2 kappa_s/3 is handled by a series.

    Args:
        x: x [arcsec].
        y: y [arcsec].
        params: NFW parameters.

    Returns:
        kappa.
    """
    _, _, _, u = _xy_scaled(x, y, params)
    d = u - 1
    near = jnp.abs(d) < 1e-3
    us = jnp.where(near, 0.5, u)
    far = (1 - _nfw_F(us)) / (us**2 - 1)
    series = 1 / 3 - 0.4 * d + 61 / 105 * d**2
    return 2 * params.kappa_s * jnp.where(near, series, far)


@checked_profile
def nfw_potential(x, y, params: NFWParams):
    r"""NFW potential :math:`\psi = 2\kappa_s\theta_s^2 g(x)` [arcsec^2].

    :math:`g = \ln^2(x/2) - \operatorname{arccosh}^2(1/x)` (x<1),
    :math:`\ln^2(x/2) + \arccos^2(1/x)` (x>1) (Golse & Kneib 2002 eq. 9).

    Args:
        x: x [arcsec].
        y: y [arcsec].
        params: NFW parameters.

    Returns:
        psi [arcsec^2].
    """
    _, _, _, u = _xy_scaled(x, y, params)
    g = jnp.log(u / 2) ** 2 + _nfw_cos_term(u)
    return 2 * params.kappa_s * params.theta_s**2 * g


def _tnfw_L(u, tau):
    return jnp.log(u / (jnp.sqrt(tau**2 + u**2) + tau))


@poison_policy
def tnfw_enclosed_fraction(x, tau):
    r"""TNFW projected mass in units of :math:`4\pi\rho_s r_s^3`.

    Baltz, Marshall & Oguri (2009), JCAP 01, 015, eq. A.8 (n = 1).

    Args:
        x: Projected radius over r_s, > 0.
        tau: Truncation radius over r_s, > 0.

    Returns:
        m(x), same shape.
    """
    t2 = tau**2
    sq = jnp.sqrt(t2 + x**2)
    return (
        t2
        / (t2 + 1) ** 2
        * (
            (t2 + 1 + 2 * (x**2 - 1)) * _nfw_F(x)
            + tau * jnp.pi
            + (t2 - 1) * jnp.log(tau)
            + sq * (-jnp.pi + (t2 - 1) / tau * _tnfw_L(x, tau))
        )
    )


@checked_profile
def tnfw_deflection(x, y, params: TNFWParams):
    r"""Truncated-NFW deflection :math:`4\kappa_s\theta_s m(x)/x` [arcsec].

    Args:
        x: x [arcsec].
        y: y [arcsec].
        params: tNFW parameters.

    Returns:
        (alpha_x, alpha_y) [arcsec].
    """
    dx, dy, r, u = _xy_scaled(x, y, params)
    amp = 4 * params.kappa_s * params.theta_s * tnfw_enclosed_fraction(u, params.tau)
    amp = amp / u
    return amp * dx / r, amp * dy / r


@checked_profile
def tnfw_convergence(x, y, params: TNFWParams):
    r"""Truncated-NFW convergence (Baltz et al. 2009 eq. A.5, n = 1).

    Args:
        x: x [arcsec].
        y: y [arcsec].
        params: tNFW parameters.

    Returns:
        kappa.
    """
    _, _, _, u = _xy_scaled(x, y, params)
    tau = params.tau
    t2 = tau**2
    d = u - 1
    near = jnp.abs(d) < 1e-3
    us = jnp.where(near, 0.5, u)
    first = jnp.where(
        near, 1 / 3 - 0.4 * d + 61 / 105 * d**2, (1 - _nfw_F(us)) / (us**2 - 1)
    )
    sq = jnp.sqrt(t2 + u**2)
    val = (
        (t2 + 1) * first
        + 2 * _nfw_F(u)
        - jnp.pi / sq
        + (t2 - 1) / (tau * sq) * _tnfw_L(u, tau)
    )
    return 2 * params.kappa_s * t2 / (t2 + 1) ** 2 * val


def _nfw_cos_term(u):
    # -arccosh^2(1/u) for u < 1, arccos^2(1/u) for u >= 1 (NFW potential piece).
    lo = -(jnp.arccosh(1 / jnp.where(u < 1, u, 0.5)) ** 2)
    hi = jnp.arccos(1 / jnp.where(u >= 1, u, 2.0)) ** 2
    return jnp.where(u < 1, lo, hi)


@checked_profile
def tnfw_potential(x, y, params: TNFWParams):
    r"""Truncated-NFW lensing potential :math:`\psi = 2\kappa_s\theta_s^2 h(x)`.

    With :math:`u = x^2`, :math:`t = \tau`, :math:`s = \sqrt{t^2+u}`, the
    logarithm :math:`L = \ln(x/(t+s))`, :math:`F` as in :func:`nfw_convergence`
    and :math:`c(x) = -\operatorname{arccosh}^2(1/x)` (x < 1),
    :math:`\arccos^2(1/x)` (x >= 1):

    .. math::
        (t^2+1)^2 h = 2\pi t^2 [t - s + t\ln(t+s)] + 2(t^2-1)\,t\,s\,L
        + t^2(t^2-1)L^2 + 4t^2(u-1)F + t^2(t^2-1)c
        + t^2[(t^2-1)\ln t - t^2 - 1]\ln u
        - t^2[(t^2-1)\ln t\ln(4t) + 2\ln(t/2) - 2t(t-\pi)\ln(2t)]

    Baltz, Marshall & Oguri (2009), JCAP 01, 015, appendix A (n = 1), in the form
    lenstronomy's ``TNFW.function`` evaluates (same additive constant). Its
    gradient is :func:`tnfw_deflection`, its Laplacian twice
    :func:`tnfw_convergence` (both tested).

    Args:
        x: x [arcsec], any shape.
        y: y [arcsec], same shape.
        params: tNFW parameters.

    Returns:
        psi [arcsec^2], shaped like ``x``.
    """
    _, _, _, x_s = _xy_scaled(x, y, params)
    t = params.tau
    t2 = t**2
    u = x_s**2
    sq = jnp.sqrt(t2 + u)
    lx = _tnfw_L(x_s, t)
    log_t = jnp.log(t)
    h = (
        2 * t2 * jnp.pi * (t - sq + t * jnp.log(t + sq))
        + 2 * (t2 - 1) * t * sq * lx
        + t2 * (t2 - 1) * lx**2
        + 4 * t2 * (u - 1) * _nfw_F(x_s)
        + t2 * (t2 - 1) * _nfw_cos_term(x_s)
        + t2 * ((t2 - 1) * log_t - t2 - 1) * jnp.log(u)
        - t2
        * (
            (t2 - 1) * log_t * jnp.log(4 * t)
            + 2 * jnp.log(0.5 * t)
            - 2 * t * (t - jnp.pi) * jnp.log(2 * t)
        )
    ) / (t2 + 1) ** 2
    return 2 * params.kappa_s * params.theta_s**2 * h


# ---------------------------------------------------------------- shear, point mass
@checked_profile
def shear_deflection(x, y, params: ShearParams):
    """External-shear deflection (gamma1 x + gamma2 y, gamma2 x - gamma1 y) [arcsec].

    Args:
        x: x [arcsec] (shear centred on the origin).
        y: y [arcsec].
        params: Shear parameters.

    Returns:
        (alpha_x, alpha_y) [arcsec].
    """
    return (
        params.gamma1 * x + params.gamma2 * y,
        params.gamma2 * x - params.gamma1 * y,
    )


@checked_profile
def shear_convergence(x, y, params: ShearParams):
    """External shear has zero convergence.

    Args:
        x: x [arcsec].
        y: y [arcsec].
        params: Shear parameters.

    Returns:
        Zeros shaped like ``x``.
    """
    return jnp.zeros_like(x) + 0 * params.gamma1


@checked_profile
def shear_potential(x, y, params: ShearParams):
    """External-shear potential (gamma1 (x^2 - y^2)/2 + gamma2 x y) [arcsec^2].

    Args:
        x: x [arcsec].
        y: y [arcsec].
        params: Shear parameters.

    Returns:
        psi [arcsec^2].
    """
    return 0.5 * params.gamma1 * (x**2 - y**2) + params.gamma2 * x * y


@checked_profile
def point_mass_deflection(x, y, params: PointMassParams):
    """Point-mass deflection theta_E^2 (x, y)/r^2 [arcsec].

    Args:
        x: x [arcsec].
        y: y [arcsec].
        params: Point-mass parameters.

    Returns:
        (alpha_x, alpha_y) [arcsec].
    """
    dx, dy = x - params.x0, y - params.y0
    r = _safe_r(dx, dy)
    a = params.theta_e**2 / r**2
    return a * dx, a * dy


@checked_profile
def point_mass_convergence(x, y, params: PointMassParams):
    """Point-mass convergence: zero away from the point (a delta function).

    Args:
        x: x [arcsec].
        y: y [arcsec].
        params: Point-mass parameters.

    Returns:
        Zeros shaped like ``x``.
    """
    return jnp.zeros_like(x) + 0 * params.theta_e


@checked_profile
def point_mass_potential(x, y, params: PointMassParams):
    """Point-mass potential theta_E^2 ln r [arcsec^2].

    Args:
        x: x [arcsec].
        y: y [arcsec].
        params: Point-mass parameters.

    Returns:
        psi [arcsec^2].
    """
    return params.theta_e**2 * jnp.log(_safe_r(x - params.x0, y - params.y0))


# ---------------------------------------------------------- populations and sums
@checked_profile
def subhalo_deflection(x, y, population: SubhaloPopulation):
    """Summed deflection of a padded subhalo population (masked slots add zero).

    Args:
        x: x [arcsec], any shape S.
        y: y [arcsec], shape S.
        population: Profiles with fields of shape (N,) and a mask of shape (N,).

    Returns:
        (alpha_x, alpha_y) [arcsec], shape S.
    """
    prof = population.profile
    fn = tnfw_deflection if isinstance(prof, TNFWParams) else nfw_deflection
    fn = unchecked(fn)  # the population was checked once, not per scan step

    # A scan over subhalos keeps one pixel-sized accumulator in cache instead of
    # materialising (N, pixels) intermediates; each step is one fused loop.
    def step(carry, pm):
        p, m = pm
        dx, dy = fn(x, y, p)
        return (carry[0] + m * dx, carry[1] + m * dy), None

    zero = jnp.zeros_like(x)
    (ax, ay), _ = jax.lax.scan(step, (zero, zero), (prof, population.mask))
    return ax, ay


@checked_profile
def subhalo_convergence(x, y, population: SubhaloPopulation):
    """Summed convergence of a padded subhalo population.

    Args:
        x: x [arcsec], shape S.
        y: y [arcsec], shape S.
        population: Padded population.

    Returns:
        kappa, shape S.
    """
    prof = population.profile
    fn = tnfw_convergence if isinstance(prof, TNFWParams) else nfw_convergence
    fn = unchecked(fn)
    k = jax.vmap(lambda p: fn(x, y, p))(prof)
    m = population.mask.astype(k.dtype).reshape((-1,) + (1,) * x.ndim)
    return jnp.sum(m * k, axis=0)


_DEFLECTION = {
    SISParams: unchecked(sis_deflection),
    SIEParams: unchecked(sie_deflection),
    EPLParams: unchecked(epl_deflection),
    NFWParams: unchecked(nfw_deflection),
    TNFWParams: unchecked(tnfw_deflection),
    ShearParams: unchecked(shear_deflection),
    PointMassParams: unchecked(point_mass_deflection),
    SubhaloPopulation: unchecked(subhalo_deflection),
}
_CONVERGENCE = {
    SISParams: unchecked(sis_convergence),
    SIEParams: unchecked(sie_convergence),
    EPLParams: unchecked(epl_convergence),
    NFWParams: unchecked(nfw_convergence),
    TNFWParams: unchecked(tnfw_convergence),
    ShearParams: unchecked(shear_convergence),
    PointMassParams: unchecked(point_mass_convergence),
    SubhaloPopulation: unchecked(subhalo_convergence),
}
_POTENTIAL = {
    SISParams: unchecked(sis_potential),
    SIEParams: unchecked(sie_potential),
    EPLParams: unchecked(epl_potential),
    NFWParams: unchecked(nfw_potential),
    TNFWParams: unchecked(tnfw_potential),
    ShearParams: unchecked(shear_potential),
    PointMassParams: unchecked(point_mass_potential),
}


def _lookup(table, params, what):
    try:
        return table[type(params)]
    except KeyError:
        raise TypeError(
            f"no {what} for mass component of type {type(params).__name__}; "
            f"expected one of {[t.__name__ for t in table]}."
        ) from None


@checked_profile
def deflection(x, y, components):
    """Total deflection of one mass component or a tuple of them (profiles sum).

    Args:
        x: x [arcsec], any shape.
        y: y [arcsec], same shape.
        components: A params Module or a tuple/list of them (``None`` entries skipped).

    Returns:
        (alpha_x, alpha_y) [arcsec].

    Raises:
        TypeError: If a component type has no deflection.
        ValueError: For a NaN coordinate or an invalid parameter (concrete input);
            under ``jit`` the outputs are NaN instead (poison policy).
    """
    if not isinstance(components, tuple | list):
        components = (components,)
    ax = jnp.zeros_like(x)
    ay = jnp.zeros_like(y)
    for c in components:
        if c is None:
            continue
        dx, dy = _lookup(_DEFLECTION, c, "deflection")(x, y, c)
        ax, ay = ax + dx, ay + dy
    return ax, ay


@checked_profile
def convergence(x, y, components):
    """Total convergence of one mass component or a tuple of them.

    Args:
        x: x [arcsec].
        y: y [arcsec].
        components: A params Module or a tuple/list of them.

    Returns:
        kappa, shaped like ``x``.
    """
    if not isinstance(components, tuple | list):
        components = (components,)
    k = jnp.zeros_like(x)
    for c in components:
        if c is not None:
            k = k + _lookup(_CONVERGENCE, c, "convergence")(x, y, c)
    return k


@checked_profile
def potential(x, y, components):
    """Total lensing potential where every component has a closed form [arcsec^2].

    Args:
        x: x [arcsec].
        y: y [arcsec].
        components: A params Module or a tuple/list of them (not populations).

    Returns:
        psi [arcsec^2].

    Raises:
        TypeError: For components without a closed-form potential
            (``SubhaloPopulation``).
    """
    if not isinstance(components, tuple | list):
        components = (components,)
    p = jnp.zeros_like(x)
    for c in components:
        if c is not None:
            p = p + _lookup(_POTENTIAL, c, "closed-form potential")(x, y, c)
    return p
