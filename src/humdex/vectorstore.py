"""Vector store: each song's fingerprint sequence, searchable by k-NN (FAISS; exact when small, HNSW when large).

`VectorStore` is the interface the search code uses (a distributed engine can implement it
later); `FaissStore` is the embedded implementation. Vectors are L2-normalised, so inner
product = cosine similarity.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from humdex.errors import CatalogError

EXACT_LIMIT = 250_000  # vectors; above this, HNSW
HNSW_M = 32
HNSW_EF_SEARCH = 128
HNSW_EF_CONSTRUCTION = 80


@dataclass(frozen=True)
class Hits:
    """k-NN answer for Q query vectors: scores (Q, k) cosine, song_keys (Q, k) str ('' = none), frames (Q, k)."""

    scores: np.ndarray
    song_keys: np.ndarray
    frames: np.ndarray


class NumpyFlatIP:
    """Exact inner-product search in numpy: the fallback where faiss is not installed (e.g. a GPU box)."""

    def __init__(self, dim: int) -> None:
        self.vectors = np.zeros((0, dim), np.float32)

    @property
    def ntotal(self) -> int:
        return len(self.vectors)

    def add(self, x: np.ndarray) -> None:
        self.vectors = np.concatenate([self.vectors, x.astype(np.float32)])

    def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        sim = q @ self.vectors.T
        ids = np.argpartition(-sim, k - 1, axis=1)[:, :k] if k < sim.shape[1] else \
            np.tile(np.arange(sim.shape[1]), (len(q), 1))
        order = np.argsort(-np.take_along_axis(sim, ids, 1), axis=1)
        ids = np.take_along_axis(ids, order, 1)
        return np.take_along_axis(sim, ids, 1), ids


def _faiss():
    try:
        import faiss
    except ImportError:
        return None
    return faiss


class VectorStore(Protocol):
    def add(self, song_keys: Sequence[str], sequences: Sequence[np.ndarray]) -> None: ...
    def remove(self, song_keys: Sequence[str]) -> int: ...
    def search(self, vectors: np.ndarray, k: int) -> Hits: ...
    def sequence(self, song_key: str) -> np.ndarray: ...
    def keys(self) -> list[str]: ...


class FaissStore:
    """Songs' fingerprint sequences in memory plus a FAISS index over all their vectors.

    The index is rebuilt lazily after add/remove; IndexFlatIP up to `exact_limit` vectors,
    IndexHNSWFlat (inner product) beyond. save()/load() use one folder.
    """

    def __init__(self, dim: int = 128, exact_limit: int = EXACT_LIMIT) -> None:
        self.dim = dim
        self.exact_limit = exact_limit
        self._seqs: dict[str, np.ndarray] = {}
        self._index: Any = None  # faiss index or NumpyFlatIP, built lazily
        self._owner: np.ndarray = np.zeros(0, np.int64)
        self._frame: np.ndarray = np.zeros(0, np.int64)
        self._order: list[str] = []

    def __len__(self) -> int:
        return len(self._seqs)

    @property
    def n_vectors(self) -> int:
        return sum(len(s) for s in self._seqs.values())

    @property
    def kind(self) -> str:
        """'flat' (exact) or 'hnsw', by the number of vectors."""
        return "flat" if self.n_vectors <= self.exact_limit else "hnsw"

    def keys(self) -> list[str]:
        return list(self._seqs)

    def sequence(self, song_key: str) -> np.ndarray:
        """(n, dim) float32 fingerprints of one song, in time order."""
        return self._seqs[song_key]

    def add(self, song_keys: Sequence[str], sequences: Sequence[np.ndarray]) -> None:
        """Add (or replace) songs, one (n_i, dim) fingerprint sequence each."""
        if len(song_keys) != len(sequences):
            raise ValueError("song_keys and sequences differ in length")
        for key, seq in zip(song_keys, sequences):
            # stored at float16 precision (as saved), so a reloaded store answers identically
            seq = np.asarray(seq, dtype=np.float16).astype(np.float32).reshape(-1, self.dim)
            self._seqs[str(key)] = seq
        self._index = None

    def remove(self, song_keys: Sequence[str]) -> int:
        """Remove songs; returns how many were present."""
        n = sum(self._seqs.pop(str(k), None) is not None for k in song_keys)
        if n:
            self._index = None
        return n

    def _build(self) -> None:
        faiss = _faiss()
        self._order = list(self._seqs)
        lengths = [len(self._seqs[k]) for k in self._order]
        self._owner = np.repeat(np.arange(len(self._order)), lengths)
        self._frame = np.concatenate([np.arange(n) for n in lengths]) if lengths else np.zeros(0, np.int64)
        if faiss is None:
            index = NumpyFlatIP(self.dim)
        elif self.kind == "flat":
            index = faiss.IndexFlatIP(self.dim)
        else:
            index = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        if lengths:
            index.add(np.concatenate([self._seqs[k] for k in self._order]))
        self._set_index(index)

    def _set_index(self, index) -> None:
        if hasattr(index, "hnsw"):
            index.hnsw.efSearch = HNSW_EF_SEARCH
        self._index = index

    def search(self, vectors: np.ndarray, k: int) -> Hits:
        """The k nearest stored vectors of each query vector (Q, dim)."""
        if self._index is None:
            self._build()
        q = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        k = max(1, min(k, max(1, self._index.ntotal)))
        scores, ids = self._index.search(q, k)
        valid = ids >= 0
        safe = np.where(valid, ids, 0)
        keys = np.array(self._order + [""], dtype=object)
        owner = np.where(valid, self._owner[safe] if len(self._owner) else 0, len(self._order))
        return Hits(scores=np.where(valid, scores, -np.inf).astype(np.float32),
                    song_keys=keys[owner], frames=np.where(valid, self._frame[safe] if
                                                           len(self._frame) else 0, -1))

    def save(self, folder: str | Path) -> None:
        """Write vectors.npz (+ index.faiss for HNSW) into `folder`, each file atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self._index is None:
            self._build()
        keys = self._order
        lengths = np.array([len(self._seqs[k]) for k in keys], np.int64)
        flat = (np.concatenate([self._seqs[k] for k in keys]) if keys
                else np.zeros((0, self.dim), np.float32))
        meta = {"dim": self.dim, "exact_limit": self.exact_limit, "kind": self.kind,
                "n_vectors": int(lengths.sum())}
        tmp = folder / "vectors.npz.tmp"
        with open(tmp, "wb") as f:
            np.savez(f, keys=np.array(keys, dtype=str), lengths=lengths, vectors=flat.astype(np.float16),
                     meta=json.dumps(meta))
        if self.kind == "hnsw" and not isinstance(self._index, NumpyFlatIP):
            import faiss

            faiss.write_index(self._index, str(folder / "index.faiss.tmp"))
            os.replace(folder / "index.faiss.tmp", folder / "index.faiss")
        os.replace(tmp, folder / "vectors.npz")

    @classmethod
    def load(cls, folder: str | Path) -> FaissStore:
        """The store saved in `folder`; CatalogError when missing or corrupt."""
        folder = Path(folder)
        try:
            with np.load(folder / "vectors.npz", allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                keys, lengths, flat = list(z["keys"]), z["lengths"], z["vectors"].astype(np.float32)
        except (OSError, ValueError, KeyError) as e:
            raise CatalogError(f"vector store missing or corrupt in {folder}: {e}") from e
        store = cls(dim=int(meta["dim"]), exact_limit=int(meta["exact_limit"]))
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        store._seqs = {str(k): flat[a:b] for k, a, b in zip(keys, bounds[:-1], bounds[1:])}
        index_path = folder / "index.faiss"
        if meta["kind"] == "hnsw" and index_path.is_file() and _faiss() is not None:
            index = _faiss().read_index(str(index_path))
            if index.ntotal == meta["n_vectors"]:
                store._order = [str(k) for k in keys]
                store._owner = np.repeat(np.arange(len(keys)), lengths)
                store._frame = np.concatenate([np.arange(n) for n in lengths])
                store._set_index(index)
        return store
