"""A hostile but fair user: every probe of issue 17 gets one clear line (exit 2 / 4xx), quickly,
in bounded memory, and changes nothing. (Timings and memory per input: benchmarks/bomb_inputs.py.)"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bomb_files import BOMBS, pv_200s
from humdex.catalog.catalog import Catalog
from humdex.cli import main
from service_data import TUNES, build_catalog, write_midi

MAX_REJECT_S = 2.0
MAX_EXTRA_RSS_MB = 150  # the issue allows 300 MB above idle for a rejected input


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_catalog(tmp_path_factory.mktemp("bad-inputs"), ["ode_to_joy", "twinkle"])


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    out = {}
    for name, (filename, make, _) in BOMBS.items():
        out[name] = folder / filename
        out[name].write_bytes(make())
    return out


def _wav(audio: np.ndarray, rate: int = 16000, subtype: str = "PCM_16") -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, audio, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def _odd_files() -> dict[str, bytes]:
    """Truncated, corrupt, empty, silent, noise and NaN files of the query formats."""
    rng = np.random.default_rng(0)
    good = _wav(np.sin(np.arange(48000) * 0.1).astype(np.float32))
    nan = np.zeros(48000, np.float32)
    nan[100] = np.nan
    return {
        "empty.wav": b"",
        "truncated.wav": good[:30],
        "garbage.mp3": rng.integers(0, 256, 4000, dtype=np.uint8).tobytes(),
        "garbage.m4a": b"\x00\x00\x00\x18ftypM4A " + bytes(200),
        "silent.wav": _wav(np.zeros(80000, np.float32)),
        "noise.flac": b"",  # filled below (FLAC needs soundfile)
        "nan.wav": _wav(nan, subtype="FLOAT"),
        "short.wav": _wav(np.zeros(8000, np.float32)),
        "text.pv": b"hello\nworld\n",
        "nan-times.csv": b"nan,220\n1,220\n",
        "backwards.csv": b"0,220\n2,220\n1,220\n",
        "binary.csv": b"\xff\xfe\x00\x01" * 40,
        "unvoiced.pv": b"0\n" * 200,
    }


def test_bombs_are_refused_in_bounded_time_and_memory(bombs: dict[str, Path]) -> None:
    """Every bomb through the readers the CLI and the server use, in a fresh process whose peak
    RSS is measured (ru_maxrss) against its RSS after the imports."""
    child = r"""
import json, resource, sys, time
from pathlib import Path
from humdex.catalog.ingest import read_song_melody
from humdex.errors import HumdexError
from humdex.search import load_query
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rows = []
for name, path, where in json.loads(sys.argv[1]):
    t = time.perf_counter()
    try:
        (read_song_melody if where == "song" else load_query)(Path(path))
        message = None
    except HumdexError as err:
        message = str(err)
    rows.append([name, where, message, time.perf_counter() - t])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": rows, "extra_mb": (peak - base) / 1024}))
