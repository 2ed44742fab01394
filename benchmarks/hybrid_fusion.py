"""Score fusion rules of the learned and DTW rankings on lists dumped by benchmarks/hybrid_lists.py.

Rules: the DTW order alone, the learned order alone, reciprocal-rank fusion, and a weighted sum
w * dtw + (1 - w) * learned of the two scores (a song missing from a list takes that list's
lowest score). The weight is chosen on --choose files (the pool's validation/test melodies, never
the evaluation database) and then only reported on --report files.

    python benchmarks/hybrid_fusion.py --choose out/lists_dev_*.json --report out/lists_mirex_*.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

WEIGHTS = tuple(round(w, 2) for w in np.arange(0.0, 1.001, 0.05))


def fused_order(rec: dict, rule: str, w: float = 0.5, k: float = 10.0) -> list[str]:
    """Song ids best first under one rule."""
    dtw, learned = dict(map(tuple, rec["dtw"])), dict(map(tuple, rec["learned"]))
    if rule == "dtw":
        return [s for s, _ in rec["dtw"]]
    if rule == "learned":
        return [s for s, _ in rec["learned"]]
    songs = set(dtw) | set(learned)
    if rule == "rrf":
        rd = {s: i for i, (s, _) in enumerate(rec["dtw"])}
        rl = {s: i for i, (s, _) in enumerate(rec["learned"])}
        score = {s: 1 / (k + rd.get(s, 1e9)) + 1 / (k + rl.get(s, 1e9)) for s in songs}
    else:
        lo_d, lo_l = min(dtw.values(), default=0.0), min(learned.values(), default=0.0)
        score = {s: w * dtw.get(s, lo_d) + (1 - w) * learned.get(s, lo_l) for s in songs}
    return sorted(songs, key=lambda s: -score[s])


def metrics(records: list[dict], **rule) -> dict:
    ranks = []
    for rec in records:
        order = fused_order(rec, **rule)[:10]
        ranks.append(order.index(rec["truth"]) + 1 if rec["truth"] in order else 0)
    r = np.array(ranks)
    return {"top1": round(float(np.mean(r == 1)), 4), "top10": round(float(np.mean(r > 0)), 4),
            "mrr": round(float(np.mean(np.where(r > 0, 1 / np.maximum(r, 1), 0))), 4), "n": len(r)}


def load(files: list[str]) -> dict[str, list[dict]]:
    return {f: json.loads(Path(f).read_text())["results"] for f in files}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--choose", nargs="+", required=True)
    p.add_argument("--report", nargs="*", default=[])
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    choose = load(args.choose)
    pooled = [r for recs in choose.values() for r in recs]
    by_w = {w: metrics(pooled, rule="sum", w=w) for w in WEIGHTS}
    best_w = max(WEIGHTS, key=lambda w: (by_w[w]["mrr"], by_w[w]["top10"]))
    rules = {"dtw": {"rule": "dtw"}, "learned": {"rule": "learned"}, "rrf k=10": {"rule": "rrf"},
             f"sum w={best_w}": {"rule": "sum", "w": best_w}}
    report = {"chosen_weight": best_w, "weights_on_choose_files": {str(w): m for w, m in by_w.items()},
              "choose": {f: {n: metrics(recs, **r) for n, r in rules.items()} for f, recs in choose.items()},
              "report": {f: {n: metrics(recs, **r) for n, r in rules.items()}
                         for f, recs in load(args.report).items()}}
    print(json.dumps({k: v for k, v in report.items() if k != "weights_on_choose_files"}, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
