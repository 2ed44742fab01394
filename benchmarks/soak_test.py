"""Soak test: mixed search + add + delete clients against `humdex serve` on loopback for a bounded
time; latency percentiles per operation, errors, and the server's memory over the run.

    PYTHONPATH=src:tests python benchmarks/soak_test.py --clients 8 --duration 60
    PYTHONPATH=src:tests python benchmarks/soak_test.py --clients 16 --duration 600   # the issue's run

The catalog: --songs random MIDI melodies plus the 5 tunes of tests/service_data.py. Each client
is a closed loop (next request when the previous answer arrives) that searches (hummed tunes,
WAV) with probability 0.7, else adds one of its own random MIDI songs or deletes one it added
(at most 3 of its own at a time, so the catalog size stays level). Errors: any answer other than
200/201, and timeouts. RSS drift: median server RSS over the last 20 % of the run against the
median over 10-30 % (after warm-up: model loaded, DTW compiled, caches filled).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from load_test import free_port, start_server

from conftest import random_melody, write_midi
from service_data import TUNES, build_catalog, hum, wav_bytes


def client_loop(url: str, cid: int, queries: list[tuple[str, bytes]], songs: list[bytes],
                stop_at: float, log: dict, lock: threading.Lock, seed: int) -> None:
    rng = random.Random(seed)
    mine: list[str] = []
    serial = 0
    with httpx.Client(timeout=120) as client:
        while time.perf_counter() < stop_at:
            roll = rng.random()
            if roll < 0.7:
                op = "search"
            elif (roll < 0.85 and len(mine) < 3) or not mine:
                op = "add"
            else:
                op = "delete"
            t0 = time.perf_counter()
            try:
                if op == "search":
                    name, data = rng.choice(queries)
                    resp = client.post(f"{url}/search", files={"file": (name, data)})
                    ok = resp.status_code == 200
                elif op == "add":
                    serial += 1
                    song_id = f"soak-{cid}-{serial}"
                    resp = client.post(f"{url}/songs", files={"file": (f"{song_id}.mid", rng.choice(songs))},
                                       data={"song_id": song_id})
                    ok = resp.status_code == 201
                    if ok:
                        mine.append(song_id)
                else:
                    song_id = mine.pop(rng.randrange(len(mine)))
                    resp = client.delete(f"{url}/songs/{song_id}")
                    ok = resp.status_code == 200
                error = None if ok else f"{op} HTTP {resp.status_code}: {resp.text[:100]}"
            except httpx.HTTPError as exc:
                error = f"{op} {type(exc).__name__}: {exc}"[:160]
            elapsed = time.perf_counter() - t0
            with lock:
                (log["errors"].append(error) if error else log["latency"][op].append(elapsed))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--songs", type=int, default=60, help="random MIDI songs in the catalog")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="humdex-soak-") as tmp:
        root = Path(tmp)
        db = build_catalog(root)
        from humdex.catalog.catalog import Catalog

        extra = root / "extra"
        extra.mkdir()
        paths = [write_midi(extra / f"r{i:03d}.mid", random_melody(rng, 40)) for i in range(args.songs)]
        Catalog.open(db).add_files(paths, progress=False)
        pool = root / "pool"
        pool.mkdir()
        songs = [write_midi(pool / f"p{i:03d}.mid", random_melody(rng, 40)).read_bytes() for i in range(50)]
        queries = [(f"{name}.wav", wav_bytes(hum(TUNES[name], first=2, n_notes=12, seed=i)))
                   for i, name in enumerate(TUNES)]
        port = free_port()
        server = start_server(db, port, timeout_s=120)
        url = f"http://127.0.0.1:{port}"
        proc = psutil.Process(server.pid)
        log: dict = {"latency": defaultdict(list), "errors": []}
        lock = threading.Lock()
        rss: list[tuple[float, float]] = []
        try:
            with httpx.Client(timeout=120) as client:  # warm-up: model, fingerprints, DTW kernels
                for name, data in queries:
                    client.post(f"{url}/search", files={"file": (name, data)})
            t_start = time.perf_counter()
            stop_at = t_start + args.duration
            threads = [threading.Thread(target=client_loop, daemon=True,
                                        args=(url, c, queries, songs, stop_at, log, lock, args.seed + c))
                       for c in range(args.clients)]
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                rss.append((time.perf_counter() - t_start, proc.memory_info().rss / 2**20))
                time.sleep(1.0)
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - t_start
            final_songs = httpx.get(f"{url}/health").json()["songs"]
        finally:
            server.terminate()
            server.wait(timeout=30)
    values = np.array([m for _, m in rss])
    n = len(values)
    early = float(np.median(values[int(0.1 * n): max(int(0.3 * n), int(0.1 * n) + 1)]))
    late = float(np.median(values[int(0.8 * n):]))
    ops = {}
    for op, lat in sorted(log["latency"].items()):
        ms = np.array(lat) * 1000
        ops[op] = {"count": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 1),
                   "p95_ms": round(float(np.percentile(ms, 95)), 1),
                   "p99_ms": round(float(np.percentile(ms, 99)), 1), "max_ms": round(float(ms.max()), 1)}
    all_ms = np.concatenate([np.array(v) for v in log["latency"].values()]) * 1000
    summary = {
        "clients": args.clients, "duration_s": round(elapsed, 1),
        "requests": int(len(all_ms) + len(log["errors"])), "errors": len(log["errors"]),
        "throughput_rps": round(len(all_ms) / elapsed, 2),
        "p50_ms": round(float(np.percentile(all_ms, 50)), 1),
        "p95_ms": round(float(np.percentile(all_ms, 95)), 1),
        "p99_ms": round(float(np.percentile(all_ms, 99)), 1),
        "ops": ops, "catalog_songs_end": final_songs,
        "rss_mb_start": round(float(values[0]), 1), "rss_mb_early": round(early, 1),
        "rss_mb_late": round(late, 1), "rss_mb_max": round(float(values.max()), 1),
        "rss_drift_pct": round(100 * (late - early) / early, 1),
        "error_examples": sorted(set(log["errors"]))[:5],
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rss": rss}, indent=1))
    return 1 if log["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
