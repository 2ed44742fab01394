"""Learned search over a catalog with the shipped model: stores beside the catalog, sync, search, CLI flag."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from humdex.learned.model import default_model_path

pytestmark = pytest.mark.skipif(not default_model_path("short").is_file(), reason="no shipped model")


def write_f0_csv(path: Path, melody, start_beat: float, n_beats: float, bpm: float = 120.0,
                 transpose: float = 0.0) -> Path:
    """The melody's pitch from start_beat for n_beats as a time_s,f0_hz CSV (10 ms hop)."""
    beat_s = 60.0 / bpm
    midi = np.concatenate([np.full(round(b * beat_s * 100), p + transpose) for p, b in melody])
    seg = midi[int(start_beat * beat_s * 100): int((start_beat + n_beats) * beat_s * 100)]
    rows = [f"{i * 0.01:.2f},{440 * 2 ** ((m - 69) / 12):.2f}" for i, m in enumerate(seg)]
    path.write_text("time_s,f0_hz\n" + "\n".join(rows) + "\n")
    return path


def test_learned_search_finds_the_song_and_keeps_stores_in_step(tmp_path, song_dir, melodies) -> None:
    from humdex.catalog.catalog import Catalog
    from humdex.learned.search import LEARNED_DIR
    from humdex.search import load_query, search

    catalog = Catalog.open(tmp_path / "db", create=True)
    catalog.add_files([song_dir], progress=False)
    query = load_query(write_f0_csv(tmp_path / "q.csv", melodies[5], 8, 16, transpose=3.0))
    result = search(query, catalog, top=5, method="learned")
    assert [h.song_id for h in result.hits][:3].count("song05") == 1
    assert result.hits[0].score <= 1.0 and result.hits[0].start_s is not None
    stores = list((tmp_path / "db" / LEARNED_DIR).iterdir())
    assert len(stores) == 1 and (stores[0] / "vectors.npz").is_file()
    catalog.remove(["song05"])
    again = search(query, catalog, top=5, method="learned")
    assert "song05" not in [h.song_id for h in again.hits]
    catalog.add_files([song_dir / "song05.mid"], progress=False)  # back: the store follows again
    assert "song05" in [h.song_id for h in search(query, catalog, top=5, method="learned").hits]
    hybrid = search(query, catalog, top=5, method="hybrid")
    assert all(0.0 <= h.score <= 1.0 for h in hybrid.hits)


def test_learned_search_finds_a_query_hummed_much_faster(tmp_path, song_dir, melodies) -> None:
    """The query is stretched to several tempo scales before fingerprinting: a hum at 1.6x the
    song's tempo (beyond what the model or the rerank's +-25 % absorb) is found, and the matched
    song span is 1.6x the query's length."""
    from humdex.catalog.catalog import Catalog
    from humdex.search import load_query, search

    catalog = Catalog.open(tmp_path / "db", create=True)
    catalog.add_files([song_dir], progress=False)
    query = load_query(write_f0_csv(tmp_path / "q.csv", melodies[7], 4, 20, bpm=192.0, transpose=-5.0))
    hit = search(query, catalog, top=3, method="learned").hits[0]
    assert hit.song_id == "song07"
    assert 1.35 < (hit.end_s - hit.start_s) / query.contour.duration_s < 1.85
    assert abs(hit.start_s - 4 * 0.5) <= 1.0  # beat 4 at 120 bpm; songs are indexed every 0.5 s


