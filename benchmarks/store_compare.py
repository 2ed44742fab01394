"""Vector stores against exact search on one catalog: FAISS (HNSW, float16, SQ8, IVF-PQ) and Milvus.

For each store the catalog's song fingerprints are loaded into it, and every query (fingerprinted
once at the catalog's tempo scales, as the product does) is searched with the product's
`search_store` (k-NN votes -> 200 candidates -> sequence rerank). Reported per store: build time,
bytes per vector and per song in RAM and on disk, k-NN time per query, recall@k of the k-NN stage
against exact search (the (song, frame) neighbours of every query vector), recall of the 200
candidate songs, top-1/top-10 hit rates, and how many queries' top-10 lists equal those of the
default FAISS store (HNSW) and of exact search.

    HUMDEX_THREADS=1 python benchmarks/store_compare.py --db out/mirex2048 \
        --queries out/mirex_q/anywhere10/queries.tsv --store exact --store faiss \
        --store faiss:f16 --store faiss:sq8 --store faiss:pq --store milvus://out/bench_milvus.db

A Milvus server (`--store http://host:19530?index=IVF_PQ`): give --server-pid (its process, whose
VmRSS is read from /proc before and after the build) and --server-data (its data folder, whose
growth is the disk figure) where it runs on this machine. A Milvus build ends when Milvus has
sealed and indexed every vector (MilvusStore.wait_indexed), so that the index itself is searched.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def load_queries(qfile: Path, model, snap, config, limit: int):
    """[(list of ScaledQuery | None, true song id)], fingerprinted as learned_matches does."""
    from humdex.errors import HumdexError
    from humdex.learned.fingerprints import query_fingerprints
    from humdex.learned.search import query_frames, query_scales_for
    from humdex.search import load_query

    lines = [ln.split("\t") for ln in qfile.read_text().splitlines() if ln.strip()][: limit or None]
    out = []
    for path, truth in lines:
        try:
            contour = load_query(qfile.parent / path).contour
        except HumdexError:  # a miss, as in `humdex eval`
            out.append((None, truth.strip()))
            continue
        frames = query_frames(None, 0, contour, config.query_input)(model.config.feature)
        out.append((query_fingerprints(model, frames, query_scales_for(snap, config), model.config.hop_s),
                    truth.strip()))
    return out


def vm_rss(pid: int) -> int:
    """A process's resident memory in bytes (VmRSS of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def build(name: str, saved, work: Path, server_pid: int = 0, server_data: str = "",
          extra: dict | None = None):
    """(store, build seconds, RAM bytes, disk bytes) of `name` holding `saved`'s songs; `extra`
    collects a Milvus build's details (insert / index seconds, server RSS)."""
    from humdex.learned.stores import FaissStore

    keys = saved.keys()
    seqs = [saved.sequence(k) for k in keys]
    extra = {} if extra is None else extra
    t0 = time.perf_counter()
    if name.startswith(("milvus", "http")):
        import psutil

        from humdex.learned.milvus_store import MilvusStore, close_clients
        from humdex.learned.store_spec import parse_store

        me = psutil.Process()
        rss0 = me.memory_info().rss + sum(c.memory_info().rss for c in me.children(recursive=True))
        spec = parse_store(name).with_collection()
        server = spec.is_server and server_pid
        srv0 = vm_rss(server_pid) if server else 0
        disk0 = folder_bytes(Path(server_data)) if server and server_data else 0
        store = MilvusStore(spec, "bench", dim=saved.dim)
        for i in range(0, len(keys), 256):
            store.add(keys[i:i + 256], seqs[i:i + 256])
        extra["insert_s"] = round(time.perf_counter() - t0, 1)
        extra["index_wait_s"] = round(store.wait_indexed(), 1)
        store.search(seqs[0][:1], 1)  # loads / indexes
        build_s = time.perf_counter() - t0
        close_clients()  # as a new process would: open the file again, load the collections
        t1 = time.perf_counter()
        store = MilvusStore(spec, "bench", dim=saved.dim)
        store.search(seqs[0][:1], 1)
        extra["reopen_s"] = round(time.perf_counter() - t1, 1)
        print(f"{name}: reopened and loaded in {extra['reopen_s']:.1f} s", flush=True)
        rss = me.memory_info().rss + sum(c.memory_info().rss for c in me.children(recursive=True))
        if server:  # RAM: the server's RSS growth; the client's is reported beside it
            srv = vm_rss(server_pid)
            extra.update(server_rss_before=srv0, server_rss_after=srv, client_rss_growth=rss - rss0)
            ram = srv - srv0
        else:
            ram = rss - rss0  # milvus-lite runs in this process: its RSS growth
        if server_data and spec.is_server:
            disk = folder_bytes(Path(server_data)) - disk0
        else:
            lite = Path(spec.uri)
            disk = folder_bytes(lite) if lite.is_dir() else (lite.stat().st_size if lite.exists() else -1)
        return store, build_s, ram, disk
    exact = name == "exact"
    codec = "flat" if exact or ":" not in name else name.split(":")[1]
    store = FaissStore(dim=saved.dim, exact_limit=10**12 if exact else saved.exact_limit, codec=codec)
    store.add(keys, seqs)
    store.search(seqs[0][:1], 1)  # builds the index
    build_s = time.perf_counter() - t0
    folder = work / name.replace(":", "_")
    store.save(folder)
    disk = (folder / "vectors.npz").stat().st_size
    import faiss

    index_bytes = len(faiss.serialize_index(store._index))
    seq_bytes = sum(s.nbytes for s in store._seqs.values())
    return store, build_s, index_bytes + seq_bytes, disk


