"""Train (or fine-tune) an encoder on a CPU from performed pitch only: no audio synthesis, no CREPE.

Each training melody is performed by the synthesizer's performer model (timing drift, key,
interval errors, vibrato, breaths) several times; each performance's f0 becomes a CREPE-like
pseudo-activation (features.contour_to_activation), the score gives one more. This is what fits
a shared 2-core CPU in minutes; the activations lack CREPE's real noise and octave errors, which
the augmentations (noise floor, mixing, SpliceOut) only partly stand in for.

    nice -n 10 .venv/bin/python scripts/train_cpu_pseudo.py --window long --init short \
        --minutes 25 --out runs/long_cpu --export src/humdex/assets/encoder_crepe_long.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def performances(melody, n_perf: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """The score and n_perf performances of a melody: [(f0 MIDI per 10 ms frame, NaN unvoiced,
    (n, 2) time map (performance_s, score_s), kind)]; the first performance is song-like ("cover")."""
    from humdex.frontend.melody import notes_to_contour
    from humdex.synth.performance import PerformanceConfig, perform
    from humdex.synth.render import SINGER_PERFORMANCE
    from humdex.synth.score import Score
    from humdex.synth.singer import sample_singer

    score = Score.from_notes(melody.notes)
    ref = notes_to_contour(melody.notes, 0.01).midi.astype(np.float32)
    end = len(ref) * 0.01
    out = [(ref, np.array([[0.0, 0.0], [end, end]]), "original")]
    for i in range(n_perf):
        song = i == 0
        voice = str(rng.choice(["male", "female", "child"] if not song else ["male", "female"]))
        singer = sample_singer(rng, voice, (0.75, 1.0) if song else (0.0, 0.85))
        perf = perform(score, singer, rng, SINGER_PERFORMANCE if song else PerformanceConfig())
        tm = np.stack([perf.time_map.perf_s, perf.time_map.score_s], 1)
        out.append((perf.f0_midi.astype(np.float32), tm, "cover" if song else "hum"))
    return out


def performed_groups(melodies, n_perf: int, seed: int, as_contours: bool = False) -> list:
    """TrainGroups of performances(): renditions as pseudo-activations (a random level each), or
    as_contours: the f0 contours themselves (data.Bank expands them on its device)."""
    from humdex.frontend.contour import Contour
    from humdex.learned.features import contour_to_activation
    from humdex.training.data import TrainGroup, TrainRendition

    rng = np.random.default_rng(seed)
    groups = []
    for m in melodies:
        try:
            rends = performances(m, n_perf, rng)
        except Exception:  # noqa: BLE001, S112 - skip a melody the performer rejects
            continue
        if not as_contours:
            rends = [(contour_to_activation(Contour(f0, 0.01)) * (1.0 if k == "original" else rng.uniform(0.6, 1.0)),
                      tm, k) for f0, tm, k in rends]
        groups.append(TrainGroup(m.melody_id, tuple(TrainRendition(np.asarray(a, np.float16 if a.ndim == 2 else np.float32), tm, k)
                                                    for a, tm, k in rends)))
    return groups


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--window", choices=("short", "long"), default="long")
    p.add_argument("--init", default=None, help="shipped model name or .pt to start from")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--minutes", type=float, default=20.0)
    p.add_argument("--melodies", type=int, default=600)
    p.add_argument("--val-melodies", type=int, default=40)
    p.add_argument("--performances", type=int, default=4)
    p.add_argument("--k-groups", type=int, default=24)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--pool", default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--export", default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    import torch

    torch.set_num_threads(args.threads)  # on a shared CPU, 1 thread is far faster than 2
    from humdex.learned.features import M_LONG, M_SHORT
    from humdex.learned.model import ModelConfig, load_model
    from humdex.training.melody_pool import load_pool
    from humdex.training.train import TrainConfig, export_model, train

    kw = {"path": Path(args.pool)} if args.pool else {}
    rng = np.random.default_rng(0)
    tr, va = load_pool("train", **kw), load_pool("validation", **kw)
    tr = [tr[i] for i in rng.permutation(len(tr))[: args.melodies]]
    va = [va[i] for i in rng.permutation(len(va))[: args.val_melodies]]
    train_groups = performed_groups(tr, args.performances, 1)
    val_groups = performed_groups(va, args.performances, 2)
    print(f"{len(train_groups)} training and {len(val_groups)} validation melodies")
    spec = M_SHORT if args.window == "short" else M_LONG
    width = args.width
    init = None
    if args.init:
        init = load_model(args.init if args.init.endswith(".pt") else None, name=args.init)
        width = init.config.base_channels
    cfg = TrainConfig(model=ModelConfig(window_s=spec.window_s, hop_s=spec.hop_s, base_channels=width),
                      k_groups=args.k_groups, per_group=4, lr=args.lr, minutes=args.minutes,
                      eval_every=args.eval_every, val_queries=120, warmup=0.02)
    ckpt = train(train_groups, val_groups, cfg, args.out, device="cpu", resume=args.resume,
                 init_state=init.state_dict() if init is not None else None)
    if args.export:
        print(f"model: {export_model(ckpt, args.export)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
