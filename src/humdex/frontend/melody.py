"""Symbolic melodies: MIDI and scores (ABC, MusicXML, kern) -> monophonic note list -> Contour."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from humdex.errors import HumdexError
from humdex.frontend.contour import Contour
from humdex.frontend.limits import MAX_MELODY_FILE_BYTES, MAX_NOTE_S, MAX_SONG_S, describe_s

MIDI_SUFFIXES = (".mid", ".midi", ".kar")
SCORE_SUFFIXES = (".abc", ".xml", ".musicxml", ".mxl", ".krn", ".kern")
MELODY_SUFFIXES = MIDI_SUFFIXES + SCORE_SUFFIXES
DEFAULT_BPM = 100.0
DRUM_CHANNEL = 9  # MIDI channel 10, zero-based
DEFAULT_TEMPO_US = 500_000  # 120 bpm, the MIDI default


class MelodyError(HumdexError):
    """A MIDI or score file that cannot be read or holds no usable melody."""


@dataclass(frozen=True)
class Note:
    """One note of a monophonic melody: onset and duration in seconds, pitch in MIDI semitones."""

    onset_s: float
    duration_s: float
    pitch_midi: float

    @property
    def end_s(self) -> float:
        return self.onset_s + self.duration_s


def read_melody(path: str | Path) -> list[Note]:
    """The melody of a MIDI or score file, by suffix (see MELODY_SUFFIXES)."""
    suffix = Path(path).suffix.lower()
    if suffix in MELODY_SUFFIXES and Path(path).is_file():
        size = Path(path).stat().st_size
        if size > MAX_MELODY_FILE_BYTES:
            raise MelodyError(f"{path}: {size / 2**20:.0f} MB is too large for a MIDI or score "
                              f"file (at most {MAX_MELODY_FILE_BYTES / 2**20:.0f} MB)")
    if suffix in MIDI_SUFFIXES:
        return bounded(read_midi(path), path)
    if suffix in SCORE_SUFFIXES:
        return bounded(read_score(path), path)
    raise MelodyError(f"{path}: not a melody file (expected one of {', '.join(MELODY_SUFFIXES)})")


def bounded(notes: list[Note], path: str | Path = "melody") -> list[Note]:
    """The notes with none longer than MAX_NOTE_S (cut); MelodyError when the melody lasts longer
    than MAX_SONG_S -- checked before any frame is rendered (a 76-byte MIDI can ask for days)."""
    end_s = max((n.end_s for n in notes), default=0.0)
    if not math.isfinite(end_s) or end_s > MAX_SONG_S:
        raise MelodyError(f"{path}: melody lasts {describe_s(end_s)}; humdex takes songs of at most "
                          f"{describe_s(MAX_SONG_S)}")
    return [n if n.duration_s <= MAX_NOTE_S else Note(n.onset_s, MAX_NOTE_S, n.pitch_midi)
            for n in notes]


# ---------------------------------------------------------------- skyline (shared)


def skyline(notes: Iterable[Note], max_overlap_ratio: float = 0.5) -> list[Note]:
    """The highest voice of possibly polyphonic notes, as a monophonic, onset-sorted note list.

    Of notes starting together the highest wins. A lower note that starts while a kept higher
    note still sounds (more than `max_overlap_ratio` of that note's length and more than 50 ms
    before its end) is an accompanying voice and is dropped; otherwise the earlier note is cut
    at the new onset, so small legato overlaps between melody notes are kept as two notes.
    Zero-length notes are dropped.
    """
    ordered = sorted((n for n in notes if n.duration_s > 0), key=lambda n: (n.onset_s, -n.pitch_midi))
    kept: list[Note] = []
    for note in ordered:
        if kept and math.isclose(note.onset_s, kept[-1].onset_s, abs_tol=1e-6):
            continue  # a lower note of the same onset group
        if kept and note.onset_s < kept[-1].end_s:
            prev = kept[-1]
            overlap_s = prev.end_s - note.onset_s
            if note.pitch_midi < prev.pitch_midi and overlap_s > max(
                0.05, max_overlap_ratio * prev.duration_s
            ):
                continue
            kept[-1] = Note(prev.onset_s, note.onset_s - prev.onset_s, prev.pitch_midi)
        kept.append(note)
    return [n for n in kept if n.duration_s > 0]


# ---------------------------------------------------------------- MIDI


def _tempo_map(midi: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ticks, seconds, tempo_us) at each tempo change, over all tracks, starting at tick 0."""
    changes: dict[int, int] = {}
    for track in midi.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                changes[tick] = msg.tempo
    changes.setdefault(0, DEFAULT_TEMPO_US)
    ticks = np.array(sorted(changes), dtype=np.float64)
    tempos = np.array([changes[int(t)] for t in ticks], dtype=np.float64)
    sec_per_tick = tempos * 1e-6 / midi.ticks_per_beat
    seconds = np.concatenate([[0.0], np.cumsum(np.diff(ticks) * sec_per_tick[:-1])])
    return ticks, seconds, sec_per_tick


