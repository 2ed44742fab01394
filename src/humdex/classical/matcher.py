"""Classical key- and tempo-invariant melody matcher: FFT sliding-window candidates, DTW rerank.

Stage 1 (all songs, vectorised): for each tempo scale, the key-invariant mean squared pitch
difference between the rescaled query and every window of the concatenated references, from
FFT correlations (overlap-save) of the references r and r^2 with the query's voiced mask and
mask * pitch; and, blind to octaves, how well the query's pitch classes line up with the window's
(the length of the mean of exp(2 pi i (r - q) / 12), from one complex correlation, whose angle is
the key modulo an octave). A melody tracked from a record has stretches an octave off, which ruin
a window's mean square and key but not its pitch classes. From anywhere, the query's two halves
are also matched by pitch class, each on its own (a sung rhythm drifts from the song's; a half
drifts half as far), and the songs both halves find send their windows too. Stage 1 goes over
the references in chunks of blocks small enough to stay in the CPU's cache through every
correlation, the chunks spread over threads (_Scan). Stage 2:
subsequence DTW (dtw.py) of the query against the best windows of the best songs by any
measure, under a small transposition search around stage 1's key, gives the final score.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from humdex.classical.references import (
    ReferenceSet,
    held,
    pitch_class_phasors,
    smoothed,
    song_means,
    to_hop,
)
from humdex.errors import AudioError, CatalogError
from humdex.frontend.contour import Contour, stretch_frames

__all__ = ["Match", "MatcherConfig", "ReferenceSet", "match", "prepare_query"]


@dataclass(frozen=True)
class MatcherConfig:
    """Every default of the matcher (frame rate is the ReferenceSet's own hop_s)."""

    tempo_min: float = 0.5  # reference frames per query frame, lowest scale tried
    tempo_max: float = 2.0
    tempo_steps: int = 13  # geometric grid between tempo_min and tempo_max
    min_overlap: float = 0.75  # fraction of the scaled query that must lie inside the song
    from_start_slack_s: float = (
        1.0  # from_start: the match may begin this late after the song's start
    )
    candidates: int = 200  # songs reranked by DTW, by mean square (and as many by pitch class)
    windows_per_song: int = 3  # stage 1's best non-overlapping windows of each song the DTW tries
    pitch_class_windows: int = 2  # and its best windows by pitch class (0: none, nor their songs)
    # queries from anywhere: stage 1 also matches query_parts consecutive parts of the query by
    # pitch class, each on its own, and sends the part_candidates songs of the least mean part
    # distance (0: none) with their windows by both measures above: a part drifts half as far
    # from a sung rhythm as the whole query
    part_candidates: int = 50
    query_parts: int = 2
    part_scale_stride: int = 2  # the parts try every this-th tempo scale
    margin: float = 0.25  # DTW segment = candidate window +- margin * window length
    key_offsets_st: tuple[float, ...] = (-0.5, 0.0, 0.5)  # around stage 1's key
    key_refinements: int = 1  # DTW reruns at the best key + mean residual along its path
    octave_penalty_st: float = 1.0  # DTW cost of matching an octave off, on top of the residue
    cost_cap_st: float = 4.0  # DTW local cost cap (semitones)
    score_scale_st: float = 1.0  # score = exp(-mean DTW cost / score_scale_st)
    octave_shift_cost_st: float = 5.0  # query octave-error repair: price of moving a note
    outlier_st: float = 15.0  # query frames further than this from its median pitch are dropped
    min_query_s: float = 1.0  # voiced query shorter than this is refused
    smooth_s: float = 0.0  # stage 1 compares moving averages over this long (0: raw)
    fft_size: int = 8192  # overlap-save block size (frames)

    def tempo_scales(self) -> np.ndarray:
        """(tempo_steps,) float64 reference frames per query frame."""
        return np.geomspace(self.tempo_min, self.tempo_max, self.tempo_steps)


@dataclass(frozen=True)
class Match:
    """One reference's answer: row index in the ReferenceSet, score in [0, 1] (higher is better),
    where the match lies in the song (seconds from the song's start)."""

    index: int
    score: float
    start_s: float
    end_s: float
    cost_st: float = field(default=float("nan"))  # mean DTW cost per voiced query frame
    key_st: float = field(default=float("nan"))  # semitones to add to the query to reach the song


def fix_octave_jumps(
    midi: np.ndarray, shift_cost_st: float = 5.0, free_leap_st: float = 5.0
) -> np.ndarray:
    """(frames,) pitch with notes an octave off their neighbours (pitch tracker errors) moved back.

    The contour is cut into runs (notes, roughly) at unvoiced frames and at steps over 3
    semitones. Each run of 2+ frames may move by -12, 0 or +12 semitones; a Viterbi pass picks
    the moves that minimise the leaps between consecutive runs (each leap costs its size beyond
    `free_leap_st`) plus `shift_cost_st` (+ 0.25 per frame) per run moved. Single frames (glides
    between notes) follow the run before them.
    """
    voiced = np.isfinite(midi)
    if voiced.sum() < 4:
        return midi.copy()
    step = np.abs(np.diff(midi))
    bounds = np.flatnonzero(~(step <= 3.0)) + 1  # NaN steps (unvoiced frames) cut too
    runs = [(lo, hi) for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(midi)]) if voiced[lo]]
    notes = [(lo, hi) for lo, hi in runs if hi - lo >= 2]
    if len(notes) < 2:
        return midi.copy()
    level = np.array([np.median(midi[lo:hi]) for lo, hi in notes])
    moves = np.array([-12.0, 0.0, 12.0])
    price = shift_cost_st + 0.25 * np.array([hi - lo for lo, hi in notes], np.float64)
    total = np.array([price[0], 0.0, price[0]])
    back = np.zeros((len(notes), 3), np.int64)
    for k in range(1, len(notes)):
        leap = np.abs((level[k] + moves)[None, :] - (level[k - 1] + moves)[:, None])
        trans = total[:, None] + np.maximum(leap - free_leap_st, 0.0)  # (previous move, this move)
        back[k] = np.argmin(trans, axis=0)
        total = trans[back[k], np.arange(3)] + np.array([price[k], 0.0, price[k]])
    shift = np.zeros(len(midi))
    choice = int(np.argmin(total))
    for k in range(len(notes) - 1, -1, -1):
        shift[notes[k][0]] = moves[choice] if moves[choice] else 1e-9  # mark run starts
        choice = int(back[k, choice])
    # each frame takes the move of the latest note run started at or before it
    starts = np.flatnonzero(shift)
    owner = np.searchsorted(starts, np.arange(len(midi)), side="right") - 1
    moved = np.where(owner >= 0, np.round(shift[starts[np.maximum(owner, 0)]]), 0.0)
    return (midi + moved).astype(np.float32)