def test_cli_search_method_flag(tmp_path, song_dir, melodies, capsys) -> None:
    from humdex.cli import main

    assert main(["index", str(song_dir), "--db", str(tmp_path / "db"), "--quiet"]) == 0
    capsys.readouterr()
    q = write_f0_csv(tmp_path / "q.csv", melodies[2], 0, 16)
    assert main(["search", str(q), "--db", str(tmp_path / "db"), "--method", "learned", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["results"][0]["song_id"] == "song02"
    assert answer["method"] == "learned"


def test_auto_method_is_hybrid_for_melody_and_audio_catalogs(tmp_path, song_dir, melodies) -> None:
    import soundfile as sf

    from conftest import sing
    from humdex.catalog.catalog import Catalog
    from humdex.frontend.audio import SAMPLE_RATE
    from humdex.nomatch import config_for
    from humdex.search import load_query, resolve_method, search

    catalog = Catalog.open(tmp_path / "db", create=True)
    catalog.add_files([song_dir], progress=False)  # MIDI only -> hybrid: DTW scores in [0, 1]
    query = load_query(write_f0_csv(tmp_path / "q.csv", melodies[1], 4, 16))
    result = search(query, catalog, top=3)
    assert result.method == "hybrid" and result.to_json()["method"] == "hybrid"
    assert result.hits[0].song_id == "song01" and 0.0 <= result.hits[0].score <= 1.0
    assert (tmp_path / "db" / "learned").is_dir()
    from_start = search(query, catalog, top=3, from_start=True)  # the DTW weighs more: its own rule
    assert from_start.rule == config_for("hybrid", from_start=True) != result.rule
    audio = tmp_path / "audio"
    audio.mkdir()
    for i in range(13):  # more audio songs than MIDI ones: hybrid still (records measured best so)
        sf.write(audio / f"sung{i:02d}.wav", sing(melodies[i % 12], seed=i), SAMPLE_RATE)
    catalog.add_files([audio], progress=False)
    assert catalog.snapshot().mostly_audio and resolve_method(catalog.snapshot()) == "hybrid"
    on_records = search(query, catalog, top=3)
    assert on_records.method == "hybrid" and on_records.rule == config_for("hybrid", audio_catalog=True)
    assert result.rule == config_for("hybrid")  # the MIDI catalog's rule before the audio came
    learned = search(query, catalog, top=3, method="learned")  # records rules for every method
    assert learned.method == "learned" and learned.rule == config_for("learned", audio_catalog=True)
    assert search(query, catalog, top=3, method="classical").rule == config_for("classical", audio_catalog=True)
    with pytest.raises(ValueError, match="unknown search method"):
        resolve_method(catalog.snapshot(), "dtw")


@pytest.mark.parametrize("kinds, performed", [(("midi", "midi", "pitch"), False), (("pitch", "pitch", "midi"), True),
                                               (("audio", "pitch", "score"), True), (("score",), False)])
def test_queries_take_tempo_scales_only_against_written_melodies(kinds, performed) -> None:
    """MIDI files and scores are written at any tempo: a hum is searched at several tempo scales.
    Recordings and pitch files (tracked from recordings) are performances: at the hum's own."""
    from humdex.catalog.catalog import Snapshot, Song
    from humdex.learned.search import QUERY_SCALES, LearnedConfig, query_scales_for

    songs = tuple(Song(f"s{i}", None, None, f"s{i}", kind, 10.0, "1:2") for i, kind in enumerate(kinds))
    snap = Snapshot(1, songs, (), "faiss")
    assert snap.mostly_performed == performed
    assert query_scales_for(snap, LearnedConfig()) == ((1.0,) if performed else QUERY_SCALES)
    assert query_scales_for(snap, LearnedConfig(query_scales=(0.5, 1.0))) == (0.5, 1.0)


def test_hybrid_scanning_only_the_learned_candidates_keeps_each_songs_scores(tmp_path, song_dir,
                                                                             melodies) -> None:
    """Above config.full_scan_songs the classical stage scans only the learned candidates. A
    song's DTW score depends on that song alone, so the scanned songs keep the scores of the full
    scan (other songs' best windows may flip between near ties); a wrong mapping back to
    catalog rows would pin another song's DTW score on it."""
    from dataclasses import replace

    from humdex.catalog.catalog import Catalog
    from humdex.hybrid import hybrid_search
    from humdex.learned.search import default_config, learned_search
    from humdex.search import load_query

    catalog = Catalog.open(tmp_path / "db", create=True)
    catalog.add_files([song_dir], progress=False)
    snap = catalog.snapshot()
    # 24 beats: in a 12-song catalog the k-NN votes of a 16-beat query rank the song about 8th
    # (the longest tempo scales gather votes from every song; in float it made the 8, in int8
    # not), and this test needs it among the 8 candidates
    query = load_query(write_f0_csv(tmp_path / "q.csv", melodies[2], 0, 24))
    # a melody catalog: one DTW weight in both modes (dtw_weight_for), so the union's scores
    # compare the DTW scores themselves
    config = replace(default_config(), n_candidates=8, dtw_candidates=3)

    def search(method: str, full_scan_songs: int = 0) -> dict:
        ranked = hybrid_search if method == "hybrid" else learned_search
        rows = ranked(None, 0, query.contour, catalog.db_dir, snap, top=12,
                      config=replace(config, full_scan_songs=full_scan_songs))
        return {song: (score, start, end) for song, score, start, end in rows}

    full, scanned, learned = search("hybrid", 100), search("hybrid"), search("learned")
    assert len(learned) == 8 and len(full) == len(snap.songs) == 12
    song = snap.index_of("song02")
    assert song in learned and max(scanned, key=lambda s: scanned[s][0]) == song
    # scanned both times: the same DTW score and span (up to FFT rounding in stage 1's key)
    assert scanned[song] == pytest.approx(full[song], rel=0.01)


def test_hybrid_fuses_from_start_queries_with_their_own_weight(tmp_path, song_dir, melodies) -> None:
    """A query sung from the start is fused with config.dtw_weight_from_start, one from anywhere
    with config.dtw_weight: each weight alone decides its mode's scores (w * DTW + (1 - w) * learned)."""
    from dataclasses import replace

    from humdex.catalog.catalog import Catalog
    from humdex.hybrid import hybrid_search, weighted_union
    from humdex.learned.search import default_config
    from humdex.search import load_query

    catalog = Catalog.open(tmp_path / "db", create=True)
    catalog.add_files([song_dir], progress=False)
    snap = catalog.snapshot()
    query = load_query(write_f0_csv(tmp_path / "q.csv", melodies[4], 0, 12)).contour

    def scores(from_start: bool, **weights) -> dict[int, float]:
        rows = hybrid_search(None, 0, query, catalog.db_dir, snap, top=12, from_start=from_start, config=replace(default_config(), **weights))
        return {row[0]: row[1] for row in rows}

    dtw = scores(True, dtw_weight_from_start=1.0, dtw_weight=0.0)
    learned = scores(True, dtw_weight_from_start=0.0, dtw_weight=1.0)
    mixed = scores(True, dtw_weight_from_start=0.8, dtw_weight=0.0)
    assert max(dtw, key=dtw.get) == max(mixed, key=mixed.get) == snap.index_of("song04")
    low_d, low_l = min(dtw.values()), min(learned.values())
    for song, score in mixed.items():
        assert score == pytest.approx(0.8 * dtw.get(song, low_d) + 0.2 * learned.get(song, low_l), abs=1e-6)
    assert scores(False, dtw_weight=1.0, dtw_weight_from_start=0.0) != scores(False, dtw_weight=0.0,
                                                                              dtw_weight_from_start=1.0)
    trace: dict = {}  # what benchmarks/hybrid_lists.py records: the union's own inputs
    rows = hybrid_search(None, 0, query, catalog.db_dir, snap, top=12, from_start=True, trace=trace)
    assert trace["dtw_weight"] == default_config().dtw_weight_from_start
    assert rows == weighted_union(trace["dtw"], trace["learned"], trace["dtw_weight"])[:12]


def test_classical_stage_adds_the_learned_candidates_its_scan_missed(tmp_path, song_dir, melodies) -> None:
    """The scan that runs beside the learned search, plus a DTW of the learned candidates it did
    not pick, scores the same songs as one matcher call with those candidates forced in."""
    from dataclasses import replace

    from humdex.catalog.catalog import Catalog
    from humdex.hybrid import classical_stage, dtw_rows, with_classical_scan
    from humdex.learned.search import default_config
    from humdex.search import load_query

    catalog = Catalog.open(tmp_path / "db", create=True)
    catalog.add_files([song_dir], progress=False)
    refs = catalog.snapshot().references()
    contour = load_query(write_f0_csv(tmp_path / "q.csv", melodies[3], 2, 16, transpose=-4.0)).contour
    config = replace(default_config(), classical_candidates=2, classical_part_candidates=0, dtw_candidates=4)
    learned_rows = [11, 10, 3, 0, 5]  # the last one is beyond dtw_candidates: not scored
    result, scanned = with_classical_scan(contour, refs, False, config, lambda: "learned")
    assert result == "learned" and scanned is not None and len(scanned) == 2
    rows = classical_stage(contour, refs, learned_rows, False, config, scanned)
    one_pass = dtw_rows(contour, refs, False, 2, also=np.array(learned_rows[:4]))
    assert sorted(r[0] for r in rows) == sorted(r[0] for r in one_pass)
    assert rows[0][0] == one_pass[0][0] == 3 and rows[0][1] == pytest.approx(one_pass[0][1], rel=0.01)
    assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)


def test_above_full_scan_the_classical_stage_picks_from_the_best_voted_pool(tmp_path, song_dir,
                                                                             melodies) -> None:
    """On a catalog above full_scan_songs the classical FFT stage picks among the reranked
    learned candidates and the best-voted pool: a song only in the pool is found by DTW, and
    without the pool it is not scored at all."""
    from dataclasses import replace

    from humdex.catalog.catalog import Catalog
    from humdex.hybrid import classical_stage
    from humdex.learned.search import default_config
    from humdex.search import load_query

    catalog = Catalog.open(tmp_path / "db", create=True)
    catalog.add_files([song_dir], progress=False)
    refs = catalog.snapshot().references()
    contour = load_query(write_f0_csv(tmp_path / "q.csv", melodies[3], 2, 16, transpose=-4.0)).contour
    config = replace(default_config(), pooled_candidates=2, dtw_candidates=2, full_scan_songs=4,
                     dtw_pool=3)
    learned_rows = [11, 10]  # the reranked candidates miss song 3
    without = classical_stage(contour, refs, learned_rows, False, config)
    assert 3 not in [r[0] for r in without]
    rows = classical_stage(contour, refs, learned_rows, False, config, pool=[0, 3, 5, 7])
    assert rows[0][0] == 3  # the pool's song 3, picked by the FFT stage, wins the DTW
    beyond = classical_stage(contour, refs, learned_rows, False, config, pool=[0, 5, 7, 3])
    assert 3 not in [r[0] for r in beyond]  # only the first dtw_pool of the pool count
    unpooled = classical_stage(contour, refs, learned_rows, False,
                               replace(config, pooled_candidates=0, classical_candidates=4), pool=[0, 3, 5, 7])
    assert 3 not in [r[0] for r in unpooled]  # the pool sends pooled_candidates, not classical_candidates


def test_search_store_reports_the_best_voted_songs(tmp_path) -> None:
    """search_store appends the n_voted best-voted song keys to `voted`, the reranked ones among them."""
    from humdex.learned.fingerprints import search_store
    from humdex.learned.stores import FaissStore

    rng = np.random.default_rng(2)
    seqs = [rng.normal(size=(20, 128)).astype(np.float32) for _ in range(12)]
    seqs = [s / np.linalg.norm(s, axis=1, keepdims=True) for s in seqs]
    store = FaissStore(dim=128)
    store.add([f"s{i}" for i in range(12)], seqs)
    voted: list[str] = []
    top = search_store(store, seqs[4][3:12], hop_s=0.5, top=3, n_candidates=5, voted=voted, n_voted=8)
    assert top[0].song_key == "s4" and voted[0] == "s4" and len(voted) == 8 == len(set(voted))
    assert {m.song_key for m in top} <= set(voted[:5])


@pytest.mark.skipif(not default_model_path("long").is_file(), reason="no shipped M_long")
def test_fused_short_and_long_models_find_the_song(tmp_path, song_dir, melodies) -> None:
    """M_fused: the shipped M_short and M_long each search their own store, scores are fused."""
    from dataclasses import replace

    from humdex.catalog.catalog import Catalog
    from humdex.learned.search import LEARNED_DIR, default_config, learned_search
    from humdex.search import load_query

    catalog = Catalog.open(tmp_path / "db", create=True)
    catalog.add_files([song_dir], progress=False)
    snap = catalog.snapshot()
    query = load_query(write_f0_csv(tmp_path / "q.csv", melodies[4], 4, 20, transpose=-2.0))
    config = replace(default_config(), models=("short", "long"))
    rows = learned_search(None, 0, query.contour, catalog.db_dir, snap, top=3, config=config)
    assert snap.songs[rows[0][0]].song_id == "song04"
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "db" / LEARNED_DIR).iterdir()) == ["long", "short"]


