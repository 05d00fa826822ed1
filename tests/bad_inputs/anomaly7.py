"""Bad-input cases of the Deep SVDD activation options (anomaly7)."""

import jax

from jaxdm import anomaly as an

from .case import Case

_KEY = jax.random.key(0)

CASES = [
    Case("anomaly.make_deep_svdd: bounded activation", an.make_deep_svdd, (_KEY,),
         {"dim": 3, "activation": "tanh"}, match="`activation`",
         modes=("eager",)),
    Case("anomaly.make_deep_svdd: unknown output activation", an.make_deep_svdd,
         (_KEY,), {"dim": 3, "output_activation": "sigmoid"},
         match="`output_activation`", modes=("eager",)),
]  # fmt: skip
