"""Whistling: a near-sinusoid at the performed pitch with breath noise around it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from humdex.synth.glottis import fill_gaps, frames_to_samples
from humdex.synth.performance import HOP_S, Performance
from humdex.synth.spectral import bin_freqs_hz, frame_times_s, istft, stft
from humdex.synth.voice import SAMPLE_RATE, midi_to_hz


@dataclass(frozen=True)
class WhistleConfig:
    """Ranges of a whistle's timbre."""

    second_harmonic: tuple[float, float] = (0.0, 0.12)  # relative amplitude
    breath_level: tuple[float, float] = (0.03, 0.3)  # band noise around f0, relative to the tone
    breath_width_hz: tuple[float, float] = (60.0, 300.0)
    hiss_level: tuple[float, float] = (0.005, 0.05)  # broadband air noise
    onset_noise: tuple[float, float] = (0.05, 0.4)  # the "t" of "tu" at note starts


def whistle(
    perf: Performance,
    rng: np.random.Generator,
    config: WhistleConfig = WhistleConfig(),
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """(n,) float32 audio of the performance whistled."""
    n = round(perf.duration_s * sample_rate)
    amp = frames_to_samples(perf.loudness.astype(np.float64), HOP_S, n, sample_rate)
    f0_midi = fill_gaps(perf.f0_midi)
    f0_hz = midi_to_hz(frames_to_samples(f0_midi, HOP_S, n, sample_rate))
    f0_hz = np.minimum(f0_hz, 0.45 * sample_rate)
    phase = 2 * np.pi * (rng.random() + np.cumsum(f0_hz / sample_rate))
    h2 = rng.uniform(*config.second_harmonic) * (2 * f0_hz < 0.45 * sample_rate)
    tone = np.sin(phase) + h2 * np.sin(2 * phase + 1.0)
    noise = rng.standard_normal(n)
    spec = stft(noise)
    t = frame_times_s(len(spec), sample_rate)
    f0_frames = midi_to_hz(np.interp(t / HOP_S, np.arange(len(f0_midi)), f0_midi))[:, None]
    width = rng.uniform(*config.breath_width_hz)
    freqs = bin_freqs_hz(sample_rate)[None, :]
    band = np.exp(-0.5 * ((freqs - f0_frames) / width) ** 2) * np.sqrt(sample_rate / (2 * width))
    band *= rng.uniform(*config.breath_level) / 4
    shaped = istft(spec * (band + rng.uniform(*config.hiss_level)), n)
    out = (tone + shaped) * amp
    out += _onset_puffs(perf, rng, config, sample_rate, n)
    return (out / (np.sqrt(np.mean(out**2)) + 1e-9)).astype(np.float32)


def _onset_puffs(
    perf: Performance, rng: np.random.Generator, config: WhistleConfig, sample_rate: int, n: int
) -> np.ndarray:
    out = np.zeros(n)
    level = rng.uniform(*config.onset_noise)
    m = int(0.02 * sample_rate)
    for on in perf.note_on_s:
        a = int(on * sample_rate)
        b = min(n, a + m)
        if b > a:
            out[a:b] += level * rng.standard_normal(b - a) * np.exp(-np.arange(b - a) / (0.3 * m))
    return out
