"""Learned retrieval: fingerprint sequences of clips, k-NN candidates, sequence-correlation rerank, fusion.

A clip (audio activation, or a melody rendered to a pseudo-activation) becomes a sequence of
128-d fingerprints, one per window (features.WindowSpec). A query is fingerprinted at several
tempo scales (stretched 0.5-2x: people hum at their own tempo); its fingerprints vote for songs
through the vector store; the best candidates are reranked by the maximum mean cosine between
the query's sequence and the song's sequence over every offset and a few tempo ratios.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from humdex.frontend.audio import SAMPLE_RATE
from humdex.frontend.contour import Contour, stretch_frames
from humdex.learned.features import WindowSpec, audio_frames, contour_to_activation, feature_windows
from humdex.learned.runtime import ModelHandle
from humdex.learned.stores import VectorStore

if TYPE_CHECKING:
    from humdex.learned.model import Encoder

TEMPO_RATIOS = (1.0, 0.9, 1.12, 0.8, 1.25)  # song windows per query window; ties keep the first
# A hummer picks their own tempo: against MIDI references it lies anywhere in 0.5-2x (the
# classical matcher searches the same range). The query is stretched to each of these scales
# before it is fingerprinted (the model itself only absorbs +-25 %), and each scale is reranked
# with the fine ratios around it.
QUERY_SCALES = tuple(float(x) for x in np.geomspace(0.5, 2.0, 7))  # 1.26x apart
SCALE_RATIOS = (1.0, 0.9, 1.12)
RERANK_SCALES = 3  # a candidate is reranked at its 3 best-voted scales and at 1.0 (all 7: worse, 2x slower)
KNN_K = 100  # neighbours per query fingerprint in the k-NN vote
# Above LARGE_CATALOG_SONGS (the hybrid's full classical scan) a song's votes are divided by the
# square root of its number of windows (scale_votes' length_power): long songs, which are among
# every fingerprint's neighbours by chance, stop outvoting the true song. On 100 pool-validation
# hums (benchmarks/scale.py, BENCHMARKS.md "Votes per window at scale") the default method's MRR
# at 12,000 / 20,000 / 50,000 songs was 0.724 / 0.693 / 0.558 with k 25 (the earlier cure for
# long "hub" songs), 0.718 / 0.732 / 0.638 with k 100 and this division. Smaller catalogs keep
# plain votes: their evaluation rows and "no match" rules were measured with them.
LENGTH_POWER_LARGE = 0.5
LARGE_CATALOG_SONGS = 5000


def length_power_for(n_songs: int) -> float:
    """scale_votes' length_power for a store of n_songs songs."""
    return LENGTH_POWER_LARGE if n_songs > LARGE_CATALOG_SONGS else 0.0


N_CANDIDATES = 200


@dataclass(frozen=True)
class Match:
    """One reranked song: mean cosine `score` in [-1, 1], query start `offset_s` in the song, tempo ratio."""

    song_key: str
    score: float
    offset_s: float
    ratio: float


@dataclass(frozen=True)
class ScaledQuery:
    """A query's (n, 128) fingerprints after stretching it by `scale` (song seconds per query second)."""

    scale: float
    fingerprints: np.ndarray


def scaled_windows(model: Encoder | ModelHandle, frames: np.ndarray,
                   scales: tuple[float, ...] = QUERY_SCALES, hop_s: float | None = None) -> list[np.ndarray]:
    """(T, B) query features at 10 ms -> the model's input windows of the query stretched to each
    tempo scale (hop_s: window hop in the stretched time, default the model's hop)."""
    spec = model.config.window if hop_s is None else WindowSpec(model.config.window_s, hop_s)
    return [feature_windows(stretch_frames(frames, s), spec, model.config.feature)[0] for s in scales]


