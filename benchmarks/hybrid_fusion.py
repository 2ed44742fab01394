"""Score fusion rules of the learned and DTW rankings on lists dumped by benchmarks/hybrid_lists.py.

Rules: the DTW order alone, the learned order alone, reciprocal-rank fusion, a weighted sum
w * dtw + (1 - w) * learned of the two scores (a song missing from a list takes that list's
lowest score), and the same sum of z-scores ("zsum": each list's scores standardised over its
best `n`, so that neither list's spread decides for it). The weight is chosen on --choose files
(the pool's validation/test melodies, never the evaluation database) and then only reported on
--report files.

    python benchmarks/hybrid_fusion.py --choose out/lists_dev_*.json --report out/lists_mirex_*.json
    python benchmarks/hybrid_fusion.py --choose L1.json L2.json --weights 0.7 0.75 0.8   # the sum per file and weight
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

WEIGHTS = tuple(round(w, 2) for w in np.arange(0.0, 1.001, 0.05))


def fused_order(rec: dict, rule: str, w: float = 0.5, k: float = 10.0, n: int = 200) -> list[str]:
    """Song ids best first under one rule."""
    dtw, learned = dict(map(tuple, rec["dtw"])), dict(map(tuple, rec["learned"]))
    if rule == "zsum":
        dtw, learned = _standardised(rec["dtw"], n), _standardised(rec["learned"], n)
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
    return sorted(sorted(songs), key=lambda s: -score[s])  # ties by song id: a set's order varies by run


def _standardised(rows: list, n: int) -> dict:
    """{song: (score - mean) / std} of a ranking's rows, mean and std over its best n."""
    top = np.array([score for _, score in rows[:n]], np.float64)
    if not len(top):
        return {}
    return {song: (score - top.mean()) / (top.std() + 1e-6) for song, score in rows}


def metrics(records: list[dict], **rule) -> dict:
    ranks = []
    for rec in records:
        order = fused_order(rec, **rule)[:10]
        ranks.append(order.index(rec["truth"]) + 1 if rec["truth"] in order else 0)
    r = np.array(ranks)
    return {"top1": round(float(np.mean(r == 1)), 4), "top10": round(float(np.mean(r > 0)), 4),
            "mrr": round(float(np.mean(np.where(r > 0, 1 / np.maximum(r, 1), 0))), 4), "n": len(r)}


def best_weight(records: list[dict], rule: str) -> tuple[float, dict]:
    """(the weight of the best MRR, then top-10, under `rule`; the metrics at every weight)."""
    by_w = {w: metrics(records, rule=rule, w=w) for w in WEIGHTS}
    return max(WEIGHTS, key=lambda w: (by_w[w]["mrr"], by_w[w]["top10"])), by_w


def load(files: list[str]) -> dict[str, list[dict]]:
    return {f: json.loads(Path(f).read_text())["results"] for f in files}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--choose", nargs="+", required=True)
    p.add_argument("--report", nargs="*", default=[])
    p.add_argument("--out", default=None)
    p.add_argument("--weights", nargs="+", type=float, default=None,
                   help="only print the weighted sum's top-1 / top-10 / MRR on each --choose file at these weights")
    args = p.parse_args(argv)
    choose = load(args.choose)
    if args.weights:
        for f, recs in choose.items():
            for w in args.weights:
                m = metrics(recs, rule="sum", w=w)
                print(f"{f}\tw={w}\t{m['top1']:.3f} / {m['top10']:.3f} / {m['mrr']:.3f}\t(n={m['n']})")
        return 0
    pooled = [r for recs in choose.values() for r in recs]
    (best_w, by_w), (best_zw, _) = (best_weight(pooled, rule) for rule in ("sum", "zsum"))
    rules = {"dtw": {"rule": "dtw"}, "learned": {"rule": "learned"}, "rrf k=10": {"rule": "rrf"},
             f"sum w={best_w}": {"rule": "sum", "w": best_w}, f"zsum w={best_zw}": {"rule": "zsum", "w": best_zw}}
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
