"""The bad-input table's case format and outcome classifier.

Each area of the public API lists its cases in ``tests/bad_inputs/<area>.py`` as
``CASES: list[Case]``; ``tests/test_bad_inputs.py`` runs them eagerly and under
``eqx.filter_jit``. Every array among ``args``/``kwargs`` is traced under jit, Python
scalars and static config are not, so a value check must pass through traced code to
be exercised: build bad parameters as ``jnp`` arrays.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import numpy as np

# Outcome classes (the table): a clear error names the argument.
CLEAR = "clear-error"
UNCLEAR = "unclear-error"
NAN = "nan-silent"
FLAGGED = "nan-flagged"
FINITE = "finite-silent"


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input to one public function.

    Attributes:
        id: Short unique name, ``"area.function: what is bad"``.
        fn: The public callable.
        args: Positional arguments (arrays are traced under jit).
        kwargs: Keyword arguments (arrays traced, other leaves static under jit).
        expect: ``"raise"`` (an error whose message matches ``match``) or ``"nan"``
            (the documented poison: ``flagged(out)`` must hold).
        match: Regex the error message must contain: the public argument's name.
        modes: Which of ``"eager"``/``"jit"`` to run.
        flagged: For ``expect="nan"``: ``flagged(out) -> bool`` checks NaN in exactly
            the bad rows and the documented flag/mask.
        jit_expect: Outcome under jit when it differs from ``expect`` (``"poison"``
            for the packages with the traced poison policy: eagerly they raise).
    """

    id: str
    fn: Callable[..., Any]
    args: tuple = ()
    kwargs: dict = dataclasses.field(default_factory=dict)
    expect: str = "raise"
    match: str | None = None
    modes: tuple[str, ...] = ("eager", "jit")
    flagged: Callable[[Any], bool] | None = None
    jit_expect: str | None = None

    def expect_in(self, mode: str) -> str:
        """The expected outcome in ``mode``: ``jit_expect`` under jit when given.

        ``jit_expect="poison"`` is the traced poison policy (``jaxdm._poison``): every
        array output fully poisoned (``flagged``, default :func:`all_poisoned`).
        """
        if mode == "jit" and self.jit_expect is not None:
            return self.jit_expect
        return self.expect


def run(case: Case, mode: str):
    """Call the case eagerly or compiled; return ``(output, exception)``."""
    fn = case.fn if mode == "eager" else eqx.filter_jit(case.fn)
    try:
        out = fn(*case.args, **case.kwargs)
        out = jax.block_until_ready(out)
    except Exception as err:  # noqa: BLE001 - classified below
        return None, err
    return out, None


def classify(case: Case, mode: str) -> tuple[str, str]:
    """Run a case and return ``(outcome class, detail)``."""
    out, err = run(case, mode)
    if err is not None:
        msg = f"{type(err).__name__}: {err}"
        ok = case.match is not None and re.search(case.match, str(err))
        return (CLEAR if ok else UNCLEAR), msg[:300]
    leaves = [
        np.asarray(leaf)
        for leaf in jax.tree_util.tree_leaves(out)
        if isinstance(leaf, jax.Array | np.ndarray | float)
        and not jax.dtypes.issubdtype(np.asarray(leaf).dtype, jax.dtypes.prng_key)
    ]
    nonfinite = any(
        np.issubdtype(x.dtype, np.inexact) and not np.all(np.isfinite(x))
        for x in leaves
    )
    expect = case.expect_in(mode)
    flagged = case.flagged
    if expect == "poison" and flagged is None:
        flagged = all_poisoned
    if expect in ("nan", "poison") and flagged is not None and flagged(out):
        return FLAGGED, "NaN in the bad rows and flagged"
    return (NAN if nonfinite else FINITE), "returned without error"


def all_poisoned(out) -> bool:
    """True if every array leaf of ``out`` carries the poison of ``jaxdm._poison``.

    Floating leaves all NaN, signed integer leaves all -1, boolean leaves all False
    (PRNG keys ignored); at least one floating or integer leaf must exist.
    """
    seen = False
    for leaf in jax.tree_util.tree_leaves(out):
        if not isinstance(leaf, jax.Array | np.ndarray):
            continue
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            continue
        x = np.asarray(leaf)
        if np.issubdtype(x.dtype, np.inexact):
            ok, seen = bool(np.all(np.isnan(x))), True
        elif np.issubdtype(x.dtype, np.bool_):
            ok = not bool(np.any(x))
        elif np.issubdtype(x.dtype, np.signedinteger):
            ok, seen = bool(np.all(x == -1)), True
        else:
            ok = True
        if not ok:
            return False
    return seen
