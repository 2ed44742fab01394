"""Calibrate the "no match" score threshold: sung queries of songs in the catalog vs not in it.

    python benchmarks/no_match_calibration.py [--songs ../shared/data/mirex_qbsh_db] \
        [--held-out 300] [--queries 200] [--work out/no_match] [--fa-target 0.05]

A folder of MIDI songs is split (seeded) into a catalog and held-out songs. Each query is a
synthesized person (humdex.synth.render.render_query: hum, sing or whistle, any key and tempo,
singing errors, phone channel) performing an 8-12 s passage of a catalog song ("in") or of a
held-out song ("out"), pitch-tracked and searched exactly as `humdex search` does. Results are
appended to a JSONL file, so an interrupted run resumes.

The threshold is chosen on the even-numbered queries (the smallest score whose false-accept rate
on "out" queries is <= --fa-target) and reported on the odd-numbered ones: false accept = an
"out" query whose best score reaches the threshold; false reject = an "in" query below it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]


def split_songs(files: list[Path], held_out: int, catalog_size: int | None,
                seed: int) -> tuple[list[Path], list[Path]]:
    """(catalog files, held-out files), a seeded random split of `files`."""
    order = np.random.default_rng(seed).permutation(len(files))
    out = [files[i] for i in order[:held_out]]
    inside = [files[i] for i in order[held_out:]]
    if catalog_size is not None:
        inside = inside[:catalog_size]
    return sorted(inside), sorted(out)


def run_query(path: Path, index: int, seed: int, snapshot: object) -> dict:
    """Render, pitch-track and search one query of the song in `path`; a JSON-friendly record."""
    from humdex.demo import excerpt
    from humdex.errors import HumdexError
    from humdex.melody import read_midi
    from humdex.search import query_from_audio, search
    from humdex.synth.render import render_query

    rng = np.random.default_rng([seed, index])
    passage, start_s = excerpt(read_midi(path), rng)
    rendition = render_query(passage, rng)
    record = {"song": path.stem, "kind": rendition.kind, "start_s": round(start_s, 2),
              "duration_s": round(rendition.duration_s, 2)}
    try:
        query = query_from_audio(rendition.audio, rendition.sample_rate, f"q{index}")
    except HumdexError as err:
        return {**record, "error": str(err)}
    result = search(query, snapshot, top=10)
    ids = [h.song_id for h in result.hits]
    return {**record, "best": ids[0], "best_score": result.hits[0].score,
            "scores": [round(h.score, 4) for h in result.hits],
            "rank": ids.index(path.stem) + 1 if path.stem in ids else None,
            "ms": round(result.timing_ms["total"], 1)}


def choose_threshold(out_scores: np.ndarray, fa_target: float) -> float:
    """The smallest threshold t with mean(out_scores >= t) <= fa_target."""
    candidates = np.unique(np.concatenate([out_scores, [1.0 + 1e-6]]))
    for t in candidates:
        if np.mean(out_scores >= t) <= fa_target:
            return float(t)
    return float(candidates[-1])


def rates(in_scores: np.ndarray, in_top1: np.ndarray, out_scores: np.ndarray, t: float) -> dict:
    accepted = in_scores >= t
    return {"threshold": round(t, 4), "n_in": len(in_scores), "n_out": len(out_scores),
            "false_accept": round(float(np.mean(out_scores >= t)), 4),
            "false_reject": round(float(np.mean(~accepted)), 4),
            "accepted_right_song": round(float(np.mean(accepted & in_top1)), 4),
            "accepted_wrong_song": round(float(np.mean(accepted & ~in_top1)), 4)}


def equal_error(in_scores: np.ndarray, out_scores: np.ndarray) -> tuple[float, float]:
    """(threshold, rate) where false accept and false reject are closest."""
    grid = np.linspace(0, 1, 1001)
    fa = np.array([np.mean(out_scores >= t) for t in grid])
    fr = np.array([np.mean(in_scores < t) for t in grid])
    k = int(np.argmin(np.abs(fa - fr)))
    return float(grid[k]), float((fa[k] + fr[k]) / 2)


def analyse(records: list[dict], fa_target: float) -> dict:
    ok = [r for r in records if "error" not in r]

    def arrays(part: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sel = [r for r in ok if part < 0 or r["index"] % 2 == part]
        ins = [r for r in sel if r["set"] == "in"]
        return (np.array([r["best_score"] for r in ins]), np.array([r["rank"] == 1 for r in ins]),
                np.array([r["best_score"] for r in sel if r["set"] == "out"]))

    cal_in, _, cal_out = arrays(0)
    t = choose_threshold(cal_out, fa_target)
    test_in, test_top1, test_out = arrays(1)
    all_in, all_top1, all_out = arrays(-1)
    eer_t, eer = equal_error(all_in, all_out)
    sweep = [rates(all_in, all_top1, all_out, float(x)) for x in np.arange(0.3, 0.91, 0.05)]
    return {
        "threshold": round(t, 4), "fa_target": fa_target,
        "calibration": rates(cal_in, arrays(0)[1], cal_out, t),
        "test": rates(test_in, test_top1, test_out, t),
        "equal_error": {"threshold": round(eer_t, 3), "rate": round(eer, 4)},
        "top1_in_catalog": round(float(np.mean(all_top1)), 4),
        "errors": len(records) - len(ok), "sweep_all_queries": sweep,
        "score_quantiles": {name: [round(float(np.quantile(s, q)), 3) for q in (0.05, 0.5, 0.95)]
                            for name, s in (("in", all_in), ("out", all_out))},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--songs", type=Path, default=REPO.parent / "shared/data/mirex_qbsh_db",
                   help="folder of MIDI songs (default ../shared/data/mirex_qbsh_db)")
    p.add_argument("--held-out", type=int, default=300, help="songs kept out of the catalog")
    p.add_argument("--catalog-size", type=int, default=None, help="use only this many songs")
    p.add_argument("--queries", type=int, default=200, help="queries of each set (in, out)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fa-target", type=float, default=0.05)
    p.add_argument("--work", type=Path, default=REPO / "out/no_match")
    p.add_argument("--json", type=Path, help="write the report here as JSON")
    args = p.parse_args(argv)

    from humdex.catalog import Catalog

    files = sorted(args.songs.glob("*.mid"))
    if not files:
        print(f"no MIDI files in {args.songs}", file=sys.stderr)
        return 2
    inside, outside = split_songs(files, args.held_out, args.catalog_size, args.seed)
    tag = f"{args.songs.name}-s{args.seed}-h{args.held_out}-c{len(inside)}"
    work = args.work / tag
    started = time.perf_counter()
    catalog = Catalog.open(work / "catalog", create=True)
    if len(catalog) != len(inside):
        catalog.add_files(inside, progress=True)
    print(f"catalog: {len(catalog)} songs ({time.perf_counter() - started:.0f} s); "
          f"held out: {len(outside)}")
    snapshot = catalog.snapshot()
    rng = np.random.default_rng(args.seed + 1)
    plan = [("in", inside[i]) for i in rng.choice(len(inside), args.queries, replace=False)]
    plan += [("out", outside[i % len(outside)]) for i in rng.permutation(args.queries)]
    log = work / f"queries-{args.queries}.jsonl"
    done = {json.loads(line)["index"]: json.loads(line) for line in log.open()} if log.exists() else {}
    with log.open("a") as f:
        for index, (which, path) in enumerate(tqdm(plan, desc="queries", unit="query")):
            if index in done:
                continue
            record = {"index": index, "set": which, **run_query(path, index, args.seed, snapshot)}
            f.write(json.dumps(record) + "\n")
            f.flush()
            done[index] = record
    report = {"songs": str(args.songs), "catalog_songs": len(inside), "held_out": len(outside),
              "queries": args.queries, "seed": args.seed,
              **analyse([done[i] for i in sorted(done)], args.fa_target)}
    print(json.dumps({k: v for k, v in report.items() if k != "sweep_all_queries"}, indent=1))
    print("threshold  FA     FR     accepted-right  accepted-wrong   (all queries)")
    for row in report["sweep_all_queries"]:
        print(f"{row['threshold']:9.2f}  {row['false_accept']:.3f}  {row['false_reject']:.3f}  "
              f"{row['accepted_right_song']:.3f}           {row['accepted_wrong_song']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
