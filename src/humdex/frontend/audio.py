"""Audio input: the only place that touches audio files and sample rates (mono float32 out)."""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from humdex.errors import AudioError
from humdex.frontend.limits import (
    DECODE_BLOCK_S,
    MAX_CHANNELS,
    MAX_SAMPLE_RATE,
    MAX_SONG_S,
    MIN_SAMPLE_RATE,
    describe_s,
)

SAMPLE_RATE = 16000
MIN_QUERY_S = 2.0
MAX_QUERY_S = 300.0
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".m4a", ".aac", ".mp4", ".aif", ".aiff",
                  ".opus", ".webm", ".wma")
_FFMPEG_TIMEOUT_S = 120


def load(path: str | os.PathLike[str], sample_rate: int = SAMPLE_RATE,
         max_s: float = MAX_SONG_S) -> np.ndarray:
    """Read an audio file as (n,) float32 mono at `sample_rate` Hz.

    wav/flac/ogg/mp3 (any bit depth, any rate, any channel count) go through soundfile; m4a/aac
    and anything soundfile cannot read go through the ffmpeg binary of imageio-ffmpeg.
    Raises AudioError (naming the file) when it is missing, empty, corrupt, holds no samples,
    declares an implausible sample rate, or lasts longer than `max_s` seconds -- the last two
    found from the header (or while decoding, never decoding more than max_s).
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"audio file not found: {path}")
    if not path.is_file():
        raise AudioError(f"not an audio file (is a directory?): {path}")
    if path.stat().st_size == 0:
        raise AudioError(f"audio file is empty (0 bytes): {path}")
    audio = _read_soundfile(path, sample_rate, max_s, str(path))
    if audio is None:
        audio = _read_ffmpeg(path, sample_rate, name=str(path), max_s=max_s)
    return _checked(audio, str(path))


def decode(data: bytes, sample_rate: int = SAMPLE_RATE, suffix_hint: str | None = None,
           name: str = "upload", max_s: float = MAX_SONG_S) -> np.ndarray:
    """Decode audio file bytes (an upload) as (n,) float32 mono at `sample_rate` Hz.

    `suffix_hint` (".m4a", "mp3", ...) helps ffmpeg with containers it cannot sniff; `name`
    is used in error messages; audio longer than `max_s` is refused as in load().
    """
    if not data:
        raise AudioError(f"audio file is empty (0 bytes): {name}")
    audio = _read_soundfile(io.BytesIO(data), sample_rate, max_s, name)
    if audio is None:
        suffix = "" if not suffix_hint else "." + suffix_hint.lstrip(".").lower()
        with tempfile.TemporaryDirectory(prefix="humdex-") as tmp:
            tmp_path = Path(tmp) / f"upload{suffix}"
            tmp_path.write_bytes(data)
            audio = _read_ffmpeg(tmp_path, sample_rate, name=name, max_s=max_s)
    return _checked(audio, name)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """(n,) or (n, channels) -> (n,) float32, channels averaged."""
    audio = np.asarray(audio, dtype=np.float32)
    return audio if audio.ndim == 1 else audio.mean(axis=1, dtype=np.float32)


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """(n,) float32 at `from_rate` Hz -> (m,) float32 at `to_rate` Hz (soxr, high quality)."""
    audio = np.asarray(audio, dtype=np.float32)
    if int(from_rate) == int(to_rate) or len(audio) == 0:
        return audio
    import soxr  # type: ignore[import-untyped]

    return np.asarray(soxr.resample(audio, int(from_rate), int(to_rate), quality="HQ"),
                      dtype=np.float32)


def duration_s(audio: np.ndarray, sample_rate: int) -> float:
    return len(audio) / float(sample_rate)


def check_query_duration(audio: np.ndarray, sample_rate: int, name: str | None = None) -> None:
    """Raise AudioError unless the query lasts between MIN_QUERY_S and MAX_QUERY_S seconds."""
    seconds = duration_s(audio, sample_rate)
    prefix = f"{name}: " if name else ""
    if seconds < MIN_QUERY_S:
        raise AudioError(f"{prefix}query is {seconds:.1f} s long; "
                         f"humdex needs at least {MIN_QUERY_S:g} s")
    if seconds > MAX_QUERY_S:
        raise AudioError(f"{prefix}query is {seconds:.1f} s long; "
                         f"humdex accepts at most {MAX_QUERY_S:g} s (5 minutes)")


def normalize_peak(audio: np.ndarray, peak: float = 0.9) -> np.ndarray:
    """Scale so that max |sample| == peak (silence stays silence)."""
    audio = np.asarray(audio, dtype=np.float32)
    top = float(np.max(np.abs(audio))) if len(audio) else 0.0
    return audio if top == 0.0 else (audio * (peak / top)).astype(np.float32)


def save(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int = SAMPLE_RATE,
         subtype: str | None = None) -> Path:
    """Write (n,) or (n, channels) audio atomically; the format follows the suffix (.wav, .flac, ...)."""
    import soundfile as sf  # type: ignore[import-untyped]

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        sf.write(tmp, np.asarray(audio, dtype=np.float32), int(sample_rate), subtype=subtype)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped by imageio-ffmpeg."""
    import imageio_ffmpeg  # type: ignore[import-untyped]

    return imageio_ffmpeg.get_ffmpeg_exe()


