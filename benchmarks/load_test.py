"""Load test of a running humdex server: N concurrent clients POST queries for a bounded time.

    python benchmarks/load_test.py --url http://127.0.0.1:8000 --query hum.wav --clients 4 --duration 30
    python benchmarks/load_test.py --db CATALOG_DIR --query hum.wav ...   # starts `humdex serve` itself

Each client is a thread with its own keep-alive connection that sends the next query as soon as
the previous answer arrives (a closed loop). Reports throughput, latency p50/p95/p99 and errors
(non-2xx answers, timeouts, connection failures), as a table and optionally as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np


@dataclass
class ClientLog:
    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LoadReport:
    url: str
    clients: int
    duration_s: float
    requests: int
    errors: int
    throughput_rps: float
    latency_ms_p50: float
    latency_ms_p95: float
    latency_ms_p99: float
    latency_ms_max: float
    error_examples: list[str]


def run_client(url: str, queries: list[tuple[str, bytes]], params: dict, stop_at: float,
               timeout_s: float, log: ClientLog, offset: int) -> None:
    """Send queries back to back until `stop_at` (time.perf_counter seconds); log each outcome."""
    i = offset
    with httpx.Client(timeout=timeout_s) as client:
        while time.perf_counter() < stop_at:
            name, data = queries[i % len(queries)]
            i += 1
            t0 = time.perf_counter()
            try:
                resp = client.post(f"{url}/search", params=params,
                                   files={"file": (name, data, "application/octet-stream")})
                if resp.status_code != 200:
                    log.errors.append(f"HTTP {resp.status_code}: {resp.text[:120]}")
                    continue
                resp.json()
            except (httpx.HTTPError, ValueError) as exc:
                log.errors.append(f"{type(exc).__name__}: {exc}"[:160])
                continue
            log.latencies_s.append(time.perf_counter() - t0)


def load_test(url: str, queries: list[tuple[str, bytes]], clients: int, duration_s: float,
              top: int = 10, timeout_s: float = 60.0, warmup: int = 2) -> LoadReport:
    """Run `clients` closed-loop clients for `duration_s` seconds after `warmup` unmeasured queries."""
    params = {"top": top}
    with httpx.Client(timeout=timeout_s) as client:
        for k in range(warmup):
            name, data = queries[k % len(queries)]
            client.post(f"{url}/search", params=params, files={"file": (name, data)})
    logs = [ClientLog() for _ in range(clients)]
    t_start = time.perf_counter()
    stop_at = t_start + duration_s
    threads = [threading.Thread(target=run_client, args=(url, queries, params, stop_at, timeout_s,
                                                         logs[c], c), daemon=True)
               for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t_start
    lat_ms = np.array([x for log in logs for x in log.latencies_s]) * 1000.0
    errors = [e for log in logs for e in log.errors]
    pct = (lambda q: float(np.percentile(lat_ms, q))) if len(lat_ms) else (lambda q: float("nan"))
    return LoadReport(url=url, clients=clients, duration_s=round(elapsed, 2),
                      requests=len(lat_ms) + len(errors), errors=len(errors),
                      throughput_rps=round(len(lat_ms) / elapsed, 3),
                      latency_ms_p50=round(pct(50), 1), latency_ms_p95=round(pct(95), 1),
                      latency_ms_p99=round(pct(99), 1),
                      latency_ms_max=round(float(lat_ms.max()) if len(lat_ms) else float("nan"), 1),
                      error_examples=sorted(set(errors))[:5])


def synth_queries(midi_dir: Path, n: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """n WAV queries: synthesized people singing 8-12 s passages of random MIDI songs in midi_dir."""
    import io

    import soundfile as sf

    from humdex.demo import excerpt
    from humdex.frontend.melody import read_midi
    from humdex.synth.render import render_query

    rng = np.random.default_rng(seed)
    files = sorted(midi_dir.glob("*.mid"))
    out = []
    for path in rng.choice(files, n, replace=False):
        rendition = render_query(excerpt(read_midi(path), rng)[0], rng)
        buf = io.BytesIO()
        sf.write(buf, rendition.audio, rendition.sample_rate, format="WAV", subtype="PCM_16")
        out.append((f"{rendition.kind}_{path.stem}.wav", buf.getvalue()))
    return out


def in_process_ms(db: Path, queries: list[tuple[str, bytes]], rounds: int = 2) -> float:
    """p50 milliseconds of the same work without HTTP: decode, pitch-track, search (top 10)."""
    from humdex.catalog.catalog import Catalog
    from humdex.frontend import audio
    from humdex.search import query_from_audio, search

    snapshot = Catalog.open(db).snapshot()
    times = []
    for r in range(rounds + 1):  # round 0 warms up (references, JIT-compiled DTW), not timed
        for name, data in queries:
            t0 = time.perf_counter()
            samples = audio.decode(data, audio.SAMPLE_RATE, suffix_hint=Path(name).suffix)
            search(query_from_audio(samples, audio.SAMPLE_RATE, name), snapshot, top=10, db_dir=db)
            if r > 0:
                times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db: Path, port: int, timeout_s: float = 60.0) -> subprocess.Popen:
    """Start `humdex serve` on 127.0.0.1:port in a subprocess and wait until /health answers."""
    cmd = [sys.executable, "-m", "humdex", "serve", "--db", str(db), "--host", "127.0.0.1",
           "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()[-500:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("server did not answer /health in time")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="base URL of a running server, e.g. http://127.0.0.1:8000")
    target.add_argument("--db", type=Path, help="catalog folder: start `humdex serve` on it here")
    queries = p.add_mutually_exclusive_group(required=True)
    queries.add_argument("--query", type=Path, nargs="+", help="query files, cycled")
    queries.add_argument("--hum-midi", type=Path,
                         help="folder of MIDI songs: synthesize --n-queries sung queries of them")
    p.add_argument("--n-queries", type=int, default=8)
    p.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4],
                   help="concurrency levels to run one after the other")
    p.add_argument("--duration", type=float, default=30.0, help="seconds per concurrency level")
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--timeout", type=float, default=60.0, help="per-request timeout (s)")
    p.add_argument("--json", type=Path, help="also write the reports here as JSON")
    p.add_argument("--in-process", action="store_true",
                   help="with --db: first time the same queries in process (no HTTP) as a baseline")
    args = p.parse_args(argv)

    queries = ([(q.name, q.read_bytes()) for q in args.query] if args.query
               else synth_queries(args.hum_midi, args.n_queries))
    proc = None
    url = args.url.rstrip("/") if args.url else None
    baseline = in_process_ms(args.db, queries) if args.in_process and args.db else None
    if baseline is not None:
        print(f"in process (no HTTP), same queries: p50 {baseline:.1f} ms")
    if args.db is not None:
        port = free_port()
        proc = start_server(args.db, port)
        url = f"http://127.0.0.1:{port}"
    try:
        reports = [load_test(url, queries, c, args.duration, args.top, args.timeout)
                   for c in args.clients]
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"{'clients':>7} {'requests':>8} {'errors':>6} {'req/s':>7} {'p50 ms':>8} "
          f"{'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for r in reports:
        print(f"{r.clients:>7} {r.requests:>8} {r.errors:>6} {r.throughput_rps:>7.2f} "
              f"{r.latency_ms_p50:>8.1f} {r.latency_ms_p95:>8.1f} {r.latency_ms_p99:>8.1f} "
              f"{r.latency_ms_max:>8.1f}")
        for e in r.error_examples:
            print(f"        error: {e}")
    if args.json:
        args.json.write_text(json.dumps({"in_process_p50_ms": baseline,
                                         "reports": [asdict(r) for r in reports]}, indent=2))
    return 1 if any(r.errors for r in reports) else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
