"""Bad inputs to ``jaxdm.inference.diagnostics``.

Policy (``docs/architecture.md``): eagerly a non-finite row raises ValueError naming
the argument and the rows; under jit the per-row outputs are NaN in exactly those rows
and the results carry ``valid``/``n_invalid`` (coverage and TARP average over the
valid rows only). Host-side functions (``sbc_uniformity``, ``c2st``) always raise.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxdm.inference import diagnostics as D
from tests.bad_inputs.case import Case

N, L, DIM = 6, 12, 2
_THETA = jax.random.normal(jax.random.key(0), (N, DIM))
_X = _THETA + 0.3 * jax.random.normal(jax.random.key(1), (N, DIM))
_SAMPLES = _X[:, None, :] + 0.3 * jax.random.normal(jax.random.key(2), (N, L, DIM))
_LPS = jax.random.normal(jax.random.key(3), (N, L))
_LPT = jax.random.normal(jax.random.key(4), (N,))
_KEY = jax.random.key(5)
_BAD_ROW = 2


def _row_nan(a, row=_BAD_ROW, value=jnp.nan):
    return a.at[(row,) + (0,) * (a.ndim - 1)].set(value)


def _sample_fn(key, x, n):
    return x[None, :] + 0.3 * jax.random.normal(key, (n, x.shape[0]))


def _log_prob_fn(theta, x):
    return -0.5 * jnp.sum(((theta - x) / 0.3) ** 2)


def _only_bad_row_nan(per_row):
    """NaN in every entry of the bad row and nowhere else."""
    a = np.asarray(per_row).reshape(N, -1)
    nan_rows = np.isnan(a).any(axis=1)
    return bool(np.isnan(a[_BAD_ROW]).all()) and np.flatnonzero(nan_rows).tolist() == [
        _BAD_ROW
    ]


def _flag_ok(res):
    """Per-row NaN only in the bad row, mask and count report it, aggregate finite."""
    want = np.arange(N) != _BAD_ROW
    if not hasattr(res, "valid"):
        return False
    return (
        _only_bad_row_nan(res.credibility)
        and np.array_equal(np.asarray(res.valid), want)
        and int(res.n_invalid) == 1
        and bool(np.all(np.isfinite(np.asarray(res.coverage))))
    )


def _tarp_ok(res):
    want = np.arange(N) != _BAD_ROW
    if not hasattr(res, "valid"):
        return False
    return (
        np.array_equal(np.asarray(res.valid), want)
        and int(res.n_invalid) == 1
        and bool(np.all(np.isfinite(np.asarray(res.ecp))))
    )


_ROWS = rf"rows \[{_BAD_ROW}\]"
_EAGER = ("eager",)
_JIT = ("jit",)

CASES = [
    # --- eager: ValueError naming the argument and the row
    Case(
        "diagnostics.sbc_ranks_from_samples: NaN samples row",
        D.sbc_ranks_from_samples,
        (_row_nan(_SAMPLES), _THETA),
        match=rf"`samples`.*{_ROWS}",
        modes=_EAGER,
    ),
    Case(
        "diagnostics.sbc_ranks: NaN observation row",
        D.sbc_ranks,
        (_KEY, _sample_fn, _THETA, _row_nan(_X)),
        {"n_posterior_samples": L},
        match=rf"`x`.*{_ROWS}",
        modes=_EAGER,
    ),
    Case(
        "diagnostics.sbc_ranks: inf theta row",
        D.sbc_ranks,
        (_KEY, _sample_fn, _row_nan(_THETA, value=jnp.inf), _X),
        match=rf"`theta`.*{_ROWS}",
        modes=_EAGER,
    ),
    Case(
        "diagnostics.expected_coverage: NaN observation row",
        D.expected_coverage,
        (_KEY, _log_prob_fn, _sample_fn, _THETA, _row_nan(_X)),
        {"n_posterior_samples": L},
        match=rf"`x`.*{_ROWS}",
        modes=_EAGER,
    ),
    Case(
        "diagnostics.expected_coverage_from_log_probs: NaN log-density row",
        D.expected_coverage_from_log_probs,
        (_row_nan(_LPS), _LPT),
        match=rf"`log_prob_samples`.*{_ROWS}",
        modes=_EAGER,
    ),
    Case(
        "diagnostics.marginal_coverage: inf samples row",
        D.marginal_coverage,
        (_row_nan(_SAMPLES, value=jnp.inf), _THETA),
        match=rf"`samples`.*{_ROWS}",
        modes=_EAGER,
    ),
    Case(
        "diagnostics.tarp: NaN theta row",
        D.tarp,
        (_KEY, _SAMPLES, _row_nan(_THETA)),
        match=rf"`theta`.*{_ROWS}",
        modes=_EAGER,
    ),
    Case(
        "diagnostics.sbc_uniformity: NaN ranks row",
        D.sbc_uniformity,
        (_row_nan(jnp.ones((N, DIM))), L),
        {"n_bins": 2},
        match=rf"`ranks`.*{_ROWS}",
        modes=_EAGER,
    ),
    Case(
        "diagnostics.sbc_uniformity: ranks above L",
        D.sbc_uniformity,
        (np.full((N, DIM), L + 3), L),
        match="`ranks`",
        modes=_EAGER,
    ),
    Case(
        "diagnostics.c2st: NaN samples_q row",
        D.c2st,
        (_KEY, _THETA, _row_nan(_THETA)),
        {"n_folds": 2},
        match=rf"`samples_q`.*{_ROWS}",
        modes=_EAGER,
    ),
    # --- static problems: the same error eagerly and under jit
    Case(
        "diagnostics.sbc_ranks: batch of keys",
        D.sbc_ranks,
        (jax.random.split(_KEY, N), _sample_fn, _THETA, _X),
        match="`key` must be one PRNG key",
    ),
    Case(
        "diagnostics.sbc_ranks: n_posterior_samples = 0",
        D.sbc_ranks,
        (_KEY, _sample_fn, _THETA, _X),
        {"n_posterior_samples": 0},
        match="n_posterior_samples",
    ),
    Case(
        "diagnostics.sbc_ranks_from_samples: theta of the wrong dimension",
        D.sbc_ranks_from_samples,
        (_SAMPLES, _THETA[:, :1]),
        match="`theta`",
    ),
    Case(
        "diagnostics.tarp: n_refs = 0",
        D.tarp,
        (_KEY, _SAMPLES, _THETA),
        {"n_refs": 0},
        match="n_refs",
    ),
    Case(
        "diagnostics.expected_coverage_from_log_probs: level 1.5",
        D.expected_coverage_from_log_probs,
        (_LPS, _LPT),
        {"levels": jnp.array([0.5, 1.5])},
        match="`levels`",
    ),
    Case(
        "diagnostics.c2st: samples_q of another dimension",
        D.c2st,
        (_KEY, _THETA, jnp.zeros((N, 3))),
        match="`samples_q`",
    ),
    # --- jit: NaN in exactly the bad row, plus the mask and count
    Case(
        "diagnostics.sbc_ranks_from_samples: NaN samples row [jit poison]",
        D.sbc_ranks_from_samples,
        (_row_nan(_SAMPLES), _THETA),
        expect="nan",
        modes=_JIT,
        flagged=_only_bad_row_nan,
    ),
    Case(
        "diagnostics.sbc_ranks: NaN observation row [jit poison]",
        D.sbc_ranks,
        (_KEY, _sample_fn, _THETA, _row_nan(_X)),
        {"n_posterior_samples": L},
        expect="nan",
        modes=_JIT,
        flagged=_only_bad_row_nan,
    ),
    Case(
        "diagnostics.expected_coverage: NaN observation row [jit poison]",
        D.expected_coverage,
        (_KEY, _log_prob_fn, _sample_fn, _THETA, _row_nan(_X)),
        {"n_posterior_samples": L},
        expect="nan",
        modes=_JIT,
        flagged=_flag_ok,
    ),
    Case(
        "diagnostics.expected_coverage_from_log_probs: NaN row [jit poison]",
        D.expected_coverage_from_log_probs,
        (_LPS, _row_nan(_LPT)),
        expect="nan",
        modes=_JIT,
        flagged=_flag_ok,
    ),
    Case(
        "diagnostics.marginal_coverage: NaN theta row [jit poison]",
        D.marginal_coverage,
        (_SAMPLES, _row_nan(_THETA)),
        expect="nan",
        modes=_JIT,
        flagged=_flag_ok,
    ),
    Case(
        "diagnostics.tarp: NaN samples row [jit poison]",
        D.tarp,
        (_KEY, _row_nan(_SAMPLES), _THETA),
        expect="nan",
        modes=_JIT,
        flagged=_tarp_ok,
    ),
]
