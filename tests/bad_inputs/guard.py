"""Bad inputs for the fused xenon event checks and the lensing pixel-scale design.

``xenon.simulate_events`` fuses its parameter checks into one condition on the
parameters when traced (``jaxdm.simulators.xenon._guards.attach_to_leaves``), which
poisons its outputs (xenon's traced poison policy); these cases cover each object it
checks (detector field and relation, spectrum grid, yields) under ``jit`` (jit only:
the eager path, which raises naming the argument, is the xenon table's).
``jaxdm.design.lensing_pixels`` takes the pixel scale as a traced design variable.
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from jaxdm.design import lensing_pixels as lp
from jaxdm.simulators import lensing, xenon
from tests.bad_inputs.case import Case

_KEY = jax.random.key(0)
_DET = xenon.lz_like()
_ER = xenon.flat_er_spectrum(1.0, e_min=1.0, e_max=20.0, n_grid=8)


def _events(source, detector, yields=None):
    return xenon.simulate_events(_KEY, source, detector, 16, yields=yields)


def _det(**kw):
    names = tuple(kw)
    return eqx.tree_at(
        lambda d: tuple(getattr(d, n) for n in names),
        _DET,
        tuple(jnp.asarray(v, dtype=jnp.float32) for v in kw.values()),
    )


_SCENE = lensing.LensingParams(
    lens=(lensing.SIEParams(theta_e=1.0, q=0.8, phi=0.3, x0=0.0, y0=0.0),),
    source=(
        lensing.SersicParams(
            amplitude=2.0, r_e=0.25, n=1.0, q=0.8, phi=0.2, x0=0.05, y0=0.0
        ),
    ),
)


def _image(pixel_scale, psf_fwhm=0.15):
    return lp.expected_image_at_scale(
        _SCENE, pixel_scale, n_pix=8, supersampling=1, psf_fwhm=psf_fwhm
    )


CASES = [
    Case(
        "guard.simulate_events: g1 > 1",
        _events,
        (_ER, _det(g1=1.2)),
        match=r"detector\.g1",
        modes=("jit",),
        jit_expect="poison",
    ),
    Case(
        "guard.simulate_events: NaN drift field",
        _events,
        (_ER, _det(drift_field=float("nan"))),
        match=r"detector\.drift_field",
        modes=("jit",),
        jit_expect="poison",
    ),
    Case(
        "guard.simulate_events: fiducial z_min above z_max",
        _events,
        (_ER, _det(fid_z_min=-10.0, fid_z_max=-20.0)),
        match=r"detector\.fid_z_min",
        modes=("jit",),
        jit_expect="poison",
    ),
    Case(
        "guard.simulate_events: energy grid not increasing",
        _events,
        (eqx.tree_at(lambda s: s.energy, _ER, _ER.energy[::-1]), _DET),
        match=r"source\.energy",
        modes=("jit",),
        jit_expect="poison",
    ),
    Case(
        "guard.simulate_events: negative ER Fano factor",
        _events,
        (_ER, _DET, xenon.YieldParams(er_fano=jnp.asarray(-1.0))),
        match=r"yields\.er_fano",
        modes=("jit",),
        jit_expect="poison",
    ),
    Case(
        "guard.expected_image_at_scale: pixel_scale 0",
        _image,
        (jnp.asarray(0.0),),
        match="`pixel_scale`",
    ),
    Case(
        "guard.expected_image_at_scale: negative pixel_scale",
        _image,
        (jnp.asarray(-0.1),),
        match="`pixel_scale`",
    ),
    Case(
        "guard.expected_image_at_scale: NaN pixel_scale",
        _image,
        (jnp.asarray(float("nan")),),
        match="`pixel_scale`",
    ),
    Case(
        "guard.expected_image_at_scale: vector pixel_scale",
        _image,
        (jnp.array([0.1, 0.2]),),
        match="`pixel_scale`",
    ),
    Case(
        "guard.expected_image_at_scale: negative psf_fwhm",
        _image,
        (jnp.asarray(0.1), jnp.asarray(-0.1)),
        match="`psf_fwhm`",
    ),
    Case(
        "guard.pixel_variance: negative read noise",
        lp.pixel_variance,
        (
            jnp.ones((2, 2)),
            jnp.asarray(0.1),
            lp.PixelNoise(read_noise=jnp.asarray(-1.0)),
        ),
        match=r"noise\.read_noise",
    ),
    Case(
        "guard.pixel_variance: exposure time 0",
        lp.pixel_variance,
        (
            jnp.ones((2, 2)),
            jnp.asarray(0.1),
            lp.PixelNoise(exposure_time=jnp.asarray(0.0)),
        ),
        match=r"noise\.exposure_time",
    ),
    Case(
        "guard.pixel_variance: noise of the wrong type",
        lp.pixel_variance,
        (jnp.ones((2, 2)), jnp.asarray(0.1), {"read_noise": 1.0}),
        match="`noise`",
    ),
    Case(
        "guard.field_of_view_margin: negative radius",
        lp.field_of_view_margin,
        (jnp.asarray(0.1), 32, jnp.asarray(-1.0)),
        match="`radius`",
    ),
    Case(
        "guard.field_of_view_margin: n_pix 0",
        lp.field_of_view_margin,
        (jnp.asarray(0.1), 0, jnp.asarray(1.0)),
        match="n_pix",
    ),
]
