"""A real Milvus standalone server (no mocks, no milvus-lite): `humdex index/add/remove/search
--store http://127.0.0.1:PORT` end to end, across a server crash and restart.

Runs only where the server binary is installed (`pip install 'humdex[milvus-server]'`, the
`milvus` package, ~56 MB): CI does not install it, and this is then skipped, saying so.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from humdex.learned.milvus_local import LocalMilvus, server_installed

pytest.importorskip("pymilvus")
pytestmark = pytest.mark.skipif(
    not server_installed(),
    reason="no Milvus server binary here (pip install 'humdex[milvus-server]'); CI does not install it")


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
