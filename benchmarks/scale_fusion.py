"""Offline: would the k-NN votes, added to the rerank score, rank the true song better?

Reads `scale.py measure --dump` (each query's vote-ordered candidates with their votes and rerank
scores) and prints top-1 / top-10 for n candidates and score = rerank + w * votes / max votes.
Tune on validation queries only.

    python benchmarks/scale_fusion.py out/scale/v9500-dump.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def hit_rates(dump: list[dict], n: int, w: float) -> tuple[float, float]:
    top1 = top10 = 0
    for q in dump:
        keys, votes, scores = q["keys"][:n], np.array(q["votes"][:n]), np.array(q["scores"][:n])
        fused = scores + w * votes / max(votes.max(), 1e-9)
        order = [keys[i] for i in np.argsort(-fused, kind="stable")[:10]]
        top1 += bool(order) and order[0] == q["id"]
        top10 += q["id"] in order
    return top1 / len(dump), top10 / len(dump)


def main(path: str) -> None:
    dump = json.loads(Path(path).read_text())
    print(f"{len(dump)} queries")
    for n in (100, 200, 300, 500, 1000):
        row = [f"n={n:4d}"]
        for w in (0.0, 0.05, 0.1, 0.2, 0.3, 0.5):
            t1, t10 = hit_rates(dump, n, w)
            row.append(f"w={w}: {t1:.3f}/{t10:.3f}")
        print("  ".join(row))


if __name__ == "__main__":
    main(sys.argv[1])
