"""Synthesizer: time maps, pitch through the time map, whistle register, channel SNR, determinism."""

from __future__ import annotations

import itertools
import subprocess
import sys
from dataclasses import dataclass, replace

import numpy as np
import pytest

from humdex.synth import (
    RenderConfig,
    Score,
    TimeMap,
    cut,
    pick_fragments,
    render_group,
    render_query,
    render_song,
    without_channel,
)
from humdex.synth.channel import ChannelConfig, active_power, add_noise, apply_channel
from humdex.synth.cover import EditConfig, edit_structure, phrases
from humdex.synth.timemap import compose

SR = 16000


@dataclass(frozen=True)
class N:
    onset_s: float
    duration_s: float
    pitch_midi: float


def tune(repeats: int = 1) -> list[N]:
    """Twinkle Twinkle (14 notes, 8 s at 0.5 s a beat), repeated."""
    pitches = [60, 60, 67, 67, 69, 69, 67, 65, 65, 64, 64, 62, 62, 60] * repeats
    beats = [1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2] * repeats
    onsets = np.concatenate([[0], np.cumsum(beats)[:-1]]) * 0.5
    return [N(float(o), b * 0.5, float(p)) for o, b, p in zip(onsets, beats, pitches)]


SKILLED_CLEAN = replace(without_channel(RenderConfig()), query_skill=(0.9, 1.0))


def yin_midi(audio: np.ndarray, fmin: float, fmax: float) -> np.ndarray:
    import librosa

    f0 = librosa.yin(audio, fmin=fmin, fmax=fmax, sr=SR, frame_length=1024, hop_length=160, center=True)
    return 69 + 12 * np.log2(f0 / 440.0)


def tracked_midi(audio: np.ndarray) -> np.ndarray:
    """humdex's fast tracker (swift-f0) at 10 ms, NaN where unvoiced."""
    from humdex.frontend.pitch import hz_to_midi, track

    return np.asarray(hz_to_midi(track(audio, SR, method="swift").f0_hz), dtype=np.float64)


def score_pitch_at(score: Score, score_s: np.ndarray) -> np.ndarray:
    """The score's pitch at each score time, NaN in rests."""
    idx = np.searchsorted(score.onset_s, score_s, side="right") - 1
    safe = np.clip(idx, 0, None)
    inside = (idx >= 0) & (score_s < score.offset_s[safe])
    return np.where(inside, score.pitch_midi[safe], np.nan)


def test_query_time_map_is_monotonic_and_covers_the_passage():
    score = Score.from_notes(tune())
    for seed, kind in enumerate(["hum", "whistle", "sing"]):
        r = render_query(score, np.random.default_rng(seed), kind=kind)
        tm = r.time_map
        assert tm.is_monotonic and np.all(np.diff(tm.perf_s) >= 0)
        assert tm.perf_s[0] == 0.0 and abs(tm.duration_s - r.duration_s) < 0.011
        assert tm.score_s[0] == score.start_s and tm.score_s[-1] == pytest.approx(score.end_s)
        assert r.audio.dtype == np.float32 and np.abs(r.audio).max() <= 1.0
        assert 4.0 < r.duration_s < 20.0


def test_hum_pitch_follows_the_score_through_the_time_map():
    """Tolerance: for a clean hum of a skilled hummer, after the chosen transposition, the
    tracked pitch (swift-f0) on frames where the score has a note lies within 50 cents of the score at
    the median and within a semitone on >= 80% of frames."""
    score = Score.from_notes(tune())
    for seed in range(3):
        r = render_query(score, np.random.default_rng(seed), SKILLED_CLEAN, kind="hum", channel=False)
        tracked = tracked_midi(r.audio)
        n = min(len(tracked), len(r.f0_midi))
        times = np.arange(n) * 0.01
        expected = score_pitch_at(score, r.time_map.score_at(times)) + r.info["transpose_st"]
        voiced = np.isfinite(r.f0_midi[:n]) & np.isfinite(expected) & np.isfinite(tracked[:n])
        err = np.abs(tracked[:n][voiced] - expected[voiced])
        assert voiced.sum() > 300
        assert np.median(err) < 0.5, f"seed {seed}: median error {np.median(err):.2f} st"
        assert np.mean(err < 1.0) >= 0.8, f"seed {seed}: {np.mean(err < 1.0):.2f} within 1 st"


def test_audio_follows_the_performed_pitch_for_amateurs():
    """The rendition's own f0 (with all the human errors) is what the audio sounds: median
    error < 25 cents and >= 90% of voiced frames within 50 cents."""
    score = Score.from_notes(tune())
    for seed in range(3):
        r = render_query(score, np.random.default_rng(10 + seed), without_channel(RenderConfig()),
                         kind="hum", channel=False)  # fmt: skip
        tracked = tracked_midi(r.audio)
        n = min(len(tracked), len(r.f0_midi))
        voiced = np.isfinite(r.f0_midi[:n]) & np.isfinite(tracked[:n])
        assert voiced.sum() >= 0.8 * np.isfinite(r.f0_midi).sum()
        err = np.abs(tracked[:n][voiced] - r.f0_midi[:n][voiced])
        assert np.median(err) < 0.25 and np.mean(err < 0.5) >= 0.9