class Remembered:
    """A store whose search() answers a repeated (vectors, k) from memory; the rest passes through."""

    def __init__(self, store) -> None:
        self.store, self.last = store, None

    def search(self, vectors: np.ndarray, k: int):
        key = (vectors.tobytes(), k)
        if self.last is None or self.last[0] != key:
            self.last = (key, self.store.search(vectors, k))
        return self.last[1]

    def __getattr__(self, name: str):
        return getattr(self.store, name)


def neighbours(hits) -> list[set]:
    return [{(k, f) for k, f in zip(keys, frames) if k} for keys, frames in zip(hits.song_keys, hits.frames)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True, help="catalog folder (its learned store is synced first)")
    p.add_argument("--queries", required=True, action="append", help="queries.tsv (repeatable)")
    p.add_argument("--store", action="append", required=True,
                   help="exact | faiss | faiss:f16|sq8|pq | milvus://file.db | http://host:port")
    p.add_argument("--model", default="short")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--k", type=int, default=100, help="k-NN k (the product's KNN_K)")
    p.add_argument("--work", default="out/store_compare")
    p.add_argument("--out", default=None)
    p.add_argument("--server-pid", type=int, default=0, help="a local Milvus server's process id")
    p.add_argument("--server-data", default="", help="a local Milvus server's data folder")
    args = p.parse_args(argv)
    import faiss

    from humdex.catalog.catalog import Catalog
    from humdex.learned.fingerprints import N_CANDIDATES, scale_votes, search_store
    from humdex.learned.model import model_handle
    from humdex.learned.search import LearnedConfig, key_song_id, store_folder, sync_catalog
    from humdex.learned.stores import FaissStore

    faiss.omp_set_num_threads(int(os.environ.get("HUMDEX_THREADS", "1")))
    catalog = Catalog.open(args.db)
    snap = catalog.snapshot()
    config = LearnedConfig(models=(args.model,))
    sync_catalog(catalog.db_dir, snap, config)
    handle = model_handle(args.model)
    model = handle.encoder
    song_hop = handle.song_hop_s(config.min_song_hop_s)
    saved = FaissStore.load(store_folder(catalog.db_dir, handle, song_hop, config.audio_songs))
    queries = [q for f in args.queries for q in load_queries(Path(f), model, snap, config, args.limit)]
    work = Path(args.work)
    report: dict = {"db": args.db, "queries": args.queries, "n_queries": len(queries),
                    "songs": len(saved), "vectors": saved.n_vectors, "stores": {}}
    print(f"{len(saved)} songs, {saved.n_vectors} vectors, {len(queries)} queries", flush=True)
    reference: dict[str, tuple] = {}  # "exact" and "faiss": per query (neighbours, candidates, top-10)
    for name in args.store:
        extra: dict = {}
        store, build_s, ram, disk = build(name, saved, work, args.server_pid, args.server_data, extra)
        knn_ms, rerank_ms, answers, ranks = [], [], [], []
        for q, truth in queries:
            if q is None:
                answers.append(None)
                ranks.append(0)
                continue
            fp = np.concatenate([s.fingerprints for s in q])
            once = Remembered(store)  # one k-NN search per query serves all three uses
            t = time.perf_counter()
            hits = once.search(fp, args.k)
            knn_ms.append(1000 * (time.perf_counter() - t))
            keys, votes = scale_votes(once, q, args.k)
            order = np.argsort(-votes.max(axis=1), kind="stable")[:N_CANDIDATES] if keys else []
            t = time.perf_counter()
            top = [key_song_id(m.song_key) for m in search_store(once, q, model.config.hop_s, top=10,
                                                                 song_hop_s=song_hop)]
            rerank_ms.append(1000 * (time.perf_counter() - t))
            answers.append((neighbours(hits), {keys[i] for i in order}, top))
            ranks.append(top.index(truth) + 1 if truth in top else 0)
        if name in ("exact", "faiss"):
            reference[name] = answers
        row: dict = {"build_s": round(build_s, 1), "ram_bytes": ram, "disk_bytes": disk,
                     "ram_bytes_per_song": round(ram / len(saved)), "disk_bytes_per_song": round(disk / len(saved)),
                     "knn_ms_p50": round(float(np.median(knn_ms)), 1),
                     "knn_ms_p95": round(float(np.percentile(knn_ms, 95)), 1),
                     "votes_rerank_ms_p50": round(float(np.median(rerank_ms)), 1),
                     "top1": round(float(np.mean(np.array(ranks) == 1)), 3),
                     "top10": round(float(np.mean(np.array(ranks) > 0)), 3), **extra}
        for ref_name, ref in reference.items():
            pairs = [(a, b) for a, b in zip(answers, ref) if a is not None and b is not None]
            row[f"recall_at_{args.k}_vs_{ref_name}"] = round(float(np.mean(
                [len(x & y) / max(1, len(y)) for a, b in pairs for x, y in zip(a[0], b[0])])), 4)
            row[f"candidate_recall_vs_{ref_name}"] = round(float(np.mean(
                [len(a[1] & b[1]) / max(1, len(b[1])) for a, b in pairs])), 4)
            row[f"same_top10_as_{ref_name}"] = f"{sum(a[2] == b[2] for a, b in pairs)}/{len(pairs)}"
        report["stores"][name] = row
        print(name, json.dumps(row), flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
