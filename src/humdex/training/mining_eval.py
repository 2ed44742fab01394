"""Mining against the truth: judge mined cover intervals with the renderer's exact time maps.

A mined pair is (original fragment [a, b] in the original song, predicted stretch [c, d] of a
cover). The original's time map O gives the score passage it sings; the cover's map C (rendition
-> score, with jumps where the cover repeats or skips phrases) says where the cover sings each
score moment, possibly several times. The pair is right when the middle of the prediction lies
within `tolerance_s` of a place the cover sings the middle of the fragment's passage; interval
errors are the distances of c and d to the nearest true start and end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from humdex.synth.timemap import TimeMap

TOLERANCE_S = 1.0


def perf_times_at(tm: TimeMap, score_s: float) -> list[float]:
    """Every rendition time at which the map reaches score_s (one per monotonic piece that sings
    it; holds give their first instant). Empty when no piece holds score_s strictly inside."""
    out = []
    for piece in tm.monotonic_pieces():
        lo, hi = float(piece.score_s[0]), float(piece.score_s[-1])
        if lo < score_s < hi or (lo <= score_s <= hi and hi > lo):
            out.append(float(np.interp(score_s, piece.score_s, piece.perf_s)))
    return out


@dataclass(frozen=True)
class Judged:
    """One mined pair against the truth. alignable: the cover sings the fragment's middle;
    correct: the prediction's middle is within tolerance of it; start/end errors in cover
    seconds (NaN when the cover never sings the passage's start or end)."""

    score: float
    alignable: bool
    correct: bool
    mid_error_s: float
    start_error_s: float
    end_error_s: float


def judge_pair(original_map: TimeMap, fragment: tuple[float, float], cover_map: TimeMap,
               predicted: tuple[float, float], score: float,
               tolerance_s: float = TOLERANCE_S) -> Judged:
    a, b = fragment
    c, d = predicted
    s_mid = float(original_map.score_at(0.5 * (a + b)))
    truth_mid = perf_times_at(cover_map, s_mid)
    held = float(original_map.score_at(a)) == float(original_map.score_at(b))  # silence only
    mid_err = min((abs(0.5 * (c + d) - t) for t in truth_mid), default=np.inf)
    starts = perf_times_at(cover_map, float(original_map.score_at(a)))
    ends = perf_times_at(cover_map, float(original_map.score_at(b)))
    start_err = min((abs(c - t) for t in starts), default=np.nan)
    end_err = min((abs(d - t) for t in ends), default=np.nan)
    alignable = bool(truth_mid) and not held
    return Judged(score, alignable, alignable and mid_err <= tolerance_s, float(mid_err),
                  float(start_err), float(end_err))


@dataclass(frozen=True)
class MiningQuality:
    """Precision/recall of the pairs accepted at `accept` (recall over alignable pairs), the
    share in the review band [review, accept), interval errors of accepted correct pairs."""

    accept: float
    review: float
    n_pairs: int
    n_alignable: int
    n_accepted: int
    precision: float
    recall: float
    review_share: float
    start_error_median_s: float
    start_error_p95_s: float
    end_error_median_s: float
    end_error_p95_s: float


def quality(judged: Sequence[Judged], accept: float, review: float) -> MiningQuality:
    acc = [j for j in judged if j.score >= accept]
    right = [j for j in acc if j.correct]
    n_align = sum(j.alignable for j in judged)
    starts = np.array([j.start_error_s for j in right if np.isfinite(j.start_error_s)])
    ends = np.array([j.end_error_s for j in right if np.isfinite(j.end_error_s)])

    def pct(x: np.ndarray, q: float) -> float:
        return float(np.percentile(x, q)) if len(x) else float("nan")

    return MiningQuality(
        accept, review, len(judged), n_align, len(acc),
        precision=len(right) / len(acc) if acc else float("nan"),
        recall=len(right) / n_align if n_align else float("nan"),
        review_share=sum(review <= j.score < accept for j in judged) / max(1, len(judged)),
        start_error_median_s=pct(starts, 50), start_error_p95_s=pct(starts, 95),
        end_error_median_s=pct(ends, 50), end_error_p95_s=pct(ends, 95))


def precision_yield(judged: Sequence[Judged], thresholds: Sequence[float]) -> list[tuple[float, float, float, int]]:
    """(threshold, precision, recall, accepted) as the accept threshold moves."""
    out = []
    for t in thresholds:
        q = quality(judged, t, t)
        out.append((float(t), q.precision, q.recall, q.n_accepted))
    return out
