"""Metrics as pure functions: retrieval over the rank of the right song per query (1 = first), and
melody extraction over frame-wise pitch (mir_eval.melody's definitions, in MIDI semitones)."""

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


def melody_accuracy(reference_midi: np.ndarray, estimate_midi: np.ndarray,
                    tolerance_st: float = 0.5) -> dict[str, float]:
    """Frame-wise melody-extraction scores of an estimated against a reference pitch track.

    Both tracks are (T,) MIDI pitch on the same frames, NaN where unvoiced; an estimate's pitch
    counts only where it is voiced (so raw pitch accuracy here is mir_eval's with the voicing of
    the estimate applied, the pitch a melody index really stores). Keys:
      pitch_accuracy: reference-voiced frames whose estimate is within `tolerance_st` (0.5 = 50 cents)
      pitch_accuracy_1st: the same within 1 semitone
      chroma_accuracy: the same within `tolerance_st` modulo octaves
      octave_error_share: reference-voiced frames whose estimate is within `tolerance_st` of a
        whole number (not 0) of octaves away
      voicing_recall: reference-voiced frames that the estimate voices
      voicing_false_alarm: reference-unvoiced frames that the estimate voices
    A reference without voiced (or unvoiced) frames warns and scores 0 on the affected keys.
    """
    ref = np.asarray(reference_midi, dtype=np.float64)
    est = np.asarray(estimate_midi, dtype=np.float64)
    if ref.ndim != 1 or ref.shape != est.shape:
        raise ValueError(f"reference and estimate must be (T,) of one length, got {ref.shape} and {est.shape}")
    if tolerance_st <= 0:
        raise ValueError(f"tolerance_st must be > 0, got {tolerance_st}")
    ref_voiced, est_voiced = np.isfinite(ref), np.isfinite(est)
    both = ref_voiced & est_voiced
    diff = np.where(both, est - np.where(both, ref, 0.0), np.inf)
    octaves = np.round(np.where(both, diff, 0.0) / 12.0)
    chroma = np.abs(diff - 12.0 * octaves) <= tolerance_st
    n_voiced, n_unvoiced = int(ref_voiced.sum()), int((~ref_voiced).sum())
    if n_voiced == 0 or n_unvoiced == 0:
        warnings.warn("reference has no voiced or no unvoiced frames", stacklevel=2)

    def share(mask: np.ndarray, n: int) -> float:
        return float(mask.sum() / n) if n else 0.0

    return {
        "pitch_accuracy": share(np.abs(diff) <= tolerance_st, n_voiced),
        "pitch_accuracy_1st": share(np.abs(diff) <= 1.0, n_voiced),
        "chroma_accuracy": share(chroma, n_voiced),
        "octave_error_share": share(chroma & (octaves != 0), n_voiced),
        "voicing_recall": share(both, n_voiced),
        "voicing_false_alarm": share(est_voiced & ~ref_voiced, n_unvoiced),
    }
