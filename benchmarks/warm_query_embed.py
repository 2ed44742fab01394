"""Warm in-process latency of the default search with the query embedded by ONNX Runtime (float32,
the product's path since the cold-start work) against torch int8 (before it), query by query.

    python benchmarks/warm_query_embed.py DB QUERIES.tsv [N]
"""

import sys
import time
from pathlib import Path

import numpy as np

from humdex.catalog.catalog import Catalog
from humdex.evaluate import read_query_list
from humdex.learned import runtime
from humdex.learned.model import embed
from humdex.search import load_query, search


def main() -> None:
    db, tsv = sys.argv[1], Path(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    catalog = Catalog.open(db)
    queries = [load_query(path) for path, _ in read_query_list(tsv)[:n]]
    search(queries[0], catalog)  # warm: models, stores, kernels
    handle = runtime.model_handle("short")
    embedders = {"onnx float32": handle.embed_query, "torch int8": lambda w: embed(handle.encoder, w)}
    embedders["torch int8"](np.zeros((1, handle.config.n_bins, 75), np.float32))
    ms: dict[str, list[float]] = {k: [] for k in embedders}
    top: dict[str, list] = {k: [] for k in embedders}
    for q in queries:
        for name, fn in embedders.items():  # interleaved: the machine's load hits both alike
            object.__setattr__(handle, "embed_query", fn)
            t = time.perf_counter()
            hits = search(q, catalog).hits
            ms[name].append((time.perf_counter() - t) * 1e3)
            top[name].append(hits[0].song_id if hits else None)
    for name, v in ms.items():
        print(f"{name}: p50 {np.median(v):.0f} ms, p95 {np.percentile(v, 95):.0f} ms (n={len(v)})")
    same = sum(a == b for a, b in zip(*top.values(), strict=True))
    print(f"same top-1: {same} of {len(queries)}")


if __name__ == "__main__":
    main()
