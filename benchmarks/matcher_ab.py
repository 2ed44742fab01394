"""The classical matcher of another humdex tree against this one's, in one process: search latency and
whether the answers are the same.

The product's `search` (hybrid or classical) runs each query once per (matcher, query-part
songs) setting, the settings taking turns query by query so that load on the machine moves them
alike. The other tree's `humdex/classical/matcher.py` is loaded beside this one's and put in its
place in `sys.modules` for its turns (the hybrid and `search` import the matcher at each call);
everything else is this tree's. Prints search p50 / p95, the median per-query ratio to the first
setting, and for each setting of the other matcher how many queries got the same hits (song,
score, place) from this one. Runs under the CLI's native thread settings.

    HUMDEX_THREADS=2 python benchmarks/matcher_ab.py --before /tmp/before/src --db DB \
        --queries Q.tsv [--method hybrid|classical] [--parts 0 50] [--limit 40]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib.util
import sys
import time
from pathlib import Path

from humdex.settings import configure_native_runtime

configure_native_runtime()

import numpy as np

from humdex import hybrid
from humdex.catalog.catalog import Catalog
from humdex.classical import matcher as this_matcher
from humdex.evaluate import read_query_list
from humdex.search import load_query, prewarm, search


def load_other_matcher(src: Path):  # type: ignore[no-untyped-def]
    """The other tree's matcher module, under a name of its own."""
    spec = importlib.util.spec_from_file_location("humdex_other_matcher", src / "humdex" / "classical" / "matcher.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"no humdex/classical/matcher.py under {src}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, required=True, help="the other tree's src folder")
    ap.add_argument("--db", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--method", default="hybrid", choices=("classical", "hybrid"))
    ap.add_argument("--parts", type=int, nargs="+", default=[50],
                    help="songs the query parts send (MatcherConfig.part_candidates for classical, "
                         "LearnedConfig.classical_part_candidates for the hybrid)")
    ap.add_argument("--limit", type=int, default=40)
    args = ap.parse_args()

    matchers = {"before": load_other_matcher(args.before), "this": this_matcher}
    snap = Catalog.open(args.db).snapshot()
    for thread in prewarm(snap, args.method, db_dir=args.db):
        thread.join()
    queries = [load_query(path) for path, _ in read_query_list(Path(args.queries))[: args.limit]]
    settings = [(m, p) for m in matchers for p in args.parts]
    times: dict[tuple[str, int], list[float]] = {s: [] for s in settings}
    hits: dict[tuple[str, int], list[list[tuple]]] = {s: [] for s in settings}
    original_hybrid = hybrid.default_config
    for i, query in enumerate(queries):
        for name, parts in settings:
            module = matchers[name]
            sys.modules["humdex.classical.matcher"] = module
            hybrid.default_config = functools.partial(  # type: ignore[assignment]
                dataclasses.replace, original_hybrid(), classical_part_candidates=parts)
            module.match.__kwdefaults__["config"] = module.MatcherConfig(part_candidates=parts)
            t0 = time.perf_counter()
            result = search(query, snap, top=10, method=args.method, db_dir=args.db)
            if i:  # the first query pays for first calls
                times[name, parts].append(time.perf_counter() - t0)
            hits[name, parts].append([(h.song_id, round(h.score, 6), h.start_s, h.end_s) for h in result.hits])
    sys.modules["humdex.classical.matcher"] = this_matcher
    hybrid.default_config = original_hybrid
    first = np.array(times[settings[0]])
    for setting in settings:
        t = np.array(times[setting])
        same = ""
        if setting[0] == "this":
            equal = sum(a == b for a, b in zip(hits[setting], hits["before", setting[1]]))
            same = f", same hits as before's matcher for {equal}/{len(queries)} queries"
        print(f"{args.method} matcher {setting[0]} parts {setting[1]}: p50 {np.median(t) * 1e3:.0f} ms "
              f"p95 {np.percentile(t, 95) * 1e3:.0f} ms, median ratio to {settings[0][0]} parts "
              f"{settings[0][1]} {np.median(t / first):.2f} ({len(t)} queries){same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
