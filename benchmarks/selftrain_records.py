"""Self-training rounds on records: does mining record-like covers help the default search?

    python benchmarks/selftrain_records.py render --out data/st_records/covers --groups 80 \\
        --exclude data/records_train
    humdex selftrain data/records_train data/records_val --groups data/st_records/covers/groups.csv \\
        --out data/st_records/rounds --feature contour --from short --rounds 2 --steps 300 \\
        --eval-every 150 --val-queries 200 --lr 3e-4 --truth data/st_records/covers/songs.csv
    python benchmarks/selftrain_records.py control --rounds data/st_records/rounds --steps 300 \\
        --eval-every 150 --val-queries 200 --lr 3e-4 data/records_train data/records_val
    python benchmarks/selftrain_records.py thresholds --rounds data/st_records/rounds \\
        --covers data/st_records/covers

render: cover groups of TRAIN-split pool melodies as full records (TRAIN sound; an original and
1-2 covers each, in other arrangements, tempi and keys, repeating or skipping phrases; the
renderer's time maps in songs.csv), leaving out melodies the hum corpus already holds; writes
groups.csv for `humdex mine` / `humdex selftrain`.
control: the control for M1: M0 trained as many steps again on the hums + originals alone (no
mined covers), so that M1 - control measures the mined covers, not the extra steps.
thresholds: each round's mining judged against the time maps at the fixed thresholds and at
thresholds calibrated on unrelated pairs (training.mining.null_scores: each group's fragments
against another group's cover, with that round's model), from the scores the round stored
(rejected pairs included), so nothing is mined again.
repeats: how many of the accepted pairs the time maps call wrong sing the same notes as the
fragment elsewhere in the tune (a repeated phrase: a right pair for training).
export: a round's (or the control's) checkpoint as a shippable float16 model file.
retrieval: the table and plot of `humdex eval --report` files named TAG_SET_METHOD.json (each
round's model exported and evaluated like any user's model: `HUMDEX_MODELS=model.pt humdex eval`;
BENCHMARKS.md, "Self-training rounds on records").
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from humdex.synth.cli import _jobs
from humdex.synth.corpus import CorpusConfig, collect_metadata, write_group
from humdex.training.chad import read_metadata
from humdex.training.mining import MineConfig, calibrated, null_scores, read_groups
from humdex.training.selftrain import SelfTrainConfig, mining_quality

SONGS = CorpusConfig(full_songs="all", covers_per_group=(1, 2), queries_per_fragment=(1, 1),
                     songs="records", sound="train")


def _render_one(root: Path, seed: int, index: int) -> None:
    write_group(root, _jobs("train", seed, None)(index), SONGS)


def render(out: Path, groups: int, seed: int, exclude: list[str], workers: int) -> Path:
    """Render the cover groups (resumable per group) and write groups.csv without excluded melodies."""
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_render_one, [out] * groups, [seed] * groups, range(groups)))
    collect_metadata(out)
    taken = {r.melody_id for root in exclude for r in read_metadata(Path(root) / "metadata.csv")}
    songs = [r for r in read_metadata(out / "songs.csv") if r.melody_id not in taken]
    lines = ["group_id,role,path,id"] + [f"{r.group_id},{r.audio_type},songs/{r.group_id}/{r.id}.wav,{r.id}"
                                         for r in songs]
    (out / "groups.csv").write_text("\n".join(lines) + "\n")
    print(f"{len({r.group_id for r in songs})} groups, {len(songs)} songs -> {out / 'groups.csv'}")
    return out / "groups.csv"


def thresholds(rounds: Path, covers: Path, shares: list[float]) -> list[dict]:
    groups = read_groups(covers / "groups.csv")
    base = MineConfig(frames="contour")
    rows = []
    for rdir in sorted(rounds.glob("round[0-9]*"), key=lambda p: int(p.name[5:])):
        model, mined = rdir / "model" / "ckpt.pt", rdir / "mined"
        if not (mined / "metadata.csv").is_file():
            continue
        null = null_scores(groups, str(model), base, rounds / "cache_mine_features")
        row = {"round": rdir.name, "null_pairs": len(null), "fixed": mining_quality(covers / "songs.csv", mined, base)}
        for share in shares:
            tuned = calibrated(replace(base, calibrate=share), null)
            row[f"calibrated_{share}"] = mining_quality(covers / "songs.csv", mined, tuned)
        rows.append(row)
        for key, q in row.items():
            if isinstance(q, dict):
                print(f"{rdir.name} {key:16s} accept >= {q['accept']:.3f}: accepted {q['n_accepted']:4d} of "
                      f"{q['n_pairs']}, precision {q['precision']:.3f}, recall {q['recall']:.3f}, "
                      f"to review {q['review_share']:.3f}")
    (rounds / "thresholds.json").write_text(json.dumps(rows, indent=1))
    return rows


def sounding_pitch(melody, times_s: np.ndarray) -> np.ndarray:
    """MIDI pitch of the note sounding at each score time (NaN in rests and outside the tune)."""
    i = np.searchsorted(melody.onset_s, times_s, side="right") - 1
    j = i.clip(0)
    on = (i >= 0) & (times_s < melody.onset_s[j] + melody.duration_s[j])
    return np.where(on, melody.pitch_midi[j], np.nan)


def same_notes(melody, a_s: float, b_s: float, span_s: float, step_s: float = 0.05) -> float:
    """Share of a 50 ms grid over a span where the tune sounds the same (pitch or rest) around
    score times a_s and b_s."""
    t = np.arange(-span_s / 2, span_s / 2, step_s)
    pa, pb = sounding_pitch(melody, a_s + t), sounding_pitch(melody, b_s + t)
    return float(np.mean((pa == pb) | (np.isnan(pa) & np.isnan(pb))))


def repeats(rounds: Path, covers: Path, accept: float, same: float = 0.9) -> list[dict]:
    from humdex.training.melody_pool import load_pool
    from humdex.training.mining_eval import judge_pair

    tunes = {m.melody_id: m for m in load_pool()}
    songs = {r.id: r for r in read_metadata(covers / "songs.csv")}
    rows = []
    for rdir in sorted(rounds.glob("round[0-9]*"), key=lambda p: int(p.name[5:])):
        mined = read_metadata(rdir / "mined" / "metadata.csv")
        originals = {(r.group_id, r.fragment_id): r for r in mined if r.audio_type == "original"}
        right = repeated = wrong = 0
        for r in mined:
            if r.audio_type != "cover" or (r.correlation or 0.0) < accept:
                continue
            o = originals[r.group_id, r.fragment_id]
            song_o, song_c = songs[Path(o.extra["source"]).stem], songs[Path(r.extra["source"]).stem]
            if judge_pair(song_o.time_map, o.interval, song_c.time_map, r.interval, r.correlation or 0.0).correct:
                right += 1
                continue
            a, b = (float(song_o.time_map.score_at(t)) for t in o.interval)
            mid_c = float(song_c.time_map.score_at(0.5 * (r.interval[0] + r.interval[1])))
            if same_notes(tunes[song_o.melody_id], 0.5 * (a + b), mid_c, b - a) >= same:
                repeated += 1
            else:
                wrong += 1
        n = max(1, right + repeated + wrong)
        rows.append({"round": rdir.name, "accepted": right + repeated + wrong, "right": right,
                     "repeated_phrase": repeated, "wrong": wrong, "precision": round(right / n, 3),
                     "precision_with_repeats": round((right + repeated) / n, 3)})
        print(rows[-1])
    return rows


def control(rounds: Path, hums: list[str], cfg: SelfTrainConfig) -> Path:
    """M0 + cfg.steps more steps on what M0 learned from (resumable): rounds/control1/model/ckpt.pt."""
    import torch

    from humdex.training.selftrain import WITHOUT_COVERS, train_config
    from humdex.training.train import load_mixture, train

    out = rounds / "control1" / "model"
    start = torch.load(rounds / "round0" / "model" / "ckpt.pt", map_location="cpu", weights_only=True)["model"]
    train_g, val_g = load_mixture(hums, None, None, cfg.feature, WITHOUT_COVERS)
    return train(train_g, val_g, train_config(cfg), out, resume=True,
                 init_state=None if (out / "ckpt.pt").is_file() else start)


def retrieval(reports: Path, tags: list[str], plot: Path | None) -> None:
    """Markdown rows top-1 / top-10 / MRR per (set, method) and model tag; a plot of top-10."""
    cells: dict[tuple[str, str], dict[str, tuple[float, float, float]]] = {}
    for tag in tags:
        for path in sorted(reports.glob(f"{tag}_*.json")):
            _, dataset, method = path.stem.split("_")
            m = json.loads(path.read_text())["metrics"]
            cells.setdefault((dataset, method), {})[tag] = (m["Top-1"], m["Top-10"], m["MRR"])
    print("| catalog | method | " + " | ".join(tags) + " |")
    print("|---|---|" + "---|" * len(tags))
    for (dataset, method), row in sorted(cells.items()):
        print(f"| {dataset} | {method} | " + " | ".join(
            "{:.3f} / {:.3f} / {:.3f}".format(*row[t]) if t in row else "" for t in tags) + " |")
    if plot is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for n, ((dataset, method), row) in enumerate(sorted(cells.items())):
        xs = [i for i, t in enumerate(tags) if t in row]
        ax.plot(xs, [row[tags[i]][1] for i in xs], marker="o", label=f"{dataset} {method}",
                linestyle="-" if method == "hybrid" else ":", color=plt.get_cmap("tab20")(n % 20))
    ax.set_xticks(range(len(tags)), tags)
    ax.set(ylabel="top-10", ylim=(0.3, 1.0), title="retrieval per model (dev and held-out catalogs)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(plot, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render")
    r.add_argument("--out", required=True)
    r.add_argument("--groups", type=int, default=80)
    r.add_argument("--seed", type=int, default=31)
    r.add_argument("--exclude", nargs="*", default=[], help="CHAD-layout folders whose melodies are left out")
    r.add_argument("--workers", type=int, default=2)
    c = sub.add_parser("control")
    c.add_argument("hums", nargs="+")
    c.add_argument("--rounds", required=True)
    c.add_argument("--steps", type=int, default=300)
    c.add_argument("--eval-every", type=int, default=150)
    c.add_argument("--val-queries", type=int, default=200)
    c.add_argument("--lr", type=float, default=3e-4)
    c.add_argument("--start", default="short", help="the rounds' --from model (its architecture)")
    t = sub.add_parser("thresholds")
    t.add_argument("--rounds", required=True)
    t.add_argument("--covers", required=True)
    t.add_argument("--shares", type=float, nargs="+", default=[0.02, 0.05])
    r2 = sub.add_parser("repeats")
    r2.add_argument("--rounds", required=True)
    r2.add_argument("--covers", required=True)
    r2.add_argument("--accept", type=float, default=MineConfig().accept)
    x = sub.add_parser("export")
    x.add_argument("--ckpt", required=True)
    x.add_argument("--out", required=True)
    e = sub.add_parser("retrieval")
    e.add_argument("--reports", required=True, help="folder of TAG_SET_METHOD.json eval reports")
    e.add_argument("--tags", nargs="+", required=True)
    e.add_argument("--plot", default=None)
    args = p.parse_args(argv)
    if args.cmd == "render":
        render(Path(args.out), args.groups, args.seed, args.exclude, args.workers)
    elif args.cmd == "control":
        cfg = SelfTrainConfig(feature="contour", start=args.start, steps=args.steps, lr=args.lr,
                              eval_every=args.eval_every, val_queries=args.val_queries)
        print(control(Path(args.rounds), args.hums, cfg))
    elif args.cmd == "repeats":
        repeats(Path(args.rounds), Path(args.covers), args.accept)
    elif args.cmd == "export":
        from humdex.training.train import export_model

        print(export_model(args.ckpt, args.out))
    elif args.cmd == "retrieval":
        retrieval(Path(args.reports), args.tags, Path(args.plot) if args.plot else None)
    else:
        thresholds(Path(args.rounds), Path(args.covers), args.shares)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
