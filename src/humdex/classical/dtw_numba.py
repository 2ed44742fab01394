"""The numba kernels of humdex.classical.dtw: the reference implementation, run where the C kernel
(dtw_kernel.c, humdex.classical.native) cannot be built. See humdex.classical.dtw for the conventions.
"""

from __future__ import annotations

import functools
import threading

import numba
import numpy as np

from humdex import kernel_cache

kernel_cache.install()  # before the first @numba.njit(cache=True) below

_INF = np.inf


@numba.njit(cache=True, nogil=True, inline="always")
def _local_cost(
    q: float, w: float, r: float, key: float, octave_penalty: float, cap: float
) -> float:
    d = abs(r - q - key)
    o = abs(d - 12.0) + octave_penalty
    d = min(d, o)
    d = min(d, cap)
    return w * d


@numba.njit(cache=True, nogil=True, inline="always")
def _residual(q: float, w: float, r: float, key: float, limit: float) -> float:
    """w * (r - q - key) folded to the nearest octave and clipped to +-limit: key refinement."""
    d = r - q - key
    d -= 12.0 * np.round(d / 12.0)
    return w * min(max(d, -limit), limit)


@numba.njit(cache=True, nogil=True)
def subsequence_dtw(
    query: np.ndarray,
    weights: np.ndarray,
    ref: np.ndarray,
    key: float,
    start_max: int,
    octave_penalty: float,
    cost_cap: float,
) -> tuple[float, int, int, float]:
    """humdex.classical.dtw.subsequence_dtw (its docstring holds the arguments and the result)."""
    n = query.shape[0]
    m = ref.shape[0]
    prev2 = np.full(m, _INF)  # row i-2
    prev = np.full(m, _INF)  # row i-1
    cur = np.full(m, _INF)
    s_prev2 = np.full(m, -1, np.int64)
    s_prev = np.full(m, -1, np.int64)
    s_cur = np.full(m, -1, np.int64)
    e_prev2 = np.zeros(m)  # sum of residuals along the best path (key refinement)
    e_prev = np.zeros(m)
    e_cur = np.zeros(m)
    lim = 2.0
    for j in range(min(start_max, m)):
        prev[j] = _local_cost(query[0], weights[0], ref[j], key, octave_penalty, cost_cap)
        s_prev[j] = j
        e_prev[j] = _residual(query[0], weights[0], ref[j], key, lim)
    for i in range(1, n):
        q = query[i]
        w = weights[i]
        q1 = query[i - 1]
        w1 = weights[i - 1]
        for j in range(m):
            best = _INF
            start = -1
            resid = 0.0
            if j >= 1:
                if prev[j - 1] < best:
                    best = prev[j - 1]
                    start = s_prev[j - 1]
                    resid = e_prev[j - 1]
                if i >= 2 and prev2[j - 1] < _INF:
                    v = prev2[j - 1] + _local_cost(q1, w1, ref[j], key, octave_penalty, cost_cap)
                    if v < best:
                        best = v
                        start = s_prev2[j - 1]
                        resid = e_prev2[j - 1] + _residual(q1, w1, ref[j], key, lim)
            if j >= 2 and prev[j - 2] < best:
                best = prev[j - 2]
                start = s_prev[j - 2]
                resid = e_prev[j - 2]
            if start >= 0:
                cur[j] = best + _local_cost(q, w, ref[j], key, octave_penalty, cost_cap)
                e_cur[j] = resid + _residual(q, w, ref[j], key, lim)
            else:
                cur[j] = _INF
            s_cur[j] = start
        prev2, prev, cur = prev, cur, prev2
        s_prev2, s_prev, s_cur = s_prev, s_cur, s_prev2
        e_prev2, e_prev, e_cur = e_prev, e_cur, e_prev2
    best = _INF
    end = -1
    for j in range(m):
        if prev[j] < best:
            best = prev[j]
            end = j
    if end < 0:
        return _INF, -1, -1, 0.0
    return best, int(s_prev[end]), end, e_prev[end]


@numba.njit(cache=True, nogil=True)
def batch_subsequence_dtw(
    query: np.ndarray,
    weights: np.ndarray,
    refs: np.ndarray,
    ref_offsets: np.ndarray,
    keys: np.ndarray,
    start_max: np.ndarray,
    octave_penalty: float,
    cost_cap: float,
    refine: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """humdex.classical.dtw.batch_subsequence_dtw (its docstring holds the arguments and the result)."""
    count = keys.shape[0]
    costs = np.full(count, _INF)
    starts = np.full(count, -1, np.int64)
    ends = np.full(count, -1, np.int64)
    best_key = np.zeros(count)
    total_w = weights.sum()
    for k in range(count):
        seg = refs[ref_offsets[k] : ref_offsets[k + 1]]
        shift = 0.0
        for t in range(keys.shape[1] + refine):
            key = keys[k, t] if t < keys.shape[1] else best_key[k] + shift
            c, s, e, resid = subsequence_dtw(
                query, weights, seg, key, start_max[k], octave_penalty, cost_cap
            )
            if c < costs[k]:
                costs[k] = c
                starts[k] = s
                ends[k] = e
                best_key[k] = key
                shift = resid / total_w
    return costs, starts, ends, best_key


_WARMUP_LOCK = threading.Lock()


def warmup() -> None:
    """Compile (or load from numba's on-disk cache) the kernels on a tiny input, once per process;
    a thread that calls it while another is warming up waits for it.

    Call it before running the kernels: numba's first compilation in a process is not
    thread-safe (numba issue #2517; a hybrid search in the server failed once with "No
    definition for lowering" while its DTW scan compiled in a worker thread)."""
    with _WARMUP_LOCK:
        _warmup()


@functools.cache
def _warmup() -> None:
    q = np.array([60.0, 62.0, 64.0], np.float32)
    w = np.ones(3, np.float32)
    offsets = np.array([0, 3], np.int64)
    batch_subsequence_dtw(q, w, q.copy(), offsets, np.zeros((1, 1)), offsets[1:], 1.0, 4.0, 1)
