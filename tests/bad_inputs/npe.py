"""Bad inputs to ``jaxdm.inference.npe`` and the flows' ``sample`` (issues #12, #20).

Non-finite observations raise eagerly (the message lists the rows) and, under jit,
give NaN for exactly those rows; ``jaxdm.inference.finite_rows`` is the row mask.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxdm.inference import finite_rows
from jaxdm.inference.npe import make_npe, train_npe
from tests.bad_inputs.case import Case

_NPE = make_npe(
    jax.random.key(0), theta_dim=2, x_shape=3, embedding_dim=4, embedding_width=8,
    flow_layers=1, flow_hidden=(8,), n_bins=4,
)  # fmt: skip
_KEY = jax.random.key(1)
_X = jax.random.normal(jax.random.key(2), (4, 3))
_X_NAN = _X.at[1, 2].set(jnp.nan)
_X_INF = _X.at[3, 0].set(jnp.inf)
_THETA = jax.random.normal(jax.random.key(3), (4, 2))
_THETA_NAN = _THETA.at[2, 0].set(jnp.nan)
_SMALL = dict(theta_dim=2, x_shape=3)


def _nan_rows(x, rows, *, axis=0):
    """``flagged`` for an output whose leading axis follows the rows of ``x``."""
    bad = np.zeros(len(x), bool)
    bad[list(rows)] = True

    def check(out):
        mask = np.asarray(finite_rows(x))
        if not np.array_equal(mask, ~bad):
            return False
        for leaf in jax.tree.leaves(out):
            a = np.moveaxis(np.asarray(leaf), axis, 0).reshape(len(x), -1)
            if not (np.isnan(a[bad]).all() and np.isfinite(a[~bad]).all()):
                return False
        return True

    return check


def _theta_nan_entry(out):
    a = np.asarray(out)
    return bool(np.isnan(a[2]) and np.isfinite(np.delete(a, 2)).all())


def _all_nan(out):
    return all(np.isnan(np.asarray(leaf)).all() for leaf in jax.tree.leaves(out))


CASES = [
    Case(
        "npe.sample: NaN observation row (eager)",
        _NPE.sample,
        (_KEY, _X_NAN, 5),
        match=r"`x` has non-finite .* rows \[1\]",
        modes=("eager",),
    ),
    Case(
        "npe.sample: NaN observation row (jit: NaN row)",
        _NPE.sample,
        (_KEY, _X_NAN, 5),
        expect="nan",
        modes=("jit",),
        flagged=_nan_rows(_X_NAN, [1]),
    ),
    Case(
        "npe.sample_and_log_prob: inf observation row (eager)",
        _NPE.sample_and_log_prob,
        (_KEY, _X_INF, 5),
        match=r"`x` has non-finite .* rows \[3\]",
        modes=("eager",),
    ),
    Case(
        "npe.sample_and_log_prob: inf observation row (jit: NaN row)",
        _NPE.sample_and_log_prob,
        (_KEY, _X_INF, 5),
        expect="nan",
        modes=("jit",),
        flagged=_nan_rows(_X_INF, [3]),
    ),
    Case(
        "npe.sample: one NaN observation (eager)",
        _NPE.sample,
        (_KEY, _X_NAN[1], 5),
        match="`x` has non-finite",
        modes=("eager",),
    ),
    Case(
        "npe.log_prob: NaN observation row (eager)",
        _NPE.log_prob,
        (_THETA, _X_NAN),
        match=r"`x` has non-finite .* rows \[1\]",
        modes=("eager",),
    ),
    Case(
        "npe.log_prob: NaN observation row (jit: NaN row)",
        _NPE.log_prob,
        (_THETA, _X_NAN),
        expect="nan",
        modes=("jit",),
        flagged=_nan_rows(_X_NAN, [1]),
    ),
    Case(
        "npe.log_prob: NaN theta row (eager)",
        _NPE.log_prob,
        (_THETA_NAN, _X),
        match=r"`theta` has non-finite .* rows \[2\]",
        modes=("eager",),
    ),
    Case(
        "npe.log_prob: NaN theta row (jit: NaN entry, not -inf)",
        _NPE.log_prob,
        (_THETA_NAN, _X),
        expect="nan",
        modes=("jit",),
        flagged=_theta_nan_entry,
    ),
    Case(
        "npe.sample: x of the wrong shape",
        _NPE.sample,
        (_KEY, jnp.ones(4), 5),
        match=r"`x` must have shape \(3,\)",
    ),
    Case(
        "npe.log_prob: theta of the wrong dimension",
        _NPE.log_prob,
        (jnp.ones((4, 3)), _X),
        match="`theta` must have .*theta_dim=2",
    ),
    Case(
        "npe.log_prob: theta rows do not match x rows",
        _NPE.log_prob,
        (jnp.ones((3, 2)), _X),
        match="`theta` must have n_obs=4 rows",
    ),
    Case(
        "npe.sample: n given as a string",
        _NPE.sample,
        (_KEY, _X, "10"),
        match="`n` must be an int",
    ),
    Case(
        "npe.sample: n = 0",
        _NPE.sample,
        (_KEY, _X, 0),
        match="`n` must be >= 1",
    ),
    Case(
        "npe.sample: a batch of keys where one key goes",
        _NPE.sample,
        (jax.random.split(_KEY, 4), _X, 5),
        match="key",
        modes=("eager",),
    ),
    Case(
        "npe.make_npe: flow_layers given as a string",
        make_npe,
        (_KEY,),
        dict(_SMALL, flow_layers="5"),
        match="`flow_layers` must be an int",
    ),
    Case(
        "npe.make_npe: theta_dim given as a string",
        make_npe,
        (_KEY,),
        dict(theta_dim="2", x_shape=3),
        match="`theta_dim` must be an int",
    ),
    Case(
        "npe.make_npe: flow_hidden entry given as a float",
        make_npe,
        (_KEY,),
        dict(_SMALL, flow_hidden=(64.0, 64)),
        match="`flow_hidden` must be an int",
    ),
    Case(
        "npe.make_npe: n_bins = 1",
        make_npe,
        (_KEY,),
        dict(_SMALL, n_bins=1),
        match="`n_bins` must be >= 2",
    ),
    Case(
        "npe.make_npe: zero in x_shape",
        make_npe,
        (_KEY,),
        dict(theta_dim=2, x_shape=(3, 0)),
        match="`x_shape` must be >= 1",
    ),
    Case(
        "npe.train_npe: NaN row in the training x",
        train_npe,
        (_KEY, _NPE, _THETA, _X_NAN),
        dict(progress=False),
        match="`x`",
        modes=("eager",),
    ),
    Case(
        "npe.train_npe: batch_size given as a string",
        train_npe,
        (_KEY, _NPE, _THETA, _X),
        dict(batch_size="64", progress=False),
        match="`batch_size` must be an int",
        modes=("eager",),
    ),
    Case(
        "flows.sample: NaN context (eager)",
        _NPE.flow.sample,
        (_KEY, jnp.full(4, jnp.nan), (3,)),
        match="`context` has non-finite",
        modes=("eager",),
    ),
    Case(
        "flows.sample: NaN context (jit: all samples NaN)",
        _NPE.flow.sample,
        (_KEY, jnp.full(4, jnp.nan), (3,)),
        expect="nan",
        modes=("jit",),
        flagged=_all_nan,
    ),
]
