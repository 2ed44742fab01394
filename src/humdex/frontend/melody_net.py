"""The melody net: the lead's pitch in a mix, learned from records whose lead is known.

The salience tracker (frontend.salience) picks the pitch whose harmonics carry the most energy;
on a record that is often the band (a chord tone, the bass an octave below, a counter-melody) or
the lead an octave off. The net sees the same spectral peaks as a harmonic stack (the peak
spectrum at 1/2, 1, 2, ... 6 times each candidate pitch, plus the harmonic-summation salience,
after Bittner et al., "Deep salience representations for F0 estimation in polyphonic music",
ISMIR 2017) and learns which pitch is the lead: per 10 ms frame a softmax over the salience grid's
pitches and "no lead". A Viterbi path through its log-probabilities (frontend.salience.best_path)
gives the melody; 1 - P(no lead) is the frame's periodicity.

Trained by humdex.training.melody_net on records of TRAIN-split melodies (the TRAIN sound, then
fine-tuned with the WIDE sound's ~50 lead programs added and timbre augmentation); the weights
ship in assets/melody_net.pt with their config.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from humdex.errors import ModelError
from humdex.frontend.pitch import midi_to_hz
from humdex.frontend.salience import (
    SalienceConfig,
    best_path,
    harmonic_shift,
    harmonic_sum,
    midi_grid,
    peak_spectrum,
    song_level,
)

ASSETS = Path(__file__).resolve().parent.parent / "assets"
WEIGHTS_PATH = ASSETS / "melody_net.pt"
CHUNK_FRAMES = 2000  # frames per forward pass (bounded memory for any song length)
CHUNK_OVERLAP = 64  # frames of context on each side of a chunk (> the net's receptive field)


@dataclass(frozen=True)
class MelodyNetConfig:
    """The net's input, shape and decoding; stored with its weights."""

    harmonics: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
    channels: int = 16
    octave_taps: int = 25  # taps of the pitch-context layer, a semitone apart (+-1 octave)
    time_dilations: tuple[int, ...] = (4, 16)  # 3x3 layers with these frame dilations (time context)
    level_percentile: float = 90.0  # a song's level: this percentile of frame maxima
    jump_cost: float = 1.0  # Viterbi: nats per semitone moved between frames
    salience: SalienceConfig = field(default_factory=SalienceConfig)

    @property
    def in_channels(self) -> int:
        return len(self.harmonics) + 1  # + the harmonic-summation salience

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MelodyNetConfig:
        d = dict(d)
        d["harmonics"] = tuple(d["harmonics"])
        d["time_dilations"] = tuple(d["time_dilations"])
        d["salience"] = SalienceConfig(**d["salience"])
        return cls(**d)


def net_input(audio16: np.ndarray, sample_rate: int, hop: int, config: MelodyNetConfig) -> np.ndarray:
    """(n,) audio -> (in_channels, T, bins) float32: the harmonic stack of the peak spectrum and the
    salience on midi_grid(config.salience), each divided by its song level and log-compressed."""
    features = HarmonicStack(audio16, sample_rate, hop, config)
    return features[:, :features.shape[1]]


class HarmonicStack:
    """A song's net input, built on demand for slices of frames: `stack[:, lo:hi]` is
    net_input(...)[:, lo:hi], so a long song never holds its whole (C, T, bins) input."""

    def __init__(self, audio16: np.ndarray, sample_rate: int, hop: int, config: MelodyNetConfig) -> None:
        sal_cfg = config.salience
        self.spectrum = peak_spectrum(audio16, sample_rate, hop, sal_cfg)  # (T, n_fine)
        self.salience = harmonic_sum(self.spectrum, sal_cfg)  # (T, bins)
        self.levels = (song_level(self.spectrum, config.level_percentile) or 1.0,
                       song_level(self.salience, config.level_percentile) or 1.0)
        self.n_bins = self.salience.shape[1]
        self.shifts = [harmonic_shift(h, sal_cfg) for h in config.harmonics]
        self.pad = (max(0, -min(self.shifts)), max(0, max(self.shifts) + self.n_bins - self.spectrum.shape[1]))
        self.shape = (config.in_channels, len(self.spectrum), self.n_bins)

    def __getitem__(self, index: tuple[slice, slice]) -> np.ndarray:
        frames = index[1]
        padded = np.pad(self.spectrum[frames], ((0, 0), self.pad))
        lo = self.pad[0]
        out = np.empty((self.shape[0], len(padded), self.n_bins), np.float32)
        for c, s in enumerate(self.shifts):
            out[c] = _compressed(padded[:, lo + s: lo + s + self.n_bins], self.levels[0])
        out[-1] = _compressed(self.salience[frames], self.levels[1])
        return out[index[0]]


def _compressed(x: np.ndarray, level: float) -> np.ndarray:
    return np.log1p(10.0 * x / level).astype(np.float32)