def drop_outliers(midi: np.ndarray, max_from_median_st: float) -> np.ndarray:
    """(frames,) pitch with frames further than max_from_median_st from the median unvoiced.

    A tracker's stray frame two or three octaves off (a squeak, a harmonic in a breath) would
    otherwise dominate stage 1's squared distance and keep the right song from the rerank.
    """
    voiced = np.isfinite(midi)
    if not voiced.any():
        return midi.copy()
    far = voiced & (np.abs(midi - np.median(midi[voiced])) > max_from_median_st)
    return np.where(far, np.nan, midi).astype(np.float32)


def prepare_query(query: Contour, hop_s: float, config: MatcherConfig) -> Contour:
    """The query at the matcher's hop, octave jumps repaired, unvoiced ends trimmed.

    Raises AudioError when too little voiced pitch remains.
    """
    q = to_hop(query, hop_s)
    midi = fix_octave_jumps(q.midi, config.octave_shift_cost_st)
    q = Contour(drop_outliers(midi, config.outlier_st), hop_s).trimmed()
    voiced_s = float(np.count_nonzero(q.voiced)) * hop_s
    if voiced_s < config.min_query_s:
        raise AudioError(
            f"query has {voiced_s:.1f} s of voiced pitch; at least {config.min_query_s:.1f} s needed"
        )
    return q


def _scaled(x: np.ndarray, scale: float) -> np.ndarray:
    """(n,) -> (round(n * scale),) by nearest frame: the query at another tempo."""
    return stretch_frames(x, scale, min_frames=2)


