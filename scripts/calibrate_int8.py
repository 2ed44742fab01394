"""Calibrate a shipped encoder for int8 CPU inference and store the calibration in its checkpoint.

Static post-training quantization (torch.ao FX, x86 engine) needs each layer's activation range
on typical inputs. They come from training data only, never from evaluation melodies:
- CREPE models: performances of pool training melodies (train_cpu_pseudo.performances), as
  queries see them (the 7 tempo scales of fingerprints.QUERY_SCALES) and as songs do (scale 1);
- CQT models: the cached CQT of the training split of a CHAD-layout folder (--chad).
The checkpoint's weights do not change; its sha256 does (update DEFAULT_MODELS' pins in tests).

    python scripts/calibrate_int8.py --model short
    python scripts/calibrate_int8.py --model cqt --chad data/chad_synth
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def crepe_windows(model, melodies: int, seed: int) -> np.ndarray:
    from train_cpu_pseudo import performances

    from humdex.frontend.contour import Contour
    from humdex.learned.fingerprints import QUERY_SCALES, contour_frames, scaled_windows
    from humdex.training.melody_pool import load_pool

    rng = np.random.default_rng(seed)
    pool = load_pool("train")
    out = []
    for i in rng.permutation(len(pool))[:melodies]:
        for f0, _, kind in performances(pool[i], 1, rng):
            frames = contour_frames(Contour(f0, 0.01), "crepe")
            scales = (1.0,) if kind == "original" else QUERY_SCALES
            start = int(rng.integers(0, max(1, len(frames) - 1000)))  # a 10 s query
            clip = frames if kind == "original" else frames[start:start + 1000]
            out += scaled_windows(model, clip, scales)
    return np.concatenate(out)


def cqt_windows(model, chad: str, fragments: int) -> np.ndarray:
    from humdex.learned.features import feature_windows
    from humdex.training.data import load_chad_groups

    groups = load_chad_groups(chad, "train", max_fragments=fragments, feature="cqt")
    return np.concatenate([feature_windows(r.activation.astype(np.float32), model.config.window, "cqt")[0]
                           for g in groups for r in g.renditions])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="short", help="shipped model name, or a .pt file (calibrated in place)")
    p.add_argument("--melodies", type=int, default=40, help="CREPE: training melodies performed")
    p.add_argument("--chad", default=None, help="CQT: CHAD-layout folder with a train split")
    p.add_argument("--fragments", type=int, default=150, help="CQT: training fragments read")
    p.add_argument("--max-windows", type=int, default=8000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(ROOT / "scripts"))
    import torch

    from humdex.learned.model import (
        calibrate_int8,
        int8_encoder,
        model_from_checkpoint,
        model_path,
        read_checkpoint,
        write_checkpoint,
    )

    torch.set_num_threads(1)
    path = model_path(args.model)
    ckpt = read_checkpoint(path)
    model = model_from_checkpoint(ckpt, str(path))
    if model.config.feature == "cqt":
        if not args.chad:
            p.error("a CQT model needs --chad")
        windows = cqt_windows(model, args.chad, args.fragments)
    else:
        windows = crepe_windows(model, args.melodies, args.seed)
    rng = np.random.default_rng(args.seed)
    windows = windows[rng.permutation(len(windows))[: args.max_windows]]
    calibration = calibrate_int8(model, windows)
    held = windows[:256]  # agreement on calibration windows: a check that the conversion works
    with torch.inference_mode():
        x = torch.as_tensor(held)
        cos = (model(x) * int8_encoder(model, calibration)(x)).sum(1)
    print(f"{args.model}: {len(windows)} windows; int8 vs float cosine mean {cos.mean():.4f}, min {cos.min():.4f}")
    ckpt["int8_calibration"] = calibration
    write_checkpoint(path, ckpt)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
