"""benchmarks/stem_and_mix.py: a `--separate both` catalog from a stem catalog and a mix catalog
equals what `humdex index --separate both` makes of the same files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

_SPEC = importlib.util.spec_from_file_location(
    "stem_and_mix", Path(__file__).resolve().parents[1] / "benchmarks" / "stem_and_mix.py")
tool = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(tool)


def test_the_combined_catalog_is_what_index_both_makes(tmp_path, monkeypatch) -> None:
    import humdex.frontend.separation
    from humdex.catalog.catalog import Catalog
    from humdex.cli import main
    from humdex.training.chad import write_wav

    sr = 16000
    t = np.arange(4 * sr) / sr
    tune = 0.3 * np.sin(2 * np.pi * 220 * 2 ** (np.floor(t * 2) % 5 / 12) * t)
    write_wav(tmp_path / "songs" / "sung.wav", tune, sr)  # the stem keeps it: both melodies
    write_wav(tmp_path / "songs" / "flute.wav", tune / 3, sr)  # the stem loses it: the mix's alone

    def fake_separate(audio, sample_rate, **kw):  # a voice in the loud song, none in the quiet one
        return audio if np.abs(audio).max() > 0.2 else np.zeros_like(audio)

    monkeypatch.setattr(humdex.frontend.separation, "separate_vocals", fake_separate)
    for flag in ("spleeter", "none", "both"):
        assert main(["index", str(tmp_path / "songs"), "--db", str(tmp_path / flag), "--quiet",
                     "--separate", flag]) == 0
    assert tool.main(["--stem-db", str(tmp_path / "spleeter"), "--mix-db", str(tmp_path / "none"),
                      "--out", str(tmp_path / "combined"), "--check", "2"]) == 0
    made, combined = Catalog.open(tmp_path / "both"), Catalog.open(tmp_path / "combined")
    lengths = {}
    for song in made.songs():
        assert combined.song(song.song_id) == song
        np.testing.assert_array_equal(combined.melody(song.song_id).midi, made.melody(song.song_id).midi)
        lengths[song.song_id] = len(made.melody(song.song_id).midi) / len(
            Catalog.open(tmp_path / "none").melody(song.song_id).midi)
    assert lengths["flute"] == 1.0 and lengths["sung"] > 2.0
