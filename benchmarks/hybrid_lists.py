"""Dump, per query, the learned ranking and the hybrid's DTW ranking, for choosing and checking how they are fused.

For each query of a TSV list (query_path<TAB>song_id) against a catalog: the two rankings the
product's hybrid search (humdex.hybrid.hybrid_search, default config) fuses, as it fuses them:
the learned rows (song_id, mean cosine) and the DTW rows (song_id, exp(-cost)) of the classical
matcher's own candidates and the learned top `dtw_candidates`, with the DTW weight it used and
the rank of the true song in its answer. Writes one JSON file; `benchmarks/hybrid_fusion.py`
scores fusion rules on such files.

    HUMDEX_THREADS=1 python benchmarks/hybrid_lists.py --db DB --queries Q.tsv [--from-start] --out lists.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from tqdm import tqdm


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--from-start", action="store_true")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("HUMDEX_THREADS", "1")))
    from humdex.catalog.catalog import Catalog
    from humdex.errors import HumdexError
    from humdex.hybrid import hybrid_search
    from humdex.learned.search import sync_catalog
    from humdex.search import load_query

    catalog = Catalog.open(args.db)
    snap = catalog.snapshot()
    sync_catalog(catalog.db_dir, snap, progress=True)
    ids = [s.song_id for s in snap.songs]
    qfile = Path(args.queries)
    lines = [ln.split("\t") for ln in qfile.read_text().splitlines() if ln.strip()]
    out = []
    for qpath, truth in tqdm(lines, desc="queries"):
        truth = truth.strip()
        try:
            query = load_query(qfile.parent / qpath)
        except HumdexError as err:  # counts as a miss, as in `humdex eval`
            out.append({"query": qpath, "truth": truth, "learned": [], "dtw": [], "error": str(err)})
            continue
        trace: dict = {}
        t0 = time.perf_counter()
        found = hybrid_search(query.audio, query.sample_rate, query.contour, catalog.db_dir, snap,
                              top=10, from_start=args.from_start, trace=trace)
        answer = [ids[row[0]] for row in found]
        out.append({"query": qpath, "truth": truth,
                    "learned": [[ids[row[0]], round(row[1], 5)] for row in trace.get("learned", [])],
                    "dtw": [[ids[row[0]], round(row[1], 5)] for row in trace.get("dtw", [])],
                    "dtw_weight": trace.get("dtw_weight"),
                    "rank": answer.index(truth) + 1 if truth in answer else None,
                    "ms": round((time.perf_counter() - t0) * 1e3, 1)})
    Path(args.out).write_text(json.dumps({"db": args.db, "queries": args.queries,
                                          "from_start": args.from_start, "songs": len(ids),
                                          "results": out}))
    print(f"{len(out)} queries -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
