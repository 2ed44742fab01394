"""Tune the classical matcher's defaults on pool VALIDATION melodies only (never the MIREX songs).

Catalog: the pool's 512 validation melodies plus train-split melodies up to --songs (2048, the
MIREX database's size), as note contours at 10 ms. Queries: benchmarks/matcher_bench.py's
synthetic sung renditions (8 s at 32 ms frames, transposed, tempo-changed, with intonation
errors, drift, dropped notes, breath gaps and tracker octave errors) of validation melodies only,
from the start and from anywhere. Each variant is a set of MatcherConfig overrides; the report
gives top-1 / top-10 / MRR per mode and their mean MRR, the figure the defaults are chosen by.

    python benchmarks/matcher_tune.py --queries 120 --variant base: \
        --variant cap3:cost_cap_st=3.0 --variant oct05:octave_penalty_st=0.5 --json out/tune.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hybrid_speed import parse_variant
from matcher_bench import evaluate, sung_query

from humdex.classical import dtw
from humdex.classical.matcher import MatcherConfig
from humdex.classical.references import ReferenceSet
from humdex.frontend.melody import notes_to_contour
from humdex.training.melody_pool import load_pool


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--songs", type=int, default=2048)
    ap.add_argument("--queries", type=int, default=120, help="queries per mode")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variant", action="append", default=[], help="name:field=value,... (base: = defaults)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    validation = load_pool("validation")
    train = load_pool("train")
    melodies = validation + train[: max(0, args.songs - len(validation))]
    notes = [m.notes for m in melodies]
    refs = ReferenceSet.from_contours([notes_to_contour(n, 0.01) for n in notes])
    dtw.warmup()
    rng = np.random.default_rng(args.seed)
    queries = {}
    for from_start in (True, False):
        targets = rng.choice(len(validation), args.queries, replace=False)
        queries[from_start] = [(sung_query(notes[t], rng, from_start), int(t)) for t in targets]
    report: dict = {"songs": len(melodies), "validation_melodies": len(validation),
                    "queries_per_mode": args.queries, "variants": {}}
    for text in args.variant or ["base:"]:
        name, overrides = parse_variant(text, dataclasses.asdict(MatcherConfig()))
        config = MatcherConfig(**overrides)
        rows = {("from_start" if fs else "anywhere"): evaluate(qs, refs, fs, config)
                for fs, qs in queries.items()}
        mean_mrr = float(np.mean([r["mrr"] for r in rows.values()]))
        report["variants"][name] = {"overrides": overrides, **rows, "mean_mrr": mean_mrr}
        print(f"{name:14s} " + "  ".join(f"{mode}: {r['top1']:.3f}/{r['top10']:.3f}/{r['mrr']:.3f} "
                                         f"p50 {r['p50_ms']:.0f} ms" for mode, r in rows.items())
              + f"  mean MRR {mean_mrr:.3f}", flush=True)
        if args.json:
            args.json.write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
