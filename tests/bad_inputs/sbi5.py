"""Bad inputs to ``train_npe(lr_backoffs=...)`` and the batched ``nre.resample``."""

import functools

import jax

from tests.bad_inputs.case import Case
from tests.bad_inputs.sbi4 import _train

EAGER = ("eager",)


@functools.cache
def _weighted():
    from jaxdm.inference import nre

    m = nre.make_ratio_estimator(jax.random.key(0), theta_dim=2, x_shape=(2,))
    prior = jax.random.uniform(jax.random.key(1), (64, 2))
    return nre.importance_samples(
        m, prior, jax.random.normal(jax.random.key(2), (3, 2))
    )


def _resample(marginal=0, n=4):
    from jaxdm.inference import nre

    return nre.resample(jax.random.key(0), _weighted(), marginal, n)


CASES = [
    Case(
        "sbi5.train_npe: lr_backoffs=1.5 (not an int)",
        _train,
        kwargs={"lr_backoffs": 1.5},
        match="`lr_backoffs`",
        modes=EAGER,
    ),
    Case(
        "sbi5.train_npe: lr_backoffs=-1",
        _train,
        kwargs={"lr_backoffs": -1},
        match="`lr_backoffs`",
        modes=EAGER,
    ),
    Case(
        "sbi5.resample: marginal out of range (batch of observations)",
        _resample,
        kwargs={"marginal": 1},
        match="`marginal`",
        modes=EAGER,
    ),
    Case(
        "sbi5.resample: n=0 (batch of observations)",
        _resample,
        kwargs={"n": 0},
        match="`n`",
        modes=EAGER,
    ),
]
