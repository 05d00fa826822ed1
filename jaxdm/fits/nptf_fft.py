"""NPTF count probabilities by an exponentially tilted FFT of the PGF (no recursion).

The counts of a pixel have the probability generating function (NPTFit,
Mishra-Sharma, Rodd & Safdi 2017, arXiv:1612.03173, eq. 2.10)
``P(t) = exp(sum_m x_m t^m - x_tot)``. ``p_c`` depends on ``x_1..x_c`` only, so with
``x_m`` kept for ``m <= K`` (any ``K >= c``) the coefficient of ``t^c`` is unchanged.
Instead of NPTFit's recursion (``k`` sequential steps, loop-overhead bound on a CPU
and inherently serial), ``p_c`` is read off the PGF on a circle of radius
``r = e^s`` by a discrete Fourier transform, the saddle-point / exponential-tilting
method for lattice distributions (Daniels 1954, Ann. Math. Statist. 25, 631;
Abate & Whitt 1992, Queueing Systems 10, 5, sec. 1.2):

``pi_k = p_k r^k / P_K(r)`` is the pmf of a compound Poisson variable with jump
rates ``z_m = x_m r^m``; ``s`` solves ``sum_m m z_m = c`` (Newton, a few steps), so
that ``c`` is the mean of ``pi`` and ``pi_c ~ 1 / sqrt(2 pi var)`` is well
resolved in float32 however far ``c`` lies in the tail of ``p``. Then

``log p_c = log pi_c - s c + sum_m z_m - x_tot``, with
``pi_c = (1/N) sum_j exp(sum_m z_m (e^{i m theta_j} - 1)) e^{-i c theta_j}``,

``theta_j = 2 pi j / N``. The inner sums for all ``j`` are one real FFT of ``z``;
``N = fft_factor (K + 1)`` points keep the aliased ``pi_{c + N}`` negligible. The
result does not depend on ``s`` (up to rounding), so ``s`` carries no gradient
(``stop_gradient``) and reverse mode runs through the FFT only: O(N log N) work and
no sequential loop per pixel.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__: list[str] = []

_NEWTON_STEPS = 6


def _tilt(log_x, log_c):
    """Log radius ``s`` (P,) with ``sum_m m x_m e^{s m} = c`` (Newton in log space).

    ``g(s) = log sum_m m x_m e^{sm} - log c`` is convex and increasing (its slope is
    a mean of m >= 1), so Newton's iterates converge monotonically after the first
    step and never leave log space. The start is the Poisson answer
    ``s = log(c / mean)``.
    """
    m = jnp.arange(1, log_x.shape[-1] + 1, dtype=log_x.dtype)[None, :]
    log_m = jnp.log(m)
    s = log_c - jax.nn.logsumexp(log_x + log_m, axis=-1)
    for _ in range(_NEWTON_STEPS):
        y = log_x + s[:, None] * m
        l1 = jax.nn.logsumexp(y + log_m, axis=-1)
        l2 = jax.nn.logsumexp(y + 2.0 * log_m, axis=-1)
        s = s - (l1 - log_c) * jnp.exp(l1 - l2)
    return s


def log_pmf_fft(log_x, log_tot, counts, fft_factor: int = 4):
    """``log p_p(counts_p)`` (P,) from log x_1..x_K (P, K) and log x_tot (P,).

    Args:
        log_x: Log rates ``log x_m`` per pixel, m = 1..K, (P, K); K >= max(counts).
        log_tot: ``log x_tot`` (P,), the total rate over all m (also m > K).
        counts: Integer counts (P,), 0 <= counts <= K (concrete or traced).
        fft_factor: FFT length in units of K + 1 (static, >= 2).

    Returns:
        Log probabilities (P,); -inf for c >= 1 where every ``x_m`` is 0.
    """
    n_pix, k = log_x.shape
    n_fft = 2 * ((int(fft_factor) * (k + 1) + 1) // 2)  # even: j = N/2 is real
    dtype = log_x.dtype
    c = counts.astype(jnp.int32)
    c_pos = jnp.maximum(c, 1)
    log_c = jnp.log(c_pos.astype(dtype))
    lx_ng = jax.lax.stop_gradient(log_x)
    alive = jnp.isfinite(jax.nn.logsumexp(lx_ng, axis=-1))
    s = _tilt(jnp.where(alive[:, None], lx_ng, 0.0), log_c)
    s = jax.lax.stop_gradient(jnp.where(alive & jnp.isfinite(s), s, 0.0))
    m = jnp.arange(1, k + 1, dtype=dtype)[None, :]
    y = log_x + s[:, None] * m  # log z_m
    z = jnp.exp(y)
    lam = jnp.sum(z, axis=-1)
    zpad = jnp.zeros((n_pix, n_fft), dtype).at[:, 1 : k + 1].set(z)
    spec = jnp.fft.rfft(zpad, axis=-1)  # sum_m z_m e^{-i m theta_j}, j <= N/2
    # sum_m z_m (e^{+i m theta} - 1) = conj(spec) - lam; times e^{-i c theta}.
    j = jnp.arange(n_fft // 2 + 1)
    cj = jnp.mod(c_pos[:, None] * j[None, :], n_fft).astype(dtype)  # exact phase
    phase = -jnp.imag(spec) - (2.0 * jnp.pi / n_fft) * cj
    mag = jnp.exp(jnp.real(spec) - lam[:, None])
    w = jnp.full((1, j.shape[0]), 2.0, dtype).at[0, 0].set(1.0).at[0, -1].set(1.0)
    pi_c = jnp.sum(w * mag * jnp.cos(phase), axis=-1) / n_fft
    tot = jnp.exp(log_tot)
    log_p = jnp.log(pi_c) - s * c_pos + lam - tot
    log_p = jnp.where(alive, log_p, -jnp.inf)
    return jnp.where(c == 0, -tot, log_p)
