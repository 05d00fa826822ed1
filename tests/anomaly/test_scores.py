"""Anomaly scores on a Gaussian background with an off-centre Gaussian signal."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal, spearmanr

from jaxdm import anomaly as an, train
from jaxdm.train import default_optimizer
from tests.anomaly.conftest import CORR, FIT, D

# Background N(0, CORR) (correlation 0.8), signal N((2, -2, 0), 0.25 I): the signal
# sits ~4.5 background sigma off the background's principal axis, where the optimal
# (likelihood-ratio) AUC is > 0.999. Every score must reach 0.95; a score that ignores
# its input (or a sign error making it "less anomalous") gives <= 0.5.
AUC_BOUND = 0.95
SCORES = ["flow", "ae", "vae", "svdd", "aware", "hyperclass", "combined"]


@pytest.mark.parametrize("name", SCORES)
def test_auc_above_bound(trained, gauss, name):
    m = trained[name]
    auc = float(an.auc(m.scores(gauss["test"]), m.scores(gauss["signal"])))
    assert auc > AUC_BOUND, (name, auc)


def test_flow_ranks_by_true_density(trained, gauss):
    """Spearman(-score, analytic log-density) > 0.95 on held-out background."""
    x = gauss["test"]
    logp = multivariate_normal(np.zeros(D), CORR).logpdf(x)
    rho = spearmanr(-np.asarray(trained["flow"].scores(x)), logp).statistic
    assert rho > 0.95, rho


def test_jit_and_vmap_agree(trained, gauss, jit):
    x = jnp.asarray(gauss["test"][:3])
    for name in ("flow", "vae", "combined"):
        m = trained[name]
        batch = jit(lambda m, x: m.scores(x))(m, x)
        loop = jnp.stack([m.score(v) for v in x])
        np.testing.assert_allclose(batch, loop, rtol=1e-5, atol=1e-6)
        assert jnp.all(jnp.isfinite(batch))


def test_loss_gradients_finite(trained, gauss):
    batch = {"x": jnp.asarray(gauss["train"][:64])}
    for name in ("flow", "ae", "vae", "svdd"):
        grads = eqx.filter_jit(
            eqx.filter_grad(lambda m: m.loss(batch, jax.random.key(0)))
        )(trained[name])
        leaves = jax.tree.leaves(eqx.filter(grads, eqx.is_inexact_array))
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)


def test_vae_loss_is_the_published_formula():
    """L = mean (x - y)^2 + beta sum(sigma^2 + mu^2 - log sigma - 1) (2110.12248).

    Encoder and decoder replaced by fixed maps, the score evaluated by hand.
    """
    mu, log_sigma = np.array([0.3, -0.2]), np.array([0.1, -0.4])
    y = np.array([0.5, 0.0, -1.0])
    vae = an.make_vae(jax.random.key(0), dim=3, latent_dim=2, beta=0.7,
                      standardize=False)  # fmt: skip
    vae = an.VariationalAutoencoder(
        encoder=lambda x: jnp.asarray(np.r_[mu, log_sigma], jnp.float32),
        decoder=lambda z: jnp.asarray(y, jnp.float32) + 0.0 * z[0],
        standardizer=vae.standardizer, beta=0.7, latent_dim=2, standardize=False,
        scope="element", event_shape=(3,), trained=True,
    )  # fmt: skip
    x = np.array([1.0, 2.0, -1.0])
    sig = np.exp(log_sigma)
    want = np.mean((x - y) ** 2) + 0.7 * np.sum(sig**2 + mu**2 - log_sigma - 1)
    assert float(vae.score(jnp.asarray(x, jnp.float32))) == pytest.approx(want, 1e-6)


def test_deep_svdd_has_no_bias_and_does_not_collapse(trained, gauss):
    """Held-out background scores keep a spread; the network has no bias terms.

    Re-enabling biases fails both checks: the structure check at once, and the
    spread check because the network then collapses onto the centre (see the
    collapse test below: the relative spread drops by ~1000x).
    """
    m = trained["svdd"]
    biases = [layer.bias for layer in m.net.layers]
    assert all(b is None for b in biases)
    s = np.asarray(m.scores(gauss["test"]))
    c2 = float(jnp.sum(m.centre.get() ** 2))
    assert s.std() / c2 > 1e-2, (s.std(), c2)


def test_deep_svdd_with_biases_collapses(gauss):
    """The failure mode the bias-free design prevents (Ruff et al. 2018, Prop. 2)."""
    opt = default_optimizer(1e-2, weight_decay=1e-3)
    out = {}
    for bias in (False, True):
        m = an.make_deep_svdd(jax.random.key(3), dim=D, rep_dim=4, width=32, bias=bias)
        m, _ = an.fit_score(jax.random.key(4), m, gauss["train"], optimizer=opt,
                            max_epochs=25, val_fraction=0.0, progress=False,
                            batch_size=128)  # fmt: skip
        s = np.asarray(m.scores(gauss["test"]))
        out[bias] = s.std() / float(jnp.sum(m.centre.get() ** 2))
    assert out[False] > 1e-2 > 1e-3 > out[True], out


def test_untrained_scores_raise(gauss):
    k = jax.random.key(0)
    x = gauss["test"][0]
    for m in (
        an.make_flow_density(k, dim=D),
        an.make_autoencoder(k, dim=D),
        an.make_vae(k, dim=D),
        an.make_deep_svdd(k, dim=D),
        an.make_anomaly_aware(k, dim=D),
        an.make_classifier(k, dim=D),
    ):
        with pytest.raises(ValueError, match="untrained"):
            m.score(x)
        with pytest.raises(ValueError, match="untrained"):
            m.scores(gauss["test"][:3])
        with pytest.raises(ValueError, match="untrained"):
            an.combine_rare_different(m, m, gauss["test"])


def test_nan_event_raises(trained, gauss):
    x = np.array(gauss["test"][:4])
    x[2, 1] = np.nan
    m = trained["ae"]
    with pytest.raises(ValueError, match="`x`"):
        m.score(x[2])
    with pytest.raises(ValueError, match="`xs`"):
        m.scores(x)
    with pytest.raises(eqx.EquinoxRuntimeError, match="xs"):
        eqx.filter_jit(lambda m, x: m.scores(x))(m, jnp.asarray(x))


def test_wrong_shape_raises(trained):
    with pytest.raises(ValueError, match=r"`x` must have shape \(3,\)"):
        trained["flow"].score(jnp.zeros(4))


@pytest.mark.slow
def test_dequantised_flow_on_counts():
    """Dequantised integer column: finite scores, rare counts score higher."""
    rng = np.random.default_rng(0)
    n = 1000
    counts = rng.poisson(5.0, n)
    cont = rng.standard_normal(n)
    x = np.c_[counts, cont].astype(np.float32)
    m = an.make_flow_density(jax.random.key(0), dim=2, n_layers=2, hidden=(16, 16),
                             discrete=[0])  # fmt: skip
    m, _ = an.fit_score(jax.random.key(1), m, x, optimizer=default_optimizer(1e-2),
                        **FIT)  # fmt: skip
    s = np.asarray(m.scores(jnp.array([[5.0, 0.0], [15.0, 0.0]])))
    assert np.isfinite(s).all()
    assert s[1] > s[0] + 3.0


def test_vae_reconstruction_score_drops_the_kl_term():
    """score_terms="reconstruction": the score is the MSE alone at z = mu."""
    mu, log_sigma = np.array([0.3, -0.2]), np.array([0.1, -0.4])
    y = np.array([0.5, 0.0, -1.0])
    base = an.make_vae(jax.random.key(0), dim=3, latent_dim=2, beta=0.7,
                       score_terms="reconstruction", standardize=False)  # fmt: skip
    vae = an.VariationalAutoencoder(
        encoder=lambda x: jnp.asarray(np.r_[mu, log_sigma], jnp.float32),
        decoder=lambda z: jnp.asarray(y, jnp.float32) + 0.0 * z[0],
        standardizer=base.standardizer, beta=0.7, latent_dim=2, standardize=False,
        scope="element", event_shape=(3,), trained=True,
        score_terms=base.score_terms,
    )  # fmt: skip
    x = np.array([1.0, 2.0, -1.0])
    want = np.mean((x - y) ** 2)
    assert float(vae.score(jnp.asarray(x, jnp.float32))) == pytest.approx(want, 1e-6)


def test_deep_svdd_relu_network_is_pyods():
    """activation="relu", output_activation="relu": phi(x) = relu(W2 relu(W1 z)) of
    the standardised event z, bias-free (PyOD 3.6.7's DeepSVDD network), by hand."""
    m = an.make_deep_svdd(jax.random.key(0), dim=3, width=5, rep_dim=4,
                          activation="relu", output_activation="relu")  # fmt: skip
    w1, w2 = (np.asarray(layer.weight) for layer in m.net.layers)
    assert all(layer.bias is None for layer in m.net.layers)
    x = np.array([0.7, -1.2, 0.3], np.float32)
    want = np.maximum(w2 @ np.maximum(w1 @ x, 0.0), 0.0)
    np.testing.assert_allclose(m.represent(jnp.asarray(x)), want, rtol=1e-6)
    default = an.make_deep_svdd(jax.random.key(0), dim=3, width=5, rep_dim=4)
    h = w1 @ x
    np.testing.assert_allclose(default.represent(jnp.asarray(x)),
                               w2 @ np.where(h > 0, h, 0.1 * h), rtol=1e-6)  # fmt: skip


def test_deep_svdd_whitening_sees_the_thin_direction():
    """A background thin along a correlated direction (corr 0.995) and a signal 3 sd
    off along it: per-feature standardisation leaves that direction at 0.5 % of the
    variance and Deep SVDD misses the signal (AUC ~0.45, three keys 0.41-0.48);
    ZCA whitening (the default) gives it unit variance (AUC 0.85-0.88)."""
    rng = np.random.default_rng(0)
    cov = np.array([[1.0, 0.995], [0.995, 1.0]])
    bkg = rng.multivariate_normal([0.0, 0.0], cov, 3000).astype("f4")
    thin_sd = np.array([1.0, -1.0]) * np.sqrt(0.005 / 2)
    sig = (rng.multivariate_normal([0.0, 0.0], cov, 1000) + 3 * thin_sd).astype("f4")
    test = np.concatenate([bkg[2000:], sig])
    auc = {}
    for st in (True, "whiten"):
        m = an.make_deep_svdd(jax.random.key(0), dim=2, rep_dim=4, width=32,
                              standardize=st)  # fmt: skip
        m, _ = an.fit_score(jax.random.key(10), m, bkg[:2000],
                            optimizer=default_optimizer(1e-3), max_epochs=5,
                            batch_size=64, val_fraction=0.0,
                            progress=False)  # fmt: skip
        s = np.asarray(m.scores(test))
        auc[st] = float(an.auc(s[:1000], s[1000:]))
    assert auc["whiten"] > 0.8 > 0.6 > auc[True], auc
    assert an.make_deep_svdd(jax.random.key(0), dim=2).standardize == "whiten"


def test_deep_svdd_fit_uses_its_cpu_compiler_options(monkeypatch, gauss):
    """fit_score compiles Deep SVDD's epoch with its CPU compiler options (on a CPU
    backend) unless the caller passes others; the options change the compilation,
    not the result (weights equal to XLA's defaults to float32 rounding)."""
    seen = []
    program = train._epoch_program

    def spy(options=()):
        seen.append(options)
        return program(options)

    monkeypatch.setattr(train, "_epoch_program", spy)
    kw = dict(max_epochs=2, batch_size=64, val_fraction=0.0, progress=False)
    make = lambda: an.make_deep_svdd(jax.random.key(1), dim=D, rep_dim=4, width=8)  # noqa: E731
    a, _ = an.fit_score(jax.random.key(2), make(), gauss["train"], **kw)
    b, _ = an.fit_score(jax.random.key(2), make(), gauss["train"],
                        compiler_options={}, **kw)  # fmt: skip
    assert jax.default_backend() == "cpu"
    assert seen == [(("xla_cpu_use_fusion_emitters", False),), ()], seen
    for la, lb in zip(a.net.layers, b.net.layers, strict=True):
        np.testing.assert_allclose(la.weight, lb.weight, rtol=1e-5, atol=1e-6)
