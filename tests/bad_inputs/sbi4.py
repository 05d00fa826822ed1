"""Bad inputs to the NPE flow-family selection (``train_npe(select_flow=...)``)."""

import jax
import numpy as np

from tests.bad_inputs.case import Case

EAGER = ("eager",)


def _train(**kw):
    from jaxdm.inference import npe

    m = npe.make_npe(jax.random.key(0), theta_dim=1, x_shape=(1,), flow_layers=1,
                     flow_hidden=(4,), embedding="identity")  # fmt: skip
    th = np.asarray(jax.random.normal(jax.random.key(1), (32, 1)))
    out, _ = npe.train_npe(jax.random.key(1), m, th, th, progress=False, **kw)
    return out.x_standardizer.mean


CASES = [
    Case(
        "sbi4.train_npe: select_flow='yes' (a string)",
        _train,
        kwargs={"select_flow": "yes"},
        match="`select_flow`",
        modes=EAGER,
    ),
    Case(
        "sbi4.train_npe: select_flow=1 (an int)",
        _train,
        kwargs={"select_flow": 1},
        match="`select_flow`",
        modes=EAGER,
    ),
    Case(
        "sbi4.train_npe: select_flow=None",
        _train,
        kwargs={"select_flow": None},
        match="`select_flow`",
        modes=EAGER,
    ),
]
