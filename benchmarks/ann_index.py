"""k-NN index settings against exact search: the learned search's hit rates over one catalog's store.

The learned search's first stage votes for songs with each query fingerprint's k nearest stored
fingerprints (fingerprints.scale_votes); above vectorstore.EXACT_LIMIT vectors that search is
HNSW. This rebuilds the store's index exactly and with HNSW settings (M, efConstruction,
efSearch), runs the product's `search_store` for each query with each index (query fingerprints
computed once), and reports top-1 / top-10 and the k-NN time per query.

    HUMDEX_THREADS=1 python benchmarks/ann_index.py --db out/mirex_db \
        --queries data/mirex_q/anywhere10/queries.tsv --variant exact --variant 32,80,128
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--model", default="short")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--variant", action="append", required=True, help="'exact' or 'M,efConstruction,efSearch'")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    import faiss
    from store_compare import load_queries  # fingerprinted as learned_matches does

    from humdex.catalog.catalog import Catalog
    from humdex.learned import stores as vectorstore
    from humdex.learned.fingerprints import search_store
    from humdex.learned.model import model_handle
    from humdex.learned.search import LearnedConfig, key_song_id, store_folder, sync_catalog
    from humdex.learned.stores import FaissStore

    catalog = Catalog.open(args.db)
    snap = catalog.snapshot()
    config = LearnedConfig(models=(args.model,))
    sync_catalog(catalog.db_dir, snap, config)
    handle = model_handle(args.model)
    model = handle.encoder
    song_hop = handle.song_hop_s(config.min_song_hop_s)
    saved = FaissStore.load(store_folder(catalog.db_dir, handle, song_hop, config.audio_songs))
    queries = load_queries(Path(args.queries), model, snap, config, args.limit)
    faiss.omp_set_num_threads(1)
    report: dict = {"db": args.db, "queries": args.queries, "n": len(queries), "variants": {}}
    for name in args.variant:
        exact = name == "exact"
        if not exact:
            m, efc, efs = map(int, name.split(","))
            vectorstore.HNSW_M, vectorstore.HNSW_EF_CONSTRUCTION, vectorstore.HNSW_EF_SEARCH = m, efc, efs
        store = FaissStore(dim=saved.dim, exact_limit=10**12 if exact else vectorstore.EXACT_LIMIT)
        keys = saved.keys()
        store.add(keys, [saved.sequence(k) for k in keys])
        t0 = time.perf_counter()
        store.search(np.zeros((1, saved.dim), np.float32), 1)  # builds the index
        build_s = time.perf_counter() - t0
        ranks, knn_ms = [], []
        for q, truth in queries:
            if q is None:
                ranks.append(0)
                continue
            t = time.perf_counter()
            store.search(np.concatenate([s.fingerprints for s in q]), 100)
            knn_ms.append(1000 * (time.perf_counter() - t))
            found = [key_song_id(mt.song_key) for mt in search_store(store, q, model.config.hop_s, top=10,
                                                                        song_hop_s=song_hop)]
            ranks.append(found.index(truth) + 1 if truth in found else 0)
        r = np.array(ranks)
        report["variants"][name] = {"top1": round(float(np.mean(r == 1)), 3), "top10": round(float(np.mean(r > 0)), 3),
                                    "knn_ms_p50": round(float(np.median(knn_ms)), 1), "build_s": round(build_s, 1)}
        print(name, report["variants"][name], flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
