"""How often the classical matcher's stage 1 sends the true song to the DTW, per setting, in one process.

Each query of a TSV list (query_path<TAB>song_id) is tracked as `humdex search` tracks it, and
stage 1 (`humdex.classical.matcher.candidate_windows`) runs once per setting of the songs it
sends by mean square and as many by pitch class (`--candidates`: `MatcherConfig.candidates`; the
hybrid's is `LearnedConfig.classical_candidates`, 100) x the songs its query parts send
(`--parts`: `MatcherConfig.part_candidates`), the settings taking turns query by query. Prints
per setting: the share of queries whose true song is among the songs sent (recall), the mean
number of songs sent, and stage 1's time p50. A query without pitch counts as a miss.

    HUMDEX_THREADS=1 python benchmarks/stage1_recall.py --db DB --queries Q.tsv --candidates 100 --parts 0 50
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from humdex.catalog.catalog import Catalog
from humdex.classical.matcher import MatcherConfig, candidate_windows, prepare_query
from humdex.errors import HumdexError
from humdex.evaluate import read_query_list
from humdex.search import load_query


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--candidates", type=int, nargs="+", default=[100])
    ap.add_argument("--parts", type=int, nargs="+", default=[0, 50])
    ap.add_argument("--from-start", action="store_true")
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    snap = Catalog.open(args.db).snapshot()
    refs = snap.references()
    row_of = {song.song_id: i for i, song in enumerate(snap.songs)}
    settings = [MatcherConfig(candidates=n, part_candidates=p) for n in args.candidates for p in args.parts]
    found: dict[MatcherConfig, list[bool]] = {c: [] for c in settings}
    sent: dict[MatcherConfig, list[int]] = {c: [] for c in settings}
    times: dict[MatcherConfig, list[float]] = {c: [] for c in settings}
    for path, song in tqdm(read_query_list(Path(args.queries))[: args.limit], desc="queries"):
        try:
            q = prepare_query(load_query(path).contour, refs.hop_s, settings[0])
        except HumdexError:
            q = None
        for config in settings:
            if q is None:
                found[config].append(False)
                continue
            t0 = time.perf_counter()
            songs = np.unique(candidate_windows(q, refs, args.from_start, config)[0])
            times[config].append(time.perf_counter() - t0)
            found[config].append(row_of.get(song, -1) in songs)
            sent[config].append(len(songs))
    for config in settings:
        print(f"candidates={config.candidates} part_candidates={config.part_candidates}: recall "
              f"{np.mean(found[config]):.3f} of {len(found[config])} queries, {np.mean(sent[config]):.0f} "
              f"songs sent, stage 1 p50 {np.median(times[config]) * 1e3:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
