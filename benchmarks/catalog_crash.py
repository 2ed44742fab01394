"""Catalog crash and race benchmark: many kill -9 points and rounds of concurrent writers.

    PYTHONPATH=src:tests python benchmarks/catalog_crash.py --kill-rounds 58 --writer-rounds 20

Kill rounds: a writer adds/removes random MIDI songs one at a time (every --learned-every'th
round also fingerprinting them into the learned store) and is killed with SIGKILL at a random
moment; the catalog must then pass `humdex check` and hold every song reported committed (and
none reported removed). A fresh catalog every 3 rounds, so kills land on creation too. Writer
rounds: --writers processes add their own songs to one new catalog at once, in every
--writers-learned-every'th round each fingerprinting after each add (the `humdex add A & humdex
add B` case); nothing may be lost or corrupt.
The same driver runs a few rounds in tests/test_integrity.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from crash_driver import kill_round, make_songs, writers_round


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kill-rounds", type=int, default=58)
    p.add_argument("--writer-rounds", type=int, default=20)
    p.add_argument("--writers", type=int, default=3)
    p.add_argument("--writers-learned-every", type=int, default=2,
                   help="writer rounds that also fingerprint (each writer loads the model: slow)")
    p.add_argument("--songs-per-writer", type=int, default=2)
    p.add_argument("--learned-every", type=int, default=4, help="kill rounds that also fingerprint")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    results = {"kill": [], "writers": []}
    with tempfile.TemporaryDirectory(prefix="humdex-crash-") as tmp:
        root = Path(tmp)
        songs = make_songs(root / "songs", 24, seed=args.seed)
        t0 = time.perf_counter()
        for r in range(args.kill_rounds):
            learned = args.learned_every > 0 and r % args.learned_every == 0
            db = root / f"kill-db{r // 3}"  # a fresh catalog every 3 rounds: kills during creation too
            outcome = kill_round(db, songs, rng, learned=learned, max_delay_s=6.0 if learned else 0.5)
            results["kill"].append({"round": r, "learned": learned, "ok": outcome.ok,
                                    "mid_work": outcome.killed_mid_work,
                                    "committed": outcome.committed, "problems": outcome.problems,
                                    "lost": outcome.lost, "resurrected": outcome.resurrected})
            print(f"kill {r:3d} {'learned' if learned else 'catalog':7s} "
                  f"{'mid-work' if outcome.killed_mid_work else 'finished'} committed "
                  f"{outcome.committed:3d} {'ok' if outcome.ok else outcome}", flush=True)
        kill_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for r in range(args.writer_rounds):
            sets = [make_songs(root / f"w{r}-{w}", args.songs_per_writer, seed=1000 * r + w,
                               prefix=f"w{w}-") for w in range(args.writers)]
            learned = r % args.writers_learned_every == 0
            outcome = writers_round(root / f"writers-db{r}", sets, learned=learned)
            results["writers"].append({"round": r, "learned": learned, "ok": outcome.ok,
                                       "committed": outcome.committed,
                                       "problems": outcome.problems, "lost": outcome.lost})
            print(f"writers {r:3d} {'learned' if learned else 'catalog':7s} committed {outcome.committed:3d} "
                  f"{'ok' if outcome.ok else outcome}", flush=True)
        writers_s = time.perf_counter() - t0
    kill, writers = results["kill"], results["writers"]
    summary = {
        "kill_rounds": len(kill), "kill_rounds_learned": sum(k["learned"] for k in kill),
        "kills_mid_work": sum(k["mid_work"] for k in kill),
        "kill_corrupt": sum(bool(k["problems"]) for k in kill),
        "kill_lost_songs": sum(len(k["lost"]) + len(k["resurrected"]) for k in kill),
        "kill_committed_checked": sum(k["committed"] for k in kill), "kill_s": round(kill_s, 1),
        "writer_rounds": len(writers), "writers_per_round": args.writers,
        "writer_rounds_learned": sum(w["learned"] for w in writers),
        "writer_corrupt": sum(bool(w["problems"]) for w in writers),
        "writer_lost_songs": sum(len(w["lost"]) for w in writers),
        "writer_committed_checked": sum(w["committed"] for w in writers),
        "writers_s": round(writers_s, 1),
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, **results}, indent=1))
    return 0 if not (summary["kill_corrupt"] or summary["kill_lost_songs"] or summary["writer_corrupt"]
                     or summary["writer_lost_songs"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
