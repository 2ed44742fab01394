"""The review queue: answers stored in the mined metadata, via the API router and the terminal."""

from __future__ import annotations

import io

import pytest

from humdex.cli import main
from humdex.errors import HumdexError
from humdex.training.chad import read_metadata
from humdex.training.review import record_answer, review_queue
from review_data import mined_folder


def status_of(root, vid):
    (row,) = [r for r in read_metadata(root / "metadata.csv") if r.id == vid]
    return row.extra["status"], row.check_by_crowdsource


def test_queue_and_answers(tmp_path) -> None:
    root = mined_folder(tmp_path / "mined")
    assert [it.candidate.id for it in review_queue(root)] == ["c1", "c2"]  # best first, accepted not asked
    record_answer(root, "g1", "0", "c2", "skip")
    assert status_of(root, "c2") == ("uncertain", False)
    record_answer(root, "g1", "0", "c1", "same")
    assert status_of(root, "c1") == ("same", True)
    assert [it.candidate.id for it in review_queue(root)] == ["c2"]
    with pytest.raises(HumdexError):
        record_answer(root, "g1", "0", "c2", "maybe")
    with pytest.raises(HumdexError):
        record_answer(root, "../g1", "0", "c2", "same")


def test_api_router(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from humdex.service.review import create_review_app

    root = mined_folder(tmp_path / "mined")
    client = TestClient(create_review_app(root), base_url="http://127.0.0.1:8001")
    assert "Same" in client.get("/review").text
    q = client.get("/review/api/queue").json()
    assert q["remaining"] == 2 and q["items"][0]["original_id"] == "o"
    wav = client.get("/review/api/audio/g1/0/c1")
    assert wav.status_code == 200 and wav.content[:4] == b"RIFF"
    assert client.get("/review/api/audio/g1/0/nope").status_code == 404
    assert client.get("/review/api/audio/..%2Fmeta/0/c1").status_code == 404
    contour = client.get("/review/api/contour/g1/0/o").json()
    voiced = [m for m in contour["midi"] if m is not None]
    assert len(voiced) > 100 and 58 < sorted(voiced)[len(voiced) // 2] < 68
    r = client.post("/review/api/answer", json={"group_id": "g1", "fragment_id": "0", "id": "c2",
                                                "answer": "different"})
    assert r.status_code == 200 and r.json() == {"id": "c2", "status": "different",
                                                 "check_by_crowdsource": True, "remaining": 1}
    assert client.post("/review/api/answer", json={"group_id": "g1", "fragment_id": "0", "id": "c1",
                                                   "answer": "yes"}).status_code == 422
    assert status_of(root, "c2") == ("different", True)


def test_review_answers_only_its_owner(tmp_path) -> None:
    """The answer endpoint writes: foreign Host (DNS rebinding) and foreign Origin (CSRF) are
    refused, and with a token only requests carrying it are answered."""
    from fastapi.testclient import TestClient

    from humdex.service.access import AccessConfig
    from humdex.service.review import create_review_app

    root = mined_folder(tmp_path / "mined")
    body = {"group_id": "g1", "fragment_id": "0", "id": "c2", "answer": "different"}
    open_app = TestClient(create_review_app(root), base_url="http://127.0.0.1:8001")
    assert open_app.get("/review/api/queue", headers={"Host": "evil.example:8001"}).status_code == 403
    assert open_app.post("/review/api/answer", json=body,
                         headers={"Origin": "http://evil.example"}).status_code == 403
    assert status_of(root, "c2") == ("uncertain", False)
    locked = TestClient(create_review_app(root, AccessConfig(token="s3cret")), base_url="http://127.0.0.1:8001")
    assert locked.post("/review/api/answer", json=body).status_code in (401, 403)
    assert status_of(root, "c2") == ("uncertain", False)
    assert locked.get("/review?token=s3cret", follow_redirects=False).status_code == 303
    assert locked.post("/review/api/answer", json=body).status_code == 200  # the cookie it set
    assert status_of(root, "c2") == ("different", True)


def test_terminal_review(tmp_path, monkeypatch, capsys) -> None:
    root = mined_folder(tmp_path / "mined")
    monkeypatch.setattr("sys.stdin", io.StringIO("x\nd\nq\n"))
    assert main(["review", str(root)]) == 0
    assert status_of(root, "c1") == ("different", True) and status_of(root, "c2") == ("uncertain", False)
    assert "1 answers stored" in capsys.readouterr().out
    assert main(["review", str(tmp_path)]) == 2


def test_answers_need_the_token_and_the_same_origin(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from humdex.service.access import AccessConfig
    from humdex.service.review import create_review_app

    root = mined_folder(tmp_path / "mined")
    client = TestClient(create_review_app(root, AccessConfig(token="s3cret")), base_url="http://127.0.0.1")
    body = {"group_id": "g1", "fragment_id": "0", "id": "c1", "answer": "same"}
    assert client.get("/review/api/queue").status_code == 200  # reading needs no token
    assert client.post("/review/api/answer", json=body).status_code == 401
    assert client.post("/review/api/answer", json=body, headers={"Authorization": "Bearer s3cret",
                                                               "Origin": "http://evil.example"}).status_code == 403
    assert client.get("/review/api/queue", headers={"Host": "evil.example"}).status_code == 403
    assert status_of(root, "c1") == ("uncertain", False)
    ok = client.post("/review/api/answer", json=body, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and status_of(root, "c1") == ("same", True)


def test_humdex_serve_mounts_the_review_queue_behind_its_token(tmp_path) -> None:
    """`humdex serve --review DIR`: the catalog's service also serves the mined folder's queue;
    its answers need the server's write token like adding songs."""
    from fastapi.testclient import TestClient

    from humdex.catalog.catalog import Catalog
    from humdex.service.access import AccessConfig
    from humdex.service.server import ServerConfig, create_app

    root = mined_folder(tmp_path / "mined")
    catalog = Catalog.open(tmp_path / "db", create=True)
    body = {"group_id": "g1", "fragment_id": "0", "id": "c1", "answer": "same"}
    plain = TestClient(create_app(catalog), base_url="http://127.0.0.1:8000")
    assert plain.get("/review").status_code == 404  # no --review: no queue
    app = create_app(catalog, ServerConfig(access=AccessConfig(token="t0ken"), review_folder=root))
    client = TestClient(app, base_url="http://127.0.0.1:8000")
    assert client.get("/health").json()["songs"] == 0 and "Same" in client.get("/review").text
    assert client.get("/review/api/queue").json()["remaining"] == 2
    assert client.post("/review/api/answer", json=body).status_code in (401, 403)
    assert status_of(root, "c1")[1] is False
    assert client.post("/review/api/answer", json=body, headers={"X-Humdex-Token": "t0ken"}).status_code == 200
    assert status_of(root, "c1") == ("same", True)


def test_serve_refuses_a_review_folder_that_is_not_mined(tmp_path, capsys) -> None:
    from humdex.catalog.catalog import Catalog

    Catalog.open(tmp_path / "db", create=True)
    assert main(["serve", "--db", str(tmp_path / "db"), "--review", str(tmp_path)]) == 2
    assert "not a mined folder" in capsys.readouterr().err
