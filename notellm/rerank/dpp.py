"""DPP greedy MAP (Chen, Zhang & Zhou, NeurIPS'18): fast greedy and the sliding-window version, batched.

Kernel: L = diag(s) · S · diag(s) with S_ij = cos(e_i, e_j) and quality s_i = exp(α r_i), α = θ / (2(1 − θ))
(the paper's relevance trade-off: log det L_Y = (θ / (1 − θ)) Σ r + log det S_Y, ∝ θ Σ r + (1 − θ) log det S_Y).
Greedy adds argmax_i log d_i², the log-det gain, with d_i² = s_i² · ρ_i² where ρ_i is the distance of the unit
vector u_i to the span of the selected (or, with a window, the last w − 1 selected) unit vectors.

Choices:
- **Log domain.** Scaling a vector does not change the span, so d_i² = s_i² ρ_i² exactly; we score
  2α r_i + log ρ_i² and never form exp(α r) (no overflow for large α; pyversity and Chen's code multiply it out).
- **ε stopping rule (Chen).** Stop when the best gain d_j² < ε (default 1e-10, as in the reference code): the list
  can be shorter than k (batched rows are padded with -1). Independently, ρ² below a round-off floor (100 · machine
  eps) is treated as exactly 0, so duplicates and items inside the span are never picked through round-off noise.
- **Fast greedy** keeps an orthonormal basis of the selection in feature space: per step one mat-vec U·b (O(N d))
  plus an O(t d) Gram–Schmidt of the pick; this equals Chen's c_i / d_i recursion (e_i = u_i · b) without the
  O(N t) inner products of the c-rows.
- **Sliding window (Algorithm 2)**: `window` counts the new item, as in Chen's `dpp_sw` (the gain is conditioned on
  the last w − 1 picks). When the oldest pick leaves, instead of the 2×2 rotations we re-orthogonalise the window
  exactly: a QR of [x_2 … x_m, x_1] gives the basis of the remaining picks (first m − 1 columns) and the departing
  direction q (last column), and ρ_i² += (u_i · q)². O(w² d + N d) per step; exact, not cleverer.
- One request runs `_dpp_single` (2-D arrays, lower per-step overhead; without a window it reuses the stored
  coefficients u_i · b instead of re-projecting the pick, and drops round-off residuals at pick time), batches run
  `_dpp_greedy`; tests check they agree.
"""

from __future__ import annotations

import math

import numpy as np

from notellm.rerank.inputs import (
    check_inputs,
    check_unit_interval,
    check_window,
    numerical_floor,
    prepare_embeddings,
    relevance,
    resolve_dtype,
    score_order,
)


def theta_to_alpha(theta: float) -> float:
    """α = θ / (2(1 − θ)): the exponent of the quality s = exp(α r) for relevance weight θ in [0, 1)."""
    check_unit_interval("theta", theta, closed_right=False)
    return theta / (2.0 * (1.0 - theta))


def _dpp_greedy(
    logq: np.ndarray, u: np.ndarray, sq: np.ndarray, k: int, window: int | None, log_eps: float, floor: float
) -> np.ndarray:
    """Greedy log-det MAP on prepared inputs.  logq (R,N) = 2α r (-inf = unavailable), u (R,N,D) unit rows,
    sq (R,N) their exact squared norms (1, or 0 for zero rows: never picked) -> (R,k) int64."""
    n_req, n, dim = u.shape
    dtype = u.dtype
    out = np.full((n_req, k), -1, dtype=np.int64)
    if k == 0 or n == 0:
        return out
    width = k if window is None else window - 1  # picks whose span conditions the next gain
    rho2 = sq.astype(dtype, copy=True)  # (R, N) squared residual norms
    logq = logq.astype(dtype, copy=True)
    basis = np.zeros((n_req, max(width, 1), dim), dtype=dtype)  # (R, m, D) orthonormal basis of the window
    picked = np.zeros((n_req, max(width, 1), dim), dtype=dtype)  # (R, m, D) the window's unit vectors, oldest first
    filled = 0
    alive = np.ones(n_req, dtype=bool)
    lengths = np.full(n_req, k, dtype=np.int64)  # where each row stopped
    rows = np.arange(n_req)
    gain = np.empty_like(rho2)
    tiny = np.finfo(dtype).tiny
    with np.errstate(divide="ignore", invalid="ignore"):
        for t in range(k):
            np.log(rho2, out=gain)  # -inf where the residual is (round-off) zero
            gain += logq  # (R, N) log d_i²
            pick = gain.argmax(axis=1)
            now = gain[rows, pick] >= log_eps  # Chen's rule: stop once d² < ε (also false for -inf)
            if not now.all():
                lengths[alive & ~now] = t
                alive &= now
                if not alive.any():
                    break
            out[:, t] = pick
            if width == 0 or t == k - 1:
                continue
            logq[rows, pick] = -np.inf
            uj = u[rows, pick]  # (R, D)
            if filled:
                coef = np.matmul(basis[:, :filled], uj[:, :, None])  # (R, m, 1)
                b = uj - np.matmul(np.swapaxes(coef, 1, 2), basis[:, :filled])[:, 0]  # (R, D) residual
            else:
                b = uj.copy()
            b /= np.maximum(np.sqrt(np.einsum("rd,rd->r", b, b)), tiny)[:, None]
            q = np.matmul(u, b[:, :, None])[:, :, 0]  # (R, N) u_i · b
            q *= q
            rho2 -= q
            rho2[rho2 < floor] = 0.0  # round-off residuals count as exactly 0
            if filled < width:
                basis[:, filled] = b
                picked[:, filled] = uj
                filled += 1
                continue
            # Window full (w - 1 picks + the new one): the oldest pick leaves. Re-orthogonalise exactly.
            order = np.concatenate([picked[:, 1:], uj[:, None], picked[:, :1]], axis=1)  # (R, m+1, D), oldest last
            qmat, _ = np.linalg.qr(np.swapaxes(order, 1, 2))  # (R, D, m+1)
            p = np.matmul(u, qmat[:, :, -1:])[:, :, 0]  # (R, N) along the direction only the departing pick spanned
            rho2 += p * p
            basis[:] = np.swapaxes(qmat[:, :, :-1], 1, 2)
            picked[:] = order[:, :-1]
    out[np.arange(k)[None, :] >= lengths[:, None]] = -1
    return out