def query_fingerprints(model: Encoder | ModelHandle, frames: np.ndarray,
                       scales: tuple[float, ...] = QUERY_SCALES, hop_s: float | None = None,
                       timing: dict[str, float] | None = None) -> list[ScaledQuery]:
    """(T, B) query features at 10 ms (the model's feature: CREPE activation or CQT) -> its
    fingerprint sequence at each tempo scale (one embedding batch: a handle's embed_query,
    ONNX Runtime without torch; an Encoder's learned.model.embed).

    hop_s: window hop in the stretched query's time (default the model's hop);
    timing: gets "features" and "embed" milliseconds added.
    """
    t0 = time.perf_counter()
    windows = scaled_windows(model, frames, scales, hop_s)
    t1 = time.perf_counter()
    if isinstance(model, ModelHandle):
        emb = model.embed_query(np.concatenate(windows))
    else:
        from humdex.learned.model import embed

        emb = embed(model, np.concatenate(windows))
    if timing is not None:
        add_ms(timing, "features", t1 - t0)
        add_ms(timing, "embed", time.perf_counter() - t1)
    bounds = np.cumsum([0] + [len(w) for w in windows])
    return [ScaledQuery(s, emb[lo:hi]) for s, lo, hi in zip(scales, bounds[:-1], bounds[1:])]


def as_scaled(query: np.ndarray | list[ScaledQuery]) -> list[ScaledQuery]:
    """A plain (n, 128) sequence is the query at its own tempo."""
    return [ScaledQuery(1.0, query)] if isinstance(query, np.ndarray) else query


def fingerprint_frames(model: Encoder, frames: np.ndarray, hop_s: float | None = None) -> np.ndarray:
    """(T, B) features at 10 ms (the model's: CREPE activation or CQT) -> (n_windows, 128) fingerprints.

    Windows of the model's length every `hop_s` (default the model's hop; references may use a
    coarser hop to index faster: rerank takes both hops into account).
    """
    from humdex.learned.model import embed

    spec = model.config.window if hop_s is None else WindowSpec(model.config.window_s, hop_s)
    windows, _ = feature_windows(frames, spec, model.config.feature)
    return embed(model, windows)


def contour_frames(contour: Contour, feature: str) -> np.ndarray:
    """A pitch contour (MIDI reference, .pv query) as `feature` frames: a CREPE-like
    pseudo-activation, or the CQT of the contour played as harmonic tones."""
    if feature == "crepe":
        return contour_to_activation(contour)
    from humdex.learned.tones import contour_tones

    return audio_frames(contour_tones(contour), SAMPLE_RATE, feature)


def fingerprint_contour(model: Encoder, contour: Contour, hop_s: float | None = None) -> np.ndarray:
    """Pitch contour (MIDI reference, .pv query) -> (n_windows, 128), via contour_frames."""
    return fingerprint_frames(model, contour_frames(contour, model.config.feature), hop_s)


def scale_votes(store: VectorStore, query: np.ndarray | list[ScaledQuery],
                k: int = KNN_K, vote: str = "similarity",
                length_power: float = 0.0) -> tuple[list[str], np.ndarray]:
    """k-NN votes of the query's fingerprints: (song keys, (n_songs, n_scales) float32 votes).

    Each query fingerprint gives each song among its k nearest neighbours one vote weighted by
    its best similarity to that song (negative similarities count 0); a song's votes at a tempo
    scale add up over that scale's fingerprints. (Means per scale, which don't favour the
    longer stretched queries, measured far worse on the pool's validation queries: top-10
    0.75 vs 0.92 to 0.94.) One k-NN search serves every scale.

    vote "margin": a neighbour's weight is its similarity minus that of the fingerprint's k-th
    neighbour (local scaling, as CSLS): a row whose k neighbours are all alike, as a popular
    ("hub") song's crowd is, votes little.

    length_power p: a song's votes are divided by its number of windows to the power p. A song
    of n windows is among a fingerprint's neighbours by chance about n times as often as a song
    of one window, so long songs (and references that join two melodies) gather votes from every
    query; p = 0.5 divides out the chance votes' spread, p = 1 their mean.
    """
    scaled = as_scaled(query)
    hits = store.search(np.concatenate([q.fingerprints for q in scaled]), k)
    n_rows = len(hits.scores)
    row_scale = np.repeat(np.arange(len(scaled)), [len(q.fingerprints) for q in scaled])
    keys, song = np.unique(hits.song_keys.astype(str), return_inverse=True)
    song = song.reshape(n_rows, -1)
    weight = np.maximum(np.nan_to_num(hits.scores, neginf=0.0), 0.0)
    if vote == "margin":
        weight = np.maximum(weight - weight.min(axis=1, keepdims=True), 0.0)
    elif vote != "similarity":
        raise ValueError(f"unknown vote {vote!r}")
    best = np.zeros((n_rows, len(keys)), np.float32)  # best weight of each song per row
    np.maximum.at(best, (np.repeat(np.arange(n_rows), song.shape[1]), song.ravel()), weight.ravel())
    votes = np.zeros((len(scaled), len(keys)), np.float32)
    np.add.at(votes, row_scale, best)
    real = keys != ""
    keys, votes = keys[real], votes[:, real]
    if length_power and len(keys):
        votes /= np.maximum(store.window_counts(list(keys)), 1).astype(np.float32) ** length_power
    return [str(x) for x in keys], votes.T