def _ticks_to_seconds(ticks: np.ndarray, tempo_map: tuple[np.ndarray, ...]) -> np.ndarray:
    change_ticks, change_s, sec_per_tick = tempo_map
    i = np.searchsorted(change_ticks, ticks, side="right") - 1
    return change_s[i] + (ticks - change_ticks[i]) * sec_per_tick[i]


def _track_voices(midi: Any) -> tuple[dict[tuple[int, int], list[tuple[int, int, int]]], dict[int, str]]:
    """Notes as (on_tick, off_tick, pitch) per (track, channel), drums left out; track names."""
    voices: dict[tuple[int, int], list[tuple[int, int, int]]] = defaultdict(list)
    names: dict[int, str] = {}
    for ti, track in enumerate(midi.tracks):
        tick = 0
        sounding: dict[tuple[int, int], list[int]] = defaultdict(list)
        for msg in track:
            tick += msg.time
            kind = msg.type
            if kind == "track_name":
                names[ti] = str(msg.name)
            elif kind == "note_on" or kind == "note_off":
                if msg.channel == DRUM_CHANNEL:
                    continue
                key = (msg.channel, msg.note)
                if kind == "note_on" and msg.velocity > 0:
                    if sounding[key]:  # re-struck without a note-off: end the earlier one here
                        voices[(ti, msg.channel)].append((sounding[key].pop(0), tick, msg.note))
                    sounding[key].append(tick)
                elif sounding[key]:
                    voices[(ti, msg.channel)].append((sounding[key].pop(0), tick, msg.note))
        for (channel, pitch), starts in sounding.items():  # never released: end at track end
            voices[(ti, channel)].extend((s, tick, pitch) for s in starts)
    return voices, names


def melodic_score(onsets_s: np.ndarray, ends_s: np.ndarray, pitches: np.ndarray, max_count: int,
                  name: str = "") -> float:
    """How much a voice looks like the melody: note count, monophony, pitch range, mean pitch."""
    n = len(pitches)
    if n == 0:
        return -math.inf
    order = np.argsort(onsets_s, kind="stable")
    on, end = onsets_s[order], ends_s[order]
    overlap = on[1:] < (np.maximum.accumulate(end)[:-1] - 0.05) if n > 1 else np.zeros(0, bool)
    monophony = 1.0 - float(overlap.mean()) if n > 1 else 1.0
    pitch_range = float(np.percentile(pitches, 95) - np.percentile(pitches, 5))
    score = 1.5 * monophony
    score += 1.0 * min(1.0, n / max(1, max_count))
    score += 0.5 if 5 <= pitch_range <= 30 else 0.0
    score += 0.75 * float(np.clip((np.mean(pitches) - 48.0) / 24.0, 0.0, 1.0))
    lowered = name.lower()
    if any(word in lowered for word in ("melody", "vocal", "voice", "lead", "sing", "tune")):
        score += 1.0
    if any(word in lowered for word in ("bass", "drum", "chord", "accomp", "pad")):
        score -= 1.0
    return score if n >= 4 else score - 2.0


