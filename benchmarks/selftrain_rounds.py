"""Self-training rounds on the CPU, small: does training on mined covers help hums find originals?

Usage: python benchmarks/selftrain_rounds.py [--work /tmp/selftrain_bench] [--hum-groups 40]
       [--val-groups 15] [--cover-groups 20] [--steps 150] [--width 8] [--rounds 2]
       [--plot docs/selftrain_rounds.png]
Renders (synthetic, humdex.synth): a hum corpus (train melodies: hums + originals + covers,
covers left out of training), a validation corpus (validation melodies: its hums are the
retrieval queries, its originals the references) and cover groups (other train melodies, full
songs with 1-2 covers that repeat/skip phrases, the renderer's time maps kept for judging).
Then `humdex selftrain` (training.selftrain): M0 .. M_rounds, each judged on validation
retrieval (top-1/top-10 of hums among originals) and on its mining precision/recall.
Resumable: everything is kept under --work.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from humdex.synth.cli import _jobs
from humdex.synth.corpus import CorpusConfig, collect_metadata, write_group
from humdex.training.chad import read_metadata
from humdex.training.mining import MineConfig
from humdex.training.selftrain import SelfTrainConfig, selftrain


def render(root: Path, split: str, seed: int, n: int, config: CorpusConfig) -> None:
    if (root / "metadata.csv").is_file():
        return
    jobs = _jobs(split, seed, None)
    for i in range(n):
        write_group(root, jobs(i), config)
    collect_metadata(root)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default="/tmp/selftrain_bench")
    p.add_argument("--hum-groups", type=int, default=40)
    p.add_argument("--val-groups", type=int, default=15)
    p.add_argument("--cover-groups", type=int, default=20)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--k-groups", type=int, default=16)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--accept", type=float, default=MineConfig().accept)
    p.add_argument("--plot", default=None)
    args = p.parse_args(argv)
    work = Path(args.work)
    t0 = time.perf_counter()
    render(work / "hums", "train", 21, args.hum_groups, CorpusConfig(full_songs="none"))
    render(work / "val", "validation", 22, args.val_groups, CorpusConfig(full_songs="none"))
    covers = work / "covers"
    render(covers, "train", 23, args.cover_groups,
           CorpusConfig(full_songs="all", covers_per_group=(1, 2), queries_per_fragment=(1, 1)))
    lines = ["group_id,role,path,id"] + [f"{r.group_id},{r.audio_type},songs/{r.group_id}/{r.id}.wav,{r.id}"
                                         for r in read_metadata(covers / "songs.csv")]
    (covers / "groups.csv").write_text("\n".join(lines) + "\n")
    print(f"rendered in {time.perf_counter() - t0:.0f} s")
    cfg = SelfTrainConfig(rounds=args.rounds, steps=args.steps, width=args.width, k_groups=args.k_groups,
                          eval_every=max(1, args.steps // 3),
                          mine=MineConfig(accept=args.accept))
    rows = selftrain([str(work / "hums"), str(work / "val")], covers / "groups.csv", work / "rounds",
                     cfg, truth=covers / "songs.csv")
    print("round  val_top1 val_top10  mined(accepted/uncertain/rejected)  precision recall  "
          "train_cpu_s mine_cpu_s")
    for r in rows:
        v, m, q = r["val"], r["mined"], r["mining_quality"]
        print(f"M{r['round']}    {v.get('val_top1', float('nan')):8.3f} {v.get('val_top10', float('nan')):9.3f}  "
              f"{m.get('accepted', 0)}/{m.get('uncertain', 0)}/{m.get('rejected', 0):<27} "
              f"{q['precision']:9.3f} {q['recall']:6.3f}  {r['train_cpu_s']:11.0f} {r['mine_cpu_s']:10.0f}")
    if args.plot:
        shutil.copy(work / "rounds" / "rounds.png", args.plot)
    print(json.dumps({"total_wall_s": round(time.perf_counter() - t0)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
