"""Search: the one place that composes query -> pitch contour -> matcher -> ranked songs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from humdex.catalog.catalog import Catalog, Snapshot
from humdex.catalog.ingest import times_in_song
from humdex.errors import AudioError
from humdex.frontend.audio import SAMPLE_RATE
from humdex.frontend.contour import Contour
from humdex.nomatch import Decision, NoMatchConfig, config_for, decide

MIN_VOICED_S = 1.0  # a query needs at least this much sung pitch, seconds


@dataclass(frozen=True, eq=False)
class Query:
    """A query melody and what it cost to get it."""

    name: str
    contour: Contour
    pitch_ms: float
    audio: np.ndarray | None = None  # (n,) float32 at sample_rate, kept for the learned search
    sample_rate: int = SAMPLE_RATE


@dataclass(frozen=True)
class Hit:
    rank: int
    song_id: str
    title: str | None
    score: float
    start_s: float | None
    end_s: float | None


@dataclass(frozen=True)
class SearchResult:
    query: str
    hits: list[Hit]
    timing_ms: dict[str, float] = field(default_factory=dict)
    method: str = "classical"  # the method that ran (never "auto"): its scores' scale
    # "no match" (humdex.nomatch): the rule of the method, decided over its cohort of best songs
    rule: NoMatchConfig = field(default_factory=NoMatchConfig)
    decision: Decision = field(default_factory=lambda: Decision(False, None, None))

    def to_json(self) -> dict[str, Any]:
        """The stable JSON contract of `humdex search --json` and `POST /search`: the hits, and
        whether the best one is a match ("match", "threshold" = the score floor, "margin",
        "min_margin")."""
        return {
            "query": self.query,
            "results": [
                {
                    "rank": h.rank,
                    "song_id": h.song_id,
                    "title": h.title,
                    "score": round(h.score, 4),
                    "start_s": None if h.start_s is None else round(h.start_s, 2),
                    "end_s": None if h.end_s is None else round(h.end_s, 2),
                }
                for h in self.hits
            ],
            "timing_ms": {k: round(v, 1) for k, v in self.timing_ms.items()},
            "method": self.method,
            "match": self.decision.match,
            "threshold": self.rule.min_score,
            "margin": None if self.decision.margin is None else round(self.decision.margin, 4),
            "min_margin": self.rule.min_margin,
        }


def check_query_contour(contour: Contour, name: str) -> Contour:
    """The contour without leading/trailing silence; AudioError if too short, long or unvoiced."""
    from humdex.frontend.audio import MAX_QUERY_S, MIN_QUERY_S

    if contour.duration_s > MAX_QUERY_S:
        raise AudioError(f"{name}: query is {contour.duration_s:.0f} s long; humdex takes at most "
                         f"{MAX_QUERY_S:.0f} s")
    voiced_s = float(contour.voiced.sum()) * contour.hop_s
    if voiced_s < MIN_VOICED_S:
        raise AudioError(f"{name}: no sung or hummed pitch found (only {voiced_s:.1f} s voiced)")
    trimmed = contour.trimmed()
    if trimmed.duration_s < MIN_QUERY_S:
        raise AudioError(f"{name}: query melody is {trimmed.duration_s:.1f} s long; humdex needs at "
                         f"least {MIN_QUERY_S:.0f} s")
    return trimmed


def query_from_audio(
    samples: np.ndarray, sample_rate: int, name: str, pitch_method: str | None = None
) -> Query:
    """Track the pitch of a recorded query. samples: (n,) float32 mono at sample_rate."""
    from humdex.frontend import audio, pitch

    audio.check_query_duration(samples, sample_rate)
    started = time.perf_counter()
    kwargs = {"method": pitch_method} if pitch_method else {}
    contour = pitch.query_contour(samples, sample_rate, **kwargs)
    pitch_ms = (time.perf_counter() - started) * 1e3
    return Query(name, check_query_contour(contour, name), pitch_ms, samples, sample_rate)


def load_query(path: str | Path, pitch_method: str | None = None) -> Query:
    """A query from a file: audio (pitch-tracked) or a pitch file (.pv, f0 CSV)."""
    from humdex.frontend.pitchfile import is_pitch_file, read_pitch_file

    path = Path(path)
    if is_pitch_file(path):
        started = time.perf_counter()
        contour = read_pitch_file(path)
        return Query(path.name, check_query_contour(contour, str(path)),
                     (time.perf_counter() - started) * 1e3)
    from humdex.frontend import audio

    return query_from_audio(audio.load(path, audio.SAMPLE_RATE, max_s=audio.MAX_QUERY_S),
                            audio.SAMPLE_RATE, path.name, pitch_method)


SEARCH_METHODS = ("classical", "learned", "hybrid", "auto")
# "auto" (the default) picks what measured best for what the catalog holds: "hybrid", the
# classical and learned candidates reranked by DTW with the two scores fused. It beat both alone
# on MIDI catalogs (BENCHMARKS.md, issue 4) and, since songs from audio are tracked by the
# salience front end, on records too (dev set of pool-validation records, TRAIN sound: top-10
# 0.700 against learned 0.625 and classical 0.575; BENCHMARKS.md, issue 15). Until then audio
# catalogs ran "learned", measured best on monophonic renders tracked by swift-f0.
DEFAULT_METHOD = "auto"


def resolve_method(snap: Snapshot, method: str = DEFAULT_METHOD) -> str:
    """The method a search runs: `method`, or for "auto" the one that measures best on this catalog."""
    if method not in SEARCH_METHODS:
        raise ValueError(f"unknown search method {method!r}; one of {', '.join(SEARCH_METHODS)}")
    if method != "auto":
        return method
    return "hybrid"


def prepare_default_search(catalog: Catalog, progress: bool = False,
                           executor: Executor | None = None) -> str:
    """Build now (at indexing) what the default search needs for this catalog, rather than at
    its first query: the DTW kernel (classical.native) and the learned fingerprints unless it
    resolves to classical (computed in `executor`'s workers when given). Returns the method."""
    snap = catalog.snapshot()
    method = resolve_method(snap)
    from humdex.classical.dtw import warmup

    warmup()  # builds the DTW kernel for this machine now (classical.native), not at a first search
    if method != "classical" and snap.songs:
        from humdex.learned.search import sync_catalog

        sync_catalog(catalog.db_dir, snap, progress=progress, executor=executor)
    return method


def prewarm(snap: Snapshot, method: str, pitch_method: str | None = None,
            db_dir: str | Path | None = None) -> list[threading.Thread]:
    """Start loading what a search by `method` (resolved) will need in background threads, while
    the caller tracks the query's pitch: one loads the encoders' ONNX Runtime sessions and the
    catalog's fingerprint stores (in `db_dir`), or the classical references; another the DTW
    kernel (a millisecond for the C one; numba's, where no C compiler built it: ~0.5 s).
    search() need not wait for them: each of these is
    loaded once, a second thread asking for it waiting for the first (learned.runtime,
    learned.search.sync_store, dtw.warmup), so the search starts with what it needs first while
    the rest still loads. Returns the threads (join() them to wait).

    For the pYIN tracker (librosa's numba kernels) the DTW kernel is left to the search: where it
    is numba's, numba must not compile in two threads at once (dtw.warmup)."""

    def learned() -> None:
        from humdex.learned.search import load_default_models

        load_default_models(db_dir, snap)

    def kernels() -> None:
        from humdex.classical.dtw import warmup

        warmup()

    jobs = [snap.references if method == "classical" else learned]
    if method != "learned" and pitch_method != "pyin":
        jobs.append(kernels)
    threads = [threading.Thread(target=_quietly, args=(job,), name="humdex-prewarm", daemon=True)
               for job in jobs]
    for thread in threads:
        thread.start()
    return threads


def _quietly(job: Callable[[], object]) -> None:
    try:
        job()
    except Exception:  # noqa: BLE001, S110
        pass  # the search itself meets the same error and reports it


def search(
    query: Query, catalog: Catalog | Snapshot, top: int = 10, from_start: bool = False,
    method: str = DEFAULT_METHOD, db_dir: str | Path | None = None, no_match: NoMatchConfig | None = None,
) -> SearchResult:
    """Rank the catalog's songs for a query, best first (at most `top`), and decide whether the
    best is a match: by `no_match`, else the method's calibrated rule (nomatch.config_for), over
    the rule's cohort of best songs (ranked even when `top` is smaller).

    method: "classical" (pitch matcher), "learned" (fingerprint model, humdex.learned.search),
    "hybrid" (learned and classical candidates scored by DTW, humdex.hybrid) or "auto" (resolve_method).
    The learned methods keep fingerprint stores in the catalog folder: pass a Catalog, or its
    folder as db_dir.
    """
    from humdex.classical.matcher import match

    snap = catalog.snapshot() if isinstance(catalog, Catalog) else catalog
    started = time.perf_counter()
    hits: list[Hit] = []
    method = resolve_method(snap, method)
    rule = no_match or config_for(method, snap.mostly_audio, len(snap.songs), from_start)
    wanted, top = top, max(top, rule.cohort)
    if method != "classical" and snap.songs:
        from humdex.hybrid import hybrid_search
        from humdex.learned.search import learned_search

        folder = db_dir if db_dir is not None else getattr(catalog, "db_dir", None)
        if folder is None:
            raise ValueError("the learned search needs the catalog folder (db_dir)")
        ranked = hybrid_search if method == "hybrid" else learned_search
        rows = ranked(query.audio, query.sample_rate, query.contour, folder, snap, top, from_start)
        for rank, (i, score, start_s, end_s) in enumerate(rows, start=1):
            song = snap.songs[i]
            hits.append(Hit(rank, song.song_id, song.title, float(score), *times_in_song(start_s, end_s, song.mix_at_s)))
    elif snap.songs:
        matches = match(query.contour, snap.references(), from_start=from_start, top=top)
        for rank, m in enumerate(matches, start=1):
            song = snap.songs[m.index]
            hits.append(Hit(rank, song.song_id, song.title, float(m.score), *times_in_song(m.start_s, m.end_s, song.mix_at_s)))
    search_ms = (time.perf_counter() - started) * 1e3
    timing = {"pitch": query.pitch_ms, "search": search_ms, "total": query.pitch_ms + search_ms}
    decision = decide([h.score for h in hits], rule)
    return SearchResult(query.name, hits[:wanted], timing, method, rule, decision)
