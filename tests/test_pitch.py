"""Tests for humdex.frontend.pitch: trackers on synthesized tones and glides, conversions, voicing, errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from humdex.errors import AudioError
from humdex.frontend import pitch

FAST_METHODS = ["crepe-tiny", "swift"]


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("HUMDEX_THREADS", "1")


def harmonic(f0_hz: np.ndarray | float, rate: int, seconds: float = 2.0) -> np.ndarray:
    """A voice-like tone: 5 harmonics with 1/k amplitudes following f0_hz (scalar or per-sample)."""
    n = int(rate * seconds)
    f0 = np.broadcast_to(np.asarray(f0_hz, dtype=np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 6))
    return (0.3 * x).astype(np.float32)


def cents_error(f0_hz: np.ndarray, true_hz: np.ndarray) -> np.ndarray:
    return np.abs(1200 * np.log2(f0_hz / true_hz))


def test_conversions_round_trip():
    assert pitch.hz_to_midi(440.0) == pytest.approx(69.0)
    assert pitch.midi_to_hz(57.0) == pytest.approx(220.0)
    midi = np.linspace(30, 100, 71)
    np.testing.assert_allclose(pitch.hz_to_midi(pitch.midi_to_hz(midi)), midi, atol=1e-9)
    np.testing.assert_allclose(pitch.crepe_bin_to_midi(pitch.midi_to_crepe_bin(midi)), midi, atol=1e-9)
    bins = np.arange(360)
    np.testing.assert_allclose(pitch.cents_to_crepe_bin(pitch.crepe_bin_to_cents(bins)), bins)
    assert pitch.crepe_bin_to_cents(0) == pytest.approx(1997.3794084376191)
    assert pitch.cents_to_hz(pitch.hz_to_cents(123.4)) == pytest.approx(123.4)
    # 440 Hz is 6551.3 cents re 10 Hz -> CREPE bin 227.7
    assert pitch.midi_to_crepe_bin(69.0) == pytest.approx((1200 * np.log2(44) - 1997.3794) / 20, abs=1e-4)


def test_crepe_activation_shape_and_peak():
    rate = 22050
    act = pitch.crepe_activation(harmonic(220.0, rate), rate, model="tiny")
    assert act.dtype == np.float32
    assert act.shape == (pitch.n_frames(32000), 360)  # 2 s at 16 kHz, 10 ms hop
    peak_bins = act[20:-20].argmax(axis=1)
    assert np.all(np.abs(peak_bins - pitch.midi_to_crepe_bin(57.0)) <= 1.5)


@pytest.mark.parametrize("method", FAST_METHODS)
@pytest.mark.parametrize("f0", [220.0, 440.0])
def test_steady_tone_within_20_cents(method, f0):
    rate = 16000
    tr = pitch.track(harmonic(f0, rate), rate, method)
    assert tr.hop_s == pitch.HOP_S
    assert tr.f0_hz.shape == tr.periodicity.shape == (pitch.n_frames(2 * rate),)
    assert (tr.activation is not None) == method.startswith("crepe")
    inner = slice(10, -10)
    assert np.all(cents_error(tr.f0_hz[inner], f0) < 20)
    assert np.all(tr.periodicity[inner] > 0.5)


@pytest.mark.parametrize("method", FAST_METHODS)
def test_glide_within_20_cents(method):
    rate = 16000
    t = np.arange(2 * rate) / rate
    true_hz = 220.0 * 2.0 ** (t / 2.0)  # one octave up over 2 s
    tr = pitch.track(harmonic(true_hz, rate), rate, method)
    frame_t = np.arange(len(tr.f0_hz)) * tr.hop_s
    want = 220.0 * 2.0 ** (frame_t / 2.0)
    inner = slice(10, -10)
    assert np.all(cents_error(tr.f0_hz[inner], want[inner]) < 20)


def test_frames_agree_across_methods_and_rates():
    for rate in (8000, 44100):
        x = harmonic(330.0, rate, seconds=2.0)
        lengths = {m: len(pitch.track(x, rate, m).f0_hz) for m in FAST_METHODS}
        assert set(lengths.values()) == {pitch.n_frames(32000)}


@pytest.mark.slow
def test_pyin_tone():
    tr = pitch.track(harmonic(220.0, 16000, seconds=1.0), 16000, "pyin")
    assert np.median(cents_error(tr.f0_hz[10:-10], 220.0)) < 20


@pytest.mark.parametrize("method", FAST_METHODS)
def test_query_contour_tone_then_silence(method):
    rate = 16000
    x = np.concatenate([harmonic(220.0, rate, 1.5), np.zeros(rate, dtype=np.float32)])
    contour = pitch.query_contour(x, rate, method)
    assert contour.hop_s == pitch.HOP_S
    voiced = contour.voiced
    assert voiced[10:140].all()
    assert not voiced[170:].any()
    assert np.nanmedian(contour.midi) == pytest.approx(57.0, abs=0.2)


@pytest.mark.parametrize("method", FAST_METHODS)
def test_silence_raises(method):
    with pytest.raises(AudioError, match="no sung or hummed pitch found"):
        pitch.query_contour(np.zeros(32000, dtype=np.float32), 16000, method)
    quiet_noise = 1e-4 * np.random.default_rng(0).standard_normal(32000).astype(np.float32)
    with pytest.raises(AudioError, match="^q.wav: no sung or hummed pitch"):
        pitch.query_contour(quiet_noise, 16000, method, name="q.wav")
    loud_noise = 0.05 * np.random.default_rng(1).standard_normal(32000).astype(np.float32)
    with pytest.raises(AudioError, match="no sung or hummed pitch"):
        pitch.query_contour(loud_noise, 16000, method)


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown pitch method"):
        pitch.track(np.zeros(16000, dtype=np.float32), 16000, "yin")


def test_decode_activation_is_weighted_mean_around_peak():
    act = np.zeros((2, 360), dtype=np.float32)
    act[0, 100] = 1.0
    act[1, 200], act[1, 201] = 0.5, 0.5  # halfway between bins 200 and 201
    f0, periodicity = pitch.decode_activation(act)
    np.testing.assert_allclose(pitch.hz_to_cents(f0), pitch.crepe_bin_to_cents([100, 200.5]), atol=1e-3)
    np.testing.assert_allclose(periodicity, [1.0, 0.5])


def test_short_voiced_blips_are_dropped():
    f0 = np.full(100, 220.0, dtype=np.float32)
    per = np.zeros(100, dtype=np.float32)
    per[10:12] = 1.0  # 2 frames: a blip
    per[40:80] = 1.0
    contour = pitch.contour_from_track(pitch.PitchTrack(f0, per, 0.01), pitch.VOICING["swift"])
    assert not contour.voiced[:30].any()
    assert contour.voiced[42:78].all()


def test_import_has_no_heavy_side_effects():
    code = ("import sys, humdex.frontend.pitch, humdex.frontend.audio, humdex.frontend.pitchfile; "
            "print(sorted(m for m in ('torch', 'torchcrepe', 'torchaudio', 'librosa', 'onnxruntime') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_running_median_matches_scipy_nearest_mode() -> None:
    from scipy.ndimage import median_filter

    from humdex.frontend.pitch import _median

    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 8, 101):
        x = rng.random(n)
        for width in (3, 5, 9):
            assert np.array_equal(_median(x, width), median_filter(x, size=width, mode="nearest"))
    assert np.array_equal(_median(np.array([1.0, 9.0, 1.0, 1.0]), 1), [1.0, 9.0, 1.0, 1.0])
    with pytest.raises(ValueError):
        _median(np.ones(5), 4)