def test_whistle_is_higher_than_hum():
    score = Score.from_notes(tune())
    for seed in range(3):
        rng = np.random.default_rng(seed)
        hum = render_query(score, rng, kind="hum", channel=False)
        whistle = render_query(score, rng, kind="whistle", channel=False)
        assert np.nanmedian(whistle.f0_midi) > np.nanmedian(hum.f0_midi) + 12
        assert np.nanmedian(whistle.f0_midi) > 76  # above E5
        tracked = yin_midi(whistle.audio, 400.0, 4000.0)
        assert abs(np.nanmedian(tracked[: len(whistle.f0_midi)][np.isfinite(whistle.f0_midi[: len(tracked)])])
                   - np.nanmedian(whistle.f0_midi)) < 1.0  # fmt: skip


def test_noise_snr_is_as_asked():
    rng = np.random.default_rng(0)
    t = np.arange(4 * SR) / SR
    clean = np.sin(2 * np.pi * 220 * t) * (t % 1.0 < 0.7)  # with pauses: SNR counts active parts
    for snr in (3.0, 12.0, 30.0):
        noisy = add_noise(clean, snr, rng, ("white", "pink", "babble"))
        measured = 10 * np.log10(active_power(clean) / np.mean((noisy - clean) ** 2))
        assert abs(measured - snr) < 1.0


def test_channel_keeps_length_and_range():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(SR * 3).astype(np.float32) * 0.1
    for _ in range(5):
        y = apply_channel(x, rng, ChannelConfig(clip_prob=1.0, eight_bit_prob=0.5))
        assert y.shape == x.shape and y.dtype == np.float32 and np.abs(y).max() <= 1.0


def test_rendering_is_deterministic_for_a_seed():
    score = Score.from_notes(tune())
    a = render_query(score, np.random.default_rng(5))
    b = render_query(score, np.random.default_rng(5))
    c = render_query(score, np.random.default_rng(6))
    assert np.array_equal(a.audio, b.audio) and np.array_equal(a.time_map.perf_s, b.time_map.perf_s)
    assert a.info == b.info
    assert len(a.audio) != len(c.audio) or not np.array_equal(a.audio, c.audio)


def test_structural_edits_make_a_non_constant_alignment():
    score = Score.from_notes(tune(repeats=3))
    config = EditConfig(repeat_prob=1.0, skip_prob=0.0)
    edited, structure = edit_structure(score, np.random.default_rng(0), config)
    spans = phrases(score, config.min_phrase_s)
    assert len(spans) > 1
    # every phrase sung twice in a row, none left out
    twice = np.concatenate([np.tile(score.pitch_midi[a:b], 2) for a, b in spans])
    np.testing.assert_array_equal(edited.pitch_midi, twice)
    assert np.all(np.diff(edited.onset_s) > 0)
    assert not structure.is_monotonic
    song = render_song(score, np.random.default_rng(0), kind="cover", edits=True)
    assert song.time_map.duration_s == pytest.approx(song.duration_s, abs=0.011)
    # every performed moment maps into the score, and a passage can be cut where it is sung whole
    assert song.time_map.score_s.min() >= score.start_s - 1e-9
    assert song.time_map.score_s.max() <= score.end_s + 1e-9
    piece = cut(song, 0.0, 4.0, np.random.default_rng(0))
    assert piece is not None
    excerpt, (p0, p1) = piece
    assert excerpt.time_map.is_monotonic and len(excerpt.audio) == round((p1 - p0) * SR)
    assert excerpt.time_map.score_s[0] <= 0.0 + 1e-6 and excerpt.time_map.score_s[-1] >= 4.0 - 1e-6


def test_compose_follows_jumps():
    inner = TimeMap([0.0, 1.0, 3.0, 5.0], [0.0, 0.0, 2.0, 4.0])  # lead 1 s, then 1:1
    outer = TimeMap([0.0, 2.0, 2.0, 4.0], [0.0, 2.0, 0.0, 2.0])  # phrase 0-2 s sung twice
    tm = compose(outer, inner)
    assert tm.score_at(0.5) == pytest.approx(0.0)
    assert tm.score_at(2.0) == pytest.approx(1.0)
    assert tm.score_at(4.0) == pytest.approx(1.0)
    assert len(tm.monotonic_pieces()) == 2


def test_fragments_are_4_to_20_s_passages():
    score = Score.from_notes(tune(repeats=4))
    spans = pick_fragments(score, np.random.default_rng(0))
    assert spans
    for (a, b), nxt in zip(spans, spans[1:] + [(np.inf, np.inf)]):
        assert 3.5 <= b - a <= 20.0 and b <= nxt[0]


