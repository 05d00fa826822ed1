"""Differentiable simulators: liquid-xenon TPC, strong lensing, gamma-ray sky.

``with_valid(fn)`` wraps a public simulator function so that it returns
``(output, valid)``: under ``jit``/``vmap`` the xenon and lensing packages poison the
outputs of a call (or row) with a bad parameter (NaN, -1, False) instead of raising,
and ``valid`` is False exactly there (see ``jaxdm._poison``).
"""

from jaxdm._poison import with_valid

__all__ = ["with_valid"]
