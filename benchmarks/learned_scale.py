"""Per-stage latency of the learned and hybrid searches at catalog sizes beyond the 2048 real songs.

Takes a saved FaissStore (e.g. the 2048-song M_short store of a catalog, <db>/learned/short-...)
and grows it to --songs songs by adding perturbed copies of its songs (each fingerprint +
Gaussian noise, renormalised): the vector counts and sequence lengths are those of real songs,
so the k-NN, vote and rerank costs are realistic; hit rates on such a catalog mean nothing and
are not reported. Queries: the queries of a query list, through the product's own functions
and defaults (tracked contour -> pseudo-activation -> 7 tempo scales -> fingerprints at
the model's hop -> search_store). With --melodies, the hybrid's classical stage
(hybrid.classical_stage: FFT candidates over every song, or over the learned candidates above
LearnedConfig.full_scan_songs, + DTW of them and the learned top 50; hybrid.with_classical_scan
runs the full scan in a thread beside the learned search, as the product does) is timed too,
over as many melodies from the shipped melody pool (repeated when --songs exceeds the pool).
Without --melodies, "learned_total" is the learned search alone.

    HUMDEX_THREADS=1 python benchmarks/learned_scale.py --store DB/learned/short-..._hop0.5 \
        --queries data/mirex_q/anywhere10/queries.tsv --songs 20480 --melodies
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--songs", type=int, default=20480)
    p.add_argument("--noise", type=float, default=0.05)
    p.add_argument("--limit", type=int, default=30)
    p.add_argument("--melodies", action="store_true", help="also time the hybrid's classical stage")
    p.add_argument("--model", default="short", help="shipped model name (the store's model)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("HUMDEX_THREADS", "1")))
    from humdex.frontend.audio import SAMPLE_RATE, load
    from humdex.frontend.pitch import query_contour
    from humdex.hybrid import classical_stage, with_classical_scan
    from humdex.learned.features import contour_to_activation
    from humdex.learned.fingerprints import QUERY_SCALES, query_fingerprints, search_store
    from humdex.learned.model import load_model
    from humdex.learned.search import LearnedConfig
    from humdex.learned.stores import FaissStore

    base = FaissStore.load(args.store)
    keys = base.keys()
    big = FaissStore()
    rng = np.random.default_rng(0)
    big.add(keys, [base.sequence(k) for k in keys])
    copy = 0
    while len(big) < args.songs:
        copy += 1
        for k in keys[: args.songs - len(big)]:
            x = base.sequence(k) + args.noise * rng.standard_normal(base.sequence(k).shape)
            big.add([f"{k}~{copy}"], [x / np.linalg.norm(x, axis=1, keepdims=True)])
    t0 = time.perf_counter()
    big.search(np.zeros((1, 128), np.float32) + 0.088, 1)  # builds the index
    build_s = time.perf_counter() - t0
    refs = pool_references(len(big)) if args.melodies else None
    row_of = {k: i for i, k in enumerate(keys)}
    model = load_model(name=args.model)
    config = LearnedConfig(dtw_candidates=50)  # as the hybrid runs it
    hop = model.config.hop_s
    qdir = Path(args.queries).parent
    lines = [ln.split("\t") for ln in Path(args.queries).read_text().splitlines() if ln.strip()]
    stages: dict[str, list[float]] = {}
    for qpath, _ in lines[: args.limit]:
        audio = load(qdir / qpath, SAMPLE_RATE)
        t = time.perf_counter()
        contour = query_contour(audio, SAMPLE_RATE)
        timing = {"pitch": (time.perf_counter() - t) * 1e3}
        t = time.perf_counter()

        def learned(timing=timing, contour=contour):
            fingerprints = query_fingerprints(model, contour_to_activation(contour), QUERY_SCALES, hop,
                                              timing=timing)
            return search_store(big, fingerprints, hop, top=config.n_candidates, song_hop_s=0.5, timing=timing)

        if refs is None:
            learned()
            timing["learned_total"] = sum(timing.values())
        else:  # as learned_search runs the hybrid: the classical scan beside the learned search
            matches, scanned = with_classical_scan(contour, refs, False, config, learned)
            t1 = time.perf_counter()
            rows = [row_of[k] + int(c or 0) * len(keys)  # copy c of song k: row k + c * 2048
                    for k, _, c in (m.song_key.partition("~") for m in matches)]
            classical_stage(contour, refs, rows, False, config, scanned)
            timing["dtw_after_learned"] = (time.perf_counter() - t1) * 1e3
            timing["hybrid_total"] = timing["pitch"] + (time.perf_counter() - t) * 1e3
        for k, v in timing.items():
            stages.setdefault(k, []).append(v)
    report = {"songs": len(big), "vectors": big.n_vectors, "index_kind": big.kind,
              "index_build_s": round(build_s, 1),
              "latency_ms": {k: {"p50": round(float(np.percentile(v, 50)), 1),
                                 "p95": round(float(np.percentile(v, 95)), 1)} for k, v in stages.items()},
              "vector_bytes_per_song_float32": round(big.n_vectors * 128 * 4 / len(big)),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
              "queries": len(stages.get("pitch", []))}
    print(json.dumps(report, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


def pool_references(n: int):
    """A ReferenceSet of n melodies of the shipped pool (cycled when n exceeds it)."""
    from humdex.classical.references import ReferenceSet
    from humdex.frontend.melody import notes_to_contour
    from humdex.training.melody_pool import load_pool

    pool = load_pool()
    return ReferenceSet.from_contours([notes_to_contour(pool[i % len(pool)].notes, 0.01) for i in range(n)])


if __name__ == "__main__":
    raise SystemExit(main())
