"""Mining quality against the renderer's true time maps: precision/recall of accepted fragments,
interval errors, the share sent to review, and a precision-vs-yield curve as the threshold moves.

Usage: python benchmarks/mining_quality.py [--groups 30] [--seed 11] [--work /tmp/mining_bench]
       [--model M.pt] [--separate none|spleeter] [--workers 1] [--plot docs/mining_precision_yield.png]
Renders `--groups` synthetic songs with 1-2 covers each (full songs, covers repeat/skip phrases;
`humdex synth corpus --full-songs all`), writes GROUPS.csv, runs `humdex mine` (training.mining)
and judges every (original fragment, cover) pair with training.mining_eval. Resumable: the
corpus, the features and the mined groups are kept under --work.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from humdex.training.chad import read_metadata
from humdex.training.mining import MineConfig, mine, read_groups
from humdex.training.mining_eval import judge_pair, precision_yield, quality


def render_corpus(root: Path, n_groups: int, seed: int, split: str = "validation", songs: str = "synth") -> None:
    """n_groups synthetic songs with covers as full songs under root/songs (+ songs.csv)."""
    from humdex.synth.cli import _jobs
    from humdex.synth.corpus import CorpusConfig, collect_metadata, write_group

    jobs = _jobs(split, seed, None)
    config = CorpusConfig(full_songs="all", covers_per_group=(1, 2), queries_per_fragment=(1, 1),
                          songs=songs, sound="heldout")
    for i in range(n_groups):
        write_group(root, jobs(i), config)
    collect_metadata(root)


def write_groups_csv(root: Path) -> Path:
    """GROUPS.csv of the corpus's full songs (the original and its covers per group)."""
    lines = ["group_id,role,path,id"]
    for r in read_metadata(root / "songs.csv"):
        lines.append(f"{r.group_id},{r.audio_type},songs/{r.group_id}/{r.id}.wav,{r.id}")
    path = root / "groups.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def judge_mined(corpus: Path, mined: Path, group_ids: set[str] | None = None, by: str = "correlation") -> list:
    """Judged pairs; their score is the row's correlation, or its peak margin (by="margin")."""
    maps = {r.id: r.time_map for r in read_metadata(corpus / "songs.csv")}
    rows = read_metadata(mined / "metadata.csv")
    originals = {(r.group_id, r.fragment_id): r for r in rows if r.audio_type == "original"}
    judged = []
    for r in rows:
        if r.audio_type != "cover" or (group_ids is not None and r.group_id not in group_ids):
            continue
        o = originals[r.group_id, r.fragment_id]
        omap = maps[Path(o.extra["source"]).stem]
        cmap = maps[Path(r.extra["source"]).stem]
        score = float(r.extra.get("margin") or 0.0) if by == "margin" else (r.correlation or 0.0)
        judged.append(judge_pair(omap, o.interval, cmap, r.interval, score))
    return judged


def plot(curves: dict[str, list], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, curve in curves.items():
        rec = [c[2] for c in curve]
        prec = [c[1] for c in curve]
        ax.plot(rec, prec, marker=".", label=label)
        for t, p, r, _ in curve[::4]:
            if np.isfinite(p):
                ax.annotate(f"{t:.2f}", (r, p), fontsize=7)
    ax.set(xlabel="recall (yield of alignable pairs)", ylabel="precision of accepted",
           xlim=(0, 1), ylim=(0, 1.02), title="mining: precision vs yield (labels: accept threshold)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--groups", type=int, default=30)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--work", default="/tmp/mining_bench")
    p.add_argument("--model", default=None)
    p.add_argument("--separate", default="none", choices=("none", "spleeter", "both"))
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--accept", type=float, default=MineConfig().accept)
    p.add_argument("--review", type=float, default=MineConfig().review)
    p.add_argument("--plot", default=None)
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--corpus", default=None, help="cover songs already rendered (songs.csv + groups.csv)")
    p.add_argument("--tag", default="", help="suffix of the mined folder's name")
    p.add_argument("--songs", default="synth", choices=("synth", "records"),
                   help="cover songs rendered by the synth voice + band, or as records (held-out sound)")
    args = p.parse_args(argv)
    work = Path(args.work)
    corpus = Path(args.corpus) if args.corpus else work / "corpus"
    t0 = time.perf_counter()
    if not (corpus / "songs.csv").is_file() or len(read_metadata(corpus / "songs.csv")) == 0:
        render_corpus(corpus, args.groups, args.seed, songs=args.songs)
    groups = read_groups(write_groups_csv(corpus))[: args.groups]
    print(f"{len(groups)} groups, {sum(len(g.covers) for g in groups)} covers "
          f"(rendered in {time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    modes = ("none", "spleeter") if args.separate == "both" else (args.separate,)
    curves, results = {}, {}
    thresholds = np.round(np.arange(0.3, 0.86, 0.025), 3)
    for mode in modes:
        mined = work / (f"mined_{mode}" + ("" if args.model is None else f"_{Path(args.model).stem}") + args.tag)
        t1 = time.process_time()
        w1 = time.perf_counter()
        config = MineConfig(separate=mode)
        report = mine(groups, args.model, mined, config, args.workers, cache=work / "cache", progress=False)
        cpu, wall = time.process_time() - t1, time.perf_counter() - w1
        judged = judge_mined(corpus, mined, {g.group_id for g in groups})
        q = quality(judged, args.accept, args.review)
        curve = precision_yield(judged, thresholds)
        label = f"separate={mode}"
        curves[label] = curve
        results[label] = {"quality": q.__dict__, "curve": curve, "mine_wall_s": round(wall, 1),
                          "mine_cpu_s_main": round(cpu, 1), "report": report.summary()}
        print(f"\n{label}: {report.summary()}; mining wall {wall:.0f} s")
        print(f"  accept >= {q.accept}, review [{q.review}, {q.accept}): pairs {q.n_pairs}, "
              f"alignable {q.n_alignable}, accepted {q.n_accepted}")
        print(f"  precision {q.precision:.3f} recall {q.recall:.3f} review share {q.review_share:.3f}")
        print(f"  interval error (accepted, right) start median {q.start_error_median_s:.3f} s "
              f"p95 {q.start_error_p95_s:.3f} s; end median {q.end_error_median_s:.3f} s "
              f"p95 {q.end_error_p95_s:.3f} s")
        print("  threshold precision recall accepted")
        for t, pr, rc, n in curve[::2]:
            print(f"  {t:9.3f} {pr:9.3f} {rc:6.3f} {n:8d}")
        by_margin = judge_mined(corpus, mined, {g.group_id for g in groups}, by="margin")
        margin_curve = precision_yield(by_margin, np.round(np.arange(0.0, 0.42, 0.03), 3))
        results[label]["margin_curve"] = margin_curve
        print("  peak margin >= : precision recall accepted")
        for t, pr, rc, n in margin_curve:
            print(f"  {t:9.3f} {pr:9.3f} {rc:6.3f} {n:8d}")
    if args.plot:
        plot(curves, Path(args.plot))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
