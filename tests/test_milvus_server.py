"""A real Milvus standalone server (no mocks, no milvus-lite): `humdex index/add/remove/search
--store http://127.0.0.1:PORT` end to end, across a server crash and restart.

Runs only where the server binary is installed (`pip install 'humdex[milvus-server]'`, the
`milvus` package, ~56 MB): `make test` installs it; elsewhere this is skipped, saying so.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from humdex.learned.milvus_local import LocalMilvus, server_installed

pytest.importorskip("pymilvus")
pytestmark = pytest.mark.skipif(
    not server_installed(),
    reason="no Milvus server binary here (pip install 'humdex[milvus-server]')")


@pytest.fixture
def server(tmp_path: Path):
    from humdex.learned.search import close_stores

    local = LocalMilvus(tmp_path / "milvus").start()
    try:
        yield local
    finally:
        close_stores()
        local.kill()
        shutil.rmtree(local.folder, ignore_errors=True)  # ~250 MB of binaries, ~270 MB of data


def _top(capsys, main, query: Path, db: Path) -> str:
    capsys.readouterr()
    assert main(["search", str(query), "--db", str(db), "--method", "learned", "--json"]) == 0
    return json.loads(capsys.readouterr().out)["results"][0]["song_id"]


def test_index_search_add_remove_and_a_server_crash_with_a_milvus_server(
        tmp_path, song_dir, melodies, capsys, server) -> None:
    from humdex.cli import main
    from humdex.learned.milvus_store import MilvusStore
    from humdex.learned.search import close_stores
    from humdex.learned.store_spec import parse_store
    from test_learned import write_f0_csv

    db = tmp_path / "db"
    assert main(["index", str(song_dir / "song08.mid"), str(song_dir / "song09.mid"), "--db", str(db),
                 "--quiet", "--store", f"{server.uri}?index=IVF_FLAT"]) == 0
    uri = json.loads((db / "catalog.json").read_text())["vector_store"]
    spec = parse_store(uri)
    assert spec.uri == server.uri and spec.index == "IVF_FLAT" and spec.collection.startswith("humdex_")
    query = write_f0_csv(tmp_path / "q.csv", melodies[9], 0, 16)
    assert _top(capsys, main, query, db) == "song09"
    assert main(["add", str(song_dir), "--db", str(db), "--quiet"]) == 0  # the 10 others, same store
    assert main(["remove", "song09", "--db", str(db)]) == 0
    assert _top(capsys, main, query, db) != "song09"
    (folder,) = (db / "learned").iterdir()
    store = MilvusStore(spec, folder.name)
    assert len(store) == 11 and store.count_vectors() == store.n_vectors
    assert store.built_index_type() == "IVF_FLAT" and not (folder / "vectors.npz").exists()
    (lost,) = [k for k in store.keys() if k.startswith("song04@")]  # noqa: SIM118 - a list
    store.remove([lost])  # the store loses a song the catalog has (as a crash might)...
    assert main(["add", str(song_dir / "song09.mid"), "--db", str(db), "--quiet"]) == 0

    close_stores()  # ...then the server crashes (SIGKILL) and comes back on its data
    server.kill()
    server.start()
    assert _top(capsys, main, query, db) == "song09"  # the catalog reopened the store, reconciled
    query4 = write_f0_csv(tmp_path / "q4.csv", melodies[4], 4, 16, transpose=2.0)
    assert _top(capsys, main, query4, db) == "song04"  # fingerprinted again on open
    again = MilvusStore(spec, folder.name)
    assert len(again) == 12 and again.count_vectors() == again.n_vectors
    capsys.readouterr()
    assert main(["search", str(query), "--db", str(db), "--store", server.uri]) == 2  # not its index
    assert "keeps its fingerprints in" in capsys.readouterr().err


_WRITER = """
import sys
import numpy as np
from humdex.learned.milvus_store import MilvusStore
from humdex.learned.store_spec import parse_store

store = MilvusStore(parse_store(sys.argv[1]), "c", dim=16)
for line in sys.stdin:
    verb, seed = line.split()
    if verb == "add":
        x = np.random.default_rng(int(seed)).standard_normal((12, 16)).astype(np.float32)
        store.add([f"new{seed}@1"], [x / np.linalg.norm(x, axis=1, keepdims=True)])
    else:
        store.remove([f"new{seed}@1"])
    print("done", store._written, flush=True)
"""


def test_a_search_right_after_another_process_writes_sees_its_adds_and_not_its_removals(server) -> None:
    """Searches ask Milvus for the newest write mark (not Strong's "now"): a song another
    process added is found at once, a removed one is never returned, nor fills a k-NN slot."""
    import subprocess
    import sys
    import time

    from humdex.learned.milvus_store import MilvusStore
    from humdex.learned.store_spec import parse_store

    spec = parse_store(server.uri).with_collection()
    rng = np.random.default_rng(0)
    base = rng.standard_normal((40, 16)).astype(np.float32)
    reader = MilvusStore(spec, "c", dim=16)
    reader.add(["old@1"], [base / np.linalg.norm(base, axis=1, keepdims=True)])
    assert reader._read_point()["guarantee_timestamp"] > 0  # the server stamps its writes
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, spec.text], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        for seed in range(1, 4):
            x = np.random.default_rng(seed).standard_normal((12, 16)).astype(np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            writer.stdin.write(f"add {seed}\n")
            writer.stdin.flush()
            word, written = writer.stdout.readline().split()
            reader.refresh()  # what the catalog's sync does when its songs changed
            assert word == "done" and reader._read_point()["guarantee_timestamp"] >= int(written)
            hits = reader.search(x, 1)
            assert list(hits.song_keys[:, 0]) == [f"new{seed}@1"] * 12
            assert list(hits.frames[:, 0]) == list(range(12))
            np.testing.assert_allclose(reader.sequence(f"new{seed}@1"), x, atol=1e-3)
            writer.stdin.write(f"remove {seed}\n")
            writer.stdin.flush()
            word, written = writer.stdout.readline().split()
            reader.refresh()
            assert word == "done" and reader._read_point()["guarantee_timestamp"] >= int(written)
            hits = reader.search(x, 5)
            assert f"new{seed}@1" not in set(hits.song_keys.ravel())
            assert (hits.frames >= 0).all()  # every slot a live song's: no deleted vector seen
    finally:
        writer.stdin.close()
        writer.wait(timeout=60)
    assert writer.returncode == 0
    # Milvus holds a search until it has every write up to the read point (a point 1.5 s ahead
    # here, in its hybrid timestamps: Unix ms << 18); Strong or Bounded would answer at once
    reader._written = (int(time.time() * 1000) + 1500) << 18
    t0 = time.perf_counter()
    reader.search(base[:1], 1)
    assert time.perf_counter() - t0 > 1.0
    again = MilvusStore(spec, "c", dim=16)  # write marks are not songs, and reconcile keeps them
    assert again.keys() == ["old@1"] and again.n_vectors == 40 == again.count_vectors()
    assert again.reconcile() == [] and again._written == int(written)  # the newest mark
    again._client.delete(again.songs_name, filter="n_frames < 0")  # a store written by an older humdex
    assert MilvusStore(spec, "c", dim=16)._read_point() == {}  # searches under Strong
