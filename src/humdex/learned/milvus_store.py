"""Song fingerprints in Milvus (milvus-lite file or server), behind the same interface as FaissStore.

Two collections per store, named `<prefix>_<store name>_v` and `_s`:
    _v (vectors)  one row per fingerprint: song (int64 hash of the song key), frame, vector (dim)
    _s (songs)    one row per song: song_key (primary), song, n_frames  - the commit record
A song is added by writing its vectors, then its song row; it is removed by deleting its song
row, then its vectors. So a crash leaves at worst vectors without a song row (or a song row
whose vectors were half deleted): `reconcile()`, run on open, deletes such vectors and songs,
and the catalog's sync then fingerprints again whatever songs the store lacks.
Vectors are stored at float16 precision, as FaissStore keeps them, so both rerank alike.

Consistency. Each write to the vectors collection also writes a *write mark* to the songs
collection, before the song rows it makes count: a row (n_frames -1) whose `song` holds the
server timestamp of that write. Reading the songs (refresh, under Strong consistency) thus
also reads a timestamp at or after the vectors of every song read; searches and sequence
fetches ask Milvus for exactly that point (guarantee_timestamp), not for "now" (Strong, which
waits for the server's next time tick, up to 200 ms, on every request).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from humdex.errors import CatalogError
from humdex.learned.store_spec import MILVUS_INDEXES, StoreSpec
from humdex.learned.stores import (
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    PQ_M,
    PQ_NPROBE,
    Hits,
)

CONNECT_TIMEOUT_S = 10.0  # an unreachable server fails after this, not after pymilvus's minute
QUERY_ROWS = 16_000  # rows per query call (Milvus answers at most 16,384)
INSERT_ROWS = 20_000  # vectors per insert call (~10 MB of float32 at 128-d, under gRPC's limit)
_CLIENTS: dict[str, Any] = {}  # uri -> MilvusClient: milvus-lite lets one process open a file
_CLIENTS_LOCK = threading.Lock()  # once, so every store of that file in this process shares it
WRITE_MARK = "@written@"  # song_key prefix of the write marks (module docstring), never a song's


IVF_NLIST = 1024  # inverted lists per segment (FAISS's 4 sqrt(N) at ~66k vectors; a sealed
# Milvus segment holds up to ~230k 128-d vectors at the default 512 MB x 0.23 seal proportion)


@dataclass(frozen=True)
class MilvusIndex:
    """The vector index Milvus builds: index_type and its build/search params (inner product)."""

    index_type: str = "HNSW"  # FAISS's default beyond EXACT_LIMIT, with its parameters
    build: tuple[tuple[str, int], ...] = (("M", HNSW_M), ("efConstruction", HNSW_EF_CONSTRUCTION))
    search: tuple[tuple[str, int], ...] = (("ef", HNSW_EF_SEARCH),)


def milvus_index(name: str = "") -> MilvusIndex:
    """The index a store URI's `index=` names ("" = HNSW), at FAISS's parameters where FAISS has
    the same index: HNSW as the default store, IVF_PQ as faiss:pq (32 one-byte codes), nprobe 32."""
    name = name or MILVUS_INDEXES[0]
    ivf, probe = (("nlist", IVF_NLIST),), (("nprobe", PQ_NPROBE),)
    presets = {"HNSW": MilvusIndex(),
               "IVF_FLAT": MilvusIndex("IVF_FLAT", ivf, probe),
               "IVF_SQ8": MilvusIndex("IVF_SQ8", ivf, probe),
               "IVF_PQ": MilvusIndex("IVF_PQ", ivf + (("m", PQ_M), ("nbits", 8)), probe),
               "FLAT": MilvusIndex("FLAT", (), ())}
    if name not in presets:
        raise ValueError(f"unknown Milvus index {name!r}: one of {MILVUS_INDEXES}")
    return presets[name]


def song_hash(song_key: str) -> int:
    """A song key's int64 id in Milvus (63 bits of blake2b: filters on ints need no quoting)."""
    return int.from_bytes(hashlib.blake2b(song_key.encode(), digest_size=8).digest(), "big") >> 1


