"""Tests for humdex.frontend.salience: the predominant melody of synthetic mixtures, the Viterbi path."""

from __future__ import annotations

import numpy as np
import pytest

from humdex.frontend import pitch
from humdex.frontend.salience import SalienceConfig, best_path, midi_grid, pitch_salience
from humdex.metrics import melody_accuracy

RATE = 16000


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("HUMDEX_THREADS", "1")


def tones(notes_midi: list[float], note_s: float, n_harmonics: int, amplitude: float, decay: float = 1.0) -> np.ndarray:
    """Notes back to back, each `note_s` long: harmonics with 1/k**decay amplitudes, 10 ms fades."""
    n = int(note_s * RATE)
    t = np.arange(n) / RATE
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
    out = []
    for m in notes_midi:
        f0 = 440.0 * 2 ** ((m - 69) / 12)
        x = sum(np.sin(2 * np.pi * k * f0 * t) / k**decay for k in range(1, n_harmonics + 1) if k * f0 < RATE / 2)
        out.append(fade * x / np.abs(x).max())
    return (amplitude * np.concatenate(out)).astype(np.float32)


MELODY = [67, 69, 71, 72, 74, 72, 71, 69, 67, 64, 65, 67]  # 0.4 s each, 4.8 s


def band_mixture() -> tuple[np.ndarray, np.ndarray]:
    """A tone melody over a louder bass line and block chords: (audio, true MIDI per 10 ms frame)."""
    melody = tones(MELODY, 0.4, 6, 0.3)
    bass = tones([36, 43, 41, 36, 43, 38], 0.8, 12, 0.4, decay=0.7)  # louder, bright: a monophonic tracker's pick
    chords = sum(tones([m] * 3, 1.6, 6, 0.08) for m in (55, 59, 62))
    audio = melody + bass + chords
    truth = np.repeat(np.array(MELODY, np.float64), 40)
    return audio.astype(np.float32), np.concatenate([truth, [np.nan]])[: pitch.n_frames(len(audio))]


def test_salience_follows_the_melody_where_a_monophonic_tracker_does_not():
    audio, truth = band_mixture()
    inner = np.isfinite(truth) & (np.arange(len(truth)) % 40 >= 5)  # away from note changes
    salience = pitch.contour_from_track(pitch.track(audio, RATE, "salience"), pitch.VOICING["salience"])
    swift = pitch.contour_from_track(pitch.track(audio, RATE, "swift"), pitch.VOICING["swift"])
    ref = np.where(inner, truth, np.nan)
    ours = melody_accuracy(ref, salience.midi.astype(np.float64))
    theirs = melody_accuracy(ref, swift.midi.astype(np.float64))
    assert ours["pitch_accuracy"] > 0.9
    assert theirs["pitch_accuracy"] < 0.5


def test_lone_tone_is_tracked_within_20_cents():
    x = tones([57.0], 1.5, 5, 0.3)
    tr = pitch.track(x, RATE, "salience")
    err = np.abs(pitch.hz_to_midi(tr.f0_hz[10:-10]) - 57.0) * 100
    assert np.median(err) < 20
    assert tr.periodicity[10:-10].min() > 0.5


def test_salience_peaks_at_the_fundamental_not_a_subharmonic():
    config = SalienceConfig()
    sal = pitch_salience(tones([64.0], 1.0, 8, 0.3), RATE, pitch.HOP_SAMPLES, config)
    peak = midi_grid(config)[sal[20:-20].argmax(axis=1)]
    assert np.all(np.abs(peak - 64.0) < 0.3)


def test_best_path_ignores_a_one_frame_spike_but_follows_a_held_change():
    score = np.zeros((30, 20))
    score[:, 5] = 1.0
    score[10, 15] = 1.5  # a one-frame spike 10 bins away
    score[20:, 12] = 2.0  # a held move to bin 12
    path = best_path(score, 0.2)
    assert path[10] == 5
    assert np.all(path[:20] == 5) and np.all(path[20:] == 12)
    assert np.array_equal(best_path(score, 0.0)[[10, 25]], [15, 12])  # no jump cost: every frame's best


def test_a_records_mix_is_tracked_by_the_song_trackers_not_by_swift(tmp_path):
    """The default (the melody net) and salience follow the melody; swift-f0 follows the bass."""
    from humdex.catalog.ingest import read_song_melody
    from humdex.training.chad import write_wav

    audio, truth = band_mixture()
    write_wav(tmp_path / "record.wav", audio, RATE)
    ref = np.where(np.isfinite(truth) & (np.arange(len(truth)) % 40 >= 5), truth, np.nan)

    def accuracy(contour) -> float:
        est = contour.resample(pitch.HOP_S).midi.astype(np.float64)[: len(ref)]
        return melody_accuracy(ref[: len(est)], est)["pitch_accuracy"]

    default = read_song_melody(tmp_path / "record.wav", separate="none")
    net = read_song_melody(tmp_path / "record.wav", pitch_method="melody-net", separate="none")
    np.testing.assert_array_equal(default.midi, net.midi)
    assert accuracy(default) > 0.85  # a few frames' lag after note changes: test_melody_net
    assert accuracy(read_song_melody(tmp_path / "record.wav", pitch_method="salience", separate="none")) > 0.9
    assert accuracy(read_song_melody(tmp_path / "record.wav", pitch_method="swift", separate="none")) < 0.5


def test_salience_in_blocks_equals_salience_in_one_piece(monkeypatch):
    from humdex.frontend import salience

    audio, _ = band_mixture()
    audio = np.tile(audio, 3)  # 14.4 s: two blocks of 1000 frames and a remainder
    blocks = pitch_salience(audio, RATE, pitch.HOP_SAMPLES, SalienceConfig())
    monkeypatch.setattr(salience, "BLOCK_FRAMES", 10**6)
    whole = pitch_salience(audio, RATE, pitch.HOP_SAMPLES, SalienceConfig())
    assert blocks.shape == (pitch.n_frames(len(audio)), len(midi_grid(SalienceConfig())))
    np.testing.assert_array_equal(blocks, whole)
