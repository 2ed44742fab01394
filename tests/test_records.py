"""Records: sampled-instrument arrangements (fluidsynth) that carry the melody under a band."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from humdex.synth import Score
from humdex.synth.records import RecordConfig, arrange, render_record
from humdex.synth.sounds import CHORD_STYLES, DRUM_STYLES, HELDOUT, PROXY, SOUNDS, TRAIN, WIDE
from test_synth import score_pitch_at, tracked_midi, tune

SR = 16000
FULL_BAND = RecordConfig(chords_prob=1.0, bass_prob=1.0, counter_prob=0.0)


def low_fraction(audio: np.ndarray, below_hz: float = 150.0) -> float:
    spec = np.abs(np.fft.rfft(audio.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(len(audio), 1 / SR)
    return float(spec[(f > 30) & (f < below_hz)].sum() / spec.sum())


def test_a_record_has_accompaniment_beyond_the_melody():
    """The lead alone (an instrument at MIDI 60-76) has almost no energy below 150 Hz; the record's
    bass and kick put a real share there, and the band sounds where the lead rests."""
    score = Score.from_notes(tune())
    alone = render_record(score, np.random.default_rng(1), TRAIN, config=RecordConfig(
        chords_prob=0.0, bass_prob=0.0, counter_prob=0.0, lead_over_band_db=(60.0, 60.0)), vocal=False, produced=False)  # fmt: skip
    band = render_record(score, np.random.default_rng(1), TRAIN, config=FULL_BAND, vocal=False, produced=False)
    assert low_fraction(alone.audio) < 0.01
    assert low_fraction(band.audio) > 0.03
    intro = band.audio[: int(float(band.time_map.perf_s[1]) * SR)]  # before the lead's first note
    assert len(intro) > 0.4 * SR and np.sqrt(np.mean(intro**2)) > 0.003


@pytest.mark.parametrize("vocal", [False, True])
def test_the_tracked_melody_of_the_mix_follows_the_score(vocal: bool):
    """Tolerance: humdex's tracker (swift-f0) on the produced mix, octave errors forgiven, lies within
    a semitone of the transposed score on >= 60 % of the frames where the score has a note
    (band leakage, note edges and reverb tails take the rest)."""
    score = Score.from_notes(tune(2))
    config = RecordConfig(lead_over_band_db=(4.0, 8.0))
    for seed in (0, 2):
        r = render_record(score, np.random.default_rng(seed), HELDOUT, config=config, vocal=vocal)
        tracked = tracked_midi(r.audio)
        n = min(len(tracked), len(r.f0_midi))
        expected = score_pitch_at(score, r.time_map.score_at(np.arange(n) * 0.01))
        expected += r.info["transpose_st"] + r.info["detune_st"]
        ok = np.isfinite(expected) & np.isfinite(tracked[:n])
        assert ok.sum() > 800
        folded = np.abs((tracked[:n][ok] - expected[ok] + 6) % 12 - 6)
        assert np.mean(folded < 1.0) >= 0.6, f"seed {seed}: {np.mean(folded < 1.0):.2f} within 1 st"
        # the lead's own pitch (what a training target would use) is the score through the time map
        f0 = r.f0_midi[:n]
        both = np.isfinite(f0) & np.isfinite(expected)
        assert np.median(np.abs(f0[both] - expected[both])) < 0.35


def test_heldout_sound_differs_from_training_sound():
    assert TRAIN.soundfont_path != HELDOUT.soundfont_path
    assert not TRAIN.programs() & HELDOUT.programs()
    assert not (set(TRAIN.chord_styles) & set(HELDOUT.chord_styles))
    assert set(TRAIN.drum_styles) & set(HELDOUT.drum_styles) == {"none"}
    assert set(TRAIN.chord_styles + HELDOUT.chord_styles) == set(CHORD_STYLES)
    assert set(TRAIN.drum_styles + HELDOUT.drum_styles) == set(DRUM_STYLES)
    score = Score.from_notes(tune())
    for name, sound in SOUNDS.items():
        arr = arrange(score, np.random.default_rng(3), sound, FULL_BAND, vocal=False)
        assert arr.info["sound"] == name and arr.info["lead"] in sound.lead_programs
        assert arr.info["chord_program"] in sound.chord_programs and arr.info["chord_style"] in sound.chord_styles
    # the same notes on the same program sound different through the two soundfonts
    from humdex.synth.fluid import Part, render_parts

    notes = np.array([[0.1, 0.9, 60, 100], [1.0, 1.9, 67, 100]])
    spectra = []
    for sound in (TRAIN, HELDOUT):
        audio = render_parts([Part("lead", notes, 0)], sound.soundfont_path, 2 * SR)
        spec = np.abs(np.fft.rfft(audio)) + 1e-9
        spectra.append(spec / spec.sum())
    assert 0.5 * np.abs(spectra[0] - spectra[1]).sum() > 0.2  # total variation of the spectra


def test_development_sound_shares_nothing_with_training_or_evaluation_sound():
    """PROXY (the melody net's stand-in for unheard instruments) has its own soundfont and no
    program of TRAIN, WIDE or HELDOUT; WIDE widens training without touching HELDOUT."""
    assert len({s.soundfont_path for s in (TRAIN, HELDOUT, PROXY)}) == 3
    assert not PROXY.programs() & (TRAIN.programs() | WIDE.programs() | HELDOUT.programs())
    assert not WIDE.programs() & HELDOUT.programs()
    assert set(TRAIN.lead_programs) < set(WIDE.lead_programs) and len(WIDE.lead_programs) >= 40
    assert not set(WIDE.chord_styles + PROXY.chord_styles) & set(HELDOUT.chord_styles)


def test_covers_differ_in_tempo_key_and_structure():
    score = Score.from_notes(tune(3))
    rng = np.random.default_rng(5)
    original = arrange(score, rng, TRAIN, vocal=False)
    covers = [render_record(score, rng, TRAIN, "cover", produced=False) for _ in range(3)]
    assert any(c.info["edited"] for c in covers)  # a phrase repeated or skipped
    assert len({original.info["transpose_st"], *(c.info["transpose_st"] for c in covers)}) >= 2
    tempos = [original.info["tempo_factor"], *(c.info["tempo_factor"] for c in covers)]
    assert max(tempos) / min(tempos) > 1.05
    for c in covers:  # whatever the edits, the map stays on the original score's clock
        assert c.time_map.score_s.min() >= score.start_s - 1e-6 and c.time_map.score_s.max() <= score.end_s + 1e-6


def test_synth_corpus_cli_writes_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from humdex.cli import main

    out = tmp_path / "corpus"
    args = ["synth", "corpus", "--songs", "records", "--sound", "heldout", "--hours", "0.001", "--out", str(out),
            "--quiet"]  # fmt: skip
    assert main(args) == 0
    songs = list((out / "songs").rglob("*.wav"))
    assert songs and (out / "metadata.csv").is_file()
    with pytest.raises(SystemExit) as bad:
        main([*args[:5], "nowhere", "--out", str(out)])
    assert bad.value.code == 2 and "invalid choice" in capsys.readouterr().err
