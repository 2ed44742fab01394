"""Accuracy against latency of the learned/hybrid search's knobs (LearnedConfig fields), on one query list.

Each variant is a set of LearnedConfig overrides, e.g. `fast:query_hop_s=0.5,dtw_pool=200`. Every
query is pitch-tracked once; then each variant runs the product's own `learned_search` on it,
and the report gives, per variant, top-1 / top-10 / MRR and p50 / p95 milliseconds per stage
(pitch excluded: it is the same for all). Variants run in turn on the same query, so machine
load shifts them alike.

    HUMDEX_THREADS=1 python benchmarks/hybrid_speed.py --db DB --queries Q.tsv [--from-start] \
        --variant base: --variant fast:query_hop_s=0.5,dtw_pool=200 [--method hybrid] --out R.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from tqdm import tqdm


def parse_value(text: str):
    """"none" -> None, "a+b" -> ("a", "b") (tuples: models, weights), else int, float or str."""
    if text == "none":
        return None
    if "+" in text:
        return tuple(parse_value(part) for part in text.split("+"))
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_variant(text: str, defaults: dict) -> tuple[str, dict]:
    """"name:key=val,key=val" -> (name, config overrides), e.g. "fused:models=short+long"
    (defaults: the config's field defaults, e.g. LearnedConfig's or MatcherConfig's; a tuple
    field given one value gets a 1-tuple)."""
    name, _, rest = text.partition(":")
    overrides = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key not in defaults:
            raise SystemExit(f"unknown config field {key!r}")
        parsed = parse_value(value)
        tuple_field = isinstance(defaults[key], tuple) and not isinstance(parsed, tuple)
        overrides[key] = (parsed,) if tuple_field else parsed
    return name, overrides


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--from-start", action="store_true")
    p.add_argument("--method", default="hybrid", choices=("learned", "hybrid"))
    p.add_argument("--variant", action="append", required=True)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("HUMDEX_THREADS", "1")))
    from humdex.catalog.catalog import Catalog
    from humdex.errors import HumdexError
    from humdex.hybrid import hybrid_search
    from humdex.learned.search import LearnedConfig, default_config, learned_search, sync_catalog
    from humdex.metrics import mean_reciprocal_rank, percentile_ms, top_k_hit_rate
    from humdex.search import load_query

    defaults = {f.name: f.default for f in dataclasses.fields(LearnedConfig)}
    variants = dict(parse_variant(v, defaults) for v in args.variant)
    configs = {name: dataclasses.replace(default_config(), **kw) for name, kw in variants.items()}
    catalog = Catalog.open(args.db)
    snap = catalog.snapshot()
    for cfg in configs.values():  # every variant's models fingerprint the catalog before timing starts
        sync_catalog(catalog.db_dir, snap, cfg, progress=True)
    ids = [s.song_id for s in snap.songs]
    qfile = Path(args.queries)
    lines = [ln.split("\t") for ln in qfile.read_text().splitlines() if ln.strip()]
    lines = lines[: args.limit] if args.limit else lines
    ranks: dict[str, list[int | None]] = {n: [] for n in configs}  # None: not in the top 10
    stages: dict[str, dict[str, list[float]]] = {n: {} for n in configs}
    for qpath, truth in tqdm(lines, desc="queries"):
        try:
            query = load_query(qfile.parent / qpath)
        except HumdexError:  # a miss for every variant, as in `humdex eval`
            for n in configs:
                ranks[n].append(None)
            continue
        for name, cfg in configs.items():
            timing: dict[str, float] = {}
            t0 = time.perf_counter()
            ranked = hybrid_search if args.method == "hybrid" else learned_search
            rows = ranked(query.audio, query.sample_rate, query.contour, catalog.db_dir, snap, top=10,
                          from_start=args.from_start, config=cfg, timing=timing)
            timing["total"] = (time.perf_counter() - t0) * 1e3
            found = [ids[r[0]] for r in rows]
            ranks[name].append(found.index(truth.strip()) + 1 if truth.strip() in found else None)
            for k, v in timing.items():
                stages[name].setdefault(k, []).append(v)
    report = {"db": args.db, "queries": args.queries, "from_start": args.from_start,
              "method": args.method, "songs": len(ids), "n_queries": len(lines), "variants": {}}
    for name in configs:
        r = ranks[name]
        report["variants"][name] = {
            "overrides": variants[name],
            "top1": round(top_k_hit_rate(r, 1), 3), "top10": round(top_k_hit_rate(r, 10), 3),
            "mrr": round(mean_reciprocal_rank(r), 3),
            "ms": {k: [round(percentile_ms(v, 50), 1), round(percentile_ms(v, 95), 1)]
                   for k, v in stages[name].items()}}
        v = report["variants"][name]
        print(f"{name:12s} top1 {v['top1']:.3f} top10 {v['top10']:.3f} mrr {v['mrr']:.3f} "
              f"total p50 {v['ms']['total'][0]:.0f} ms  {v['ms']}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
