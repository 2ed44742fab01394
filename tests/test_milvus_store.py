"""Fingerprints in Milvus (a real milvus-lite file, no mocks): the store, a catalog that uses it, the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from humdex.learned.store_spec import StoreSpecError, parse_store

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")


@pytest.fixture
def spec(tmp_path: Path):
    """A milvus-lite file of its own; every client this test opened is closed afterwards."""
    from humdex.learned.search import close_stores

    yield parse_store(f"milvus://{tmp_path}/fp.db").with_collection()
    close_stores()


def _songs(n: int, dim: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):
        x = rng.standard_normal((int(rng.integers(5, 30)), dim)).astype(np.float32)
        out[f"s{i}@1:2"] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def test_round_trip_search_and_reopen(spec) -> None:
    from humdex.learned.milvus_store import MilvusStore
    from humdex.learned.stores import FaissStore

    songs = _songs(20)
    store = MilvusStore(spec, "m", dim=16)
    store.add(list(songs), list(songs.values()))
    faiss = FaissStore(dim=16)
    faiss.add(list(songs), list(songs.values()))
    again = MilvusStore(spec, "m", dim=16)  # a second handle reads what the first wrote
    assert sorted(again.keys()) == sorted(songs) and again.n_vectors == faiss.n_vectors
    for key in songs:  # kept at float16 precision, in time order, like FaissStore
        assert np.array_equal(again.sequence(key), faiss.sequence(key))
    q = np.concatenate([songs["s3@1:2"][2:4], songs["s7@1:2"][:1]])
    hits, exact = again.search(q, 5), faiss.search(q, 5)
    assert list(hits.song_keys[:, 0]) == ["s3@1:2", "s3@1:2", "s7@1:2"]
    assert list(hits.frames[:, 0]) == [2, 3, 0]
    np.testing.assert_allclose(hits.scores, exact.scores, atol=1e-5)
    assert again.count_vectors() == faiss.n_vectors
    asked = ["s7@1:2", "nope", "s3@1:2"]
    assert list(again.window_counts(asked)) == list(faiss.window_counts(asked)) == [len(songs["s7@1:2"]), 0,
                                                                                    len(songs["s3@1:2"])]


def test_add_replace_and_remove(spec) -> None:
    from humdex.learned.milvus_store import MilvusStore

    songs = _songs(10)
    store = MilvusStore(spec, "m", dim=16)
    store.add(list(songs), list(songs.values()))
    assert store.remove(["s1@1:2", "s2@1:2", "nope"]) == 2
    new = _songs(1, seed=9)["s0@1:2"]
    store.add(["s4@1:2"], [new])  # replaces s4's sequence
    assert store.remove(["s1@1:2"]) == 0
    all_q = np.concatenate(list(songs.values()))
    found = set(store.search(all_q, 3).song_keys.ravel())
    assert "s1@1:2" not in found and "s2@1:2" not in found and "s0@1:2" in found
    assert np.allclose(store.sequence("s4@1:2"), new, atol=1e-3)
    expected = sum(len(v) for k, v in songs.items() if k not in ("s1@1:2", "s2@1:2", "s4@1:2"))
    assert store.count_vectors() == expected + len(new) == store.n_vectors
    assert sorted(MilvusStore(spec, "m", dim=16).keys()) == sorted(set(songs) - {"s1@1:2", "s2@1:2"})


def test_a_crash_between_vectors_and_song_row_is_reconciled(spec, monkeypatch) -> None:
    from humdex.learned.milvus_store import MilvusStore

    songs = _songs(6)
    store = MilvusStore(spec, "m", dim=16)
    store.add(list(songs)[:3], list(songs.values())[:3])

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies after the vectors, before the song rows

    monkeypatch.setattr(store._client, "upsert", killed)
    with pytest.raises(KeyboardInterrupt):
        store.add(list(songs)[3:], list(songs.values())[3:])
    monkeypatch.undo()
    reopened = MilvusStore(spec, "m", dim=16)
    orphans = sum(len(v) for v in list(songs.values())[3:])
    assert reopened.count_vectors() == reopened.n_vectors + orphans  # the crash's leftovers
    assert reopened.reconcile() == []  # no song was half there: only orphan vectors to delete
    assert reopened.count_vectors() == reopened.n_vectors and len(reopened) == 3
    # a song row whose vectors were half deleted (a crash while removing) is dropped
    h = reopened._songs["s0@1:2"][0]
    reopened._client.delete(reopened.vectors_name, filter=f"song in [{h}] and frame < 2")
    assert MilvusStore(spec, "m", dim=16).reconcile() == ["s0@1:2"]
    assert sorted(MilvusStore(spec, "m", dim=16).keys()) == ["s1@1:2", "s2@1:2"]


def test_a_catalog_in_milvus_reconciles_with_the_store_on_open(tmp_path, song_dir, melodies, spec) -> None:
    """Songs in the store but not in the catalog are removed; songs in the catalog but missing
    from the store are fingerprinted again; searches then answer as with FAISS."""
    from humdex.catalog.catalog import Catalog
    from humdex.learned import search as learned
    from humdex.learned.milvus_store import MilvusStore
    from humdex.learned.store_spec import use_store
    from humdex.search import load_query, search
    from test_learned import write_f0_csv

    catalog = Catalog.open(tmp_path / "db", create=True)
    use_store(catalog, spec)
    catalog.add_files([song_dir], progress=False)
    learned.sync_catalog(catalog.db_dir, catalog.snapshot())
    (folder,) = (tmp_path / "db" / learned.LEARNED_DIR).iterdir()
    assert not (folder / "vectors.npz").exists()  # nothing in the folder but its lock
    raw = MilvusStore(spec, folder.name)
    assert len(raw) == 12
    snap = catalog.snapshot()
    gone = learned.song_key(snap.songs[0].song_id, snap.songs[0].stamp)
    raw.remove([gone])  # lost from the store (e.g. a crash)
    raw.add(["ghost@1"], [raw.sequence(learned.song_key(snap.songs[1].song_id, snap.songs[1].stamp))])
    learned.close_stores()  # a new process: the store is opened and reconciled again
    query = load_query(write_f0_csv(tmp_path / "q.csv", melodies[4], 4, 16, transpose=2.0))
    in_milvus = search(query, Catalog.open(tmp_path / "db"), top=10, method="learned")
    fresh = MilvusStore(spec, folder.name)
    assert sorted(fresh.keys()) == sorted(learned.song_key(s.song_id, s.stamp) for s in snap.songs)
    assert fresh.count_vectors() == fresh.n_vectors

    faiss_db = Catalog.open(tmp_path / "faiss_db", create=True)
    faiss_db.add_files([song_dir], progress=False)
    in_faiss = search(query, faiss_db, top=10, method="learned")
    assert in_milvus.hits[0].song_id == "song04"
    assert [h.song_id for h in in_milvus.hits] == [h.song_id for h in in_faiss.hits]
    assert [round(h.score, 4) for h in in_milvus.hits] == [round(h.score, 4) for h in in_faiss.hits]


def test_cli_index_and_search_with_a_milvus_store(tmp_path, song_dir, melodies, capsys, spec) -> None:
    from humdex.cli import main
    from humdex.learned.milvus_store import MilvusStore
    from humdex.learned.search import close_stores
    from test_learned import write_f0_csv

    db, lite = tmp_path / "db", tmp_path / "cli.db"
    assert main(["index", str(song_dir / "song00.mid"), str(song_dir / "song01.mid"), "--db", str(db),
                 "--quiet", "--store", f"milvus://{lite}"]) == 0
    uri = json.loads((db / "catalog.json").read_text())["vector_store"]
    assert uri.startswith(f"milvus://{lite}?collection=humdex_")
    assert main(["add", str(song_dir), "--db", str(db), "--quiet"]) == 0  # no flag: still Milvus
    assert json.loads((db / "catalog.json").read_text())["vector_store"] == uri
    capsys.readouterr()
    q = write_f0_csv(tmp_path / "q.csv", melodies[9], 0, 16)
    assert main(["search", str(q), "--db", str(db), "--method", "learned", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["song_id"] == "song09"
    assert main(["search", str(q), "--db", str(db), "--json", "--store", f"milvus://{lite}"]) == 0
    capsys.readouterr()
    assert main(["search", str(q), "--db", str(db), "--store", "faiss"]) == 2
    assert "keeps its fingerprints in milvus://" in capsys.readouterr().err
    assert main(["remove", "song03", "--db", str(db)]) == 0
    assert main(["search", str(q), "--db", str(db), "--method", "learned", "--json"]) == 0
    (folder,) = (db / "learned").iterdir()
    assert len(MilvusStore(parse_store(uri), folder.name)) == 11
    assert not (db / "learned" / folder / "vectors.npz").exists()
    close_stores()  # frees the milvus-lite file: another process opens it and loads the collections
    import humdex

    env = {**os.environ, "PYTHONPATH": str(Path(humdex.__file__).parents[1])}
    done = subprocess.run([sys.executable, "-m", "humdex", "search", str(q), "--db", str(db),
                           "--method", "learned", "--json"], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["results"][0]["song_id"] == "song09"


@pytest.mark.parametrize("uri, message", [
    ("milvus://", "name the milvus-lite file"),
    ("milvus:///tmp/x.sqlite", "ends in .db"),
    ("http://", "a Milvus server is http://host:port"),
    ("http://host:99999", "a Milvus server is http://host:port"),
    ("redis://x", "not a store URI"),
    ("faiss:zip", "unknown FAISS codec"),
    ("milvus:///tmp/x.db?collection=9bad", "collection name"),
    ("milvus:///tmp/x.db?shards=2", "only ?collection=NAME&index=TYPE"),
    ("http://h:19530?index=DISKANN", "unknown Milvus index 'DISKANN'"),
])
def test_a_malformed_store_uri_is_a_clear_error_and_writes_no_catalog(tmp_path, song_dir, capsys,
                                                                        uri, message) -> None:
    from humdex.cli import main

    with pytest.raises(StoreSpecError, match=re.escape(message)):
        parse_store(uri)
    assert main(["index", str(song_dir), "--db", str(tmp_path / "db"), "--quiet", "--store", uri]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "db").exists()


def test_an_unreachable_milvus_server_is_a_clear_error_and_writes_no_catalog(tmp_path, song_dir,
                                                                           capsys) -> None:
    from humdex.cli import main
    from humdex.learned.milvus_store import close_clients

    try:
        code = main(["index", str(song_dir), "--db", str(tmp_path / "db"), "--quiet",
                     "--store", "http://127.0.0.1:9"])  # the discard port: nothing listens
    finally:
        close_clients()
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach the Milvus server at http://127.0.0.1:9" in err
    assert "Traceback" not in err and not (tmp_path / "db").exists()


def test_store_uris_round_trip(tmp_path) -> None:
    for text in ("faiss", "faiss:pq", "faiss:sq8", f"milvus://{tmp_path}/a.db",
                 f"milvus://{tmp_path}/a.db?collection=x_1", "http://h:19530?collection=c"):
        assert parse_store(parse_store(text).text) == parse_store(text)
    rel = parse_store("milvus://rel/f.db", cwd=tmp_path)
    assert rel.index == "" and parse_store("http://h:1?index=HNSW") == parse_store("http://h:1")
    assert rel.uri == str(tmp_path.resolve() / "rel" / "f.db")
    assert parse_store("milvus:///a/f.db").same_place(parse_store("milvus:///a/f.db?collection=z"))
    assert not parse_store("faiss").same_place(parse_store("faiss:pq"))


def test_a_store_uri_names_the_milvus_index_and_a_catalog_keeps_it(tmp_path) -> None:
    from humdex.learned.milvus_store import MilvusIndex, milvus_index

    spec = parse_store("http://h:19530?collection=c_1&index=ivf_pq")
    assert (spec.uri, spec.collection, spec.index) == ("http://h:19530", "c_1", "IVF_PQ")
    assert spec.text == "http://h:19530?collection=c_1&index=IVF_PQ"
    alone = parse_store(f"milvus://{tmp_path}/a.db?index=IVF_SQ8")
    assert alone.text == f"milvus://{tmp_path}/a.db?index=IVF_SQ8"
    assert parse_store(alone.with_collection().text).index == "IVF_SQ8"
    # another index is another store (as faiss:pq is not faiss): its fingerprints move
    assert not parse_store("http://h:19530").same_place(parse_store("http://h:19530?index=FLAT"))
    assert parse_store("http://h:19530?index=HNSW").same_place(parse_store("http://h:19530"))
    assert milvus_index("") == MilvusIndex() and dict(milvus_index("HNSW").search) == {"ef": 128}
    pq = milvus_index("IVF_PQ")
    assert dict(pq.build) == {"nlist": 1024, "m": 32, "nbits": 8} and dict(pq.search) == {"nprobe": 32}
    assert milvus_index("FLAT").build == ()


def test_a_milvus_collection_keeps_the_index_it_was_built_with(spec) -> None:
    from humdex.errors import CatalogError
    from humdex.learned.milvus_store import MilvusStore

    store = MilvusStore(parse_store(spec.text + "&index=IVF_FLAT"), "m", dim=16)
    songs = _songs(4)
    store.add(list(songs), list(songs.values()))
    assert store.built_index_type() == "IVF_FLAT" and store.wait_indexed(60) < 60
    assert store.search(songs["s2@1:2"][:1], 1).song_keys[0, 0] == "s2@1:2"
    with pytest.raises(CatalogError, match="indexed by IVF_FLAT, not HNSW"):
        MilvusStore(spec, "m", dim=16)


def test_a_milvus_lite_file_open_in_another_process_is_a_clear_error(tmp_path, song_dir, spec) -> None:
    import humdex
    from humdex.learned.milvus_store import client_for

    client_for(spec)  # this process holds the file
    env = {**os.environ, "PYTHONPATH": str(Path(humdex.__file__).parents[1])}
    done = subprocess.run([sys.executable, "-m", "humdex", "index", str(song_dir), "--db",
                           str(tmp_path / "db"), "--quiet", "--store", f"milvus://{spec.uri}"],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 2
    assert "milvus-lite serves one process at a time" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "db").exists()


def test_query_rows_read_by_column_equal_rows_read_one_by_one(spec) -> None:
    from humdex.learned.milvus_store import MilvusStore, _columns

    songs = _songs(5)
    store = MilvusStore(spec, "m", dim=16)
    store.add(list(songs), list(songs.values()))
    rows = store._client.query(store.vectors_name, filter="frame >= 0", output_fields=["song", "frame", "vector"],
                               limit=1000)
    fast = _columns(rows, 16)  # pymilvus's column, read whole
    slow = _columns([dict(r) for r in rows], 16)  # plain dicts: row by row
    assert len(fast[0]) == sum(map(len, songs.values()))
    for a, b in zip(fast, slow):
        assert np.array_equal(a, b)
