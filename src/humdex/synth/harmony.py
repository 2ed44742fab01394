"""Harmony: the key of a melody, a beat grid, and a chord for every stretch of it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from humdex.synth.score import Score

# Krumhansl-Kessler key profiles, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
# Diatonic triads: (root degree in semitones, minor?) with a prior weight.
MAJOR_CHORDS = ((0, False, 0.3), (5, False, 0.2), (7, False, 0.25), (9, True, 0.1), (2, True, 0.08),
                (4, True, 0.03))  # fmt: skip
MINOR_CHORDS = ((0, True, 0.3), (5, True, 0.2), (7, False, 0.25), (3, False, 0.1), (8, False, 0.08),
                (10, False, 0.08))  # fmt: skip


@dataclass(frozen=True)
class Chord:
    """A triad over a stretch of score time; root_pc is a pitch class of the score's own key."""

    start_s: float
    end_s: float
    root_pc: int
    minor: bool

    def pitch_classes(self) -> tuple[int, int, int]:
        third = 3 if self.minor else 4
        return (self.root_pc, (self.root_pc + third) % 12, (self.root_pc + 7) % 12)


def estimate_key(score: Score) -> tuple[int, bool]:
    """(tonic pitch class, minor?) by correlation of the duration-weighted pitch-class histogram."""
    hist = np.bincount(np.round(score.pitch_midi).astype(int) % 12, weights=score.duration_s, minlength=12)
    best = (-np.inf, 0, False)
    for minor, profile in ((False, MAJOR_PROFILE), (True, MINOR_PROFILE)):
        for tonic in range(12):
            r = np.corrcoef(hist, np.roll(profile, tonic))[0, 1] if hist.std() > 0 else 0.0
            if r > best[0]:
                best = (r, tonic, minor)
    return best[1], best[2]


def beat_s(score: Score) -> float:
    """A plausible beat length in score seconds: the median note spacing doubled/halved into 0.4-0.9 s."""
    beat = max(score.median_ioi_s(), 0.05)
    while beat < 0.4:
        beat *= 2
    while beat > 0.9:
        beat /= 2
    return beat


def harmonise(score: Score, beats_per_chord: int = 2) -> list[Chord]:
    """A chord per `beats_per_chord` beats, the diatonic triad that best covers the melody there."""
    tonic, minor = estimate_key(score)
    table = MINOR_CHORDS if minor else MAJOR_CHORDS
    span = beat_s(score) * beats_per_chord
    start, end = score.start_s, score.end_s
    n = max(1, int(np.ceil((end - start) / span - 1e-9)))
    pcs = np.round(score.pitch_midi).astype(int) % 12
    chords = []
    prev_root = -1
    for k in range(n):
        a, b = start + k * span, min(end, start + (k + 1) * span)
        overlap = np.clip(np.minimum(score.offset_s, b) - np.maximum(score.onset_s, a), 0.0, None)
        best, best_score = table[0], -np.inf
        for degree, is_minor, prior in table:
            root = (tonic + degree) % 12
            third = (root + (3 if is_minor else 4)) % 12
            member = (pcs == root) * 1.2 + (pcs == third) + (pcs == (root + 7) % 12)
            value = float(np.sum(overlap * member)) / span + prior + 0.05 * (root == prev_root)
            if value > best_score:
                best, best_score = (degree, is_minor, prior), value
        prev_root = (tonic + best[0]) % 12
        chords.append(Chord(a, b, prev_root, best[1]))
    return chords
