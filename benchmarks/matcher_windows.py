"""Latency of the classical matcher's DTW trying more or fewer stage-1 windows and songs, in one process.

Each query is searched by the product's `search` (method classical or hybrid) once per setting of
`MatcherConfig.windows_per_song` (by mean square) x `MatcherConfig.pitch_class_windows` (by pitch
class) x the songs stage 1 sends to the DTW (`--candidates`: `MatcherConfig.candidates` for the
classical method, `LearnedConfig.classical_candidates` for the hybrid) x the songs its query parts
send (`--parts`: `MatcherConfig.part_candidates`, `LearnedConfig.classical_part_candidates`),
the settings taking turns
query by query so that load on the machine shifts them alike; prints search-time p50 / p95 and
top-1 / top-10 / MRR per setting.

    HUMDEX_THREADS=2 python benchmarks/matcher_windows.py --db data/mirex2048 \
        --queries Q.tsv --method classical --windows 1 3 [--pitch-class 0 2] [--candidates 50 100] \
        [--parts 0 50] [--limit 30] [--from-start]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
import time
from pathlib import Path

from humdex.settings import configure_native_runtime

configure_native_runtime()  # the thread settings `humdex search` and the server run under, before numpy loads

import numpy as np

from humdex import hybrid
from humdex.catalog.catalog import Catalog
from humdex.classical import matcher
from humdex.evaluate import read_query_list
from humdex.search import load_query, prewarm, search


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--method", default="classical", choices=("classical", "hybrid"))
    ap.add_argument("--windows", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--pitch-class", type=int, nargs="+", default=[2])
    ap.add_argument("--candidates", type=int, nargs="+", default=[0],
                    help="songs stage 1 sends to the DTW (0: the method's default)")
    ap.add_argument("--parts", type=int, nargs="+", default=[-1],
                    help="songs stage 1's query parts send to the DTW (-1: the method's default)")
    ap.add_argument("--limit", type=int, default=30)
    ap.add_argument("--from-start", action="store_true")
    args = ap.parse_args()
    catalog = Catalog.open(args.db)
    snap = catalog.snapshot()
    for thread in prewarm(snap, args.method, db_dir=args.db):
        thread.join()
    queries = [(load_query(path), song) for path, song in read_query_list(Path(args.queries))[: args.limit]]
    original, original_hybrid = matcher.MatcherConfig, hybrid.default_config
    settings = [(k, c, n, p) for k in args.windows for c in args.pitch_class for n in args.candidates
                for p in args.parts]
    times: dict[tuple[int, int, int, int], list[float]] = {s: [] for s in settings}
    ranks: dict[tuple[int, int, int, int], list[int]] = {s: [] for s in settings}
    search(queries[0][0], snap, method=args.method, db_dir=args.db)  # first-call costs out of the way
    for query, song in queries:
        for k, c, n, p in settings:
            fixed = {"candidates": n} if n and args.method == "classical" else {}
            fixed |= {"part_candidates": p} if p >= 0 else {}
            config = functools.partial(original, windows_per_song=k, pitch_class_windows=c, **fixed)
            matcher.MatcherConfig = config  # type: ignore[misc]  # what hybrid.dtw_rows builds
            matcher.match.__kwdefaults__["config"] = config()  # what search's classical path uses
            hybrid.default_config = functools.partial(  # type: ignore[assignment]
                dataclasses.replace, original_hybrid(), **({"classical_candidates": n} if n else {}),
                **({"classical_part_candidates": p} if p >= 0 else {}))
            t0 = time.perf_counter()
            result = search(query, snap, top=10, from_start=args.from_start, method=args.method,
                            db_dir=args.db)
            times[k, c, n, p].append(time.perf_counter() - t0)
            found = [hit.song_id for hit in result.hits]
            ranks[k, c, n, p].append(found.index(song) + 1 if song in found else 999)
    matcher.MatcherConfig, hybrid.default_config = original, original_hybrid  # type: ignore[misc]
    for k, c, n, p in settings:
        t, r = np.array(times[k, c, n, p]) * 1e3, np.array(ranks[k, c, n, p])
        print(f"windows_per_song={k} pitch_class_windows={c} candidates={n or 'default'} "
              f"part_candidates={p if p >= 0 else 'default'}: search p50 "
              f"{np.median(t):.0f} ms p95 {np.percentile(t, 95):.0f} ms  top-1 {np.mean(r <= 1):.3f} "
              f"top-10 {np.mean(r <= 10):.3f} MRR@10 {np.mean(np.where(r <= 10, 1.0 / r, 0.0)):.3f}  ({len(r)} queries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