def _read_soundfile(source: Path | io.BytesIO, sample_rate: int, max_s: float,
                    name: str) -> np.ndarray | None:
    """Mono float32 at `sample_rate`, or None when soundfile cannot decode the data.

    The header's rate, channels and length are checked first; the samples are then read in
    blocks (mixed to mono each), and reading stops past max_s whatever the header said."""
    import soundfile as sf  # type: ignore[import-untyped]

    try:
        f = sf.SoundFile(source)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, EOFError, OSError):
        return None
    with f:
        rate, channels, frames = int(f.samplerate), int(f.channels), int(f.frames)
        check_header(rate, channels, frames / rate if rate > 0 and frames > 0 else 0.0, max_s, name)
        block = max(1, int(DECODE_BLOCK_S * rate))
        limit = int(max_s * rate) + 1
        parts: list[np.ndarray] = []
        total = 0
        try:
            while total <= limit:
                data = f.read(min(block, limit + 1 - total), dtype="float32", always_2d=True)
                if not len(data):
                    break
                parts.append(to_mono(data))
                total += len(data)
        except (sf.LibsndfileError, RuntimeError, ValueError, EOFError, OSError):
            return None  # corrupt data: ffmpeg may still read it
        if total > limit:
            raise AudioError(f"{name}: audio is longer than {describe_s(max_s)}; "
                             f"humdex takes at most {describe_s(max_s)} here")
    mono = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return resample(mono, rate, sample_rate)


def check_header(rate: int, channels: int, seconds: float, max_s: float, name: str) -> None:
    """AudioError for an implausible sample rate or channel count, or a declared length over max_s."""
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(f"{name}: declares a sample rate of {rate} Hz; audio files have "
                         f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(f"{name}: declares {channels} channels; humdex reads 1-{MAX_CHANNELS}")
    if seconds > max_s:
        raise AudioError(f"{name}: audio is {describe_s(seconds)} long; humdex takes at most "
                         f"{describe_s(max_s)} here")


def _read_ffmpeg(path: Path, sample_rate: int, name: str, max_s: float = MAX_SONG_S) -> np.ndarray:
    """Decode any container/codec ffmpeg knows; channels are kept and averaged here, like soundfile.
    ffmpeg stops after max_s (+1 s, to tell a longer file from one of exactly max_s)."""
    import soundfile as sf  # type: ignore[import-untyped]

    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
           "-vn", "-t", f"{max_s + 1:.3f}", "-f", "wav", "-acodec", "pcm_f32le", "pipe:1"]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=_FFMPEG_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise AudioError(f"cannot decode audio file {name}: decoding took over "
                         f"{_FFMPEG_TIMEOUT_S} s") from None
    except OSError as exc:
        raise AudioError(f"cannot decode audio file {name}: {exc}") from None
    reason = _first_line(proc.stderr.decode("utf-8", "replace"))
    if proc.returncode != 0 or not proc.stdout:
        raise AudioError(f"cannot read audio file {name}: unsupported format or corrupt data"
                         + (f" ({reason})" if reason else ""))
    try:
        data, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise AudioError(f"cannot read audio file {name}: ffmpeg output unreadable ({exc})") from None
    check_header(int(rate), data.shape[1], 0.0, max_s, name)
    if len(data) > max_s * rate:
        raise AudioError(f"{name}: audio is longer than {describe_s(max_s)}; humdex takes at most "
                         f"{describe_s(max_s)} here")
    return resample(to_mono(data), rate, sample_rate)


def _first_line(text: str, limit: int = 160) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""


def _checked(audio: np.ndarray, name: str) -> np.ndarray:
    if len(audio) == 0:
        raise AudioError(f"audio file holds no samples (empty): {name}")
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"audio file holds NaN or infinite samples: {name}")
    return np.ascontiguousarray(audio, dtype=np.float32)
