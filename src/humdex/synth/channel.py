"""Recording channels: a phone or laptop microphone in a room (band limit, rate, noise, reverb, clipping)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from humdex.synth.voice import SAMPLE_RATE


@dataclass(frozen=True)
class ChannelConfig:
    """Ranges and probabilities of each degradation; the defaults are a phone/laptop query."""

    snr_db: tuple[float, float] = (3.0, 30.0)
    snr_skew: float = 0.5  # snr = lo + (hi - lo) * u**skew: below 1 favours quieter rooms
    noise_colors: tuple[str, ...] = ("pink", "pink", "brown", "babble", "white", "hum")
    self_noise_dbfs: tuple[float, float] = (-75.0, -55.0)  # microphone/preamp floor, always there
    narrowband_prob: float = 0.35  # goes through 8 kHz sampling
    lowpass_hz: tuple[float, float] = (3000.0, 7600.0)
    highpass_hz: tuple[float, float] = (60.0, 350.0)
    reverb_prob: float = 0.6
    rt60_s: tuple[float, float] = (0.15, 0.9)
    direct_to_reverb_db: tuple[float, float] = (0.0, 15.0)
    clip_prob: float = 0.2
    clip_drive_db: tuple[float, float] = (1.0, 12.0)
    eight_bit_prob: float = 0.15
    codec_prob: float = 0.2  # a low-bitrate voice/phone codec (simulated: band cut + coarse spectrum)
    codec_kbps: tuple[int, ...] = (8, 12, 16, 24)
    level_dbfs: tuple[float, float] = (-32.0, -12.0)  # rms of the result


STUDIO = ChannelConfig(
    snr_db=(30.0, 60.0),
    noise_colors=("white", "pink"),
    narrowband_prob=0.05,
    lowpass_hz=(6000.0, 7900.0),
    highpass_hz=(30.0, 80.0),
    reverb_prob=0.5,
    rt60_s=(0.2, 1.2),
    direct_to_reverb_db=(3.0, 15.0),
    clip_prob=0.05,
    clip_drive_db=(0.0, 3.0),
    eight_bit_prob=0.0,
    codec_prob=0.0,
    level_dbfs=(-22.0, -12.0),
)  # released music: clean, reverberant, mastered


def apply_channel(
    audio: np.ndarray,
    rng: np.random.Generator,
    config: ChannelConfig = ChannelConfig(),
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """(n,) float32 audio as the microphone recorded it; same length and rate."""
    x = np.asarray(audio, dtype=np.float64)
    if rng.random() < config.reverb_prob:
        x = reverberate(x, rng, config, sample_rate)
    lo, hi = config.snr_db
    snr = lo + (hi - lo) * rng.random() ** config.snr_skew
    x = add_noise(x, snr, rng, config.noise_colors, sample_rate)
    x = _band_limit(x, rng, config, sample_rate)
    x *= 10 ** (rng.uniform(*config.level_dbfs) / 20) / (_rms(x) + 1e-12)
    x += 10 ** (rng.uniform(*config.self_noise_dbfs) / 20) * rng.standard_normal(len(x))
    if rng.random() < config.clip_prob:
        drive = 10 ** (rng.uniform(*config.clip_drive_db) / 20)
        x = np.clip(x * drive, -1.0, 1.0) / drive
    if rng.random() < config.eight_bit_prob:
        x = np.round(np.clip(x, -1.0, 1.0) * 127.0) / 127.0
    if config.codec_prob > 0 and rng.random() < config.codec_prob:
        x = simulate_codec(x, int(rng.choice(config.codec_kbps)), sample_rate)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def reverberate(
    x: np.ndarray, rng: np.random.Generator, config: ChannelConfig, sample_rate: int
) -> np.ndarray:
    """Convolve with a synthetic room: direct path + exponentially decaying noise tail."""
    rt60 = rng.uniform(*config.rt60_s)
    n = int(min(rt60, 1.2) * sample_rate)
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    tail[: int(0.003 * sample_rate)] = 0.0  # first reflections arrive after the direct sound
    b, a = signal.butter(1, rng.uniform(2000, 7000), fs=sample_rate)  # walls absorb highs
    tail = signal.lfilter(b, a, tail)
    drr = 10 ** (rng.uniform(*config.direct_to_reverb_db) / 20)
    ir = tail / (np.sqrt(np.sum(tail**2)) + 1e-12) / drr
    ir[0] += 1.0
    return signal.oaconvolve(x, ir)[: len(x)]


def add_noise(
    x: np.ndarray,
    snr_db: float,
    rng: np.random.Generator,
    colors: tuple[str, ...] = ("white",),
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """x plus noise whose power is snr_db below the power of x's active (non-silent) part."""
    noise = make_noise(len(x), str(rng.choice(colors)), rng, sample_rate)
    p_signal = active_power(x, sample_rate)
    scale = np.sqrt(p_signal / 10 ** (snr_db / 10)) / (_rms(noise) + 1e-12)
    return x + scale * noise


