"""Dump, per query, the learned ranking and the hybrid's DTW ranking, for choosing and checking how they are fused.

For each query of a TSV list (query_path<TAB>song_id) against a catalog: the learned search's
top 200 (song_id, mean cosine) and the DTW scores (song_id, exp(-cost)) of the union of the
classical matcher's candidates and the learned top 50, both through humdex's own functions.
Writes one JSON file; `benchmarks/hybrid_fusion.py` scores fusion rules on such files.

    HUMDEX_THREADS=1 python benchmarks/hybrid_lists.py --db DB --queries Q.tsv [--from-start] --out lists.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--from-start", action="store_true")
    p.add_argument("--learned-candidates", type=int, default=50)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("HUMDEX_THREADS", "1")))
    from humdex.catalog.catalog import Catalog
    from humdex.classical.matcher import match
    from humdex.errors import HumdexError
    from humdex.learned.features import contour_to_activation
    from humdex.learned.search import key_song_id, learned_matches, sync_catalog
    from humdex.search import load_query

    catalog = Catalog.open(args.db)
    snap = catalog.snapshot()
    sync_catalog(catalog.db_dir, snap, progress=True)
    ids = [s.song_id for s in snap.songs]
    row = {k: i for i, k in enumerate(ids)}
    refs = snap.references()
    qfile = Path(args.queries)
    lines = [ln.split("\t") for ln in qfile.read_text().splitlines() if ln.strip()]
    out = []
    for qpath, truth in tqdm(lines, desc="queries"):
        try:
            query = load_query(qfile.parent / qpath)
        except HumdexError as err:  # counts as a miss, as in `humdex eval`
            out.append({"query": qpath, "truth": truth.strip(), "learned": [], "dtw": [], "error": str(err)})
            continue
        t0 = time.perf_counter()
        learned = learned_matches(contour_to_activation(query.contour), catalog.db_dir, snap, top=200,
                                  from_start=args.from_start)
        t1 = time.perf_counter()
        also = np.array([row[key_song_id(m.song_key)] for m in learned[: args.learned_candidates]])
        dtw = match(query.contour, refs, from_start=args.from_start, top=300, also=also)
        t2 = time.perf_counter()
        out.append({"query": qpath, "truth": truth.strip(),
                    "learned": [[key_song_id(m.song_key), round(m.score, 4)] for m in learned],
                    "dtw": [[ids[m.index], round(m.score, 4)] for m in dtw],
                    "learned_ms": round((t1 - t0) * 1e3, 1), "dtw_ms": round((t2 - t1) * 1e3, 1)})
    Path(args.out).write_text(json.dumps({"db": args.db, "queries": args.queries,
                                          "from_start": args.from_start, "songs": len(ids),
                                          "results": out}))
    print(f"{len(out)} queries -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