def read_midi(path: str | Path) -> list[Note]:
    """The melody of a MIDI file: the most melodic (track, channel) voice, its highest notes.

    Honours tempo changes in any track (type 0 and 1 files), ignores drums (channel 10),
    drops zero-length notes, and returns notes sorted by onset.
    """
    import mido

    path = Path(path)
    if not path.is_file():
        raise MelodyError(f"{path}: no such MIDI file")
    try:
        midi = mido.MidiFile(str(path), clip=True)
    except Exception as exc:  # noqa: BLE001 (mido raises OSError, EOFError, ValueError...)
        raise MelodyError(f"{path}: not a readable MIDI file ({type(exc).__name__}: {exc})") from None
    voices, names = _track_voices(midi)
    tempo_map = _tempo_map(midi)
    candidates = []
    max_count = max((len(v) for v in voices.values()), default=0)
    for (ti, _channel), raw in voices.items():
        arr = np.asarray(raw, dtype=np.float64)
        on_s = _ticks_to_seconds(arr[:, 0], tempo_map)
        end_s = _ticks_to_seconds(arr[:, 1], tempo_map)
        keep = end_s > on_s
        on_s, end_s, pitch = on_s[keep], end_s[keep], arr[keep, 2]
        score = melodic_score(on_s, end_s, pitch, max_count, names.get(ti, ""))
        candidates.append((score, on_s, end_s, pitch))
    if not candidates or max(c[0] for c in candidates) == -math.inf:
        raise MelodyError(f"{path}: MIDI file has no pitched notes")
    _, on_s, end_s, pitch = max(candidates, key=lambda c: c[0])
    return skyline(Note(float(o), float(e - o), float(p)) for o, e, p in zip(on_s, end_s, pitch))


# ---------------------------------------------------------------- scores (music21)


def _quarters_to_seconds(flat: Any, bpm: float | None) -> Any:
    """A function quarter-note offset -> seconds, from the score's metronome marks or `bpm`."""
    marks: list[tuple[float, float]] = []
    if bpm is None:
        from music21 import tempo

        for mark in flat.getElementsByClass(tempo.MetronomeMark):
            qbpm = mark.getQuarterBPM()
            if qbpm and 20.0 <= qbpm <= 400.0:  # ignore implausible marks (bad ABC Q: fields)
                marks.append((float(mark.offset), float(qbpm)))
    if bpm is not None or not marks:
        marks = [(0.0, float(bpm or DEFAULT_BPM))]
    if marks[0][0] > 0:
        marks.insert(0, (0.0, marks[0][1]))
    starts = np.array([m[0] for m in marks])
    sec_per_q = np.array([60.0 / m[1] for m in marks])
    start_s = np.concatenate([[0.0], np.cumsum(np.diff(starts) * sec_per_q[:-1])])

    def convert(q: float) -> float:
        i = int(np.searchsorted(starts, q, side="right") - 1)
        return float(start_s[i] + (q - starts[i]) * sec_per_q[i])

    return convert


def carry_abc_accidentals(stream: Any) -> None:
    """Apply ABC's rule that an explicit accidental holds for the rest of its bar (in place).

    music21's ABC reader applies an accidental to its own note only, so `K:E ... =G2 G2`
    comes back as G natural then G sharp; ABC (and the Essen collection's sources) mean two
    G naturals. A note tied from the previous bar keeps that note's accidental too.
    """
    from music21 import harmony, pitch

    previous = None
    for measure in stream.recurse().getElementsByClass("Measure"):
        carried: dict[tuple[str, int | None], float] = {}
        for element in sorted(measure.recurse().notes, key=lambda e: float(e.offset)):
            if isinstance(element, harmony.ChordSymbol):
                continue
            for p in element.pitches:
                key = (p.step, p.octave)
                explicit = p.accidental is not None and p.accidental.displayStatus
                if explicit:
                    carried[key] = p.accidental.alter
                elif key in carried:
                    p.accidental = pitch.Accidental(carried[key])
                elif previous is not None and previous.tie is not None and previous.tie.type != "stop":
                    tied = [q for q in previous.pitches if (q.step, q.octave) == key]
                    if tied:
                        p.accidental = pitch.Accidental(tied[0].alter)
            previous = element


def score_to_notes(stream: Any, bpm: float | None = None) -> list[Note]:
    """The melody of a music21 stream: top part, ties merged, highest note of chords, skyline.

    Tempo comes from the stream's metronome marks unless `bpm` is given; DEFAULT_BPM otherwise.
    """
    from music21 import harmony

    parts = list(stream.parts) if hasattr(stream, "parts") else []
    part = parts[0] if parts else stream
    try:
        part = part.stripTies()
    except Exception:  # noqa: BLE001, S110 (malformed ties: keep them unmerged rather than fail)
        pass
    flat = part.flatten()
    to_s = _quarters_to_seconds(flat, bpm)
    notes = []
    for element in flat.notes:
        if isinstance(element, harmony.ChordSymbol):
            continue
        pitches = element.pitches
        length_q = float(element.quarterLength)
        if not pitches or length_q <= 0:
            continue
        onset_q = float(element.offset)
        onset_s = to_s(onset_q)
        end_s = to_s(onset_q + length_q)
        notes.append(Note(onset_s, end_s - onset_s, float(max(p.ps for p in pitches))))
    return skyline(notes)


