"""Where a catalog keeps its song fingerprints: a store URI, parsed and checked before anything is written.

    faiss                      the default: FAISS files in the catalog folder (float16 on disk;
                               the index over 8-bit codes beyond stores.SQ8_LIMIT vectors)
    faiss:f16 | faiss:sq8 | faiss:pq | faiss:hnswpq
                               the same, with the index compressed (float16, 8-bit scalar,
                               product quantisation in inverted lists or in an HNSW graph;
                               stores.CODECS)
    milvus:///abs/file.db      milvus-lite, an embedded Milvus in one file (one process at a time)
    milvus://rel/file.db       the same, relative to the working directory (stored absolute)
    http://host:19530          a Milvus server or cluster (also https://)

A Milvus URI may end in `?collection=NAME`: the prefix of the collections this catalog uses
(default: "humdex_" + a random id chosen when the catalog first uses it, so that many catalogs
share one server), and in `&index=TYPE` (or `?index=TYPE`): the vector index Milvus builds,
one of MILVUS_INDEXES (default HNSW, at FAISS's parameters; milvus_store.milvus_index). The
catalog stores the full text (Catalog.set_vector_store).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from humdex.errors import HumdexError

DEFAULT_STORE = "faiss"
FAISS_CODECS = ("flat", "f16", "sq8", "pq", "hnswpq")  # "flat": float32 vectors in the index (HNSW above
# EXACT_LIMIT, over 8-bit codes above SQ8_LIMIT)
COLLECTION_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")  # Milvus collection names
MILVUS_INDEXES = ("HNSW", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "FLAT")  # ?index=...; HNSW the default
USAGE = ("give faiss, faiss:f16|sq8|pq|hnswpq, milvus:///path/file.db (milvus-lite) or "
         "http://host:19530 (a Milvus server), either optionally ?index=" + "|".join(MILVUS_INDEXES))


class StoreSpecError(HumdexError):
    """A --store value that is not a store URI humdex understands."""


@dataclass(frozen=True)
class StoreSpec:
    """A parsed store URI. kind "faiss" | "milvus"; uri: milvus-lite file path or server URL."""

    kind: str
    codec: str = "flat"  # faiss only
    uri: str = ""  # milvus only
    collection: str = ""  # milvus only: collection name prefix ("" = not chosen yet)
    index: str = ""  # milvus only: a MILVUS_INDEXES name other than the default ("" = HNSW)

    @property
    def text(self) -> str:
        """The URI as the catalog stores it (parse_store(spec.text) == spec)."""
        if self.kind == "faiss":
            return DEFAULT_STORE if self.codec == "flat" else f"faiss:{self.codec}"
        base = self.uri if self.is_server else f"milvus://{self.uri}"
        query = "&".join(f"{name}={value}" for name, value in
                         (("collection", self.collection), ("index", self.index)) if value)
        return f"{base}?{query}" if query else base

    @property
    def is_server(self) -> bool:
        return self.uri.startswith(("http://", "https://"))

    def same_place(self, other: StoreSpec) -> bool:
        """Whether `other` names this store (a missing collection prefix matches any)."""
        return (self.kind, self.codec, self.uri, self.index) == (
            other.kind, other.codec, other.uri, other.index) and (
            not self.collection or not other.collection or self.collection == other.collection)

    def with_collection(self) -> StoreSpec:
        """This spec with a collection prefix (a new random one where none was given)."""
        if self.kind != "milvus" or self.collection:
            return self
        return replace(self, collection=f"humdex_{secrets.token_hex(4)}")


def parse_store(text: str, cwd: Path | None = None) -> StoreSpec:
    """A --store value -> StoreSpec; StoreSpecError (a clear message) when malformed."""
    text = text.strip()
    if text == DEFAULT_STORE or text.startswith("faiss:"):
        codec = text.partition(":")[2] or "flat"
        if codec not in FAISS_CODECS:
            raise StoreSpecError(f"--store {text!r}: unknown FAISS codec {codec!r}; {USAGE}")
        return StoreSpec("faiss", codec=codec)
    parts = urlsplit(text)
    query = parse_qs(parts.query, keep_blank_values=True)
    if set(query) - {"collection", "index"} or parts.fragment:
        raise StoreSpecError(f"--store {text!r}: only ?collection=NAME&index=TYPE may follow the "
                             f"address; {USAGE}")
    collection = query.get("collection", [""])[-1]
    if collection and not COLLECTION_RE.match(collection):
        raise StoreSpecError(f"--store {text!r}: a collection name is letters, digits and _ "
                             "(not starting with a digit), at most 128 characters")
    index = query.get("index", [""])[-1].upper()
    if index and index not in MILVUS_INDEXES:
        raise StoreSpecError(f"--store {text!r}: unknown Milvus index {index!r}; give one of "
                             + ", ".join(MILVUS_INDEXES))
    index = "" if index == MILVUS_INDEXES[0] else index  # the default is not written
    if parts.scheme == "milvus":
        raw = text[len("milvus://"):].split("?", 1)[0]
        if not raw or raw.endswith("/"):
            raise StoreSpecError(f"--store {text!r}: name the milvus-lite file, e.g. "
                                 "milvus:///data/fingerprints.db")
        path = Path(raw)
        if not path.is_absolute():
            path = (cwd or Path.cwd()) / path
        if path.suffix != ".db":  # milvus-lite refuses other names
            raise StoreSpecError(f"--store {text!r}: a milvus-lite file name ends in .db")
        return StoreSpec("milvus", uri=str(path.resolve()), collection=collection, index=index)
    if parts.scheme in ("http", "https"):
        try:
            port = parts.port
        except ValueError:
            port = -1
        if not parts.hostname or port == -1 or parts.path not in ("", "/"):
            raise StoreSpecError(f"--store {text!r}: a Milvus server is http://host:port; {USAGE}")
        return StoreSpec("milvus", uri=f"{parts.scheme}://{parts.netloc}", collection=collection,
                         index=index)
    raise StoreSpecError(f"--store {text!r}: not a store URI; {USAGE}")


def check_store(text: str) -> StoreSpec:
    """Parse a --store value and, for Milvus, connect to it now: a bad URI or an unreachable
    server fails here (HumdexError), before a catalog changes."""
    spec = parse_store(text)
    if spec.kind == "milvus":
        from humdex.learned.milvus_store import client_for

        client_for(spec)
    return spec


def use_store(catalog, spec: StoreSpec) -> str:
    """Make the catalog keep its fingerprints in `spec` (checked: check_store); returns the URI
    it stores. The same store it already uses keeps its collection prefix."""
    current = parse_store(catalog.snapshot().vector_store)
    chosen = current if spec.same_place(current) and (current.collection or not spec.collection) \
        else spec.with_collection()
    catalog.set_vector_store(chosen.text)
    return chosen.text


def require_store(catalog, spec: StoreSpec) -> None:
    """A search's --store must name the store the catalog uses (a search changes no catalog)."""
    current = parse_store(catalog.snapshot().vector_store)
    if not spec.same_place(current):
        raise StoreSpecError(f"this catalog keeps its fingerprints in {current.text}, not "
                             f"{spec.text}; `humdex add --db ... --store {spec.text} FILES` moves them")
