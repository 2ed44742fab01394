"""Fragments: the 4-20 s passages CHAD pairs up, picked from a score and cut from full renditions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from humdex.synth.render import Rendition
from humdex.synth.score import Score


@dataclass(frozen=True)
class FragmentConfig:
    """Passage lengths in score seconds (tempo changes spread rendered lengths over ~4-20 s)."""

    length_s: tuple[float, float] = (5.0, 14.0)
    min_length_s: float = 3.5
    min_notes: int = 5
    max_fragments: int = 4
    margin_s: tuple[float, float] = (0.05, 0.6)  # extra audio around a fragment cut from a song


def pick_fragments(
    score: Score, rng: np.random.Generator, config: FragmentConfig = FragmentConfig()
) -> list[tuple[float, float]]:
    """Non-overlapping (start_s, end_s) score passages starting at phrase starts when possible."""
    starts = set(score.phrase_starts().tolist())
    out: list[tuple[float, float]] = []
    i = int(rng.integers(0, max(1, min(len(score) // 4, 4))))
    while i < len(score) and len(out) < config.max_fragments:
        target = rng.uniform(*config.length_s)
        end_limit = score.onset_s[i] + target
        j = int(np.searchsorted(score.offset_s, end_limit, side="right"))
        j = max(j, i + 1)
        later_starts = [k for k in starts if i + config.min_notes <= k <= j]
        if later_starts and rng.random() < 0.7:
            j = max(later_starts)  # end where a phrase ends
        j = min(j, len(score))
        a, b = float(score.onset_s[i]), float(score.offset_s[j - 1])
        if j - i >= config.min_notes and b - a >= config.min_length_s:
            out.append((a, b))
        i = j + int(rng.integers(0, 4))
    return out


def cut(
    rendition: Rendition,
    start_score_s: float,
    end_score_s: float,
    rng: np.random.Generator,
    config: FragmentConfig = FragmentConfig(),
) -> tuple[Rendition, tuple[float, float]] | None:
    """The excerpt of a full rendition that performs score [start, end), plus its interval in the
    rendition (seconds); None when the rendition never performs the passage in one piece."""
    for piece in rendition.time_map.monotonic_pieces():
        if piece.score_s[0] <= start_score_s + 1e-6 and piece.score_s[-1] >= end_score_s - 1e-6:
            p0 = float(piece.perf_at(start_score_s)) - rng.uniform(*config.margin_s)
            p1 = float(piece.perf_at(end_score_s)) + rng.uniform(*config.margin_s)
            p0, p1 = max(p0, float(piece.perf_s[0])), min(p1, float(piece.perf_s[-1]))
            sr = rendition.sample_rate
            a, b = round(p0 * sr), round(p1 * sr)
            p0, p1 = a / sr, b / sr
            f0 = rendition.f0_midi[int(p0 / 0.01) : int(p1 / 0.01)]
            excerpt = Rendition(rendition.kind, rendition.audio[a:b], piece.cropped(p0, p1), f0, sr,
                                dict(rendition.info))  # fmt: skip
            return excerpt, (p0, p1)
    return None
