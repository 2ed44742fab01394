"""Learned vs classical retrieval on the MIREX-protocol database (2048 MIDI) with synthetic queries.

Reports top-1/top-10/MRR for M_short, M_long, M_fused (learned; the query stretched to
fingerprints.QUERY_SCALES unless --no-scales), the classical matcher, the learned top 50 reranked
by the classical DTW ("learned+dtw"), and humdex's hybrid (the classical matcher's candidates and
the learned top 50 in one DTW rerank); plus the per-stage latency of each query. References are the
MIDI melodies rendered to CREPE-like pseudo-activations (CREPE models) or played as tones and
CQT'd (CQT models; fingerprints.contour_frames); stores are cached per model in --cache.

    python benchmarks/learned_mirex.py --queries /tmp/bq/queries.tsv --out report.json
(queries.tsv from `humdex synth queries ../shared/data/mirex_qbsh_db/000{01..48}.mid --out DIR`).
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

ROOT = Path(__file__).resolve().parents[1]


def song_frames(contour, feature: str, frames_dir: Path | None, key: str):
    """A MIDI reference's model frames (fingerprints.contour_frames); CQT ones cached as float16
    .npy under frames_dir (model-independent, and the slow part of indexing a CQT model)."""
    from humdex.learned.fingerprints import contour_frames

    if feature == "crepe" or frames_dir is None:
        return contour_frames(contour, feature)
    path = frames_dir / f"{key.replace('/', '_')}.npy"
    if path.is_file():
        return np.load(path).astype(np.float32)
    frames = contour_frames(contour, feature)
    frames_dir.mkdir(parents=True, exist_ok=True)
    np.save(path.with_suffix(".tmp.npy"), frames.astype(np.float16))
    path.with_suffix(".tmp.npy").replace(path)
    return frames


def build_store(model, contours: dict, cache: Path, name: str, hop_s: float | None):
    from humdex.learned.fingerprints import fingerprint_frames
    from humdex.learned.stores import FaissStore

    folder = cache / name
    if (folder / "vectors.npz").is_file():
        return FaissStore.load(folder), None
    t0 = time.perf_counter()
    store = FaissStore()
    keys = list(contours)
    feature = model.config.feature
    frames_dir = cache / f"frames_{feature}"
    store.add(keys, [fingerprint_frames(model, song_frames(contours[k], feature, frames_dir, k), hop_s)
                     for k in tqdm(keys, desc=f"index {name}")])
    elapsed = time.perf_counter() - t0
    store.save(folder)
    return store, {"songs": len(keys), "seconds": round(elapsed, 1), "vectors": store.n_vectors,
                   "songs_per_min": round(len(keys) / elapsed * 60, 1), "feature": feature}


def rank_of(keys: list[str], truth: str) -> int:
    return keys.index(truth) + 1 if truth in keys else 0


def summarize(ranks: list[int]) -> dict:
    r = np.array(ranks)
    return {"n": len(r), "top1": round(float(np.mean(r == 1)), 4), "top10": round(float(np.mean((r > 0) & (r <= 10))), 4),
            "mrr": round(float(np.mean(np.where(r > 0, 1.0 / np.maximum(r, 1), 0.0))), 4)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--queries", required=True, help="TSV: query_path<TAB>song_id")
    p.add_argument("--db-dir", default=str(ROOT.parent / "shared/data/mirex_qbsh_db"))
    p.add_argument("--models", default="short,long", help="shipped model names or .pt paths")
    p.add_argument("--cache", default=str(ROOT / "out/learned_mirex_cache"))
    p.add_argument("--from-start-s", type=float, default=None,
                   help="queries start within this many seconds of the song's start (MIREX)")
    p.add_argument("--dtw-candidates", type=int, default=50)
    p.add_argument("--song-hop-s", type=float, default=None, help="songs' window hop (default: model's)")
    p.add_argument("--index-first-s", type=float, default=None,
                   help="fingerprint only each song's first seconds (enough for from-start queries)")
    p.add_argument("--no-classical", action="store_true")
    p.add_argument("--query-input", choices=("crepe", "contour"), default="crepe",
                   help="learned query input: CREPE-tiny activation, or the default tracker's "
                        "contour rendered to a pseudo-activation (fast)")
    p.add_argument("--no-scales", action="store_true",
                   help="fingerprint the query at its own tempo only (no query tempo scales)")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--precompute", choices=("cqt",), default=None,
                   help="only fill the cache's frames of every MIDI for this feature, then stop")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("HUMDEX_THREADS", "1")))  # shared CPU: 1 is fastest

    from humdex.classical.matcher import match
    from humdex.classical.references import ReferenceSet
    from humdex.frontend.audio import SAMPLE_RATE, load
    from humdex.frontend.contour import Contour
    from humdex.frontend.melody import notes_to_contour, read_melody
    from humdex.frontend.pitch import query_contour
    from humdex.learned.features import feature_windows
    from humdex.learned.fingerprints import fuse, query_fingerprints, search_store
    from humdex.learned.model import default_model_path, embed, file_sha256, load_model
    from humdex.learned.search import query_frames

    db = sorted(Path(args.db_dir).glob("*.mid"))
    t0 = time.perf_counter()
    contours = {f.stem: notes_to_contour(read_melody(f), hop_s=0.01) for f in tqdm(db, desc="read MIDI")}
    read_s = time.perf_counter() - t0
    if args.precompute:
        for k, c in tqdm(contours.items(), desc=f"{args.precompute} frames"):
            song_frames(c, args.precompute, Path(args.cache) / f"frames_{args.precompute}", k)
        return 0
    names = args.models.split(",")
    models = {n: load_model(n if n.endswith(".pt") else None, name=n) for n in names}
    tags = {n: file_sha256(Path(n) if n.endswith(".pt") else default_model_path(n))[:12] for n in names}
    stores, index_stats = {}, {"read_midi_s": read_s}
    indexed = contours
    if args.index_first_s:
        keep = int(args.index_first_s / 0.01)
        indexed = {k: Contour(c.midi[:keep], c.hop_s) for k, c in contours.items()}
    crop = f"_first{args.index_first_s:g}s" if args.index_first_s else ""
    crop += f"_hop{args.song_hop_s:g}" if args.song_hop_s else ""
    for n, m in models.items():
        stores[n], stats = build_store(m, indexed, Path(args.cache), f"{n}_{tags[n]}{crop}", args.song_hop_s)
        index_stats[n] = stats
    keys = list(contours)
    refs = ReferenceSet.from_contours([contours[k] for k in keys])
    queries = [line.split("\t") for line in Path(args.queries).read_text().splitlines() if line.strip()]
    queries = queries[: args.limit] if args.limit else queries
    qdir = Path(args.queries).parent
    ranks: dict[str, list[int]] = {}
    timing: dict[str, list[float]] = {}
    from_start = args.from_start_s is not None

    def add(name: str, value: float, table=timing) -> None:
        table.setdefault(name, []).append(value)

    for qpath, truth in tqdm(queries, desc="queries"):
        path = Path(qpath) if Path(qpath).is_absolute() else qdir / qpath
        audio = load(path, SAMPLE_RATE)
        t = time.perf_counter()
        frames = query_frames(audio, SAMPLE_RATE, query_contour(audio, SAMPLE_RATE)
                              if args.query_input == "contour" else None, args.query_input)
        for feature in {m.config.feature for m in models.values()}:
            frames(feature)
        add("pitch_ms", (time.perf_counter() - t) * 1e3)
        results = []
        for n, m in models.items():
            stages: dict[str, float] = {}
            act = frames(m.config.feature)
            if args.no_scales:
                t = time.perf_counter()
                win, _ = feature_windows(act, m.config.window, m.config.feature)
                stages["features"] = (time.perf_counter() - t) * 1e3
                t = time.perf_counter()
                q = embed(m, win)
                stages["embed"] = (time.perf_counter() - t) * 1e3
            else:
                q = query_fingerprints(m, act, timing=stages)
            res = search_store(stores[n], q, m.config.hop_s, top=200, max_offset_s=args.from_start_s,
                               song_hop_s=args.song_hop_s, timing=stages)
            for stage, ms in stages.items():
                add(f"{n}_{stage}_ms", ms)
            add(f"learned_{n}", rank_of([r.song_key for r in res], truth), ranks)
            results.append(res)
        if len(results) > 1:
            fused = fuse(results)
            add("learned_fused", rank_of([r.song_key for r in fused], truth), ranks)
        if args.no_classical:
            continue
        t = time.perf_counter()
        contour = query_contour(audio, SAMPLE_RATE)
        add("classical_pitch_ms", (time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        full = match(contour, refs, from_start=from_start, top=10)
        add("classical_search_ms", (time.perf_counter() - t) * 1e3)
        add("classical", rank_of([keys[mt.index] for mt in full], truth), ranks)
        best = fused if len(results) > 1 else results[0]
        cand = [r.song_key for r in best[: args.dtw_candidates]]
        t = time.perf_counter()
        sub = refs.select(np.array([keys.index(k) for k in cand]))
        dtw = match(contour, sub, from_start=from_start, top=10)
        add("learned_dtw_rerank_ms", (time.perf_counter() - t) * 1e3)
        add("learned+dtw", rank_of([cand[mt.index] for mt in dtw], truth), ranks)
        t = time.perf_counter()  # humdex's hybrid: both candidate lists, one DTW rerank
        both = match(contour, refs, from_start=from_start, top=10,
                     also=np.array([keys.index(k) for k in cand]))
        add("hybrid_dtw_ms", (time.perf_counter() - t) * 1e3)
        add("hybrid (classical + learned candidates, DTW)", rank_of([keys[mt.index] for mt in both], truth),
            ranks)
    report = {"queries": args.queries, "query_input": args.query_input, "query_scales": not args.no_scales, "n_songs": len(keys), "from_start_s": args.from_start_s,
              "index_first_s": args.index_first_s, "song_hop_s": args.song_hop_s,
              "models": tags, "index": index_stats,
              "results": {k: summarize(v) for k, v in ranks.items()},
              "ranks": {k: v for k, v in ranks.items()},  # per query, in the queries file's order
              "latency_ms": {k: {"p50": round(float(np.percentile(v, 50)), 1),
                                 "p95": round(float(np.percentile(v, 95)), 1)} for k, v in timing.items()}}
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