def candidate_songs(store: VectorStore, query: np.ndarray | list[ScaledQuery], k: int = KNN_K,
                    n_candidates: int = N_CANDIDATES) -> list[tuple[str, float]]:
    """Songs voted for by the query's fingerprints: (song_key, votes of its best scale), best first."""
    keys, votes = scale_votes(store, query, k)
    per_song = votes.max(axis=1) if len(keys) else np.zeros(0, np.float32)
    order = np.argsort(-per_song, kind="stable")[:n_candidates]
    return [(keys[i], float(per_song[i])) for i in order]


def sequence_correlation(query: np.ndarray, song: np.ndarray,
                         ratios: tuple[float, ...] = TEMPO_RATIOS,
                         max_offset: int | None = None, step: float = 1.0) -> tuple[float, int, float]:
    """Best alignment of query (n, D) inside song (m, D): (mean cosine, song start index, ratio).

    For each tempo ratio r and song offset o (at most max_offset, e.g. for queries sung from the
    song's start), query window i meets song window o + round(i r); windows falling outside
    the song count as similarity 0, so a partial overlap is penalised. step = query hop / song
    hop (song fingerprints indexed at a coarser hop: step < 1).
    """
    n, m = len(query), len(song)
    if n == 0 or m == 0:
        return 0.0, 0, 1.0
    sim = np.concatenate([query @ song.T, np.zeros((n, 1), np.float32)], axis=1)  # (n, m + 1)
    offsets = np.arange(m if max_offset is None else min(m, max_offset + 1))
    steps = np.round(np.outer(ratios, np.arange(n)) * step).astype(np.int64)  # (R, n)
    j = np.minimum(offsets[None, :, None] + steps[:, None, :], m)  # (R, offsets, n); m = outside
    scores = sim[np.arange(n)[None, None, :], j].mean(axis=2)  # (R, offsets)
    r, o = np.unravel_index(int(np.argmax(scores)), scores.shape)  # first best: ratio order wins ties
    return float(scores[r, o]), int(o), float(ratios[r])


def rerank(store: VectorStore, query: np.ndarray | list[ScaledQuery], keys: list[str], hop_s: float,
           ratios: tuple[float, ...] | None = None,
           max_offset_s: float | dict[str, float] | None = None,
           song_hop_s: float | None = None,
           scales_of: dict[str, list[int]] | None = None) -> list[Match]:
    """Rerank candidate songs by sequence_correlation, best first (song_hop_s: the store's hop).

    hop_s is the query's window hop in its own (stretched) time; each tempo scale is tried with
    `ratios` around it (default: TEMPO_RATIOS for a single unscaled query, else SCALE_RATIOS),
    or only the scales `scales_of[key]` (indices into the query's scales) where given.
    Match.ratio is song seconds per original query second.
    """
    scaled = as_scaled(query)
    ratios = ratios or (TEMPO_RATIOS if len(scaled) == 1 else SCALE_RATIOS)
    song_hop = song_hop_s or hop_s
    out = []
    songs = store.sequences(keys)
    for key in keys:
        song = songs[key]
        limit = max_offset_s.get(key) if isinstance(max_offset_s, dict) else max_offset_s
        max_offset = None if limit is None else round(limit / song_hop)
        best = Match(key, -np.inf, 0.0, 1.0)
        for q in (scaled if scales_of is None else [scaled[i] for i in scales_of[key]]):
            score, o, r = sequence_correlation(q.fingerprints, song, ratios, max_offset,
                                               step=hop_s / song_hop)
            if score > best.score:
                best = Match(key, score, o * song_hop, r * q.scale)
        out.append(best)
    return sorted(out, key=lambda mt: -mt.score)


