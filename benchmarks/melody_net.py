"""Train the melody net (humdex.frontend.melody_net): corpus, features, training, curve.

    # stage 1 (twelfth session): TRAIN sound
    python benchmarks/melody_net.py corpus --out data/melody_net/records --songs 800
    python benchmarks/melody_net.py features --corpus data/melody_net/records --out data/melody_net/features \
        --dev data/melody_dev --dev-out data/melody_net/val --dev-songs 20
    python benchmarks/melody_net.py train --features data/melody_net/features --val data/melody_net/val \
        --run data/melody_net/run16 --steps 2500
    python benchmarks/melody_net.py plot --run data/melody_net/run16 --png docs/melody_net_training.png
    # stage 2 (thirteenth session): + the WIDE sound, validated on TRAIN and PROXY dev records,
    # fine-tuning stage 1 as shipped (its step 1,000)
    git show 8648dce:src/humdex/assets/melody_net.pt > data/melody_net/stage1.pt
    python benchmarks/melody_net.py corpus --out data/melody_net/records_wide --songs 800 --seed 1 --sound wide
    (cd benchmarks && python melody_extraction.py render --out ../data/melody_proxy --songs 200 --sound proxy)
    python benchmarks/melody_net.py features --corpus data/melody_net/records_wide \
        --out data/melody_net/features_wide --dev data/melody_dev data/melody_proxy \
        --dev-out data/melody_net/val2 --dev-songs 20
    python benchmarks/melody_net.py train --features data/melody_net/features data/melody_net/features_wide \
        --val data/melody_net/val2 --run data/melody_net/run_C --init data/melody_net/stage1.pt \
        --steps 600 --lr 3e-4 --checkpoint-every 150 --threads 1 --timbre-db 6 --level-db 3
    python benchmarks/melody_net.py plot --run data/melody_net/run_C --png docs/melody_net_wide.png
    cp data/melody_net/run_C/best.pt src/humdex/assets/melody_net.pt          # ship

The corpora are TRAIN-split pool melodies rendered as records with a training sound (TRAIN, WIDE);
validation is the first `--dev-songs` records of each development set of
benchmarks/melody_extraction.py (pool VALIDATION melodies, TRAIN or PROXY sound). Nothing here
reads the held-out sound or evaluation melodies. A killed `train` resumes from its checkpoint.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def corpus(args: argparse.Namespace) -> int:
    from humdex.training.melody_net_corpus import build_corpus

    print(build_corpus(Path(args.out), args.songs, args.seed, args.sound), "records")
    return 0


def features(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from humdex.frontend import audio, melody_net, pitch
    from humdex.frontend.melody_net import MelodyNetConfig
    from humdex.training import melody_net as train_mn

    config = MelodyNetConfig()
    for corpus, features_dir in zip(args.corpus, args.out, strict=True):
        train_mn.features(Path(corpus), Path(features_dir), config)
    out = Path(args.dev_out)
    out.mkdir(parents=True, exist_ok=True)
    songs = [wav for dev in map(Path, args.dev) for wav in sorted((dev / "songs").glob("*.wav"))[: args.dev_songs]]
    for wav in tqdm(songs, desc="validation", unit="record"):
        name = f"{wav.parent.parent.name}_{wav.stem}"  # one validation folder from several dev sets
        target = out / f"{name}.npy"
        if target.is_file():
            continue
        samples = audio.load(wav, audio.SAMPLE_RATE)
        truth = np.load(wav.parent.parent / "truth" / f"{wav.stem}.npy").astype(np.float32)
        np.save(out / f"{name}.lead.npy", truth)
        np.save(target, melody_net.net_input(samples, audio.SAMPLE_RATE, pitch.HOP_SAMPLES, config).astype(np.float16))
    return 0


def train(args: argparse.Namespace) -> int:
    from humdex.frontend.melody_net import MelodyNetConfig
    from humdex.training.melody_net import TrainConfig
    from humdex.training.melody_net import train as run

    config = MelodyNetConfig(channels=args.channels)
    tc = TrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, checkpoint_every=args.checkpoint_every,
                     timbre_db=args.timbre_db, level_db=args.level_db)
    curve = run([Path(f) for f in args.features], Path(args.val), Path(args.run), config, tc, threads=args.threads,
                init=Path(args.init) if args.init else None)
    best = max(curve["points"], key=lambda p: p["val_pitch_accuracy"])
    print(json.dumps(best))
    return 0


def plot(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = json.loads((Path(args.run) / "curve.json").read_text())
    pts = curve["points"]
    steps = [p["step"] for p in pts]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.plot(steps, [p["train_loss"] for p in pts], label="train")
    a.plot(steps, [p["val_loss"] for p in pts], label="validation")
    a.set_xlabel("step")
    a.set_ylabel("cross-entropy per frame")
    a.legend()
    b.plot(steps, [p["val_pitch_accuracy"] for p in pts], label="pitch accuracy (50 c)")
    b.plot(steps, [p["val_voicing_false_alarm"] for p in pts], label="voicing false alarm")
    if args.salience_accuracy is not None:
        b.axhline(args.salience_accuracy, color="grey", ls="--", label="salience tracker")
    b.set_xlabel("step")
    b.set_ylim(0, 1)
    b.legend()
    fig.suptitle(f"melody net: {curve['records']} training records, validation {curve['val_records']} dev records")
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("corpus")
    c.add_argument("--out", required=True)
    c.add_argument("--songs", type=int, default=800)
    c.add_argument("--sound", default="train", help="train or wide (humdex.synth.sounds)")
    c.add_argument("--seed", type=int, default=0)
    f = sub.add_parser("features")
    f.add_argument("--corpus", nargs="+", required=True)
    f.add_argument("--out", nargs="+", required=True, help="one features folder per corpus")
    f.add_argument("--dev", nargs="+", default=["data/melody_dev"], help="dev sets (render's --out)")
    f.add_argument("--dev-out", required=True)
    f.add_argument("--dev-songs", type=int, default=30)
    t = sub.add_parser("train")
    t.add_argument("--features", nargs="+", required=True)
    t.add_argument("--val", required=True)
    t.add_argument("--run", required=True)
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--channels", type=int, default=16)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--checkpoint-every", type=int, default=250, help="steps between validations/checkpoints")
    t.add_argument("--init", default=None, help="fine-tune these weights (e.g. the shipped net's)")
    t.add_argument("--timbre-db", type=float, default=0.0, help="augmentation: sd of a gain per harmonic channel")
    t.add_argument("--level-db", type=float, default=0.0, help="augmentation: sd of a gain on the whole input")
    g = sub.add_parser("plot")
    g.add_argument("--run", required=True)
    g.add_argument("--png", required=True)
    g.add_argument("--salience-accuracy", type=float, default=None)
    args = p.parse_args(argv)
    return {"corpus": corpus, "features": features, "train": train, "plot": plot}[args.cmd](args)


if __name__ == "__main__":
    raise SystemExit(main())
