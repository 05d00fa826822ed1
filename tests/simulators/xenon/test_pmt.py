"""PMT arrays, light collection, hit patterns, images and TBA (issue 14)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxdm._poison import with_valid
from jaxdm.simulators import xenon
from jaxdm.simulators.xenon import hit_pattern as hp

LZ = xenon.lz_like_pmts()
SMALL = xenon.small_test_pmts()
OPT = xenon.OpticalParams()


def test_presets_counts_and_valid():
    # LZ TDR (arXiv:1703.09144) and XENONnT (arXiv:2402.10446): 253 top, 241 bottom.
    for p, r in ((LZ, 72.8), (xenon.xenonnt_like_pmts(), 66.4)):
        xenon.check_pmt_arrays(p)
        assert (p.n_top, p.n_bottom) == (253, 241)
        assert float(p.tpc_radius) == pytest.approx(r)
    assert (SMALL.n_top, SMALL.n_bottom) == (19, 19)


def test_hex_layout_is_hexagonal():
    xy = xenon.hex_layout(19, 3.5)
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    np.testing.assert_allclose(d.min(axis=1), 3.5, rtol=1e-6)
    # The centre PMT has six nearest neighbours (hexagonal, not square, lattice).
    assert np.sum(np.isclose(d[0], 3.5)) == 6
    np.testing.assert_allclose(xy[0], 0.0, atol=1e-9)


@pytest.mark.parametrize("h", [0.5, 2.0, 10.0])
def test_on_axis_disk_solid_angle_closed_form(h):
    # Omega = 2 pi (1 - h / sqrt(h^2 + a^2)) for a disk of radius a seen on axis.
    a = 3.2
    frac = hp._direct(
        jnp.array(0.0),
        jnp.array(0.0),
        jnp.array(-h),
        jnp.zeros((1, 2)),
        0.0,
        a,
        xenon.LightConfig(n_radial=8),
    )
    exact = 2 * np.pi * (1 - h / np.sqrt(h * h + a * a)) / (4 * np.pi)
    np.testing.assert_allclose(float(frac[0]), exact, rtol=2e-4)


def _fresnel(cos_i, n1, n2):
    """Unpolarised Fresnel reflectance (Born & Wolf sec. 1.5), NumPy, for the tests."""
    sin2_t = (n1 / n2) ** 2 * (1 - cos_i**2)
    cos_t = np.sqrt(np.clip(1 - sin2_t, 0, None))
    rs = ((n1 * cos_i - n2 * cos_t) / (n1 * cos_i + n2 * cos_t)) ** 2
    rp = ((n1 * cos_t - n2 * cos_i) / (n1 * cos_t + n2 * cos_i)) ** 2
    return np.where(sin2_t >= 1, 1.0, 0.5 * (rs + rp))


def _hits(p, xy_arr, hx, hy):
    d2 = (hx[:, None] - xy_arr[:, 0]) ** 2 + (hy[:, None] - xy_arr[:, 1]) ** 2
    return np.any(d2 < float(p.photocathode_radius) ** 2, axis=1)


def _mc_gas_emission(p, o, pos, n_rays, seed=0):
    """Ray-tracing Monte Carlo of a gas-gap source's direct light.

    Isotropic rays from ``pos`` (z in the gas): up to the top plane; down to the
    liquid surface, where a ray is reflected with the Fresnel probability (then
    up to the top plane) or refracted by Snell's law and traced through the
    liquid to the bottom plane (weight ``exp(-L / absorption_length)``), including
    the lateral offset in the gas that the analytic model neglects.

    Returns:
        (top hits, reflected top hits, upward misses, bottom weight, transmitted),
        each a fraction of all rays.
    """
    rng = np.random.default_rng(seed)
    n = float(o.n_liquid)
    cos_t = rng.uniform(-1, 1, n_rays)
    phi = rng.uniform(0, 2 * np.pi, n_rays)
    sin_t = np.sqrt(1 - cos_t**2)
    ux, uy = sin_t * np.cos(phi), sin_t * np.sin(phi)
    z_top, z_liq = float(p.z_top), float(p.z_liquid)
    up = cos_t > 0
    s = (z_top - pos[2]) / cos_t[up]
    top = _hits(p, np.asarray(p.xy_top), pos[0] + s * ux[up], pos[1] + s * uy[up])
    down = ~up
    mu = -cos_t[down]
    s_g = (pos[2] - z_liq) / mu
    sx, sy = pos[0] + s_g * ux[down], pos[1] + s_g * uy[down]
    refl = rng.uniform(size=mu.size) < _fresnel(mu, 1.0, n)
    s_r = (z_top - z_liq) / mu[refl]
    mirror = _hits(
        p,
        np.asarray(p.xy_top),
        sx[refl] + s_r * ux[down][refl],
        sy[refl] + s_r * uy[down][refl],
    )
    tr = ~refl
    sin_l = np.sqrt(1 - mu[tr] ** 2) / n
    cos_l = np.sqrt(1 - sin_l**2)
    depth = z_liq - float(p.z_bottom)
    path = depth / cos_l
    scale = path * sin_l / np.sqrt(1 - mu[tr] ** 2)  # lateral step per unit (ux, uy)
    bx, by = sx[tr] + scale * ux[down][tr], sy[tr] + scale * uy[down][tr]
    bot = _hits(p, np.asarray(p.xy_bottom), bx, by)
    w = np.exp(-path / float(o.absorption_length))
    n_up = up.sum() + refl.sum()
    return (
        top.sum() / n_rays,
        mirror.sum() / n_rays,
        (n_up - top.sum() - mirror.sum()) / n_rays,
        np.sum(w * bot) / n_rays,
        tr.sum() / n_rays,
    )


def _pool_closed_form(p, o):
    """Liquid pool: total top and bottom collection by the series (light_model)."""
    r, a = float(p.tpc_radius), float(p.photocathode_radius)
    h = float(p.z_top - p.z_bottom)
    cap, wall = np.pi * r * r, 2 * np.pi * r * h
    fc, fw = cap / (2 * cap + wall), wall / (2 * cap + wall)
    sv = np.exp(
        -(4 * np.pi * r * r * h / (2 * cap + wall)) / float(o.absorption_length)
    )
    ct, cb = p.n_top * a * a / r**2, p.n_bottom * a * a / r**2
    t, rf = float(o.tir_fraction), float(o.ptfe_reflectivity)
    back = sv * (fc * t + fc * (1 - t) * (1 - ct) * rf + fc * (1 - cb) * rf + fw * rf)
    return sv * fc * (1 - t) * ct / (1 - back), sv * fc * cb / (1 - back)


@pytest.mark.parametrize("pos", [(0.0, 0.0), (-60.0, 25.0)])
def test_mean_s2_pattern_matches_ray_tracing(pos):
    # The direct parts (up, Fresnel mirror, Snell-refracted down with attenuation)
    # against an independent ray-tracing Monte Carlo; the diffuse parts (gas slab
    # and liquid pool) by their geometric series, with the Lambertian surface
    # reflectance integrated here by scipy.
    from scipy.integrate import quad

    o = OPT
    z_s2 = float(LZ.z_s2)
    n_rays = 400_000
    top, mirror, missed, bot, trans = _mc_gas_emission(LZ, o, (*pos, z_s2), n_rays)
    n = float(o.n_liquid)
    r_l = 2 * quad(lambda m: float(_fresnel(m, 1.0, n)) * m, 0, 1)[0]
    cov = LZ.n_top * float(LZ.photocathode_radius) ** 2 / float(LZ.tpc_radius) ** 2
    rg = float(o.gas_reflectivity)
    back = missed * rg / (1 - r_l * (1 - cov) * rg)
    pool_top, pool_bot = _pool_closed_form(LZ, o)
    rest = trans - bot + back * (1 - r_l)
    want_top = top + mirror + back * r_l * cov + rest * pool_top
    want_bot = bot + rest * pool_bot
    m = xenon.light_collection_map(*pos, pmts=LZ, optics=o, signal="s2")
    got_top, got_bot = float(m[: LZ.n_top].sum()), float(m[LZ.n_top :].sum())
    sd = np.sqrt(0.5 / n_rays)
    assert abs(got_top - want_top) < 4 * sd + 2e-3 * want_top
    assert abs(got_bot - want_bot) < 4 * sd + 2e-3 * want_bot


def test_s2_light_is_top_heavy_within_published_range():
    # XENON1T: S2 area fraction top (AFT) ~0.63 at large S2 (centre of the AFT
    # band, XENON1T analysis arXiv:1906.04717, coded in the public straxen
    # x1t_cuts.S2AreaFractionTop: 0.62-0.66), science-run window 0.5-0.72; TBA =
    # 2 AFT - 1. The LZ-like and XENONnT-like presets (their own gas gaps and
    # top-array heights) must be top-heavy within AFT 0.55-0.77 (TBA 0.1-0.54) in
    # the bulk, and the S2 TBA must fall toward the wall (less top solid angle).
    for pmts in (LZ, xenon.xenonnt_like_pmts()):
        r = jnp.array([0.0, 0.5, 0.85]) * pmts.tpc_radius
        m = xenon.light_collection_map(r, 0.0, pmts=pmts, signal="s2")
        tba = np.asarray(xenon.top_bottom_asymmetry(m, pmts))
        assert np.all((tba[:2] > 0.1) & (tba[:2] < 0.54)), tba
        assert tba[2] < tba[0]
    # Without the gas-gap geometry (all S2 light treated like liquid light at the
    # surface), the same detector would be bottom-heavy: the TBA sign is physics.
    m1 = xenon.light_collection_map(0.0, 0.0, -0.01, pmts=LZ, signal="s1")
    assert float(xenon.top_bottom_asymmetry(m1, LZ)) < 0.1


def test_fresnel_and_refraction_conserve_light():
    from jaxdm.simulators.xenon import light_model as lm

    n = 1.69
    # Normal incidence: ((n - 1) / (n + 1))^2; total reflection beyond critical.
    r0 = float(lm.fresnel_reflectance(jnp.asarray(1.0), 1.0, n))
    assert r0 == pytest.approx(((n - 1) / (n + 1)) ** 2, rel=1e-6)
    assert float(lm.fresnel_reflectance(jnp.asarray(0.5), n, 1.0)) == 1.0
    # The refracted intensity over the liquid hemisphere carries the transmitted
    # fraction (1 - R_iso) of the downward half: Snell's Jacobian is right.
    mu = np.linspace(0, 1, 200_001)[1:]
    f = np.asarray(lm._refracted_intensity(jnp.asarray(mu), jnp.asarray(n), 1e-5))
    carried = 0.5 * np.trapezoid(f, mu)  # (1/4pi) int f dOmega over the hemisphere
    r_iso, _ = lm.surface_reflectance_means(jnp.asarray(n))
    assert carried == pytest.approx(0.5 * (1 - float(r_iso)), rel=2e-3)


def test_s1_bottom_fraction_and_depth_dependence():
    # LZ TDR (arXiv:1703.09144, sec. 6.5.3): the bottom array collects ~70% of the S1
    # light, owing to total internal reflection at the liquid surface.
    m = xenon.light_collection_map(0.0, 0.0, -72.8, pmts=LZ)
    bottom = float(m[253:].sum() / m.sum())
    assert 0.62 < bottom < 0.78
    # S1 TBA falls with depth; S2 light is top-heavy in the centre PMT.
    ones = jnp.ones(2)
    mm = xenon.expected_hit_pattern(ones, 0.0, 0.0, jnp.array([-10.0, -140.0]), pmts=LZ)
    tba = xenon.top_bottom_asymmetry(mm, LZ)
    assert float(tba[0]) > float(tba[1]) + 0.1
    s2 = xenon.light_collection_map(0.0, 0.0, pmts=LZ, signal="s2")
    assert int(jnp.argmax(s2)) == 0


def test_total_internal_reflection_cuts_top_s1_light():
    no_tir = eqx.tree_at(lambda o: o.n_liquid, OPT, jnp.asarray(1.0001))
    with_tir = xenon.light_collection_map(0.0, 0.0, -20.0, pmts=LZ)
    without = xenon.light_collection_map(0.0, 0.0, -20.0, pmts=LZ, optics=no_tir)
    # Critical angle 36.3 deg: top PMTs beyond ~20 cm * tan(36.3 deg) ~ 19 cm off
    # axis lose their direct light; those inside keep it.
    r = np.hypot(*np.asarray(LZ.xy_top).T)
    far = r > 30
    near = r < 8
    d_with, d_without = _direct_part(with_tir, OPT), _direct_part(without, no_tir)
    assert float(d_with[:253][far].sum()) < 0.05 * float(d_without[:253][far].sum())
    np.testing.assert_allclose(d_with[:253][near], d_without[:253][near], rtol=2e-3)


def _direct_part(m, o):
    """Split a map into its direct part: m_i = d_i + (1 - D) q_i, sum q = Q."""
    q_top, q_bot = (float(v) for v in hp._pool(LZ, o))
    q = np.concatenate([np.full(LZ.n_top, q_top), np.full(LZ.n_bottom, q_bot)])
    m = np.asarray(m)
    big_d = (m.sum() - q.sum()) / (1 - q.sum())
    return m - (1 - big_d) * q


def test_g1_calibration_round_trip():
    eff = xenon.pmt_efficiency_for_g1(0.1136, LZ)
    o = eqx.tree_at(lambda o: o.pmt_efficiency, OPT, eff)
    g1 = float(o.pmt_efficiency * xenon.mean_s1_collection(LZ, o))
    assert g1 == pytest.approx(0.1136, rel=1e-5)
    with pytest.raises(ValueError, match="g1"):
        xenon.pmt_efficiency_for_g1(0.95, LZ)


@pytest.mark.parametrize("method", ["multinomial", "poisson"])
def test_sample_mean_matches_expected(method):
    n = 5000.0
    keys = jax.random.split(jax.random.key(3), 400)
    draw = jax.jit(
        jax.vmap(
            lambda k: xenon.sample_hit_pattern(
                k, n, 4.0, -3.0, -8.0, pmts=SMALL, method=method
            )
        )
    )
    hits = np.asarray(draw(keys))
    mean = np.asarray(xenon.expected_hit_pattern(n, 4.0, -3.0, -8.0, pmts=SMALL))
    assert np.all(hits >= 0)
    assert np.all(hits == np.round(hits))
    se = np.sqrt(mean / 400)
    assert np.max(np.abs(hits.mean(0) - mean) / se) < 5.0
    # Multinomial: the total is Binomial(n, eff * lce): variance below Poisson's.
    tot = hits.sum(1)
    if method == "multinomial":
        p = mean.sum() / n
        assert np.var(tot) == pytest.approx(n * p * (1 - p), rel=0.25)


def test_image_and_tba():
    hits = xenon.sample_hit_pattern(
        jax.random.key(0), jnp.array([800.0, 0.0]), 20.0, 0.0, pmts=LZ, signal="s2"
    )
    img = xenon.hit_image(hits, LZ, 16)
    assert img.shape == (2, 16, 16)
    np.testing.assert_allclose(img.sum((-1, -2)), hits[:, :253].sum(-1))
    # The brightest pixel lies on the side of the event (x = +20 cm: columns > 8).
    row, col = np.unravel_index(int(jnp.argmax(img[0])), (16, 16))
    assert col >= 8
    assert 6 <= row <= 9
    tba = xenon.top_bottom_asymmetry(hits, LZ)
    t, b = float(hits[0, :253].sum()), float(hits[0, 253:].sum())
    assert float(tba[0]) == pytest.approx((t - b) / (t + b))
    assert np.isnan(float(tba[1]))  # empty pattern: TBA undefined


def test_jit_vmap_grad():
    f = jax.jit(lambda n, x, y, z: xenon.expected_hit_pattern(n, x, y, z, pmts=SMALL))
    xs = jnp.array([0.0, 3.0, -5.0])
    batch = f(100.0, xs, 1.0, -4.0)
    one = jax.vmap(lambda x: f(100.0, x, 1.0, -4.0))(xs)
    np.testing.assert_allclose(batch, one, rtol=1e-6)

    def total(x, y, z, refl):
        o = eqx.tree_at(lambda o: o.ptfe_reflectivity, OPT, refl)
        m = xenon.expected_hit_pattern(100.0, x, y, z, pmts=SMALL, optics=o)
        return jnp.sum(m * jnp.arange(38.0))

    with jax.enable_x64():
        args = (2.0, -1.0, -6.0, 0.9)
        check_grads(total, tuple(jnp.float64(a) for a in args), order=1, modes=["rev"])


def _layout(**kw):
    return eqx.tree_at(
        lambda p: tuple(getattr(p, k) for k in kw), SMALL, tuple(kw.values())
    )


@pytest.mark.parametrize(
    ("pmts", "match"),
    [
        (_layout(xy_top=jnp.array([[0.0, 0.0], [2.0, 0.0]])), "overlap"),
        (_layout(xy_bottom=jnp.array([[0.0, 0.0], [9.5, 0.0]])), "outside the TPC"),
        (_layout(photocathode_radius=jnp.asarray(2.0)), "photocathode_radius"),
        (_layout(z_s2=jnp.asarray(5.0)), "z_s2"),
    ],
)
def test_bad_layouts_raise_eager_and_poison_under_jit(pmts, match):
    """Eagerly a ValueError naming the field; under jit the xenon poison policy:
    every output NaN and the validity flag False (a good layout: flag True)."""
    with pytest.raises(ValueError, match=match):
        xenon.check_pmt_arrays(pmts)
    f = eqx.filter_jit(
        with_valid(lambda p: xenon.expected_hit_pattern(1.0, 0.0, 0.0, -1.0, pmts=p))
    )
    out, valid = f(pmts)
    assert np.all(np.isnan(np.asarray(out)))
    assert not bool(valid)
    out, valid = f(SMALL)
    assert np.all(np.isfinite(np.asarray(out)))
    assert bool(valid)


def test_zero_pmts_raise():
    with pytest.raises(ValueError, match="at least one PMT"):
        xenon.check_pmt_arrays(_layout(xy_top=jnp.zeros((0, 2))))
    with pytest.raises(ValueError, match="`n`"):
        xenon.hex_layout(0, 3.0)