def _dpp_single(
    logq: np.ndarray, u: np.ndarray, sq: np.ndarray, k: int, window: int | None, log_eps: float, floor: float
) -> np.ndarray:
    """`_dpp_greedy` for one request on 2-D arrays (same steps, no batch indexing).  -> (k,) int64, -1 padded."""
    n, dim = u.shape
    dtype = u.dtype
    out = np.full(k, -1, dtype=np.int64)
    if k == 0 or n == 0:
        return out
    width = k if window is None else window - 1
    rho2 = sq.astype(dtype, copy=True)  # (N,)
    logq = logq.astype(dtype, copy=True)
    basis = np.zeros((max(width, 1), dim), dtype=dtype)  # (m, D)
    picked = np.zeros((max(width, 1), dim), dtype=dtype)  # (m, D)
    proj = np.zeros((k, n), dtype=dtype) if window is None else None  # (t, N) u_i · b_s, no-window only
    filled = 0
    gain = np.empty_like(rho2)
    with np.errstate(divide="ignore"):
        for t in range(k):
            np.log(rho2, out=gain)
            gain += logq
            j = int(gain.argmax())
            while window is None and 0 < rho2[j] < floor and gain[j] > -np.inf:  # round-off: in the span for good
                logq[j] = gain[j] = -np.inf  # (ρ² only shrinks without a window): exclude it, look again
                j = int(gain.argmax())
            if not gain[j] >= log_eps:  # Chen's ε rule (also stops on -inf)
                break
            out[t] = j
            if t == k - 1:
                break
            logq[j] = -np.inf
            uj = u[j]
            if proj is not None:
                b = uj - proj[:filled, j] @ basis[:filled] if filled else uj.copy()  # (D,) stored coefficients
            else:
                b = uj - (basis[:filled] @ uj) @ basis[:filled] if filled else uj.copy()  # (D,)
            b /= max(math.sqrt(float(b @ b)), np.finfo(dtype).tiny)
            q = u @ b  # (N,)
            if proj is not None:
                proj[filled] = q
            q *= q
            rho2 -= q
            if proj is None:
                rho2[rho2 < floor] = 0.0
            else:
                np.maximum(rho2, 0.0, out=rho2)  # tiny positives are caught at pick time
            if filled < width:
                basis[filled] = b
                picked[filled] = uj
                filled += 1
                continue
            order = np.concatenate([picked[1:], uj[None], picked[:1]])  # (m+1, D), oldest last
            qmat, _ = np.linalg.qr(order.T)  # (D, m+1)
            p = u @ qmat[:, -1]
            p *= p
            rho2 += p
            basis[:] = qmat[:, :-1].T
            picked[:] = order[:-1]
    return out


def dpp(
    scores,
    embeddings,
    k: int,
    *,
    theta: float = 0.5,
    alpha: float | None = None,
    window: int | None = None,
    epsilon: float = 1e-10,
    normalize_scores: bool = True,
    dtype=np.float32,
) -> np.ndarray:
    """Greedy DPP MAP with the relevance-trade-off kernel; `window` gives the sliding-window version.

    Args:
        scores: (N,) or (R, N) relevance; -inf excludes a candidate.
        embeddings: (N, d) or (R, N, d); rows are unit-normalised (cosine kernel).
        k: maximum list length; k > N returns at most N.
        theta: relevance weight θ in [0, 1]; 1 = pure relevance order. Ignored when `alpha` is given.
        alpha: quality exponent α ≥ 0 directly (pyversity's `(1 - diversity) * scale`).
        window: picks that repel each other, counting the new one (None = all: plain fast greedy).
        epsilon: Chen's stopping threshold on the gain d² (> 0).
        normalize_scores: z-score scores per request before exp(α r).
        dtype: float32 (fast) or float64.

    Returns:
        (≤ min(k, N),) or (R, min(k, N)) int64 indices in pick order; -1 after a row stopped.
    """
    check_window(window)
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon!r}")
    s, e, batched = check_inputs(scores, embeddings, k)
    if window == 1:  # nothing repels: pure relevance
        theta, alpha = 1.0, None
    if alpha is None:
        check_unit_interval("theta", theta)
        if theta == 1.0:  # α = ∞: relevance order
            return score_order(s, k, batched)
        alpha = theta_to_alpha(theta)
    elif not alpha >= 0:
        raise ValueError(f"alpha must be >= 0, got {alpha!r}")
    dt = resolve_dtype(dtype)
    u, sq = prepare_embeddings(e, normalize=True, bias=False, dtype=dt, batched=batched)
    rel = relevance(s, normalize_scores)
    logq = 2.0 * alpha * rel if alpha > 0 else np.where(np.isfinite(rel), 0.0, -np.inf)  # keep -inf, never NaN
    args = (min(k, s.shape[1]), window, float(np.log(epsilon)), numerical_floor(dt))
    out = _dpp_single(logq[0], u[0], sq[0], *args)[None] if len(logq) == 1 else _dpp_greedy(logq, u, sq, *args)
    return out if batched else out[0][out[0] >= 0]
