"""Reference melodies for the matcher: many song contours as flat arrays at one frame rate.

Songs are stored back to back in one (frames,) array with per-song offsets, so the matcher can run
one FFT over all of them, the set saves to a .npz as plain arrays, and adding or removing songs is
a concatenation or a boolean selection. Song identity lives outside: row i is the i-th song given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from humdex.errors import CatalogError
from humdex.frontend.contour import Contour

DEFAULT_HOP_S = 0.08  # seconds per matcher frame (a 8 s query = 100 frames)


def to_hop(contour: Contour, hop_s: float) -> Contour:
    """The contour at hop_s: mean of the voiced source frames in each output frame when
    downsampling (a frame is voiced when at least half of its source frames are), nearest
    frame otherwise."""
    n_src = len(contour.midi)
    if n_src == 0 or abs(contour.hop_s - hop_s) < 1e-9:
        return Contour(contour.midi, hop_s)
    if contour.hop_s * 2 > hop_s:
        return contour.resample(hop_s)
    n_out = max(1, round(contour.duration_s / hop_s))
    dest = np.minimum(
        ((np.arange(n_src) + 0.5) * contour.hop_s / hop_s).astype(np.int64), n_out - 1
    )
    voiced = np.isfinite(contour.midi)
    total = np.bincount(dest, weights=np.where(voiced, contour.midi, 0.0), minlength=n_out)
    n_voiced = np.bincount(dest, weights=voiced, minlength=n_out)
    n_all = np.bincount(dest, minlength=n_out)
    with np.errstate(invalid="ignore", divide="ignore"):
        midi = np.where(n_voiced * 2 >= np.maximum(n_all, 1), total / n_voiced, np.nan)
    return Contour(midi.astype(np.float32), hop_s)


def smoothed(x: np.ndarray, frames: int) -> np.ndarray:
    """(n,) float32 moving average over `frames` frames (edges repeat); x itself if frames <= 1."""
    if frames <= 1 or len(x) == 0:
        return x
    from scipy.ndimage import uniform_filter1d  # type: ignore[import-untyped]

    return uniform_filter1d(x, frames, mode="nearest").astype(np.float32)


def held(midi: np.ndarray) -> np.ndarray:
    """(frames,) with each NaN replaced by the last pitch before it (the first pitch at the start)."""
    voiced = np.isfinite(midi)
    if not voiced.any():
        return np.zeros_like(midi)
    idx = np.where(voiced, np.arange(len(midi)), 0)
    np.maximum.accumulate(idx, out=idx)
    out = midi[idx]
    first = int(np.argmax(voiced))
    out[:first] = midi[first]
    return out


def pitch_class_phasors(midi: np.ndarray) -> np.ndarray:
    """(n,) pitch -> (n,) complex64 exp(2 pi i midi / 12): a pitch class as a point on the unit
    circle (0 where NaN), so that sum(r * conj(q)) over a window measures how well two melodies'
    pitch classes agree at the best key, whatever octave each note is in."""
    voiced = np.isfinite(midi)
    angle = 2.0 * np.pi / 12.0 * np.where(voiced, midi, 0.0)
    return np.where(voiced, np.exp(1j * angle), 0.0).astype(np.complex64)


@dataclass(frozen=True, eq=False)
class ReferenceSet:
    """Song contours back to back at one hop.

    Attributes:
        midi: (frames,) float32 pitch, gaps filled by holding the previous pitch (no NaN).
        voiced: (frames,) bool, True where the source contour had a pitch.
        offsets: (songs + 1,) int64, song i is frames offsets[i]:offsets[i+1].
        hop_s: seconds per frame.
    """

    midi: np.ndarray
    voiced: np.ndarray
    offsets: np.ndarray
    hop_s: float = DEFAULT_HOP_S
    _derived: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        offsets = np.asarray(self.offsets, np.int64)
        if (
            offsets.ndim != 1
            or len(offsets) == 0
            or offsets[0] != 0
            or np.any(np.diff(offsets) < 0)
        ):
            raise CatalogError("reference offsets must start at 0 and never decrease")
        if offsets[-1] != len(self.midi) or len(self.voiced) != len(self.midi):
            raise CatalogError("reference arrays disagree in length")
        object.__setattr__(self, "midi", np.asarray(self.midi, np.float32))
        object.__setattr__(self, "voiced", np.asarray(self.voiced, bool))
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "hop_s", float(self.hop_s))

    @classmethod
    def from_contours(
        cls, contours: Sequence[Contour], hop_s: float = DEFAULT_HOP_S
    ) -> ReferenceSet:
        """Build from song contours (any hop each); row i is contours[i]."""
        mids = [to_hop(c, hop_s).midi for c in contours]
        raw = np.concatenate(mids) if mids else np.zeros(0, np.float32)
        filled = np.concatenate([held(m) for m in mids]) if mids else raw
        offsets = np.concatenate([[0], np.cumsum([len(m) for m in mids])]).astype(np.int64)
        return cls(filled, np.isfinite(raw), offsets, hop_s)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_frames(self) -> int:
        return len(self.midi)

    def append(self, contours: Sequence[Contour]) -> ReferenceSet:
        """A new set with the given songs after the existing ones."""
        return self.concat(ReferenceSet.from_contours(contours, self.hop_s))

    def concat(self, other: ReferenceSet) -> ReferenceSet:
        """A new set: this one's songs then other's (same hop required)."""
        if abs(other.hop_s - self.hop_s) > 1e-9:
            raise CatalogError(
                f"cannot join reference sets with hops {self.hop_s} and {other.hop_s}"
            )
        offsets = np.concatenate([self.offsets, other.offsets[1:] + self.offsets[-1]])
        return ReferenceSet(
            np.concatenate([self.midi, other.midi]),
            np.concatenate([self.voiced, other.voiced]),
            offsets,
            self.hop_s,
        )

    def select(self, keep: np.ndarray) -> ReferenceSet:
        """A new set with the songs where keep (songs,) bool is True, or the given row indices."""
        keep = np.asarray(keep)
        rows = np.flatnonzero(keep) if keep.dtype == bool else keep.astype(np.int64)
        if keep.dtype == bool and len(keep) != len(self):
            raise ValueError(f"mask has {len(keep)} entries for {len(self)} songs")
        lengths = np.diff(self.offsets)[rows]
        frames = _ranges(self.offsets[rows], lengths)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return ReferenceSet(self.midi[frames], self.voiced[frames], offsets, self.hop_s)

    def song(self, i: int) -> Contour:
        """Song i as a Contour (NaN where the source was unvoiced)."""
        sl = slice(self.offsets[i], self.offsets[i + 1])
        return Contour(np.where(self.voiced[sl], self.midi[sl], np.nan), self.hop_s)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for np.savez; from_arrays inverts it."""
        return {
            "ref_midi": self.midi,
            "ref_voiced": self.voiced,
            "ref_offsets": self.offsets,
            "ref_hop_s": np.array(self.hop_s),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ReferenceSet:
        try:
            return cls(
                arrays["ref_midi"],
                arrays["ref_voiced"],
                arrays["ref_offsets"],
                float(arrays["ref_hop_s"]),
            )
        except KeyError as e:
            raise CatalogError(f"reference arrays lack {e.args[0]!r}") from None

    # Derived arrays, computed once per set (the set is immutable).
    def _cached(self, name: str, make) -> np.ndarray:  # type: ignore[no-untyped-def]
        if name not in self._derived:
            self._derived[name] = make()
        return self._derived[name]

    def song_of_frame(self) -> np.ndarray:
        """(frames,) int64 row of the song each frame belongs to."""
        return self._cached("song", lambda: np.repeat(np.arange(len(self)), np.diff(self.offsets)))

    def first_voiced(self) -> np.ndarray:
        """(songs,) int64 first voiced frame of each song, relative to its start (0 if none)."""

        def make() -> np.ndarray:
            idx = np.flatnonzero(self.voiced)
            pos = np.searchsorted(idx, self.offsets[:-1])
            first = idx[np.minimum(pos, max(len(idx) - 1, 0))] if len(idx) else self.offsets[:-1]
            return np.where(self.has_voice(), first - self.offsets[:-1], 0)

        return self._cached("first", make)

    def frames_to_end(self) -> np.ndarray:
        """(frames,) int64 frames from each frame to its song's end (1 for the last frame);
        0 everywhere in songs without any voiced frame, so nothing matches there."""

        def make() -> np.ndarray:
            song = self.song_of_frame()
            left = self.offsets[1:][song] - np.arange(self.n_frames)
            return np.where(self.has_voice()[song], left, 0)

        return self._cached("to_end", make)

    def frames_after_first_voiced(self) -> np.ndarray:
        """(frames,) int64 frame position relative to its song's first voiced frame (-1 in songs
        without any voiced frame)."""

        def make() -> np.ndarray:
            song = self.song_of_frame()
            rel = np.arange(self.n_frames) - (self.offsets[:-1] + self.first_voiced())[song]
            return np.where(self.has_voice()[song], rel, -1)

        return self._cached("after_first", make)

    def has_voice(self) -> np.ndarray:
        """(songs,) bool, the song has at least one voiced frame."""
        return self._cached("has", lambda: _segment_sums(self.voiced, self.offsets) > 0)

    def centred(self, smooth_frames: int = 1) -> np.ndarray:
        """(frames,) float32 pitch minus its song's mean voiced pitch, optionally smoothed by a
        moving average of `smooth_frames` frames."""

        def make() -> np.ndarray:
            centred = (self.midi - song_means(self)[self.song_of_frame()]).astype(np.float32)
            return smoothed(centred, smooth_frames)

        return self._cached(f"centred{smooth_frames}", make)

    def phasors(self) -> np.ndarray:
        """(frames,) complex64 pitch_class_phasors of the (held) pitch."""
        return self._cached("phasors", lambda: pitch_class_phasors(self.midi))


def song_means(refs: ReferenceSet) -> np.ndarray:
    """(songs,) float64 mean voiced pitch of each song (0 for songs without pitch)."""
    return refs._cached("means", lambda: _song_means(refs))


def _song_means(refs: ReferenceSet) -> np.ndarray:
    total = _segment_sums(np.where(refs.voiced, refs.midi, 0.0), refs.offsets)
    count = _segment_sums(refs.voiced, refs.offsets)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def _segment_sums(x: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    c = np.concatenate([[0.0], np.cumsum(x, dtype=np.float64)])
    return c[offsets[1:]] - c[offsets[:-1]]


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated arange(s, s + n) for each start s and length n, vectorised."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(lengths)
    out = np.ones(total, np.int64)
    nz = lengths > 0
    out[0] = starts[nz][0]
    heads = (ends - lengths)[nz][1:]
    out[heads] = starts[nz][1:] - (starts[nz][:-1] + lengths[nz][:-1] - 1)
    return np.cumsum(out)
