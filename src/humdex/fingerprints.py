"""Learned retrieval: fingerprint sequences of clips, k-NN candidates, sequence-correlation rerank, fusion.

A clip (audio activation, or a melody rendered to a pseudo-activation) becomes a sequence of
128-d fingerprints, one per window (features.WindowSpec). A query's fingerprints vote for songs
through the vector store; the best candidates are reranked by the maximum mean cosine between
the query's sequence and the song's sequence over every offset and a few tempo ratios.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from humdex.contour import Contour
from humdex.features import WindowSpec, contour_to_activation, crepe_windows
from humdex.model import Encoder, embed
from humdex.vectorstore import VectorStore

TEMPO_RATIOS = (0.8, 0.9, 1.0, 1.12, 1.25)  # song windows per query window
KNN_K = 100
N_CANDIDATES = 200


@dataclass(frozen=True)
class Match:
    """One reranked song: mean cosine `score` in [-1, 1], query start `offset_s` in the song, tempo ratio."""

    song_key: str
    score: float
    offset_s: float
    ratio: float


def fingerprint_activation(model: Encoder, activation: np.ndarray,
                           hop_s: float | None = None) -> np.ndarray:
    """(T, 360) CREPE activation at 10 ms -> (n_windows, 128) fingerprints.

    Windows of the model's length every `hop_s` (default the model's hop; references may use a
    coarser hop to index faster: rerank takes both hops into account).
    """
    if model.config.feature != "crepe":
        raise ValueError(f"model expects {model.config.feature} features, not a CREPE activation")
    spec = model.config.window if hop_s is None else WindowSpec(model.config.window_s, hop_s)
    windows, _ = crepe_windows(activation, spec)
    return embed(model, windows)


def fingerprint_contour(model: Encoder, contour: Contour, hop_s: float | None = None) -> np.ndarray:
    """Pitch contour (MIDI reference, .pv query) -> (n_windows, 128) via a CREPE-like pseudo-activation."""
    return fingerprint_activation(model, contour_to_activation(contour), hop_s)


def candidate_songs(store: VectorStore, query: np.ndarray, k: int = KNN_K,
                    n_candidates: int = N_CANDIDATES) -> list[tuple[str, float]]:
    """Songs voted for by the query's (n, 128) fingerprints: (song_key, votes), best first.

    Each query fingerprint gives each song among its k nearest neighbours one vote weighted by
    its best similarity to that song; votes add up over the query's fingerprints.
    """
    hits = store.search(query, k)
    votes: dict[str, float] = defaultdict(float)
    for row_keys, row_scores in zip(hits.song_keys, hits.scores):
        best: dict[str, float] = {}
        for key, s in zip(row_keys, row_scores):
            if key and s > best.get(key, -np.inf):
                best[key] = float(s)
        for key, s in best.items():
            votes[key] += max(s, 0.0)
    return sorted(votes.items(), key=lambda kv: -kv[1])[:n_candidates]


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
    best = (-np.inf, 0, 1.0)
    for r in ratios:
        j = offsets[:, None] + np.round(np.arange(n) * r * step).astype(np.int64)[None, :]  # (m, n)
        j = np.where(j < m, j, m)
        scores = sim[np.arange(n)[None, :], j].mean(axis=1)  # (m,)
        o = int(np.argmax(scores))
        if scores[o] > best[0]:
            best = (float(scores[o]), o, float(r))
    return best


def rerank(store: VectorStore, query: np.ndarray, keys: list[str], hop_s: float,
           ratios: tuple[float, ...] = TEMPO_RATIOS, max_offset_s: float | None = None,
           song_hop_s: float | None = None) -> list[Match]:
    """Rerank candidate songs by sequence_correlation, best first (song_hop_s: the store's hop)."""
    song_hop = song_hop_s or hop_s
    max_offset = None if max_offset_s is None else round(max_offset_s / song_hop)
    out = []
    for key in keys:
        score, o, r = sequence_correlation(query, store.sequence(key), ratios, max_offset,
                                           step=hop_s / song_hop)
        out.append(Match(key, score, o * song_hop, r))
    return sorted(out, key=lambda mt: -mt.score)


def search_store(store: VectorStore, query: np.ndarray, hop_s: float, top: int = 10,
                 n_candidates: int = N_CANDIDATES, max_offset_s: float | None = None,
                 song_hop_s: float | None = None) -> list[Match]:
    """k-NN candidates then rerank: the query's (n, 128) fingerprints -> top matches.

    max_offset_s: the query starts at most this far into the song (MIREX from-start protocol);
    song_hop_s: the hop the songs were fingerprinted at (default: the query's).
    """
    keys = [k for k, _ in candidate_songs(store, query, n_candidates=n_candidates)]
    return rerank(store, query, keys, hop_s, max_offset_s=max_offset_s, song_hop_s=song_hop_s)[:top]


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
