"""What a rejected input costs: time and memory of each bomb of issue 17, over HTTP and the CLI.

    PYTHONPATH=src:tests python benchmarks/bomb_inputs.py [--json out.json]

HTTP: a `humdex serve` subprocess on loopback over a 2-song catalog; each bomb is POSTed to
/search (queries) or /songs (songs) once; reported: status, seconds to the answer, and the
server's peak RSS above its idle RSS during the request (psutil, polled every 2 ms).
CLI: `humdex search BOMB` / `humdex add BOMB` in a fresh process each: exit status, wall
seconds, peak RSS (ru_maxrss of the child) above that of `humdex list` (search) or of `humdex
add` of a song already there (add: it loads the model too) on the same catalog.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from load_test import free_port, start_server

from bomb_files import BOMBS, pv_200s
from service_data import build_catalog


def peak_rss_during(proc: psutil.Process, work) -> tuple[object, float]:  # type: ignore[no-untyped-def]
    """(work(), peak RSS in MB of `proc` while it ran)."""
    peak = [proc.memory_info().rss]
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            try:
                peak[0] = max(peak[0], proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.002)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        result = work()
    finally:
        done.set()
        thread.join()
    return result, peak[0] / 2**20


def cli_run(args: list[str]) -> tuple[int, float, float, str]:
    """(exit status, seconds, peak RSS MB, last stderr line) of `humdex ARGS` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "humdex", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    lines = err.strip().splitlines()
    return os.waitstatus_to_exitcode(status), seconds, usage.ru_maxrss / 1024, lines[-1] if lines else ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="humdex-bombs-") as tmp:
        root = Path(tmp)
        db = build_catalog(root, ["ode_to_joy", "twinkle"])
        files = {}
        for name, (filename, make, _) in BOMBS.items():
            files[name] = root / filename
            files[name].write_bytes(make())
        port = free_port()
        server = start_server(db, port)
        url = f"http://127.0.0.1:{port}"
        try:
            proc = psutil.Process(server.pid)
            with httpx.Client(timeout=120) as client:
                client.get(f"{url}/health")
                time.sleep(1.0)
                idle = proc.memory_info().rss / 2**20
                jobs = [(name, where) for name, (_, _, places) in BOMBS.items() for where in places]
                jobs.append(("pv_200s", "query"))
                for name, where in jobs:
                    data = pv_200s() if name == "pv_200s" else files[name].read_bytes()
                    filename = "long.pv" if name == "pv_200s" else files[name].name
                    endpoint = "/search" if where == "query" else "/songs"
                    t0 = time.perf_counter()
                    resp, peak = peak_rss_during(proc, lambda e=endpoint, d=data, f=filename:
                                                 client.post(f"{url}{e}", files={"file": (f, d)}))
                    rows.append({"via": "http", "input": name, "as": where, "bytes": len(data),
                                 "status": resp.status_code, "seconds": round(time.perf_counter() - t0, 3),
                                 "extra_rss_mb": round(peak - idle, 1),
                                 "detail": resp.json().get("detail", "")[:90]})
                    print(rows[-1], flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
        _, _, base_rss, _ = cli_run(["list", "--db", str(db)])
        song = next((root / "songs").glob("*.mid"))  # already in the catalog: `add` does no work
        _, _, base_add_rss, _ = cli_run(["add", str(song), "--db", str(db), "--quiet"])
        for name, (_, _, places) in BOMBS.items():
            for where in places:
                cmd = (["search", str(files[name]), "--db", str(db)] if where == "query"
                       else ["add", str(files[name]), "--db", str(db), "--quiet"])
                code, seconds, rss, line = cli_run(cmd)
                rows.append({"via": "cli", "input": name, "as": where, "bytes": files[name].stat().st_size,
                             "status": code, "seconds": round(seconds, 3),
                             "extra_rss_mb": round(rss - (base_rss if where == "query" else base_add_rss), 1),
                             "detail": line[:90]})
                print(rows[-1], flush=True)
    http = [r for r in rows if r["via"] == "http"]
    cli = [r for r in rows if r["via"] == "cli"]
    summary = {"http_max_s": max(r["seconds"] for r in http),
               "http_max_extra_rss_mb": max(r["extra_rss_mb"] for r in http),
               "http_all_4xx": all(400 <= r["status"] < 500 for r in http),
               "cli_max_s": max(r["seconds"] for r in cli),
               "cli_max_extra_rss_mb": max(r["extra_rss_mb"] for r in cli),
               "cli_all_exit_2": all(r["status"] == 2 for r in cli),
               "cli_list_rss_mb": round(base_rss, 1),
               "cli_add_unchanged_rss_mb": round(base_add_rss, 1), "server_idle_rss_mb": round(idle, 1)}
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