def active_power(x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Mean power over the 20 ms blocks within 30 dB of the loudest block."""
    m = int(0.02 * sample_rate)
    blocks = x[: len(x) // m * m].reshape(-1, m)
    if len(blocks) == 0:
        return float(np.mean(x**2) + 1e-20)
    p = np.mean(blocks**2, axis=1)
    return float(np.mean(p[p >= p.max() * 1e-3]) + 1e-20)


def make_noise(n: int, color: str, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(n,) noise of a kind: white, pink, brown, babble (speech-shaped, modulated) or mains hum."""
    white = rng.standard_normal(n)
    if color == "white":
        return white
    if color in ("pink", "babble"):
        n_fft = 1 << int(np.ceil(np.log2(max(n, 2))))  # power-of-two FFTs are fast
        spec = np.fft.rfft(rng.standard_normal(n_fft).astype(np.float32))
        f = np.fft.rfftfreq(n_fft, 1 / sample_rate).astype(np.float32)
        shape = 1 / np.sqrt(np.maximum(f, 20.0))
        if color == "babble":
            shape *= np.exp(-0.5 * (np.log2(np.maximum(f, 20.0) / 500.0)) ** 2)
        out = np.fft.irfft(spec * shape, n_fft)[:n].astype(np.float64)
        if color == "babble":
            t = np.arange(n) / sample_rate
            out *= 1 + 0.6 * np.sin(2 * np.pi * rng.uniform(2, 5) * t + rng.uniform(0, 6))
        return out
    if color == "brown":
        out = np.cumsum(white)
        return signal.lfilter([1.0, -1.0], [1.0, -0.995], out)
    if color == "hum":
        t = np.arange(n) / sample_rate
        base = rng.choice([50.0, 60.0])
        harm = sum(np.sin(2 * np.pi * base * h * t + rng.uniform(0, 6)) / h for h in range(1, 8))
        return harm + 0.3 * white
    raise ValueError(f"unknown noise color {color!r}")


def _band_limit(
    x: np.ndarray, rng: np.random.Generator, config: ChannelConfig, sample_rate: int
) -> np.ndarray:
    if rng.random() < config.narrowband_prob and sample_rate > 8000:
        low = signal.resample_poly(x, 1, sample_rate // 8000)
        x = signal.resample_poly(low, sample_rate // 8000, 1)[: len(x)]
        hi = min(rng.uniform(*config.lowpass_hz), 3700.0)
    else:
        hi = min(rng.uniform(*config.lowpass_hz), 0.49 * sample_rate)
    lo = rng.uniform(*config.highpass_hz)
    sos = signal.butter(4, [lo, hi], btype="bandpass", fs=sample_rate, output="sos")
    return signal.sosfilt(sos, x)


def simulate_codec(x: np.ndarray, kbps: int, sample_rate: int) -> np.ndarray:
    """A lossy codec without a codec: low-pass at the cut-off such bitrates keep, and the STFT
    quantised coarsely (quiet detail and noise floor lost, "swirly" artefacts)."""
    cutoff = min(0.45 * sample_rate, 2500.0 + 60.0 * kbps)
    sos = signal.butter(8, cutoff, fs=sample_rate, output="sos")
    y = signal.sosfilt(sos, x)
    _, _, z = signal.stft(y, fs=sample_rate, nperseg=512)
    step = np.abs(z).max() * 10 ** (-(20 + kbps / 4) / 20)
    z = np.round(z / step) * step
    _, out = signal.istft(z, fs=sample_rate, nperseg=512)
    return np.pad(out, (0, max(0, len(x) - len(out))))[: len(x)]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))
