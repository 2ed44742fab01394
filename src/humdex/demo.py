"""`humdex demo`: a catalog of real folk melodies from music21 and synthesized sung queries of some."""

from __future__ import annotations

import argparse
import csv
import re
import time
from pathlib import Path

import numpy as np

from humdex.catalog.catalog import Catalog
from humdex.frontend.melody import Note, write_midi
from humdex.search import load_query, prepare_default_search, search

EXCERPT_S = (8.0, 12.0)  # length of the sung part of a song, seconds
QUERY_KINDS = ("hum", "sing", "whistle")
SHOWN = 5  # results printed per query


def excerpt(notes: list[Note], rng: np.random.Generator, from_start: bool = False) -> tuple[list[Note], float]:
    """A random passage of 8-12 s from anywhere in the song (from_start: from its first note),
    shifted to start at 0; + its start."""
    length_s = rng.uniform(*EXCERPT_S)
    starts = [n.onset_s for n in notes if n.onset_s <= max(0.0, notes[-1].end_s - length_s)]
    starts = starts[:1] if from_start else starts
    start_s = float(rng.choice(starts)) if starts else 0.0
    passage = [Note(n.onset_s - start_s, n.duration_s, n.pitch_midi)
               for n in notes if start_s <= n.onset_s < start_s + length_s]
    return passage, start_s


def song_id(melody_id: str) -> str:
    """A pool id ("essenFolksong/altdeu10/101") as a file-name- and URL-safe song id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", melody_id)


def write_songs(melodies: list, folder: Path) -> Path:
    """Each melody as MIDI, plus a manifest with titles; returns the manifest path."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "song_id", "title", "artist"])
        for m in melodies:
            path = folder / f"{song_id(m.melody_id)}.mid"
            if not path.exists():
                write_midi(m.notes, path)
            writer.writerow([path.name, song_id(m.melody_id), m.title, m.corpus])
    return manifest


def run_demo(args: argparse.Namespace) -> int:
    from humdex.frontend.audio import SAMPLE_RATE, save
    from humdex.synth.render import render_query
    from humdex.training.melody_pool import load_pool

    rng = np.random.default_rng(args.seed)
    pool = [m for m in load_pool() if m.onset_s[-1] + m.duration_s[-1] > EXCERPT_S[1] + 2]
    chosen = [pool[i] for i in sorted(rng.choice(len(pool), min(args.songs, len(pool)), replace=False))]
    db = Path(args.db)
    work = db.parent
    print(f"demo: {len(chosen)} melodies from music21's corpora -> MIDI files in {work / 'songs'}")
    manifest = write_songs(chosen, work / "songs")
    catalog = Catalog.open(db, create=True)
    started = time.perf_counter()
    report = catalog.add_files([work / "songs"], manifest=manifest)
    method = prepare_default_search(catalog, progress=True)
    print(f"catalog {db}: {len(catalog)} songs ({len(report.added)} indexed, "
          f"{len(report.unchanged)} unchanged) in {time.perf_counter() - started:.1f} s; "
          f"search method: {method}\n")
    queries = work / "queries"
    queries.mkdir(exist_ok=True)
    ranks: list[int | None] = []
    latencies: list[float] = []
    for i, melody_index in enumerate(rng.choice(len(chosen), args.queries, replace=False)):
        melody = chosen[melody_index]
        passage, start_s = excerpt(melody.notes, rng)
        kind = QUERY_KINDS[i % len(QUERY_KINDS)]
        rendition = render_query(passage, rng, kind=kind)
        expected = song_id(melody.melody_id)
        path = queries / f"{i:02d}_{kind}_{expected}.wav"
        save(path, rendition.audio, SAMPLE_RATE)
        started = time.perf_counter()
        result = search(load_query(path), catalog, top=SHOWN)
        latencies.append((time.perf_counter() - started) * 1e3)
        ids = [h.song_id for h in result.hits]
        ranks.append(ids.index(expected) + 1 if expected in ids else None)
        print(f"query {path.name}: a {kind} of {melody.title!r} from {start_s:.0f} s "
              f"({rendition.duration_s:.0f} s, {latencies[-1]:.0f} ms)")
        for h in result.hits:
            mark = "  <- right song" if h.song_id == expected else ""
            print(f"   {h.rank}. {h.song_id:<22} {h.score:.3f}  {h.start_s:5.1f}-{h.end_s:5.1f} s  "
                  f"{(h.title or '')[:40]}{mark}")
    top1 = sum(r == 1 for r in ranks)
    top5 = sum(r is not None for r in ranks)
    print(f"\nfound {top1}/{len(ranks)} at rank 1 and {top5}/{len(ranks)} in the top {SHOWN}; "
          f"median search time {np.median(latencies):.0f} ms (pitch tracking included)")
    print(f"try your own: humdex search YOUR_HUM.wav --db {db}   (queries made here: {queries})")
    return 0
