"""ANN + rerank latency of the learned search at catalog sizes beyond the 2048 real songs.

Takes a saved FaissStore (e.g. the 2048-song M_short store that learned_mirex.py caches) and
grows it to --songs songs by adding perturbed copies of its songs (each fingerprint + Gaussian
noise, renormalised): the vector counts and sequence lengths are those of real songs, so the
k-NN, vote and rerank costs are realistic; hit rates on such a catalog mean nothing and are not
reported. Queries: fingerprints of the queries in a query list (contour input, as the product).

    HUMDEX_THREADS=1 python benchmarks/learned_scale.py --store out/learned_mirex_cache/short_..._hop0.5 \
        --queries /tmp/bq10/queries.tsv --songs 20480
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
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("HUMDEX_THREADS", "1")))
    from humdex.audio import SAMPLE_RATE, load
    from humdex.features import contour_to_activation, crepe_windows
    from humdex.fingerprints import candidate_songs, rerank
    from humdex.model import embed, load_model
    from humdex.pitch import query_contour
    from humdex.vectorstore import FaissStore

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
    model = load_model(name="short")
    qdir = Path(args.queries).parent
    lines = [ln.split("\t") for ln in Path(args.queries).read_text().splitlines() if ln.strip()]
    ann, rr = [], []
    for qpath, _ in lines[: args.limit]:
        audio = load(qdir / qpath, SAMPLE_RATE)
        q = embed(model, crepe_windows(contour_to_activation(query_contour(audio, SAMPLE_RATE)),
                                       model.config.window)[0])
        t = time.perf_counter()
        cands = candidate_songs(big, q)
        t1 = time.perf_counter()
        rerank(big, q, [k for k, _ in cands], model.config.hop_s, song_hop_s=0.5)
        t2 = time.perf_counter()
        ann.append((t1 - t) * 1e3)
        rr.append((t2 - t1) * 1e3)
    report = {"songs": len(big), "vectors": big.n_vectors, "index_kind": big.kind,
              "index_build_s": round(build_s, 1),
              "ann_ms": {"p50": round(float(np.percentile(ann, 50)), 1), "p95": round(float(np.percentile(ann, 95)), 1)},
              "rerank_ms": {"p50": round(float(np.percentile(rr, 50)), 1), "p95": round(float(np.percentile(rr, 95)), 1)},
              "vector_bytes_per_song_float32": round(big.n_vectors * 128 * 4 / len(big)),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
              "queries": len(ann)}
    print(json.dumps(report, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
