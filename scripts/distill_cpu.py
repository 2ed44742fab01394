"""Distil a shipped encoder into a narrower one on a CPU: the student learns the teacher's fingerprints.

The query's embedding (~230 windows at 7 tempo scales) is the largest stage of a search; a
student of base width 16 costs about a quarter of a width-32 teacher's multiply-adds. Each step
draws a K-group batch of augmented windows of performed pitch (as train_cpu_pseudo.py) and
minimises 1 - cos(student, teacher) per window, plus the group contrastive loss on the student
(weight --contrastive) so its own neighbourhoods stay tight. Validation: the same retrieval
metrics as training, the teacher's on the same queries logged first.

    HUMDEX_THREADS=1 python scripts/distill_cpu.py --teacher short --width 16 --minutes 50 \
        --out runs/distill16 --export runs/distill16/encoder.pt
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", default="short", help="shipped model name or .pt")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--minutes", type=float, default=50.0)
    p.add_argument("--melodies", type=int, default=200, help="~40 MB of activations each, in memory")
    p.add_argument("--val-melodies", type=int, default=40)
    p.add_argument("--performances", type=int, default=4)
    p.add_argument("--k-groups", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--contrastive", type=float, default=0.1, help="weight of the student's own loss")
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--out", required=True)
    p.add_argument("--export", default=None)
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(ROOT / "scripts"))
    import torch
    from tqdm import tqdm
    from train_cpu_pseudo import performed_groups

    from humdex.learned.model import Encoder, load_model, save_checkpoint
    from humdex.training.data import AugmentConfig, Bank, sample_batch
    from humdex.training.loss import group_contrastive_loss
    from humdex.training.melody_pool import load_pool
    from humdex.training.train import lr_at, plot_curves, retrieval_metrics

    torch.set_num_threads(1)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    tr, va = load_pool("train"), load_pool("validation")
    tr = [tr[i] for i in rng.permutation(len(tr))[: args.melodies]]
    va = [va[i] for i in rng.permutation(len(va))[: args.val_melodies]]
    train_groups, val_groups = performed_groups(tr, args.performances, 1), performed_groups(va, args.performances, 2)
    teacher = load_model(args.teacher if args.teacher.endswith(".pt") else None, name=args.teacher)
    from dataclasses import replace

    student = Encoder(replace(teacher.config, base_channels=args.width))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    metrics: list[dict] = [{"step": 0, **{f"val_teacher_{k}": v for k, v in
                                          retrieval_metrics(teacher, val_groups, max_queries=None).items()}}]
    print(json.dumps(metrics[0]), flush=True)
    bank = Bank(train_groups)
    opt = torch.optim.AdamW(student.parameters(), lr=args.lr, weight_decay=0.05)
    aug, spec = AugmentConfig(), teacher.config.window
    budget_s, elapsed, step = args.minutes * 60, 0.0, 0
    bar = tqdm(desc="distil", mininterval=10)
    while elapsed < budget_s:
        t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = lr_at(elapsed / budget_s, args.lr, 0.02)
        x, labels = sample_batch(bank, spec, args.k_groups, 4, rng, aug)
        with torch.no_grad():
            target = teacher(x)
        student.train()
        z = student(x)
        mimic = (1.0 - (z * target).sum(dim=1)).mean()
        loss = mimic + args.contrastive * group_contrastive_loss(z, labels, reduction="mean")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        elapsed += time.perf_counter() - t0
        metrics.append({"step": step, "loss": loss.item(), "mimic": mimic.item(), "elapsed_s": round(elapsed, 1)})
        bar.update(1)
        if step % args.eval_every == 0 or elapsed >= budget_s:
            student.eval()
            row = {"step": step, **{f"val_{k}": v for k, v in
                                    retrieval_metrics(student, val_groups, max_queries=None).items()}}
            metrics.append(row)
            print(json.dumps(row), f"mimic {mimic.item():.4f}", flush=True)
            save_checkpoint(out / "student.pt", student, half=False, step=step, metrics=row)
    bar.close()
    (out / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    plot_curves(metrics, out / "curves.png")
    if args.export:
        save_checkpoint(args.export, student.eval(), half=True, step=step, metrics=metrics[-1])
        print(f"model: {args.export}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
