"""Tests of humdex.frontend.melody on MIDI files and scores the tests write themselves."""

from __future__ import annotations

import math

import mido
import numpy as np
import pytest

from humdex.errors import HumdexError
from humdex.frontend.melody import (
    MelodyError,
    Note,
    notes_to_contour,
    read_melody,
    read_midi,
    read_score,
    skyline,
)

TPB = 480


def _track(events: list[tuple[int, str, int, int]], channel: int = 0, name: str | None = None,
           tempos: list[tuple[int, int]] = ()) -> mido.MidiTrack:
    """A track from absolute-tick events (tick, 'on'|'off', pitch, velocity) and tempo changes."""
    msgs = [(t, mido.MetaMessage("set_tempo", tempo=us, time=0)) for t, us in tempos]
    for tick, kind, pitch, vel in events:
        typ = "note_on" if kind == "on" else "note_off"
        msgs.append((tick, mido.Message(typ, note=pitch, velocity=vel, channel=channel, time=0)))
    msgs.sort(key=lambda m: (m[0], m[1].type == "note_on"))  # offs before ons at equal ticks
    track = mido.MidiTrack()
    if name:
        track.append(mido.MetaMessage("track_name", name=name, time=0))
    last = 0
    for tick, msg in msgs:
        track.append(msg.copy(time=tick - last))
        last = tick
    return track


def _notes(pitches: list[int], beats: float = 1.0, start: int = 0) -> list[tuple[int, str, int, int]]:
    ev = []
    step = int(beats * TPB)
    for i, p in enumerate(pitches):
        ev += [(start + i * step, "on", p, 90), (start + (i + 1) * step, "off", p, 0)]
    return ev


def _write(tmp_path, tracks, type_=1, name="x.mid"):
    mid = mido.MidiFile(type=type_, ticks_per_beat=TPB)
    mid.tracks.extend(tracks)
    path = tmp_path / name
    mid.save(path)
    return path


def test_tempo_change_mid_file(tmp_path):
    # 120 bpm (0.5 s/beat) for 2 beats, then 60 bpm (1 s/beat), tempo in a separate track.
    conductor = _track([], tempos=[(0, 500_000), (2 * TPB, 1_000_000)])
    melody = _track(_notes([60, 62, 64, 65]))
    notes = read_midi(_write(tmp_path, [conductor, melody]))
    assert [n.pitch_midi for n in notes] == [60, 62, 64, 65]
    assert [n.onset_s for n in notes] == pytest.approx([0.0, 0.5, 1.0, 2.0])
    assert [n.duration_s for n in notes] == pytest.approx([0.5, 0.5, 1.0, 1.0])


def test_type0_file_with_tempo_in_same_track(tmp_path):
    track = _track(_notes([67, 69, 71]), tempos=[(0, 250_000)])
    notes = read_midi(_write(tmp_path, [track], type_=0))
    assert [n.onset_s for n in notes] == pytest.approx([0.0, 0.25, 0.5])


def test_melody_track_chosen_over_bass(tmp_path):
    bass = _track(_notes([36, 43, 36, 43, 36, 43, 36, 43], beats=2), channel=1)
    tune = [72, 74, 76, 77, 79, 77, 76, 74, 72, 71, 72, 79, 76, 72, 74, 72]
    melody = _track(_notes(tune), channel=0)
    notes = read_midi(_write(tmp_path, [bass, melody]))
    assert [n.pitch_midi for n in notes] == tune


def test_chords_give_highest_voice(tmp_path):
    ev = []
    for i, top in enumerate([72, 74, 76, 77, 79]):
        for p in (top - 7, top - 3, top):
            ev += [(i * TPB, "on", p, 80), ((i + 1) * TPB, "off", p, 0)]
    notes = read_midi(_write(tmp_path, [_track(ev)]))
    assert [n.pitch_midi for n in notes] == [72, 74, 76, 77, 79]
    assert all(n.duration_s == pytest.approx(0.5) for n in notes)


def test_drums_ignored(tmp_path):
    drums = _track(_notes([90, 91, 92, 93, 94, 95, 96, 97] * 3, beats=0.5), channel=9)
    melody = _track(_notes([60, 64, 67, 72]), channel=0)
    notes = read_midi(_write(tmp_path, [drums, melody]))
    assert [n.pitch_midi for n in notes] == [60, 64, 67, 72]


def test_zero_length_notes_dropped_and_small_overlap_kept(tmp_path):
    ev = [(0, "on", 60, 90), (0, "off", 60, 0),  # zero length
          (0, "on", 64, 90), (TPB + 20, "off", 64, 0),  # overlaps the next (lower) note a little
          (TPB, "on", 62, 90), (2 * TPB, "off", 62, 0)]
    notes = read_midi(_write(tmp_path, [_track(ev)]))
    assert [n.pitch_midi for n in notes] == [64, 62]
    assert notes[0].duration_s == pytest.approx(0.5)  # cut at the next onset


def test_skyline_drops_lower_voice_under_held_note():
    notes = [Note(0.0, 2.0, 72), Note(0.5, 0.5, 60), Note(2.0, 1.0, 71)]
    assert [n.pitch_midi for n in skyline(notes)] == [72, 71]