def test_a_cqt_model_reads_audio_songs_cqt_and_plays_melodies_as_tones(tmp_path, song_dir, melodies,
                                                                        monkeypatch) -> None:
    """A CQT encoder (small, untrained: an excerpt of a song still lines up with the song)."""
    from dataclasses import replace

    import soundfile as sf
    import torch

    import humdex.learned.model as model_module
    from conftest import sing
    from humdex.catalog.catalog import Catalog
    from humdex.frontend.audio import SAMPLE_RATE, load
    from humdex.learned import search as learned
    from humdex.learned import shipped as shipped_module
    from humdex.learned.features import cqt_features
    from humdex.learned.fingerprints import fingerprint_contour, fingerprint_frames
    from humdex.learned.model import Encoder, ModelConfig, save_checkpoint

    torch.manual_seed(0)
    save_checkpoint(tmp_path / "cqt.pt", Encoder(ModelConfig(feature="cqt", n_bins=84, base_channels=8)))
    shipped = model_module.default_model_path
    for module in (model_module, shipped_module):  # shipped.model_path calls its own
        monkeypatch.setattr(module, "default_model_path",
                            lambda name="short": tmp_path / "cqt.pt" if name == "cqt" else shipped(name))
    audio_dir = tmp_path / "audio"
    audio_dir.mkdir()
    for i in range(6):
        sf.write(audio_dir / f"sung{i:02d}.wav", sing(melodies[i], seed=i), SAMPLE_RATE)
    catalog = Catalog.open(tmp_path / "db", create=True)
    catalog.add_files([audio_dir, song_dir], progress=False)
    snap = catalog.snapshot()
    config = replace(learned.default_config(), models=("cqt",), query_scales=(1.0,))
    excerpt = load(audio_dir / "sung03.wav")[4 * SAMPLE_RATE:12 * SAMPLE_RATE]
    rows = learned.learned_search(excerpt, SAMPLE_RATE, None, catalog.db_dir, snap, top=3, config=config)
    assert snap.songs[rows[0][0]].song_id == "sung03"
    handle = learned.model_handle("cqt")
    model = handle.encoder
    assert handle.feature == "cqt" and handle.path == (tmp_path / "cqt.pt").resolve()
    store = learned.sync_store(catalog.db_dir, snap, handle, 0.5)
    for song, melody in zip(snap.songs, snap.melodies):  # stored in float16
        got = store.sequence(learned.song_key(song.song_id, song.stamp))
        from_melody = fingerprint_contour(model, melody, 0.5)
        if song.kind == "audio":
            from_audio = fingerprint_frames(model, cqt_features(load(song.source), SAMPLE_RATE), 0.5)
            np.testing.assert_allclose(got, from_audio, atol=1e-3)
            # an untrained encoder's outputs sit close together: the melody's are still 10x further
            assert got.shape != from_melody.shape or \
                np.abs(got - from_melody).max() > 10 * np.abs(got - from_audio).max()
        else:
            np.testing.assert_allclose(got, from_melody, atol=1e-3)


