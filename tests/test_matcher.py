"""Tests of the classical matcher: DTW numerics, reference set arrays, matching invariants."""

from __future__ import annotations

import numpy as np
import pytest

from humdex.classical.dtw import subsequence_dtw
from humdex.classical.matcher import MatcherConfig, fix_octave_jumps, match
from humdex.classical.references import ReferenceSet, to_hop
from humdex.errors import AudioError, CatalogError
from humdex.frontend.contour import Contour

HOP_S = 0.01


def _dtw(query, ref, key=0.0, start_max=None, weights=None, octave_penalty=1.0, cap=4.0):
    q = np.asarray(query, np.float32)
    w = np.ones(len(q), np.float32) if weights is None else np.asarray(weights, np.float32)
    r = np.asarray(ref, np.float32)
    out = subsequence_dtw(
        q, w, r, key, len(r) if start_max is None else start_max, octave_penalty, cap
    )
    return out[:3]


def _reference_dtw(q, w, r, key, octave_penalty, cap):
    """Plain-python recursion of the same step pattern, for cross-checking the kernel."""
    n, m = len(q), len(r)

    def c(i, j):
        d = abs(r[j] - q[i] - key)
        return w[i] * min(d, abs(d - 12) + octave_penalty, cap)

    inf = float("inf")
    table = [[inf] * m for _ in range(n)]
    for j in range(m):
        table[0][j] = c(0, j)
    for i in range(1, n):
        for j in range(m):
            options = []
            if j >= 1:
                options.append(table[i - 1][j - 1])
                if i >= 2:
                    options.append(table[i - 2][j - 1] + c(i - 1, j))
            if j >= 2:
                options.append(table[i - 1][j - 2])
            best = min(options, default=inf)
            table[i][j] = best + c(i, j) if best < inf else inf
    return min(table[n - 1])


def test_dtw_finds_exact_subsequence():
    assert _dtw([60, 62, 64], [50, 60, 62, 64, 50]) == (0.0, 1, 3)


def test_dtw_hand_computed_costs():
    cost, start, end = _dtw([60, 61, 64], [60, 62, 64])
    assert cost == pytest.approx(1.0) and (start, end) == (0, 2)
    # key shift, octave error (costs the penalty), cap on outliers
    assert _dtw([48, 50, 52], [60, 62, 64], key=12.0)[0] == pytest.approx(0.0)
    assert _dtw([60, 74, 64], [60, 62, 64], octave_penalty=1.0)[0] == pytest.approx(1.0)
    assert _dtw([60, 68, 64], [60, 62, 64], cap=4.0)[0] == pytest.approx(4.0)
    # unvoiced query frames (weight 0) cost nothing
    assert _dtw([60, 0, 64], [60, 62, 64], weights=[1, 0, 1])[0] == pytest.approx(0.0)


def test_dtw_slope_constraints():
    assert _dtw([60, 62, 64], [60, 60, 62, 62, 64, 64])[0] == pytest.approx(0.0)  # slope 2
    assert _dtw([60, 62, 62, 64, 64], [60, 62, 64])[0] == pytest.approx(0.0)  # slope 1/2
    assert _dtw([60] * 6, [60, 60, 60])[0] == np.inf  # would need a slope below 1/2
    # anchored start: the path must begin at ref frame 0 (cost |62-60| = 2 there)
    assert _dtw([62, 64], [60, 62, 64], start_max=1) == (pytest.approx(2.0), 0, 2)


def test_dtw_matches_plain_recursion():
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.integers(55, 80, rng.integers(1, 8)).astype(np.float32)
        r = rng.integers(55, 80, rng.integers(1, 12)).astype(np.float32)
        w = (rng.random(len(q)) > 0.2).astype(np.float32)
        key = float(rng.normal())
        got = _dtw(q, r, key=key, weights=w)[0]
        assert got == pytest.approx(_reference_dtw(q, w, r, key, 1.0, 4.0), abs=1e-4)


# ---- synthetic songs -----------------------------------------------------------------------


