"""The predominant melody of a mix: harmonic-summation pitch salience and its best path (Melodia-style).

A monophonic tracker on a record follows whatever is most periodic (often the bass or a chord);
the melody is rather the pitch whose harmonics carry the most energy, moving smoothly. Steps, after
Salamon & Gomez, "Melody extraction from polyphonic music signals using pitch contour
characteristics" (IEEE TASLP 2012), with a Viterbi path in place of contour selection:

1. spectral peaks per 10 ms frame (`n_fft`-sample Hann window), magnitudes weighted by a high-pass
   of `lowcut_hz` (the loudness contour's cut of bass), kept within `peak_range_db` of the frame's
   strongest;
2. salience of each pitch on a `bins_per_semitone` grid: the sum over `n_harmonics` harmonics of
   the peaks' magnitudes**`magnitude_power` near h * f0 (cos^2 window of +-1 semitone), weighted by
   `harmonic_decay`**(h-1) (the fundamental by `fundamental_weight`), times a pitch prior rising
   `prior_db_per_octave` towards the top, plus `octave_up_weight` x the salience an octave up
   (a high-passed fundamental otherwise loses to its own second harmonic);
3. the path maximising (salience / the song's level) minus `jump_cost` per semitone moved between
   frames (a free choice every frame, so notes may change; an octave leap costs 12 x jump_cost);
4. periodicity = the path's salience over the song's typical frame maximum, so that one voicing
   threshold (pitch.VOICING["salience"]) works across songs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numba
import numpy as np

from humdex import kernel_cache

kernel_cache.install()  # before the @numba.njit(cache=True) kernel below

BLOCK_FRAMES = 1000  # frames per block of spectral analysis (10 s at a 10 ms hop)


@dataclass(frozen=True)
class SalienceConfig:
    """Parameters of the predominant-melody tracker; defaults tuned on benchmarks/melody_extraction.py's
    development set (pool validation melodies, TRAIN sound) only."""

    n_fft: int = 2048  # samples at 16 kHz per analysis window (128 ms)
    fmin_midi: float = 43.0  # lowest melody pitch (G2)
    fmax_midi: float = 91.0  # highest (G6)
    bins_per_semitone: int = 5  # 20-cent pitch grid
    n_harmonics: int = 12
    harmonic_decay: float = 0.8
    fundamental_weight: float = 1.0  # the first harmonic's weight (later ones: harmonic_decay**(h-1))
    magnitude_power: float = 1.0
    peak_range_db: float = 40.0
    lowcut_hz: float = 300.0
    prior_db_per_octave: float = 0.0
    octave_up_weight: float = 0.0  # adds this share of the salience an octave up (favours f0 over 2 f0)
    jump_cost: float = 0.5  # per semitone, in units of the song's typical salience
    level_percentile: float = 90.0  # the song's salience level: this percentile of frame maxima


def predominant_f0(audio16: np.ndarray, sample_rate: int, hop: int,
                   config: SalienceConfig = SalienceConfig()) -> tuple[np.ndarray, np.ndarray]:
    """(n,) mono audio -> f0_hz (T,), periodicity (T,) in [0, 1] of the predominant melody.

    Frame k is centred at sample k * hop; T = 1 + n // hop.
    """
    salience = pitch_salience(audio16, sample_rate, hop, config)  # (T, bins)
    level = song_level(salience, config.level_percentile)
    if level <= 0:
        return np.full(len(salience), 100.0, np.float32), np.zeros(len(salience), np.float32)
    path = best_path(salience / level, config.jump_cost / config.bins_per_semitone)
    on_path = salience[np.arange(len(path)), path]
    midi = midi_grid(config)[path] + _refine(salience, path) / config.bins_per_semitone
    f0_hz = 440.0 * 2.0 ** ((midi - 69.0) / 12.0)
    return f0_hz.astype(np.float32), np.clip(on_path / level, 0.0, 1.0).astype(np.float32)


def song_level(x: np.ndarray, percentile: float) -> float:
    """A song's level: `percentile` of its (T, bins) frames' maxima (0 for no frames)."""
    return float(np.percentile(x.max(axis=1), percentile)) if len(x) else 0.0


def midi_grid(config: SalienceConfig) -> np.ndarray:
    """(bins,) MIDI pitch of each salience bin."""
    n = round((config.fmax_midi - config.fmin_midi) * config.bins_per_semitone) + 1
    return config.fmin_midi + np.arange(n) / config.bins_per_semitone


def spectral_peaks(padded16: np.ndarray, n_frames: int, sample_rate: int, hop: int,
                   config: SalienceConfig) -> tuple[np.ndarray, np.ndarray]:
    """Peaks of the magnitude spectrum of n_frames frames: (T, F) MIDI pitch and (T, F) weighted
    magnitude (0 where no peak), F = n_fft // 2 - 1 candidate bins, parabolic interpolation in dB.
    Frame k's window starts at sample k * hop of `padded16` (audio padded by n_fft // 2)."""
    frames = np.lib.stride_tricks.sliding_window_view(padded16, config.n_fft)[::hop][:n_frames]
    window = np.hanning(config.n_fft).astype(np.float32)
    mag = np.abs(np.fft.rfft(frames * window, axis=1)).astype(np.float32)  # (T, n_fft/2 + 1)
    db = 20.0 * np.log10(mag + 1e-9)
    mid, left, right = db[:, 1:-1], db[:, :-2], db[:, 2:]
    is_peak = (mid > left) & (mid >= right)
    denom = left - 2.0 * mid + right
    offset = np.where(np.abs(denom) > 1e-9, 0.5 * (left - right) / np.where(denom == 0, 1.0, denom), 0.0)
    offset = np.clip(offset, -0.5, 0.5)
    peak_db = mid - 0.25 * (left - right) * offset
    freq_hz = (np.arange(1, mag.shape[1] - 1)[None, :] + offset) * sample_rate / config.n_fft
    if config.lowcut_hz > 0:  # 2nd-order high-pass magnitude response
        ratio = (freq_hz / config.lowcut_hz) ** 2
        peak_db = peak_db + 10.0 * np.log10(ratio**2 / (1.0 + ratio**2))
    frame_top = np.where(is_peak, peak_db, -np.inf).max(axis=1, keepdims=True)
    keep = is_peak & (peak_db >= frame_top - config.peak_range_db) & (peak_db > -100.0)
    magnitude = np.where(keep, 10.0 ** (peak_db / 20.0), 0.0)
    midi = 69.0 + 12.0 * np.log2(np.maximum(freq_hz, 1e-3) / 440.0)
    return midi.astype(np.float32), magnitude.astype(np.float32)


