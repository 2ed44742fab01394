"""Where a Milvus server's k-NN time goes: one request of 230 query vectors x k = 100 (a query's
fingerprints at its tempo scales) with and without output fields, under Strong and Bounded
consistency, and one request of 1 vector; then MilvusStore.search and the rerank's sequence
fetch of 200 songs. A fresh local server (humdex.learned.milvus_local) holds a FAISS store's songs.
With an `answers` path, also writes the top-10 song lists of 20 queries cut from the store's own
fingerprints (search_store: votes + rerank) and a digest of the 200 fetched sequences there, to
compare two versions of MilvusStore.

    nice -n 10 python benchmarks/milvus_knn_split.py out/mirex2048/learned/short-f41a5b89407b-hop0.5
"""

import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from humdex.learned.fingerprints import search_store
from humdex.learned.milvus_local import LocalMilvus
from humdex.learned.milvus_store import MilvusStore, close_clients
from humdex.learned.store_spec import parse_store
from humdex.learned.stores import FaissStore


def main(folder: str, index: str = "IVF_FLAT", work: str = "out/knn_split_srv", answers: str = "") -> dict:
    saved = FaissStore.load(Path(folder))
    keys = saved.keys()
    seqs = [saved.sequence(k) for k in keys]
    rng = np.random.default_rng(0)
    q = np.concatenate([seqs[i][:10] for i in rng.choice(len(seqs), 23, replace=False)]).astype(np.float32)
    out: dict = {}
    with LocalMilvus(Path(work), port=19530) as srv:
        store = MilvusStore(parse_store(f"{srv.uri}?index={index}").with_collection(), "split", dim=saved.dim)
        t0 = time.perf_counter()
        for i in range(0, len(keys), 256):
            store.add(keys[i:i + 256], seqs[i:i + 256])
        out["add_s"] = round(time.perf_counter() - t0, 1)
        store.wait_indexed()
        client, params = store._client, {"metric_type": "IP", "params": dict(store.index.search)}

        def timed(label: str, **kw) -> None:
            client.search(store.vectors_name, limit=100, search_params=params, **kw)  # warm
            ms = []
            for _ in range(5):
                t0 = time.perf_counter()
                client.search(store.vectors_name, limit=100, search_params=params, **kw)
                ms.append(1000 * (time.perf_counter() - t0))
            out[label] = round(float(np.median(ms)), 1)
            print(label, out[label], flush=True)

        fields = ["song", "frame"]
        timed("nq230_k100_fields", data=list(q), output_fields=fields)
        timed("nq230_k100_ids_only", data=list(q))
        timed("nq1_k100_fields", data=list(q[:1]), output_fields=fields)
        timed("nq1_k100_fields_bounded", data=list(q[:1]), output_fields=fields, consistency_level="Bounded")
        timed("nq230_k100_fields_bounded", data=list(q), output_fields=fields, consistency_level="Bounded")
        timed("nq230_k100_ids_only_bounded", data=list(q), consistency_level="Bounded")
        if hasattr(store, "_read_point"):  # MilvusStore's own consistency (issue 18's fix)
            timed("nq230_k100_fields_store_consistency", data=list(q), output_fields=fields,
                  **store._read_point())
        t0 = time.perf_counter()
        store.search(q, 100)
        out["MilvusStore.search_ms"] = round(1000 * (time.perf_counter() - t0), 1)
        for _ in range(2):
            t0 = time.perf_counter()
            store.sequences(keys[:200])
            out["sequences_200_songs_ms"] = round(1000 * (time.perf_counter() - t0), 1)
        if answers:
            fetched = store.sequences(keys[:200])
            digest = hashlib.sha256(b"".join(k.encode() + fetched[k].tobytes() for k in keys[:200]))
            lists, ms = [], []
            for i in rng.choice(len(seqs), 20, replace=False):
                start = int(rng.integers(0, max(1, len(seqs[i]) - 16)))
                t0 = time.perf_counter()
                found = search_store(store, seqs[i][start:start + 16].astype(np.float32), 0.5, top=10)
                ms.append(1000 * (time.perf_counter() - t0))
                lists.append([keys[i], [m.song_key for m in found]])
            out["search_store_ms_p50"] = round(float(np.median(ms)), 1)
            Path(answers).write_text(json.dumps({"sequences_sha256": digest.hexdigest(), "top10": lists}))
        close_clients()
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main(*sys.argv[1:])