def _song(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """(frames,) a random melody at HOP_S: notes of 0.15-0.6 s on a random walk, some rests."""
    parts, total = [], 0
    pitch = rng.integers(60, 72)
    while total < seconds / HOP_S:
        frames = int(rng.integers(15, 60))
        pitch = int(np.clip(pitch + rng.choice([-4, -3, -2, -1, 1, 2, 3, 5]), 50, 82))
        value = np.nan if rng.random() < 0.05 else float(pitch)
        parts.append(np.full(frames, value, np.float32))
        total += frames
    return np.concatenate(parts)


def _stretch(midi: np.ndarray, factor: float) -> np.ndarray:
    """Sung `factor` times as slow (nearest frame)."""
    n = round(len(midi) * factor)
    return midi[np.minimum((np.arange(n) / factor).astype(np.int64), len(midi) - 1)]


@pytest.fixture(scope="module")
def songs() -> list[np.ndarray]:
    rng = np.random.default_rng(42)
    return [_song(rng, float(rng.uniform(20, 40))) for _ in range(30)]


@pytest.fixture(scope="module")
def refs(songs) -> ReferenceSet:
    return ReferenceSet.from_contours([Contour(s, HOP_S) for s in songs])


def _excerpt(song: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
    return song[int(start_s / HOP_S) : int(end_s / HOP_S)].copy()


@pytest.mark.parametrize("shift", [0.0, -5.0, 3.0, 12.0])
def test_own_excerpt_ranks_first_under_transposition(songs, refs, shift):
    query = Contour(_excerpt(songs[7], 10.0, 18.0) + shift, HOP_S)
    results = match(query, refs)
    assert results[0].index == 7
    assert results[0].score > results[1].score
    assert results[0].start_s == pytest.approx(10.0, abs=0.4)
    assert results[0].end_s == pytest.approx(18.0, abs=0.4)
    assert results[0].key_st == pytest.approx(-shift, abs=0.3)


@pytest.mark.parametrize("factor", [0.7, 1.4])
def test_tempo_scaled_excerpt_ranks_first(songs, refs, factor):
    query = Contour(
        to_hop(Contour(_stretch(_excerpt(songs[3], 5.0, 13.0), factor), HOP_S), 0.032).midi, 0.032
    )
    results = match(query, refs)
    assert results[0].index == 3
    assert results[0].start_s == pytest.approx(5.0, abs=0.5)
    assert results[0].end_s == pytest.approx(13.0, abs=0.5)


def test_from_start_prefers_the_song_that_starts_with_the_query(songs):
    rng = np.random.default_rng(7)
    opening = _excerpt(songs[0], 0.0, 8.0)
    # song 1 holds song 0's opening in its middle: a match anywhere, but not from the start
    borrowed = np.concatenate([_song(rng, 10.0)[:1000], opening, _song(rng, 10.0)])
    refs = ReferenceSet.from_contours(
        [Contour(s, HOP_S) for s in [songs[0], borrowed, *songs[1:10]]]
    )
    query = Contour(opening + 2.0, HOP_S)
    anywhere = {m.index: m.score for m in match(query, refs)}
    assert anywhere[1] == pytest.approx(anywhere[0], abs=0.05)
    from_start = match(query, refs, from_start=True)
    assert from_start[0].index == 0 and from_start[0].start_s < 0.5
    assert all(m.score < from_start[0].score - 0.1 for m in from_start[1:])


def test_reference_set_arrays_round_trip(tmp_path, songs):
    contours = [Contour(s, HOP_S) for s in songs[:5]]
    refs = ReferenceSet.from_contours(contours)
    np.savez(tmp_path / "refs.npz", **refs.to_arrays())
    with np.load(tmp_path / "refs.npz") as data:
        back = ReferenceSet.from_arrays(dict(data))
    assert back.hop_s == refs.hop_s and len(back) == 5
    np.testing.assert_array_equal(back.midi, refs.midi)
    np.testing.assert_array_equal(back.voiced, refs.voiced)
    np.testing.assert_array_equal(back.offsets, refs.offsets)
    # song i keeps its NaN gaps; the stored pitch holds the previous note there
    assert not np.isnan(refs.midi).any()
    np.testing.assert_array_equal(
        np.isnan(refs.song(2).midi), np.isnan(to_hop(contours[2], refs.hop_s).midi)
    )


def test_select_and_append_equal_a_fresh_build(songs):
    contours = [Contour(s, HOP_S) for s in songs[:6]]
    refs = ReferenceSet.from_contours(contours[:4]).append(contours[4:])
    keep = np.array([True, False, True, True, False, True])
    picked = refs.select(keep)
    fresh = ReferenceSet.from_contours([c for c, k in zip(contours, keep) if k])
    np.testing.assert_array_equal(picked.offsets, fresh.offsets)
    np.testing.assert_array_equal(picked.midi, fresh.midi)
    np.testing.assert_array_equal(refs.select(np.array([3, 0])).song(1).midi, refs.song(0).midi)


def test_errors_on_empty_inputs(refs):
    with pytest.raises(AudioError):
        match(Contour(np.full(300, np.nan, np.float32), HOP_S), refs)
    with pytest.raises(AudioError):
        match(Contour(np.zeros(0, np.float32), HOP_S), refs)
    with pytest.raises(CatalogError):
        match(Contour(np.full(300, 60.0, np.float32), HOP_S), ReferenceSet.from_contours([]))
    with pytest.raises(CatalogError):
        ReferenceSet.from_arrays({"ref_midi": np.zeros(3)})


def test_config_scales_cover_the_tempo_range():
    scales = MatcherConfig().tempo_scales()
    assert scales[0] == pytest.approx(0.5) and scales[-1] == pytest.approx(2.0)


def test_octave_errors_fold_back_and_leaps_stay():
    notes = [60, 62, 64, 65, 67, 65, 64, 62]
    midi = np.repeat(np.array(notes, np.float32), 5)
    broken = midi.copy()
    broken[20:25] += 12  # the tracker jumped an octave on one note
    np.testing.assert_array_equal(fix_octave_jumps(broken), midi)
    leap = np.repeat(np.array([60, 62, 64, 71, 69, 67], np.float32), 5)  # a real sixth up
    np.testing.assert_array_equal(fix_octave_jumps(leap), leap)


def test_stray_frames_far_from_the_melody_are_dropped() -> None:
    from humdex.classical.matcher import drop_outliers

    midi = np.array([60, 62, np.nan, 89, 64, 65, 40, 62], np.float32)
    out = drop_outliers(midi, 15.0)
    assert np.isnan(out[[2, 3, 6]]).all()
    np.testing.assert_array_equal(out[[0, 1, 4, 5, 7]], midi[[0, 1, 4, 5, 7]])


def test_a_stray_squeak_three_octaves_up_does_not_hide_the_song(songs, refs):
    midi = _excerpt(songs[4], 12.0, 20.0)
    midi[300:312] = np.nan  # a breath ...
    midi[304:309] = np.nanmedian(midi) + 38.0  # ... in which the tracker hears a squeak
    assert match(Contour(midi, HOP_S), refs)[0].index == 4


# ---- the C kernel against numba's ---------------------------------------------------------------


def _random_batch(rng: np.random.Generator, trial: int) -> tuple:
    n = int(rng.integers(1, 160))
    q = rng.normal(0, 5, n).astype(np.float32)
    w = (rng.random(n) > 0.2).astype(np.float32) if trial % 3 else rng.random(n).astype(np.float32)
    lengths = rng.integers(0, 300, int(rng.integers(1, 6)))
    refs = np.round(rng.normal(0, 6, int(lengths.sum())) * 2).astype(np.float32) / 2  # some exact ties
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    keys = np.round(rng.normal(0, 3, (len(lengths), int(rng.integers(1, 4)))) * 2) / 2
    start_max = rng.integers(1, 100, len(lengths)).astype(np.int64)
    if trial % 2:
        start_max[:] = 1 << 40
    return (q, w, refs, offsets, keys, start_max, float(rng.choice([0.0, 1.0, rng.random() * 2])),
            float(rng.choice([4.0, rng.random() * 6 + 0.5])), int(rng.integers(0, 3)))


def test_the_c_kernel_equals_numba_to_the_bit():
    """humdex.classical.dtw runs the C kernel (a C compiler is a test dependency: the Makefile's
    system-deps) and gives numba's costs, paths, residuals and keys exactly, batch and single."""
    from humdex.classical import dtw, dtw_numba

    assert dtw.backend() == "native", "no C kernel: is a C compiler (cc) installed?"
    rng = np.random.default_rng(0)
    for trial in range(150):
        args = _random_batch(rng, trial)
        want = dtw_numba.batch_subsequence_dtw(*args)
        got = dtw.batch_subsequence_dtw(*args)
        for a, b in zip(want, got):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
        q, w, refs, offsets, keys, start_max, octave, cap, _ = args
        for k in range(len(offsets) - 1):
            seg = refs[offsets[k]:offsets[k + 1]]
            c, s, e, r = dtw_numba.subsequence_dtw(q, w, seg, keys[k, 0], start_max[k], octave, cap)
            assert dtw.subsequence_dtw(q, w, seg, keys[k, 0], start_max[k], octave, cap) \
                == (float(c), int(s), int(e), float(r))


def test_the_c_kernel_raises_as_numba_on_a_query_without_weight():
    from humdex.classical import dtw, dtw_numba

    args = (np.ones(4, np.float32), np.zeros(4, np.float32), np.ones(8, np.float32),
            np.array([0, 8], np.int64), np.zeros((1, 1)), np.array([8], np.int64), 1.0, 4.0, 1)
    for kernel in (dtw_numba.batch_subsequence_dtw, dtw.batch_subsequence_dtw):
        with pytest.raises(ZeroDivisionError):
            kernel(*args)


def test_the_c_kernel_is_built_again_when_its_file_is_bad_and_numba_runs_without_a_compiler(
        tmp_path, monkeypatch, songs, refs):
    """A damaged cached library is compiled again; with no C compiler the numba kernel runs, and
    the matcher ranks alike either way."""
    from humdex.classical import dtw, native

    query = Contour(_excerpt(songs[5], 4.0, 12.0) + 1.0, HOP_S)
    before = match(query, refs, top=5)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = native.library_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x7fELF truncated")
    for cached in (native._library, dtw._native):
        cached.cache_clear()
    try:
        assert dtw.backend() == "native" and path.stat().st_size > 1000
        assert match(query, refs, top=5) == before
        path.unlink()
        for cached in (native._library, dtw._native):
            cached.cache_clear()
        monkeypatch.setattr(native, "compiler", lambda: None)
        assert dtw.backend() == "numba" and not path.exists()
        assert match(query, refs, top=5) == before
    finally:
        for cached in (native._library, dtw._native):
            cached.cache_clear()


def test_a_classical_match_in_a_new_process_imports_neither_numba_nor_scipy():
    """The cold classical search's floor: numba's start (0.5 s) and scipy are off its path."""
    import os
    import subprocess
    import sys

    code = ("import sys\n"
            "import numpy as np\n"
            "from humdex.classical.matcher import match\n"
            "from humdex.classical.references import ReferenceSet\n"
            "from humdex.frontend.contour import Contour\n"
            "song = np.repeat(np.arange(60, 80, dtype=np.float32), 40)\n"
            "refs = ReferenceSet.from_contours([Contour(song, 0.01), Contour(song[::-1].copy(), 0.01)])\n"
            "best = match(Contour(song[200:600] + 2, 0.01), refs)[0]\n"
            "print(best.index, sorted(m for m in ('numba', 'scipy') if m in sys.modules))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["0", "[]"]


def test_the_dtw_tries_more_than_stage_ones_best_window_of_a_song(songs):
    """A melody tracked from a record: the sung stretch holds 0.3 s of accompaniment an octave up
    (a large mean square for stage 1), and another stretch is the tune with its intervals squeezed
    (a small one, but a worse DTW). The song's answer is found at the sung stretch only when the
    DTW is given stage 1's next windows by mean square too."""
    sung = _excerpt(songs[5], 10.0, 18.0)
    leaked = sung.copy()
    leaked[300:330] += 12.0
    mean = np.nanmean(sung)
    squeezed = (sung - mean) * 0.7 + mean
    tracked = np.concatenate([squeezed, _song(np.random.default_rng(1), 8.0)[:800], leaked])
    sung_at_s = (len(squeezed) + 800) * HOP_S
    refs = ReferenceSet.from_contours([Contour(s, HOP_S) for s in [tracked, *songs[10:30]]])
    query = Contour(sung - 3.0, HOP_S)
    one = match(query, refs, config=MatcherConfig(windows_per_song=1, pitch_class_windows=0), top=len(refs))
    assert next(m for m in one if m.index == 0).start_s < 1.0  # the squeezed stretch
    found = match(query, refs)
    assert found[0].index == 0 and found[0].start_s == pytest.approx(sung_at_s, abs=0.5)
    assert found[0].score > next(m for m in one if m.index == 0).score + 0.3
    assert len({m.index for m in found}) == len(found)  # one answer per song


def test_a_tracked_stretch_an_octave_low_is_found_by_its_pitch_classes(songs):
    """A melody tracked from a record whose high notes came out an octave low for 3 s of the 8 s
    the query sings (as the salience tracker does when the lead climbs over the band): the window's
    mean square and mean key are off by far more than the DTW's key search reaches, so by mean
    square alone the DTW never sees the sung stretch at its key; by pitch class it does."""
    sung = _excerpt(songs[4], 10.0, 18.0)
    tracked = songs[4].copy()
    slip = slice(int(14.0 / HOP_S), int(17.0 / HOP_S))
    tracked[slip] -= 12.0
    refs = ReferenceSet.from_contours([Contour(s, HOP_S) for s in [tracked, *songs[10:30]]])
    query = Contour(sung + 5.0, HOP_S)
    squares = MatcherConfig(pitch_class_windows=0)
    before = next(m for m in match(query, refs, config=squares, top=len(refs)) if m.index == 0)
    found = match(query, refs, top=len(refs))
    assert found[0].index == 0
    assert found[0].start_s == pytest.approx(10.0, abs=0.5) and found[0].end_s == pytest.approx(18.0, abs=0.5)
    assert found[0].key_st == pytest.approx(-5.0, abs=0.3)
    assert found[0].score > before.score + 0.1
    assert not (before.start_s == pytest.approx(10.0, abs=0.5) and before.key_st == pytest.approx(-5.0, abs=0.3))


def test_pitch_class_phasors_agree_across_octaves_and_keys():
    from humdex.classical.references import pitch_class_phasors

    melody = np.array([60.0, 62.0, 64.0, np.nan, 67.0], np.float32)
    z = pitch_class_phasors(melody)
    assert z.dtype == np.complex64 and z[3] == 0
    slipped = pitch_class_phasors(melody + np.array([0.0, -12.0, 12.0, 0.0, 24.0], np.float32))
    np.testing.assert_allclose(slipped, z, atol=1e-5)
    moved = pitch_class_phasors(melody + 3.0)  # a key change turns every phasor by 3 semitones
    agree = np.sum(moved * np.conj(z))
    assert abs(agree) == pytest.approx(4.0, abs=1e-4)
    assert np.angle(agree) * 12 / (2 * np.pi) == pytest.approx(3.0, abs=1e-4)


def test_stage_one_windows_of_a_song_are_apart_and_best_first(songs, refs):
    from humdex.classical.matcher import candidate_windows, prepare_query

    config = MatcherConfig(windows_per_song=3, pitch_class_windows=0)
    q = prepare_query(Contour(_excerpt(songs[7], 10.0, 18.0), HOP_S), refs.hop_s, config)
    picked, starts, scales, _ = candidate_windows(q, refs, False, config)
    best, best_starts, _, _ = candidate_windows(q, refs, False, MatcherConfig(windows_per_song=1,
                                                                              pitch_class_windows=0))
    assert set(picked) == set(best) and np.bincount(picked).max() == 3
    for song in np.unique(picked):
        at = starts[picked == song]
        assert at[0] == best_starts[best == song][0]  # the best window first
        gaps = np.abs(at[:, None] - at[None, :])[np.triu_indices(len(at), 1)]
        assert np.all(gaps >= len(q.midi) * scales[picked == song].min() / 2)
    # by pitch class too: each song's mean-square windows first, then its two by pitch class
    both, both_starts, _, _ = candidate_windows(q, refs, False, MatcherConfig(windows_per_song=3))
    assert set(both) == set(picked) and np.bincount(both).max() == 5
    for song in np.unique(both):
        np.testing.assert_array_equal(both_starts[both == song][:3], starts[picked == song])


def _drifting_query(song: np.ndarray) -> Contour:
    """8-13 s of the song at its tempo, then 13-18 s sung 1.6 times slower, 2 semitones up: no
    single tempo scale lines the whole query up with the song."""
    from humdex.frontend.contour import stretch_frames

    slower = stretch_frames(_excerpt(song, 13.0, 18.0), 1.6)
    return Contour(np.concatenate([_excerpt(song, 8.0, 13.0), slower]) + 2.0, HOP_S)


def test_query_parts_send_the_song_whose_rhythm_drifts(songs, refs):
    """Stage 1 with one song by each measure: the whole query's mean square and pitch classes
    miss some of these songs; its two parts, each matched at its own tempo, send every one, and
    the DTW then ranks it first."""
    from humdex.classical.matcher import candidate_windows, prepare_query

    whole, parts = MatcherConfig(candidates=1, part_candidates=0), MatcherConfig(candidates=1, part_candidates=1)
    missed = 0
    for true in range(0, len(songs), 2):
        query = _drifting_query(songs[true])
        q = prepare_query(query, refs.hop_s, parts)
        missed += true not in candidate_windows(q, refs, False, whole)[0]
        assert true in candidate_windows(q, refs, False, parts)[0]
        assert match(query, refs, config=parts, top=1)[0].index == true
    assert missed >= 1  # the parts are what sends them


def test_query_parts_are_off_from_the_start(songs, refs):
    from humdex.classical.matcher import candidate_windows, prepare_query

    q = prepare_query(_drifting_query(songs[3]), refs.hop_s, MatcherConfig())
    without = candidate_windows(q, refs, True, MatcherConfig(candidates=1, part_candidates=0))
    default = candidate_windows(q, refs, True, MatcherConfig(candidates=1))
    for a, b in zip(without, default):
        np.testing.assert_array_equal(a, b)


def _direct_stage_one(scan, q, refs, config):
    """Stage 1's per-frame least distances over the scales, window by window without the FFT:
    (by mean square, by pitch class, per query part by pitch class)."""
    from humdex.classical.matcher import _query_parts, _valid_starts
    from humdex.classical.references import pitch_class_phasors

    n = refs.n_frames
    z = refs.phasors()

    def windows(x, length):  # (frames, length): the window starting at each frame, 0 past the end
        return np.lib.stride_tricks.sliding_window_view(np.concatenate([x, np.zeros(length, x.dtype)]), length)[:n]

    def class_distance(ws, qzs):
        return 1.0 - np.abs(windows(z, len(ws)) @ np.conj(qzs)) / ws.sum()

    square, classes = np.full(n, np.inf), np.full(n, np.inf)
    for ws, qs, qzs in scan.scaled:
        rw = windows(scan.r.astype(np.float64), len(ws))
        diff = rw - qs[None, :]  # a window's variance of song - query over the voiced query frames
        mean = (diff * ws).sum(axis=1) / ws.sum()
        dist = (((diff - mean[:, None]) ** 2) * ws).sum(axis=1) / ws.sum()
        valid = _valid_starts(refs, len(ws), False, config)
        square = np.minimum(square, np.where(valid, dist, np.inf))
        classes = np.minimum(classes, np.where(valid, class_distance(ws, qzs), np.inf))
    parts = []
    for part in _query_parts(scan.w, pitch_class_phasors(q.midi), scan.scales, config):
        best = np.full(n, np.inf)
        for _, ws, qzs in part:
            valid = _valid_starts(refs, len(ws), False, config)
            best = np.minimum(best, np.where(valid, class_distance(ws, qzs), np.inf))
        parts.append(best)
    return square, classes, parts


def test_stage_one_distances_equal_a_window_by_window_computation(songs, refs):
    from humdex.classical.matcher import _Scan, prepare_query

    config = MatcherConfig(tempo_steps=5)  # scales 0.5, 0.71, 1, 1.41, 2
    q = prepare_query(_drifting_query(songs[4]), refs.hop_s, config)
    scan = _Scan(q, refs, False, config)
    scan.run(threads=2)
    square, classes, parts = _direct_stage_one(scan, q, refs, config)
    assert np.isfinite(square).sum() > refs.n_frames // 2 and len(parts) == config.query_parts
    np.testing.assert_allclose(scan.square.dist, square, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(scan.classes.dist, classes, atol=1e-4)
    for got, want in zip(scan.parts, parts):
        np.testing.assert_allclose(got.dist, want, atol=1e-4)


def test_stage_one_does_not_depend_on_its_chunks_or_threads(songs, refs, monkeypatch):
    """The same windows whether the references go through stage 1 in one chunk, a block per
    chunk or two blocks per chunk, on one thread or several."""
    from humdex.classical import matcher
    from humdex.classical.matcher import candidate_windows, prepare_query

    config = MatcherConfig(candidates=len(songs), part_candidates=len(songs), fft_size=2048)
    q = prepare_query(_drifting_query(songs[9]), refs.hop_s, config)
    monkeypatch.setenv("HUMDEX_THREADS", "1")
    monkeypatch.setattr(matcher._Scan, "CHUNK_FRAMES", 1 << 30)
    one = candidate_windows(q, refs, False, config)
    assert len(np.unique(one[0])) == len(songs)
    for threads, chunk_frames in (("1", 1), ("3", 1), ("2", 2 * 2048)):
        monkeypatch.setenv("HUMDEX_THREADS", threads)
        monkeypatch.setattr(matcher._Scan, "CHUNK_FRAMES", chunk_frames)
        for a, b in zip(one, candidate_windows(q, refs, False, config)):
            np.testing.assert_array_equal(a, b)


def test_dtw_in_threads_returns_what_one_call_returns(songs):
    from humdex.classical.dtw import batch_subsequence_dtw
    from humdex.classical.matcher import dtw_in_threads

    rng = np.random.default_rng(5)
    q = _excerpt(songs[2], 3.0, 9.0)[::8].astype(np.float32)
    w = np.isfinite(q).astype(np.float32)
    q = np.where(w > 0, q - np.nanmean(q), 0.0).astype(np.float32)
    pieces = [s[::8][int(rng.integers(0, 100)):][: int(rng.integers(40, 160))] for s in songs * 2]
    seg = np.concatenate([held_centred(p) for p in pieces]).astype(np.float32)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in pieces])]).astype(np.int64)
    keys = rng.normal(0, 2, (len(pieces), 3))
    start_max = np.full(len(pieces), 1 << 40, np.int64)
    config = MatcherConfig()
    one = batch_subsequence_dtw(q, w, seg, offsets, keys, start_max, config.octave_penalty_st,
                                config.cost_cap_st, config.key_refinements)
    for threads in (1, 2, 3, 7):
        split = dtw_in_threads(q, w, seg, offsets, keys, start_max, config, threads=threads)
        for a, b in zip(one, split):
            np.testing.assert_array_equal(a, b)


def held_centred(midi: np.ndarray) -> np.ndarray:
    from humdex.classical.references import held

    out = held(midi)
    return out - out.mean()
