"""Catalog on disk: add, update, remove, reopen, crash safety, concurrency."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from conftest import random_melody, write_midi
from humdex.catalog.catalog import MANIFEST_NAME, Catalog
from humdex.errors import CatalogError, HumdexError


def test_index_reopen_roundtrip(song_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "db"
    catalog = Catalog.open(db, create=True)
    report = catalog.add_files([song_dir], progress=False)
    assert sorted(report.added) == [f"song{i:02d}" for i in range(12)]
    reopened = Catalog.open(db)
    assert [s.song_id for s in reopened.songs()] == [s.song_id for s in catalog.songs()]
    for song in catalog.songs():
        a, b = catalog.melody(song.song_id), reopened.melody(song.song_id)
        np.testing.assert_allclose(a.midi, b.midi, atol=0.05)  # float16 on disk
        assert song.kind == "midi" and song.duration_s > 10


def test_reindex_does_no_work_twice(song_dir: Path, tmp_path: Path) -> None:
    catalog = Catalog.open(tmp_path / "db", create=True)
    catalog.add_files([song_dir], progress=False)
    generation = catalog.snapshot().generation
    again = catalog.add_files([song_dir], progress=False)
    assert again.added == [] and len(again.unchanged) == 12
    assert catalog.snapshot().generation == generation  # nothing rewritten


def test_recording_reindexed_with_another_tracker_is_tracked_again(song_dir: Path, tmp_path: Path,
                                                                   melodies) -> None:
    """How a recording's melody was extracted is part of its stamp: the same file indexed with
    another --pitch (or --separate) is re-tracked, a MIDI file is not."""
    import soundfile as sf

    from conftest import sing
    from humdex.frontend.audio import SAMPLE_RATE

    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(audio / "sung.wav", sing(melodies[0][:8]), SAMPLE_RATE)
    catalog = Catalog.open(tmp_path / "db", create=True)
    catalog.add_files([audio, song_dir / "song01.mid"], progress=False)
    assert catalog.add_files([audio], progress=False).unchanged == ["sung"]
    again = catalog.add_files([audio, song_dir / "song01.mid"], progress=False, pitch_method="pyin")
    assert again.added == ["sung"] and again.unchanged == ["song01"]
    assert catalog.song("sung").stamp.endswith(":pitch=pyin")


def test_changed_file_is_reindexed(song_dir: Path, tmp_path: Path) -> None:
    catalog = Catalog.open(tmp_path / "db", create=True)
    catalog.add_files([song_dir], progress=False)
    before = catalog.melody("song03").midi.copy()
    write_midi(song_dir / "song03.mid", random_melody(np.random.default_rng(99)))
    os.utime(song_dir / "song03.mid", ns=(1, 10**18))  # a new mtime even on coarse clocks
    report = catalog.add_files([song_dir / "song03.mid"], progress=False)
    assert report.added == ["song03"]
    after = catalog.melody("song03").midi
    assert len(after) != len(before) or not np.allclose(after, before, equal_nan=True)
    assert len(catalog) == 12


def test_remove_and_unknown_id(song_dir: Path, tmp_path: Path) -> None:
    catalog = Catalog.open(tmp_path / "db", create=True)
    catalog.add_files([song_dir], progress=False)
    catalog.remove(["song00", "song05"])
    assert len(Catalog.open(tmp_path / "db")) == 10
    with pytest.raises(CatalogError, match="nope"):
        catalog.remove(["song01", "nope"])
    assert len(Catalog.open(tmp_path / "db")) == 10  # unchanged, song01 still there


def test_bad_files_are_reported_and_good_ones_added(song_dir: Path, tmp_path: Path) -> None:
    (song_dir / "broken.mid").write_bytes(b"this is not midi")
    (song_dir / "empty.wav").write_bytes(b"")
    catalog = Catalog.open(tmp_path / "db", create=True)
    report = catalog.add_files([song_dir], progress=False)
    assert len(report.added) == 12
    assert {Path(p).name for p, _ in report.failed} == {"broken.mid", "empty.wav"}


def test_duplicate_song_id_from_another_file_is_refused(song_dir: Path, tmp_path: Path) -> None:
    catalog = Catalog.open(tmp_path / "db", create=True)
    catalog.add_files([song_dir], progress=False)
    other = tmp_path / "other"
    other.mkdir()
    write_midi(other / "song01.mid", random_melody(np.random.default_rng(7)))
    report = catalog.add_files([other], progress=False)
    assert report.added == [] and "already used" in report.failed[0][1]


def test_manifest_sets_ids_and_titles(song_dir: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,song_id,title,artist\n"
                        f"{song_dir / 'song02.mid'},twinkle,Twinkle Twinkle,Trad.\n")
    catalog = Catalog.open(tmp_path / "db", create=True)
    catalog.add_files([song_dir / "song02.mid"], manifest=manifest, progress=False)
    song = catalog.song("twinkle")
    assert (song.title, song.artist) == ("Twinkle Twinkle", "Trad.")


def test_missing_and_corrupt_catalog(tmp_path: Path, song_dir: Path) -> None:
    with pytest.raises(CatalogError, match="no humdex catalog"):
        Catalog.open(tmp_path / "nothing")
    db = tmp_path / "db"
    Catalog.open(db, create=True).add_files([song_dir], progress=False)
    manifest = json.loads((db / MANIFEST_NAME).read_text())
    (db / manifest["files"]["data"]).write_bytes(b"garbage")
    with pytest.raises(CatalogError, match="corrupt"):
        Catalog.open(db)
    (db / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(CatalogError, match="corrupt"):
        Catalog.open(db)


def test_crash_while_writing_leaves_previous_catalog(song_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "db"
    catalog = Catalog.open(db, create=True)
    catalog.add_files([song_dir / "song00.mid"], progress=False)

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("humdex.catalog.catalog.np.savez", crash)
    with pytest.raises(OSError):
        catalog.add_files([song_dir], progress=False)
    monkeypatch.undo()
    reopened = Catalog.open(db)
    assert [s.song_id for s in reopened.songs()] == ["song00"]
    assert not [p for p in db.iterdir() if p.name.endswith(".tmp")]


def test_no_song_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(HumdexError, match="no song files"):
        Catalog.open(tmp_path / "db", create=True).add_files([tmp_path], progress=False)


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    folders = []
    for w in range(4):
        folder = tmp_path / f"batch{w}"
        folder.mkdir()
        for i in range(5):
            write_midi(folder / f"w{w}s{i}.mid", random_melody(rng, 20))
        folders.append(folder)
    db = tmp_path / "db"
    Catalog.open(db, create=True)
    errors: list[BaseException] = []

    def add(folder: Path) -> None:
        try:  # each thread its own Catalog object, as separate server workers would have
            Catalog.open(db).add_files([folder], progress=False)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=add, args=(f,)) for f in folders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(Catalog.open(db)) == 20


def test_stored_matcher_references_follow_adds_and_removes(song_dir: Path, tmp_path: Path) -> None:
    from humdex.classical.references import ReferenceSet

    db = tmp_path / "db"
    catalog = Catalog.open(db, create=True)
    catalog.add_files([song_dir / f"song{i:02d}.mid" for i in range(6)], progress=False)
    catalog.remove(["song02"])
    catalog.add_files([song_dir], progress=False)
    snap = Catalog.open(db).snapshot()
    stored = snap.references()
    rebuilt = ReferenceSet.from_contours(list(snap.melodies))
    assert len(stored) == len(snap.songs) == 12
    np.testing.assert_array_equal(stored.offsets, rebuilt.offsets)
    np.testing.assert_allclose(stored.midi, rebuilt.midi, atol=0.05)


def test_pitch_files_are_songs_too(tmp_path: Path, melodies: list) -> None:
    """A melody extracted by another tool (.pv, or a time_s,f0_hz CSV export) indexes like MIDI."""
    folder = tmp_path / "melodies"
    folder.mkdir()
    frames = [p for p, beats in melodies[0] for _ in range(int(beats * 0.5 / 0.032))]
    (folder / "first.pv").write_text("\n".join(f"{p:.1f}" for p in frames))
    f0_hz = [440 * 2 ** ((p - 69) / 12) for p, beats in melodies[1] for _ in range(int(beats * 50))]
    (folder / "second.csv").write_text(
        "\n".join(f"{i * 0.01:.2f},{f:.2f}" for i, f in enumerate(f0_hz)))
    catalog = Catalog.open(tmp_path / "db", create=True)
    report = catalog.add_files([folder], progress=False)
    assert sorted(report.added) == ["first", "second"]
    assert {s.kind for s in catalog.songs()} == {"pitch"}
    expected_s = sum(b for _, b in melodies[1]) * 0.5
    assert abs(catalog.song("second").duration_s - expected_s) < 0.1


def test_a_recordings_melody_is_the_same_before_and_after_reopening(tmp_path: Path, melodies) -> None:
    """The indexing process holds the melody at the precision the data file stores (float16), so
    what it fingerprints and matches is what a later process (a resumed `index`) reads back."""
    import soundfile as sf

    from conftest import sing
    from humdex.frontend.audio import SAMPLE_RATE

    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(audio / "sung.wav", sing(melodies[0][:12]), SAMPLE_RATE)
    catalog = Catalog.open(tmp_path / "db", create=True)
    catalog.add_files([audio], progress=False)
    held, read_back = catalog.melody("sung").midi, Catalog.open(tmp_path / "db").melody("sung").midi
    assert np.isfinite(held).sum() > 100 and not np.allclose(held[np.isfinite(held)] % 1, 0)
    np.testing.assert_array_equal(held, read_back)
