"""Catalog integrity: kill -9 and racing writers lose nothing, corrupt files are named and
repaired, one bad file spoils nothing, index --db touches only its own files.
(Many more kill points and races: benchmarks/catalog_crash.py, BENCHMARKS.md.)"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from crash_driver import kill_round, make_songs, writers_round
from humdex.catalog.catalog import Catalog
from humdex.catalog.integrity import check_catalog, repair_catalog
from humdex.cli import main
from humdex.errors import CatalogError
from humdex.files import atomic_write_bytes, stray_temp_files


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_songs(tmp_path_factory.mktemp("integrity-songs"), 12, seed=3)


def _indexed(tmp_path: Path, songs: list[Path], n: int = 4) -> Path:
    db = tmp_path / "db"
    Catalog.open(db, create=True).add_files(songs[:n], progress=False)
    return db


def test_kill_9_at_random_points_keeps_every_committed_song(tmp_path: Path, songs: list[Path]) -> None:
    rng = np.random.default_rng(7)
    db = tmp_path / "db"
    for _ in range(3):
        outcome = kill_round(db, songs, rng, max_delay_s=1.0)
        assert outcome.ok, outcome


def test_concurrent_writers_with_fingerprints_lose_nothing(tmp_path: Path, songs: list[Path]) -> None:
    # the case: `humdex add A & humdex add B` on one catalog, fingerprint stores included
    outcome = writers_round(tmp_path / "db", [songs[0:2], songs[2:4]], learned=True)
    assert outcome.ok, outcome
    assert outcome.committed == 4  # and check_catalog (in outcome.ok) loaded the store


def test_unique_temporary_names_under_threads(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            for _ in range(20):
                atomic_write_bytes(target, bytes([i]) * 10_000, fsync=False)
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    data = target.read_bytes()
    assert not errors and len(set(data)) == 1 and len(data) == 10_000
    assert not stray_temp_files(tmp_path)


def test_truncated_data_file_is_named_and_repaired(tmp_path: Path, songs: list[Path],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    db = _indexed(tmp_path, songs)
    data = max(db.glob("data-*.npz"))
    data.write_bytes(data.read_bytes()[:300])
    assert main(["list", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "corrupt" in err and "--repair" in err and "Traceback" not in err
    assert main(["check", "--db", str(db)]) == 2
    report = repair_catalog(db, progress=False)
    assert report.ok and report.songs == 4, report
    assert len(Catalog.open(db)) == 4


def test_corrupt_fingerprint_store_is_rebuilt(tmp_path: Path, songs: list[Path],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from humdex.learned.search import sync_catalog

    db = _indexed(tmp_path, songs, 3)
    sync_catalog(db, Catalog.open(db).snapshot())
    (vectors,) = db.glob("learned/*/vectors.npz")
    vectors.write_bytes(b"PK\x03\x04 not really a zip")
    assert any("fingerprint" in p for p in check_catalog(db).problems)
    sync_catalog(db, Catalog.open(db).snapshot())  # what a search does first
    assert "rebuilding" in capsys.readouterr().err
    assert check_catalog(db).ok


def test_one_file_that_raises_anything_is_skipped_with_a_reason(
        tmp_path: Path, songs: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import humdex.catalog.catalog as catalog_module

    real = catalog_module.read_song_melodies

    def flaky(path: Path, *args: object):  # type: ignore[no-untyped-def]
        if path.name == songs[1].name:
            raise RuntimeError("decoder exploded")
        if path.name == songs[2].name:
            raise MemoryError
        return real(path, *args)

    monkeypatch.setattr(catalog_module, "read_song_melodies", flaky)
    report = Catalog.open(tmp_path / "db", create=True).add_files(songs[:4], progress=False)
    assert sorted(report.added) == sorted([songs[0].stem, songs[3].stem])
    reasons = dict(report.failed)
    assert "RuntimeError: decoder exploded" in reasons[str(songs[1])]
    assert "out of memory" in reasons[str(songs[2])]


def test_index_db_touches_only_its_own_files(tmp_path: Path, songs: list[Path],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "data-1.npz").write_bytes(b"the user's own")
    assert main(["index", str(songs[0]), "--db", str(mine), "--quiet"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in mine.iterdir()) == ["data-1.npz"]
    assert main(["index", str(songs[0]), "--db", str(mine / "data-1.npz"), "--quiet"]) == 2
    assert "is a file" in capsys.readouterr().err
    # a file of the user's put inside a catalog later survives every commit
    db = _indexed(tmp_path, songs, 1)
    (db / "data-old.npz").write_bytes(b"keep me")
    catalog = Catalog.open(db)
    for path in songs[1:4]:
        catalog.add_files([path], progress=False)
    assert (db / "data-old.npz").read_bytes() == b"keep me"
    assert len(list(db.glob("data-0*.npz"))) == 2  # this generation and the one before


def test_concurrent_creation_of_one_catalog(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def create() -> None:
        try:
            Catalog.open(tmp_path / "db", create=True)
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=create) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors and check_catalog(tmp_path / "db").ok
    with pytest.raises(CatalogError):
        Catalog.open(tmp_path / "nothing")


def test_fingerprinting_checkpoints_and_resumes(tmp_path: Path, songs: list[Path],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import humdex.learned.search as learned
    from humdex.learned.stores import FaissStore

    db = _indexed(tmp_path, songs, 4)
    snapshot = Catalog.open(db).snapshot()
    real = learned.song_fingerprints
    calls: list[str] = []

    def dies_on_the_third(model, song, *args):  # type: ignore[no-untyped-def]
        calls.append(song.song_id)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as if killed while fingerprinting the third song
        return real(model, song, *args)

    monkeypatch.setattr(learned, "CHECKPOINT_S", 0.0)
    monkeypatch.setattr(learned, "song_fingerprints", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        learned.sync_catalog(db, snapshot)
    (folder,) = db.glob("learned/*")
    assert len(FaissStore.load(folder)) == 2  # the first two were saved as they were made
    calls.clear()
    monkeypatch.setattr(learned, "song_fingerprints", real)
    seen: list[str] = []
    monkeypatch.setattr(learned, "song_fingerprints",
                        lambda model, song, *a: seen.append(song.song_id) or real(model, song, *a))
    learned.sync_catalog(db, snapshot)
    assert len(seen) == 2 and len(FaissStore.load(folder)) == 4  # only the rest was fingerprinted


def test_cli_writers_beside_the_server_lose_nothing(tmp_path: Path, songs: list[Path]) -> None:
    """`humdex add` processes while the server adds and removes songs over HTTP."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from crash_driver import expected_state, start_writer
    from humdex.service.server import create_app

    db = _indexed(tmp_path, songs, 1)
    client = TestClient(create_app(db), base_url="http://127.0.0.1:8000")
    writers = [start_writer(db, [str(p) for p in songs[i:i + 3]]) for i in (1, 4)]
    http_ids = []
    for path in songs[7:11]:
        resp = client.post("/songs", files={"file": (path.name, path.read_bytes())},
                           data={"song_id": f"http-{path.stem}"})
        assert resp.status_code == 201, resp.text
        http_ids.append(f"http-{path.stem}")
    assert client.delete(f"/songs/{http_ids.pop()}").status_code == 200
    cli_ids: set[str] = set()
    for proc in writers:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        cli_ids |= expected_state(out.splitlines())[0]
    assert check_catalog(db).ok
    ids = {s.song_id for s in Catalog.open(db).songs()}
    assert ids == {songs[0].stem, *cli_ids, *http_ids} and len(cli_ids) == 6
