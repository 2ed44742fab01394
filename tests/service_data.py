"""Test data for the service tests: a few tunes as MIDI files and a simple synthesized hum of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# (MIDI pitch, beats); well-known tunes with distinct interval patterns
TUNES: dict[str, list[tuple[int, float]]] = {
    "ode_to_joy": [(64, 1), (64, 1), (65, 1), (67, 1), (67, 1), (65, 1), (64, 1), (62, 1),
                   (60, 1), (60, 1), (62, 1), (64, 1), (64, 1.5), (62, 0.5), (62, 2),
                   (64, 1), (64, 1), (65, 1), (67, 1), (67, 1), (65, 1), (64, 1), (62, 1),
                   (60, 1), (60, 1), (62, 1), (64, 1), (62, 1.5), (60, 0.5), (60, 2)],
    "twinkle": [(60, 1), (60, 1), (67, 1), (67, 1), (69, 1), (69, 1), (67, 2),
                (65, 1), (65, 1), (64, 1), (64, 1), (62, 1), (62, 1), (60, 2),
                (67, 1), (67, 1), (65, 1), (65, 1), (64, 1), (64, 1), (62, 2)],
    "frere_jacques": [(60, 1), (62, 1), (64, 1), (60, 1), (60, 1), (62, 1), (64, 1), (60, 1),
                      (64, 1), (65, 1), (67, 2), (64, 1), (65, 1), (67, 2),
                      (67, .5), (69, .5), (67, .5), (65, .5), (64, 1), (60, 1),
                      (67, .5), (69, .5), (67, .5), (65, .5), (64, 1), (60, 1)],
    "mary_lamb": [(64, 1), (62, 1), (60, 1), (62, 1), (64, 1), (64, 1), (64, 2),
                  (62, 1), (62, 1), (62, 2), (64, 1), (67, 1), (67, 2),
                  (64, 1), (62, 1), (60, 1), (62, 1), (64, 1), (64, 1), (64, 1), (64, 1),
                  (62, 1), (62, 1), (64, 1), (62, 1), (60, 4)],
    "happy_birthday": [(60, .75), (60, .25), (62, 1), (60, 1), (65, 1), (64, 2),
                       (60, .75), (60, .25), (62, 1), (60, 1), (67, 1), (65, 2),
                       (60, .75), (60, .25), (72, 1), (69, 1), (65, 1), (64, 1), (62, 2)],
}


TITLES = {"ode_to_joy": ("Ode to Joy", "Beethoven"), "twinkle": ("Twinkle, Twinkle, Little Star", ""),
          "frere_jacques": ("Frère Jacques", "trad."), "mary_lamb": ("Mary Had a Little Lamb", ""),
          "happy_birthday": ("Happy Birthday to You", "Hill sisters")}


def random_tune(seed: int, n_notes: int = 28) -> list[tuple[int, float]]:
    """A melody no catalog song has: random leaps over an octave and a half, random rhythm."""
    rng = np.random.default_rng(seed)
    pitches = 60 + np.cumsum(rng.choice([-9, -7, -5, -4, 3, 4, 6, 8, 10], n_notes))
    pitches = 60 + (pitches - 60) % 19
    beats = rng.choice([0.5, 1.0, 1.5], n_notes)
    return [(int(p), float(b)) for p, b in zip(pitches, beats)]


def write_midi(path: Path, tune: list[tuple[int, float]], bpm: float = 100.0) -> Path:
    """A one-track MIDI file of the tune (mido)."""
    import mido

    ticks = 480
    mid = mido.MidiFile(ticks_per_beat=ticks)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    for pitch, beats in tune:
        track.append(mido.Message("note_on", note=pitch, velocity=90, time=0))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=int(beats * ticks)))
    mid.save(path)
    return path


def hum(tune: list[tuple[int, float]], bpm: float = 90.0, transpose: int = -3,
        sample_rate: int = 16000, first: int = 0, n_notes: int | None = None,
        seed: int = 0) -> np.ndarray:
    """(n,) float32: a hummed rendition of tune[first:first+n_notes] (harmonic voice, vibrato,
    short breaths between notes, a little noise), in another key and tempo than the MIDI."""
    rng = np.random.default_rng(seed)
    notes = tune[first: None if n_notes is None else first + n_notes]
    beat_s = 60.0 / bpm
    parts = [np.zeros(int(0.3 * sample_rate), np.float32)]
    for pitch, beats in notes:
        dur = beats * beat_s
        n = int(dur * sample_rate)
        t = np.arange(n) / sample_rate
        midi = pitch + transpose + 0.25 * np.sin(2 * np.pi * 5.5 * t) + rng.normal(0, 0.05)
        f0 = 440.0 * 2 ** ((midi - 69) / 12)
        phase = 2 * np.pi * np.cumsum(f0) / sample_rate
        voice = sum(a * np.sin(k * phase) for k, a in ((1, 1.0), (2, 0.5), (3, 0.25), (4, 0.12)))
        env = np.minimum(1.0, np.minimum(t / 0.03, (dur - t) / 0.06)).clip(0, 1)
        gap = min(0.06, 0.2 * dur)
        env[t > dur - gap] = 0.0
        parts.append((0.3 * voice * env).astype(np.float32))
    parts.append(np.zeros(int(0.3 * sample_rate), np.float32))
    audio = np.concatenate(parts)
    audio += rng.normal(0, 0.003, len(audio)).astype(np.float32)
    return audio.astype(np.float32)


def wav_bytes(audio: np.ndarray, sample_rate: int = 16000, subtype: str = "PCM_16") -> bytes:
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, audio, sample_rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def build_catalog(root: Path, names: list[str] | None = None) -> Path:
    """A catalog folder `root/db` over MIDI files of TUNES (all, or `names`), with titles from a
    manifest; returns the catalog folder."""
    import csv

    from humdex.catalog.catalog import Catalog

    songs = root / "songs"
    songs.mkdir(parents=True, exist_ok=True)
    paths = [write_midi(songs / f"{name}.mid", TUNES[name]) for name in (names or list(TUNES))]
    with open(songs / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([p.name, p.stem, *TITLES[p.stem]] for p in paths)
    db = root / "db"
    report = Catalog.open(db, create=True).add_files(paths, manifest=songs / "manifest.csv",
                                                     progress=False)
    assert not report.failed, report.failed
    return db
