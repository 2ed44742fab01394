"""Pitch contours as harmonic tones: how MIDI references and pitch-file queries meet a CQT model.

A CREPE model meets a contour as a pseudo-activation (features.contour_to_activation); a CQT
model needs sound, so the contour is played as a tone with a few harmonics (1/k amplitudes),
its pitch following the contour frame by frame, silent where the contour is unvoiced.
"""

from __future__ import annotations

import numpy as np

from humdex.frontend.audio import SAMPLE_RATE
from humdex.frontend.contour import Contour
from humdex.frontend.pitch import midi_to_hz

HARMONICS = 5
RAMP_S = 0.01  # onsets and offsets fade in/out over this long (no clicks)


def contour_tones(contour: Contour, sample_rate: int = SAMPLE_RATE, harmonics: int = HARMONICS) -> np.ndarray:
    """Contour -> (round(duration * sample_rate),) float32 audio, peak 0.5 (all zero when unvoiced)."""
    n = round(contour.duration_s * sample_rate)
    if n == 0 or not contour.voiced.any():
        return np.zeros(n, np.float32)
    frame = np.minimum((np.arange(n) / sample_rate / contour.hop_s).astype(np.int64), len(contour.midi) - 1)
    midi = contour.midi[frame]
    voiced = np.isfinite(midi)
    hz = midi_to_hz(np.where(voiced, midi, 69.0))
    phase = 2 * np.pi * np.cumsum(hz) / sample_rate
    wave = sum(np.sin(k * phase) / k * (k * hz < sample_rate / 2) for k in range(1, harmonics + 1))
    ramp = max(1, round(RAMP_S * sample_rate))
    envelope = np.convolve(voiced.astype(np.float64), np.ones(ramp) / ramp, mode="same") * voiced
    audio = wave * envelope
    return (0.5 * audio / (np.abs(audio).max() + 1e-12)).astype(np.float32)
