"""Vector store: each song's fingerprint sequence, searchable by k-NN (FAISS; exact when small, HNSW when large).

`VectorStore` is the interface the search code uses; `FaissStore` is the embedded
implementation, `milvus_store.MilvusStore` the distributed one. Vectors are L2-normalised, so inner
product = cosine similarity.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from humdex.errors import CatalogError
from humdex.files import atomic_write

EXACT_LIMIT = 16_384  # vectors (~400 songs); above this, HNSW: a 10 s query's ~230 scaled
# fingerprints search 86k vectors in 0.4 s exactly, in 0.03 s by HNSW (one core)
MAX_DEAD_SHARE = 0.25  # rebuild the index when this share of its vectors belongs to removed songs
HNSW_M = 32
HNSW_EF_SEARCH = 128
HNSW_EF_CONSTRUCTION = 80
# Index codecs beyond EXACT_LIMIT (store_spec: --store faiss:<codec>), bytes per 128-d vector in
# the index: "flat" HNSW over float32 (512 + graph), "f16" HNSW over float16 (256 + graph), "sq8"
# HNSW over 8-bit scalar codes (128 + graph), "pq" IVF-PQ (PQ_M bytes + an 8-byte id, no graph),
# "hnswpq" HNSW over PQ codes (PQ_M bytes + graph, no inverted lists).
# Compressed codecs also keep the songs' sequences (the rerank's input) as float16 in RAM, as does
# any store loaded from its file (sequence() converts a song when asked).
CODECS = ("flat", "f16", "sq8", "pq", "hnswpq")
PQ_M = 32  # sub-quantizers of 4 dims, 8 bits each: 32 bytes per vector
PQ_NPROBE = 32  # inverted lists searched per query vector
PQ_MAX_LISTS = 4096  # (4 sqrt(N) reaches it at ~1M vectors, ~25k songs)
PQ_TRAIN_MAX = 200_000  # vectors sampled to train the coarse quantizer and the codebooks
# A saved store whose float16 sequences pass this many bytes (~165k songs of 51 fingerprints)
# reads them memory-mapped from vectors.npz (load(mmap_sequences=None)): the rerank reads only
# its candidates' sequences, so they need not all sit in RAM (1M songs: 13 GB).
MMAP_SEQUENCES_BYTES = 2 << 30
KINDS = {"flat": "hnsw", "f16": "hnsw-f16", "sq8": "hnsw-sq8", "pq": "ivfpq", "hnswpq": "hnsw-pq"}
# Beyond this many vectors (~54k melodies, ~11k three-minute recordings; a float32 graph of
# 3 GB) the default codec ("flat") builds its HNSW over 8-bit codes, as "sq8" does: 128 instead
# of 512 bytes per vector besides the graph's 256. At 90,000 songs (6.7M vectors) that holds the
# search in 5.7 GB instead of 8.2 GB; the validation hums lose 2 of 100 top-10 hits there (MRR
# 0.572 -> 0.568; BENCHMARKS.md). Stores saved before it keep float32.
SQ8_LIMIT = 4_000_000


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
    def sequences(self, song_keys: Sequence[str]) -> dict[str, np.ndarray]: ...
    def window_counts(self, song_keys: Sequence[str]) -> np.ndarray: ...
    def keys(self) -> list[str]: ...
    def __len__(self) -> int: ...


class FaissStore:
    """Songs' fingerprint sequences in memory plus a FAISS index over all their vectors.

    IndexFlatIP (exact) up to `exact_limit` vectors, beyond it the codec's index (CODECS:
    IndexHNSWFlat by default, over 8-bit codes beyond `sq8_limit` vectors (None: never); HNSW
    over float16 or 8-bit codes, or IVF-PQ; inner product).
    The index changes in place: added songs are appended, removed songs' vectors become
    tombstones that searches skip, and it is rebuilt from scratch only when tombstones pass
    MAX_DEAD_SHARE, the flat/HNSW choice changes, or nothing was built yet. save()/load() use one
    file, vectors.npz (sequences, the index itself and its id map), replaced atomically.
    """

    def __init__(self, dim: int = 128, exact_limit: int = EXACT_LIMIT, codec: str = "flat",
                 sq8_limit: int | None = SQ8_LIMIT) -> None:
        if codec not in CODECS:
            raise ValueError(f"codec {codec!r} is not one of {CODECS}")
        self.dim = dim
        self.exact_limit = exact_limit
        self.codec = codec
        self.sq8_limit = sq8_limit
        self._seqs: dict[str, np.ndarray] = {}
        self._index: Any = None  # faiss index or NumpyFlatIP, built lazily
        self._index_kind = ""
        self._owner: np.ndarray = np.zeros(0, np.int64)  # index id -> slot in _order; -1 = removed
        self._frame: np.ndarray = np.zeros(0, np.int64)  # index id -> window number in its song
        self._order: list[str] = []  # slots: song keys in the order their vectors were indexed
        self._slot: dict[str, int] = {}  # live song key -> slot
        self._removals = 0  # remove() calls that marked vectors dead (keys the caches below)
        self._cached: dict[str, tuple[Any, tuple, Any]] = {}  # per-search values, O(vectors) to make

    def __len__(self) -> int:
        return len(self._seqs)

    @property
    def n_vectors(self) -> int:
        return sum(len(s) for s in self._seqs.values())

    @property
    def kind(self) -> str:
        """'flat' (exact) or the approximate index of the codec ('hnsw', 'hnsw-f16', 'hnsw-sq8',
        'ivfpq', 'hnsw-pq'), by the number of vectors."""
        n_vectors = self.n_vectors
        if n_vectors <= self.exact_limit:
            return "flat"
        if self.codec == "flat" and self.sq8_limit is not None and n_vectors > self.sq8_limit:
            return KINDS["sq8"]
        return KINDS[self.codec]

    def set_codec(self, codec: str) -> None:
        """Change how the index (and the sequences in RAM) are stored; rebuilt at the next search."""
        if codec not in CODECS:
            raise ValueError(f"codec {codec!r} is not one of {CODECS}")
        if codec != self.codec:
            self.codec, self._index = codec, None
            self._seqs = {k: self._kept(v) for k, v in self._seqs.items()}

    def _kept(self, seq: np.ndarray) -> np.ndarray:
        """A sequence as held in RAM: float32, or float16 under a compressed codec."""
        return seq.astype(np.float32 if self.codec == "flat" else np.float16)

    @property
    def dead_share(self) -> float:
        """Fraction of the index's vectors that belong to removed songs."""
        return self._memo("dead", self._owner, (len(self._owner), self._removals),
                          lambda: float(np.mean(self._owner < 0)) if len(self._owner) else 0.0)

    def _memo(self, name: str, source: Any, state: tuple, make) -> Any:
        """make(), remembered while it reads the same `source` object in the same `state`: at
        1M songs the dead share and the key array cost ~0.1 s a search to recompute."""
        hit = self._cached.get(name)
        if hit is None or hit[0] is not source or hit[1] != state:
            hit = self._cached[name] = (source, state, make())
        return hit[2]

    def keys(self) -> list[str]:
        return list(self._seqs)

    def sequence(self, song_key: str) -> np.ndarray:
        """(n, dim) float32 fingerprints of one song, in time order (held as float16 where loaded
        or under a compressed codec: the precision they are saved at)."""
        return self._seqs[song_key].astype(np.float32, copy=False)

    def sequences(self, song_keys: Sequence[str]) -> dict[str, np.ndarray]:
        """sequence() of each present song (a remote store fetches them in one go)."""
        return {k: self.sequence(k) for k in song_keys if k in self._seqs}

    def window_counts(self, song_keys: Sequence[str]) -> np.ndarray:
        """(len(song_keys),) int64: each song's number of fingerprints (0 for a song not here)."""
        return np.array([len(self._seqs[k]) if k in self._seqs else 0 for k in song_keys], np.int64)

    def add(self, song_keys: Sequence[str], sequences: Sequence[np.ndarray]) -> None:
        """Add (or replace) songs, one (n_i, dim) fingerprint sequence each."""
        if len(song_keys) != len(sequences):
            raise ValueError("song_keys and sequences differ in length")
        self.remove([k for k in song_keys if str(k) in self._seqs])
        for key, seq in zip(song_keys, sequences):
            # stored at float16 precision (as saved), so a reloaded store answers identically
            seq = self._kept(np.asarray(seq, dtype=np.float16).reshape(-1, self.dim))
            self._seqs[str(key)] = seq
            if self._index is not None:
                self._append(str(key), seq.astype(np.float32, copy=False))
        if self._index is not None and self._index_kind != self.kind:
            self._index = None

    def remove(self, song_keys: Sequence[str]) -> int:
        """Remove songs; returns how many were present."""
        n = 0
        for key in map(str, song_keys):
            if self._seqs.pop(key, None) is None:
                continue
            n += 1
            slot = self._slot.pop(key, None)
            if self._index is not None and slot is not None:
                self._owner[self._owner == slot] = -1
                self._removals += 1
        if self._index is not None and (self.dead_share > MAX_DEAD_SHARE or self._index_kind != self.kind):
            self._index = None
        return n

    def _append(self, key: str, seq: np.ndarray) -> None:
        self._slot[key] = len(self._order)
        self._order.append(key)
        self._owner = np.concatenate([self._owner, np.full(len(seq), self._slot[key], np.int64)])
        self._frame = np.concatenate([self._frame, np.arange(len(seq), dtype=np.int64)])
        if len(seq):
            self._index.add(seq)

    def _new_index(self, n_vectors: int) -> Any:
        """An empty index of self.kind for about n_vectors (trained ones are trained in _build)."""
        faiss = _faiss()
        ip = faiss.METRIC_INNER_PRODUCT
        if self.kind == "flat":
            return faiss.IndexFlatIP(self.dim)
        if self.kind == "ivfpq":
            # ~4 sqrt(N) lists, each trained on at least 39 vectors (faiss's minimum), at most
            # PQ_MAX_LISTS: assigning N vectors costs N x lists distances, the build's bulk on a CPU
            n_lists = int(np.clip(min(4 * np.sqrt(n_vectors), n_vectors / 39), 16, PQ_MAX_LISTS))
            return faiss.IndexIVFPQ(faiss.IndexFlatIP(self.dim), self.dim, n_lists, PQ_M, 8, ip)
        if self.kind == "hnsw":
            index = faiss.IndexHNSWFlat(self.dim, HNSW_M, ip)
        elif self.kind == "hnsw-pq":  # trained in _build, like IVF-PQ
            index = faiss.IndexHNSWPQ(self.dim, PQ_M, HNSW_M, 8, ip)
        else:
            qtype = {"hnsw-f16": faiss.ScalarQuantizer.QT_fp16, "hnsw-sq8": faiss.ScalarQuantizer.QT_8bit}
            index = faiss.IndexHNSWSQ(self.dim, qtype[self.kind], HNSW_M, ip)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        return index

    def _build(self) -> None:
        faiss = _faiss()
        index: Any = NumpyFlatIP(self.dim) if faiss is None else self._new_index(self.n_vectors)
        if not getattr(index, "is_trained", True) and self._seqs:
            flat = np.concatenate(list(self._seqs.values()))
            sample = np.random.default_rng(0).permutation(len(flat))[:PQ_TRAIN_MAX]
            index.train(flat[np.sort(sample)].astype(np.float32))
        self._set_index(index, self.kind)
        keys = list(self._seqs)
        lengths = [len(self._seqs[k]) for k in keys]
        self._order, self._slot = keys, {k: i for i, k in enumerate(keys)}
        self._owner = np.repeat(np.arange(len(keys)), lengths).astype(np.int64)
        self._frame = (np.concatenate([np.arange(n) for n in lengths]) if lengths
                       else np.zeros(0, np.int64)).astype(np.int64)
        if keys:
            index.add(np.concatenate([self._seqs[k] for k in keys]).astype(np.float32))

    def _set_index(self, index, kind: str) -> None:
        if hasattr(index, "hnsw"):
            index.hnsw.efSearch = HNSW_EF_SEARCH
        if hasattr(index, "nprobe"):
            index.nprobe = PQ_NPROBE
        self._index, self._index_kind = index, kind

    def search(self, vectors: np.ndarray, k: int) -> Hits:
        """The k nearest stored vectors of each query vector (Q, dim); removed songs never answer."""
        if self._index is None:
            self._build()
        q = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        k = max(1, min(k, max(1, self._index.ntotal)))
        dead = self.dead_share
        k_fetch = k if dead == 0 else min(self._index.ntotal, int(np.ceil(k / (1 - dead))) + 8)
        scores, ids = self._index.search(q, k_fetch)
        valid = ids >= 0
        safe = np.where(valid, ids, 0)
        owner = np.where(valid, self._owner[safe] if len(self._owner) else -1, -1)
        valid &= owner >= 0
        if k_fetch > k:  # removed songs' vectors fetched too: keep the k best live ones
            keep = np.argsort(~valid, axis=1, kind="stable")[:, :k]
            scores, safe, owner, valid = (np.take_along_axis(a, keep, 1) for a in (scores, safe, owner, valid))
        keys = self._memo("keys", self._order, (len(self._order),),
                          lambda: np.array(self._order + [""], dtype=object))
        return Hits(scores=np.where(valid, scores, -np.inf).astype(np.float32),
                    song_keys=keys[np.where(valid, owner, len(self._order))],
                    frames=np.where(valid, self._frame[safe] if len(self._frame) else 0, -1))

    def save(self, folder: str | Path) -> None:
        """Write `folder`/vectors.npz atomically: sequences, the index (HNSW) and its id map."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self._index is None:
            self._build()
        keys = list(self._seqs)
        lengths = np.array([len(self._seqs[k]) for k in keys], np.int64)
        flat = (np.concatenate([self._seqs[k] for k in keys]) if keys
                else np.zeros((0, self.dim), np.float32))
        meta = {"dim": self.dim, "exact_limit": self.exact_limit, "kind": self._index_kind,
                "n_vectors": int(lengths.sum()), "codec": self.codec, "sq8_limit": self.sq8_limit}
        index_bytes = np.zeros(0, np.uint8)  # a flat index is rebuilt on load (fast, exact)
        if self._index_kind != "flat" and not isinstance(self._index, NumpyFlatIP):
            index_bytes = _faiss().serialize_index(self._index)
        arrays: dict[str, Any] = {"keys": np.array(keys, dtype=str), "lengths": lengths,
                  "vectors": flat.astype(np.float16), "meta": json.dumps(meta), "index": index_bytes,
                  "slots": np.array(self._order, dtype=str), "owner": self._owner, "frame": self._frame}
        atomic_write(folder / "vectors.npz", lambda f: np.savez(f, **arrays))

    @classmethod
    def load(cls, folder: str | Path, mmap_sequences: bool | None = None) -> FaissStore:
        """The store saved in `folder`; CatalogError when missing or corrupt.

        mmap_sequences: read the songs' float16 sequences memory-mapped from the file (pages
        come from disk as the rerank reads a candidate) instead of into RAM; None: when they
        pass MMAP_SEQUENCES_BYTES. Songs added later are held in RAM.
        """
        folder = Path(folder)
        try:
            with np.load(folder / "vectors.npz", allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                keys, lengths = list(z["keys"]), z["lengths"]
                if mmap_sequences is None:
                    mmap_sequences = 2 * int(np.sum(lengths)) * int(meta["dim"]) > MMAP_SEQUENCES_BYTES
                flat = None if mmap_sequences else z["vectors"]
                saved = {n: z[n] for n in ("slots", "owner", "frame") if n in z.files}
                has_index = "index" in z.files
            store = cls(dim=int(meta["dim"]), exact_limit=int(meta["exact_limit"]),
                        codec=str(meta.get("codec", "flat")), sq8_limit=meta.get("sq8_limit"))
            if flat is None:  # a plain ndarray view of the mapped member: cheap to slice per song
                flat = _mapped_member(folder / "vectors.npz", "vectors", check=False).view(np.ndarray)
                if flat.dtype != np.float16:
                    raise ValueError(f"sequences are {flat.dtype}, not float16")
            elif flat.dtype != np.float16:  # float16 is kept as saved: sequence() gives a song in
                flat = store._kept(flat)  # float32 when asked (converting every song here cost a
                # cold search 44 MB and ~50 ms at 2048 songs, of which the rerank reads 200)
            bounds = np.concatenate([[0], np.cumsum(lengths)])
            if len(keys) != len(lengths) or bounds[-1] != len(flat) or flat.shape[1:] != (store.dim,):
                raise ValueError("vectors do not match the song list")
        except (OSError, ValueError, KeyError, TypeError, EOFError, IndexError, zipfile.BadZipFile) as e:
            what = " ".join(str(e).split())[:120]
            raise CatalogError(f"fingerprint store missing or corrupt in {folder} "
                               f"({type(e).__name__}: {what})") from None
        store._seqs = {str(k): flat[a:b] for k, a, b in zip(keys, bounds[:-1], bounds[1:])}
        faiss = _faiss()
        if has_index and faiss is not None and meta["kind"] == store.kind:
            try:
                index = faiss.deserialize_index(_mapped_member(folder / "vectors.npz", "index"))
            except (RuntimeError, OSError, ValueError, KeyError, zipfile.BadZipFile):  # rebuilt from the vectors
                return store
            if index.ntotal == len(saved["owner"]):
                store._order = [str(k) for k in saved["slots"]]
                store._owner = saved["owner"].astype(np.int64, copy=False)
                store._frame = saved["frame"].astype(np.int64, copy=False)
                store._slot = {k: int(i) for i, k in enumerate(store._order) if k in store._seqs}
                store._set_index(index, meta["kind"])
        return store


def _mapped_member(npz: Path, name: str, check: bool = True) -> np.ndarray:
    """Array `name` of an uncompressed .npz, memory-mapped instead of read through zipfile (a
    store's HNSW index, ~70 MB at 2048 songs: half the CPU of loading it); its CRC-32 is checked
    as zipfile would, unless check is False (the songs' sequences, too large to read whole at
    each load). ValueError when the member is missing, compressed or corrupt."""
    with zipfile.ZipFile(npz) as z:
        info = z.getinfo(f"{name}.npy")  # KeyError: missing
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"{name} is compressed")
    with open(npz, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)  # the local file header: its name and extra field lengths at 26..29
        start = info.header_offset + 30 + int.from_bytes(header[26:28], "little") \
            + int.from_bytes(header[28:30], "little")
        f.seek(start)
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
            else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
    raw = np.memmap(npz, dtype=np.uint8, mode="r", offset=start, shape=(info.file_size,))
    if (check and zlib.crc32(raw.data) != info.CRC) or fortran or dtype.hasobject:
        raise ValueError(f"{name} is corrupt")
    return np.memmap(npz, dtype=dtype, mode="r", offset=offset, shape=shape)
