"""The HTTP API: search contract, songs CRUD, bad uploads (4xx, catalog unchanged), concurrency."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from humdex.catalog.catalog import Catalog
from humdex.nomatch import NoMatchConfig
from humdex.service.server import ServerConfig, create_app
from service_data import TUNES, build_catalog, hum, random_tune, wav_bytes, write_midi

LOCAL = "http://127.0.0.1:8000"  # the service refuses other Host names (service.access)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_catalog(tmp_path_factory.mktemp("service"))


@pytest.fixture(scope="module")
def client(db: Path) -> TestClient:
    return TestClient(create_app(db), base_url=LOCAL)


@pytest.fixture()
def fresh(tmp_path: Path) -> tuple[TestClient, Path]:
    """A client over a catalog of its own (for tests that change it)."""
    db = build_catalog(tmp_path, ["ode_to_joy", "twinkle"])
    config = ServerConfig(max_query_bytes=2**20, max_song_bytes=2**20)
    return TestClient(create_app(db, config), base_url=LOCAL), db


def _hum_wav(name: str, first: int = 2, n_notes: int = 12, seed: int = 1) -> bytes:
    return wav_bytes(hum(TUNES[name], first=first, n_notes=n_notes, seed=seed))


def _state(db: Path) -> tuple[int, list[str], list[str]]:
    cat = Catalog.open(db)
    uploads = sorted(p.name for p in (db / "uploads").glob("*")) if (db / "uploads").exists() else []
    return cat.snapshot().generation, [s.song_id for s in cat.songs()], uploads


def test_health_and_song_list(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["songs"] == len(TUNES)
    assert health["method"] == "hybrid"  # a catalog of melodies
    body = client.get("/songs").json()
    assert body["count"] == len(TUNES)
    assert sorted(s["song_id"] for s in body["songs"]) == sorted(TUNES)
    assert {"song_id", "title", "artist", "kind", "duration_s"} <= set(body["songs"][0])
    assert client.get("/songs/twinkle").json()["kind"] == "midi"


def test_search_multipart_finds_the_song_with_the_json_contract(client: TestClient) -> None:
    resp = client.post("/search", params={"top": 3},
                       files={"file": ("hum.wav", _hum_wav("frere_jacques"), "audio/wav")})
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["query"] == "hum.wav"
    assert set(answer) == {"query", "results", "timing_ms", "match", "threshold", "margin",
                           "min_margin", "method"}
    assert set(answer["timing_ms"]) == {"pitch", "search", "total"}
    assert [r["rank"] for r in answer["results"]] == [1, 2, 3]
    best = answer["results"][0]
    assert best["song_id"] == "frere_jacques"
    assert set(best) == {"rank", "song_id", "title", "score", "start_s", "end_s"}
    assert answer["match"] is True and best["score"] >= answer["threshold"]
    # the margin is measured over the whole cohort (all 5 songs), not only the 3 shown
    assert answer["margin"] >= answer["min_margin"] > 0
    # /health announces the rule that searches apply
    health = client.get("/health").json()
    assert (health["match_threshold"], health["match_min_margin"]) == (answer["threshold"],
                                                                      answer["min_margin"])
    shown = [r["score"] for r in answer["results"]]
    assert answer["margin"] > shown[0] - (shown[1] + shown[2]) / 2  # songs 4, 5 score lower
    # the hum starts at the tune's third note (1.2 s into the 100 bpm MIDI)
    assert best["start_s"] == pytest.approx(1.2, abs=0.7)
    assert best["end_s"] > best["start_s"] + 4


def test_search_raw_body_and_detail_fields(client: TestClient) -> None:
    resp = client.post("/search?detail=true&top=2", content=_hum_wav("twinkle"),
                       headers={"content-type": "audio/wav"})
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["results"][0]["song_id"] == "twinkle"
    contour = answer["query_contour"]
    assert contour["hop_s"] > 0 and len(contour["midi"]) > 100
    voiced = [m for m in contour["midi"] if m is not None]
    # the hum is 3 semitones below the MIDI (C4..A4 -> A3..F#4)
    assert 55 < np.median(voiced) < 67
    melody = answer["melody"]
    assert melody["song_id"] == "twinkle" and melody["start_s"] <= answer["results"][0]["start_s"]
    assert min(m for m in melody["midi"] if m is not None) >= 60


def test_search_pitch_file_query(client: TestClient, tmp_path: Path) -> None:
    hop = 0.01
    rows = ["time_s,f0_hz"]
    t = 0.0
    for pitch, beats in TUNES["happy_birthday"][:12]:
        for _ in range(int(beats * 0.6 / hop)):
            rows.append(f"{t:.2f},{440 * 2 ** ((pitch + 2 - 69) / 12):.2f}")
            t += hop
    resp = client.post("/search", files={"file": ("melody.csv", "\n".join(rows).encode())})
    assert resp.status_code == 200, resp.text
    assert resp.json()["results"][0]["song_id"] == "happy_birthday"


def test_unknown_melody_is_no_match(client: TestClient) -> None:
    resp = client.post("/search", files={"file": ("other.wav", wav_bytes(hum(random_tune(3))))})
    answer = resp.json()
    assert resp.status_code == 200
    assert answer["results"], "the catalog still ranks its songs"
    assert answer["match"] is False
    best = answer["results"][0]["score"]
    assert best < answer["threshold"] or answer["margin"] < answer["min_margin"]


def test_threshold_is_configurable(db: Path) -> None:
    strict = TestClient(create_app(db, ServerConfig(no_match=NoMatchConfig(min_score=0.999))),
                        base_url=LOCAL)
    answer = strict.post("/search", files={"file": ("q.wav", _hum_wav("twinkle"))}).json()
    assert answer["results"][0]["song_id"] == "twinkle"
    assert answer["match"] is False and answer["threshold"] == 0.999
    assert strict.get("/health").json()["match_threshold"] == 0.999


@pytest.mark.parametrize("name,data,status,words", [
    ("empty.wav", b"", 422, "empty"),
    ("junk.wav", b"this is not audio at all" * 50, 422, "cannot"),
    ("short.wav", wav_bytes(hum(TUNES["twinkle"][:1], bpm=120)), 422, "at least"),
    ("silence.wav", wav_bytes(np.zeros(16000 * 4, np.float32)), 422, "pitch"),
    ("big.wav", b"\0" * (2**20 + 10), 413, "limit"),
])
def test_bad_search_uploads_are_4xx(fresh: tuple[TestClient, Path], name: str, data: bytes,
                                    status: int, words: str) -> None:
    client, db = fresh
    before = _state(db)
    resp = client.post("/search", files={"file": (name, data)})
    assert resp.status_code == status, resp.text
    assert words in resp.json()["detail"].lower()
    assert _state(db) == before


def test_search_refuses_long_queries_and_bad_params(fresh: tuple[TestClient, Path]) -> None:
    client, _ = fresh
    audio = np.tile(hum(TUNES["twinkle"], sample_rate=8000), 6)  # ~70 s, 8 kHz 8-bit: < 1 MB
    long = wav_bytes(audio, sample_rate=8000, subtype="PCM_U8")
    resp = client.post("/search", files={"file": ("long.wav", long)})
    assert resp.status_code == 422 and "at most 60" in resp.json()["detail"]
    assert client.post("/search?top=0", files={"file": ("q.wav", b"x")}).status_code == 422
    resp = client.post("/search", files={"other": ("q.wav", b"x")})
    assert resp.status_code == 422 and "`file`" in resp.json()["detail"]


def test_songs_add_search_delete(fresh: tuple[TestClient, Path], tmp_path: Path) -> None:
    client, db = fresh
    midi = write_midi(tmp_path / "upload.mid", TUNES["mary_lamb"]).read_bytes()
    resp = client.post("/songs", files={"file": ("Mary.mid", midi)},
                       data={"title": "Mary Had a Little Lamb", "artist": "trad."})
    assert resp.status_code == 201, resp.text
    assert resp.json()["song"] == {"song_id": "Mary", "title": "Mary Had a Little Lamb",
                                   "artist": "trad.", "kind": "midi",
                                   "duration_s": pytest.approx(19.2, abs=0.5)}  # 32 beats at 100 bpm
    assert resp.json()["count"] == 3
    hit = client.post("/search", files={"file": ("q.wav", _hum_wav("mary_lamb"))}).json()
    assert hit["results"][0]["song_id"] == "Mary" and hit["results"][0]["title"].startswith("Mary")
    melody = client.get("/songs/Mary/melody", params={"start_s": 2, "end_s": 4}).json()
    assert melody["start_s"] == pytest.approx(2.0) and len(melody["midi"]) == pytest.approx(100, abs=2)
    before = _state(db)
    dup = client.post("/songs", files={"file": ("Mary.mid", midi)})
    assert dup.status_code == 409 and "already" in dup.json()["detail"]
    assert _state(db) == before
    assert client.delete("/songs/Mary").json() == {"removed": "Mary", "count": 2}
    assert _state(db)[1:] == (["ode_to_joy", "twinkle"], [])
    assert client.delete("/songs/Mary").status_code == 404
    assert client.get("/songs/Mary/melody").status_code == 404


@pytest.mark.parametrize("name,data,status", [
    ("broken.mid", b"MThd not really a midi file", 422),
    ("notes.txt", b"hello", 415),
    ("../../evil.mid", b"MThd", 422),
    ("big.mid", b"\0" * (2**20 + 10), 413),
])
def test_bad_song_uploads_change_nothing(fresh: tuple[TestClient, Path], name: str, data: bytes,
                                         status: int) -> None:
    client, db = fresh
    before = _state(db)
    resp = client.post("/songs", files={"file": (name, data)})
    assert resp.status_code == status, resp.text
    assert resp.json()["detail"]
    assert _state(db) == before
    assert not list(db.parent.rglob("evil*"))


def test_song_upload_needs_multipart_and_a_sane_id(fresh: tuple[TestClient, Path]) -> None:
    client, db = fresh
    before = _state(db)
    assert client.post("/songs", content=b"MThd", headers={"content-type": "audio/midi"}
                       ).status_code == 415
    resp = client.post("/songs", files={"file": ("x.mid", b"MThd")}, data={"song_id": "a/b"})
    assert resp.status_code == 422 and "not allowed" in resp.json()["detail"]
    assert _state(db) == before


def test_page_and_docs_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "MediaRecorder" not in page.text and "app.js" in page.text
    assert "MediaRecorder" in client.get("/static/app.js").text
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/search", "/songs", "/songs/{song_id}", "/health"} <= set(paths)
    assert "multipart/form-data" in paths["/search"]["post"]["requestBody"]["content"]


def test_missing_catalog_is_a_clear_error(tmp_path: Path) -> None:
    from humdex.errors import CatalogError

    with pytest.raises(CatalogError, match="no humdex catalog"):
        create_app(tmp_path / "nowhere")


@pytest.mark.slow
def test_concurrent_searches_adds_and_removes_stay_consistent(tmp_path: Path) -> None:
    """Searches, adds, removes and listings at once: every answer is 200 and from one whole
    generation, every added song is there at the end, every removed one gone."""
    db = build_catalog(tmp_path, ["ode_to_joy", "twinkle", "frere_jacques"])
    client = TestClient(create_app(db), base_url=LOCAL)
    midis = {f"extra_{i}": write_midi(tmp_path / f"extra_{i}.mid", random_tune(100 + i)).read_bytes()
             for i in range(8)}
    query = _hum_wav("frere_jacques")
    errors: list[str] = []

    def adder(ids: list[str]) -> None:
        for song_id in ids:
            r = client.post("/songs", files={"file": (f"{song_id}.mid", midis[song_id])})
            if r.status_code != 201:
                errors.append(f"add {song_id}: {r.status_code} {r.text}")

    def searcher() -> None:
        for _ in range(4):
            r = client.post("/search", files={"file": ("q.wav", query)})
            if r.status_code != 200 or r.json()["results"][0]["song_id"] != "frere_jacques":
                errors.append(f"search: {r.status_code} {r.text[:200]}")

    def lister() -> None:
        last = -1
        for _ in range(30):
            body = client.get("/songs").json()
            ids = [s["song_id"] for s in body["songs"]]
            if len(ids) != body["count"] or len(set(ids)) != len(ids) or body["generation"] < last:
                errors.append(f"torn listing: {body}")
            last = body["generation"]

    def remover() -> None:
        r = client.delete("/songs/twinkle")
        if r.status_code != 200:
            errors.append(f"remove: {r.status_code} {r.text}")

    ids = sorted(midis)
    threads = [threading.Thread(target=adder, args=(ids[k::3],)) for k in range(3)]
    threads += [threading.Thread(target=searcher) for _ in range(2)]
    threads += [threading.Thread(target=lister), threading.Thread(target=remover)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    final = sorted(s.song_id for s in Catalog.open(db).songs())
    assert final == sorted(["ode_to_joy", "frere_jacques", *ids])
    assert sorted(s["song_id"] for s in client.get("/songs").json()["songs"]) == final


def test_audio_song_upload_is_pitch_tracked_and_found(fresh: tuple[TestClient, Path]) -> None:
    client, db = fresh
    song = wav_bytes(hum(TUNES["frere_jacques"], bpm=110, transpose=0, seed=7))
    resp = client.post("/songs", files={"file": ("Frere.wav", song)}, data={"title": "Frère"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["song"]["kind"] == "audio"
    assert (db / "uploads" / "Frere.wav").is_file()
    answer = client.post("/search", files={"file": ("q.wav", _hum_wav("frere_jacques"))}).json()
    assert answer["results"][0]["song_id"] == "Frere"


def test_streamed_body_over_the_limit_is_413(fresh: tuple[TestClient, Path]) -> None:
    client, db = fresh
    before = _state(db)

    def chunks():  # no Content-Length: the limit is counted while reading
        for _ in range(40):
            yield b"\0" * 2**15

    resp = client.post("/search", content=chunks(), headers={"content-type": "audio/wav"})
    assert resp.status_code == 413 and "limit" in resp.json()["detail"]
    assert _state(db) == before


def test_raw_pv_body_with_filename(client: TestClient) -> None:
    frames = [pitch + 1.0 for pitch, beats in TUNES["ode_to_joy"][:14] for _ in range(int(beats * 20))]
    pv = "\n".join(f"{m:.2f}" for m in [0.0] * 5 + frames + [0.0] * 5).encode()
    resp = client.post("/search", params={"filename": "hum.pv"}, content=pv,
                       headers={"content-type": "application/octet-stream"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["query"] == "hum.pv"
    assert resp.json()["results"][0]["song_id"] == "ode_to_joy"


def test_a_search_that_waits_too_long_for_a_thread_gets_503(db: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from humdex.service import server as server_module

    real = server_module._Service.search

    def slow(self, *args):  # type: ignore[no-untyped-def]
        time.sleep(1.5)
        return real(self, *args)

    monkeypatch.setattr(server_module._Service, "search", slow)
    client = TestClient(create_app(db, ServerConfig(search_threads=1, max_queue_s=0.3)), base_url=LOCAL)
    statuses: list[int] = []
    wav = _hum_wav("twinkle")

    def ask() -> None:
        statuses.append(client.post("/search", files={"file": ("q.wav", wav)}).status_code)

    threads = [threading.Thread(target=ask) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(statuses) == [200, 503]
