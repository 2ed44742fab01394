"""Cold-start time of `humdex search` as a user runs it: one fresh process per query.

Runs the installed CLI `--runs` times per method (hyperfine-style: the runs of the methods
interleave, so load on the machine shifts them alike), and reports wall seconds (min / median /
max), the process's CPU seconds (user + sys: what a loaded machine inflates least) and the
search's own timing line (pitch / search milliseconds) of each run.

    python benchmarks/cold_start.py --db DB --query Q.wav --runs 5 [--method classical --method auto] \
        [--baseline-src /tmp/base/src]

--baseline-src runs the same commands with another checkout's `src` first on PYTHONPATH (e.g.
`git worktree add /tmp/base COMMIT`), interleaved with this checkout's runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def one_run(cmd: list[str], src: str | None = None) -> tuple[float, float, str]:
    """(wall s, CPU s of the child, its stdout) of one fresh process (`src` first on its PYTHONPATH)."""
    env = dict(os.environ, PYTHONPATH=src) if src else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    if done.stderr.strip():
        print(f"  stderr of {cmd[-1]}: {done.stderr.strip()[:300]}", file=sys.stderr)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def summary(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3),
            "max": round(max(values), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True)
    ap.add_argument("--query", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--method", action="append", help="classical | learned | hybrid | auto (default: classical, auto)")
    ap.add_argument("--warmup", type=int, default=1, help="runs first, not counted (fills OS and humdex caches)")
    ap.add_argument("--baseline-src", help="another checkout's src folder, run interleaved as 'baseline'")
    ap.add_argument("--out", help="write the results as JSON")
    args = ap.parse_args()
    methods = args.method or ["classical", "auto"]
    variants = {"head": None, **({"baseline": args.baseline_src} if args.baseline_src else {})}
    runs = {f"{v}/{m}": ([sys.executable, "-m", "humdex", "search", args.query, "--db", args.db,
                          "--method", m], src) for v, src in variants.items() for m in methods}
    for _ in range(args.warmup):
        for cmd, src in runs.values():
            one_run(cmd, src)
    walls: dict[str, list[float]] = {k: [] for k in runs}
    cpus: dict[str, list[float]] = {k: [] for k in runs}
    inner: dict[str, list[str]] = {k: [] for k in runs}
    load = [os.getloadavg()[0]]
    for _ in range(args.runs):
        for k, (cmd, src) in runs.items():
            wall, cpu, out = one_run(cmd, src)
            walls[k].append(wall)
            cpus[k].append(cpu)
            inner[k].append(re.sub(r"^query \S+: ", "", out.splitlines()[0]))
    load.append(os.getloadavg()[0])
    report = {"db": args.db, "query": args.query, "runs": args.runs, "load_average": load,
              "variants": {k: {"wall_s": summary(walls[k]), "cpu_s": summary(cpus[k]),
                               "inner_timings": inner[k]} for k in runs}}
    print(json.dumps(report, indent=1, ensure_ascii=False))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
