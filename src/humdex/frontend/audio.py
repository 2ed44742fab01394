"""Audio input: the only place that touches audio files and sample rates (mono float32 out)."""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from humdex.errors import AudioError

SAMPLE_RATE = 16000
MIN_QUERY_S = 2.0
MAX_QUERY_S = 300.0
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".m4a", ".aac", ".mp4", ".aif", ".aiff",
                  ".opus", ".webm", ".wma")
_FFMPEG_TIMEOUT_S = 600


def load(path: str | os.PathLike[str], sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read an audio file as (n,) float32 mono at `sample_rate` Hz.

    wav/flac/ogg/mp3 (any bit depth, any rate, any channel count) go through soundfile; m4a/aac
    and anything soundfile cannot read go through the ffmpeg binary of imageio-ffmpeg.
    Raises AudioError (naming the file) when it is missing, empty, corrupt or holds no samples.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"audio file not found: {path}")
    if not path.is_file():
        raise AudioError(f"not an audio file (is a directory?): {path}")
    if path.stat().st_size == 0:
        raise AudioError(f"audio file is empty (0 bytes): {path}")
    audio = _read_soundfile(path, sample_rate)
    if audio is None:
        audio = _read_ffmpeg(path, sample_rate, name=str(path))
    return _checked(audio, str(path))


def decode(data: bytes, sample_rate: int = SAMPLE_RATE, suffix_hint: str | None = None,
           name: str = "upload") -> np.ndarray:
    """Decode audio file bytes (an upload) as (n,) float32 mono at `sample_rate` Hz.

    `suffix_hint` (".m4a", "mp3", ...) helps ffmpeg with containers it cannot sniff; `name`
    is used in error messages.
    """
    if not data:
        raise AudioError(f"audio file is empty (0 bytes): {name}")
    audio = _read_soundfile(io.BytesIO(data), sample_rate)
    if audio is None:
        suffix = "" if not suffix_hint else "." + suffix_hint.lstrip(".").lower()
        with tempfile.TemporaryDirectory(prefix="humdex-") as tmp:
            tmp_path = Path(tmp) / f"upload{suffix}"
            tmp_path.write_bytes(data)
            audio = _read_ffmpeg(tmp_path, sample_rate, name=name)
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


def _read_soundfile(source: Path | io.BytesIO, sample_rate: int) -> np.ndarray | None:
    """Mono float32 at `sample_rate`, or None when soundfile cannot decode the data."""
    import soundfile as sf  # type: ignore[import-untyped]

    try:
        data, rate = sf.read(source, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, EOFError, OSError):
        return None
    return resample(to_mono(data), rate, sample_rate)


def _read_ffmpeg(path: Path, sample_rate: int, name: str) -> np.ndarray:
    """Decode any container/codec ffmpeg knows; channels are kept and averaged here, like soundfile."""
    import soundfile as sf  # type: ignore[import-untyped]

    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
           "-vn", "-f", "wav", "-acodec", "pcm_f32le", "pipe:1"]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=_FFMPEG_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AudioError(f"cannot decode audio file {name}: {exc}") from None
    reason = _first_line(proc.stderr.decode("utf-8", "replace"))
    if proc.returncode != 0 or not proc.stdout:
        raise AudioError(f"cannot read audio file {name}: unsupported format or corrupt data"
                         + (f" ({reason})" if reason else ""))
    try:
        data, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise AudioError(f"cannot read audio file {name}: ffmpeg output unreadable ({exc})") from None
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