"""
    jobs = [[name, str(bombs[name]), where] for name, (_, _, places) in BOMBS.items()
            for where in places]
    src = str(Path(__file__).resolve().parents[1] / "src")
    out = subprocess.run([sys.executable, "-c", child, json.dumps(jobs)], check=False,
                         capture_output=True,
                         text=True, timeout=120, env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    for name, where, message, seconds in result["rows"]:
        assert message is not None, f"{name} accepted as a {where}"
        assert "\n" not in message and seconds < MAX_REJECT_S, (name, message, seconds)
    assert result["extra_mb"] < MAX_EXTRA_RSS_MB, result


def test_the_cli_answers_each_bad_query_with_one_line(db: Path, bombs: dict[str, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    files = _odd_files()
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.random.default_rng(1).normal(0, 0.3, 80000).astype(np.float32), 16000, format="FLAC")
    files["noise.flac"] = buf.getvalue()
    paths = [bombs[n] for n, (_, _, where) in BOMBS.items() if "query" in where]
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    paths += [tmp_path / "missing.wav", tmp_path]  # a file that is not there, a folder
    for path in paths:
        t = time.perf_counter()
        assert main(["search", str(path), "--db", str(db)]) == 2, path
        err = capsys.readouterr().err.strip()
        assert err.startswith("humdex: error: ") and "\n" not in err and "Traceback" not in err, err
        assert time.perf_counter() - t < 10, path  # noise is pitch-tracked before it is refused
    assert "noise" in _search_error(db, tmp_path / "noise.flac", capsys)


def _search_error(db: Path, path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    main(["search", str(path), "--db", str(db)])
    return capsys.readouterr().err


@pytest.mark.parametrize("top", ["0", "-5", "x"])
def test_top_must_be_positive(db: Path, top: str, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["search", str(tmp_path / "q.wav"), "--db", str(db), "--top", top])
    assert exc.value.code == 2 and "--top" in capsys.readouterr().err


def test_index_skips_bombs_and_keeps_the_good_songs(tmp_path: Path, bombs: dict[str, Path],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "songs"
    folder.mkdir()
    for path in bombs.values():
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "truncated.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00")
    (folder / "empty.abc").write_bytes(b"")
    write_midi(folder / "good.mid", TUNES["twinkle"])
    assert main(["index", str(folder), "--db", str(tmp_path / "db"), "--quiet"]) == 0
    out = capsys.readouterr()
    assert "indexed 1 songs" in out.out and "Traceback" not in out.err
    assert out.err.count("skipped") == len(bombs) + 2
    assert [s.song_id for s in Catalog.open(tmp_path / "db").songs()] == ["good"]


# ------------------------------------------------------------------------------ HTTP


@pytest.fixture(scope="module")
def client(db: Path):  # type: ignore[no-untyped-def]
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from humdex.service.server import create_app

    return TestClient(create_app(db), base_url="http://127.0.0.1:8000")


def test_http_refuses_every_bomb_quickly_and_changes_nothing(client, db: Path,  # type: ignore[no-untyped-def]
                                                            bombs: dict[str, Path]) -> None:
    generation = Catalog.open(db).snapshot().generation
    for name, (filename, _, where) in BOMBS.items():
        data = bombs[name].read_bytes()
        for endpoint in [e for e in ("query", "song") if e in where]:
            t = time.perf_counter()
            if endpoint == "query":
                resp = client.post("/search", files={"file": (filename, data)})
            else:
                resp = client.post("/songs", files={"file": (filename, data)})
            elapsed = time.perf_counter() - t
            assert 400 <= resp.status_code < 500, (name, endpoint, resp.status_code, resp.text)
            assert elapsed < MAX_REJECT_S, (name, endpoint, elapsed)
            assert "\n" not in resp.json()["detail"]
    resp = client.post("/search", files={"file": ("long.pv", pv_200s())})
    assert resp.status_code == 422 and "60 s" in resp.json()["detail"]  # every format, every cap
    assert Catalog.open(db).snapshot().generation == generation
    assert not list((db / "uploads").glob("*")) if (db / "uploads").exists() else True


def test_http_odd_queries_and_params_are_4xx_without_server_paths(client) -> None:  # type: ignore[no-untyped-def]
    for name, data in _odd_files().items():
        if not data:
            continue  # the empty upload: test_server
        resp = client.post("/search", files={"file": (name, data)})
        assert 400 <= resp.status_code < 500, (name, resp.text)
        detail = resp.json()["detail"]
        assert "/tmp" not in detail and "humdex-query-" not in detail, detail
    for params in ({"start_s": "nan"}, {"end_s": "inf"}, {"start_s": "-inf"}):
        assert client.get("/songs/twinkle/melody", params=params).status_code == 422
    assert client.post("/search", params={"top": 0}, content=b"x").status_code == 422


def test_http_ids_and_names_cannot_escape_the_catalog(client, db: Path) -> None:  # type: ignore[no-untyped-def]
    from service_data import write_midi as write

    path = db.parent / "tune.mid"
    write(path, TUNES["mary_lamb"])
    data = path.read_bytes()
    for song_id in ("../../evil", "/etc/passwd", "a/b", ".hidden", "x" * 200):
        resp = client.post("/songs", files={"file": ("t.mid", data)}, data={"song_id": song_id})
        assert resp.status_code == 422, song_id
    resp = client.post("/songs", files={"file": ("../../../escape.mid", data)})
    assert resp.status_code == 201 and resp.json()["song"]["song_id"] == "escape"
    assert (db / "uploads" / "escape.mid").is_file() and not (db.parent / "escape.mid").exists()
    assert client.delete("/songs/escape").status_code == 200
    assert client.get("/songs/..%2F..%2Fcatalog.json").status_code == 404
    assert client.delete("/songs/..%2Fcatalog.json").status_code in (404, 405)
    assert (db / "catalog.json").is_file()
