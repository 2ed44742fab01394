"""Short-time spectra for time-varying filtering: a half-overlap STFT that reconstructs exactly."""

from __future__ import annotations

import functools

import numpy as np

N_FFT = 512  # samples (32 ms at 16 kHz)
HOP = N_FFT // 2  # half overlap with a sqrt-Hann window on both sides sums to one


@functools.lru_cache(maxsize=4)
def _window(n_fft: int) -> np.ndarray:
    w = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    w.setflags(write=False)
    return w


def stft(x: np.ndarray, n_fft: int = N_FFT) -> np.ndarray:
    """(n,) float -> (frames, n_fft/2+1) complex; frame k is centred at sample k*hop."""
    hop = n_fft // 2
    n_frames = int(np.ceil(len(x) / hop)) + 1
    padded = np.zeros((n_frames + 1) * hop, dtype=np.float32)
    padded[hop : hop + len(x)] = x
    frames = padded.reshape(-1, hop)
    frames = np.concatenate([frames[:-1], frames[1:]], axis=1)
    return np.fft.rfft(frames * _window(n_fft), axis=1)


def istft(spec: np.ndarray, length: int, n_fft: int = N_FFT) -> np.ndarray:
    """(frames, bins) complex -> (length,) float32, inverse of stft()."""
    hop = n_fft // 2
    frames = np.fft.irfft(spec, n=n_fft, axis=1) * _window(n_fft)
    out = np.zeros((len(frames) + 1, hop), dtype=np.float32)
    out[:-1] += frames[:, :hop]
    out[1:] += frames[:, hop:]
    return out.reshape(-1)[hop : hop + length].astype(np.float32)


def frame_times_s(n_frames: int, sample_rate: int, n_fft: int = N_FFT) -> np.ndarray:
    """(n_frames,) centre time of each stft() frame."""
    return np.arange(n_frames) * (n_fft // 2) / sample_rate


def bin_freqs_hz(sample_rate: int, n_fft: int = N_FFT) -> np.ndarray:
    return np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