def _valid_starts(
    refs: ReferenceSet, window: int, from_start: bool, config: MatcherConfig, at: slice = slice(None)
) -> np.ndarray:
    """(frames,) bool: where a window of `window` frames may start (of the frames `at` only)."""
    if from_start:
        slack = round(config.from_start_slack_s / refs.hop_s)
        after_first = refs.frames_after_first_voiced()[at]
        return (after_first >= 0) & (after_first <= slack)
    return refs.frames_to_end()[at] >= int(np.ceil(config.min_overlap * window))


def candidate_windows(
    q: Contour, refs: ReferenceSet, from_start: bool, config: MatcherConfig,
    also: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stage 1: the best windows of the `config.candidates` best songs by mean square, of as
    many by pitch class, of the `config.part_candidates` best by query parts (from anywhere:
    _query_parts), and of `also`: up to `config.windows_per_song` per song by mean square,
    then `config.pitch_class_windows` by pitch class, each at least half a window away from the
    better ones of its measure (a song's melody tracked from a record has octave slips
    and accompaniment where its best-by-mean-square window need not be the sung one; the DTW
    decides among them).

    Returns (songs, start frames (global), scales, keys), one entry per window (a song repeats
    once per window, its best by mean square first): keys in semitones to add to the
    (mean-centred) query to reach the (mean-centred) song.
    """
    scan = _Scan(q, refs, from_start, config)
    scan.run()
    w, scales = scan.w, scan.scales
    n_keep = min(config.candidates, len(refs))
    songs = scan.square.best_songs(refs, n_keep)
    if scan.by_class:
        songs = np.union1d(songs, scan.classes.best_songs(refs, n_keep))
    if scan.parts:
        per_song = np.zeros(len(refs))  # a song's mean over the parts of its least part distance
        for part in scan.parts:
            per_song += part.per_song(refs)
        per_song /= len(scan.parts)
        songs = np.union1d(songs, _least(per_song, min(config.part_candidates, len(refs))))
    if also is not None and len(also):
        songs = np.union1d(songs, np.asarray(also, np.int64))
    picks: list[tuple[int, int, int, bool]] = []
    for song in songs:  # each song's windows by mean square, then by pitch class
        lo, hi = int(refs.offsets[song]), int(refs.offsets[song + 1])
        picks += [(*p, False) for p in scan.square.windows(song, lo, hi, config.windows_per_song, scales, len(w))]
        if scan.by_class:
            picks += [(*p, True) for p in scan.classes.windows(song, lo, hi, config.pitch_class_windows, scales, len(w))]
    if not picks:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    song_ids, starts, scale_idx, by_class_pick = (np.array(x) for x in zip(*picks))
    keys = _window_keys(refs, scan.r, scan.scaled, song_ids, starts, scale_idx, by_class_pick, scan.q_mean)
    return song_ids.astype(np.int64), starts.astype(np.int64), scales[scale_idx], keys


def _window_keys(refs: ReferenceSet, r: np.ndarray, scaled: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                 songs: np.ndarray, starts: np.ndarray, scale_idx: np.ndarray, by_class: np.ndarray,
                 q_mean: float) -> np.ndarray:
    """(windows,) keys in semitones to add to the centred query to reach the centred song, of
    windows starting at `starts` at the scales scale_idx, from the same sums as stage 1's
    correlations (scaled[i]: the query's voiced mask, centred pitch and phasors at scale i; frames
    past the reference's end count as 0, as in the FFT's padding). By mean square: the mean
    difference. By pitch class: the angle of sum(exp(2 pi i (r - q) / 12)) gives the raw key
    modulo 12, centred like the mean key, in the octave nearest to it (the mean key may be some
    semitones off where a stretch is an octave off, rarely six)."""
    keys = np.zeros(len(starts))
    for s_i in np.unique(scale_idx):
        ws, qs, qz = scaled[s_i]
        at = np.flatnonzero(scale_idx == s_i)
        frames = starts[at][:, None] + np.arange(len(ws))[None, :]
        keys[at] = (_at_frames(r, frames) @ ws - qs.sum()) / ws.sum()
        turn = at[by_class[at]]
        if len(turn):
            agree = _at_frames(refs.phasors(), frames[by_class[at]]) @ np.conj(qz)
            key = np.angle(agree) * (12.0 / (2.0 * np.pi)) + q_mean - song_means(refs)[songs[turn]]
            keys[turn] = key + 12.0 * np.round((keys[turn] - key) / 12.0)
    return keys


def _at_frames(x: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """x[frames], 0 where a frame lies past x's end."""
    return x[np.minimum(frames, len(x) - 1)] * (frames < len(x))


@dataclass(frozen=True)
class _Kernel:
    """One scaled query (or query part) as stage 1 correlates it: its length, the sums of its
    voiced mask and centred pitch, and the conjugate spectra (n_fft points) of its voiced mask,
    centred pitch (none for a part: pitch class only) and pitch-class phasors."""

    frames: int
    n_w: np.float32  # voiced frames
    s_q: np.float32  # sum of the centred pitch
    s_qq: np.float32  # and of its square
    kw: np.ndarray
    kq2: np.ndarray | None  # twice the centred pitch's
    kz: np.ndarray

    @staticmethod
    def of(ws: np.ndarray, qs: np.ndarray | None, qzs: np.ndarray, n_fft: int) -> _Kernel:
        """From the scaled mask, centred pitch (None: pitch class only) and phasors."""
        qs_ = np.zeros_like(ws) if qs is None else qs
        return _Kernel(len(ws), ws.sum(), qs_.sum(), (qs_ * qs_).sum(), np.conj(np.fft.rfft(ws, n=n_fft)),
                       None if qs is None else 2 * np.conj(np.fft.rfft(qs, n=n_fft)),
                       np.conj(np.fft.fft(qzs, n=n_fft)))


def _query_parts(w: np.ndarray, qz: np.ndarray, scales: np.ndarray,
                 config: MatcherConfig) -> list[list[tuple[int, np.ndarray, np.ndarray]]]:
    """Per query part, (scale index, scaled voiced mask, scaled phasors) at every
    part_scale_stride-th tempo scale: config.query_parts consecutive parts of the query (its
    voiced mask w and pitch-class phasors qz), matched by pitch class each on its own; none when
    parts are off or a part has no voiced frame."""
    if config.part_candidates <= 0 or config.query_parts <= 0:
        return []
    bounds = np.linspace(0, len(w), config.query_parts + 1).round().astype(np.int64)
    if any(not w[a:b].any() for a, b in itertools.pairwise(bounds)):
        return []
    return [[(s_i, _scaled(w[a:b], scales[s_i]), _scaled(qz[a:b], scales[s_i]))
             for s_i in range(0, len(scales), config.part_scale_stride)]
            for a, b in itertools.pairwise(bounds)]


class _Scan:
    """Stage 1 of one query: its correlations at every tempo scale (and of its parts) with the
    references, by overlap-save blocks of n_fft frames that advance by `step`: per reference
    frame, the least distance over the scales of a window starting there by mean square
    (`square`), by pitch class (`classes`) and for each query part by pitch class (`parts`; a
    song's part distance is its least over the song).

    The blocks go in chunks of about CHUNK_FRAMES frames, each chunk through every kernel while
    its spectra stay in the CPU's cache, the chunks spread over humdex.settings' threads (they
    write disjoint frames; the answer does not depend on the split)."""

    CHUNK_FRAMES = 1 << 16

    def __init__(self, q: Contour, refs: ReferenceSet, from_start: bool, config: MatcherConfig) -> None:
        self.refs, self.from_start, self.config = refs, from_start, config
        self.w = np.isfinite(q.midi).astype(np.float32)
        self.q_mean = float(np.nanmean(q.midi))
        smooth = max(1, round(config.smooth_s / refs.hop_s))
        qv = smoothed(held(q.midi - self.q_mean), smooth) * self.w
        qz = pitch_class_phasors(q.midi)
        self.r, self.scales = refs.centred(smooth), config.tempo_scales()
        # the query at each scale: voiced mask, centred pitch, pitch-class phasors
        self.scaled = [(_scaled(self.w, s), _scaled(qv, s), _scaled(qz, s)) for s in self.scales]
        self.by_class = config.pitch_class_windows > 0
        parts = [] if from_start else _query_parts(self.w, qz, self.scales, config)
        k_max = max(len(ws) for ws, _, _ in self.scaled)
        self.n_fft = max(config.fft_size, 1 << int(np.ceil(np.log2(4 * k_max))))
        self.step = self.n_fft - k_max + 1
        self.whole = [_Kernel.of(ws, qs, qzs, self.n_fft) for ws, qs, qzs in self.scaled]
        self.part_kernels = [[(s_i, _Kernel.of(ws, None, qzs, self.n_fft)) for s_i, ws, qzs in part]
                             for part in parts]
        self.z = refs.phasors() if self.by_class or parts else None
        n = refs.n_frames
        self.square, self.classes = _BestOverScales(n), _BestOverScales(n if self.by_class else 0)
        self.parts = [_BestOverScales(n) for _ in parts]

    def run(self, threads: int | None = None) -> None:
        """Every chunk, over `threads` threads (default: humdex.settings' thread count)."""
        from humdex.settings import settings

        n_blocks = -(-self.refs.n_frames // self.step)
        per_chunk = max(1, self.CHUNK_FRAMES // self.n_fft)
        firsts = range(0, n_blocks, per_chunk)
        threads = min(threads or settings().threads, len(firsts))
        if threads <= 1:
            for b in firsts:
                self.chunk(b, min(n_blocks, b + per_chunk))
            return
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="humdex-stage1") as pool:
            list(pool.map(lambda b: self.chunk(b, min(n_blocks, b + per_chunk)), firsts))

    def chunk(self, b0: int, b1: int) -> None:
        """Blocks b0:b1, i.e. the windows starting at frames b0 * step up to b1 * step."""
        lo, hi = b0 * self.step, min(self.refs.n_frames, b1 * self.step)
        span = slice(lo, lo + (b1 - b0) * self.step + self.n_fft - self.step)
        spec_r = self.spectra(self.r[span], b1 - b0)
        spec_rr = self.spectra(self.r[span] * self.r[span], b1 - b0)
        spec_z = None if self.z is None else self.spectra(self.z[span], b1 - b0)
        for s_i, k in enumerate(self.whole):
            invalid = self.invalid(k, lo, hi)
            # the window's variance of song - query: (sum r^2 - 2 q r + q^2 - (sum r - q)^2 / n_w) / n_w
            diff = self.correlate(spec_r * k.kw, hi - lo)  # sum r, in place from here on
            dist = self.correlate(spec_rr * k.kw - spec_r * k.kq2, hi - lo)  # sum r^2 - 2 q r
            np.subtract(diff, k.s_q, out=diff)
            np.multiply(diff, diff, out=diff)
            np.divide(diff, k.n_w, out=diff)
            np.add(dist, k.s_qq, out=dist)
            np.subtract(dist, diff, out=dist)
            np.divide(dist, k.n_w, out=dist)
            np.copyto(dist, np.inf, where=invalid)
            self.square.update(dist, s_i, lo)
            if self.by_class and spec_z is not None:
                self.classes.update(self.class_distance(spec_z, k, invalid, hi - lo), s_i, lo)
        for best, kernels in zip(self.parts, self.part_kernels):
            for s_i, k in kernels:
                assert spec_z is not None
                best.update(self.class_distance(spec_z, k, self.invalid(k, lo, hi), hi - lo), s_i, lo)

    def invalid(self, k: _Kernel, lo: int, hi: int) -> np.ndarray:
        """(hi - lo,) bool: the frames lo:hi where no window of kernel k's length may start."""
        return ~_valid_starts(self.refs, k.frames, self.from_start, self.config, slice(lo, hi))

    def spectra(self, x: np.ndarray, n_blocks: int) -> np.ndarray:
        """(n_blocks, n_fft // 2 + 1) complex spectra of x's overlapping blocks (zero past x's
        end); (n_blocks, n_fft) for complex x."""
        padded = np.zeros(n_blocks * self.step + self.n_fft - self.step, x.dtype)
        padded[: len(x)] = x
        blocks = np.lib.stride_tricks.sliding_window_view(padded, self.n_fft)[:: self.step]
        return np.fft.fft(blocks, axis=1) if np.iscomplexobj(x) else np.fft.rfft(blocks, axis=1)

    def correlate(self, product: np.ndarray, n: int) -> np.ndarray:
        """Sliding correlations c[t] = sum_i conj(k[i]) x[t + i] from block spectra products
        X * conj(K): (n,) float32, or complex for full (complex) spectra."""
        full = product.shape[1] == self.n_fft
        c = np.fft.ifft(product, axis=1) if full else np.fft.irfft(product, n=self.n_fft, axis=1)
        return c[:, : self.step].reshape(-1)[:n]

    def class_distance(self, spec_z: np.ndarray, k: _Kernel, invalid: np.ndarray, n: int) -> np.ndarray:
        """(n,) float32 pitch-class distance 1 - |mean exp(2 pi i (r - q) / 12)| over the voiced
        frames of kernel k's window starting at each frame (inf where none may start)."""
        dist = np.abs(self.correlate(spec_z * k.kz, n))  # |sum exp(2 pi i (r - q) / 12)|
        np.divide(dist, k.n_w, out=dist)
        np.subtract(1.0, dist, out=dist)
        np.copyto(dist, np.inf, where=invalid)
        return dist


def _least(per_song: np.ndarray, n: int) -> np.ndarray:
    """The sorted rows of the n least finite values of per_song."""
    if n <= 0:
        return np.zeros(0, np.int64)
    songs = np.argpartition(per_song, n - 1)[:n]
    return np.sort(songs[np.isfinite(per_song[songs])])


class _BestOverScales:
    """Per reference frame: the least stage-1 distance of a window starting there over the tempo
    scales and the first scale that reached it."""

    def __init__(self, n_frames: int) -> None:
        self.dist = np.full(n_frames, np.inf, np.float32)
        self.scale = np.zeros(n_frames, np.int16)

    def update(self, dist: np.ndarray, scale_index: int, first_frame: int = 0) -> None:
        """Frames first_frame: first_frame + len(dist) at scale scale_index."""
        at = slice(first_frame, first_frame + len(dist))
        better = dist < self.dist[at]  # ties keep the earlier scale
        np.copyto(self.dist[at], dist, where=better)
        np.copyto(self.scale[at], scale_index, where=better)

    def per_song(self, refs: ReferenceSet) -> np.ndarray:
        """(songs,) each song's least distance (inf for a song without frames)."""
        per_song = np.minimum.reduceat(self.dist, refs.offsets[:-1])
        per_song[np.diff(refs.offsets) == 0] = np.inf
        return per_song

    def best_songs(self, refs: ReferenceSet, n: int) -> np.ndarray:
        """The n songs of the least distance (those with a finite one)."""
        return _least(self.per_song(refs), n)

    def windows(self, song: int, lo: int, hi: int, n: int, scales: np.ndarray,
                query_frames: int) -> list[tuple[int, int, int]]:
        """Up to n (song, start, scale index) of song's frames lo:hi, best first, each at least
        half a window from the better ones: the first minimum of the song's (scales, frames)
        distances, found on the per-frame minima (the least distance left, at its first scale,
        there at its first frame; a window masks its frames at every scale, so the per-frame
        minima stay the table's)."""
        dist = self.dist[lo:hi].copy()
        picks = []
        for _ in range(n):
            least = dist.min() if len(dist) else np.inf
            if not np.isfinite(least):
                break
            at = np.flatnonzero(dist == least)
            s_i = int(self.scale[lo + at].min())
            t = int(at[self.scale[lo + at] == s_i][0])
            picks.append((int(song), lo + t, s_i))
            half = max(1, round(query_frames * scales[s_i] / 2))
            dist[max(0, t - half): t + half + 1] = np.inf
        return picks


def _segments(
    refs: ReferenceSet,
    songs: np.ndarray,
    starts: np.ndarray,
    scales: np.ndarray,
    n_query: int,
    from_start: bool,
    config: MatcherConfig,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], np.ndarray]:
    """Reference segments around each candidate, resampled to the query's frame rate."""
    r = refs.centred()
    pieces, frame_idx, start_max = [], [], np.empty(len(songs), np.int64)
    slack = config.from_start_slack_s / refs.hop_s
    for k, (song, t, scale) in enumerate(zip(songs, starts, scales)):
        lo, hi = int(refs.offsets[song]), int(refs.offsets[song + 1])
        window = n_query * scale
        if from_start:
            p0 = lo + int(refs.first_voiced()[song])
            start_max[k] = int(np.ceil(slack / scale)) + 1
        else:
            p0 = max(lo, int(t - config.margin * window))
            start_max[k] = 1 << 40
        p1 = min(hi, int(np.ceil(t + window * (1 + config.margin))))
        m = max(1, int((p1 - p0) / scale))
        idx = np.minimum(p0 + np.round(np.arange(m) * scale).astype(np.int64), hi - 1)
        pieces.append(r[idx])
        frame_idx.append(idx - lo)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in pieces])]).astype(np.int64)
    return np.concatenate(pieces).astype(np.float32), offsets, frame_idx, start_max