def build_model(config: MelodyNetConfig) -> Any:
    """The net (torch.nn.Module): (B, in_channels, T, bins) -> (B, T, bins + 1) logits, the last
    one "no lead"."""
    import torch
    from torch import nn

    ch = config.channels

    def block(c_in: int, c_out: int, kernel: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> nn.Module:
        pad = ((kernel[0] - 1) // 2 * dilation[0], (kernel[1] - 1) // 2 * dilation[1])
        return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, padding=pad, dilation=dilation),
                             nn.BatchNorm2d(c_out), nn.ReLU())

    class MelodyNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            semitone = config.salience.bins_per_semitone
            self.body = nn.Sequential(
                block(config.in_channels, ch, (5, 5)),
                block(ch, ch, (5, 5)),
                *[block(ch, ch, (3, 3), (d, 1)) for d in config.time_dilations],  # time context
                block(ch, ch // 2, (1, config.octave_taps), (1, semitone)),  # pitch context
                block(ch // 2, ch // 2, (3, 3)),
            )
            self.pitch = nn.Conv2d(ch // 2, 1, 1)
            self.lead = nn.Conv2d(ch // 2, 1, 1)
            self.no_lead = nn.Linear(2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.body(x)
            pitch = self.pitch(h)[:, 0]  # (B, T, bins)
            lead = self.lead(h)[:, 0]
            pooled = torch.stack([lead.amax(dim=2), lead.mean(dim=2)], dim=-1)  # (B, T, 2)
            return torch.cat([pitch, self.no_lead(pooled)], dim=2)

    return MelodyNet()


def decode(log_probs: np.ndarray, config: MelodyNetConfig) -> tuple[np.ndarray, np.ndarray]:
    """(T, bins + 1) log-probabilities -> f0_hz (T,), periodicity (T,) = 1 - P(no lead).

    The pitch is the Viterbi path through the pitch log-probabilities given a lead (a jump costs
    config.jump_cost nats per semitone), refined by the probability-weighted mean of +-2 bins."""
    sal_cfg = config.salience
    pitch_lp = log_probs[:, :-1] - np.logaddexp.reduce(log_probs[:, :-1], axis=1, keepdims=True)
    path = best_path(np.maximum(pitch_lp, -20.0).astype(np.float64),
                     config.jump_cost / sal_cfg.bins_per_semitone)
    probs = np.exp(pitch_lp)
    t = np.arange(len(path))
    offsets = np.arange(-2, 3)
    idx = np.clip(path[:, None] + offsets[None, :], 0, probs.shape[1] - 1)
    w = probs[t[:, None], idx]
    frac = (w * (idx - path[:, None])).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-12)
    f0_hz = midi_to_hz(midi_grid(sal_cfg)[path] + frac / sal_cfg.bins_per_semitone)
    periodicity = 1.0 - np.exp(log_probs[:, -1])
    return f0_hz.astype(np.float32), np.clip(periodicity, 0.0, 1.0).astype(np.float32)


def log_probs(model: Any, features: np.ndarray | HarmonicStack) -> np.ndarray:
    """(C, T, bins) net input -> (T, bins + 1) log-probabilities, CHUNK_FRAMES at a time."""
    import torch

    n_t = features.shape[1]
    out = np.empty((n_t, features.shape[2] + 1), np.float32)
    with torch.inference_mode():
        for start in range(0, n_t, CHUNK_FRAMES):
            stop = min(n_t, start + CHUNK_FRAMES)
            lo, hi = max(0, start - CHUNK_OVERLAP), min(n_t, stop + CHUNK_OVERLAP)
            x = torch.from_numpy(np.ascontiguousarray(features[:, lo:hi]))[None]
            logits = model(x)[0]
            out[start:stop] = torch.log_softmax(logits, dim=1)[start - lo: stop - lo].numpy()
    return out


def predominant_f0(audio16: np.ndarray, sample_rate: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """(n,) mono audio -> f0_hz (T,), periodicity (T,) of the lead by the shipped melody net."""
    model, config = load_shipped()
    return decode(log_probs(model, HarmonicStack(audio16, sample_rate, hop, config)), config)


@functools.lru_cache(maxsize=1)
def load_shipped() -> tuple[Any, MelodyNetConfig]:
    return load(WEIGHTS_PATH)


def load(path: Path) -> tuple[Any, MelodyNetConfig]:
    """(model in eval mode, config) from a file written by save(); ModelError when unusable."""
    from humdex.learned.model import read_checkpoint

    blob = read_checkpoint(path)
    try:
        config = MelodyNetConfig.from_dict(blob["config"])
        model = build_model(config)
        model.load_state_dict(blob["model"])
    except (TypeError, RuntimeError, KeyError) as exc:
        raise ModelError(f"melody net weights do not match their config: {path} ({exc})") from exc
    return model.eval(), config


def save(path: Path, model: Any, config: MelodyNetConfig, **extra: Any) -> None:
    """Weights + config (+ extra, e.g. training notes), written atomically."""
    import torch

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"config": config.to_dict(), "model": model.state_dict(), **extra}, tmp)
    tmp.replace(path)