def search_store(store: VectorStore, query: np.ndarray | list[ScaledQuery], hop_s: float,
                 top: int = 10, n_candidates: int = N_CANDIDATES,
                 max_offset_s: float | dict[str, float] | None = None,
                 song_hop_s: float | None = None, timing: dict[str, float] | None = None,
                 voted: list[str] | None = None, n_voted: int = 0,
                 k: int = KNN_K, vote: str = "similarity",
                 length_power: float | None = None) -> list[Match]:
    """k-NN candidates then rerank: the query's fingerprints (one sequence or several tempo scales) -> top matches.

    max_offset_s: the query starts at most this far into the song (MIREX from-start protocol),
    one limit for all songs or one per song key;
    song_hop_s: the hop the songs were fingerprinted at (default: the query's);
    voted: gets the n_voted best-voted song keys appended, best first (the hybrid's classical
    stage picks from them on a large catalog); k, vote, length_power: scale_votes's
    (length_power None: length_power_for the store).
    """
    t0 = time.perf_counter()
    if length_power is None:
        length_power = length_power_for(len(store))
    keys, votes = scale_votes(store, query, k, vote, length_power)
    by_votes = np.argsort(-votes.max(axis=1), kind="stable") if keys else np.zeros(0, int)
    order = by_votes[:n_candidates]
    if voted is not None:
        voted.extend(keys[i] for i in by_votes[:n_voted])
    # each candidate is reranked at the tempo scales that gave it the most votes
    scaled = as_scaled(query)
    as_sung = [i for i, q in enumerate(scaled) if q.scale == 1.0]  # always tried: the tempo as hummed
    scales_of = {keys[i]: sorted(set(np.argsort(-votes[i], kind="stable")[:RERANK_SCALES]) | set(as_sung))
                 for i in order}
    if len(store) <= n_candidates:  # a catalog no bigger than the candidate list is reranked whole:
        # the songs no query fingerprint had among its k nearest, at the scales most voted overall
        overall = set(np.argsort(-votes.sum(axis=0), kind="stable")[:RERANK_SCALES]) if keys else set()
        unvoted_scales = sorted(overall | set(as_sung))
        catalog = store.keys()  # a VectorStore's song keys (not a dict's)
        for key in catalog:
            scales_of.setdefault(key, unvoted_scales)
    t1 = time.perf_counter()
    out = rerank(store, query, list(scales_of), hop_s, max_offset_s=max_offset_s,
                 song_hop_s=song_hop_s, scales_of=scales_of)[:top]
    if timing is not None:
        add_ms(timing, "ann", t1 - t0)
        add_ms(timing, "rerank", time.perf_counter() - t1)
    return out


def add_ms(timing: dict[str, float], stage: str, seconds: float) -> None:
    """Add a stage's time (seconds) to a timing dict in milliseconds."""
    timing[stage] = timing.get(stage, 0.0) + seconds * 1e3


def fuse(results: list[list[Match]], weights: tuple[float, ...] | None = None) -> list[Match]:
    """Late fusion (M_fused): weighted mean of each song's scores over models (missing = worst seen).

    Offset and ratio come from the first model that ranked the song.
    """
    weights = weights or tuple(1.0 / len(results) for _ in results)
    floor = min((mt.score for res in results for mt in res), default=0.0)
    by_key: dict[str, list[float]] = {}
    first: dict[str, Match] = {}
    for i, res in enumerate(results):
        for mt in res:
            by_key.setdefault(mt.song_key, [floor] * len(results))[i] = mt.score
            first.setdefault(mt.song_key, mt)
    fused = [Match(k, float(np.dot(weights, s)), first[k].offset_s, first[k].ratio)
             for k, s in by_key.items()]
    return sorted(fused, key=lambda mt: -mt.score)
