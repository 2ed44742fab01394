"""Subsequence DTW between a pitch query and reference pitch segments.

Conventions: the query has n frames (rows i), a reference segment m frames (columns j). The path
starts anywhere in the segment's first `start_max` frames and ends anywhere. Steps (slope constraint
between 1/2 and 2): (i-1, j-1) diagonal, (i-1, j-2) skipping one reference frame, (i-2, j-1) two
query frames on one reference frame. Every query frame is charged exactly once along any path, so
the total cost divided by the query's weight sum is the mean cost per (voiced) query frame.

Local cost of query pitch q (weight w, 0 where unvoiced) against reference pitch r under key shift k:
    d = |r - q - k|;  c = w * min(d, |d - 12| + octave_penalty_st, cost_cap_st)
The octave branch forgives octave errors of pitch trackers at a small price.

Two implementations of one kernel, equal to the bit: C (dtw_kernel.c, compiled once per machine
and loaded with ctypes by humdex.classical.native: a new process loads it in a millisecond) and
numba (dtw_numba.py, the reference: ~0.5 s of numba start-up per process), which runs where no C
compiler can build the first. `backend()` says which one this process runs.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import numpy as np

_WARMUP_LOCK = threading.Lock()


def _ptr(a: np.ndarray, ctype: Any) -> Any:
    import ctypes

    return a.ctypes.data_as(ctypes.POINTER(ctype))


def subsequence_dtw(
    query: np.ndarray,
    weights: np.ndarray,
    ref: np.ndarray,
    key: float,
    start_max: int,
    octave_penalty: float,
    cost_cap: float,
) -> tuple[float, int, int, float]:
    """Best subsequence alignment of `query` (n,) inside `ref` (m,).

    Args:
        query: (n,) float32 query pitch in semitones (any value where weights == 0).
        weights: (n,) float32 per-frame weight (1 voiced, 0 unvoiced).
        ref: (m,) float32 reference pitch in semitones, no NaN.
        key: semitones added to the query before comparing.
        start_max: the path may start at reference frames 0..start_max-1 (m for "anywhere").
        octave_penalty: extra cost in semitones of matching an octave off.
        cost_cap: maximum local cost in semitones (robustness to outliers).

    Returns:
        (total cost in semitones, first reference frame, last reference frame, sum of weighted
        residuals r - q - key along the path, octave-folded and clipped to +-2 st) of the best
        path; (inf, -1, -1, 0) if no path fits (segment too short for the slope constraint).
    """
    lib = _native()
    if lib is None:
        from humdex.classical import dtw_numba

        out = dtw_numba.subsequence_dtw(query, weights, ref, key, start_max, octave_penalty, cost_cap)
        return float(out[0]), int(out[1]), int(out[2]), float(out[3])
    import ctypes

    q = np.ascontiguousarray(query, np.float32)
    w = np.ascontiguousarray(weights, np.float32)
    r = np.ascontiguousarray(ref, np.float32)
    if len(w) != len(q):
        raise ValueError("query and weights differ in length")
    cost, resid = ctypes.c_double(), ctypes.c_double()
    start, end = ctypes.c_int64(), ctypes.c_int64()
    if lib.humdex_subsequence_dtw(_ptr(q, ctypes.c_float), _ptr(w, ctypes.c_float), len(q),
                                  _ptr(r, ctypes.c_float), len(r), float(key), int(start_max),
                                  float(octave_penalty), float(cost_cap), ctypes.byref(cost),
                                  ctypes.byref(start), ctypes.byref(end), ctypes.byref(resid)):
        raise MemoryError("subsequence_dtw: out of memory")
    return cost.value, start.value, end.value, resid.value


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
    """`subsequence_dtw` of one query against many segments, each under several key shifts.

    Args:
        refs: (sum of m,) float32 segments concatenated; segment k is refs[ref_offsets[k]:ref_offsets[k+1]].
        keys: (segments, keys) float64 key shifts tried per segment; the cheapest wins.
        start_max: (segments,) int64, see `subsequence_dtw`.
        refine: extra passes, each at the best key so far plus the mean residual along its path.

    Returns:
        costs (segments,) float64, starts (segments,) int64, ends (segments,) int64 (segment frames),
        best_key (segments,) float64.
    """
    lib = _native()
    if lib is None:
        from humdex.classical import dtw_numba

        return dtw_numba.batch_subsequence_dtw(query, weights, refs, ref_offsets, keys, start_max,
                                               octave_penalty, cost_cap, refine)
    import ctypes

    q = np.ascontiguousarray(query, np.float32)
    w = np.ascontiguousarray(weights, np.float32)
    r = np.ascontiguousarray(refs, np.float32)
    offsets = np.ascontiguousarray(ref_offsets, np.int64)
    k = np.ascontiguousarray(keys, np.float64)
    starts_max = np.ascontiguousarray(start_max, np.int64)
    count = k.shape[0]
    if k.ndim != 2 or len(w) != len(q) or len(offsets) < count + 1 or len(starts_max) < count \
            or (count and (offsets[: count + 1].min() < 0 or offsets[: count + 1].max() > len(r)
                           or np.any(np.diff(offsets[: count + 1]) < 0))):
        raise ValueError("batch_subsequence_dtw: arrays of inconsistent shapes")
    costs, best_key = np.empty(count), np.empty(count)
    starts, ends = np.empty(count, np.int64), np.empty(count, np.int64)
    status = lib.humdex_batch_subsequence_dtw(
            _ptr(q, ctypes.c_float), _ptr(w, ctypes.c_float), len(q), _ptr(r, ctypes.c_float),
            _ptr(offsets, ctypes.c_int64), _ptr(k, ctypes.c_double), count, k.shape[1],
            _ptr(starts_max, ctypes.c_int64), float(octave_penalty), float(cost_cap), int(refine),
            _ptr(costs, ctypes.c_double), _ptr(starts, ctypes.c_int64), _ptr(ends, ctypes.c_int64),
            _ptr(best_key, ctypes.c_double))
    if status == -2:
        raise ZeroDivisionError("batch_subsequence_dtw: the query's weights sum to 0")
    if status:
        raise MemoryError("batch_subsequence_dtw: out of memory")
    return costs, starts, ends, best_key


@functools.cache
def _native() -> Any:
    """The C kernel (humdex.classical.native) when it builds, loads and passes a known case; else None."""
    from humdex.classical import native

    lib = native.library()
    if lib is None:
        return None
    import ctypes

    q = np.array([60.0, 62.0, 64.0, 65.0], np.float32)
    ref = np.array([50.0, 60.0, 62.5, 64.0, 53.0], np.float32)
    w = np.ones(4, np.float32)
    cost, resid = ctypes.c_double(), ctypes.c_double()
    start, end = ctypes.c_int64(), ctypes.c_int64()
    lib.humdex_subsequence_dtw(_ptr(q, ctypes.c_float), _ptr(w, ctypes.c_float), 4, _ptr(ref, ctypes.c_float),
                               5, 0.0, 5, 1.0, 4.0, ctypes.byref(cost), ctypes.byref(start),
                               ctypes.byref(end), ctypes.byref(resid))
    # (60, 62, 64, 65) on (60, 62.5, 64, 64): 0 + 0.5 + 0 + 1, residuals 0 + 0.5 + 0 - 1
    ok = (cost.value, start.value, end.value, resid.value) == (1.5, 1, 3, -0.5)
    return lib if ok else None


def backend() -> str:
    """The kernel this process runs: "native" (C) or "numba"."""
    return "numba" if _native() is None else "native"


def warmup() -> None:
    """Load the kernel (build the C one where this machine lacks it, or load numba's from its
    on-disk cache), once per process; a thread that calls it while another is warming up waits.

    Call it before running the kernels: numba's first compilation in a process is not
    thread-safe (numba issue #2517; a hybrid search in the server failed once with "No
    definition for lowering" while its DTW scan compiled in a worker thread)."""
    with _WARMUP_LOCK:
        if _native() is None:
            from humdex.classical import dtw_numba

            dtw_numba.warmup()
