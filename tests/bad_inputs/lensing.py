"""Bad inputs to the strong-lensing simulator (policy: poison under jit).

Parameters are built inside the called function from ``jnp`` arrays, so under
``jit`` the constructors' eager checks are skipped and the traced guards must
catch the value (eagerly the constructor or the guard raises ValueError naming the
argument). Under ``jit`` the lensing package follows the poison policy
(:mod:`jaxdm._poison`): every output of the call is NaN (``jit_expect="poison"``);
static errors (shapes, keys, Python config values) still raise.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxdm._poison import with_valid
from jaxdm.simulators import lensing as L
from tests.bad_inputs.case import Case

X = jnp.linspace(-1.0, 1.0, 5)
Y = jnp.linspace(-0.5, 0.5, 5)
CFG = L.ObservationConfig(n_pix=6, pixel_scale=0.2, supersampling=1)
CFG_PSF = L.ObservationConfig(
    n_pix=6, pixel_scale=0.2, supersampling=1, psf=L.GaussianPSF(fwhm=0.3)
)
SUB_CFG = L.SubhaloConfig(max_n=64, normalization="number", tau=6.0)


def _sie_defl(theta_e, q):
    return L.sie_deflection(X, Y, L.SIEParams(theta_e=theta_e, q=q))


def _epl_defl(gamma):
    return L.epl_deflection(X, Y, L.EPLParams(theta_e=jnp.asarray(1.0), gamma=gamma))


def _tnfw_pot(tau):
    return L.tnfw_potential(X, Y, L.TNFWParams(kappa_s=0.1, theta_s=0.3, tau=tau))


def _nfw_conv(theta_s):
    return L.nfw_convergence(X, Y, L.NFWParams(kappa_s=0.1, theta_s=theta_s))


def _deflection_xy(x):
    return L.deflection(x, Y, (L.SISParams(theta_e=jnp.asarray(1.0)),))


def _population(kappa_s):
    pop = L.SubhaloPopulation(
        profile=L.TNFWParams(
            kappa_s=kappa_s,
            theta_s=jnp.full(3, 0.05),
            tau=jnp.full(3, 5.0),
            x0=jnp.zeros(3),
            y0=jnp.zeros(3),
        ),
        mask=jnp.ones(3),
    )
    return L.subhalo_deflection(X, Y, pop)


def _sersic(n, r_e):
    return L.sersic(X, Y, L.SersicParams(amplitude=1.0, r_e=r_e, n=n))


def _gaussian_light(flux):
    return L.surface_brightness(X, Y, (L.GaussianParams(flux=flux, sigma=0.2),))


def _scene(theta_e=1.0, amplitude=3.0, image=None):
    source = (
        L.SersicParams(amplitude=amplitude, r_e=0.2, n=1.5, q=0.8)
        if image is None
        else L.PixelatedParams(image=image, pixel_scale=0.1)
    )
    return L.LensingParams(
        lens=(L.SIEParams(theta_e=theta_e, q=0.8), L.ShearParams(0.01, 0.02)),
        source=(source,),
    )


def _expected(theta_e=1.0, amplitude=3.0, image=None):
    return L.expected_image(_scene(theta_e, amplitude, image), CFG_PSF)


def _simulate(theta_e):
    return L.simulate(jax.random.key(0), _scene(theta_e), CFG)


def _log_likelihood(obs):
    return L.log_likelihood(obs, _scene(jnp.asarray(1.0)), CFG)


def _add_noise(image):
    return L.add_noise(jax.random.key(0), image, CFG)


def _subhalos(sub_norm, m_wdm):
    return L.sample_subhalos(jax.random.key(1), sub_norm, m_wdm, SUB_CFG).mask


def _scene_draw(**bad):
    scene = L.SceneParams(**{k: jnp.asarray(v) for k, v in bad.items()})
    sub = L.SubhaloConfig(max_n=64, normalization="mass", tau=6.0)
    return L.sample_scene(jax.random.key(2), scene, sub)


def _population_image(log10_m_wdm):
    scene = L.SceneParams(log10_m_wdm=log10_m_wdm, sub_norm=jnp.asarray(1e8))
    sub = L.SubhaloConfig(max_n=64, normalization="mass", tau=6.0)
    return L.simulate_population_image(jax.random.key(3), scene, CFG, sub)


def _observe_config(**kw):
    cfg = L.ObservationConfig(n_pix=6, pixel_scale=0.2, supersampling=1, **kw)
    return L.add_noise(jax.random.key(0), jnp.ones((6, 6)), cfg)


def _apply_psf(image):
    return L.apply_psf(image, CFG_PSF)


def _nfw_from_mass(m200):
    return L.nfw_params_from_mass(m200, jnp.asarray(10.0), 0.5, 1.0).kappa_s


def _bad_pixels():
    return jnp.zeros((6, 6)).at[2, 3].set(jnp.nan)


def _population_nan_slot():
    prof = L.TNFWParams(
        kappa_s=jnp.full(3, 0.05),
        theta_s=jnp.full(3, 0.05),
        tau=jnp.full(3, 5.0),
        x0=jnp.asarray([0.0, jnp.nan, 0.1]),
        y0=jnp.zeros(3),
    )
    pop = L.SubhaloPopulation(profile=prof, mask=jnp.asarray([1.0, 0.0, 1.0]))
    return L.LensingParams(
        lens=(L.SISParams(theta_e=1.0), pop), source=(L.GaussianParams(1.0, 0.2),)
    )


NAN = jnp.asarray(jnp.nan)

CASES = [
    Case(
        "lensing.sie_deflection: negative Einstein radius",
        _sie_defl,
        (jnp.asarray(-1.0), jnp.asarray(0.8)),
        match="theta_e",
        jit_expect="poison",
    ),
    Case(
        "lensing.sie_deflection: axis ratio q > 1",
        _sie_defl,
        (jnp.asarray(1.0), jnp.asarray(1.3)),
        match="`(SIEParams\\.)?q`",
        jit_expect="poison",
    ),
    Case(
        "lensing.sie_deflection: NaN Einstein radius",
        _sie_defl,
        (NAN, jnp.asarray(0.8)),
        match="theta_e",
        jit_expect="poison",
    ),
    Case(
        "lensing.epl_deflection: slope gamma = 3.5",
        _epl_defl,
        (jnp.asarray(3.5),),
        match="gamma",
        jit_expect="poison",
    ),
    Case(
        "lensing.nfw_convergence: zero scale radius",
        _nfw_conv,
        (jnp.asarray(0.0),),
        match="theta_s",
        jit_expect="poison",
    ),
    Case(
        "lensing.tnfw_potential: negative truncation",
        _tnfw_pot,
        (jnp.asarray(-2.0),),
        match="tau",
        jit_expect="poison",
    ),
    Case(
        "lensing.deflection: NaN in the x grid",
        _deflection_xy,
        (X.at[2].set(jnp.nan),),
        match="`x`",
        jit_expect="poison",
    ),
    Case(
        "lensing.subhalo_deflection: negative kappa_s in one slot",
        _population,
        (jnp.asarray([0.1, -0.1, 0.1]),),
        match="kappa_s",
        jit_expect="poison",
    ),
    Case(
        "lensing.sersic: index n = 12",
        _sersic,
        (jnp.asarray(12.0), jnp.asarray(0.2)),
        match="`(SersicParams\\.)?n`",
        jit_expect="poison",
    ),
    Case(
        "lensing.sersic: negative r_e",
        _sersic,
        (jnp.asarray(2.0), jnp.asarray(-0.2)),
        match="r_e",
        jit_expect="poison",
    ),
    Case(
        "lensing.surface_brightness: NaN Gaussian flux",
        _gaussian_light,
        (NAN,),
        match="flux",
        jit_expect="poison",
    ),
    Case(
        "lensing.expected_image: negative Einstein radius",
        _expected,
        (jnp.asarray(-0.5),),
        match="theta_e",
        jit_expect="poison",
    ),
    Case(
        "lensing.expected_image: negative source amplitude",
        _expected,
        (jnp.asarray(1.0), jnp.asarray(-3.0)),
        match="amplitude",
        jit_expect="poison",
    ),
    Case(
        "lensing.expected_image: NaN pixel in a pixelated source",
        _expected,
        (jnp.asarray(1.0), jnp.asarray(3.0), _bad_pixels()),
        match="image",
        jit_expect="poison",
    ),
    Case(
        "lensing.expected_image: NaN position of a padded (masked) subhalo",
        lambda lp: L.expected_image(lp, CFG),
        (_population_nan_slot(),),
        match="x0",
        jit_expect="poison",
    ),
    Case(
        "lensing.simulate: negative Einstein radius",
        _simulate,
        (jnp.asarray(-1.0),),
        match="theta_e",
        jit_expect="poison",
    ),
    Case(
        "lensing.log_likelihood: NaN pixel in the observation",
        _log_likelihood,
        (jnp.ones((6, 6)).at[1, 1].set(jnp.nan),),
        match="`image`",
        jit_expect="poison",
    ),
    Case(
        "lensing.log_likelihood: observation of the wrong shape",
        _log_likelihood,
        (jnp.ones((5, 6)),),
        match="`image`",
    ),
    Case(
        "lensing.add_noise: negative expected image (Poisson mean)",
        _add_noise,
        (jnp.ones((6, 6)).at[0, 0].set(-1.0),),
        match="`image`",
        jit_expect="poison",
    ),
    Case(
        "lensing.add_noise: NaN expected image",
        _add_noise,
        (jnp.ones((6, 6)).at[0, 0].set(jnp.nan),),
        match="`image`",
        jit_expect="poison",
    ),
    Case(
        "lensing.apply_psf: inf in the image",
        _apply_psf,
        (jnp.ones((6, 6)).at[0, 0].set(jnp.inf),),
        match="`image`",
        jit_expect="poison",
    ),
    Case(
        "lensing.ObservationConfig: negative exposure time",
        _observe_config,
        kwargs=dict(exposure_time=-100.0),
        match="exposure_time",
    ),
    Case(
        "lensing.ObservationConfig: negative background noise",
        _observe_config,
        kwargs=dict(background_sigma=-0.1),
        match="background_sigma",
    ),
    Case(
        "lensing.sample_subhalos: negative sub_norm",
        _subhalos,
        (jnp.asarray(-5.0), jnp.asarray(jnp.inf)),
        match="sub_norm",
        jit_expect="poison",
    ),
    Case(
        "lensing.sample_subhalos: NaN sub_norm (Poisson mean)",
        _subhalos,
        (NAN, jnp.asarray(jnp.inf)),
        match="sub_norm",
        jit_expect="poison",
    ),
    Case(
        "lensing.sample_subhalos: negative WDM mass",
        _subhalos,
        (jnp.asarray(5.0), jnp.asarray(-3.0)),
        match="m_wdm",
        jit_expect="poison",
    ),
    Case(
        "lensing.sample_scene: negative SceneParams.sub_norm",
        _scene_draw,
        kwargs=dict(sub_norm=-3e9),
        match="sub_norm",
        jit_expect="poison",
    ),
    Case(
        "lensing.sample_scene: negative SceneParams.theta_e",
        _scene_draw,
        kwargs=dict(theta_e=-1.0),
        match="theta_e",
        jit_expect="poison",
    ),
    Case(
        "lensing.simulate_population_image: NaN log10_m_wdm",
        _population_image,
        (NAN,),
        match="log10_m_wdm",
        jit_expect="poison",
    ),
    Case(
        "lensing.nfw_params_from_mass: negative mass",
        _nfw_from_mass,
        (jnp.asarray(-1e9),),
        match="m200",
        jit_expect="poison",
    ),
    Case(
        "lensing.half_mode_mass: zero WDM mass",
        L.half_mode_mass,
        (jnp.asarray(0.0),),
        match="m_wdm",
        jit_expect="poison",
    ),
    Case(
        "lensing.sie_deflection: params built by tree_at (no constructor check)",
        lambda p: L.sie_deflection(X, Y, p),
        (
            eqx.tree_at(
                lambda p: p.theta_e, L.SIEParams(theta_e=1.0), jnp.asarray(-2.0)
            ),
        ),
        match="theta_e",
        jit_expect="poison",
    ),
]

CASES += [
    Case(
        "lensing.sersic_b: unknown convention",
        L.sersic_b,
        (jnp.array(4.0),),
        {"method": "foo"},
        match="method",
        modes=("eager",),
    ),
    Case(
        "lensing.sersic_b: negative index",
        L.sersic_b,
        (jnp.array(-1.0),),
        match="`n`",
        jit_expect="poison",
    ),
]


# vmap with one bad row: NaN in every output of that row only and ``with_valid``
# False exactly there. vmap traces, so an eager run takes the same (poison) path and
# only costs op-by-op dispatch: jit mode only.
def _row_poisoned(bad_row: int, n_rows: int = 3):
    def flagged(out) -> bool:
        out, valid = out
        want = np.arange(n_rows) != bad_row
        if not np.array_equal(np.asarray(valid), want):
            return False
        for leaf in jax.tree_util.tree_leaves(out):
            x = np.asarray(leaf).reshape(n_rows, -1)
            if not (np.all(np.isnan(x[~want])) and np.all(np.isfinite(x[want]))):
                return False
        return True

    return flagged


def _vmap_expected_image(theta_e):
    def one(t):
        params = L.LensingParams(
            lens=(L.SIEParams(theta_e=t, q=0.8),),
            source=(L.SersicParams(amplitude=1.0, r_e=0.3),),
        )
        return with_valid(L.expected_image)(params, CFG_PSF)

    return jax.vmap(one)(theta_e)


def _vmap_sample_subhalos(sub_norm):
    keys = jax.random.split(jax.random.key(4), sub_norm.shape[0])
    draw = jax.vmap(with_valid(L.sample_subhalos), in_axes=(0, 0, None, None))
    return draw(keys, sub_norm, jnp.asarray(3.0), SUB_CFG)


def _vmap_sie_deflection(q):
    def one(qi):
        return with_valid(L.sie_deflection)(X, Y, L.SIEParams(theta_e=1.0, q=qi))

    return jax.vmap(one)(q)


def _vmap_add_noise(scale):
    keys = jax.random.split(jax.random.key(5), scale.shape[0])
    images = scale[:, None, None] * jnp.ones((1, 6, 6))
    return jax.vmap(with_valid(L.add_noise), in_axes=(0, 0, None))(keys, images, CFG)


CASES += [
    Case(
        "lensing.expected_image[vmap]: negative theta_e in row 1 of 3",
        _vmap_expected_image,
        (jnp.asarray([1.0, -1.0, 1.2]),),
        expect="nan",
        modes=("jit",),
        flagged=_row_poisoned(1),
    ),
    Case(
        "lensing.sample_subhalos[vmap]: NaN sub_norm in row 2 of 3",
        _vmap_sample_subhalos,
        (jnp.asarray([5.0, 3.0, jnp.nan]),),
        expect="nan",
        modes=("jit",),
        flagged=_row_poisoned(2),
    ),
    Case(
        "lensing.sie_deflection[vmap]: q > 1 in row 0 of 3",
        _vmap_sie_deflection,
        (jnp.asarray([1.5, 0.8, 0.6]),),
        expect="nan",
        modes=("jit",),
        flagged=_row_poisoned(0),
    ),
    Case(
        "lensing.add_noise[vmap]: negative expected image in row 1 of 3",
        _vmap_add_noise,
        (jnp.asarray([2.0, -1.0, 0.5]),),
        expect="nan",
        modes=("jit",),
        flagged=_row_poisoned(1),
    ),
]
