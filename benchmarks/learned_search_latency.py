"""Time `search(..., method="learned")` on an existing catalog, store sync included, pitch excluded.

Usage: HUMDEX_THREADS=1 python benchmarks/learned_search_latency.py DB "QUERY_GLOB" [--n 8]
"""

import argparse
import glob
import time

import numpy as np

from humdex.catalog.catalog import Catalog
from humdex.search import load_query, search


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("db")
    ap.add_argument("queries", help="glob of query files")
    ap.add_argument("--n", type=int, default=8)
    args = ap.parse_args()
    catalog = Catalog.open(args.db)
    queries = [load_query(q) for q in sorted(glob.glob(args.queries))[: args.n]]
    search(queries[0], catalog, method="learned")  # warm-up: model load, first sync
    ms = []
    for q in queries * 2:
        started = time.perf_counter()
        search(q, catalog, method="learned")
        ms.append((time.perf_counter() - started) * 1e3)
    print(f"learned search, pitch excluded: p50 {np.median(ms):.0f} ms, p95 "
          f"{np.percentile(ms, 95):.0f} ms over {len(ms)} searches of {len(catalog)} songs")


if __name__ == "__main__":
    main()
