"""Evaluation: run many queries with known answers against a catalog and report hit rates."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from humdex.catalog.catalog import Catalog
from humdex.errors import HumdexError
from humdex.metrics import mean_reciprocal_rank, percentile_ms, top_k_hit_rate
from humdex.search import DEFAULT_METHOD, load_query, search

RANK_DEPTH = 100  # results fetched per query; a right song deeper than this counts as a miss


@dataclass(frozen=True)
class QueryOutcome:
    query: str
    song_id: str
    rank: int | None
    top_song: str | None
    latency_ms: float
    error: str | None = None


@dataclass
class EvalReport:
    outcomes: list[QueryOutcome] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        ranks = [o.rank for o in self.outcomes]
        latencies = [o.latency_ms for o in self.outcomes if o.error is None]
        return {
            "queries": len(ranks),
            "errors": sum(o.error is not None for o in self.outcomes),
            "Top-1": top_k_hit_rate(ranks, 1),
            "Top-3": top_k_hit_rate(ranks, 3),
            "Top-10": top_k_hit_rate(ranks, 10),
            "MRR": mean_reciprocal_rank(ranks),
            "latency_p50_ms": percentile_ms(latencies, 50),
            "latency_p95_ms": percentile_ms(latencies, 95),
        }


def read_query_list(path: Path) -> list[tuple[Path, str]]:
    """Lines `query_path<TAB>song_id` (relative paths are relative to the list's folder)."""
    if not path.is_file():
        raise HumdexError(f"{path}: query list not found")
    pairs = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.rstrip("\n").split("\t")
        if len(parts) < 2:
            raise HumdexError(f"{path}:{n}: expected query_path<TAB>song_id")
        pairs.append(((path.parent / parts[0]).resolve(), parts[1].strip()))
    if not pairs:
        raise HumdexError(f"{path}: no queries")
    return pairs


def mirqbsh_queries(corpus_dir: Path, use_pv: bool) -> list[tuple[Path, str]]:
    """MIR-QBSH as distributed: waveFile/yearYYYY/personNNNNN/SSSSS.wav (+ .pv); song id = SSSSS."""
    root = corpus_dir / "waveFile" if (corpus_dir / "waveFile").is_dir() else corpus_dir
    suffix = ".pv" if use_pv else ".wav"
    queries = sorted(p for p in root.rglob(f"*{suffix}") if p.is_file())
    if not queries:
        raise HumdexError(f"{corpus_dir}: no {suffix} queries found (expected waveFile/yearYYYY/"
                          f"personNNNNN/SSSSS{suffix})")
    return [(p, p.stem) for p in queries]


def evaluate(
    queries: list[tuple[Path, str]],
    catalog: Catalog,
    from_start: bool = False,
    pitch_method: str | None = None,
    progress: bool = True,
    method: str | None = None,
) -> EvalReport:
    """Search every query; a query that fails to load counts as a miss and records the error."""
    snap = catalog.snapshot()
    known = {s.song_id for s in snap.songs}
    missing = sorted({song for _, song in queries if song not in known})
    if missing:
        raise HumdexError(f"{len(missing)} expected songs are not in the catalog, e.g. {missing[:5]}")
    report = EvalReport()
    for path, song_id in tqdm(queries, desc="evaluating", unit="query", disable=not progress):
        started = time.perf_counter()
        try:
            result = search(load_query(path, pitch_method), snap, top=RANK_DEPTH,
                            from_start=from_start, db_dir=catalog.db_dir, method=method or DEFAULT_METHOD)
        except HumdexError as err:
            report.outcomes.append(QueryOutcome(str(path), song_id, None, None, 0.0, str(err)))
            continue
        latency_ms = (time.perf_counter() - started) * 1e3
        ids = [h.song_id for h in result.hits]
        rank = ids.index(song_id) + 1 if song_id in ids else None
        report.outcomes.append(
            QueryOutcome(str(path), song_id, rank, ids[0] if ids else None, latency_ms))
    return report


def evaluate_cli(args: argparse.Namespace) -> int:
    from_start = args.from_start
    if args.corpus:
        if len(args.corpus) != 2 or args.corpus[0] != "mirqbsh":
            raise HumdexError("usage: humdex eval mirqbsh CORPUS_DIR --db DIR [--use-pv]")
        queries = mirqbsh_queries(Path(args.corpus[1]), args.use_pv)
        from_start = not args.anywhere
    elif args.queries:
        queries = read_query_list(Path(args.queries))
    else:
        raise HumdexError("give --queries LIST.tsv or `mirqbsh CORPUS_DIR`")
    catalog = Catalog.open(args.db)
    report = evaluate(queries, catalog, from_start, args.pitch, progress=not args.quiet,
                      method=args.method)
    metrics = report.metrics()
    print(f"queries {metrics['queries']} (errors {metrics['errors']})  "
          f"top-1 {metrics['Top-1']:.3f}  top-10 {metrics['Top-10']:.3f}  MRR {metrics['MRR']:.3f}  "
          f"latency p50 {metrics['latency_p50_ms']:.0f} ms  p95 {metrics['latency_p95_ms']:.0f} ms")
    payload: dict[str, Any] = {
        "metrics": metrics,
        "settings": {"db": str(args.db), "songs": len(catalog), "from_start": from_start,
                     "pitch": args.pitch, "machine": f"{platform.machine()} {os.cpu_count()} cpus"},
        "queries": [asdict(o) for o in report.outcomes],
    }
    Path(args.report).write_text(json.dumps(payload, indent=1, ensure_ascii=False))
    print(f"report: {args.report}")
    return 0
