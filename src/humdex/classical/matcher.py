"""Classical key- and tempo-invariant melody matcher: FFT sliding-window candidates, DTW rerank.

Stage 1 (all songs, vectorised): for each tempo scale, the key-invariant mean squared pitch
difference between the rescaled query and every window of the concatenated references, from
FFT correlations (overlap-save) of the references r and r^2 with the query's voiced mask and
mask * pitch; and, blind to octaves, how well the query's pitch classes line up with the window's
(the length of the mean of exp(2 pi i (r - q) / 12), from one complex correlation, whose angle is
the key modulo an octave). A melody tracked from a record has stretches an octave off, which ruin
a window's mean square and key but not its pitch classes. From anywhere, the query's two halves
are also matched by pitch class, each on its own (a sung rhythm drifts from the song's; a half
drifts half as far), and the songs both halves find send their windows too. Stage 2:
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


def _blocks_spectrum(x: np.ndarray, n_fft: int, step: int) -> np.ndarray:
    """(frames,) -> (blocks, n_fft // 2 + 1) complex spectra of overlapping blocks (overlap-save);
    (blocks, n_fft) for complex x."""
    n_blocks = -(-len(x) // step)
    padded = np.zeros(n_blocks * step + n_fft - step, x.dtype)
    padded[: len(x)] = x
    blocks = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::step]
    return np.fft.fft(blocks, axis=1) if np.iscomplexobj(x) else np.fft.rfft(blocks, axis=1)


def _correlate(product: np.ndarray, n_fft: int, step: int, n: int) -> np.ndarray:
    """Sliding correlations c[t] = sum_i conj(k[i]) x[t + i] from block spectra products
    X * conj(K) (overlap-save): (n,) float32, or complex for full (complex) spectra."""
    full = product.shape[1] == n_fft
    c = np.fft.ifft(product, axis=1) if full else np.fft.irfft(product, n=n_fft, axis=1)
    return c[:, :step].reshape(-1)[:n]


def _valid_starts(
    refs: ReferenceSet, window: int, from_start: bool, config: MatcherConfig
) -> np.ndarray:
    """(frames,) bool: where a window of `window` frames may start."""
    if from_start:
        slack = round(config.from_start_slack_s / refs.hop_s)
        after_first = refs.frames_after_first_voiced()
        return (after_first >= 0) & (after_first <= slack)
    return refs.frames_to_end() >= int(np.ceil(config.min_overlap * window))


def candidate_windows(
    q: Contour, refs: ReferenceSet, from_start: bool, config: MatcherConfig,
    also: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stage 1: the best windows of the `config.candidates` best songs by mean square, of as
    many by pitch class, of the `config.part_candidates` best by query parts (from anywhere:
    _part_distances), and of `also`: up to `config.windows_per_song` per song by mean square,
    then `config.pitch_class_windows` by pitch class, each at least half a window away from the
    better ones of its measure (a song's melody tracked from a record has octave slips
    and accompaniment where its best-by-mean-square window need not be the sung one; the DTW
    decides among them).

    Returns (songs, start frames (global), scales, keys), one entry per window (a song repeats
    once per window, its best by mean square first): keys in semitones to add to the
    (mean-centred) query to reach the (mean-centred) song.
    """
    w = np.isfinite(q.midi).astype(np.float32)
    q_mean = float(np.nanmean(q.midi))
    smooth = max(1, round(config.smooth_s / refs.hop_s))
    qv = smoothed(held(q.midi - q_mean), smooth) * w
    qz = pitch_class_phasors(q.midi)
    r = refs.centred(smooth)
    scales = config.tempo_scales()
    # the query at each scale: voiced mask, centred pitch, pitch-class phasors
    scaled = [(_scaled(w, s), _scaled(qv, s), _scaled(qz, s)) for s in scales]
    k_max = max(len(ws) for ws, _, _ in scaled)
    n_fft = max(config.fft_size, 1 << int(np.ceil(np.log2(4 * k_max))))
    step = n_fft - k_max + 1
    spec_r = _blocks_spectrum(r, n_fft, step)
    spec_rr = _blocks_spectrum(r * r, n_fft, step)
    by_class = config.pitch_class_windows > 0
    by_parts = config.part_candidates > 0 and config.query_parts > 0 and not from_start
    spec_z = _blocks_spectrum(refs.phasors(), n_fft, step) if by_class or by_parts else None
    # per frame and measure: the least distance over the scales and the first scale that reached
    # it (a (scales, frames) table would take 60 MB at 2048 songs: its page faults cost more than
    # the arithmetic); the keys are worked out for the chosen windows only (_window_keys)
    square, classes = _BestOverScales(refs.n_frames), _BestOverScales(refs.n_frames if by_class else 0)
    for s_i, (ws, qs, qzs) in enumerate(scaled):
        n_w, s_q, s_qq = ws.sum(), qs.sum(), (qs * qs).sum()
        kw = np.conj(np.fft.rfft(ws, n=n_fft))
        kq = np.conj(np.fft.rfft(qs, n=n_fft))
        s_r = _correlate(spec_r * kw, n_fft, step, refs.n_frames)
        rest = _correlate(spec_rr * kw - 2 * spec_r * kq, n_fft, step, refs.n_frames)
        diff = s_r - s_q
        dist = ((rest + s_qq - diff * diff / n_w) / n_w).astype(np.float32, copy=False)
        valid = _valid_starts(refs, len(ws), from_start, config)
        dist[~valid] = np.inf
        square.update(dist, s_i)
        if by_class and spec_z is not None:
            classes.update(_class_distance(spec_z, ws, qzs, valid, n_fft, step, refs.n_frames), s_i)
    n_keep = min(config.candidates, len(refs))
    songs = square.best_songs(refs, n_keep)
    if by_class:
        songs = np.union1d(songs, classes.best_songs(refs, n_keep))
    if by_parts and spec_z is not None:
        per_song = _part_distances(w, qz, refs, config, scales, spec_z, n_fft, step)
        songs = np.union1d(songs, _least(per_song, min(config.part_candidates, len(refs))))
    if also is not None and len(also):
        songs = np.union1d(songs, np.asarray(also, np.int64))
    picks: list[tuple[int, int, int, bool]] = []
    for song in songs:  # each song's windows by mean square, then by pitch class
        lo, hi = int(refs.offsets[song]), int(refs.offsets[song + 1])
        picks += [(*p, False) for p in square.windows(song, lo, hi, config.windows_per_song, scales, len(w))]
        if by_class:
            picks += [(*p, True) for p in classes.windows(song, lo, hi, config.pitch_class_windows, scales, len(w))]
    if not picks:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    song_ids, starts, scale_idx, by_class_pick = (np.array(x) for x in zip(*picks))
    keys = _window_keys(refs, r, scaled, song_ids, starts, scale_idx, by_class_pick, q_mean)
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


def _class_distance(spec_z: np.ndarray, ws: np.ndarray, qzs: np.ndarray, valid: np.ndarray, n_fft: int,
                    step: int, n_frames: int) -> np.ndarray:
    """(frames,) float32 pitch-class distance 1 - |mean exp(2 pi i (r - q) / 12)| over the voiced
    query frames of a window starting at each reference frame (inf where none may start)."""
    kz = np.conj(np.fft.fft(qzs, n=n_fft))
    agree = _correlate(spec_z * kz, n_fft, step, n_frames)  # sum exp(2 pi i (r - q) / 12)
    dist = (1.0 - np.abs(agree) / ws.sum()).astype(np.float32)
    dist[~valid] = np.inf
    return dist


def _part_distances(w: np.ndarray, qz: np.ndarray, refs: ReferenceSet, config: MatcherConfig,
                    scales: np.ndarray, spec_z: np.ndarray, n_fft: int, step: int) -> np.ndarray:
    """(songs,) stage 1 by query parts: each of config.query_parts consecutive parts of the query
    (its voiced mask w and pitch-class phasors qz) matched by pitch class on its own, at every
    part_scale_stride-th tempo scale; a song's distance is the mean of its parts' least
    distances, wherever in the song each part lies (inf where a part has no voiced frame or fits
    nowhere in the song)."""
    bounds = np.linspace(0, len(w), config.query_parts + 1).round().astype(np.int64)
    total = np.zeros(len(refs))
    for a, b in itertools.pairwise(bounds):
        if not w[a:b].any():
            return np.full(len(refs), np.inf)
        part = _BestOverScales(refs.n_frames)
        for s_i in range(0, len(scales), config.part_scale_stride):
            ws = _scaled(w[a:b], scales[s_i])
            valid = _valid_starts(refs, len(ws), False, config)
            part.update(_class_distance(spec_z, ws, _scaled(qz[a:b], scales[s_i]), valid, n_fft, step,
                                        refs.n_frames), s_i)
        total += part.per_song(refs)
    return total / config.query_parts


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
        self.scale = np.zeros(n_frames, np.int64)

    def update(self, dist: np.ndarray, scale_index: int) -> None:
        better = np.flatnonzero(dist < self.dist)  # ties keep the earlier scale
        self.dist[better] = dist[better]
        self.scale[better] = scale_index

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
