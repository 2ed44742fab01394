"""The singing/humming voice: glottal source, formant filtering over time, consonants and breaths."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from humdex.frontend.audio import SAMPLE_RATE
from humdex.frontend.pitch import midi_to_hz
from humdex.synth.glottis import fill_gaps, frames_to_samples, glottal_tables, oscillate
from humdex.synth.performance import HOP_S, Performance
from humdex.synth.phonemes import CONSONANTS, VOWELS, Phone, SyllableStyle
from humdex.synth.singer import Singer
from humdex.synth.spectral import bin_freqs_hz, frame_times_s, istft, stft


@dataclass(frozen=True)
class VoiceConfig:
    """Ranges of a voice's timbre."""

    open_quotient: tuple[float, float] = (0.3, 0.6)
    tilt_db_per_oct: tuple[float, float] = (-4.0, 2.0)
    breathiness: tuple[float, float] = (0.01, 0.2)  # aspiration noise relative to the voice
    consonant_s: tuple[float, float] = (0.03, 0.08)
    legato_dip: tuple[float, float] = (0.25, 0.85)  # amplitude where connected hummed notes meet
    noise_level: tuple[float, float] = (0.1, 0.4)  # consonant noise relative to the voice
    breath_level: tuple[float, float] = (0.005, 0.04)  # inhalation noise relative to the voice
    shimmer: float = 0.06  # slow amplitude wobble


