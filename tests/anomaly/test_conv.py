"""Convolutional AE and beta-VAE scores on small images (hit-pattern-like blobs)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdm import anomaly as an
from jaxdm.train import default_optimizer

H = 8


def _blobs(rng, n, centre):
    """Gaussian spots of width 1.2 px near ``centre`` (jitter 0.5 px), 1 x 8 x 8."""
    yy, xx = np.mgrid[:H, :H]
    c = np.asarray(centre) + 0.5 * rng.standard_normal((n, 2))
    amp = rng.uniform(0.8, 1.2, n)
    img = amp[:, None, None] * np.exp(
        -((yy - c[:, 0, None, None]) ** 2 + (xx - c[:, 1, None, None]) ** 2) / 2.88
    )
    return img[:, None].astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["ae", "vae"])
def test_conv_scores_find_off_centre_spots(kind):
    """Trained on centred spots, the scores rank corner spots as anomalous.

    AUC > 0.9 (an untrained or input-blind score gives ~0.5).
    """
    rng = np.random.default_rng(0)
    bkg = _blobs(rng, 600, (3.5, 3.5))
    test_b, test_s = _blobs(rng, 200, (3.5, 3.5)), _blobs(rng, 200, (1.0, 6.0))
    k = jax.random.key(0)
    if kind == "ae":
        m = an.make_conv_autoencoder(k, image_shape=(1, H, H), latent_dim=2,
                                     channels=(8, 8))  # fmt: skip
    else:
        m = an.make_conv_vae(k, image_shape=(1, H, H), latent_dim=2, beta=0.01,
                             channels=(8, 8))  # fmt: skip
    m, _ = an.fit_score(jax.random.key(1), m, bkg[:500],
                        validation_data={"x": bkg[500:]},
                        optimizer=default_optimizer(1e-2), max_epochs=6,
                        batch_size=50, progress=False)  # fmt: skip
    s_b, s_s = m.scores(test_b), m.scores(test_s)
    assert s_b.shape == (200,)
    assert jnp.all(jnp.isfinite(s_b))
    assert float(an.auc(s_b, s_s)) > 0.9


def test_conv_decoder_shape_check():
    with pytest.raises(ValueError, match="image_shape"):
        an.make_conv_autoencoder(jax.random.key(0), image_shape=(1, 6, 6),
                                 channels=(8, 8))  # fmt: skip
