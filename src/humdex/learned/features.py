"""Model inputs: CREPE activations cropped/resized to 80 x T/4, CQT, pitch-contour pseudo-activations, windows.

Everything here is a pure array -> array function. The product's path (a contour or a CREPE
activation -> model inputs: contour_to_activation, feature_windows) is numpy and never imports
torch, so a search fingerprints its query without it (learned.runtime); the training batches'
path takes torch tensors (pseudo_activation, gather_pooled, model_inputs) so that a GPU runs it.
The two compute the same numbers (tests/test_features.py compares them). Shapes are in the
docstrings: T frames at 10 ms (CREPE's hop), F = T // 4 frames at 40 ms.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from humdex.frontend.audio import SAMPLE_RATE
from humdex.frontend.contour import Contour
from humdex.frontend.pitch import (
    CREPE_BINS,
    CREPE_CENTS_PER_BIN,
    HOP_S,
    HOP_SAMPLES,
    crepe_bin_to_midi,
)

if TYPE_CHECKING:
    import torch

CREPE_HOP_S = HOP_S
BINS_PER_SEMITONE = round(100 / CREPE_CENTS_PER_BIN)
CREPE_BIN0_MIDI = float(crepe_bin_to_midi(0))  # MIDI 23.4606; + 0.2 per bin
CROP_BINS = 180  # 3 octaves of 20-cent bins
FEATURE_BINS = 80
TIME_DECIMATION = 4  # 10 ms -> 40 ms
FEATURE_HOP_S = CREPE_HOP_S * TIME_DECIMATION
VOICED_ACTIVATION = 0.3  # frames whose peak activation is below this don't steer the crop
TARGET_STD_CENTS = 25.0  # CREPE's training targets: a Gaussian of 25 cents around the true bin
CQT_BINS = 84
CQT_BINS_PER_OCTAVE = 12
CQT_FMIN_HZ = 32.70319566257483  # C1


@dataclass(frozen=True)
class WindowSpec:
    """Fingerprint windows: one 128-d fingerprint per `window_s` of audio every `hop_s`."""

    window_s: float
    hop_s: float

    @property
    def window_frames(self) -> int:
        """Window length in 10 ms frames (a multiple of TIME_DECIMATION)."""
        n = round(self.window_s / CREPE_HOP_S)
        return n - n % TIME_DECIMATION

    @property
    def feature_frames(self) -> int:
        """Window length in 40 ms feature frames."""
        return self.window_frames // TIME_DECIMATION

    def starts(self, n_frames: int) -> np.ndarray:
        """(n_windows,) int64 start frames (10 ms) of the windows covering n_frames; at least one."""
        span = max(0, n_frames - self.window_frames)
        n = math.floor(span * CREPE_HOP_S / self.hop_s + 1e-9) + 1
        return np.round(np.arange(n) * self.hop_s / CREPE_HOP_S).astype(np.int64)


M_SHORT = WindowSpec(window_s=3.0, hop_s=0.25)
M_LONG = WindowSpec(window_s=8.0, hop_s=0.64)


@functools.lru_cache(maxsize=8)
def bin_resize_matrix(n_in: int = CROP_BINS, n_out: int = FEATURE_BINS) -> np.ndarray:
    """(n_in, n_out) float32 area-averaging matrix: x (.., n_in) @ M -> (.., n_out).

    Output bin j averages the input over [j * n_in / n_out, (j + 1) * n_in / n_out), each input
    bin weighted by its overlap, so a constant row stays constant.
    """
    edges = np.arange(n_out + 1) * (n_in / n_out)
    lo, hi = edges[:-1], edges[1:]
    b = np.arange(n_in)[:, None]
    overlap = np.clip(np.minimum(b + 1, hi[None, :]) - np.maximum(b, lo[None, :]), 0.0, None)
    return (overlap / (n_in / n_out)).astype(np.float32)


def contour_to_activation(contour: Contour, hop_s: float = CREPE_HOP_S,
                          std_cents: float = TARGET_STD_CENTS) -> np.ndarray:
    """Contour -> (T, 360) float32 pseudo-activation at `hop_s`, like CREPE's training targets.

    Each voiced frame gets a Gaussian (std `std_cents`) around its pitch bin with peak 1;
    unvoiced frames are all zero. MIDI references and .pv/CSV queries take this path so they
    meet the same model as audio.
    """
    midi = contour.resample(hop_s).midi if contour.hop_s != hop_s else contour.midi
    return pseudo_activation_np(midi, std_cents)


def pseudo_activation_np(midi: np.ndarray, std_cents: float = TARGET_STD_CENTS) -> np.ndarray:
    """(T,) MIDI pitch per frame (NaN: unvoiced) -> (T, 360) float32 pseudo-activation (numpy:
    the product's path; pseudo_activation is the same on torch tensors, for the trainer)."""
    centre = (np.asarray(midi, np.float64)[:, None] - CREPE_BIN0_MIDI) * BINS_PER_SEMITONE  # (T, 1)
    bins = np.arange(CREPE_BINS, dtype=np.float64)[None, :]
    act = np.exp(-0.5 * ((bins - centre) / (std_cents / CREPE_CENTS_PER_BIN)) ** 2)
    return np.nan_to_num(act, nan=0.0).astype(np.float32)


def pseudo_activation(midi: torch.Tensor, std_cents: float = TARGET_STD_CENTS) -> torch.Tensor:
    """(T,) MIDI pitch per frame (NaN: unvoiced) -> (T, 360) float32 pseudo-activation, on midi's device.

    Computed in float64 (the GPU trainer expands millions of frames this way; the CPU product
    gets the same numbers from pseudo_activation_np).
    """
    import torch

    centre = (midi.to(torch.float64)[:, None] - CREPE_BIN0_MIDI) * BINS_PER_SEMITONE  # (T, 1)
    bins = torch.arange(CREPE_BINS, dtype=torch.float64, device=midi.device)[None, :]
    act = torch.exp(-0.5 * ((bins - centre) / (std_cents / CREPE_CENTS_PER_BIN)) ** 2)
    return torch.nan_to_num(act, nan=0.0).to(torch.float32)


def gather_pooled(bank: torch.Tensor, starts: np.ndarray | torch.Tensor, n_out: int,
                  ends: np.ndarray | torch.Tensor | None = None,
                  begins: np.ndarray | torch.Tensor | None = None,
                  stretch: np.ndarray | torch.Tensor | None = None) -> torch.Tensor:
    """Frames (N, B) at 10 ms -> (n, n_out, B) windows at 40 ms; a (N,) bank of MIDI pitch (NaN
    unvoiced) is read as its pseudo-activation (B = 360), expanded only where a window reads it.

    Output frame j of window i is the mean of the 4 frames from starts[i] + round(4 j stretch[i]);
    frames at or past ends[i] (default N) or before begins[i] (default 0) read as zeros. `bank` may hold many clips
    back to back (training), `ends` keeping each window inside its own clip. stretch > 1 reads
    a longer stretch of the clip into the same n_out frames (time-stretch augmentation).
    """
    import torch

    dev = bank.device
    n_bins = CREPE_BINS if bank.ndim == 1 else bank.shape[1]
    if bank.shape[0] == 0:
        return torch.zeros((len(starts), n_out, n_bins), dtype=torch.float32, device=dev)
    starts_t = torch.as_tensor(starts, device=dev).to(torch.int64)
    ends_t = (torch.full_like(starts_t, bank.shape[0]) if ends is None
              else torch.as_tensor(ends, device=dev).to(torch.int64))
    step = torch.arange(n_out, device=dev, dtype=torch.float32) * TIME_DECIMATION
    step = step[None, :].expand(len(starts_t), -1)
    if stretch is not None:
        step = step * torch.as_tensor(stretch, device=dev, dtype=torch.float32)[:, None]
    idx = starts_t[:, None, None] + torch.round(step).to(torch.int64)[:, :, None] \
        + torch.arange(TIME_DECIMATION, device=dev)[None, None, :]  # (n, n_out, 4)
    begins_t = (torch.zeros_like(starts_t) if begins is None
                else torch.as_tensor(begins, device=dev).to(torch.int64))
    valid = (idx >= begins_t[:, None, None]) & (idx < ends_t[:, None, None]) & (idx >= 0) \
        & (idx < bank.shape[0])
    rows = bank[torch.where(valid, idx, 0)]  # no copy of the whole bank
    if bank.ndim == 1:
        rows = pseudo_activation(rows.reshape(-1)).reshape(*rows.shape, n_bins)
    return (rows.to(torch.float32) * valid[..., None]).mean(dim=2)


def crop_windows(windows: torch.Tensor, shift_bins: torch.Tensor | None = None) -> torch.Tensor:
    """(n, F, 360) activation windows -> (n, 80, F): each cropped to 180 bins around its mean pitch.

    The crop centre is the peak-weighted mean of the frames' peak bins (frames with peak >=
    VOICED_ACTIVATION; all frames when none is). `shift_bins` (n,) moves each crop window
    (augmentation: the melody lands off-centre). Then 180 bins -> 80 by area averaging.
    crop_windows_np is the same in numpy.
    """
    import torch

    peak, arg = windows.max(dim=2)  # (n, F)
    w = torch.where(peak >= VOICED_ACTIVATION, peak, torch.zeros_like(peak))
    w = torch.where(w.sum(dim=1, keepdim=True) > 0, w, peak + 1e-6)
    centre = (w * arg.to(torch.float32)).sum(dim=1) / w.sum(dim=1)
    if shift_bins is not None:
        centre = centre + shift_bins.to(centre)
    lo = torch.clamp(torch.round(centre - CROP_BINS / 2), 0, CREPE_BINS - CROP_BINS).to(torch.int64)
    idx = lo[:, None] + torch.arange(CROP_BINS, device=windows.device)[None, :]  # (n, 180)
    cropped = torch.gather(windows, 2, idx[:, None, :].expand(-1, windows.shape[1], -1))
    m = torch.as_tensor(bin_resize_matrix(), device=windows.device)
    return (cropped @ m).transpose(1, 2).contiguous()


def crop_windows_np(windows: np.ndarray) -> np.ndarray:
    """(n, F, 360) float32 activation windows -> (n, 80, F): crop_windows (without its
    augmentation) in numpy, for the product's path."""
    peak, arg = windows.max(axis=2), windows.argmax(axis=2)  # (n, F); the first maximum, as torch
    w = np.where(peak >= VOICED_ACTIVATION, peak, np.float32(0.0))
    w = np.where(w.sum(axis=1, keepdims=True) > 0, w, peak + np.float32(1e-6))
    centre = (w * arg.astype(np.float32)).sum(axis=1) / w.sum(axis=1)
    lo = np.clip(np.round(centre - CROP_BINS / 2), 0, CREPE_BINS - CROP_BINS).astype(np.int64)
    idx = lo[:, None, None] + np.arange(CROP_BINS)[None, None, :]  # (n, 1, 180)
    cropped = np.take_along_axis(windows, np.broadcast_to(idx, (*windows.shape[:2], CROP_BINS)), axis=2)
    return np.ascontiguousarray((cropped @ bin_resize_matrix()).transpose(0, 2, 1))


def crepe_windows(activation: np.ndarray, spec: WindowSpec) -> tuple[np.ndarray, np.ndarray]:
    """(T, 360) CREPE activation -> ((n, 80, F) float32 model inputs, (n,) window start seconds)."""
    act = np.asarray(activation, dtype=np.float32)
    if act.ndim != 2 or act.shape[1] != CREPE_BINS:
        raise ValueError(f"activation must be (T, {CREPE_BINS}), got {act.shape}")
    starts = spec.starts(act.shape[0])
    return crop_windows_np(pooled_windows(act, starts, spec.feature_frames)), starts * CREPE_HOP_S


def pooled_windows(frames: np.ndarray, starts: np.ndarray, n_out: int) -> np.ndarray:
    """(T, B) frames at 10 ms -> (n, n_out, B) windows at 40 ms, as gather_pooled without stretch.

    Pools once (a running mean of 4 frames, frames past the end reading zero) and then picks every
    4th pooled frame from each start: 4x less memory traffic than pooling every window apart.
    """
    padded = np.concatenate([frames, np.zeros((TIME_DECIMATION, frames.shape[1]), frames.dtype)])
    csum = np.concatenate([np.zeros((1, frames.shape[1]), np.float64), np.cumsum(padded, axis=0, dtype=np.float64)])
    pooled = ((csum[TIME_DECIMATION:] - csum[:-TIME_DECIMATION]) / TIME_DECIMATION).astype(np.float32)
    zero = np.zeros((1, frames.shape[1]), np.float32)
    pooled = np.concatenate([pooled[: len(frames)], zero])  # row T: past the end
    idx = np.asarray(starts, np.int64)[:, None] + TIME_DECIMATION * np.arange(n_out)[None, :]
    return pooled[np.minimum(idx, len(frames))]


CQT_HOP = HOP_SAMPLES  # 10 ms, CREPE's hop
CQT_CHUNK_FRAMES = 6000  # frames per strided convolution (60 s): bounded memory for long songs


@functools.lru_cache(maxsize=1)
def cqt_layer() -> Any:  # nnAudio.features.CQT1992v2 (untyped)
    """nnAudio's CQT (1992 kernels, one strided convolution) at 16 kHz, C1..B7, 12 bins/octave.

    A torch module: training (CPU or GPU box) and the product compute the very same features.
    Frames are not centred by the layer: cqt_features pads.
    """
    from nnAudio.features import CQT1992v2

    layer = CQT1992v2(sr=SAMPLE_RATE, hop_length=CQT_HOP, fmin=CQT_FMIN_HZ, n_bins=CQT_BINS,
                      bins_per_octave=CQT_BINS_PER_OCTAVE, center=False, verbose=False)
    return layer.eval()


def cqt_features(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """(n,) mono audio -> (T, 84) float32 log-CQT in [0, 1] at 10 ms, T = 1 + n // 160 at 16 kHz.

    Kept at 10 ms so it windows exactly like a CREPE activation; the window transform pools it
    to 40 ms. Frame t is centred on sample 160 t (zeros beyond the ends). Level: dB re the
    clip's max (at least 1e-6), floor -80 dB, mapped to [0, 1]; silence is all 0.
    """
    import torch

    from humdex.frontend.audio import SAMPLE_RATE, resample

    x = np.asarray(audio, dtype=np.float32)
    if sample_rate != SAMPLE_RATE:
        x = resample(x, sample_rate, SAMPLE_RATE).astype(np.float32)
    layer = cqt_layer()
    width = int(layer.kernel_width)
    n_frames = len(x) // CQT_HOP + 1
    padded = torch.from_numpy(np.pad(x, (width // 2, width)))
    with torch.inference_mode():
        mag = torch.cat([layer(padded[f0 * CQT_HOP:(min(n_frames, f0 + CQT_CHUNK_FRAMES) - 1) * CQT_HOP
                                      + width][None])[0]
                         for f0 in range(0, n_frames, CQT_CHUNK_FRAMES)], dim=1)  # (84, T)
        ref = torch.clamp(mag.max(), min=1e-6)
        db = 20.0 * torch.log10(torch.clamp(mag, min=1e-10) / ref)
        x01 = (torch.clamp(db, min=-80.0) + 80.0) / 80.0
    return x01.T.contiguous().float().cpu().numpy()


def cqt_windows(cqt: np.ndarray, spec: WindowSpec) -> tuple[np.ndarray, np.ndarray]:
    """(T, 84) CQT at 10 ms -> ((n, 84, F) float32 model inputs, (n,) window start seconds)."""
    starts = spec.starts(cqt.shape[0])
    win = pooled_windows(np.asarray(cqt, np.float32), starts, spec.feature_frames)
    return np.ascontiguousarray(win.transpose(0, 2, 1)), starts * CREPE_HOP_S


def shift_bins_of(windows: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """(n, bins, F) windows -> the same, window i moved up by round(shift[i]) bins (zeros fill)."""
    import torch

    n_bins = windows.shape[1]
    src = torch.arange(n_bins, device=windows.device)[None, :] - torch.round(shift).to(torch.int64)[:, None]
    valid = (src >= 0) & (src < n_bins)  # (n, bins)
    moved = torch.gather(windows, 1, src.clamp(0, n_bins - 1)[:, :, None].expand(-1, -1, windows.shape[2]))
    return moved * valid[:, :, None]


def model_inputs(windows: torch.Tensor, feature: str,
                 shift_semitones: torch.Tensor | None = None) -> torch.Tensor:
    """(n, F, B) pooled windows -> (n, n_bins, F) model inputs for a `feature` ("crepe" | "cqt") model.

    CREPE activations are cropped around their mean pitch (crop_windows); CQT windows stay on
    their absolute pitch axis. shift_semitones (n,): the pitch-shift augmentation (CREPE: the
    crop moves; CQT: the image moves by whole bins).
    """
    if feature == "crepe":
        return crop_windows(windows, None if shift_semitones is None else shift_semitones * BINS_PER_SEMITONE)
    if feature != "cqt":
        raise ValueError(f"unknown feature {feature!r}")
    x = windows.transpose(1, 2).contiguous()
    return x if shift_semitones is None else shift_bins_of(x, shift_semitones * CQT_BINS_PER_OCTAVE / 12)


def feature_windows(frames: np.ndarray, spec: WindowSpec, feature: str) -> tuple[np.ndarray, np.ndarray]:
    """(T, B) features at 10 ms (CREPE activation or CQT) -> (model inputs, window start seconds)."""
    return crepe_windows(frames, spec) if feature == "crepe" else cqt_windows(frames, spec)


def audio_frames(audio: np.ndarray, sample_rate: int, feature: str) -> np.ndarray:
    """Audio -> (T, B) `feature` frames at 10 ms: CREPE-tiny activation ("crepe") or CQT ("cqt")."""
    if feature == "cqt":
        return cqt_features(audio, sample_rate)
    if feature != "crepe":
        raise ValueError(f"unknown feature {feature!r}")
    from humdex.frontend.pitch import crepe_activation  # torchcrepe: only the CREPE path needs it

    return crepe_activation(audio, sample_rate, model="tiny")