def read_score(path: str | Path) -> list[Note]:
    """The melody of an ABC, MusicXML (.xml/.musicxml/.mxl) or Humdrum kern file, via music21."""
    from music21 import converter

    path = Path(path)
    if not path.is_file():
        raise MelodyError(f"{path}: no such score file")
    fmt = "humdrum" if path.suffix.lower() in (".krn", ".kern") else None
    try:
        parsed = converter.parse(str(path), format=fmt)
    except Exception as exc:  # noqa: BLE001 (music21 parsers raise anything)
        raise MelodyError(f"{path}: not a readable score ({type(exc).__name__}: {exc})") from None
    if hasattr(parsed, "scores") and len(parsed.scores) > 0 and not hasattr(parsed, "parts"):
        parsed = parsed.scores[0]  # an opus (several tunes in one file): its first tune
    if path.suffix.lower() == ".abc":
        carry_abc_accidentals(parsed)
    notes = score_to_notes(parsed)
    if not notes:
        raise MelodyError(f"{path}: score has no notes")
    return notes


# ---------------------------------------------------------------- contour


def notes_to_contour(notes: list[Note], hop_s: float, hold_rests: bool = True) -> Contour:
    """A frame-level pitch contour of monophonic notes, starting at time 0.

    Frame i (start time i * hop_s) takes the pitch of the note sounding at that time
    (onset_s <= t < end_s). Rests between notes hold the previous pitch when `hold_rests`
    (people hum legato), else are NaN; frames before the first note are NaN either way.
    """
    if not hop_s > 0:
        raise ValueError(f"hop_s must be positive, got {hop_s}")
    if not notes:
        return Contour(np.zeros(0, np.float32), hop_s)
    end_s = max(n.end_s for n in notes)
    n_frames = math.ceil(end_s / hop_s - 1e-9)
    midi = np.full(n_frames, np.nan, dtype=np.float32)
    for note in sorted(notes, key=lambda n: n.onset_s):
        first = math.ceil(note.onset_s / hop_s - 1e-9)
        stop = math.ceil(note.end_s / hop_s - 1e-9)
        midi[first:stop] = note.pitch_midi
    if hold_rests:
        voiced = np.isfinite(midi)
        last = np.maximum.accumulate(np.where(voiced, np.arange(n_frames), -1))
        held = last >= 0
        midi[held] = midi[last[held]]
    return Contour(midi, hop_s)


def write_midi(notes: list[Note], path: str | Path, bpm: float = 120.0) -> None:
    """Write notes as a one-track MIDI file (onsets/durations in seconds at a constant tempo).

    Pitches are rounded to semitones; overlapping notes are cut at the next onset.
    """
    import mido

    ticks_per_beat = 480
    ticks_per_s = ticks_per_beat * bpm / 60.0
    events: list[tuple[int, int, int]] = []  # (tick, order: off before on, pitch)
    ordered = sorted(notes, key=lambda n: n.onset_s)
    for i, note in enumerate(ordered):
        end_s = note.end_s if i + 1 == len(ordered) else min(note.end_s, ordered[i + 1].onset_s)
        pitch = int(np.clip(round(note.pitch_midi), 0, 127))
        events.append((round(note.onset_s * ticks_per_s), 1, pitch))
        events.append((max(round(end_s * ticks_per_s), round(note.onset_s * ticks_per_s) + 1), 0, pitch))
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0)])
    now = 0
    for tick, is_on, pitch in sorted(events):
        kind = "note_on" if is_on else "note_off"
        track.append(mido.Message(kind, note=pitch, velocity=80 if is_on else 0, time=tick - now))
        now = tick
    mid = mido.MidiFile(ticks_per_beat=ticks_per_beat)
    mid.tracks.append(track)
    mid.save(str(path))
