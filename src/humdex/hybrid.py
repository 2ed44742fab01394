"""The hybrid search: learned candidates and the classical matcher's own, scored by DTW and fused.

The learned search (humdex.learned.search) finds songs hummed at odd tempi or with tracking
errors; the classical DTW finds songs sung from their start. On MIDI catalogs their weighted
union measured better than either ranking alone (BENCHMARKS.md, benchmarks/hybrid_fusion.py).
The classical matcher's scan runs in a worker thread beside the learned search.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import numpy as np

from humdex.frontend.contour import Contour
from humdex.learned.fingerprints import add_ms
from humdex.learned.search import (
    LearnedConfig,
    Rows,
    default_config,
    key_song_id,
    learned_matches,
    match_rows,
    prepared_query,
)

HYBRID_DTW_CANDIDATES = 50  # learned candidates that join the DTW when the config names none
T = TypeVar("T")


def hybrid_search(query_audio: np.ndarray | None, sample_rate: int, query_contour: Contour | None,
                  db_dir: str | Path, snapshot, top: int = 10, from_start: bool = False,
                  config: LearnedConfig | None = None, timing: dict | None = None,
                  trace: dict | None = None) -> Rows:
    """(song index, score, start_s, end_s) of the best songs, best first: the learned top
    `dtw_candidates` join the classical matcher's own candidates for its DTW, and each song's DTW
    score (0..1) and learned score are summed with weights (weighted_union). Needs a contour.
    trace: gets the union's inputs, "dtw" and "learned" rows and "dtw_weight"
    (benchmarks/hybrid_lists.py)."""
    config = config or default_config()
    if config.dtw_candidates <= 0:
        config = replace(config, dtw_candidates=HYBRID_DTW_CANDIDATES)
    if query_contour is None:
        return []
    query, query_s = prepared_query(query_audio, sample_rate, query_contour, config, timing)
    refs = snapshot.references()
    voted: list[str] = []
    matches, scanned = with_classical_scan(
        query_contour, refs, from_start, config,
        lambda: learned_matches(query, db_dir, snapshot, max(top, config.n_candidates), from_start,
                                config, timing, voted))
    learned = match_rows(matches, snapshot, query_s)
    row_of = {s.song_id: i for i, s in enumerate(snapshot.songs)}
    pool = [row_of[key_song_id(k)] for k in voted if key_song_id(k) in row_of]
    t1 = time.perf_counter()
    dtw = classical_stage(query_contour, refs, [row[0] for row in learned], from_start, config, scanned,
                          pool)
    if timing is not None:  # what the DTW adds after the learned search (the scan ran beside it)
        add_ms(timing, "dtw_rerank", time.perf_counter() - t1)
    weight = dtw_weight_for(config, len(refs), from_start, snapshot.mostly_performed)
    if trace is not None:
        trace.update(dtw=dtw, learned=learned, dtw_weight=weight)
    return weighted_union(dtw, learned, weight)[:top]


def dtw_weight_for(config: LearnedConfig, n_songs: int, from_start: bool, performed: bool = False) -> float:
    """The DTW score's weight in the union for a catalog of n_songs, mostly of performances
    (records, pitch files) or not (LearnedConfig.dtw_weight*)."""
    if from_start:
        return config.dtw_weight_from_start
    if performed and n_songs <= config.full_scan_songs:
        return config.dtw_weight_performed
    return config.dtw_weight


def with_classical_scan(contour: Contour | None, refs, from_start: bool, config: LearnedConfig,
                        learned: Callable[[], T]) -> tuple[T, Rows | None]:
    """(learned(), the classical matcher's DTW rows over every song of refs), the scan running in a
    worker thread meanwhile (FFT and DTW release the GIL, so a second core overlaps it with the
    embedding); (learned(), None) when there is nothing to scan or the catalog is above
    config.full_scan_songs (the scan then needs the learned candidates: classical_stage)."""
    if contour is None or refs is None or len(refs) > config.full_scan_songs:
        return learned(), None
    # the worker loads the DTW kernels (dtw.warmup, one thread at a time) while learned() runs
    with ThreadPoolExecutor(max_workers=1) as pool:
        scan = pool.submit(dtw_rows, contour, refs, from_start, config.classical_candidates,
                           parts=config.classical_part_candidates)
        result = learned()
        return result, scan.result()


def classical_stage(contour: Contour, refs, learned_rows: list[int], from_start: bool,
                    config: LearnedConfig, scanned: Rows | None = None,
                    pool: list[int] | None = None) -> Rows:
    """The hybrid's DTW rows, best first: the classical matcher's own config.classical_candidates
    best songs and the learned top config.dtw_candidates, each scored by DTW.

    The matcher scans every song of `refs` (`scanned`, when with_classical_scan already did), or
    above config.full_scan_songs only the learned candidates `learned_rows` (best first) and the
    rows `pool` (the learned k-NN stage's best-voted songs, config.dtw_pool of them), of which it
    sends config.pooled_candidates to the DTW.
    """
    cand = np.array(learned_rows[: config.dtw_candidates], np.int64)
    if len(refs) > config.full_scan_songs:
        among = np.array(list(learned_rows) + list(pool or [])[: config.dtw_pool], np.int64)
        return dtw_rows(contour, refs, from_start, config.pooled_candidates,
                        among=np.unique(among), also=cand)
    if scanned is None:
        scanned = dtw_rows(contour, refs, from_start, config.classical_candidates,
                           parts=config.classical_part_candidates)
    missing = np.setdiff1d(cand, [row[0] for row in scanned])  # a song's DTW depends on it alone
    extra = dtw_rows(contour, refs, from_start, len(missing), among=missing) if len(missing) else []
    return sorted(scanned + extra, key=lambda row: -row[1])


def dtw_rows(contour: Contour, refs, from_start: bool, candidates: int, among: np.ndarray | None = None,
             also: np.ndarray | None = None, parts: int = 0) -> Rows:
    """The classical matcher over refs (or only its sorted rows `among`): DTW rows of its
    `candidates` best songs by the FFT stage, of its `parts` best by query parts, and of the rows
    `also`."""
    from humdex.classical.matcher import MatcherConfig, match

    rows = np.arange(len(refs)) if among is None else np.asarray(among, np.int64)
    sub = refs if among is None else refs.select(rows)
    also_sub = None if also is None else np.searchsorted(rows, also)
    found = match(contour, sub, from_start=from_start, top=len(sub), also=also_sub,
                  config=MatcherConfig(candidates=candidates, part_candidates=parts))
    return [(int(rows[m.index]), float(m.score), m.start_s, m.end_s) for m in found]


def weighted_union(dtw: Rows, learned: Rows, dtw_weight: float) -> Rows:
    """Songs of both rankings by w * DTW score + (1 - w) * learned score, best first.

    Rows are (song index, score, start_s, end_s); a song missing from one ranking takes that
    ranking's lowest score; where a song lies comes from the DTW row when it has one.
    """
    if not dtw or not learned:
        return dtw or learned
    d = {row[0]: row for row in dtw}
    lr = {row[0]: row for row in learned}
    low_d, low_l = min(r[1] for r in dtw), min(r[1] for r in learned)
    rows = []
    for song in d.keys() | lr.keys():
        score = dtw_weight * (d[song][1] if song in d else low_d) \
            + (1 - dtw_weight) * (lr[song][1] if song in lr else low_l)
        where = d.get(song) or lr[song]
        rows.append((song, float(score), where[2], where[3]))
    return sorted(rows, key=lambda r: (-r[1], r[0]))
