"""Retrieval metrics as pure functions over the rank of the right song per query (1 = first)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

Rank = int | None  # None: the right song was not in the returned list


def _validate(ranks: Sequence[Rank]) -> np.ndarray:
    """Ranks as float array (inf for None); ValueError for ranks < 1."""
    values = np.array([np.inf if r is None else r for r in ranks], dtype=np.float64)
    if np.any(values < 1) or np.any(np.isnan(values)):
        raise ValueError("ranks must be >= 1 (or None for a miss)")
    if np.any(np.isfinite(values) & (values != np.round(values))):
        raise ValueError("ranks must be whole numbers")
    return values


def top_k_hit_rate(ranks: Sequence[Rank], k: int) -> float:
    """Fraction of queries whose right song is among the first k results.

    Empty input warns and returns 0.0 (mir_eval's convention for empty references).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    values = _validate(ranks)
    if len(values) == 0:
        warnings.warn("no queries: hit rate is 0", stacklevel=2)
        return 0.0
    return float(np.mean(values <= k))


def mean_reciprocal_rank(ranks: Sequence[Rank]) -> float:
    """Mean of 1/rank over queries, a miss counting 0 (MIREX QBSH's MRR)."""
    values = _validate(ranks)
    if len(values) == 0:
        warnings.warn("no queries: MRR is 0", stacklevel=2)
        return 0.0
    return float(np.mean(1.0 / values))


def percentile_ms(latencies_ms: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of latencies; NaN for none."""
    if len(latencies_ms) == 0:
        return float("nan")
    return float(np.percentile(np.asarray(latencies_ms, dtype=np.float64), q))
