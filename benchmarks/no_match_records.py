"""The "no match" rule on an audio catalog of records: false accepts and false rejects per method.

Each query of the list is searched once (as `humdex search` does, from anywhere in the song):
- "in": its song is in the catalog; right = the rule says match AND the best song is the query's;
  a false reject is a "no match" (or a wrong song accepted, counted apart);
- "out": the same ranked list with the query's own song taken out (as a catalog without that
  song would rank the others: every song's score is computed on its own), decided by the rule
  again; a false accept is a "match".
Optionally --min-score/--min-margin measure another rule on the same lists (no re-search).
--rows R.json decides on the rows of an earlier --out report instead of searching again, and
--fit picks the rule the records rules were chosen by (fit_rule): over a grid of (min score,
min margin), the most right songs accepted with false accepts <= --max-false-accept, the highest
floor among equals (then the fewest false accepts, then the largest margin).

    python benchmarks/no_match_records.py --db DB --queries Q.tsv --method hybrid [--limit N] \
        [--out R.json]
    python benchmarks/no_match_records.py --rows R.json --fit [--min-score S --min-margin M]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

from tqdm import tqdm

from humdex.catalog.catalog import Catalog
from humdex.errors import AudioError
from humdex.evaluate import read_query_list
from humdex.nomatch import NoMatchConfig, config_for, decide, margin
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


def search_rows(catalog: Catalog, pairs: list[tuple[Path, str]], method: str, cohort: int) -> list[dict]:
    """Each query searched once: {query, truth, ids, scores} with the cohort's best songs + 1."""
    rows = []
    for path, truth in tqdm(pairs, desc=method):
        try:
            query = load_query(path)
        except AudioError:  # no pitch found: humdex answers nothing, a reject either way
            rows.append({"query": str(path), "truth": truth, "ids": [], "scores": []})
            continue
        result = search(query, catalog, top=cohort + 1, method=method)
        rows.append({"query": str(path), "truth": truth, "ids": [h.song_id for h in result.hits],
                     "scores": [h.score for h in result.hits]})
    return rows


def _grid(lo: float, hi: float, step: float) -> list[float]:
    """lo, lo + step, ... up to the first value >= hi, on the step's grid (rounded, no float drift)."""
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(k * step, 6) for k in range(first, last + 1)]


def fit_rule(rows: list[dict], base: NoMatchConfig, max_false_accept: float = 0.05,
             score_step: float = 0.01, margin_step: float = 0.005) -> tuple[NoMatchConfig, dict]:
    """The rule over a grid of (min_score, min_margin) with the most "right_and_accepted"
    (rates) subject to false_accept <= max_false_accept; among equals the highest floor, then the
    fewest false accepts, then the largest margin. The grid spans the rows' own best scores and
    margins (every distinct decision at the steps' resolution, including "accept nothing"), so
    it fits any method's score scale. Returns the rule (base's cohort) and its rates."""
    bests, leads = [], []
    for r in rows:
        for scores in (r["scores"], [s for i, s in zip(r["ids"], r["scores"]) if i != r["truth"]]):
            if scores:
                bests.append(float(scores[0]))
                lead = margin(scores, base.cohort)
                leads.append(0.0 if lead is None else lead)
    floors = _grid(min(bests, default=0.0), max(bests, default=0.0) + score_step, score_step)
    margins = _grid(0.0, max(leads, default=0.0) + margin_step, margin_step)
    best_key, chosen = None, None
    for floor in floors:
        at_floor = None  # margins only take accepts away: stop once the right count drops
        for lead in margins:
            rule = dataclasses.replace(base, min_score=floor, min_margin=lead)
            got = rates(rows, rule)
            if got["false_accept"] > max_false_accept:
                continue
            if at_floor is not None and got["right_and_accepted"] < at_floor:
                break
            at_floor = got["right_and_accepted"]
            key = (got["right_and_accepted"], floor, -got["false_accept"], lead)
            if best_key is None or key > best_key:
                best_key, chosen = key, (rule, got)
    assert chosen is not None  # a floor above every score accepts nothing: always allowed
    return chosen


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db")
    ap.add_argument("--queries")
    ap.add_argument("--rows", type=Path, help="decide on an earlier --out report's rows (no search)")
    ap.add_argument("--fit", action="store_true", help="also fit a rule on the rows (fit_rule)")
    ap.add_argument("--max-false-accept", type=float, default=0.05)
    ap.add_argument("--method", default="hybrid", choices=("classical", "learned", "hybrid"))
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--min-score", type=float, default=None, help="also measure this rule")
    ap.add_argument("--min-margin", type=float, default=None)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.rows:
        earlier = json.loads(args.rows.read_text())
        args.db, args.queries, args.method = earlier["db"], earlier["queries"], earlier["method"]
        audio = earlier.get("audio_catalog")
        if audio is None:  # a report from before the flag was written: ask the catalog
            audio = Catalog.open(args.db, create=False).snapshot().mostly_audio
        rows = earlier["rows"][: args.limit]
    elif not (args.db and args.queries):
        ap.error("--db and --queries, or --rows")
    else:
        catalog = Catalog.open(args.db)
        audio = catalog.snapshot().mostly_audio
        rows = search_rows(catalog, read_query_list(Path(args.queries))[: args.limit], args.method,
                           config_for(args.method, audio).cohort)
    rule = config_for(args.method, audio)
    report = {"db": args.db, "queries": args.queries, "method": args.method, "audio_catalog": audio,
              "rule": dataclasses.asdict(rule), "calibrated_rule": rates(rows, rule)}
    if args.min_score is not None or args.min_margin is not None:
        other = dataclasses.replace(rule, **{k: v for k, v in (("min_score", args.min_score),
                                                                ("min_margin", args.min_margin)) if v is not None})
        report["other_rule"] = {"rule": dataclasses.asdict(other), **rates(rows, other)}
    if args.fit:
        fitted, got = fit_rule(rows, rule, args.max_false_accept)
        report["fitted_rule"] = {"rule": dataclasses.asdict(fitted), **got}
    report["rows"] = rows
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
