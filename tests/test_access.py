"""Who may use the service: DNS rebinding and CSRF refused, writes need the token off loopback,
the owner's web page keeps working, /docs works offline."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from humdex.catalog.catalog import Catalog
from humdex.service.access import AccessConfig, access_from_args, host_of
from humdex.service.server import ServerConfig, create_app
from service_data import TUNES, build_catalog, write_midi

LOCAL = "http://127.0.0.1:8000"
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("access-songs")
    write_midi(folder / "extra.mid", TUNES["mary_lamb"])
    return folder


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return build_catalog(tmp_path, ["ode_to_joy", "twinkle"])


def _client(db: Path, **access: object) -> TestClient:
    config = ServerConfig(access=AccessConfig(**access))  # type: ignore[arg-type]
    return TestClient(create_app(db, config), base_url=LOCAL)


def _add(client: TestClient, songs: Path, song_id: str = "x", **headers: str):  # type: ignore[no-untyped-def]
    data = (songs / "extra.mid").read_bytes()
    return client.post("/songs", files={"file": ("extra.mid", data)}, data={"song_id": song_id},
                       headers=headers)


def _ids(db: Path) -> list[str]:
    return sorted(s.song_id for s in Catalog.open(db).songs())


def test_dns_rebinding_and_csrf_are_refused_on_loopback(db: Path, songs: Path) -> None:
    client = _client(db)
    before = _ids(db)
    # the probes: a page of evil.example posting a song; a rebound name deleting one
    resp = _add(client, songs, origin="http://evil.example", host="evil.example:8000")
    assert resp.status_code == 403 and "evil.example" in resp.json()["detail"]
    resp = client.delete("/songs/twinkle", headers={"host": "attacker.example"})
    assert resp.status_code == 403
    assert client.get("/songs", headers={"host": "attacker.example:8000"}).status_code == 403
    # a foreign page on the right Host (CSRF): refused for writes and searches
    assert _add(client, songs, origin="http://evil.example").status_code == 403
    assert client.delete("/songs/twinkle", headers={"origin": "null"}).status_code == 403
    assert client.post("/search", content=b"x", headers={"origin": "http://evil.example"}).status_code == 403
    assert _ids(db) == before
    # the owner: the page itself (same origin), curl (no Origin), localhost by name
    assert _add(client, songs, "a", origin=LOCAL).status_code == 201
    assert _add(client, songs, "b").status_code == 201
    assert client.delete("/songs/a", headers={"host": "localhost:8000",
                                              "origin": "http://localhost:8000"}).status_code == 200
    assert _ids(db) == sorted(before + ["b"])
    assert "access-control-allow-origin" not in client.get("/songs", headers={
        "origin": "http://evil.example"}).headers  # CORS off


def test_writes_need_the_token_when_the_server_has_one(db: Path, songs: Path) -> None:
    client = _client(db, bind_host="192.168.1.20", token=TOKEN)
    resp = _add(client, songs)
    assert resp.status_code == 401 and "token" in resp.json()["detail"]
    assert client.delete("/songs/twinkle").status_code == 401
    assert _add(client, songs, authorization="Bearer wrong").status_code == 401
    assert client.get("/songs").status_code == 200  # reads need none
    assert _add(client, songs, "a", authorization=f"Bearer {TOKEN}").status_code == 201
    assert client.delete("/songs/a", headers={"x-humdex-token": TOKEN}).status_code == 200
    # the bound address is a valid Host, an unknown name is not
    assert client.get("/health", headers={"host": "192.168.1.20:8000"}).status_code == 200
    assert client.get("/health", headers={"host": "evil.example"}).status_code == 403


def test_the_owners_link_sets_a_strict_cookie_the_page_uses(db: Path, songs: Path) -> None:
    client = _client(db, bind_host="192.168.1.20", token=TOKEN)
    wrong = client.get("/?token=nope", follow_redirects=False)
    assert wrong.status_code == 303 and "set-cookie" not in wrong.headers
    resp = client.get(f"/?token={TOKEN}", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/"
    cookie = resp.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert _add(client, songs, "a", origin=LOCAL).status_code == 201  # the cookie rides along
    assert "a" in _ids(db)


def test_wildcard_bind_accepts_any_host_but_still_needs_the_token(db: Path, songs: Path) -> None:
    client = _client(db, bind_host="0.0.0.0", token=TOKEN)
    assert client.get("/health", headers={"host": "my-box.lan:8000"}).status_code == 200
    assert _add(client, songs).status_code == 401
    restricted = _client(db, bind_host="0.0.0.0", token=TOKEN, allowed_hosts=("my-box.lan",))
    assert restricted.get("/health", headers={"host": "my-box.lan:8000"}).status_code == 200
    assert restricted.get("/health", headers={"host": "other.lan"}).status_code == 403


def test_cors_only_for_configured_origins(db: Path, songs: Path) -> None:
    client = _client(db, cors_origins=("http://app.example",))
    resp = client.get("/songs", headers={"origin": "http://app.example"})
    assert resp.headers.get("access-control-allow-origin") == "http://app.example"
    assert _add(client, songs, "a", origin="http://app.example").status_code == 201
    assert _add(client, songs, "b", origin="http://evil.example").status_code == 403


def _serve_args(*argv: str) -> argparse.Namespace:
    from humdex.cli import build_parser

    return build_parser("serve").parse_args(["serve", "--db", "unused", *argv])


def test_serve_defaults_generate_a_token_beyond_loopback_and_warn_on_wildcard() -> None:
    access, lines = access_from_args(_serve_args(), None)
    assert access.token is None and not lines  # loopback: Host/Origin checks only
    access, lines = access_from_args(_serve_args("--host", "0.0.0.0"), None)
    assert access.token and len(access.token) >= 24
    assert any(access.token in line for line in lines)
    assert any("WARNING" in line and "every interface" in line for line in lines)
    access, lines = access_from_args(_serve_args("--host", "10.0.0.5"), "env-tok")
    assert access.token == "env-tok" and not any("generated" in line for line in lines)
    access, lines = access_from_args(_serve_args("--host", "0.0.0.0", "--no-token"), None)
    assert access.token is None and any("ADD OR REMOVE SONGS" in line for line in lines)
    assert access_from_args(_serve_args("--token", "t"), None)[0].token == "t"


def test_host_header_parsing() -> None:
    assert host_of("127.0.0.1:8000") == "127.0.0.1"
    assert host_of("[::1]:8000") == "::1"
    assert host_of("example.org") == "example.org"
    assert AccessConfig().host_allowed("localhost.")
    assert not AccessConfig().host_allowed("127.0.0.1.evil.example")


def test_docs_page_needs_no_cdn(db: Path) -> None:
    client = _client(db)
    page = client.get("/docs").text
    assert "cdn.jsdelivr" not in page and "unpkg" not in page
    js = [part.split('"')[0] for part in page.split('src="')[1:]]
    assert js and all(client.get(src).status_code == 200 for src in js)
