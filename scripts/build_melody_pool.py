"""Build src/humdex/assets/melody_pool.npz from the melody corpora inside music21.

Stage 1 (slow, ~25-60 ms a tune, resumable): parse every corpus file into note lists, one
pickle per file under --work (default build/melody_pool). Stage 2 (seconds): dedup, drop tunes
matching the shipped excluded-melody hashes (see scripts/build_excluded_melodies.py), assign
splits, write the pool atomically.

    nice -n 10 .venv/bin/python scripts/build_melody_pool.py --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from tqdm import tqdm

from humdex.frontend.melody import carry_abc_accidentals, score_to_notes

# (corpus name in music21, file suffixes, how to pick tunes); "top" = top part of every score,
# "chorale" = soprano of four-part scores only.
CORPORA = {
    "essenFolksong": ((".abc",), "top"),
    "oneills1850": ((".abc",), "top"),
    "ryansMammoth": ((".abc",), "top"),
    "airdsAirs": ((".abc",), "top"),
    "miscFolk": ((".abc",), "top"),
    "nottingham-dataset": ((".abc",), "top"),
    "leadSheet": ((".mxl",), "top"),
    "liliuokalani": ((".mxl",), "top"),
    "bach": ((".mxl", ".xml"), "chorale"),
}


def corpus_files(root: Path) -> list[tuple[str, Path]]:
    files = []
    for name, (suffixes, _) in CORPORA.items():
        for path in sorted((root / name).rglob("*")):
            if path.suffix.lower() in suffixes:
                files.append((name, path))
    return files


def parse_file(job: tuple[str, str, str]) -> tuple[str, int, str]:
    """Parse one corpus file into a pickle of [(number, title, onset, duration, pitch)]."""
    corpus, path, out = job
    from music21 import converter

    tunes = []
    errors = 0
    try:
        parsed = converter.parse(path, forceSource=True)
    except Exception as exc:  # noqa: BLE001 (music21 parsers raise anything)
        return out, 0, f"{path}: {type(exc).__name__}: {exc}"
    scores = list(parsed.scores) if hasattr(parsed, "scores") and not hasattr(parsed, "parts") else [parsed]
    if not scores:
        scores = [parsed]
    for i, score in enumerate(scores):
        try:
            if CORPORA[corpus][1] == "chorale" and len(score.parts) != 4:
                continue
            if path.endswith(".abc"):
                carry_abc_accidentals(score)
            notes = score_to_notes(score)
            md = score.metadata
            title = (md.title or md.movementName or "") if md is not None else ""
            number = str(md.number) if md is not None and md.number is not None else str(i + 1)
        except Exception:  # noqa: BLE001 (count and skip a tune music21 cannot read)
            errors += 1
            continue
        if len(notes) < 2:
            continue
        tunes.append((number, str(title), np.array([n.onset_s for n in notes], np.float32),
                      np.array([n.duration_s for n in notes], np.float32),
                      np.array([n.pitch_midi for n in notes], np.float32)))
    tmp = out + ".tmp"
    with open(tmp, "wb") as fh:
        pickle.dump(tunes, fh)
    os.replace(tmp, out)
    return out, len(tunes), f"{errors} tunes failed" if errors else ""


def parse_all(root: Path, work: Path, jobs: int) -> None:
    work.mkdir(parents=True, exist_ok=True)
    todo = []
    for corpus, path in corpus_files(root):
        rel = path.relative_to(root / corpus)
        out = work / f"{corpus}__{str(rel).replace('/', '__')}.pkl"
        if not out.exists():
            todo.append((corpus, str(path), str(out)))
    todo.sort(key=lambda j: -os.path.getsize(j[1]))  # big files first balances the workers
    print(f"{len(todo)} corpus files to parse", file=sys.stderr)
    with Pool(jobs) as pool:
        for out, count, note in tqdm(pool.imap_unordered(parse_file, todo), total=len(todo)):
            if note:
                tqdm.write(f"{Path(out).name}: {count} tunes; {note}")


def load_parsed(work: Path) -> list[dict]:
    tunes = []
    for pkl in sorted(work.glob("*.pkl")):
        corpus, stem = pkl.stem.split("__", 1)
        for number, title, onset, duration, pitch in pickle.loads(pkl.read_bytes()):
            tunes.append({"corpus": corpus, "source": stem, "number": number, "title": title,
                          "onset": onset, "duration": duration, "pitch": pitch})
    return tunes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("build/melody_pool"))
    parser.add_argument("--out", type=Path, default=None, help="default: the shipped asset")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--skip-parse", action="store_true")
    args = parser.parse_args(argv)
    import music21

    root = Path(music21.__file__).parent / "corpus"
    start = time.perf_counter()
    if not args.skip_parse:
        parse_all(root, args.work, min(2, args.jobs))
    parse_s = time.perf_counter() - start
    from humdex.training import melody_pool

    out = args.out or melody_pool.POOL_PATH
    tunes = load_parsed(args.work)
    pool, stats = melody_pool.assemble_pool(tunes, melody_pool.load_excluded())
    melody_pool.write_pool(pool, out)
    stats["parse_s"] = round(parse_s, 1)
    stats["file_bytes"] = out.stat().st_size
    print(json.dumps(stats, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
