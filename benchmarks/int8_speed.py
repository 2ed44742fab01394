"""Float32 against int8 inference of a shipped encoder, in one process: speed and agreement.

Songs: the first --songs melodies of a catalog, fingerprinted as at indexing (learned.song_fingerprints
at the song hop), in songs per minute. Queries: 10 s queries of a query list through the product's
query path (tracked contour -> 7 tempo scales -> windows at the model hop), embedding time per query.
Agreement: cosine between the float and int8 fingerprint of each window (and, for the queries,
with 7-bit activations, what a CPU without VNNI runs). The two precisions take
turns (float, int8, float, int8) so that load on the machine falls on both alike.

    HUMDEX_THREADS=1 python benchmarks/int8_speed.py --db out/mirex_db \
        --queries data/mirex_q/anywhere10/queries.tsv --songs 200 --limit 20
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def cosine_summary(cos: np.ndarray) -> dict:
    """Mean, 1st percentile and minimum of per-window cosines, and how many windows."""
    return {"mean": round(float(cos.mean()), 5), "p1": round(float(np.percentile(cos, 1)), 5),
            "min": round(float(cos.min()), 5), "windows": len(cos)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--model", default="short")
    p.add_argument("--songs", type=int, default=200)
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    from humdex.catalog.catalog import Catalog
    from humdex.frontend.audio import SAMPLE_RATE, load
    from humdex.frontend.pitch import query_contour
    from humdex.learned.fingerprints import contour_frames, scaled_windows
    from humdex.learned.model import embed, load_model, precision
    from humdex.learned.search import LearnedConfig, song_fingerprints

    model = load_model(name=args.model)
    hop = max(model.config.hop_s, LearnedConfig().min_song_hop_s)
    snap = Catalog.open(args.db).snapshot()
    n = min(args.songs, len(snap.songs))
    rows = [line.split("\t") for line in Path(args.queries).read_text().splitlines() if line.strip()]
    base = Path(args.queries).parent
    query_windows = []
    for rel, *_ in rows[: args.limit]:
        frames = contour_frames(query_contour(load(base / rel, SAMPLE_RATE), SAMPLE_RATE), model.config.feature)
        query_windows.append(np.concatenate(scaled_windows(model, frames)))

    def run(flag: str) -> dict:
        os.environ["HUMDEX_INT8"] = flag
        t0 = time.perf_counter()
        songs = [song_fingerprints(model, snap.songs[i], snap.melodies[i], hop) for i in range(n)]
        t1 = time.perf_counter()
        q_ms = []
        queries = []
        for w in query_windows:
            t = time.perf_counter()
            queries.append(embed(model, w))
            q_ms.append(1000 * (time.perf_counter() - t))
        return {"precision": precision(model), "songs_per_min": 60 * n / (t1 - t0), "query_embed_ms": q_ms,
                "songs": songs, "queries": queries}

    embed(model, query_windows[0])  # warm both paths (the int8 module is built once)
    os.environ["HUMDEX_INT8"] = "1"
    embed(model, query_windows[0])
    runs = [run(flag) for flag in ("0", "1", "0", "1")]
    res: dict = {"model": args.model, "songs": n, "queries": len(query_windows),
                 "windows_per_query_p50": float(np.median([len(w) for w in query_windows])),
                 "threads": os.environ.get("HUMDEX_THREADS", "")}
    for r in runs:
        d = res.setdefault(r["precision"], {"songs_per_min": [], "query_embed_ms": []})
        d["songs_per_min"].append(round(r["songs_per_min"], 1))
        d["query_embed_ms"].extend(r["query_embed_ms"])
    for d in (res[k] for k in res if isinstance(res[k], dict)):
        q = np.array(d.pop("query_embed_ms"))
        d["query_embed_ms_p50_p95"] = [round(float(np.median(q)), 1), round(float(np.percentile(q, 95)), 1)]
    f, i = runs[0], runs[1]
    cos = np.concatenate([np.sum(a * b, axis=1) for a, b in zip(f["songs"] + f["queries"], i["songs"] + i["queries"])])
    res["cosine_float_int8"] = cosine_summary(cos)
    import torch

    from humdex.learned.model import int8_encoder

    seven_bit = int8_encoder(model, model.int8_calibration, full_range=False)  # CPUs without VNNI
    with torch.inference_mode():
        cos7 = np.concatenate([np.sum(seven_bit(torch.as_tensor(w)).numpy() * z, axis=1)
                               for w, z in zip(query_windows, f["queries"])])
    res["cosine_float_int8_7bit_queries"] = cosine_summary(cos7)
    print(json.dumps(res, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
