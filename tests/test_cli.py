"""The real CLI end to end on songs and sung queries the tests make themselves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import SAMPLE_RATE, sing
from humdex.cli import main


@pytest.fixture
def db(song_dir: Path, tmp_path: Path) -> Path:
    db = tmp_path / "db"
    assert main(["index", str(song_dir), "--db", str(db), "--quiet"]) == 0
    return db


def excerpt(melody: list[tuple[int, float]], first: int, count: int) -> list[tuple[int, float]]:
    return melody[first : first + count]


def search_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    capsys.readouterr()
    assert main(["search", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_sung_query_from_the_middle_finds_its_song(db: Path, melodies: list, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    query = tmp_path / "hum.wav"
    audio = sing(excerpt(melodies[7], 12, 14), transpose_st=-5, tempo=0.85)
    sf.write(query, audio, SAMPLE_RATE)
    answer = search_json(capsys, str(query), "--db", str(db), "--top", "3")
    assert answer["query"] == "hum.wav"
    assert [r["rank"] for r in answer["results"]] == [1, 2, 3]
    best = answer["results"][0]
    assert best["song_id"] == "song07"
    assert set(best) == {"rank", "song_id", "title", "score", "start_s", "end_s"}
    assert 0 <= best["start_s"] < best["end_s"]
    assert best["score"] >= answer["results"][1]["score"]
    assert set(answer["timing_ms"]) == {"pitch", "search", "total"}
    assert answer["match"] is True and 0 < answer["threshold"] < 1


def test_pitch_file_queries(db: Path, melodies: list, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    # .pv: MIDI semitones per 32 ms frame, 0 = unvoiced; the song sung from its start
    frames = []
    for pitch, beats in excerpt(melodies[3], 0, 16):
        n = int(beats * 0.5 / 0.032)
        frames += [pitch + 2.0] * (n - 1) + [0.0]
    pv = tmp_path / "q.pv"
    pv.write_text("\n".join(f"{x:.2f}" for x in frames))
    answer = search_json(capsys, str(pv), "--db", str(db), "--from-start")
    assert answer["results"][0]["song_id"] == "song03"
    # f0 CSV with a header, f0 <= 0 unvoiced
    t = np.arange(len(frames)) * 0.032
    f0 = np.where(np.array(frames) > 0, 440 * 2 ** ((np.array(frames) - 69) / 12), 0)
    csv = tmp_path / "q.csv"
    csv.write_text("time_s,f0_hz\n" + "\n".join(f"{a:.3f},{b:.2f}" for a, b in zip(t, f0)))
    answer = search_json(capsys, str(csv), "--db", str(db))
    assert answer["results"][0]["song_id"] == "song03"


def test_list_remove_add(db: Path, song_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["remove", "song01", "--db", str(db)]) == 0
    capsys.readouterr()
    assert main(["list", "--db", str(db), "--json"]) == 0
    ids = [s["song_id"] for s in json.loads(capsys.readouterr().out)]
    assert "song01" not in ids and len(ids) == 11
    assert main(["add", str(song_dir / "song01.mid"), "--db", str(db), "--quiet"]) == 0
    assert main(["list", "--db", str(db)]) == 0
    assert "12 songs" in capsys.readouterr().out


def test_eval_on_a_query_list(db: Path, melodies: list, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    lines = []
    for i in (2, 5, 9):
        path = tmp_path / f"q{i}.wav"
        sf.write(path, sing(excerpt(melodies[i], 4, 14), transpose_st=3, seed=i), SAMPLE_RATE)
        lines.append(f"{path.name}\tsong{i:02d}")
    (tmp_path / "queries.tsv").write_text("\n".join(lines) + "\n")
    report = tmp_path / "report.json"
    assert main(["eval", "--db", str(db), "--queries", str(tmp_path / "queries.tsv"),
                 "--report", str(report), "--quiet"]) == 0
    metrics = json.loads(report.read_text())["metrics"]
    assert metrics["queries"] == 3 and metrics["Top-10"] == 1.0
    assert "top-10 1.000" in capsys.readouterr().out


def test_eval_mirqbsh_layout(db: Path, melodies: list, tmp_path: Path) -> None:
    corpus = tmp_path / "MIR-QBSH"
    person = corpus / "waveFile" / "year2003" / "person00001"
    person.mkdir(parents=True)
    # queries named after catalog songs, as MIR-QBSH names them after its MIDI files
    for i in (0, 4):
        audio = sing(excerpt(melodies[i], 0, 14), transpose_st=-2, seed=i)
        sf.write(person / f"song{i:02d}.wav", audio, 8000, subtype="PCM_U8")
    report = tmp_path / "r.json"
    assert main(["eval", "mirqbsh", str(corpus), "--db", str(db), "--report", str(report),
                 "--quiet"]) == 0
    data = json.loads(report.read_text())
    assert data["settings"]["from_start"] is True
    assert data["metrics"]["Top-1"] == 1.0


@pytest.mark.parametrize("case", ["missing", "corrupt", "empty", "silent", "short", "long",
                                  "no_db"])
def test_bad_queries_exit_2_with_one_line(case: str, db: Path, tmp_path: Path) -> None:
    path = tmp_path / "q.wav"
    if case == "corrupt":
        path.write_bytes(b"RIFF\x00\x00garbage" * 10)
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "silent":
        sf.write(path, np.zeros(SAMPLE_RATE * 3, np.float32), SAMPLE_RATE)
    elif case == "short":
        sf.write(path, sing([(60, 1.0), (62, 1.0)])[: SAMPLE_RATE], SAMPLE_RATE)
    elif case == "long":
        sf.write(path, 0.1 * np.sin(np.arange(8000 * 301) * 0.3), 8000)
    elif case == "no_db":
        sf.write(path, sing([(60, 2.0), (62, 2.0), (64, 2.0)]), SAMPLE_RATE)
    db_arg = str(tmp_path / "no-such-db") if case == "no_db" else str(db)
    proc = subprocess.run([sys.executable, "-m", "humdex", "search", str(path), "--db", db_arg],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("humdex: error: "), proc.stderr
    assert "Traceback" not in proc.stderr


def test_compare_locates_the_query_in_the_song(song_dir: Path, melodies: list, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    query = tmp_path / "hum.wav"
    sf.write(query, sing(excerpt(melodies[4], 10, 12), transpose_st=4), SAMPLE_RATE)
    start_s = sum(beats for _, beats in melodies[4][:10]) * 0.5  # 120 bpm
    end_s = start_s + sum(beats for _, beats in excerpt(melodies[4], 10, 12)) * 0.5
    plot = tmp_path / "align.png"
    assert main(["compare", str(query), str(song_dir / "song04.mid"), "--json",
                 "--plot", str(plot)]) == 0
    same = json.loads(capsys.readouterr().out)
    assert abs(same["start_s"] - start_s) < 1.0 and abs(same["end_s"] - end_s) < 1.0
    assert abs(same["key_st"] + 4) < 0.75  # the song is 4 st below the query
    assert plot.stat().st_size > 10_000
    assert main(["compare", str(query), str(song_dir / "song08.mid"), "--json"]) == 0
    other = json.loads(capsys.readouterr().out)
    assert other["score"] < same["score"]


def test_demo_excerpts_come_from_anywhere_or_from_the_first_note() -> None:
    from humdex.demo import EXCERPT_S
    from humdex.demo import excerpt as demo_excerpt
    from humdex.frontend.melody import Note

    notes = [Note(1.5 + 0.5 * i, 0.45, 60 + i % 7) for i in range(80)]  # 41.5 s, first note at 1.5 s
    starts = set()
    for seed in range(20):
        rng = np.random.default_rng(seed)
        passage, start_s = demo_excerpt(notes, rng)
        starts.add(start_s)
        assert passage[0].onset_s == 0.0 and passage[-1].onset_s < EXCERPT_S[1]
        first, first_start = demo_excerpt(notes, np.random.default_rng(seed), from_start=True)
        assert first_start == 1.5 and first[0].pitch_midi == 60 and first[0].onset_s == 0.0
    assert len(starts) > 5  # from anywhere: many different starts


def test_every_subcommand_parses_in_cli_and_a_search_loads_no_heavy_library() -> None:
    """Argument parsers live in cli.py; parsing `search` imports neither numpy, torch nor fastapi
    (the CLI sets native thread settings before they load: settings.configure_native_runtime),
    nor numba, nor humdex.cluster (the --ray options of index/add: 25 ms of a cold search)."""
    code = ("import sys\n"
            "from humdex.cli import build_parser\n"
            "args = build_parser('search').parse_args(['search', 'q.wav', '--db', 'd'])\n"
            "assert args.func.__name__ == 'cmd_search'\n"
            "print(sorted(m for m in ('numpy', 'torch', 'fastapi', 'numba', 'humdex.cluster')\n"
            "             if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    from humdex.cli import build_parser

    parser = build_parser()
    commands = {"index": ["index", "x", "--db", "d"], "serve": ["serve", "--db", "d"],
                "synth": ["synth", "queries", "a.mid", "--out", "o"], "train": ["train", "c", "--out", "o"],
                "mine": ["mine", "g.csv", "--out", "o"], "mine-hums": ["mine-hums", "q.tsv", "--songs", "s", "--out", "o"],
                "selftrain": ["selftrain", "h", "--groups", "g.csv", "--out", "o"],
                "chad": ["chad", "validate", "m.csv"], "review": ["review", "f"], "eval": ["eval", "--db", "d"],
                "demo": ["demo"], "milvus-server": ["milvus-server", "--data", "d"]}
    for name, argv in commands.items():
        args = parser.parse_args(argv)
        assert args.func.__module__ == "humdex.cli", name
    src = Path(__file__).resolve().parents[1] / "src" / "humdex"
    elsewhere = [str(p.relative_to(src)) for p in src.rglob("*.py")
                 if p.name != "cli.py" and "add_argument(" in p.read_text()]
    assert elsewhere == []


def test_ray_flag_without_ray_is_a_one_line_error(monkeypatch, song_dir, tmp_path, capsys) -> None:
    """`--ray` where Ray is not installed: one line naming the extra, nothing created or mined."""
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    hint = "humdex: error: --ray needs Ray on this machine: pip install 'humdex[ray]'"
    assert main(["index", str(song_dir), "--db", str(tmp_path / "db"), "--ray"]) == 2
    assert capsys.readouterr().err.strip() == hint
    assert not (tmp_path / "db").exists()
    (tmp_path / "groups.csv").write_text(f"group_id,role,path\ng1,original,{song_dir}/song00.mid\n"
                                         f"g1,cover,{song_dir}/song01.mid\n")
    assert main(["mine", str(tmp_path / "groups.csv"), "--out", str(tmp_path / "mined"), "--ray"]) == 2
    assert capsys.readouterr().err.strip() == hint
    assert not (tmp_path / "mined" / "metadata.csv").exists()