def sing(
    perf: Performance,
    singer: Singer,
    style: SyllableStyle,
    rng: np.random.Generator,
    config: VoiceConfig = VoiceConfig(),
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """(n,) float32 audio of the performance sung or hummed on `style`'s syllables."""
    n = round(perf.duration_s * sample_rate)
    tract, gain, events = _articulation(perf, style, rng, config)
    amp_frames = perf.loudness * gain * (1 + config.shimmer * _slow_noise(len(gain), rng))
    amp = frames_to_samples(amp_frames, HOP_S, n, sample_rate)
    f0_hz = midi_to_hz(frames_to_samples(fill_gaps(perf.f0_midi), HOP_S, n, sample_rate))
    tables = glottal_tables(
        round(float(rng.uniform(*config.open_quotient)), 2),
        round(float(rng.uniform(*config.tilt_db_per_oct)), 1),
        sample_rate,
        0.47 * sample_rate,
    )
    source = oscillate(f0_hz, tables, sample_rate, rng.random())
    source += rng.uniform(*config.breathiness) * rng.standard_normal(n)
    voice = _shape(source * amp, tract, perf.f0_midi, singer.formant_scale, sample_rate)
    voice = voice / (np.sqrt(np.mean(voice**2)) + 1e-9)
    voice += _noises(events, perf, rng, config, sample_rate, n)
    return voice.astype(np.float32)


def _articulation(
    perf: Performance, style: SyllableStyle, rng: np.random.Generator, config: VoiceConfig
) -> tuple[np.ndarray, np.ndarray, list[tuple[float, str]]]:
    """Per-frame tract parameters (frames, 9) = F1-4, B1-4, tilt; gain (frames,); noise events."""
    n_frames = len(perf.f0_midi)
    fixed_c, fixed_v = rng.choice(style.consonants), rng.choice(style.vowels)
    first = VOWELS[fixed_v]
    tract = np.tile(_phone_row(first), (n_frames, 1))
    gain = np.ones(n_frames)
    dip = rng.uniform(*config.legato_dip)
    events: list[tuple[float, str]] = []
    prev_off = -1.0
    for on, off in zip(perf.note_on_s, perf.note_off_s):
        c, v = (rng.choice(style.consonants), rng.choice(style.vowels)) if style.per_note else (fixed_c, fixed_v)
        i0, i1 = round(on / HOP_S), min(n_frames, round(off / HOP_S))
        if i1 <= i0:
            continue
        ic = i0
        if c:
            cons = CONSONANTS[c]
            ic = min(i1 - 1, i0 + int(rng.uniform(*config.consonant_s) / HOP_S))
            tract[i0:ic] = _phone_row(cons)
            gain[i0:ic] = cons.gain
            if cons.noise:
                events.append((ic * HOP_S, cons.noise))
        elif on - prev_off < 0.03 and prev_off > 0:
            gain[max(0, i0 - 2) : i0 + 2] *= dip
        tract[ic:i1] = _phone_row(VOWELS[v])
        prev_off = off
    kernel = np.hanning(7)[1:-1]
    kernel /= kernel.sum()
    for col in range(tract.shape[1]):
        tract[:, col] = np.convolve(np.pad(tract[:, col], 2, mode="edge"), kernel, mode="valid")
    gain = np.convolve(np.pad(gain, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    return tract, gain, events


def _phone_row(p: Phone) -> np.ndarray:
    return np.array([*p.formants_hz, *p.bandwidths_hz, p.tilt_db_per_oct])


def _shape(
    source: np.ndarray, tract: np.ndarray, f0_midi: np.ndarray, formant_scale: float, sample_rate: int
) -> np.ndarray:
    """Filter the source through a cascade of four formant resonators that move frame by frame."""
    spec = stft(source)
    t = frame_times_s(len(spec), sample_rate)
    idx = np.minimum((t / HOP_S).astype(np.int64), len(tract) - 1)
    params = tract[idx].astype(np.float32)
    freqs = bin_freqs_hz(sample_rate)[None, :].astype(np.float32)
    fmt = params[:, :4] * formant_scale
    f0 = midi_to_hz(fill_gaps(f0_midi))[idx].astype(np.float32)
    fmt[:, 0] = np.maximum(fmt[:, 0], 1.1 * f0)  # singers open F1 above a high f0
    bw = params[:, 4:8] * np.sqrt(formant_scale)
    log_env = np.zeros((len(spec), freqs.shape[1]), dtype=np.float32)
    f2 = freqs**2
    for k in range(4):
        fk = fmt[:, k : k + 1]
        log_env += np.log(fk**2) - 0.5 * np.log((fk**2 - f2) ** 2 + (bw[:, k : k + 1] * freqs) ** 2 + 1e-9)
    for f5, b5 in ((4300.0, 350.0), (5500.0, 500.0)):  # fixed upper resonances keep the highs alive
        f_up = np.float32(f5 * formant_scale)
        log_env += np.log(f_up**2) - 0.5 * np.log((f_up**2 - f2) ** 2 + (np.float32(b5) * freqs) ** 2 + 1e-9)
    octaves = np.log2(np.maximum(freqs, 300.0) / 300.0)
    log_env += params[:, 8:9] * octaves * np.float32(np.log(10) / 20)
    return istft(spec * np.exp(log_env), len(source)).astype(np.float64)


def _noises(
    events: list[tuple[float, str]],
    perf: Performance,
    rng: np.random.Generator,
    config: VoiceConfig,
    sample_rate: int,
    n: int,
) -> np.ndarray:
    """Consonant releases (bursts, aspiration, frication) and inhalations, added after the tract."""
    out = np.zeros(n)
    level = rng.uniform(*config.noise_level)
    lengths = {"burst": 0.012, "aspiration": 0.05, "frication": 0.09}
    for t, kind in events:
        m = int(lengths[kind] * sample_rate)
        a = int(t * sample_rate) - (m if kind == "frication" else 0)
        a, b = max(0, a), min(n, a + m)
        if b <= a:
            continue
        noise = np.diff(rng.standard_normal(b - a + 1))  # brighter than white
        env = np.exp(-np.arange(b - a) / (0.3 * m)) if kind == "burst" else np.hanning(b - a)
        out[a:b] += level * noise * env
    breath = rng.uniform(*config.breath_level)
    for start, end in perf.breaths_s:
        a, b = int(start * sample_rate), min(n, int(end * sample_rate))
        if b - a > 16:
            noise = np.diff(rng.standard_normal(b - a + 1)) + 0.5 * rng.standard_normal(b - a)
            out[a:b] += breath * noise * np.hanning(b - a)
    return out


def _slow_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-sd noise smoothed over ~100 ms."""
    x = rng.standard_normal(n + 12)
    y = np.convolve(x, np.hanning(13), mode="same")[6 : n + 6]
    return y / (y.std() + 1e-9)
