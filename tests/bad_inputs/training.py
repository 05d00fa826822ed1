"""Bad inputs to the training loop (``jaxdm.train``) and the estimators' trainers.

Training runs on the host (Python loop over compiled epochs), so these cases are
eager only: ``jit`` of ``fit`` makes no sense.
"""

import tempfile
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxdm.nn import Standardizer
from jaxdm.train import fit
from tests.bad_inputs.case import Case

EAGER = ("eager",)


class _Linear(eqx.Module):
    w: jax.Array

    def __call__(self, x):
        return x @ self.w


def _mse(model, batch, key):
    return jnp.mean((jax.vmap(model)(batch["x"]) - batch["y"]) ** 2)


def _data(n=64):
    x = np.array(jax.random.normal(jax.random.key(0), (n, 2)))
    return {"x": x, "y": x @ np.array([1.0, -1.0])}


class _Source:
    """A chunk source whose rows are all NaN."""

    n_rows = 64

    def iter_chunks(self, key, chunk_size):
        yield {"x": np.full((64, 2), np.nan), "y": np.zeros(64)}


def _fit(data=None, *, key=None, loss=_mse, **kw):
    key = jax.random.key(0) if key is None else key
    kw = {"max_epochs": 1, "batch_size": 16, "progress": False, **kw}
    model, _ = fit(key, _Linear(jnp.zeros(2)), loss, _data() if data is None else data,
                   **kw)  # fmt: skip
    return model.w


def _nan_loss(model, batch, key):
    return jnp.nan * _mse(model, batch, key)


def _with_nan_row():
    d = _data()
    d["x"][3, 1] = np.nan
    return d


def _nre_fit(**kw):
    from jaxdm.inference import nre

    m = nre.make_ratio_estimator(jax.random.key(0), theta_dim=1, x_shape=(1,))
    th = np.zeros((32, 1))
    out, _ = nre.train_ratio_estimator(jax.random.key(1), m, th, th, **kw)
    return out.theta_norm.mean


def _npe_fit(**kw):
    from jaxdm.inference import npe

    m = npe.make_npe(jax.random.key(0), theta_dim=1, x_shape=(1,))
    th = np.asarray(jax.random.normal(jax.random.key(1), (32, 1)))
    out, _ = npe.train_npe(jax.random.key(1), m, th, th, progress=False, **kw)
    return out.x_standardizer.mean


_MISSING_DIR = str(Path(tempfile.gettempdir()) / "jaxdm-no-such-dir" / "run.ckpt")

CASES = [
    Case("training.fit: batch_size='64' (a string)", _fit,
         kwargs={"batch_size": "64"}, match="`batch_size` must be an int", modes=EAGER),
    Case("training.fit: max_epochs=2.5", _fit, kwargs={"max_epochs": 2.5},
         match="`max_epochs`", modes=EAGER),
    Case("training.fit: patience=0", _fit, kwargs={"patience": 0},
         match="`patience`", modes=EAGER),
    Case("training.fit: val_fraction=1.5", _fit, kwargs={"val_fraction": 1.5},
         match="`val_fraction`", modes=EAGER),
    Case("training.fit: val_fraction='0.1' (a string)", _fit,
         kwargs={"val_fraction": "0.1"}, match="`val_fraction`", modes=EAGER),
    Case("training.fit: empty dataset", _fit,
         kwargs={"data": {"x": np.zeros((0, 2)), "y": np.zeros(0)}},
         match="`data` is empty", modes=EAGER),
    Case("training.fit: validation_data missing a key", _fit,
         kwargs={"validation_data": {"x": np.zeros((8, 2))}},
         match="`validation_data`.*'y'", modes=EAGER),
    Case("training.fit: validation_data rows of another shape", _fit,
         kwargs={"validation_data": {"x": np.zeros((8, 3)), "y": np.zeros(8)}},
         match=r"`validation_data\['x'\]`", modes=EAGER),
    Case("training.fit: NaN row in data", _fit, kwargs={"data": _with_nan_row()},
         match="`data` has 1 rows with NaN", modes=EAGER),
    Case("training.fit: legacy PRNGKey", _fit, kwargs={"key": jax.random.PRNGKey(0)},
         match="`key`", modes=EAGER),
    Case("training.fit: outliers='drop' (unknown)", _fit,
         kwargs={"outliers": "drop"}, match="`outliers`", modes=EAGER),
    Case("training.fit: checkpoint in a missing directory", _fit,
         kwargs={"checkpoint": _MISSING_DIR}, match="`checkpoint`", modes=EAGER),
    Case("training.fit: every=0", _fit, kwargs={"every": 0},
         match="`every`", modes=EAGER),
    Case("training.fit: chunk source with only NaN rows", _fit,
         kwargs={"data": _Source(), "val_fraction": 0.0}, match="`data`",
         modes=EAGER),
    Case("training.fit: loss_fn always NaN (never a NaN model)", _fit,
         kwargs={"loss": _nan_loss, "val_fraction": 0.0}, match="`loss_fn`",
         modes=EAGER),
    Case("training.Standardizer.fit: NaN rows", Standardizer.fit,
         (np.array([[1.0], [np.nan], [2.0]]),), match="`data` has 1 of 3 rows",
         modes=EAGER),
    Case("training.train_ratio_estimator: batch_size='64'", _nre_fit,
         kwargs={"batch_size": "64"}, match="`batch_size` must be an int",
         modes=EAGER),
    Case("training.train_npe: checkpoint in a missing directory", _npe_fit,
         kwargs={"checkpoint": _MISSING_DIR}, match="`checkpoint`", modes=EAGER),
]  # fmt: skip
