"""Pitch contours: a melody as MIDI pitch per frame at a fixed hop, NaN where nothing sounds.

Every melody in humdex (tracked from audio, read from a .pv or f0 CSV, rendered from MIDI notes)
becomes a Contour, so the matchers see one representation whatever the source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Contour:
    """A monophonic pitch track.

    Attributes:
        midi: (frames,) float32 pitch in MIDI semitones (fractional), NaN where unvoiced/rest.
        hop_s: seconds between frames.
    """

    midi: np.ndarray
    hop_s: float

    def __post_init__(self) -> None:
        midi = np.asarray(self.midi, dtype=np.float32).reshape(-1)
        object.__setattr__(self, "midi", midi)
        if not self.hop_s > 0:
            raise ValueError(f"hop_s must be positive, got {self.hop_s}")

    @property
    def duration_s(self) -> float:
        return len(self.midi) * self.hop_s

    @property
    def voiced(self) -> np.ndarray:
        """(frames,) bool, True where a pitch is present."""
        return np.isfinite(self.midi)

    @property
    def voiced_ratio(self) -> float:
        return float(self.voiced.mean()) if len(self.midi) else 0.0

    def times_s(self) -> np.ndarray:
        """(frames,) float64 time of each frame's start in seconds."""
        return np.arange(len(self.midi)) * self.hop_s

    def resample(self, hop_s: float) -> Contour:
        """The contour at another hop, by nearest-frame lookup (keeps NaN gaps and note steps sharp)."""
        if len(self.midi) == 0:
            return Contour(self.midi, hop_s)
        n_out = max(1, round(self.duration_s / hop_s))
        src = np.minimum(((np.arange(n_out) + 0.5) * hop_s / self.hop_s).astype(np.int64),
                         len(self.midi) - 1)
        return Contour(self.midi[src], hop_s)

    def trimmed(self) -> Contour:
        """The contour without unvoiced frames at its start and end."""
        idx = np.flatnonzero(self.voiced)
        if len(idx) == 0:
            return Contour(self.midi[:0], self.hop_s)
        return Contour(self.midi[idx[0] : idx[-1] + 1], self.hop_s)


def stretch_frames(frames: np.ndarray, scale: float, min_frames: int = 1) -> np.ndarray:
    """Frames along axis 0 -> max(min_frames, round(n * scale)) frames by nearest frame: the
    clip played 1/scale times as fast (scale 2: twice as long)."""
    n = max(min_frames, round(len(frames) * scale))
    src = np.minimum(((np.arange(n) + 0.5) / scale).astype(np.int64), len(frames) - 1)
    return frames[src]