def test_int8_and_float_fingerprints_live_in_separate_stores(tmp_path, song_dir, melodies, monkeypatch) -> None:
    """The shipped model runs in int8 on the CPU; HUMDEX_INT8=0 runs it in float. Song fingerprints
    differ slightly between the two, so each precision keeps its own store, and both find the song."""
    from humdex.catalog.catalog import Catalog
    from humdex.learned.search import LEARNED_DIR
    from humdex.search import load_query, search

    catalog = Catalog.open(tmp_path / "db", create=True)
    catalog.add_files([song_dir], progress=False)
    query = load_query(write_f0_csv(tmp_path / "q.csv", melodies[2], 4, 16, transpose=-2.0))
    found = {}
    for flag in ("1", "0"):
        monkeypatch.setenv("HUMDEX_INT8", flag)
        found[flag] = search(query, catalog, top=3, method="learned").hits
    names = sorted(p.name for p in (tmp_path / "db" / LEARNED_DIR).iterdir())
    assert len(names) == 2 and sum(n.endswith("-f32") for n in names) == 1
    assert found["1"][0].song_id == found["0"][0].song_id == "song02"
    assert found["1"][0].score != found["0"][0].score


def test_models_are_chosen_by_humdex_models_and_an_unknown_name_is_a_clear_error(tmp_path, song_dir,
                                                                                 monkeypatch, capsys) -> None:
    from humdex.cli import main
    from humdex.learned.search import default_config

    monkeypatch.setenv("HUMDEX_MODELS", "short, long")
    assert default_config().models == ("short", "long")
    monkeypatch.setenv("HUMDEX_MODELS", "bogus")
    assert main(["index", str(song_dir), "--db", str(tmp_path / "db")]) == 2
    assert "unknown default model 'bogus'" in capsys.readouterr().err
    assert not (tmp_path / "db").exists()  # nothing indexed


