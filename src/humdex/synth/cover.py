"""Covers: the same song by someone else, with phrases repeated or skipped (structural edits)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from humdex.synth.score import Score
from humdex.synth.timemap import TimeMap


@dataclass(frozen=True)
class EditConfig:
    """How a cover changes the song's structure."""

    repeat_prob: float = 0.25  # per phrase: sung twice
    skip_prob: float = 0.1  # per phrase: left out (never the first)
    gap_s: tuple[float, float] = (0.0, 0.6)  # extra score time before a repeat or after a skip
    min_phrase_s: float = 2.0  # short phrases merge with the next before editing


def phrases(score: Score, min_phrase_s: float) -> list[tuple[int, int]]:
    """[(first note, last note + 1)] phrase spans of at least min_phrase_s (the last may be shorter)."""
    starts = score.phrase_starts().tolist() + [len(score)]
    spans: list[tuple[int, int]] = []
    a = 0
    for b in starts[1:]:
        if score.offset_s[b - 1] - score.onset_s[a] >= min_phrase_s or b == len(score):
            spans.append((a, b))
            a = b
    if a < len(score):
        spans.append((a, len(score)))
    return spans


def edit_structure(
    score: Score, rng: np.random.Generator, config: EditConfig = EditConfig()
) -> tuple[Score, TimeMap]:
    """The edited score and its map edited score time -> original score time (jumps at edits).

    The map's perf_s axis holds edited score seconds. Without any edit it is the identity.
    """
    spans = phrases(score, config.min_phrase_s)
    plan: list[tuple[int, int]] = []
    for k, span in enumerate(spans):
        if k > 0 and len(spans) > 2 and rng.random() < config.skip_prob:
            continue
        plan.append(span)
        if rng.random() < config.repeat_prob:
            plan.append(span)
    onsets: list[np.ndarray] = []
    durs: list[np.ndarray] = []
    pitches: list[np.ndarray] = []
    knots_e: list[float] = []
    knots_o: list[float] = []
    cursor = score.start_s
    for k, (a, b) in enumerate(plan):
        o_start = score.start_s if k == 0 else float(score.onset_s[a])
        o_end = float(score.onset_s[b]) if b < len(score) else score.end_s
        if k > 0 and (plan[k - 1][1] != a):
            cursor += rng.uniform(*config.gap_s)
            knots_e.append(cursor)  # the pause holds the previous phrase's end
            knots_o.append(knots_o[-1])
        shift = cursor - o_start
        sel = slice(a, b)
        onsets.append(score.onset_s[sel] + shift)
        durs.append(score.duration_s[sel])
        pitches.append(score.pitch_midi[sel])
        knots_e += [cursor, cursor + (o_end - o_start)]
        knots_o += [o_start, o_end]
        cursor += o_end - o_start
    edited = Score(np.concatenate(onsets), np.concatenate(durs), np.concatenate(pitches))
    return edited, TimeMap(np.asarray(knots_e), np.asarray(knots_o))
