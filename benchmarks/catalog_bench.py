"""Index the MIREX-protocol database and time searches with real recordings (needs ../shared/data).

Usage: python benchmarks/catalog_bench.py [--data ../shared/data] [--repeats 3] [--from-start]
Prints index time, reopen time, peak memory, per-stage latency p50/p95 and the ranks of the known
MIR-QBSH query (茉莉花 = song 00029) from its recording and its .pv.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from humdex.catalog.catalog import Catalog
from humdex.search import load_query, search


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / "../shared/data"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pitch", default=None)
    ap.add_argument("--method", default="classical", help="search method (humdex.search)")
    args = ap.parse_args()
    data = Path(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        run(args, data, Path(tmp) / "db")


def run(args: argparse.Namespace, data: Path, db: Path) -> None:
    started = time.perf_counter()
    catalog = Catalog.open(db, create=True)
    catalog.add_files([data / "mirex_qbsh_db"], progress=False)
    index_s = time.perf_counter() - started
    started = time.perf_counter()
    catalog = Catalog.open(db)
    snap = catalog.snapshot()
    snap.references()
    reopen_s = time.perf_counter() - started
    disk_mb = sum(p.stat().st_size for p in db.iterdir() if p.is_file()) / 1e6
    print(f"index {len(snap.songs)} songs: {index_s:.1f} s; reopen+references {reopen_s:.2f} s; "
          f"catalog on disk {disk_mb:.1f} MB")
    toolbox = data / "dev_queries" / "jang_toolbox"
    wavs = sorted(toolbox.glob("*.wav"))
    load_query(wavs[0], args.pitch)  # warm-up: model load and numba compilation
    search(load_query(wavs[0], args.pitch), snap, method=args.method, db_dir=db)
    for from_start in (False, True):
        pitch_ms, search_ms, total_ms = [], [], []
        for _ in range(args.repeats):
            for wav in wavs:
                started = time.perf_counter()
                result = search(load_query(wav, args.pitch), snap, from_start=from_start,
                                method=args.method, db_dir=db)
                total_ms.append((time.perf_counter() - started) * 1e3)
                pitch_ms.append(result.timing_ms["pitch"])
                search_ms.append(result.timing_ms["search"])
        mode = "from-start" if from_start else "anywhere"
        print(f"{mode}: {len(total_ms)} searches of {len(wavs)} real recordings (8-10 s): "
              + ", ".join(f"{name} p50 {np.percentile(v, 50):.0f} / p95 {np.percentile(v, 95):.0f} ms"
                          for name, v in (("pitch", pitch_ms), ("search", search_ms),
                                          ("total", total_ms))))
        for name in ("茉莉花_不詳_0.wav", "茉莉花_不詳_0.pv"):
            result = search(load_query(toolbox / name, args.pitch), snap, top=100,
                            from_start=from_start, method=args.method, db_dir=db)
            ids = [h.song_id for h in result.hits]
            rank = ids.index("00029") + 1 if "00029" in ids else None
            print(f"  {name}: rank of 00029 = {rank}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
