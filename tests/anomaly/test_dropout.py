"""Autoencoder dropout (PyOD's default 0.2) and reuse of fit's compiled epoch."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxdm import anomaly as an, train
from jaxdm.anomaly.autoencoders import dropout_masks
from jaxdm.nn import MLP


def test_dropout_masks_have_rate_and_unit_mean():
    """Inverted dropout: a fraction `rate` of zeros, survivors scaled by 1/(1-p),
    with p the rate on the 2**-16 grid of the 16-bit decisions."""
    ae = an.make_autoencoder(jax.random.key(0), dim=5, width=64, dropout=0.2)
    assert ae.encoder.drop_prob == 13107 / 65536
    masks = ae.encoder.masks(jax.random.key(1), 2000)
    assert len(masks) == 2
    assert masks[0].shape == (2000, 64)
    m = np.asarray(jnp.concatenate([a.ravel() for a in masks]))
    np.testing.assert_array_equal(np.unique(m), np.float32([0.0, 65536 / 52429]))
    # 256,000 Bernoulli(0.8) draws: sd of the zero fraction 8e-4
    assert abs(np.mean(m == 0) - 0.2) < 4e-3
    assert abs(m.mean() - 1.0) < 5e-3


def test_joint_dropout_masks_are_independent():
    """One draw serves encoder and decoder, two units per 32-bit word: the two
    halves of a word, and the two networks, must drop independently (correlation
    sd ~ 1/sqrt(128,000) = 0.003), each at its own rate."""
    ae = an.make_autoencoder(jax.random.key(0), dim=5, width=64, dropout=0.2)
    dec = an.make_autoencoder(jax.random.key(0), dim=5, width=64, dropout=0.5).decoder
    enc_m, dec_m = dropout_masks(jax.random.key(3), 1000, (ae.encoder, dec))
    e = np.concatenate([np.asarray(a) for a in enc_m], 1) == 0
    d = np.concatenate([np.asarray(a) for a in dec_m], 1) == 0
    assert abs(e.mean() - 0.2) < 4e-3
    assert abs(d.mean() - 0.5) < 4e-3
    assert abs(np.corrcoef(e[:, 0::2].ravel(), e[:, 1::2].ravel())[0, 1]) < 0.015
    assert abs(np.corrcoef(e.ravel(), d.ravel())[0, 1]) < 0.015
    # a different key gives different masks; the same key the same
    again = dropout_masks(jax.random.key(3), 1000, (ae.encoder, dec))
    np.testing.assert_array_equal(np.asarray(again[0][0]), np.asarray(enc_m[0]))
    other = dropout_masks(jax.random.key(4), 1000, (ae.encoder, dec))
    assert not np.array_equal(np.asarray(other[0][0]), np.asarray(enc_m[0]))


def test_dropout_only_in_training():
    """The training loss depends on the key (dropout); scores do not: they equal
    those of the same weights built without dropout."""
    x = np.random.default_rng(0).normal(size=(256, 5)).astype(np.float32)
    ae = an.make_autoencoder(jax.random.key(0), dim=5, latent_dim=3, dropout=0.2)
    ae = ae.prepare({"x": x})
    no_drop = an.make_autoencoder(jax.random.key(0), dim=5, latent_dim=3, dropout=0.0)
    no_drop = no_drop.prepare({"x": x})
    batch = {"x": jnp.asarray(x)}
    det = float(no_drop.loss(batch, jax.random.key(0)))
    l1, l2 = (float(ae.loss(batch, jax.random.key(k))) for k in (1, 2))
    assert l1 != l2
    assert l1 != det
    assert float(ae.loss(batch, jax.random.key(1))) == l1
    # the same weights: dropout 0 is the deterministic network, also under jit
    s = jax.jit(jax.vmap(ae._score))(batch["x"])
    np.testing.assert_allclose(s, jax.vmap(no_drop._score)(batch["x"]), rtol=1e-6)


def test_no_dropout_equals_plain_mlp():
    """dropout=0 builds exactly the jaxdm.nn.MLP of the same key (old behaviour)."""
    k_enc = jax.random.split(jax.random.key(3))[0]
    ae = an.make_autoencoder(jax.random.key(3), dim=4, latent_dim=2, dropout=0.0)
    ref = MLP(4, 2, width=64, depth=2, key=k_enc)
    x = jnp.linspace(-1.0, 1.0, 4)
    np.testing.assert_array_equal(ae.encoder(x), ref(x))


def test_fit_score_reuses_the_compiled_epoch(jit_traces):
    """A second fit_score of a same-structure model adds no compiled epoch: the
    loss passed to fit is one module-level function, not a closure per call."""
    x = np.random.default_rng(1).normal(size=(128, 3)).astype(np.float32)
    opt = train.default_optimizer(1e-3)
    kw = dict(optimizer=opt, max_epochs=1, batch_size=32, val_fraction=0.0,
              progress=False)  # fmt: skip
    with jit_traces() as first:
        an.fit_score(jax.random.key(0), an.make_autoencoder(jax.random.key(1), dim=3,
                     width=8), x, **kw)  # fmt: skip
    # The in-memory epoch programs are the ones fit_score compiles: the shuffle /
    # keys (_epoch_plan) and the scan over the minibatches (_scan_epoch).
    assert any("_scan_epoch" in name for name in first), first
    assert any("_epoch_plan" in name for name in first), first
    with jit_traces() as second:
        an.fit_score(jax.random.key(2), an.make_autoencoder(jax.random.key(3), dim=3,
                     width=8), x, **kw)  # fmt: skip
    assert not any("_epoch" in name for name in second), second


def test_epoch_plan_is_shared_between_models_and_deep_svdd_prepares_once(jit_traces):
    """The shuffle program depends only on the data size: a model of another
    structure trained on data of the same size compiles its scan but not the
    shuffle again. Deep SVDD's centre pass is compiled once per structure (not
    once per model, as a jit of the bound method was)."""
    x = np.random.default_rng(1).normal(size=(96, 3)).astype(np.float32)
    kw = dict(optimizer=train.default_optimizer(1e-3), max_epochs=1, batch_size=32,
              val_fraction=0.0, progress=False)  # fmt: skip
    an.fit_score(jax.random.key(0), an.make_autoencoder(jax.random.key(1), dim=3,
                 width=8), x, **kw)  # fmt: skip
    with jit_traces() as first:
        an.fit_score(jax.random.key(0), an.make_deep_svdd(jax.random.key(1), dim=3,
                     width=8, rep_dim=4), x, **kw)  # fmt: skip
    assert any("_scan_epoch" in name for name in first), first
    assert not any("_epoch_plan" in name for name in first), first
    assert any("_mean_representation" in name for name in first), first
    with jit_traces() as second:
        an.fit_score(jax.random.key(2), an.make_deep_svdd(jax.random.key(3), dim=3,
                     width=8, rep_dim=4), x, **kw)  # fmt: skip
    assert not any("_mean_representation" in n or "_epoch" in n for n in second), second


def test_vae_dropout_only_in_training():
    """VAE with dropout: the training loss depends on the dropout key, the score
    does not and equals that of the same weights without dropout."""
    x = np.random.default_rng(0).normal(size=(128, 4)).astype(np.float32)
    vae = an.make_vae(jax.random.key(0), dim=4, dropout=0.2).prepare({"x": x})
    ref = an.make_vae(jax.random.key(0), dim=4, dropout=0.0).prepare({"x": x})
    batch = {"x": jnp.asarray(x)}
    l1, l2 = (float(vae.loss(batch, jax.random.key(k))) for k in (1, 2))
    assert l1 != l2
    assert float(vae.loss(batch, jax.random.key(1))) == l1
    s = jax.jit(jax.vmap(vae._score))(batch["x"])
    np.testing.assert_allclose(s, jax.vmap(ref._score)(batch["x"]), rtol=1e-5)


def test_flat_parameter_vector_round_trip():
    """fit_score trains one flat vector: it holds exactly the trainable arrays
    (not the frozen standardisation) and cuts back into the same model."""
    from jaxdm.anomaly._base import _Flat

    x = np.random.default_rng(2).normal(size=(64, 3)).astype(np.float32)
    ae = an.make_autoencoder(jax.random.key(0), dim=3, width=8).prepare({"x": x})
    flat = _Flat.of(ae)
    trainable = jax.tree.leaves(eqx.filter(flat, train.trainable_filter(flat)))
    assert len(trainable) == 1
    assert trainable[0] is flat.flat
    n_params = sum(a.size for a in jax.tree.leaves(eqx.filter(ae, eqx.is_array)))
    n_std = ae.standardizer.mean.size + ae.standardizer.std.size
    assert flat.flat.size == n_params - n_std
    back = flat.model()
    for a, b in zip(jax.tree.leaves(ae), jax.tree.leaves(back), strict=True):
        np.testing.assert_array_equal(a, b)


def test_first_fit_score_compiles_only_init_and_epoch(caplog):
    """A first fit_score compiles at most three XLA programs: the optimiser's init,
    the epoch's key derivation and shuffle (shared by every model trained on data
    of that size), and the epoch's scan over the minibatches. Eager random ops,
    slicing and ``jnp.asarray`` staging used to add ~10 small compilations, about
    a third of the cold time on CPU (benchmarks/RESULTS.md, anomaly5)."""
    import logging

    x = np.random.default_rng(3).normal(size=(96, 3)).astype(np.float32)
    ae = an.make_autoencoder(jax.random.key(5), dim=3, width=11, latent_dim=1)
    opt = train.default_optimizer(1e-3)
    with jax.log_compiles(True), caplog.at_level(logging.DEBUG, logger="jax"):
        an.fit_score(jax.random.key(6), ae, x, optimizer=opt, max_epochs=2,
                     batch_size=32, val_fraction=0.0, progress=False)  # fmt: skip
    names = {
        r.getMessage().split("jit(")[1].split(")")[0]
        for r in caplog.records
        if r.getMessage().startswith("Finished XLA compilation of jit(")
    }
    assert names <= {"_init_optimizer", "_epoch_plan", "_scan_epoch"}, names


def test_vae_latent_collapses_when_beta_times_dim_exceeds_the_variance():
    """arXiv:2110.12248's loss averages the MSE over the D features, so beta acts
    like a decoder noise variance beta * D on standardised features; as in
    probabilistic PCA (Lucas et al., arXiv:1911.02469), a latent direction is used
    only where the data's variance exceeds it (make_vae). Independent standard
    features (every variance 1): with beta * D = 5 the latent is ignored and the
    held-out reconstruction MSE stays at 1; with beta * D = 0.05 the 2 latents
    carry 2 of the 5 directions, MSE ~3/5."""
    x = np.random.default_rng(0).normal(size=(1500, 5)).astype(np.float32)
    mse = {}
    for beta in (1.0, 0.01):
        vae = an.make_vae(jax.random.key(0), dim=5, latent_dim=2, beta=beta,
                          score_terms="reconstruction")  # fmt: skip
        opt = train.default_optimizer(3e-3)
        m, _ = an.fit_score(jax.random.key(1), vae, x[:1000], optimizer=opt,
                            max_epochs=15, batch_size=64, val_fraction=0.0,
                            progress=False)  # fmt: skip
        mse[beta] = float(np.mean(np.asarray(m.scores(x[1000:]))))
    assert mse[1.0] > 0.9, mse
    assert mse[0.01] < 0.8, mse
