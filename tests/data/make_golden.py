"""Write tests/data/features_golden.npz: known inputs and the feature code's outputs for them.

Run once when a change to humdex.learned.features is meant to change its numbers (and say so in the
commit); tests/test_features.py compares the current code with this file. Inputs are made here,
deterministically, so the file needs nothing but the package:

    PYTHONPATH=src .venv/bin/python tests/data/make_golden.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from humdex.frontend.contour import Contour
from humdex.learned.features import (
    M_SHORT,
    contour_to_activation,
    cqt_features,
    crepe_windows,
    pseudo_activation,
)

OUT = Path(__file__).resolve().parent / "features_golden.npz"
SR = 16_000


def inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(14)
    # pitches on and between bins, unvoiced, at both ends of CREPE's range
    pseudo_midi = np.array([60.0, np.nan, 71.3, 40.05, 23.4606, 24.0, 107.0, 69.1], np.float64)
    # a hummed line at the .pv hop (32 ms): notes with vibrato and a rest, resampled to 10 ms
    notes = np.repeat(np.array([62, 64, 65, 67, np.nan, 69, 67], np.float64), 5)
    pv_midi = (notes + 0.15 * np.sin(np.arange(len(notes)) * 0.9)).astype(np.float32)
    # 3.5 s at 10 ms: three 3 s windows (0.25 s hop) of a random walk
    walk = np.repeat(60 + np.cumsum(rng.choice([-2, -1, 1, 2], 35)), 10).astype(np.float32)
    walk[100:120] = np.nan
    t = np.arange(SR // 2) / SR  # 0.5 s: A3 then E4, at different levels
    tones = np.where(t < 0.25, 0.5 * np.sin(2 * np.pi * 220 * t), 0.1 * np.sin(2 * np.pi * 329.63 * t))
    return {"pseudo_midi": pseudo_midi, "pv_midi": pv_midi, "walk_midi": walk,
            "tones": tones.astype(np.float32)}


def outputs(x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    windows, starts_s = crepe_windows(contour_to_activation(Contour(x["walk_midi"], 0.01)), M_SHORT)
    return {"pseudo_activation": pseudo_activation(torch.from_numpy(x["pseudo_midi"])).numpy(),
            "pv_activation": contour_to_activation(Contour(x["pv_midi"], 0.032)),
            "walk_windows": windows, "walk_starts_s": starts_s,
            "tones_cqt": cqt_features(x["tones"], SR)}


def main() -> int:
    x = inputs()
    np.savez_compressed(OUT, **x, **outputs(x))
    print(f"{OUT}: {OUT.stat().st_size / 1e3:.0f} kB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
