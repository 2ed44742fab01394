"""Songs from files: which files are songs, and the reference melody and tags of each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from humdex.errors import HumdexError
from humdex.frontend.audio import AUDIO_SUFFIXES
from humdex.frontend.contour import Contour
from humdex.frontend.limits import MAX_SONG_S
from humdex.frontend.melody import MIDI_SUFFIXES, SCORE_SUFFIXES
from humdex.frontend.pitchfile import PITCH_FILE_SUFFIXES as PITCH_SUFFIXES
from humdex.frontend.stem import DEFAULT_SEPARATE

SONG_SUFFIXES = MIDI_SUFFIXES + SCORE_SUFFIXES + AUDIO_SUFFIXES + PITCH_SUFFIXES
REFERENCE_HOP_S = 0.02  # seconds between frames of stored reference melodies
# a vocal stem voiced for less of the song than this may fall back to the mix: chosen on the dev
# records (pool validation melodies, TRAIN sound; benchmarks/stem_fallback.py): the stem tracked
# by swift-f0 scores 0.39 raw pitch accuracy against the mix's 0.71 by salience, and the rule
# keeps the most accuracy (0.717) from 0.5 up (0.684 at the former 0.25)
STEM_MIN_VOICED = 0.5
STEM_MIX_GAP_S = 2.0  # unvoiced between the stem's melody and the mix's in a `--separate both` reference


@dataclass(frozen=True)
class SongFile:
    """A song file found on disk, with what a manifest or its tags say about it."""

    path: Path
    song_id: str
    title: str | None = None
    artist: str | None = None


def song_kind(path: Path) -> str:
    """'midi' | 'score' | 'audio' | 'pitch' by suffix; HumdexError for anything else."""
    suffix = path.suffix.lower()
    for kind, suffixes in (
        ("midi", MIDI_SUFFIXES),
        ("score", SCORE_SUFFIXES),
        ("audio", AUDIO_SUFFIXES),
        ("pitch", PITCH_SUFFIXES),
    ):
        if suffix in suffixes:
            return kind
    raise HumdexError(f"{path}: not a song file (expected one of {', '.join(SONG_SUFFIXES)})")


def find_song_files(paths: list[Path]) -> list[Path]:
    """Every song file under `paths` (files are taken as given, folders searched recursively), sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += [p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SONG_SUFFIXES]
        elif path.exists():
            found.append(path)
        else:
            raise HumdexError(f"{path}: no such file or folder")
    return sorted({p.resolve() for p in found})


def read_manifest(path: Path) -> dict[str, SongFile]:
    """A CSV manifest `path,song_id[,title[,artist]]` (header optional) -> SongFile by resolved path.

    Relative paths are taken relative to the manifest's folder.
    """
    import csv

    if not path.is_file():
        raise HumdexError(f"{path}: manifest not found")
    entries: dict[str, SongFile] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if not row or row[0].strip().lower() in ("", "path") or row[0].startswith("#"):
                continue
            if len(row) < 2 or not row[1].strip():
                raise HumdexError(f"{path}: each line needs path,song_id[,title[,artist]]: {row}")
            song_path = (path.parent / row[0].strip()).resolve()
            extra = [c.strip() or None for c in row[2:4]] + [None, None]
            entries[str(song_path)] = SongFile(song_path, row[1].strip(), extra[0], extra[1])
    return entries


def read_tags(path: Path) -> tuple[str | None, str | None]:
    """(title, artist) from an audio file's tags, (None, None) when it has none."""
    if song_kind(path) != "audio":
        return None, None
    try:
        import mutagen

        tags = mutagen.File(path, easy=True)
    except Exception:  # noqa: BLE001 - tags are a nicety: a file mutagen can't parse may still decode
        return None, None
    if not tags:
        return None, None

    def first(key: str) -> str | None:
        values = tags.get(key) or []
        return str(values[0]) if values else None

    return first("title"), first("artist")


def read_song_melody(path: Path, pitch_method: str | None = None, separate: str = DEFAULT_SEPARATE
                     ) -> Contour:
    """The reference melody of a song file, as a Contour (a `both` record's two melodies joined).
    Raises HumdexError for unusable files."""
    return joined(read_song_melodies(path, pitch_method, separate))[0]


