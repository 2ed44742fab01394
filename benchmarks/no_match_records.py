"""The "no match" rule on an audio catalog of records: false accepts and false rejects per method.

Each query of the list is searched once (as `humdex search` does, from anywhere in the song):
- "in": its song is in the catalog; right = the rule says match AND the best song is the query's;
  a false reject is a "no match" (or a wrong song accepted, counted apart);
- "out": the same ranked list with the query's own song taken out (as a catalog without that
  song would rank the others: every song's score is computed on its own), decided by the rule
  again; a false accept is a "match".
Optionally --min-score/--min-margin measure another rule on the same lists (no re-search).

    python benchmarks/no_match_records.py --db DB --queries Q.tsv --method hybrid [--limit N] \
        [--out R.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from tqdm import tqdm

from humdex.catalog.catalog import Catalog
from humdex.errors import AudioError
from humdex.evaluate import read_query_list
from humdex.nomatch import config_for, decide
from humdex.search import load_query, search


def rates(rows: list[dict], rule) -> dict[str, float]:
    """False accept / reject rates of `rule` over rows {truth, ids, scores} (scores best first)."""
    fa = fr = wrong = 0
    for r in rows:
        inside = decide(r["scores"], rule)
        if not inside.match:
            fr += 1
        elif not r["ids"] or r["ids"][0] != r["truth"]:
            wrong += 1
        out_scores = [s for i, s in zip(r["ids"], r["scores"]) if i != r["truth"]]
        fa += decide(out_scores, rule).match
    n = max(1, len(rows))
    return {"queries": len(rows), "false_accept": fa / n, "false_reject": fr / n,
            "accepted_wrong_song": wrong / n, "right_and_accepted": 1 - (fr + wrong) / n}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--method", default="hybrid", choices=("classical", "learned", "hybrid"))
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--min-score", type=float, default=None, help="also measure this rule")
    ap.add_argument("--min-margin", type=float, default=None)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    catalog = Catalog.open(args.db)
    rule = config_for(args.method, catalog.snapshot().mostly_audio)
    pairs = read_query_list(Path(args.queries))[: args.limit]
    rows = []
    for path, truth in tqdm(pairs, desc=args.method):
        try:
            query = load_query(path)
        except AudioError:  # no pitch found: humdex answers nothing, a reject either way
            rows.append({"query": str(path), "truth": truth, "ids": [], "scores": []})
            continue
        result = search(query, catalog, top=rule.cohort + 1, method=args.method)
        rows.append({"query": str(path), "truth": truth, "ids": [h.song_id for h in result.hits],
                     "scores": [h.score for h in result.hits]})
    report = {"db": args.db, "queries": args.queries, "method": args.method,
              "rule": dataclasses.asdict(rule), "calibrated_rule": rates(rows, rule)}
    if args.min_score is not None or args.min_margin is not None:
        other = dataclasses.replace(rule, **{k: v for k, v in (("min_score", args.min_score),
                                                                ("min_margin", args.min_margin)) if v is not None})
        report["other_rule"] = {"rule": dataclasses.asdict(other), **rates(rows, other)}
    report["rows"] = rows
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
