"""The glottal source: band-limited wavetables of a Rosenberg pulse, read at a varying f0."""

from __future__ import annotations

import functools

import numpy as np

TABLE_SIZE = 2048  # samples per period (a power of two)
BAND_TOP_HZ = 55.0 * 2.0 ** (np.arange(14) / 2)  # each table serves f0 up to its top (half octaves)


@functools.lru_cache(maxsize=64)
def glottal_tables(
    open_quotient: float, tilt_db_per_oct: float, sample_rate: int, max_harmonic_hz: float
) -> np.ndarray:
    """(bands, TABLE_SIZE) one period of the glottal flow derivative per f0 band, alias-free.

    Args:
        open_quotient: fraction of the period the glottis is open (0.3 pressed .. 0.8 breathy).
        tilt_db_per_oct: extra spectral tilt on top of the pulse's own.
        max_harmonic_hz: no harmonic above this frequency in any band (below Nyquist).
    """
    theta = np.arange(TABLE_SIZE) / TABLE_SIZE
    tp, tn = 0.65 * open_quotient, 0.35 * open_quotient
    flow = np.where(
        theta < tp,
        0.5 * (1 - np.cos(np.pi * theta / tp)),
        np.where(theta < tp + tn, np.cos(np.pi * (theta - tp) / (2 * tn)), 0.0),
    )
    deriv = np.diff(np.append(flow, flow[0]))
    spec = np.fft.rfft(deriv)
    spec[0] = 0.0
    k = np.arange(len(spec))
    spec[1:] *= k[1:] ** (tilt_db_per_oct / 6.02)  # negative tilt darkens
    tables = np.empty((len(BAND_TOP_HZ), TABLE_SIZE))
    for b, top in enumerate(BAND_TOP_HZ):
        limited = spec.copy()
        limited[k * top > min(max_harmonic_hz, 0.48 * sample_rate)] = 0.0
        tables[b] = np.fft.irfft(limited, n=TABLE_SIZE)
    tables = (tables / (np.sqrt(np.mean(tables[4] ** 2)) + 1e-12)).astype(np.float32)
    tables.setflags(write=False)
    return tables


def oscillate(f0_hz: np.ndarray, tables: np.ndarray, sample_rate: int, phase0: float = 0.0) -> np.ndarray:
    """(n,) float32 samples of the wavetable oscillator following f0_hz (n,) per sample."""
    phase = phase0 + np.cumsum(f0_hz * (TABLE_SIZE / sample_rate))
    idx = phase.astype(np.int64) & (TABLE_SIZE - 1)  # nearest-below lookup; tables are smooth
    band = np.minimum(np.searchsorted(BAND_TOP_HZ, f0_hz[::32]), len(BAND_TOP_HZ) - 1)
    idx += np.repeat(band * TABLE_SIZE, 32)[: len(idx)]
    return tables.reshape(-1)[idx]


def frames_to_samples(values: np.ndarray, hop_s: float, n_samples: int, sample_rate: int) -> np.ndarray:
    """Linear interpolation of a per-frame control curve (frame k at k*hop_s) to every sample."""
    t_frames = np.arange(len(values)) * hop_s
    t = np.arange(n_samples) / sample_rate
    return np.interp(t, t_frames, values).astype(np.float64)


def fill_gaps(midi: np.ndarray) -> np.ndarray:
    """NaN frames take the nearest voiced value, so an oscillator keeps a sensible frequency."""
    ok = np.isfinite(midi)
    if not ok.any():
        return np.full_like(midi, 60.0)
    idx = np.arange(len(midi))
    return np.interp(idx, idx[ok], midi[ok]).astype(midi.dtype)