def read_song_melodies(path: Path, pitch_method: str | None = None, separate: str = DEFAULT_SEPARATE
                       ) -> tuple[Contour, ...]:
    """The melodies a song file gives: one, or for a record indexed with `both` whose vocal stem
    keeps a voice two, (the stem's, the mix's). Raises HumdexError for unusable files.

    pitch_method: the tracker for audio; by default pitch.DEFAULT_SONG_METHOD on a mix (the
    predominant melody of a record) and pitch.DEFAULT_METHOD on a vocal stem (one voice).
    separate (frontend.stem): "spleeter" tracks audio songs' pitch on Spleeter's vocal stem
    (humdex.frontend.separation), falling back to the mix for an instrument lead; "both" (the
    default) also tracks the mix and keeps both melodies; "none" the mix alone."""
    kind = song_kind(path)
    if kind in ("midi", "score"):
        from humdex.frontend.melody import notes_to_contour, read_melody

        return (notes_to_contour(read_melody(path), hop_s=REFERENCE_HOP_S, hold_rests=True),)
    if kind == "pitch":
        from humdex.frontend.pitchfile import read_pitch_file

        return (read_pitch_file(path),)
    from humdex.frontend import audio, pitch

    samples = audio.load(path, audio.SAMPLE_RATE, max_s=MAX_SONG_S)
    mix_method = pitch_method or pitch.DEFAULT_SONG_METHOD
    if separate in ("both", "spleeter"):
        from humdex.frontend.separation import separate_vocals

        stem = separate_vocals(samples, audio.SAMPLE_RATE)
        return _stem_melodies(stem, samples, pitch_method or pitch.DEFAULT_METHOD, mix_method,
                              and_mix=separate == "both")
    return (pitch.query_contour(samples, audio.SAMPLE_RATE, mix_method),)


def _stem_melodies(stem: Any, mix: Any, stem_method: str, mix_method: str, and_mix: bool
                   ) -> tuple[Contour, ...]:
    """The vocal stem's melody, or the mix's where the stem carries little pitch (an instrument lead:
    flute, violin, sax leave 0-20 % of a record voiced in the stem, sung leads 50-90 %): below
    STEM_MIN_VOICED of the song, the mix when it is voiced at least twice as long.
    and_mix: a kept stem melody comes with the mix's, (stem's, mix's)."""
    from humdex.errors import AudioError
    from humdex.frontend import audio, pitch

    try:
        vocal = pitch.query_contour(stem, audio.SAMPLE_RATE, stem_method)
    except AudioError:
        return (pitch.query_contour(mix, audio.SAMPLE_RATE, mix_method),)
    song_s = len(mix) / audio.SAMPLE_RATE
    if keeps_stem(vocal, None, song_s) and not and_mix:
        return (vocal,)
    try:
        whole = pitch.query_contour(mix, audio.SAMPLE_RATE, mix_method)
    except AudioError:
        return (vocal,)
    if not keeps_stem(vocal, whole, song_s):
        return (whole,)
    return (vocal, whole) if and_mix else (vocal,)


def joined(melodies: tuple[Contour, ...], hop_s: float = REFERENCE_HOP_S,
           gap_s: float = STEM_MIX_GAP_S) -> tuple[Contour, float | None]:
    """(the one reference of a song's melodies, where its second melody starts in seconds, or None
    for one melody). One melody is returned as it is. Two (a `both` record: the vocal stem's, then
    the mix's) become one reference holding both: each at `hop_s`, its unvoiced ends trimmed, with
    `gap_s` unvoiced between. Where the singer leads, the stem's has the voice without the band;
    the mix's keeps what Spleeter takes for accompaniment (an instrument's solo, a lead the stem
    lost)."""
    if len(melodies) == 1:
        return melodies[0], None
    vocal, whole = (m.resample(hop_s).trimmed() for m in melodies)
    gap = np.full(round(gap_s / hop_s), np.nan, np.float32)
    return Contour(np.concatenate([vocal.midi, gap, whole.midi]), hop_s), (len(vocal.midi) + len(gap)) * hop_s


def melody_duration_s(melody: Contour, mix_at_s: float | None) -> float:
    """A song's melody duration: of the longer of a joined reference's two melodies."""
    if mix_at_s is None:
        return melody.duration_s
    return max(mix_at_s - STEM_MIX_GAP_S, melody.duration_s - mix_at_s)


def times_in_song(start_s: float | None, end_s: float | None, mix_at_s: float | None
                  ) -> tuple[float | None, float | None]:
    """A match's times in a song's reference as times in the song: a joined reference holds the
    vocal stem's melody, then from mix_at_s the mix's (a match reaching past the stem's melody
    ends with it)."""
    if start_s is None or end_s is None or mix_at_s is None:
        return start_s, end_s
    stem_end_s = mix_at_s - STEM_MIX_GAP_S
    if start_s < stem_end_s:
        return start_s, min(end_s, stem_end_s)
    return max(0.0, start_s - mix_at_s), max(0.0, end_s - mix_at_s)


def keeps_stem(vocal: Contour, whole: Contour | None, song_s: float,
               min_voiced: float = STEM_MIN_VOICED) -> bool:
    """Whether `humdex index --separate spleeter` keeps the vocal stem's melody: voiced for at
    least `min_voiced` of the song, or (given the mix's melody `whole`) not voiced at least twice
    as long in the mix."""
    if vocal.voiced.sum() * vocal.hop_s >= min_voiced * song_s:
        return True
    return whole is not None and whole.voiced.sum() < 2 * vocal.voiced.sum()
