"""Scores: a monophonic melody as note arrays, with its passages and phrases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from humdex.errors import HumdexError

MIN_NOTE_S = 0.02  # shorter notes (grace notes, MIDI glitches) are dropped


class NoteLike(Protocol):
    """Anything with humdex.frontend.melody.Note's fields."""

    @property
    def onset_s(self) -> float: ...
    @property
    def duration_s(self) -> float: ...
    @property
    def pitch_midi(self) -> float: ...


@dataclass(frozen=True, eq=False)
class Score:
    """A monophonic melody.

    Attributes:
        onset_s, duration_s, pitch_midi: (n,) float64 arrays, sorted by onset, no overlaps.
    """

    onset_s: np.ndarray
    duration_s: np.ndarray
    pitch_midi: np.ndarray

    @classmethod
    def from_notes(cls, notes: Sequence[NoteLike]) -> Score:
        """Sort, drop tiny notes, and cut overlaps so the melody is monophonic."""
        if len(notes) == 0:
            raise HumdexError("melody has no notes")
        arr = np.array([(n.onset_s, n.duration_s, n.pitch_midi) for n in notes], dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise HumdexError("melody has non-finite note values")
        arr = arr[np.lexsort((-arr[:, 2], arr[:, 0]))]
        keep = np.ones(len(arr), dtype=bool)
        keep[1:] = np.diff(arr[:, 0]) > 1e-6  # one note per onset (the highest)
        arr = arr[keep]
        nxt = np.append(arr[1:, 0], np.inf)
        arr[:, 1] = np.minimum(arr[:, 1], nxt - arr[:, 0])
        arr = arr[arr[:, 1] >= MIN_NOTE_S]
        if len(arr) == 0:
            raise HumdexError("melody has no notes longer than 20 ms")
        return cls(arr[:, 0].copy(), arr[:, 1].copy(), arr[:, 2].copy())

    def __len__(self) -> int:
        return len(self.onset_s)

    @property
    def offset_s(self) -> np.ndarray:
        return self.onset_s + self.duration_s

    @property
    def start_s(self) -> float:
        return float(self.onset_s[0])

    @property
    def end_s(self) -> float:
        return float(self.offset_s[-1])

    def select(self, mask_or_index: np.ndarray) -> Score:
        return Score(
            self.onset_s[mask_or_index], self.duration_s[mask_or_index], self.pitch_midi[mask_or_index]
        )

    def passage(self, start_s: float, end_s: float) -> Score:
        """The notes whose onset lies in [start_s, end_s), cut to end by end_s."""
        sel = (self.onset_s >= start_s - 1e-9) & (self.onset_s < end_s - 1e-9)
        if not np.any(sel):
            raise HumdexError(f"no notes between {start_s:.2f} s and {end_s:.2f} s")
        sub = self.select(sel)
        dur = np.minimum(sub.duration_s, end_s - sub.onset_s)
        return Score(sub.onset_s, dur, sub.pitch_midi)

    def shifted(self, score_offset_s: float) -> Score:
        return Score(self.onset_s + score_offset_s, self.duration_s, self.pitch_midi)

    def median_ioi_s(self) -> float:
        """Median inter-onset interval (the duration for a single note)."""
        if len(self) < 2:
            return float(self.duration_s[0])
        return float(np.median(np.diff(self.onset_s)))

    def phrase_starts(self, min_rest_s: float = 0.15, long_note_factor: float = 2.0) -> np.ndarray:
        """Indices of the notes that start a phrase: after a rest or after a long note."""
        if len(self) < 2:
            return np.array([0])
        gap = self.onset_s[1:] - self.offset_s[:-1]
        long_prev = self.duration_s[:-1] >= long_note_factor * self.median_ioi_s()
        starts = np.flatnonzero((gap >= min_rest_s) | long_prev) + 1
        return np.concatenate([[0], starts])