def test_a_model_file_a_user_trained_is_used_by_its_path(tmp_path, song_dir, melodies, monkeypatch, capsys) -> None:
    """HUMDEX_MODELS may name a .pt file (`humdex train --export`): the catalog fingerprints with
    it in a store named by its stem and weights, and the search finds the song with it."""
    from humdex.cli import main
    from humdex.learned.model import load_model, save_checkpoint
    from humdex.learned.search import LEARNED_DIR

    mine = tmp_path / "my_model.pt"
    save_checkpoint(mine, load_model(None, "short"), half=True)  # the shipped weights, as a user's file
    monkeypatch.setenv("HUMDEX_MODELS", str(mine))
    assert main(["index", str(song_dir), "--db", str(tmp_path / "db"), "--quiet"]) == 0
    (store,) = (tmp_path / "db" / LEARNED_DIR).iterdir()
    assert store.name.startswith("my_model-")
    capsys.readouterr()
    query = write_f0_csv(tmp_path / "q.csv", melodies[4], 4, 16, transpose=3.0)
    assert main(["search", str(query), "--db", str(tmp_path / "db"), "--method", "learned", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["song_id"] == "song04"
    monkeypatch.setenv("HUMDEX_MODELS", str(tmp_path / "missing.pt"))
    assert main(["search", str(query), "--db", str(tmp_path / "db"), "--method", "learned"]) == 2
    assert "model file not found" in capsys.readouterr().err


def test_the_shipped_cqt_model_finds_a_sung_song_in_an_audio_catalog(tmp_path, melodies) -> None:
    from dataclasses import replace

    import soundfile as sf

    from conftest import sing
    from humdex.catalog.catalog import Catalog
    from humdex.frontend.audio import SAMPLE_RATE
    from humdex.learned.search import default_config, learned_search

    audio_dir = tmp_path / "audio"
    audio_dir.mkdir()
    for i in range(8):
        sf.write(audio_dir / f"sung{i:02d}.wav", sing(melodies[i], seed=i), SAMPLE_RATE)
    catalog = Catalog.open(tmp_path / "db", create=True)
    catalog.add_files([audio_dir], progress=False)
    snap = catalog.snapshot()
    config = replace(default_config(), models=("cqt",))
    for i in (2, 5, 7):
        hum = sing(melodies[i], transpose_st=3.0, tempo=1.1, seed=99)  # another key, tempo and voice
        rows = learned_search(hum[2 * SAMPLE_RATE:14 * SAMPLE_RATE], SAMPLE_RATE, None, catalog.db_dir,
                              snap, top=3, config=config)
        assert snap.songs[rows[0][0]].song_id == f"sung{i:02d}"