def dtw_in_threads(
    qv: np.ndarray, w: np.ndarray, seg: np.ndarray, seg_offsets: np.ndarray, key_grid: np.ndarray,
    start_max: np.ndarray, config: MatcherConfig, threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """dtw.batch_subsequence_dtw of the query against every segment, the segments split into
    `threads` runs of about equal length (default: humdex.settings' thread count) that run at
    once (the kernel releases the GIL). The same arrays as one call, whatever the split."""
    from humdex.classical.dtw import batch_subsequence_dtw
    from humdex.settings import settings

    def run(a: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        lo, hi = seg_offsets[a], seg_offsets[b]
        return batch_subsequence_dtw(qv, w, seg[lo:hi], seg_offsets[a:b + 1] - lo, key_grid[a:b],
                                     start_max[a:b], config.octave_penalty_st, config.cost_cap_st,
                                     config.key_refinements)

    count = len(seg_offsets) - 1
    threads = min(threads or settings().threads, max(1, count // 8))
    if threads <= 1:
        return run(0, count)
    # cut where the cumulative segment length crosses each 1/threads of the total
    cuts = np.searchsorted(seg_offsets, np.arange(1, threads) * seg_offsets[-1] / threads)
    bounds = np.unique(np.concatenate([[0], np.clip(cuts, 1, count - 1), [count]]))
    with ThreadPoolExecutor(max_workers=len(bounds) - 1, thread_name_prefix="humdex-dtw") as pool:
        parts = list(pool.map(run, bounds[:-1], bounds[1:]))
    return tuple(np.concatenate(arrays) for arrays in zip(*parts))  # type: ignore[return-value]


def match(
    query: Contour,
    refs: ReferenceSet,
    *,
    from_start: bool = False,
    top: int = 10,
    config: MatcherConfig = MatcherConfig(),
    also: np.ndarray | None = None,
) -> list[Match]:
    """The `top` references most similar to the query, best first.

    Args:
        query: the hummed/sung melody (any hop; NaN = unvoiced).
        refs: the reference melodies.
        from_start: the query begins at the song's start (MIR-QBSH protocol); otherwise anywhere.
        top: how many matches to return (fewer if the set is smaller).
        also: reference rows the DTW stage reranks whatever stage 1 thinks of them (candidates
            from another retriever, e.g. the learned model).

    Raises:
        AudioError: the query has (almost) no voiced pitch. CatalogError: refs is empty.
    """
    if len(refs) == 0 or refs.n_frames == 0:
        raise CatalogError("the reference set is empty: index some songs first")
    q = prepare_query(query, refs.hop_s, config)
    songs, starts, scales, keys = candidate_windows(q, refs, from_start, config, also)
    if len(songs) == 0:
        return []
    from humdex.classical.dtw import warmup

    warmup()  # the C kernel loads here (or numba's, ~0.5 s per process; search.prewarm starts it early)
    w = np.isfinite(q.midi).astype(np.float32)
    qv = np.where(w > 0, q.midi - np.nanmean(q.midi), 0.0).astype(np.float32)
    seg, seg_offsets, frame_idx, start_max = _segments(
        refs, songs, starts, scales, len(qv), from_start, config
    )
    key_grid = keys[:, None] + np.asarray(config.key_offsets_st, np.float64)[None, :]
    costs, js, je, best_keys = dtw_in_threads(qv, w, seg, seg_offsets, key_grid, start_max, config)
    mean_cost = costs / w.sum()
    out: list[Match] = []
    means = song_means(refs)
    seen: set[int] = set()
    for k in np.argsort(mean_cost, kind="stable"):  # a song's best window first
        if not np.isfinite(mean_cost[k]) or len(out) == top:
            break
        song = int(songs[k])
        if song in seen:
            continue
        seen.add(song)
        key = float(best_keys[k] + means[song] - np.nanmean(q.midi))
        out.append(
            Match(
                index=song,
                score=float(np.exp(-mean_cost[k] / config.score_scale_st)),
                start_s=float(frame_idx[k][js[k]] * refs.hop_s),
                end_s=float((frame_idx[k][je[k]] + 1) * refs.hop_s),
                cost_st=float(mean_cost[k]),
                key_st=key,
            )
        )
    return out
