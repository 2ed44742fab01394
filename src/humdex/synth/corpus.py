"""The synthetic CHAD corpus: melodies -> fragment groups of aligned renditions, written in CHAD's layout.

Group i of a corpus is rendered from its own generator seeded by (seed, i), so the corpus is the
same whatever the number of workers or interruptions. Each finished group leaves its rows in
meta/{group_id}.csv (written last, atomically): a group with that file is done and skipped on
resume; metadata.csv is rebuilt from all of them at the end.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from humdex.synth.fragments import FragmentConfig, cut, pick_fragments
from humdex.synth.render import RenderConfig, Rendition, render_query, render_song
from humdex.synth.score import Score
from humdex.training.chad import (
    METADATA_NAME,
    FragmentRecord,
    metadata_text,
    read_metadata,
    write_metadata,
    write_wav,  # fmt: skip
)

META_DIR = "meta"
SONGS_DIR = "songs"


@dataclass(frozen=True)
class CorpusConfig:
    """What one fragment group holds."""

    queries_per_fragment: tuple[int, int] = (2, 4)  # hums/whistles/sung queries, inclusive
    covers_per_group: tuple[int, int] = (1, 2)
    cover_edit: bool = True  # covers repeat/skip phrases, so alignment is not a constant offset
    full_songs: str = "originals"  # also write full songs to songs/: none | originals | all
    songs: str = "synth"  # originals and covers: synth (numpy voice + band) | records (humdex.synth.records)
    sound: str = "train"  # records only: train | heldout (humdex.synth.sounds)
    render: RenderConfig = field(default_factory=RenderConfig)
    fragments: FragmentConfig = field(default_factory=FragmentConfig)


@dataclass(frozen=True)
class MelodyJob:
    """A melody to render as group `group_id` (picklable for worker processes)."""

    group_id: str
    melody_id: str
    corpus: str
    split: str
    onset_s: np.ndarray
    duration_s: np.ndarray
    pitch_midi: np.ndarray
    seed: int
    index: int
    extra: dict[str, str] = field(default_factory=dict)


def group_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index, 0x5EED])


def render_corpus_group(job: MelodyJob, config: CorpusConfig = CorpusConfig()) -> list[tuple[FragmentRecord, Rendition]]:
    """All fragment versions of one group (rows + audio), and full songs as audio_type rows with
    fragment_id "full" (not part of CHAD's fragments)."""
    rng = group_rng(job.seed, job.index)
    score = Score(job.onset_s, job.duration_s, job.pitch_midi)
    spans = pick_fragments(score, rng, config.fragments)
    if not spans:
        return []
    original = _song(score, rng, config, "original")
    n_covers = int(rng.integers(config.covers_per_group[0], config.covers_per_group[1] + 1))
    covers = [_song(score, rng, config, "cover") for _ in range(n_covers)]
    out: list[tuple[FragmentRecord, Rendition]] = []
    for k, (a, b) in enumerate(spans):
        fid = f"{k}"
        for n, song in enumerate([original, *covers]):
            piece = cut(song, a, b, rng, config.fragments)
            if piece is None:
                continue
            rend, interval = piece
            out.append((_record(job, fid, f"{job.group_id}_{k}_{song.kind}{n}", song.kind, interval, rend, a, b), rend))
        passage = score.passage(a, b)
        for q in range(int(rng.integers(config.queries_per_fragment[0], config.queries_per_fragment[1] + 1))):
            rend = render_query(passage, rng, config.render)
            out.append((_record(job, fid, f"{job.group_id}_{k}_{rend.kind}{q}", "humming",
                                (0.0, rend.duration_s), rend, a, b), rend))  # fmt: skip
    if config.full_songs != "none":
        fulls = [original] + (covers if config.full_songs == "all" else [])
        for n, song in enumerate(fulls):
            out.append((_record(job, "full", f"{job.group_id}_full_{song.kind}{n}", song.kind,
                                (0.0, song.duration_s), song, score.start_s, score.end_s), song))  # fmt: skip
    return out


def _song(score: Score, rng: np.random.Generator, config: CorpusConfig, kind: str) -> Rendition:
    if config.songs == "records":
        from humdex.synth.records import render_record
        from humdex.synth.sounds import get_sound

        return render_record(score, rng, get_sound(config.sound), kind)
    if config.songs != "synth":
        raise ValueError(f"unknown song renderer {config.songs!r}; expected synth or records")
    return render_song(score, rng, config.render, kind, edits=kind == "cover" and config.cover_edit)


def _record(job: MelodyJob, fragment_id: str, rid: str, audio_type: str, interval: tuple[float, float],
            rend: Rendition, a: float, b: float) -> FragmentRecord:  # fmt: skip
    extra = {"corpus": job.corpus, "score_interval": f"({a:.3f}, {b:.3f})",
             "sample_rate": str(rend.sample_rate), **{k: str(v) for k, v in rend.info.items()}}  # fmt: skip
    return FragmentRecord(
        group_id=job.group_id, fragment_id=fragment_id, id=rid, audio_type=audio_type,
        interval=(round(interval[0], 4), round(interval[1], 4)), youtube_id="",
        correlation=1.0, check_by_crowdsource=False, is_available=True,
        duration=round(rend.duration_s, 4), kind=rend.kind if audio_type == "humming" else "song",
        melody_id=job.melody_id, split=job.split, time_map=rend.time_map, extra=extra,
    )  # fmt: skip


def write_group(root: Path, job: MelodyJob, config: CorpusConfig = CorpusConfig()) -> float:
    """Render and write one group; returns seconds of fragment audio (full songs not counted)."""
    meta = root / META_DIR / f"{job.group_id}.csv"
    if meta.is_file():
        return fragment_seconds(read_metadata(meta))
    items = render_corpus_group(job, config)
    for rec, rend in items:
        if rec.fragment_id == "full":
            path = root / SONGS_DIR / rec.group_id / f"{rec.id}.wav"
        else:
            path = rec.audio_path(root)
        write_wav(path, rend.audio, rend.sample_rate)
    write_metadata(meta, [rec for rec, _ in items])  # last: marks the group done
    return fragment_seconds([rec for rec, _ in items])


def fragment_seconds(records: Sequence[FragmentRecord]) -> float:
    return float(sum(r.duration or 0.0 for r in records if r.fragment_id != "full"))


def group_id_for(split: str, index: int) -> str:
    return f"{split[:2]}{index:06d}"


def melody_seed_offset(melody_id: str) -> int:
    return zlib.crc32(melody_id.encode("utf-8"))


def collect_metadata(root: Path) -> tuple[int, int]:
    """Rebuild metadata.csv (fragments) and songs.csv (full songs) from meta/*.csv; (rows, songs)."""
    frags: list[FragmentRecord] = []
    songs: list[FragmentRecord] = []
    for path in sorted((root / META_DIR).glob("*.csv")):
        for rec in read_metadata(path):
            (songs if rec.fragment_id == "full" else frags).append(rec)
    write_metadata(root / METADATA_NAME, frags)
    write_metadata(root / "songs.csv", songs)
    return len(frags), len(songs)


__all__ = [
    "CorpusConfig",
    "MelodyJob",
    "collect_metadata",
    "group_id_for",
    "metadata_text",
    "render_corpus_group",
    "write_group",
]  # fmt: skip