def client_for(spec: StoreSpec) -> Any:
    """The (shared) MilvusClient of spec.uri; CatalogError with the reason when it cannot open."""
    with _CLIENTS_LOCK:
        if spec.uri in _CLIENTS:
            return _CLIENTS[spec.uri]
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise CatalogError("this catalog keeps its fingerprints in Milvus: "
                               "pip install 'humdex[milvus]'") from None
        for name in ("pymilvus", "milvus_lite"):  # they log failures with tracebacks; ours says why
            logging.getLogger(name).setLevel(logging.CRITICAL)
        from humdex.settings import settings

        try:
            client = MilvusClient(uri=spec.uri, token=settings().milvus_token or "",
                                  timeout=CONNECT_TIMEOUT_S)
        except Exception as err:  # noqa: BLE001 - pymilvus raises several kinds for one cause
            reason = " ".join(str(err).split())[:160]
            if spec.is_server:
                raise CatalogError(f"cannot reach the Milvus server at {spec.uri} ({reason})") from None
            raise CatalogError(f"cannot open the milvus-lite file {spec.uri} ({reason}); milvus-lite "
                               "serves one process at a time: is another humdex using it?") from None
        _CLIENTS[spec.uri] = client
        return client


def close_clients() -> None:
    """Close every client this process opened and stop its milvus-lite servers (milvus-lite runs
    in this process, holding a lock on its file until stopped)."""
    with _CLIENTS_LOCK:
        for uri, client in _CLIENTS.items():
            client.close()
            if not uri.startswith(("http://", "https://")):
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(uri)
        _CLIENTS.clear()


def collection_base(spec: StoreSpec, store_name: str) -> str:
    """`<prefix>_<store name>` with Milvus's characters only."""
    if not spec.collection:
        raise ValueError("a Milvus store needs a collection prefix (StoreSpec.with_collection)")
    return f"{spec.collection}_{re.sub(r'[^A-Za-z0-9_]', '_', store_name)}"[:240]


