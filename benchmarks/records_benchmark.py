"""Records benchmark: hummed/whistled/sung queries against an audio catalog of rendered records.

The catalog: the 48 MIREX-QBSH songs (mirex_qbsh_db/00001-00048.mid) + distractor melodies from the
melody pool (test split first, then validation, then train), each rendered as a record with the
HELD-OUT sound (humdex.synth.sounds.HELDOUT: TimGM6mb, programs and styles never used in training),
for evaluation only. Queries: the synthesizer's hums, whistles and sung queries of the first
`--targets` songs (the 48 MIREX songs, then distractors), 10 s from anywhere in the song.

Every stage is resumable (files already written are skipped) and may run at low priority:

    nice -n 19 python benchmarks/records_benchmark.py render --out data/records_bench --songs 300
    python benchmarks/records_benchmark.py eval --out data/records_bench --songs 300 --method classical auto

`eval` indexes songs/ with `humdex index` (no flags: the product's default front end) into
OUT/db_N, also the same melodies as MIDI into OUT/db_midi_N, runs `humdex eval` per method and
prints top-1/top-10 per query kind.

`paths` measures the audio paths (issue 15) on an existing catalog's songs and a query list: each
song is indexed again into WORK (timed: songs per minute), once on the mix (contour: `--separate none`) and once
with `--separate spleeter`, and `humdex eval` runs per path and method with the path's
environment (PATHS); the CQT and CREPE-activation stores join the contour catalog's folder:

    nice -n 10 python benchmarks/records_benchmark.py paths --db data/melody_dev/db \
        --queries data/melody_dev/dev_queries.tsv --work data/paths_dev --paths contour cqt spleeter activation
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

MIREX_DB = Path("/work/shared/data/mirex_qbsh_db")
KINDS = ("hum", "whistle", "sing")


def catalog_melodies(n_songs: int, seed: int) -> list[tuple[str, object]]:
    """[(song id, Score)]: the 48 MIREX songs, then pool distractors of >= 15 s, in a fixed order."""
    from humdex.frontend.melody import read_melody
    from humdex.synth.score import Score
    from humdex.training.melody_pool import load_pool

    out: list[tuple[str, object]] = []
    for k in range(1, 49):
        out.append((f"mirex{k:05d}", Score.from_notes(read_melody(MIREX_DB / f"{k:05d}.mid"))))
    for split in ("test", "validation", "train"):
        pool = load_pool(split)
        order = np.random.default_rng([seed, len(split)]).permutation(len(pool))
        for i in order:
            if len(out) >= n_songs:
                return out
            m = pool[int(i)]
            if len(m.onset_s) < 12 or m.onset_s[-1] < 15.0:
                continue
            out.append((f"{split[:2]}{int(i):05d}", Score(np.asarray(m.onset_s), np.asarray(m.duration_s),
                                                           np.asarray(m.pitch_midi))))  # fmt: skip
    return out[:n_songs]


def render(args: argparse.Namespace) -> int:
    from humdex.synth.benchmark import QueryPlan, query_from_score
    from humdex.synth.records import render_record
    from humdex.synth.sounds import get_sound
    from humdex.training.chad import write_wav

    sound = get_sound(args.sound)
    out = Path(args.out)
    melodies = catalog_melodies(args.songs, args.seed)
    t0, fresh = time.perf_counter(), 0
    shard, n_shards = (int(x) for x in args.shard.split("/"))
    for n, (song_id, score) in enumerate(melodies):
        if n % n_shards != shard:
            continue
        wav = out / "songs" / f"{song_id}.wav"
        if not wav.is_file():
            rec = render_record(score, np.random.default_rng([args.seed, n, 1]), sound, "original")
            write_wav(wav, rec.audio, rec.sample_rate)  # atomic: a partial file never exists
            (out / "info").mkdir(parents=True, exist_ok=True)
            (out / "info" / f"{song_id}.json").write_text(json.dumps(rec.info))
            fresh += 1
        mid = out / "midi" / f"{song_id}.mid"
        if not mid.is_file():
            write_score_midi(score, mid)
        if n < args.targets:
            for kind in KINDS:
                for k in range(args.per_kind):
                    q = out / "queries" / f"{song_id}_{kind}{k}.wav"
                    if q.is_file():
                        continue
                    plan = QueryPlan(duration_s=args.duration, from_start=False)
                    rend = query_from_score(score, kind, np.random.default_rng([args.seed, n, 2, KINDS.index(kind), k]), plan)
                    write_wav(q, rend.audio, rend.sample_rate)
        if fresh and fresh % 25 == 0:
            print(f"{n + 1}/{len(melodies)} songs, {fresh} rendered, {time.perf_counter() - t0:.0f} s", flush=True)
    lines = [f"queries/{sid}_{kind}{k}.wav\t{sid}" for sid, _ in melodies[: args.targets] for kind in KINDS
             for k in range(args.per_kind)]  # fmt: skip
    (out / f"queries_{args.targets}.tsv").write_text("\n".join(lines) + "\n")
    print(f"{len(melodies)} songs ({fresh} rendered now in {time.perf_counter() - t0:.0f} s), {len(lines)} queries -> {out}")
    return 0


def write_score_midi(score: object, path: Path) -> None:
    from humdex.synth.fluid import Part, write_midi

    notes = np.stack([score.onset_s, score.offset_s, np.round(score.pitch_midi), np.full(len(score), 100.0)], axis=1)  # type: ignore[attr-defined]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mid")
    write_midi([Part("melody", notes, 0)], tmp)
    tmp.replace(path)


def humdex(*argv: str) -> None:
    subprocess.run([sys.executable, "-m", "humdex", *argv], check=True)


def evaluate(args: argparse.Namespace) -> int:
    out = Path(args.out)
    ids = [sid for sid, _ in catalog_melodies(args.songs, args.seed)]
    missing = [s for s in ids if not (out / "songs" / f"{s}.wav").is_file()]
    if missing:
        print(f"{len(missing)} of {len(ids)} songs not rendered yet; run `render` first", file=sys.stderr)
        return 2
    queries = out / f"queries_{args.targets}.tsv"
    rows = []
    for catalog in args.catalogs:
        db = out / f"db_{catalog}_{args.songs}"
        folder = "songs" if catalog == "audio" else "midi"
        suffix = "wav" if catalog == "audio" else "mid"
        if not (db / "done").is_file():
            t0 = time.perf_counter()  # song id = file stem
            humdex("index", *[str(out / folder / f"{s}.{suffix}") for s in ids], "--db", str(db), "--quiet")
            (db / "done").write_text(f"{time.perf_counter() - t0:.1f} s to index {len(ids)} songs\n")
        for method in args.method:
            report = out / f"report_{catalog}_{args.songs}_{method}.json"
            if not report.is_file():
                humdex("eval", "--db", str(db), "--queries", str(queries), "--method", method, "--anywhere",
                       "--report", str(report), "--quiet")  # fmt: skip
            rows += summarise(catalog, method, json.loads(report.read_text()))
    print(f"\n{args.songs} songs ({catalog_note(out, args.songs)}), queries: {queries.name}\n")
    print("| catalog | method | query kind | n | top-1 | top-10 | MRR |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")
    return 0


def catalog_note(out: Path, n: int) -> str:
    done = [out / f"db_{c}_{n}" / "done" for c in ("audio", "midi")]
    return "; ".join(f"{p.parent.name}: {p.read_text().strip()}" for p in done if p.is_file())


def summarise(catalog: str, method: str, report: dict) -> list[tuple]:
    by_kind: dict[str, list] = defaultdict(list)
    for q in report["queries"]:
        kind = Path(q["query"]).stem.split("_")[-1].rstrip("0123456789")
        by_kind[kind].append(q["rank"])
        by_kind["all"].append(q["rank"])
    rows = []
    for kind in (*KINDS, "all"):
        ranks = by_kind.get(kind, [])
        if not ranks:
            continue
        top1 = np.mean([r is not None and r <= 1 for r in ranks])
        top10 = np.mean([r is not None and r <= 10 for r in ranks])
        mrr = np.mean([1.0 / r if r else 0.0 for r in ranks])
        rows.append((catalog, method, kind, len(ranks), f"{top1:.3f}", f"{top10:.3f}", f"{mrr:.3f}"))
    return rows


# path -> (the catalog it searches: "contour" or "spleeter", its environment for `humdex eval`)
PATHS: dict[str, tuple[str, dict[str, str]]] = {
    "contour": ("contour", {}),  # the default: the song tracker's melody as a pseudo-activation
    "cqt": ("contour", {"HUMDEX_MODELS": "cqt"}),  # the shipped CQT encoder on the audio's CQT
    "activation": ("contour", {"HUMDEX_AUDIO_SONGS": "activation", "HUMDEX_QUERY_INPUT": "crepe"}),
    "spleeter": ("spleeter", {}),  # vocal stem tracked (mix fallback), then the default model
    "both": ("both", {}),  # the stem's melody then the mix's (the default since the paths table)
}
INDEX_FLAGS = {"contour": ["--separate", "none"], "spleeter": ["--separate", "spleeter"],
               "both": ["--separate", "both"]}


def path_methods(path: str, methods: list[str]) -> list[str]:
    """The methods a path is measured with: the classical matcher only on a catalog of its own (the
    CQT and activation paths change the learned search alone: their classical rows are contour's)."""
    own = PATHS[path][0] == path
    return [m for m in methods if m != "classical" or own]


def catalog_songs(db: Path) -> list[str]:
    """The audio files of a catalog's songs, in its order (the catalog names each song's source)."""
    songs = json.loads((db / "catalog.json").read_text())["songs"]
    return [s["source"] for s in songs]


def timed_index(files: list[str], db: Path, flags: list[str]) -> dict:
    """`humdex index FILES --db DB FLAGS` once (a `done.json` marks it): wall and CPU seconds."""
    done = db / "done.json"
    if done.is_file():
        return json.loads(done.read_text())
    cpu0, load0, t0 = _children_cpu(), os.getloadavg()[0], time.perf_counter()
    humdex("index", *files, "--db", str(db), "--quiet", *flags)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    info = {"songs": len(files), "flags": flags, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "load_before": load0, "load_after": os.getloadavg()[0]}
    done.write_text(json.dumps(info))
    return info


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def kind_row(report: dict) -> dict[str, float]:
    """Per query kind top-1/top-10, and over all queries top-1/top-10/MRR, from an eval report."""
    cells = {}
    for _, _, kind, _, top1, top10, mrr in summarise("", "", report):
        cells[f"{kind} top-1"], cells[f"{kind} top-10"] = float(top1), float(top10)
        if kind == "all":
            cells["MRR"] = float(mrr)
    return cells


def lead_split(report: dict, info_dir: Path) -> dict[str, tuple[int, float, float]]:
    """Top-10 and MRR of the queries by their song's lead (the renderer's info file: "sung lead"
    or "instrument lead"): {lead: (queries, top-10, MRR)}."""
    ranks: dict[str, list] = defaultdict(list)
    for q in report["queries"]:
        info = json.loads((info_dir / f"{q['song_id']}.json").read_text())
        ranks["sung lead" if str(info["lead"]).startswith("vocal") else "instrument lead"].append(q["rank"])
    return {lead: (len(r), float(np.mean([x is not None and x <= 10 for x in r])),
                   float(np.mean([1.0 / x if x else 0.0 for x in r]))) for lead, r in sorted(ranks.items())}


def format_row(path: str, method: str, cells: dict[str, float]) -> str:
    """One markdown row: hum, whistle, sung top-1 / top-10, then all top-1 / top-10 / MRR."""
    pair = [f"{cells.get(f'{k} top-1', float('nan')):.3f} / {cells.get(f'{k} top-10', float('nan')):.3f}"
            for k in KINDS]
    every = f"{cells['all top-1']:.3f} / {cells['all top-10']:.3f} / {cells['MRR']:.3f}"
    return f"| {path} | {method} | " + " | ".join(pair) + f" | {every} |"


def paths(args: argparse.Namespace) -> int:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    files = catalog_songs(Path(args.db))
    speeds, rows, leads = {}, [], []
    for path in args.paths:
        catalog, env = PATHS[path]
        db = work / f"db_{catalog}"
        speeds[catalog] = timed_index(files, db, INDEX_FLAGS[catalog])
        for method in path_methods(path, args.methods):
            report = work / f"report_{path}_{method}.json"
            if not report.is_file():
                subprocess.run([sys.executable, "-m", "humdex", "eval", "--db", str(db), "--queries",
                                args.queries, "--method", method, "--anywhere", "--report", str(report),
                                "--quiet"], check=True, env={**os.environ, **env})  # fmt: skip
            got = json.loads(report.read_text())
            rows.append(format_row(path, method, kind_row(got)))
            if args.info:
                split = lead_split(got, Path(args.info))
                leads.append(f"| {path} | {method} | " + " | ".join(
                    f"{lead} ({n}): {top10:.3f} / {mrr:.3f}" for lead, (n, top10, mrr) in split.items()) + " |")
    print(f"\n{len(files)} songs of {args.db}, queries {args.queries}\n")
    print("| path | method | hum top-1 / top-10 | whistle top-1 / top-10 | sung top-1 / top-10 | "
          "all top-1 / top-10 / MRR |\n|---|---|---|---|---|---|")
    print("\n".join(rows))
    if leads:
        print("\n| path | method | top-10 / MRR by the song's lead |\n|---|---|---|\n" + "\n".join(leads))
    print("\n| catalog | songs | wall s | CPU s | songs per minute (wall / CPU) | load average before / after |")
    print("|---|---|---|---|---|---|")
    for catalog, s in speeds.items():
        print(f"| {catalog} | {s['songs']} | {s['wall_s']} | {s['cpu_s']} | {60 * s['songs'] / s['wall_s']:.0f} / "
              f"{60 * s['songs'] / max(s['cpu_s'], 1e-9):.0f} | {s['load_before']:.1f} / {s['load_after']:.1f} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = p.add_subparsers(dest="stage", required=True)
    for name in ("render", "eval"):
        s = sub.add_parser(name)
        s.add_argument("--out", required=True)
        s.add_argument("--songs", type=int, default=300, help="catalog size (48 MIREX songs + distractors)")
        s.add_argument("--targets", type=int, default=100, help="songs with queries (the MIREX 48 first)")
        s.add_argument("--seed", type=int, default=15)
    r = sub.choices["render"]
    r.add_argument("--sound", default="heldout")
    r.add_argument("--shard", default="0/1", help="K/N: render songs K, K+N, ... (N processes side by side)")
    r.add_argument("--per-kind", type=int, default=1, help="queries per target song and kind")
    r.add_argument("--duration", type=float, default=10.0)
    e = sub.choices["eval"]
    e.add_argument("--method", nargs="+", default=["classical", "auto"])
    e.add_argument("--catalogs", nargs="+", default=["audio", "midi"])
    a = sub.add_parser("paths", help="the audio paths (contour, cqt, activation, spleeter) on one catalog's songs")
    a.add_argument("--db", required=True, help="a catalog of audio songs (read only: its songs are indexed anew)")
    a.add_argument("--queries", required=True)
    a.add_argument("--work", required=True, help="folder for the new catalogs and the reports")
    a.add_argument("--paths", nargs="+", choices=list(PATHS), default=list(PATHS))
    a.add_argument("--methods", nargs="+", default=["learned", "auto", "classical"])
    a.add_argument("--info", help="the renders' info folder: also top-10 and MRR by the song's lead (sung or instrument)")
    args = p.parse_args(argv)
    if args.stage == "paths":
        return paths(args)
    return render(args) if args.stage == "render" else evaluate(args)


if __name__ == "__main__":
    raise SystemExit(main())
