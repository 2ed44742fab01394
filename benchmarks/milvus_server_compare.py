"""store_compare.py against a real Milvus standalone server, one fresh server per index type.

For each `--index` a new server (PyPI's `milvus` 2.3 binary, humdex.learned.milvus_local) is started
on `--port` in `--work/<index>`, store_compare.py runs with `--store exact`, the `--also` stores
(first run only) and `--store http://127.0.0.1:PORT?index=INDEX`, while a thread samples the
server's RSS (/proc) for its peak; then the server is stopped (SIGTERM) and its folder deleted.

    HUMDEX_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 nice -n 10 \\
      python benchmarks/milvus_server_compare.py --db out/mirex2048 \\
        --queries out/mirex_q/anywhere10/queries.tsv --also faiss --also milvus://out/lite.db \\
        --index HNSW --index IVF_FLAT --index IVF_SQ8 --index IVF_PQ --index FLAT
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from humdex.learned.milvus_local import LocalMilvus

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--index", action="append", required=True)
    p.add_argument("--also", action="append", default=[], help="more stores for the first run")
    p.add_argument("--port", type=int, default=19530)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--work", default="out/milvus_server_compare")
    args = p.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    summary = {}
    for i, index in enumerate(args.index):
        folder = work / index
        shutil.rmtree(folder, ignore_errors=True)
        t0 = time.perf_counter()
        server = LocalMilvus(folder, port=args.port).start()
        start_s = time.perf_counter() - t0
        idle = server.rss_bytes()
        peak, done = [idle], threading.Event()

        def sample(server=server, peak=peak, done=done) -> None:
            while not done.wait(0.5):
                try:
                    peak[0] = max(peak[0], server.rss_bytes())
                except OSError:
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        out = work / f"{index}.json"
        stores = ["exact", *(args.also if i == 0 else []), f"{server.uri}?index={index}"]
        cmd = [sys.executable, str(HERE / "store_compare.py"), "--db", args.db, "--queries",
               args.queries, "--server-pid", str(server.pid), "--server-data", str(folder / "data"),
               "--work", str(work / "faiss"), "--out", str(out), "--limit", str(args.limit)]
        for store in stores:
            cmd += ["--store", store]
        try:
            subprocess.run(cmd, check=True)
        finally:
            done.set()
            sampler.join()
            server.stop()
            shutil.rmtree(folder, ignore_errors=True)
        summary[index] = {"server_start_s": round(start_s, 1), "server_idle_rss": idle,
                          "server_peak_rss": peak[0]}
        print(index, json.dumps(summary[index]), flush=True)
    (work / "servers.json").write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
