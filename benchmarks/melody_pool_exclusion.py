"""How well the shipped exclusion rule removes the MIREX QBSH database melodies from the pool.

Reads the MIDI database (dev data) and the parsed corpus pickles of scripts/build_melody_pool.py;
reports, per database melody, whether some corpus tune is excluded because of it, and the
distribution of shared-run fractions.

    .venv/bin/python benchmarks/melody_pool_exclusion.py [--db ../shared/data/mirex_qbsh_db]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from humdex.training import melody_pool as mp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from build_melody_pool import load_parsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=ROOT / ".." / "shared" / "data" / "mirex_qbsh_db")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "melody_pool")
    parser.add_argument("--show", type=int, default=0, help="print this many borderline tunes")
    args = parser.parse_args(argv)
    excluded = mp.load_excluded()
    db_ids = sorted(p.stem for p in args.db.glob("*.mid"))
    if len(db_ids) != len(excluded.run_counts):
        raise SystemExit(f"{args.db} has {len(db_ids)} melodies, the excluded list {len(excluded.run_counts)}")
    tunes = load_parsed(args.work)
    matched_db: Counter[str] = Counter()
    fractions = []
    n_excluded: Counter[str] = Counter()
    borderline = []
    for tune in tunes:
        runs = mp.shingle_hashes(tune["pitch"])
        if not runs:
            continue
        votes = Counter(o for h in runs for o in excluded.owners.get(h, ()))
        fractions.append(max((n / min(len(runs), excluded.run_counts[o]) for o, n in votes.items()),
                             default=0.0))
        matches = mp.excluding_melodies(tune["pitch"], excluded)
        if matches:
            best = matches[0]
            shared = votes[best]
            fractions[-1] = shared / min(len(runs), excluded.run_counts[best])
            n_excluded[tune["corpus"]] += 1
            matched_db.update(db_ids[m] for m in matches)
            if fractions[-1] < 0.9:
                borderline.append((fractions[-1], tune, db_ids[best], shared))
    fr = np.array(fractions)
    edges = [0, 0.01, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.99, 1.01]
    print(f"corpus tunes: {len(tunes)}; histogram of the best database melody's shared-run fraction"
          f" (of the smaller run set; edges {edges}):")
    print(" ", np.histogram(fr, bins=edges)[0].tolist())
    print(f"excluded tunes per corpus: {dict(n_excluded)} (total {sum(n_excluded.values())})")
    jang = [d for d in db_ids if int(d) <= 48]
    essen = [d for d in db_ids if int(d) > 48]
    print(f"database melodies with an excluded corpus tune: Essen distractors "
          f"{sum(d in matched_db for d in essen)}/{len(essen)}, MIR-QBSH songs "
          f"{sum(d in matched_db for d in jang)}/{len(jang)} {[d for d in jang if d in matched_db]}")
    tune_runs: dict[str, set[int]] = {}
    tune_sizes = []
    for i, tune in enumerate(tunes):
        runs = mp.shingle_hashes(tune["pitch"])
        tune_sizes.append(len(runs))
        for h in runs:
            tune_runs.setdefault(h, set()).add(i)
    run_lists = [[] for _ in db_ids]
    for h, owners in excluded.owners.items():
        for o in owners:
            run_lists[o].append(h)
    unrelated = 0
    missed = [i for i, d in enumerate(db_ids) if int(d) > 48 and d not in matched_db]
    for i in missed:
        votes = Counter(t for h in run_lists[i] for t in tune_runs.get(h, ()))
        best = max((n / max(1, min(len(run_lists[i]), tune_sizes[t])) for t, n in votes.items()),
                   default=0.0)
        unrelated += best < 0.1
    print(f"uncaught Essen distractors: {len(missed)}, of which {unrelated} share < 10% of their runs"
          " with every corpus tune (not in music21's collection, or a far variant)")
    for frac, tune, best, shared in sorted(borderline, key=lambda b: b[0])[: args.show]:
        print(f"  {frac:.2f} ({shared} runs) with {best}: {tune['corpus']}/{tune['source']}"
              f"#{tune['number']} {tune['title']!r} ({len(tune['pitch'])} notes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
