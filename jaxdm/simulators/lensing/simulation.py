"""Lensed images: noise-free expectation, noisy draws, likelihood and WDM scenes."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from jaxdm._checks import check_key
from jaxdm._poison import poison_policy

from ._guards import guard_components, guard_finite, guard_module, unchecked
from .light import SersicParams, surface_brightness
from .mass import ShearParams, SIEParams, SubhaloPopulation, deflection
from .observe import ObservationConfig, _apply_psf, add_noise, subpixel_grids
from .subhalos import SubhaloConfig, population_from_draw, sample_subhalos


class LensingParams(eqx.Module):
    """A lensing scene: mass components, source light and lens light.

    Attributes:
        lens: Tuple of mass-profile params (SIE, shear, EPL, NFW, tNFW, point mass,
            ``SubhaloPopulation`` ...); deflections add.
        source: Tuple of light params in the source plane (Sersic, Gaussian,
            pixelated) [e-/s/arcsec^2].
        lens_light: Tuple of light params in the image plane (unlensed).
    """

    lens: tuple
    source: tuple
    lens_light: tuple = ()


# Up to this many sub-pixels per pixel the passes are unrolled (see expected_image).
_UNROLL_MAX_SUBPIXELS = 4


@poison_policy
def expected_image(params: LensingParams, config: ObservationConfig):
    r"""Noise-free image [e-/s per pixel], differentiable in every parameter.

    Rays are shot from an ``supersampling``-times finer grid through the lens
    equation :math:`\beta = \theta - \alpha(\theta)`, the source (plus lens light)
    surface brightness is averaged over sub-pixels and multiplied by the pixel area,
    then convolved with the PSF with a zero boundary (see :func:`apply_psf`: banded
    matmuls for separable kernels, zero-padded FFT otherwise).

    Args:
        params: Scene parameters.
        config: Observation config (static).

    Returns:
        Image, shape (n_pix, n_pix).

    Raises:
        ValueError: For an invalid or non-finite parameter, naming it (e.g.
            ``SIEParams.theta_e``); under ``jit`` the image is NaN instead (poison
            policy, :mod:`jaxdm._poison`).
    """
    # Checked once here; the ray-shooting loop below uses the unchecked profiles.
    params = LensingParams(
        lens=guard_components(params.lens),
        source=guard_components(params.source),
        lens_light=guard_components(params.lens_light),
    )
    lens_deflection = unchecked(deflection)
    brightness_of = unchecked(surface_brightness)
    leaves = jax.tree_util.tree_leaves(params)
    dtype = jnp.result_type(*leaves) if leaves else jnp.result_type(float)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    xs, ys = subpixel_grids(
        config.n_pix, config.pixel_scale, config.supersampling, dtype
    )

    def brightness(x, y):
        ax, ay = lens_deflection(x, y, params.lens)
        sb = brightness_of(x - ax, y - ay, params.source)
        if params.lens_light:
            sb = sb + brightness_of(x, y, params.lens_light)
        return sb

    # Sub-pixel offsets are summed as separate pixel-sized passes rather than
    # reducing an (n*s, n*s) array: on XLA:CPU a reduction (or an FFT) consuming the
    # ray-shooting loop splits it into many materialised loops, 3-5x slower. Few
    # offsets are unrolled (fastest), many go through a scan (bounded compile time).
    n_sub = config.supersampling**2
    if n_sub <= _UNROLL_MAX_SUBPIXELS:
        total = brightness(xs[0], ys[0])
        for k in range(1, n_sub):
            total = total + brightness(xs[k], ys[k])
    else:

        def step(acc, xy):
            return acc + brightness(*xy), None

        total, _ = jax.lax.scan(step, jnp.zeros(xs.shape[1:], dtype), (xs, ys))
    img = total * (config.pixel_scale**2 / n_sub)
    return _apply_psf(img, config)


@poison_policy
def simulate(key, params: LensingParams, config: ObservationConfig):
    """Draw a noisy image: Poisson shot noise plus Gaussian background.

    Args:
        key: Typed PRNG key.
        params: Scene parameters.
        config: Observation config.

    Returns:
        Noisy image [e-/s per pixel], shape (n_pix, n_pix).
    """
    check_key(key)
    return add_noise(key, expected_image(params, config), config)


@poison_policy
def log_likelihood(image, params: LensingParams, config: ObservationConfig):
    r"""Gaussian log-likelihood of an image under the Poisson + background model.

    Variance per pixel :math:`\max(\mu,0)/t + \sigma_{bkg}^2` (Gaussian limit of
    the shot noise), summed over pixels including the normalisation.

    Args:
        image: Observed image, shape (n_pix, n_pix) [e-/s per pixel].
        params: Scene parameters.
        config: Observation config.

    Returns:
        Scalar log-likelihood.

    Raises:
        ValueError: If the image shape does not match the config, or it has
            NaN/inf pixels (under ``jit``: the result is NaN, poison policy).
    """
    image = guard_finite(jnp.asarray(image), "image")
    if image.shape != (config.n_pix, config.n_pix):
        raise ValueError(
            f"`image` must have shape {(config.n_pix, config.n_pix)}; "
            f"got {image.shape}."
        )
    mu = expected_image(params, config)
    var = jnp.maximum(mu, 0) / config.exposure_time + config.background_sigma**2
    var = jnp.maximum(var, 1e-12)
    return -0.5 * jnp.sum((image - mu) ** 2 / var + jnp.log(2 * jnp.pi * var))


class SceneParams(eqx.Module):
    """Named scalars of a standard WDM lensing scene (easy to ravel for inference).

    Main lens SIE + external shear, elliptical Sersic source, subhalo population.

    Attributes:
        theta_e: Main-lens Einstein radius [arcsec].
        q: Main-lens axis ratio in (0, 1].
        phi: Main-lens position angle [rad].
        x0: Main-lens centre x [arcsec].
        y0: Main-lens centre y [arcsec].
        gamma1: External shear component 1.
        gamma2: External shear component 2.
        src_amplitude: Source I_e [e-/s/arcsec^2].
        src_r_e: Source half-light radius [arcsec].
        src_n: Source Sersic index.
        src_q: Source axis ratio.
        src_phi: Source position angle [rad].
        src_x: Source centre x [arcsec].
        src_y: Source centre y [arcsec].
        log10_m_wdm: log10 of the thermal-relic WDM mass [keV] (large = CDM).
        sub_norm: Subhalo normalisation (see ``SubhaloConfig.normalization``), >= 0.
    """

    _RULES: ClassVar[dict] = {
        "theta_e": (">=0",),
        "q": ("range", 0.0, 1.0, "right"),
        "src_amplitude": (">=0",),
        "src_r_e": (">0",),
        "src_n": ("range", 0.2, 10.0, "both"),
        "src_q": ("range", 0.0, 1.0, "right"),
        "log10_m_wdm": ("not-nan|-inf",),
        "sub_norm": (">=0",),
    }

    theta_e: jax.Array = eqx.field(converter=jnp.asarray, default=1.0)
    q: jax.Array = eqx.field(converter=jnp.asarray, default=0.8)
    phi: jax.Array = eqx.field(converter=jnp.asarray, default=0.3)
    x0: jax.Array = eqx.field(converter=jnp.asarray, default=0.0)
    y0: jax.Array = eqx.field(converter=jnp.asarray, default=0.0)
    gamma1: jax.Array = eqx.field(converter=jnp.asarray, default=0.02)
    gamma2: jax.Array = eqx.field(converter=jnp.asarray, default=-0.01)
    src_amplitude: jax.Array = eqx.field(converter=jnp.asarray, default=5.0)
    src_r_e: jax.Array = eqx.field(converter=jnp.asarray, default=0.2)
    src_n: jax.Array = eqx.field(converter=jnp.asarray, default=1.0)
    src_q: jax.Array = eqx.field(converter=jnp.asarray, default=0.7)
    src_phi: jax.Array = eqx.field(converter=jnp.asarray, default=-0.4)
    src_x: jax.Array = eqx.field(converter=jnp.asarray, default=0.05)
    src_y: jax.Array = eqx.field(converter=jnp.asarray, default=0.1)
    log10_m_wdm: jax.Array = eqx.field(converter=jnp.asarray, default=3.0)
    sub_norm: jax.Array = eqx.field(converter=jnp.asarray, default=3e9)


@poison_policy
def sample_scene(key, scene: SceneParams, sub_config: SubhaloConfig) -> LensingParams:
    """Build a full ``LensingParams`` from named scalars, drawing the subhalos.

    Vmappable over ``key`` and ``scene``. The macro-model part is differentiable; the
    subhalo draw is not differentiable in ``log10_m_wdm``/``sub_norm``.

    Args:
        key: Typed PRNG key.
        scene: Named scene scalars.
        sub_config: Subhalo population settings (static).

    Returns:
        LensingParams with lens = (SIE, shear, subhalos), source = (Sersic,).
    """
    check_key(key)
    scene = guard_module(scene)
    m_wdm = 10.0**scene.log10_m_wdm
    draw = sample_subhalos(
        key,
        scene.sub_norm,
        m_wdm,
        sub_config,
        center=(scene.x0, scene.y0),
        theta_e=scene.theta_e,
    )
    subs: SubhaloPopulation = population_from_draw(draw, m_wdm, sub_config)
    lens = (
        SIEParams(
            theta_e=scene.theta_e, q=scene.q, phi=scene.phi, x0=scene.x0, y0=scene.y0
        ),
        ShearParams(gamma1=scene.gamma1, gamma2=scene.gamma2),
        subs,
    )
    src = SersicParams(
        amplitude=scene.src_amplitude,
        r_e=scene.src_r_e,
        n=scene.src_n,
        q=scene.src_q,
        phi=scene.src_phi,
        x0=scene.src_x,
        y0=scene.src_y,
    )
    return LensingParams(lens=lens, source=(src,))


@poison_policy
def simulate_population_image(
    key, scene: SceneParams, config: ObservationConfig, sub_config: SubhaloConfig
):
    """Noisy image of a scene with a freshly drawn subhalo population.

    Args:
        key: Typed PRNG key (split into subhalo and noise keys).
        scene: Named scene scalars.
        config: Observation config.
        sub_config: Subhalo config.

    Returns:
        Noisy image [e-/s per pixel], shape (n_pix, n_pix).
    """
    check_key(key)
    k_sub, k_noise = jax.random.split(key)
    params = sample_scene(k_sub, scene, sub_config)
    return simulate(k_noise, params, config)
