"""Accompaniment: chords, bass and drums under a performed melody, following its time map."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from humdex.synth.harmony import Chord, beat_s, harmonise
from humdex.synth.score import Score
from humdex.synth.timemap import TimeMap
from humdex.synth.voice import SAMPLE_RATE, midi_to_hz

STYLES = ("band", "piano", "arpeggio", "pad", "electronic", "acoustic")
TABLE_SIZE = 2048
# (harmonic rolloff exponent, max harmonics, attack_s, decay time constant s or 0 = sustained)
TIMBRES = {
    "pad": (1.0, 8, 0.08, 0.0),
    "piano": (1.6, 12, 0.004, 0.6),
    "pluck": (2.0, 10, 0.003, 0.25),
    "bass": (2.2, 6, 0.005, 0.5),
    "saw": (1.0, 40, 0.01, 0.0),
    "organ": (0.7, 5, 0.02, 0.0),
}


@dataclass(frozen=True)
class AccompanimentConfig:
    """Ranges for the band."""

    beats_per_chord: tuple[int, ...] = (2, 4)
    chord_octave_midi: tuple[float, float] = (52.0, 64.0)  # lowest chord tone lands here
    bass_octave_midi: tuple[float, float] = (33.0, 45.0)
    drum_level: tuple[float, float] = (0.3, 0.9)
    bass_level: tuple[float, float] = (0.4, 0.9)


def accompany(
    score: Score,
    time_map: TimeMap,
    transpose_st: float,
    style: str,
    n_samples: int,
    rng: np.random.Generator,
    config: AccompanimentConfig = AccompanimentConfig(),
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """(n_samples,) float32 accompaniment in the performer's key and tempo (monotonic time_map)."""
    if style not in STYLES:
        raise ValueError(f"unknown accompaniment style {style!r}; expected one of {STYLES}")
    out = np.zeros(n_samples)
    chords = harmonise(score, int(rng.choice(config.beats_per_chord)))
    beat = beat_s(score)
    low = rng.uniform(*config.chord_octave_midi)
    bass_low = rng.uniform(*config.bass_octave_midi)
    timbre = {"band": "pad", "piano": "piano", "arpeggio": "pluck", "pad": "pad",
              "electronic": "saw", "acoustic": "pluck"}[style]  # fmt: skip
    for chord in chords:
        midis = _voicing(chord, transpose_st, low)
        a, b = (float(x) for x in time_map.perf_at(np.array([chord.start_s, chord.end_s])))
        if style in ("arpeggio", "acoustic"):
            beats = np.arange(chord.start_s, chord.end_s - 1e-6, beat / 2)
            pos = time_map.perf_at(beats)
            ends = np.append(pos[1:], b)
            for k, (p, e) in enumerate(zip(pos, ends)):
                _add_tone(out, midis[k % len(midis)], p, e - p + 0.2, timbre, 0.5, sample_rate)
        else:
            for m in midis:
                _add_tone(out, m, a, b - a, timbre, 0.35, sample_rate)
        root = bass_low + ((chord.root_pc + transpose_st - bass_low) % 12)
        level = rng.uniform(*config.bass_level)
        for p in time_map.perf_at(np.arange(chord.start_s, chord.end_s - 1e-6, beat * 2)):
            _add_tone(out, root, float(p), beat * 2, "bass", level, sample_rate)
    if style in ("band", "electronic"):
        grid = np.arange(score.start_s, score.end_s - 1e-6, beat / 2)
        _add_drums(out, time_map.perf_at(grid), style, rng.uniform(*config.drum_level), rng, sample_rate)
    return out.astype(np.float32)


def _voicing(chord: Chord, transpose_st: float, low: float) -> list[float]:
    """Three chord tones at or above `low` (MIDI), in the performer's key."""
    return sorted(low + ((pc + transpose_st - low) % 12) for pc in chord.pitch_classes())


@functools.lru_cache(maxsize=256)
def _table(timbre: str, n_harmonics: int) -> np.ndarray:
    rolloff = TIMBRES[timbre][0]
    spec = np.zeros(TABLE_SIZE // 2 + 1, dtype=np.complex128)
    k = np.arange(1, n_harmonics + 1)
    spec[k] = k ** (-rolloff) * TABLE_SIZE / 2
    table = np.fft.irfft(spec * -1j, n=TABLE_SIZE)
    table /= np.abs(table).max()
    table.setflags(write=False)
    return table


def _add_tone(
    out: np.ndarray, midi: float, start_s: float, dur_s: float, timbre: str, level: float, sample_rate: int
) -> None:
    """Add one note (wavetable oscillator with an attack/decay/release envelope) in place."""
    _, max_h, attack, decay = TIMBRES[timbre]
    f = float(midi_to_hz(midi))
    a = int(start_s * sample_rate)
    m = min(int((dur_s + 0.05) * sample_rate), len(out) - a)
    if m <= 0 or a < 0:
        return
    n_h = int(max(1, min(max_h, 0.45 * sample_rate // f)))
    idx = ((np.arange(m) * (f * TABLE_SIZE / sample_rate)) % TABLE_SIZE).astype(np.int64)
    t = np.arange(m) / sample_rate
    env = np.minimum(1.0, t / attack) * np.clip((dur_s + 0.05 - t) / 0.05, 0.0, 1.0)
    if decay > 0:
        env *= np.exp(-t / decay)
    out[a : a + m] += level * _table(timbre, n_h)[idx] * env


def _add_drums(
    out: np.ndarray, half_beats_s: np.ndarray, style: str, level: float, rng: np.random.Generator,
    sample_rate: int,
) -> None:  # fmt: skip
    kick, snare, hat = _drum_kit(rng, sample_rate)
    for k, t in enumerate(half_beats_s):
        hits = [(hat, 0.3)]
        if k % 2 == 0:
            beat = k // 2
            if style == "electronic" or beat % 2 == 0:
                hits.append((kick, 1.0))
            if beat % 2 == 1:
                hits.append((snare, 0.7))
        elif style == "electronic":
            hits = [(hat, 0.5)]
        a = int(t * sample_rate)
        for sound, gain in hits:
            m = min(len(sound), len(out) - a)
            if m > 0:
                out[a : a + m] += level * gain * sound[:m]


def _drum_kit(rng: np.random.Generator, sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.arange(int(0.25 * sample_rate)) / sample_rate
    sweep = 50 + 100 * np.exp(-t / 0.03)
    kick = np.sin(2 * np.pi * np.cumsum(sweep) / sample_rate) * np.exp(-t / 0.12)
    noise = np.diff(rng.standard_normal(len(t) + 1))
    snare = (0.6 * noise * np.exp(-t / 0.07) + 0.5 * np.sin(2 * np.pi * 185 * t) * np.exp(-t / 0.04))
    hat = np.diff(noise, append=0.0)[: int(0.05 * sample_rate)] * np.exp(-t[: int(0.05 * sample_rate)] / 0.012)
    return kick, snare, 0.3 * hat
