"""Time maps: where in the score each instant of a rendition is, as exact piecewise-linear knots."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True, eq=False)
class TimeMap:
    """A piecewise-linear map from rendition time to score time.

    Attributes:
        perf_s: (K,) float64 rendition seconds of the knots, nondecreasing.
        score_s: (K,) float64 score seconds at those knots.
    Two knots with equal perf_s make a jump (a cover's repeated or skipped phrase); two knots
    with equal score_s make a hold (lead silence, a breath). Between knots the map is linear,
    and the renderer builds its audio from the same knots, so the map is exact.
    """

    perf_s: np.ndarray
    score_s: np.ndarray

    def __post_init__(self) -> None:
        perf = np.asarray(self.perf_s, dtype=np.float64).reshape(-1)
        score = np.asarray(self.score_s, dtype=np.float64).reshape(-1)
        if perf.shape != score.shape or len(perf) < 2:
            raise ValueError("a time map needs two or more (perf_s, score_s) knots of equal count")
        if np.any(np.diff(perf) < -1e-9):
            raise ValueError("time map perf_s must be nondecreasing")
        object.__setattr__(self, "perf_s", perf)
        object.__setattr__(self, "score_s", score)

    @property
    def duration_s(self) -> float:
        return float(self.perf_s[-1])

    @property
    def is_monotonic(self) -> bool:
        """True when score time never goes back (no repeated phrase)."""
        return bool(np.all(np.diff(self.score_s) >= -1e-9))

    def score_at(self, perf_s: np.ndarray | float) -> np.ndarray:
        """Score seconds at rendition seconds (clamped at the ends)."""
        return np.interp(perf_s, self.perf_s, self.score_s)

    def perf_at(self, score_s: np.ndarray | float) -> np.ndarray:
        """Rendition seconds at score seconds; only for monotonic maps (see monotonic_pieces)."""
        if not self.is_monotonic:
            raise ValueError("perf_at needs a monotonic time map; split it with monotonic_pieces()")
        return np.interp(score_s, self.score_s, self.perf_s)

    def score_frames(self, hop_s: float, n_frames: int) -> np.ndarray:
        """(n_frames,) score seconds at the centre of each hop_s frame of the rendition."""
        return self.score_at((np.arange(n_frames) + 0.5) * hop_s)

    def shifted(self, perf_offset_s: float) -> TimeMap:
        return TimeMap(self.perf_s + perf_offset_s, self.score_s)

    def cropped(self, start_s: float, end_s: float) -> TimeMap:
        """The map of the excerpt [start_s, end_s) of the rendition, re-based to start at 0."""
        inside = (self.perf_s > start_s) & (self.perf_s < end_s)
        perf = np.concatenate([[start_s], self.perf_s[inside], [end_s]])
        score = np.concatenate(
            [[_value_at(self, start_s, "right")], self.score_s[inside], [_value_at(self, end_s, "left")]]
        )
        return TimeMap(perf - start_s, score)

    def monotonic_pieces(self) -> list[TimeMap]:
        """The map split at every backward jump of score time."""
        cuts = np.flatnonzero(np.diff(self.score_s) < -1e-9) + 1
        bounds = [0, *cuts.tolist(), len(self.perf_s)]
        pieces = []
        for a, b in itertools.pairwise(bounds):
            if b - a >= 2:
                pieces.append(TimeMap(self.perf_s[a:b], self.score_s[a:b]))
        return pieces

    def as_array(self) -> np.ndarray:
        """(K, 2) float64 [perf_s, score_s] knots."""
        return np.stack([self.perf_s, self.score_s], axis=1)

    def to_json(self) -> str:
        """Compact JSON [[perf_s, score_s], ...] rounded to 0.1 ms."""
        pairs = np.round(np.stack([self.perf_s, self.score_s], axis=1), 4).tolist()
        return json.dumps(pairs, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> TimeMap:
        pairs = np.asarray(json.loads(text), dtype=np.float64).reshape(-1, 2)
        return cls(pairs[:, 0], pairs[:, 1])


def _value_at(tm: TimeMap, t: float, side: Literal["left", "right"]) -> float:
    """Score time at rendition time t; at a jump, side "right" gives the later side's value and
    "left" the earlier side's."""
    i = int(np.searchsorted(tm.perf_s, t, side=side))
    if i == 0:
        return float(tm.score_s[0])
    if i >= len(tm.perf_s):
        return float(tm.score_s[-1])
    p0, p1 = tm.perf_s[i - 1], tm.perf_s[i]
    w = (0.0 if side == "right" else 1.0) if p1 <= p0 else (t - p0) / (p1 - p0)
    return float(tm.score_s[i - 1] + w * (tm.score_s[i] - tm.score_s[i - 1]))


def compose(outer: TimeMap, inner: TimeMap) -> TimeMap:
    """The map rendition -> original score, from inner (rendition -> edited score) and outer
    (edited score -> original score, given as a TimeMap whose perf_s is edited score time).

    Holds of the inner map at a segment boundary (a breath between phrases) stay with the
    earlier segment; the lead silence stays with the first.
    """
    perf_out: list[np.ndarray] = []
    score_out: list[np.ndarray] = []
    n_seg = len(outer.perf_s) - 1
    for k in range(n_seg):
        e_a, e_b = outer.perf_s[k], outer.perf_s[k + 1]
        if e_b - e_a <= 1e-12:
            continue
        o_a, o_b = outer.score_s[k], outer.score_s[k + 1]
        p_a = perf_first(inner, e_a) if not perf_out else perf_last(inner, e_a)
        p_b = perf_last(inner, e_b)
        sel = (inner.perf_s > p_a) & (inner.perf_s < p_b)
        e_mid = inner.score_s[sel]
        perf_out.append(np.concatenate([[p_a], inner.perf_s[sel], [p_b]]))
        score_out.append(
            np.concatenate([[o_a], o_a + (e_mid - e_a) * (o_b - o_a) / (e_b - e_a), [o_b]])
        )
    if not perf_out:
        raise ValueError("outer time map has no segment of nonzero length")
    perf = np.concatenate(perf_out)
    score = np.concatenate(score_out)
    if perf[-1] < inner.perf_s[-1]:
        perf = np.append(perf, inner.perf_s[-1])
        score = np.append(score, score[-1])
    return TimeMap(perf, score)


def perf_first(tm: TimeMap, score_s: float) -> float:
    """The earliest rendition time at score_s (before a hold) of a monotonic map."""
    i = int(np.searchsorted(tm.score_s, score_s, side="left"))
    return _perf_between(tm, i, score_s)


def perf_last(tm: TimeMap, score_s: float) -> float:
    """The latest rendition time at score_s (after a hold) of a monotonic map."""
    i = int(np.searchsorted(tm.score_s, score_s, side="right"))
    if i > 0 and abs(tm.score_s[i - 1] - score_s) <= 1e-12:
        return float(tm.perf_s[i - 1])
    return _perf_between(tm, i, score_s)


def _perf_between(tm: TimeMap, i: int, score_s: float) -> float:
    if i <= 0:
        return float(tm.perf_s[0])
    if i >= len(tm.score_s):
        return float(tm.perf_s[-1])
    if abs(tm.score_s[i] - score_s) <= 1e-12:
        return float(tm.perf_s[i])
    s0, s1 = tm.score_s[i - 1], tm.score_s[i]
    w = (score_s - s0) / (s1 - s0) if s1 > s0 else 0.0
    return float(tm.perf_s[i - 1] + w * (tm.perf_s[i] - tm.perf_s[i - 1]))
