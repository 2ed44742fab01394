"""Production: what a studio and a distribution chain do to a mix (EQ, compression, reverb, lossy coding)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import signal

from humdex.synth.channel import ChannelConfig, reverberate, simulate_codec


@dataclass(frozen=True)
class ProductionConfig:
    """Ranges of each production step."""

    reverb_prob: float = 0.7
    rt60_s: tuple[float, float] = (0.3, 2.0)
    direct_to_reverb_db: tuple[float, float] = (2.0, 14.0)
    shelf_db: tuple[float, float] = (-6.0, 6.0)  # low (200 Hz) and high (3 kHz) shelf gains
    compress_prob: float = 0.7
    threshold_db: tuple[float, float] = (-24.0, -10.0)  # below the mix's peak rms
    ratio: tuple[float, float] = (2.0, 8.0)
    lossy_prob: float = 0.6
    bitrates_kbps: tuple[int, ...] = (24, 32, 48, 64, 96, 128)
    level_dbfs: tuple[float, float] = (-20.0, -12.0)


def produce(
    mix: np.ndarray, rng: np.random.Generator, config: ProductionConfig = ProductionConfig(), sample_rate: int = 16000
) -> tuple[np.ndarray, dict[str, Any]]:
    """(n,) float32 produced audio (same length) and what was applied."""
    x = np.asarray(mix, dtype=np.float64)
    info: dict[str, Any] = {}
    low_db, high_db = rng.uniform(*config.shelf_db), rng.uniform(*config.shelf_db)
    x = shelf_eq(x, low_db, high_db, sample_rate)
    info["eq_db"] = [round(low_db, 1), round(high_db, 1)]
    if rng.random() < config.compress_prob:
        thr, ratio = rng.uniform(*config.threshold_db), rng.uniform(*config.ratio)
        x = compress(x, thr, ratio, sample_rate)
        info["compression"] = [round(thr, 1), round(ratio, 1)]
    if rng.random() < config.reverb_prob:
        room = ChannelConfig(rt60_s=config.rt60_s, direct_to_reverb_db=config.direct_to_reverb_db)
        x = reverberate(x, rng, room, sample_rate)
        info["reverb"] = True
    x *= 10 ** (rng.uniform(*config.level_dbfs) / 20) / (np.sqrt(np.mean(x**2)) + 1e-12)
    x = np.clip(x, -1.0, 1.0)
    if rng.random() < config.lossy_prob:
        kbps = int(rng.choice(config.bitrates_kbps))
        x, codec = lossy(x, kbps, sample_rate)
        info["codec"] = f"{codec}{kbps}"
    return np.clip(x, -1.0, 1.0).astype(np.float32), info


def shelf_eq(x: np.ndarray, low_db: float, high_db: float, sample_rate: int) -> np.ndarray:
    """Low shelf at 200 Hz and high shelf at 3 kHz as band splits (first-order complementary filters)."""
    b, a = signal.butter(1, 200.0, fs=sample_rate)
    low = signal.lfilter(b, a, x)
    b, a = signal.butter(1, 3000.0, btype="highpass", fs=sample_rate)
    high = signal.lfilter(b, a, x)
    return x + (10 ** (low_db / 20) - 1) * low + (10 ** (high_db / 20) - 1) * high


def compress(x: np.ndarray, threshold_db: float, ratio: float, sample_rate: int) -> np.ndarray:
    """A feed-forward RMS compressor (10 ms attack / 150 ms release envelope), make-up gain to the input rms."""
    power = x**2
    env = np.empty_like(power)
    a_att, a_rel = np.exp(-1 / (0.01 * sample_rate)), np.exp(-1 / (0.15 * sample_rate))
    # a one-pole follower on power, attack and release blended by a cheap two-pass approximation
    fast = signal.lfilter([1 - a_att], [1, -a_att], power)
    slow = signal.lfilter([1 - a_rel], [1, -a_rel], power)
    env = np.maximum(fast, slow)
    level_db = 10 * np.log10(env + 1e-12)
    ref_db = 10 * np.log10(np.percentile(env, 95) + 1e-12)
    over = np.maximum(0.0, level_db - (ref_db + threshold_db))
    gain = 10 ** (-over * (1 - 1 / ratio) / 20)
    y = x * gain
    return y * (np.sqrt(np.mean(x**2)) / (np.sqrt(np.mean(y**2)) + 1e-12))


def lossy(x: np.ndarray, kbps: int, sample_rate: int) -> tuple[np.ndarray, str]:
    """Encode and decode as MP3 at kbps through ffmpeg (imageio-ffmpeg's binary); without ffmpeg,
    a simulation: low-pass at the codec's typical cut-off and coarse spectral quantisation."""
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        raw = np.asarray(x, dtype="<f4").tobytes()
        enc = subprocess.run([exe, "-v", "error", "-f", "f32le", "-ar", str(sample_rate), "-ac", "1", "-i", "-",
                              "-c:a", "libmp3lame", "-b:a", f"{kbps}k", "-f", "mp3", "-"],
                             input=raw, capture_output=True, timeout=300, check=True).stdout  # fmt: skip
        dec = subprocess.run([exe, "-v", "error", "-i", "-", "-f", "f32le", "-ar", str(sample_rate), "-ac", "1", "-"],
                             input=enc, capture_output=True, timeout=300, check=True).stdout  # fmt: skip
        y = np.frombuffer(dec, dtype="<f4").astype(np.float64)
        if len(y) >= len(x) // 2:
            return _align(x, y), "mp3"
    except (OSError, subprocess.SubprocessError, RuntimeError):
        pass  # no usable ffmpeg: the simulation below
    return simulate_codec(x, kbps, sample_rate), "sim"


def _align(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """y (a decoded x with encoder delay) shifted to x's timing and cut/padded to its length."""
    n = min(len(x), len(y), 16000)
    lag_max = min(3000, n // 2)
    c = signal.correlate(y[: n + lag_max], x[:n], mode="valid")
    lag = int(np.argmax(np.abs(c))) if len(c) else 0
    out = np.zeros(len(x))
    seg = y[lag : lag + len(x)]
    out[: len(seg)] = seg
    return out
