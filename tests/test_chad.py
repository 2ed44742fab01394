"""CHAD layout: writer/reader round trip, a real CHAD-style CSV, the synthetic corpus and `humdex synth`."""

from __future__ import annotations

import os

import numpy as np
import pytest

from humdex.errors import HumdexError
from humdex.synth.corpus import CorpusConfig, MelodyJob, collect_metadata, write_group
from humdex.synth.timemap import TimeMap
from humdex.training.chad import (
    FragmentRecord,
    load_fragment_audio,
    parse_interval,
    read_metadata,
    records_by_fragment,  # fmt: skip
    write_metadata,
    write_wav,
)

REAL_CHAD_CSV = """group_id,fragment_id,id,audio_type,youtube_id,interval,correlation,check_by_crowdsource,is_available,duration
12,3,1045,original,dQw4w9WgXcQ,"(12.5, 18.0)",,False,True,5.5
12,3,1046,cover,abcdEFGhijk,"(30.0, 35.75)",0.62,True,True,5.75
12,3,88001,humming,,"(0, 7.2)",,,True,7.2
"""


def test_reads_a_real_chad_csv(tmp_path):
    path = tmp_path / "chad.csv"
    path.write_text(REAL_CHAD_CSV)
    recs = read_metadata(path)
    assert [r.audio_type for r in recs] == ["original", "cover", "humming"]
    orig, cover, hum = recs
    assert orig.interval == (12.5, 18.0) and orig.correlation is None and orig.youtube_id == "dQw4w9WgXcQ"
    assert cover.correlation == pytest.approx(0.62) and cover.check_by_crowdsource is True
    assert hum.kind == "hum" and orig.kind == "song" and hum.time_map is None and hum.melody_id == ""
    assert orig.audio_path(tmp_path) == tmp_path / "fragments" / "12" / "3" / "1045.wav"
    groups = records_by_fragment(recs)
    assert list(groups) == [("12", "3")] and groups["12", "3"][0].audio_type == "original"


def test_round_trip_with_time_map_and_audio(tmp_path):
    tm = TimeMap([0.0, 0.5, 2.0], [10.0, 10.0, 11.5])
    rec = FragmentRecord("g1", "0", "g1_0_hum0", "humming", (0.0, 2.0), correlation=1.0,
                         check_by_crowdsource=False, is_available=True, duration=2.0, kind="whistle",
                         melody_id="essen/x", split="train", time_map=tm,
                         extra={"voice_type": "whistler", "score_interval": "(10.000, 11.500)"})  # fmt: skip
    write_metadata(tmp_path / "metadata.csv", [rec])
    (back,) = read_metadata(tmp_path / "metadata.csv")
    assert (back.group_id, back.fragment_id, back.id, back.kind, back.split) == ("g1", "0", "g1_0_hum0", "whistle", "train")
    assert np.allclose(back.time_map.as_array(), tm.as_array())
    assert back.extra["voice_type"] == "whistler" and back.interval == (0.0, 2.0)
    audio = (0.5 * np.sin(np.arange(32000) / 10.0)).astype(np.float32)
    write_wav(rec.audio_path(tmp_path), audio, 16000)
    loaded = load_fragment_audio(back, tmp_path)
    assert loaded.shape == audio.shape and np.max(np.abs(loaded - audio)) < 1e-4
    assert not [f for f in os.listdir(rec.audio_path(tmp_path).parent) if f.endswith(".tmp")]


def test_bad_rows_raise_user_errors(tmp_path):
    with pytest.raises(HumdexError):
        parse_interval("12.5 to 18")
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(HumdexError):
        read_metadata(path)
    with pytest.raises(HumdexError):
        read_metadata(tmp_path / "missing.csv")


def _job(index: int = 0) -> MelodyJob:
    pitches = np.array([60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72, 71, 69, 67, 65] * 2, float)
    onsets = np.arange(len(pitches)) * 0.45
    return MelodyJob(f"tr{index:06d}", "test/scale", "test", "train", onsets, np.full(len(pitches), 0.45),
                     pitches, seed=3, index=index)  # fmt: skip