class MilvusStore:
    """A VectorStore over two Milvus collections (module docstring); songs are cached in memory."""

    def __init__(self, spec: StoreSpec, store_name: str, dim: int = 128,
                 index: MilvusIndex | None = None) -> None:
        self.spec, self.dim = spec, dim
        self.index = index or milvus_index(spec.index)
        self._client = client_for(spec)
        base = collection_base(spec, store_name)
        self.vectors_name, self.songs_name = f"{base}_v", f"{base}_s"
        self._songs: dict[str, tuple[int, int]] = {}  # song key -> (hash, n_frames)
        self._written = 0  # server timestamp of the newest vectors write known here (0: none)
        self._marked = 0  # the newest write mark known to be in Milvus
        self._call(self._create)
        built = self._call(self.built_index_type)
        if built and built != self.index.index_type:  # an existing collection keeps its index
            raise CatalogError(f"the Milvus collection {self.vectors_name} at {spec.uri} is "
                               f"indexed by {built}, not {self.index.index_type}: name its index "
                               "(&index=...) or another collection prefix")
        self.refresh()

    def built_index_type(self) -> str:
        """The index type of the vectors collection as Milvus reports it ("" where it does not)."""
        names = self._client.list_indexes(self.vectors_name, field_name="vector")
        if not names:
            return ""
        info = self._client.describe_index(self.vectors_name, names[0])
        return str(info.get("index_type", "")).upper()

    def wait_indexed(self, timeout_s: float = 600.0) -> float:
        """Seal the vectors written so far (flush) and wait until Milvus has indexed all of them;
        returns the seconds it took. Searches are right without it (Milvus scans unsealed rows
        exhaustively until it seals and indexes them on its own): benchmarks call it to measure
        the index itself."""
        import time

        t0 = time.perf_counter()
        self._call(self._client.flush, self.vectors_name)
        names = self._call(self._client.list_indexes, self.vectors_name, field_name="vector")
        while names and time.perf_counter() - t0 < timeout_s:
            info = self._call(self._client.describe_index, self.vectors_name, names[0])
            pending = int(info.get("pending_index_rows", 0) or 0)
            if pending == 0 and int(info.get("indexed_rows", 0) or 0) >= int(info.get("total_rows", 0) or 0):
                break
            time.sleep(0.5)
        return time.perf_counter() - t0

    def _call(self, func, *args, **kwargs):
        """func(...), with Milvus errors turned into CatalogError (no traceback for users)."""
        try:
            return func(*args, **kwargs)
        except CatalogError:
            raise
        except Exception as err:
            if type(err).__module__.split(".")[0] not in ("pymilvus", "grpc", "milvus_lite"):
                raise
            reason = " ".join(str(err).split())[:160]
            raise CatalogError(f"Milvus at {self.spec.uri}: {reason}") from None

    def _create(self) -> None:
        from pymilvus import DataType, MilvusClient

        c = self._client
        if not c.has_collection(self.vectors_name):
            schema = MilvusClient.create_schema(auto_id=True)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("song", DataType.INT64)
            schema.add_field("frame", DataType.INT32)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
            params = c.prepare_index_params()
            params.add_index("vector", index_type=self.index.index_type, metric_type="IP",
                             params=dict(self.index.build))
            c.create_collection(self.vectors_name, schema=schema, index_params=params,
                                consistency_level="Strong")
        if not c.has_collection(self.songs_name):
            schema = MilvusClient.create_schema(auto_id=False)
            schema.add_field("song_key", DataType.VARCHAR, is_primary=True, max_length=2048)
            schema.add_field("song", DataType.INT64)
            schema.add_field("n_frames", DataType.INT32)
            schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field
            params = c.prepare_index_params()
            params.add_index("unused", index_type="FLAT", metric_type="L2")
            c.create_collection(self.songs_name, schema=schema, index_params=params,
                                consistency_level="Strong")
        for name in (self.vectors_name, self.songs_name):  # a reopened collection is "released"
            c.load_collection(name)

    def _rows(self, collection: str, fields: list[str], filter: str = "") -> Iterable[dict]:
        it = self._client.query_iterator(collection, batch_size=QUERY_ROWS, filter=filter,
                                         output_fields=fields)
        try:
            while batch := it.next():
                yield from batch
        finally:
            it.close()

    def refresh(self) -> None:
        """Re-read the song list and the write marks from Milvus (another process may have
        changed them)."""
        rows = self._call(lambda: list(self._rows(self.songs_name, ["song_key", "song", "n_frames"])))
        self._songs = {r["song_key"]: (int(r["song"]), int(r["n_frames"])) for r in rows
                       if int(r["n_frames"]) >= 0}
        # the marks once more, after the songs (the listing is paged): a mark at or after the
        # vectors of every song just read
        marks = self._call(self._client.query, self.songs_name, filter="n_frames < 0",
                           output_fields=["song"])
        self._marked = max([0, *(int(r["song"]) for r in marks)])
        self._written = max(self._written, self._marked)

    def _read_point(self) -> dict[str, Any]:
        """The consistency of searches and sequence fetches (keyword arguments MilvusClient
        passes on to the request; pymilvus keeps a "Customized" level's guarantee_timestamp).
        They must see the vectors of every song in self._songs, and none that a write before
        the last refresh deleted: every such write is at or before self._written (the write
        marks read with the songs, or this store's own writes), so Milvus is asked for that
        timestamp. It waits only while that write is newer than its last time tick; Strong
        waits for the next tick on every request (~200 ms, BENCHMARKS "Milvus latency").
        Bounded would miss the writes of the last 5 s, Session another process's. A store
        without marks (written by an older humdex, or milvus-lite, whose writes carry no
        timestamp) keeps the collections' Strong."""
        if not self._written:
            return {}
        return {"consistency_level": "Customized", "guarantee_timestamp": self._written}

    def _write_vectors(self, method: str, arg: Any) -> None:
        """insert_rows(rows) or delete(filter) on the vectors collection through pymilvus's
        connection, whose result carries the write's server timestamp (MilvusClient's drops it)."""
        result = self._call(getattr(self._client._get_connection(), method), self.vectors_name, arg)
        self._written = max(self._written, int(getattr(result, "timestamp", 0) or 0))

    def _mark_written(self) -> None:
        """Record self._written for every process (module docstring): a mark row, then marks
        older than it deleted (a concurrent writer's newer mark stays, so the newest one wins)."""
        if self._written <= self._marked:
            return
        t = self._written
        self._call(self._client.upsert, self.songs_name,
                   [{"song_key": f"{WRITE_MARK}{t}", "song": t, "n_frames": -1, "unused": [0.0, 0.0]}])
        self._marked = t
        self._call(self._client.delete, self.songs_name, filter=f"n_frames < 0 and song < {t}")

    def __len__(self) -> int:
        return len(self._songs)

    @property
    def n_vectors(self) -> int:
        return sum(n for _, n in self._songs.values())

    def keys(self) -> list[str]:
        return list(self._songs)

    def count_vectors(self) -> int:
        """Vector rows in Milvus (orphans included), counted by Milvus itself."""
        out = self._call(self._client.query, self.vectors_name, filter="", output_fields=["count(*)"])
        return int(out[0]["count(*)"])

    def reconcile(self) -> list[str]:
        """Delete what a crash left half written: vectors of songs without a song row, and songs
        whose vectors are not all there (the caller fingerprints those again). Returns those keys."""
        self.refresh()
        if self.count_vectors() == self.n_vectors:
            return []
        hashes = self._call(lambda: np.array([r["song"] for r in self._rows(self.vectors_name, ["song"])],
                                             np.int64))
        present, counts = np.unique(hashes, return_counts=True)
        have = dict(zip(present.tolist(), counts.tolist()))
        broken = [k for k, (h, n) in self._songs.items() if have.get(h, 0) != n]
        self._delete_song_rows(broken)
        known = {h for h, _ in self._songs.values()}
        self._delete_vectors([h for h in have if h not in known])
        self._mark_written()
        return broken

    def _delete_song_rows(self, keys: Sequence[str]) -> None:
        if keys:
            self._call(self._client.delete, self.songs_name, ids=list(keys))
        hashes = [self._songs.pop(k)[0] for k in keys if k in self._songs]
        self._delete_vectors(hashes)

    def _delete_vectors(self, hashes: Sequence[int]) -> None:
        for i in range(0, len(hashes), 1000):
            chunk = ",".join(str(int(h)) for h in hashes[i:i + 1000])
            self._write_vectors("delete", f"song in [{chunk}]")

    def add(self, song_keys: Sequence[str], sequences: Sequence[np.ndarray]) -> None:
        """Add (or replace) songs, one (n_i, dim) fingerprint sequence each: vectors first, then
        the song rows that make them count."""
        if len(song_keys) != len(sequences):
            raise ValueError("song_keys and sequences differ in length")
        keys = [str(k) for k in song_keys]
        if any(k.startswith(WRITE_MARK) for k in keys):
            raise ValueError(f"song keys starting with {WRITE_MARK!r} are reserved")
        present = {k for k in keys if k in self._songs}
        self._delete_song_rows(list(present))  # and their vectors
        hashes = [song_hash(k) for k in keys]
        # the other keys' leftovers of an add that crashed before its song row
        self._delete_vectors(sorted({h for k, h in zip(keys, hashes) if k not in present}))
        seqs = [np.asarray(s, np.float16).astype(np.float32).reshape(-1, self.dim) for s in sequences]
        rows = [{"song": h, "frame": i, "vector": v} for h, seq in zip(hashes, seqs)
                for i, v in enumerate(seq)]
        for i in range(0, len(rows), INSERT_ROWS):
            self._write_vectors("insert_rows", rows[i:i + INSERT_ROWS])
        self._mark_written()  # before the song rows: whoever reads them reads the mark too
        song_rows = [{"song_key": k, "song": h, "n_frames": len(s), "unused": [0.0, 0.0]}
                     for k, h, s in zip(keys, hashes, seqs)]
        self._call(self._client.upsert, self.songs_name, song_rows)
        self._songs.update({k: (h, len(s)) for k, h, s in zip(keys, hashes, seqs)})

    def remove(self, song_keys: Sequence[str]) -> int:
        """Remove songs (song rows first, then their vectors); returns how many were present."""
        keys = [str(k) for k in song_keys if str(k) in self._songs]
        self._delete_song_rows(keys)
        if keys:
            self._mark_written()
        return len(keys)

    def search(self, vectors: np.ndarray, k: int) -> Hits:
        """The k nearest stored vectors of each query vector (Q, dim), by inner product."""
        q = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        k = max(1, min(k, self.n_vectors or 1))
        scores = np.full((len(q), k), -np.inf, np.float32)
        keys = np.full((len(q), k), "", dtype=object)
        frames = np.full((len(q), k), -1, np.int64)
        if not len(q) or not self._songs:
            return Hits(scores, keys, frames)
        by_hash = {h: key for key, (h, _) in self._songs.items()}
        answer = self._call(self._client.search, self.vectors_name, data=list(q), limit=k,
                            output_fields=["song", "frame"], **self._read_point(),
                            search_params={"metric_type": "IP", "params": dict(self.index.search)})
        for i, hits in enumerate(answer):
            for j, hit in enumerate(hits):
                key = by_hash.get(int(hit["entity"]["song"]))
                if key is not None:  # (vectors of a song being added or removed right now)
                    scores[i, j], keys[i, j] = hit["distance"], key
                    frames[i, j] = hit["entity"]["frame"]
        return Hits(scores, keys, frames)

    def sequences(self, song_keys: Sequence[str]) -> dict[str, np.ndarray]:
        """(n, dim) float32 fingerprints of each song, in time order, fetched in few calls."""
        wanted = [k for k in song_keys if k in self._songs]
        out: dict[str, np.ndarray] = {}
        chunk: list[str] = []
        for i, key in enumerate(wanted):
            chunk.append(key)
            rows = sum(self._songs[c][1] for c in chunk)
            nxt = self._songs[wanted[i + 1]][1] if i + 1 < len(wanted) else QUERY_ROWS
            if rows + nxt > QUERY_ROWS or i + 1 == len(wanted):
                out.update(self._fetch(chunk, rows))
                chunk = []
        return out

    def _fetch(self, keys: list[str], n_rows: int) -> dict[str, np.ndarray]:
        by_hash = {self._songs[k][0]: k for k in keys}
        ids = ",".join(map(str, by_hash))
        rows = self._call(self._client.query, self.vectors_name, filter=f"song in [{ids}]",
                          output_fields=["song", "frame", "vector"], limit=max(1, n_rows),
                          **self._read_point())
        song, frame, vectors = _columns(rows, self.dim)
        out = {}
        for h, key in by_hash.items():
            at = np.flatnonzero(song == h)
            out[key] = vectors[at[np.argsort(frame[at], kind="stable")]]
        return out

    def window_counts(self, song_keys: Sequence[str]) -> np.ndarray:
        """(len(song_keys),) int64: each song's number of fingerprints (0 for a song not here)."""
        return np.array([self._songs.get(k, (0, 0))[1] for k in song_keys], np.int64)

    def sequence(self, song_key: str) -> np.ndarray:
        """(n, dim) float32 fingerprints of one song, in time order."""
        if song_key not in self._songs:
            raise KeyError(song_key)
        return self.sequences([song_key])[song_key]

    def drop(self) -> None:
        """Delete both collections (the store's every song)."""
        for name in (self.vectors_name, self.songs_name):
            self._call(self._client.drop_collection, name)
        self._songs = {}


def _columns(rows: Any, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(song (n,) int64, frame (n,) int64, vector (n, dim) float32) of a query's rows. pymilvus 3
    decodes vectors row by row (~40 us a row: 0.4 s of a rerank's ~10,000 rows, BENCHMARKS
    "Milvus latency"); its lazy result list keeps them as one protobuf column, read whole here
    where it is there (other pymilvus versions: row by row)."""
    column = [f for f in getattr(rows, "_lazy_field_data", ()) if f.field_name == "vector"]
    if len(column) == 1 and not len(column[0].valid_data):
        flat = np.asarray(column[0].vectors.float_vector.data, np.float32)
        heads = list(list.__iter__(rows))  # the rows' scalar fields, decoded already
        if len(flat) == len(heads) * dim:
            return (np.array([r["song"] for r in heads], np.int64),
                    np.array([r["frame"] for r in heads], np.int64), flat.reshape(-1, dim))
    heads = list(rows)
    return (np.array([r["song"] for r in heads], np.int64), np.array([r["frame"] for r in heads], np.int64),
            np.array([r["vector"] for r in heads], np.float32).reshape(-1, dim))