def pitch_salience(audio16: np.ndarray, sample_rate: int, hop: int, config: SalienceConfig) -> np.ndarray:
    """(n,) audio -> (T, bins) harmonic-summation salience on midi_grid(config), T = 1 + n // hop."""
    return harmonic_sum(peak_spectrum(audio16, sample_rate, hop, config), config)


def peak_spectrum(audio16: np.ndarray, sample_rate: int, hop: int, config: SalienceConfig) -> np.ndarray:
    """(n,) audio -> (T, n_fine) spectral peaks on a log-frequency grid (fine_grid(config)), smeared
    by Melodia's cos^2 window, T = 1 + n // hop.

    Computed BLOCK_FRAMES frames at a time (every frame is independent), so memory stays bounded
    for any song length."""
    x = np.pad(np.asarray(audio16, dtype=np.float32), config.n_fft // 2)
    n_frames = 1 + len(audio16) // hop
    out = np.empty((n_frames, len(fine_grid(config))), np.float32)
    for start in range(0, n_frames, BLOCK_FRAMES):
        stop = min(n_frames, start + BLOCK_FRAMES)
        segment = x[start * hop: (stop - 1) * hop + config.n_fft]
        out[start:stop] = _on_fine_grid(*spectral_peaks(segment, stop - start, sample_rate, hop, config), config)
    return out


def fine_grid(config: SalienceConfig) -> np.ndarray:
    """(n_fine,) MIDI pitch of each peak_spectrum bin: a semitone below midi_grid's first bin up to
    its last bin's top harmonic, at the same resolution."""
    fine = 1.0 / config.bins_per_semitone
    top = config.fmax_midi + 12.0 * np.log2(config.n_harmonics) + 1.0
    n_fine = int(np.ceil((top - config.fmin_midi + 1.0) / fine)) + 1
    return config.fmin_midi - 1.0 + np.arange(n_fine) * fine


def harmonic_shift(harmonic: float, config: SalienceConfig) -> int:
    """The fine_grid bin of `harmonic` x midi_grid's first pitch (negative below fine_grid)."""
    return config.bins_per_semitone + round(float(12.0 * np.log2(harmonic) * config.bins_per_semitone))


def _on_fine_grid(peak_midi: np.ndarray, magnitude: np.ndarray, config: SalienceConfig) -> np.ndarray:
    """(T, F) spectral peaks -> (T, n_fine) peak energy on fine_grid, smeared along pitch."""
    grid = fine_grid(config)
    pos = (peak_midi - grid[0]) * config.bins_per_semitone
    ok = (magnitude > 0) & (pos >= 0) & (pos < len(grid) - 1)
    t_idx, f_idx = np.nonzero(ok)
    p = pos[t_idx, f_idx]
    lo = np.floor(p).astype(np.int64)  # linear split between the two nearest bins
    frac = (p - lo).astype(np.float32)
    energy = magnitude[t_idx, f_idx] ** config.magnitude_power
    spectrum = np.zeros((len(peak_midi), len(grid)), np.float32)
    np.add.at(spectrum, (t_idx, lo), energy * (1.0 - frac))
    np.add.at(spectrum, (t_idx, lo + 1), energy * frac)
    return _smear(spectrum, config.bins_per_semitone)


def harmonic_sum(spectrum: np.ndarray, config: SalienceConfig) -> np.ndarray:
    """(T, n_fine) peak_spectrum -> (T, bins) salience on midi_grid."""
    n_bins = len(midi_grid(config))
    salience = np.zeros((len(spectrum), n_bins), np.float32)
    for h in range(1, config.n_harmonics + 1):
        shift = harmonic_shift(h, config)
        weight = config.fundamental_weight if h == 1 else config.harmonic_decay ** (h - 1)
        salience += weight * spectrum[:, shift:shift + n_bins]
    if config.octave_up_weight:
        up = 12 * config.bins_per_semitone
        salience[:, :-up] += config.octave_up_weight * salience[:, up:]
    if config.prior_db_per_octave:
        grid = midi_grid(config)
        salience *= 10.0 ** (config.prior_db_per_octave * (grid - grid[0]) / 12.0 / 20.0)[None, :].astype(np.float32)
    return salience


def _smear(spectrum: np.ndarray, bins_per_semitone: int) -> np.ndarray:
    """Convolve along pitch with Melodia's cos^2 window of +-1 semitone."""
    from scipy.ndimage import convolve1d  # type: ignore[import-untyped]

    return convolve1d(spectrum, _cos2_kernel(bins_per_semitone), axis=1, mode="constant")


@functools.lru_cache(maxsize=4)
def _cos2_kernel(bins_per_semitone: int) -> np.ndarray:
    d = np.arange(-bins_per_semitone, bins_per_semitone + 1) / bins_per_semitone
    return (np.cos(np.pi / 2 * d) ** 2).astype(np.float32)


def _refine(salience: np.ndarray, path: np.ndarray) -> np.ndarray:
    """(T,) fractional-bin offsets of the path by a parabola through its salience neighbours."""
    t = np.arange(len(path))
    i = np.clip(path, 1, salience.shape[1] - 2)
    left, mid, right = salience[t, i - 1], salience[t, i], salience[t, i + 1]
    denom = left - 2.0 * mid + right
    off = np.where(denom < 0, 0.5 * (left - right) / np.where(denom == 0, 1.0, denom), 0.0)
    return np.where(path == i, np.clip(off, -0.5, 0.5), 0.0)


@numba.njit(cache=True, nogil=True)
def best_path(score: np.ndarray, jump_cost_per_bin: float) -> np.ndarray:
    """Viterbi over (T, B) frame scores: the bins maximising sum(score) - jump_cost_per_bin * sum|moves|.

    The L1 transition is a distance transform (two passes per frame), so each frame costs O(B).
    """
    n_t, n_b = score.shape
    back = np.empty((n_t, n_b), np.int16)  # bins < 32768; (T, B) int16 is ~90 MB for 30 min
    acc = score[0].astype(np.float64).copy()
    best = np.empty(n_b, np.float64)
    arg = np.empty(n_b, np.int16)
    for t in range(1, n_t):
        for b in range(n_b):
            best[b] = acc[b]
            arg[b] = b
        for b in range(1, n_b):
            if best[b - 1] - jump_cost_per_bin > best[b]:
                best[b] = best[b - 1] - jump_cost_per_bin
                arg[b] = arg[b - 1]
        for b in range(n_b - 2, -1, -1):
            if best[b + 1] - jump_cost_per_bin > best[b]:
                best[b] = best[b + 1] - jump_cost_per_bin
                arg[b] = arg[b + 1]
        for b in range(n_b):
            acc[b] = best[b] + score[t, b]
            back[t, b] = arg[b]
    path = np.empty(n_t, np.int64)
    path[n_t - 1] = np.argmax(acc)
    for t in range(n_t - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path