@pytest.mark.slow
def test_corpus_group_is_written_in_chad_layout_and_resumes(tmp_path):
    config = CorpusConfig(queries_per_fragment=(1, 2), covers_per_group=(1, 1))
    seconds = write_group(tmp_path, _job(), config)
    assert seconds > 4.0
    meta = tmp_path / "meta" / "tr000000.csv"
    stamp = meta.stat().st_mtime_ns
    assert write_group(tmp_path, _job(), config) == pytest.approx(seconds, abs=0.01)  # resumed
    assert meta.stat().st_mtime_ns == stamp
    rows, songs = collect_metadata(tmp_path)
    recs = read_metadata(tmp_path / "metadata.csv")
    assert rows == len(recs) and songs == 1
    types = {r.audio_type for r in recs}
    assert {"original", "humming"} <= types
    for rec in recs:
        path = rec.audio_path(tmp_path)
        assert path.parent == tmp_path / "fragments" / rec.group_id / rec.fragment_id and path.is_file()
        audio = load_fragment_audio(rec, tmp_path)
        assert abs(len(audio) / 16000 - rec.duration) < 0.01
        assert rec.time_map.is_monotonic and rec.time_map.duration_s == pytest.approx(rec.duration, abs=0.011)
        if rec.audio_type == "humming":
            assert rec.interval[0] == 0.0 and rec.kind in ("hum", "whistle", "sing")
        else:
            assert rec.kind == "song" and rec.interval[1] > rec.interval[0]


def test_synth_queries_cli_writes_an_eval_list(tmp_path):
    from humdex.cli import build_parser
    from humdex.frontend.melody import Note, write_midi

    notes = [Note(i * 0.4, 0.4, 60.0 + (i * 5) % 12) for i in range(30)]
    write_midi(notes, tmp_path / "00007.mid")
    parser = build_parser("synth")
    args = parser.parse_args(["synth", "queries", str(tmp_path / "00007.mid"), "--out", str(tmp_path / "q"),
                              "--kinds", "hum,whistle", "--duration", "5", "--quiet"])  # fmt: skip
    assert args.func(args) == 0
    lines = (tmp_path / "q" / "queries.tsv").read_text().splitlines()
    assert [ln.split("\t")[1] for ln in lines] == ["00007", "00007"]
    for ln in lines:
        path = tmp_path / "q" / ln.split("\t")[0]
        import soundfile as sf

        assert sf.info(path).samplerate == 16000 and abs(sf.info(path).duration - 5.0) < 0.05


@pytest.mark.slow
def test_synth_corpus_cli_renders_resumes_and_counts_hours(tmp_path, capsys):
    from humdex.cli import build_parser
    from humdex.training.melody_pool import write_pool

    pitches = np.array([60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72, 71, 69, 67, 65], float)
    tunes = [{"corpus": "test", "source": "t.abc", "number": n, "title": f"t{n}", "onset": np.arange(16) * 0.5,
              "duration": np.full(16, 0.5), "pitch": pitches + n, "melody_id": f"test/t/{n}",
              "key": f"{n:016x}", "split": "train"} for n in range(3)]  # fmt: skip
    write_pool(tunes, tmp_path / "pool.npz")
    parser = build_parser("synth")
    argv = ["synth", "corpus", "--hours", "0.01", "--pool", str(tmp_path / "pool.npz"),
            "--out", str(tmp_path / "c"), "--quiet"]  # fmt: skip
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    recs = read_metadata(tmp_path / "c" / "metadata.csv")
    assert sum(r.duration for r in recs) >= 36.0 and {r.melody_id for r in recs} <= {f"test/t/{n}" for n in range(3)}
    assert all(r.audio_path(tmp_path / "c").is_file() for r in recs)
    capsys.readouterr()
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    assert "nothing new rendered" in capsys.readouterr().out