@pytest.mark.parametrize("content", [b"", b"MThd garbage", b"not a midi file at all"])
def test_corrupt_midi_raises(tmp_path, content):
    path = tmp_path / "bad.mid"
    path.write_bytes(content)
    with pytest.raises(MelodyError, match="bad.mid"):
        read_midi(path)


def test_midi_without_notes_and_missing_file_raise(tmp_path):
    path = _write(tmp_path, [_track([], tempos=[(0, 500_000)])])
    with pytest.raises(MelodyError, match="no pitched notes"):
        read_midi(path)
    drums_only = _write(tmp_path, [_track(_notes([36, 38]), channel=9)], name="d.mid")
    with pytest.raises(HumdexError):
        read_midi(drums_only)
    with pytest.raises(MelodyError, match="no such"):
        read_midi(tmp_path / "missing.mid")


ABC = """X:1
T:Test tune
M:4/4
L:1/4
Q:1/4=120
K:C
C D E2- | E F [GB] z | c4 |]
"""


def test_abc_score(tmp_path):
    path = tmp_path / "tune.abc"
    path.write_text(ABC)
    notes = read_melody(path)
    # tie merged (E2-E = 3 beats), chord -> B (71), rest skipped, 0.5 s per quarter.
    assert [n.pitch_midi for n in notes] == [60, 62, 64, 65, 71, 72]
    assert [n.onset_s for n in notes] == pytest.approx([0.0, 0.5, 1.0, 2.5, 3.0, 4.0])
    assert [n.duration_s for n in notes] == pytest.approx([0.5, 0.5, 1.5, 0.5, 0.5, 2.0])


def test_abc_default_tempo_and_errors(tmp_path):
    path = tmp_path / "tune.abc"
    path.write_text(ABC.replace("Q:1/4=120\n", ""))
    notes = read_score(path)
    assert notes[1].onset_s == pytest.approx(0.6)  # 100 bpm default
    with pytest.raises(MelodyError):
        read_melody(tmp_path / "song.txt")
    with pytest.raises(MelodyError, match="no such"):
        read_score(tmp_path / "nothing.abc")


@pytest.mark.parametrize("name", ["a.mid", "b.midi", "c.kar", "d.MID"])
def test_read_melody_reads_midi_by_any_midi_suffix(tmp_path, name):
    path = _write(tmp_path, [_track(_notes([60, 62, 64, 65]), tempos=[(0, 500_000)])], name=name)
    assert [(n.onset_s, n.pitch_midi) for n in read_melody(path)] == [(0.0, 60), (0.5, 62), (1.0, 64),
                                                                     (1.5, 65)]


def test_read_melody_picks_the_reader_by_suffix_not_content(tmp_path):
    score = tmp_path / "tune.ABC"
    score.write_text(ABC)
    assert [n.pitch_midi for n in read_melody(score)] == [60, 62, 64, 65, 71, 72]
    midi = _write(tmp_path, [_track(_notes([60, 62]))], name="x.mid")
    renamed = midi.rename(tmp_path / "x.txt")  # a MIDI file under a suffix humdex does not read
    with pytest.raises(MelodyError, match="not a melody file"):
        read_melody(renamed)
    as_score = tmp_path / "x.abc"
    as_score.write_bytes(renamed.read_bytes())  # MIDI bytes named .abc go to the score reader
    with pytest.raises(MelodyError):
        read_melody(as_score)


def test_notes_to_contour_golden():
    notes = [Note(0.1, 0.2, 60.0), Note(0.4, 0.1, 62.5)]
    held = notes_to_contour(notes, hop_s=0.1)
    nan = math.nan
    np.testing.assert_array_equal(held.midi, np.array([nan, 60, 60, 60, 62.5], np.float32))
    gaps = notes_to_contour(notes, hop_s=0.1, hold_rests=False)
    np.testing.assert_array_equal(gaps.midi, np.array([nan, 60, 60, nan, 62.5], np.float32))
    assert held.hop_s == 0.1
    fine = notes_to_contour([Note(0.0, 0.025, 70.0), Note(0.025, 0.02, 71.0)], hop_s=0.01)
    np.testing.assert_array_equal(fine.midi, np.array([70, 70, 70, 71, 71], np.float32))
    assert len(notes_to_contour([], 0.01).midi) == 0


def test_abc_accidental_holds_for_the_rest_of_the_bar(tmp_path):
    # K:E has G#, D#; "=G2 G2" means two G naturals, and the tie carries G natural over the bar.
    path = tmp_path / "acc.abc"
    path.write_text("X:1\nT:acc\nM:4/4\nL:1/4\nK:E\n=G G A G- | G D =D D | G4 |]\n")
    assert [n.pitch_midi for n in read_score(path)] == [67, 67, 69, 67, 63, 62, 62, 68]


def test_a_note_off_without_its_note_on_is_ignored(tmp_path):
    """A stray note-off (on a channel that never plays) left an empty voice that crashed the
    reader with an IndexError (found by tests/test_fuzz.py)."""
    stray = _track([(0, "off", 50, 0)], channel=3)
    melody = _track(_notes([60, 62, 64, 65]))
    notes = read_midi(_write(tmp_path, [stray, melody]))
    assert [n.pitch_midi for n in notes] == [60, 62, 64, 65]
