"""Warm in-process latency and hit rates of the default search by how the query is embedded: ONNX
Runtime int8 (the product's path for a calibrated model), ONNX Runtime float32 (the product's path
before it, and for HUMDEX_INT8=0) and torch int8 (how the songs are fingerprinted; the query's path
before the cold-start work), query by query, interleaved in one warm process.

    python benchmarks/warm_query_embed.py DB QUERIES.tsv [N]

QUERIES.tsv: `query_path<TAB>song_id` lines (humdex eval's format); queries without enough pitch
are left out. Prints p50/p95 ms, top-1/top-10/MRR(10) per embedder and how often their top-1 agree.
"""

import sys
import time
from pathlib import Path

import numpy as np

from humdex.catalog.catalog import Catalog
from humdex.errors import HumdexError
from humdex.evaluate import read_query_list
from humdex.learned import runtime
from humdex.learned.model import embed
from humdex.search import load_query, search


def main() -> None:
    db, tsv = sys.argv[1], Path(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    catalog = Catalog.open(db)
    queries = []
    for path, truth in read_query_list(tsv)[:n]:
        try:
            queries.append((load_query(path), truth))
        except HumdexError as err:
            print(f"left out: {err}")
    search(queries[0][0], catalog)  # warm: models, stores, kernels
    handle = runtime.model_handle("short")
    assert handle.onnx is not None and handle.onnx_int8 is not None, "the model has no int8 export"
    float32 = runtime.ort_session(handle.onnx)

    def onnx_float32(windows: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(windows, np.float32)
        out = [float32.run(None, {"windows": x[i:i + runtime.BATCH]})[0] for i in range(0, len(x), runtime.BATCH)]
        return np.concatenate(out) if out else np.zeros((0, handle.config.embedding_dim), np.float32)

    embedders = {"onnx int8 (product)": handle.embed_query, "onnx float32": onnx_float32,
                 "torch int8": lambda w: embed(handle.encoder, w)}
    for fn in embedders.values():
        fn(np.zeros((1, handle.config.n_bins, handle.config.window.feature_frames), np.float32))
    ms: dict[str, list[float]] = {k: [] for k in embedders}
    top: dict[str, list[list[str]]] = {k: [] for k in embedders}
    for q, _ in queries:
        for name, fn in embedders.items():  # interleaved: the machine's load hits all alike
            object.__setattr__(handle, "embed_query", fn)
            t = time.perf_counter()
            hits = search(q, catalog).hits
            ms[name].append((time.perf_counter() - t) * 1e3)
            top[name].append([h.song_id for h in hits])
    truths = [truth for _, truth in queries]
    for name, v in ms.items():
        ranks = [ids.index(t) + 1 if t in ids else None for ids, t in zip(top[name], truths)]
        top1 = sum(r == 1 for r in ranks) / len(ranks)
        top10 = sum(r is not None for r in ranks) / len(ranks)
        mrr = sum(1 / r for r in ranks if r) / len(ranks)
        print(f"{name}: p50 {np.median(v):.0f} ms, p95 {np.percentile(v, 95):.0f} ms; top-1 {top1:.3f} "
              f"top-10 {top10:.3f} MRR(10) {mrr:.3f} (n={len(v)})")
    first = next(iter(embedders))
    for name in list(embedders)[1:]:
        same = sum(a[:1] == b[:1] for a, b in zip(top[first], top[name]))
        print(f"same top-1 as {first}: {name} {same} of {len(queries)}")


if __name__ == "__main__":
    main()
