"""Tests for humdex.frontend.audio: every format, bit depth and channel layout -> mono float32 at the asked rate."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile as sf

from humdex.errors import AudioError
from humdex.frontend import audio


def tone(rate: int, seconds: float = 0.5, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    """(n,) or (n, channels) sine; channel c has amplitude 0.5 / (c + 1)."""
    t = np.arange(int(rate * seconds)) / rate
    mono = np.sin(2 * np.pi * freq * t)
    if channels == 1:
        return (0.5 * mono).astype(np.float32)
    return np.stack([0.5 / (c + 1) * mono for c in range(channels)], axis=1).astype(np.float32)


def peak_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)])


def expected_mono(src: np.ndarray, rate: int, out_rate: int) -> np.ndarray:
    mono = src if src.ndim == 1 else src.mean(axis=1)
    return audio.resample(mono.astype(np.float32), rate, out_rate)


LOSSLESS = [
    ("wav", "PCM_U8", 8000, 1, 1 / 64),
    ("wav", "PCM_16", 16000, 1, 1e-3),
    ("wav", "PCM_24", 44100, 2, 1e-3),
    ("wav", "PCM_32", 48000, 1, 1e-3),
    ("wav", "FLOAT", 22050, 2, 1e-3),
    ("wav", "DOUBLE", 16000, 1, 1e-5),
    ("flac", "PCM_16", 44100, 2, 1e-3),
    ("flac", "PCM_24", 8000, 1, 1e-3),
]


@pytest.mark.parametrize("fmt,subtype,rate,channels,tol", LOSSLESS)
def test_lossless_formats_match_source(tmp_path, fmt, subtype, rate, channels, tol):
    src = tone(rate, channels=channels)
    path = tmp_path / f"x.{fmt}"
    sf.write(path, src, rate, subtype=subtype)
    got = audio.load(path)
    want = expected_mono(src, rate, audio.SAMPLE_RATE)
    assert got.dtype == np.float32 and got.ndim == 1
    assert len(got) == len(want)
    # compare away from the edges, where resampling filters ring
    assert np.max(np.abs(got[200:-200] - want[200:-200])) < tol


def test_stereo_is_averaged_not_first_channel(tmp_path):
    src = tone(16000, channels=2)  # right channel is half the left
    sf.write(tmp_path / "s.wav", src, 16000)
    got = audio.load(tmp_path / "s.wav")
    assert np.max(np.abs(got)) == pytest.approx(0.75 * 0.5, abs=2e-3)


@pytest.mark.parametrize("out_rate", [8000, 16000, 22050, 44100])
def test_caller_rate(tmp_path, out_rate):
    sf.write(tmp_path / "x.wav", tone(44100, seconds=1.0), 44100)
    got = audio.load(tmp_path / "x.wav", sample_rate=out_rate)
    assert len(got) == out_rate
    assert peak_hz(got, out_rate) == pytest.approx(440, abs=3)


@pytest.mark.parametrize("fmt,subtype", [("ogg", "VORBIS"), ("mp3", "MPEG_LAYER_III")])
def test_lossy_soundfile_formats(tmp_path, fmt, subtype):
    src = tone(44100, seconds=1.0, channels=2)
    path = tmp_path / f"x.{fmt}"
    sf.write(path, src, 44100, format=fmt.upper() if fmt == "mp3" else "OGG", subtype=subtype)
    got = audio.load(path)
    assert abs(len(got) / audio.SAMPLE_RATE - 1.0) < 0.1
    assert peak_hz(got, audio.SAMPLE_RATE) == pytest.approx(440, abs=3)


def write_m4a(path, src: np.ndarray, rate: int) -> None:
    channels = 1 if src.ndim == 1 else src.shape[1]
    cmd = [audio.ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-f", "f32le", "-ar", str(rate),
           "-ac", str(channels), "-i", "pipe:0", "-c:a", "aac", "-b:a", "96k", "-y", str(path)]
    subprocess.run(cmd, input=src.astype("<f4").tobytes(), check=True)


def test_m4a_via_ffmpeg(tmp_path):
    src = tone(44100, seconds=1.0, channels=2)
    write_m4a(tmp_path / "x.m4a", src, 44100)
    got = audio.load(tmp_path / "x.m4a", sample_rate=22050)
    assert abs(len(got) / 22050 - 1.0) < 0.1
    assert peak_hz(got, 22050) == pytest.approx(440, abs=3)
    assert 0.2 < np.max(np.abs(got)) < 0.5  # mean of 0.5 and 0.25 amplitude channels


@pytest.mark.parametrize("suffix,subtype", [("wav", "PCM_16"), ("flac", "PCM_24"), ("ogg", "VORBIS"),
                                            ("mp3", "MPEG_LAYER_III"), ("m4a", None)])
def test_decode_bytes_equals_load(tmp_path, suffix, subtype):
    path = tmp_path / f"x.{suffix}"
    src = tone(22050, seconds=1.0)
    if suffix == "m4a":
        write_m4a(path, src, 22050)
    else:
        sf.write(path, src, 22050, format=suffix.upper(), subtype=subtype)
    from_file = audio.load(path)
    from_bytes = audio.decode(path.read_bytes(), suffix_hint=suffix)
    np.testing.assert_array_equal(from_file, from_bytes)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="not found.*nope.wav"):
        audio.load(tmp_path / "nope.wav")


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty.*empty.wav"):
        audio.load(tmp_path / "empty.wav")
    with pytest.raises(AudioError, match="empty"):
        audio.decode(b"")


def test_wav_with_zero_samples(tmp_path):
    sf.write(tmp_path / "none.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="no samples.*none.wav"):
        audio.load(tmp_path / "none.wav")


@pytest.mark.parametrize("name", ["junk.wav", "junk.mp3", "junk.m4a", "junk.txt"])
def test_corrupt_data(tmp_path, name):
    rng = np.random.default_rng(0)
    (tmp_path / name).write_bytes(b"RIFF" + rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    with pytest.raises(AudioError, match=f"cannot read.*{name}") as info:
        audio.load(tmp_path / name)
    assert "\n" not in str(info.value)


def test_truncated_wav_header(tmp_path):
    sf.write(tmp_path / "x.wav", tone(16000), 16000)
    (tmp_path / "cut.wav").write_bytes((tmp_path / "x.wav").read_bytes()[:30])
    with pytest.raises(AudioError, match="cut.wav"):
        audio.load(tmp_path / "cut.wav")


def test_directory_is_not_audio(tmp_path):
    with pytest.raises(AudioError, match="directory"):
        audio.load(tmp_path)


def test_query_duration_limits():
    sr = 1000
    audio.check_query_duration(np.zeros(2 * sr), sr)
    audio.check_query_duration(np.zeros(300 * sr), sr)
    with pytest.raises(AudioError, match=r"query is 1\.2 s long; humdex needs at least 2 s"):
        audio.check_query_duration(np.zeros(1200), sr)
    with pytest.raises(AudioError, match=r"at most 300 s"):
        audio.check_query_duration(np.zeros(301 * sr), sr)
    with pytest.raises(AudioError, match=r"^q.wav: query is 0\.0 s"):
        audio.check_query_duration(np.zeros(0), sr, name="q.wav")


def test_save_roundtrip_is_atomic(tmp_path):
    x = tone(16000)
    out = audio.save(tmp_path / "sub" / "y.wav", x, 16000)
    assert out.exists() and sorted(p.name for p in out.parent.iterdir()) == ["y.wav"]
    np.testing.assert_allclose(audio.load(out), x, atol=1e-4)


def test_normalize_peak():
    assert np.max(np.abs(audio.normalize_peak(tone(8000) * 0.1))) == pytest.approx(0.9)
    assert not audio.normalize_peak(np.zeros(10)).any()


def test_decode_sniffs_container_without_hint_and_names_upload(tmp_path):
    write_m4a(tmp_path / "x.m4a", tone(16000, seconds=1.0), 16000)
    got = audio.decode((tmp_path / "x.m4a").read_bytes())
    assert peak_hz(got, audio.SAMPLE_RATE) == pytest.approx(440, abs=3)
    with pytest.raises(AudioError, match="cannot read audio file hum.webm"):
        audio.decode(b"\x00\x01garbage" * 100, suffix_hint="webm", name="hum.webm")