def test_render_group_shares_the_passage_clock():
    passage = Score.from_notes(tune()).passage(0.0, 6.0)
    group = render_group(passage, np.random.default_rng(0), n_queries=2, n_covers=1)
    assert next(r.kind for r in group) == "original" and group[-1].kind == "cover"
    for r in group:
        assert r.time_map.is_monotonic
        assert r.time_map.score_s[0] == pytest.approx(passage.start_s)
        assert r.time_map.score_s[-1] == pytest.approx(passage.end_s)
        assert r.time_map.as_array().shape[1] == 2


def test_renderer_imports_only_numpy_and_scipy():
    code = ("import sys, numpy as np; from humdex.synth import render_group, Score;"
            "from humdex.training import chad; "
            "render_group(Score(np.arange(8)*0.5, np.full(8, 0.5), np.arange(60, 68.0)),"
            " np.random.default_rng(0), n_queries=1, n_covers=0);"
            "bad = [m for m in sys.modules if m.split('.')[0] in"
            " ('librosa', 'soundfile', 'music21', 'torch', 'mido', 'soxr')];"
            "print(','.join(bad))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_harmony_finds_the_key_and_fitting_chords():
    from humdex.synth.harmony import estimate_key, harmonise

    score = Score.from_notes(tune())
    assert estimate_key(score) == (0, False)  # C major
    a_major = Score(score.onset_s, score.duration_s, score.pitch_midi - 3)
    assert estimate_key(a_major) == (9, False)
    chords = harmonise(score, beats_per_chord=2)
    assert chords[0].root_pc == 0 and not chords[0].minor  # C C G G over a C chord
    assert all(b.start_s == pytest.approx(a.end_s) for a, b in itertools.pairwise(chords))


def test_song_has_accompaniment_under_the_voice():
    from humdex.synth.accompaniment import accompany

    score = Score.from_notes(tune())
    tm = TimeMap([0.0, 8.0], [0.0, 8.0])
    band = accompany(score, tm, 0.0, "band", 8 * SR, np.random.default_rng(0))
    assert band.shape == (8 * SR,) and np.sqrt(np.mean(band**2)) > 0.01
    spec = np.abs(np.fft.rfft(band)) ** 2
    f = np.fft.rfftfreq(len(band), 1 / SR)
    assert spec[(f > 40) & (f < 150)].sum() > 0.05 * spec.sum()  # bass and kick are there


def test_contour_tones_sound_the_pitch_and_stay_silent_where_unvoiced() -> None:
    from humdex.frontend.contour import Contour
    from humdex.learned.tones import contour_tones

    midi = np.full(200, 69.0, np.float32)
    midi[100:] = np.nan  # 1 s of A4, then 1 s of silence
    audio = contour_tones(Contour(midi, 0.01), 16000)
    assert audio.shape == (32000,) and audio.dtype == np.float32
    assert np.abs(audio).max() == pytest.approx(0.5, abs=1e-6)
    assert not audio[16200:].any()
    spectrum = np.abs(np.fft.rfft(audio[2000:14000]))
    assert np.fft.rfftfreq(12000, 1 / 16000)[spectrum.argmax()] == pytest.approx(440.0, abs=2.0)
    assert not contour_tones(Contour(np.full(50, np.nan, np.float32), 0.01)).any()


def test_glottal_tilt_darkens_when_negative():
    """A negative extra tilt (soft phonation) moves the source's energy down (the sign was once inverted)."""
    from humdex.synth.glottis import glottal_tables

    def centroid(tilt: float) -> float:
        table = glottal_tables(0.5, tilt, SR, 0.47 * SR)[0]
        spec = np.abs(np.fft.rfft(table))[1:] ** 2
        return float(np.sum(np.arange(1, len(spec) + 1) * spec) / np.sum(spec))

    assert centroid(-8.0) < 0.7 * centroid(0.0) < 0.7 * 0.7 * centroid(6.0)


def test_amateur_queries_hesitate_between_phrases():
    """Unskilled hummers stop to recall the tune: longer silences inside a query than without hesitation."""
    score = Score.from_notes(tune(3))
    base = replace(without_channel(RenderConfig()), query_skill=(0.0, 0.1))
    steady = replace(base, query_performance=replace(base.query_performance, hesitation_prob=0.0))

    def longest_gap(config: RenderConfig, seed: int) -> float:
        r = render_query(score, np.random.default_rng(seed), config, kind="hum", channel=False)
        voiced = np.isfinite(r.f0_midi)
        inner = voiced[np.argmax(voiced) : len(voiced) - np.argmax(voiced[::-1])]
        runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[1], inner.astype(int), [1]])) != 0))[0::2]  # runs alternate unvoiced, voiced (sentinels voiced)
        return float(runs.max(initial=0)) * 0.01

    hesitant = [longest_gap(base, s) for s in range(8)]
    fluent = [longest_gap(steady, s) for s in range(8)]
    assert np.mean(hesitant) > np.mean(fluent) + 0.3, (hesitant, fluent)
