"""Calibrate the "no match" decision: sung queries of songs in the catalog vs songs not in it.

    python benchmarks/no_match_calibration.py                     # pool melodies: sets the defaults
    python benchmarks/no_match_calibration.py --songs ../shared/data/mirex_qbsh_db --catalog-sizes 1748 \
        --min-score S --min-margin M                                # measures them on evaluation data

`--songs pool` (the default) takes melodies from humdex's melody pool (music21's corpora, the
evaluation melodies removed) and chooses the decision's MIN_SCORE and MIN_MARGIN; a folder of
MIDI files (the MIREX-protocol database) with --min-score/--min-margin only measures a given
rule on evaluation data, never tunes on it. The songs are split (seeded) into a catalog and
held-out songs; each catalog size uses the first N catalog songs. A query is a synthesized
person (humdex.synth.render.render_query: hum, sing or whistle, any key and tempo, singing
errors, phone channel) performing an 8-12 s passage of a catalog song ("in") or of a held-out
song ("out"), pitch-tracked and searched as `humdex search` does. Results go to JSONL files, so
an interrupted run resumes.

The rule (humdex.nomatch): match iff best score >= MIN_SCORE and best - mean(next 9) >= MIN_MARGIN.
It is chosen on the even-numbered queries of every catalog size at once (false accepts <=
--fa-target at each size, most right songs accepted on average) and reported on the odd ones:
false accept = an "out" query called a match; false reject = an "in" query called no match.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]


def pool_midi_files(folder: Path, n: int, seed: int, pool_path: Path | None = None,
                    min_s: float = 14.0, splits: tuple[str, ...] | None = None) -> list[Path]:
    """n melodies of the melody pool (at least min_s long; of `splits` only, if given) written as
    MIDI files into folder."""
    from humdex.frontend.melody import write_midi
    from humdex.training.melody_pool import POOL_PATH, load_pool

    pool = [m for m in load_pool(path=pool_path or POOL_PATH)
            if m.onset_s[-1] + m.duration_s[-1] >= min_s and (splits is None or m.split in splits)]
    chosen = np.random.default_rng(seed).choice(len(pool), min(n, len(pool)), replace=False)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in sorted(chosen):
        path = folder / f"{pool[i].melody_id.replace('/', '_')}.mid"
        if not path.exists():
            write_midi(pool[i].notes, path)
        files.append(path)
    return files


def audio_songs(midi_files: list[Path], folder: Path, seed: int) -> dict[str, Path]:
    """Each melody rendered as a song (a singer over an accompaniment) to folder/<stem>.wav."""
    from humdex.frontend.melody import read_midi
    from humdex.synth.render import render_song
    from humdex.training.chad import write_wav

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, path in enumerate(tqdm(midi_files, desc="render songs")):
        wav = folder / f"{path.stem}.wav"
        if not wav.exists():
            song = render_song(read_midi(path), np.random.default_rng([seed, i]))
            write_wav(wav, song.audio, song.sample_rate)
        out[path.stem] = wav
    return out


def split_songs(files: list[Path], held_out: int, seed: int) -> tuple[list[Path], list[Path]]:
    """(catalog files in a seeded random order, held-out files)."""
    order = np.random.default_rng(seed).permutation(len(files))
    return [files[i] for i in order[held_out:]], sorted(files[i] for i in order[:held_out])


def run_query(path: Path, index: int, seed: int, snapshot: object, method: str | None,
              db_dir: Path, from_start: bool = False) -> dict:
    """Render, pitch-track and search one query of the song in `path`; a JSON-friendly record."""
    from humdex.demo import excerpt
    from humdex.errors import HumdexError
    from humdex.frontend.melody import read_midi
    from humdex.nomatch import COHORT
    from humdex.search import query_from_audio, search
    from humdex.synth.render import render_query

    rng = np.random.default_rng([seed, index])
    passage, start_s = excerpt(read_midi(path), rng, from_start)
    rendition = render_query(passage, rng)
    record = {"song": path.stem, "kind": rendition.kind, "start_s": round(start_s, 2),
              "duration_s": round(rendition.duration_s, 2)}
    try:
        query = query_from_audio(rendition.audio, rendition.sample_rate, f"q{index}")
    except HumdexError as err:
        return {**record, "error": str(err)}
    result = search(query, snapshot, top=COHORT, db_dir=db_dir, from_start=from_start,
                    **({"method": method} if method else {}))
    ids = [h.song_id for h in result.hits]
    return {**record, "method": result.method, "best": ids[0],
            "scores": [round(h.score, 4) for h in result.hits],
            "rank": ids.index(path.stem) + 1 if path.stem in ids else None,
            "ms": round(result.timing_ms["total"], 1)}


def run_size(inside: list[Path], outside: list[Path], size: int, args: argparse.Namespace,
             work: Path) -> list[dict]:
    """Catalog of the first `size` songs; args.queries "in" and "out" queries; their records."""
    from humdex.catalog.catalog import Catalog

    songs = sorted(inside[:size])
    started = time.perf_counter()
    catalog = Catalog.open(work / f"catalog-{size}", create=True)
    if len(catalog) != len(songs):
        catalog.add_files([args.audio_of[p.stem] if args.audio else p for p in songs], progress=True)
    print(f"catalog: {len(catalog)} songs ({time.perf_counter() - started:.0f} s); "
          f"held out: {len(outside)}")
    snapshot = catalog.snapshot()
    rng = np.random.default_rng(args.seed + size)
    plan = [("in", songs[i]) for i in rng.choice(len(songs), min(args.queries, len(songs)),
                                                 replace=False)]
    plan += [("out", outside[i % len(outside)]) for i in rng.permutation(args.queries)]
    log = work / f"queries-{size}-{args.queries}{'-start' if args.from_start else ''}.jsonl"
    done = {json.loads(line)["index"]: json.loads(line) for line in log.open()} if log.exists() else {}
    with log.open("a") as f:
        for index, (which, path) in enumerate(tqdm(plan, desc=f"queries ({size} songs)")):
            if index not in done:
                done[index] = {"index": index, "set": which, "catalog": size,
                               **run_query(path, index, args.seed, snapshot, args.method,
                                           catalog.db_dir, args.from_start)}
                f.write(json.dumps(done[index]) + "\n")
                f.flush()
    return [done[i] for i in sorted(done)]


def outcome(records: list[dict], min_score: float, min_margin: float) -> dict:
    """False accept / reject rates of the rule over records (queries that failed count as no match)."""
    best, lead, inn, right = _features(records)
    match = (best >= min_score) & (lead >= min_margin)
    return {"n_in": int(inn.sum()), "n_out": int((~inn).sum()),
            "false_accept": round(float(match[~inn].mean()), 4),
            "false_reject": round(float((~match[inn]).mean()), 4),
            "accepted_right_song": round(float((match & right)[inn].mean()), 4),
            "accepted_wrong_song": round(float((match & ~right)[inn].mean()), 4),
            "top1_in_catalog": round(float(right[inn].mean()), 4)}


def _features(records: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(best score, margin, is "in", right song first) per record, as humdex.nomatch sees them."""
    from humdex.nomatch import decide

    decisions = [decide(r.get("scores") or []) for r in records]
    best = np.array([-1.0 if d.score is None else d.score for d in decisions])
    lead = np.array([np.inf if d.margin is None else d.margin for d in decisions])
    return (best, lead, np.array([r["set"] == "in" for r in records]),
            np.array([r.get("rank") == 1 for r in records]))


def choose_rule(by_size: dict[str, list[dict]], fa_target: float) -> tuple[float, float]:
    """(min_score, min_margin): FA <= fa_target in every run and catalog size, most right songs
    accepted on average; among equally good rules, the middle one of the min_score plateau."""
    rules: list[tuple[float, float, float]] = []
    for min_score in np.arange(0.10, 0.95, 0.01):
        for min_margin in np.arange(0.0, 0.40, 0.005):
            rows = [outcome(recs, min_score, min_margin) for recs in by_size.values()]
            if all(r["false_accept"] <= fa_target for r in rows):
                gain = float(np.mean([r["accepted_right_song"] for r in rows]))
                rules.append((gain, round(float(min_score), 3), round(float(min_margin), 3)))
                break  # larger margins only lose accepts at this min_score
    top = max(gain for gain, _, _ in rules)
    plateau = [(score, lead) for gain, score, lead in rules if gain == top]
    return plateau[len(plateau) // 2]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--songs", default="pool",
                   help="'pool' (humdex.training.melody_pool melodies) or a folder of MIDI songs")
    p.add_argument("--pool", type=Path, default=None,
                   help="melody pool file (default: the one shipped in humdex/assets)")
    p.add_argument("--catalog-sizes", type=int, nargs="+", default=[2000, 200])
    p.add_argument("--held-out", type=int, default=300, help="songs kept out of the catalog")
    p.add_argument("--queries", type=int, default=200, help="queries of each set (in, out)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fa-target", type=float, default=0.05)
    p.add_argument("--min-score", type=float, help="measure this rule instead of choosing one")
    p.add_argument("--min-margin", type=float)
    p.add_argument("--work", type=Path, default=REPO / "out/no_match")
    p.add_argument("--also", type=Path, nargs="*", default=[],
                   help="result folders of earlier runs (their queries-*.jsonl) to include")
    p.add_argument("--json", type=Path, help="write the report here as JSON")
    p.add_argument("--method", default=None, help="search method (default: humdex's default)")
    p.add_argument("--from-start", action="store_true", help="queries sung from the song's first note, "
                   "searched from the start (MIREX protocol)")
    p.add_argument("--audio", action="store_true",
                   help="catalog songs rendered as audio (singer + accompaniment) from the pool's "
                        "validation and test melodies, which the shipped models never trained on")
    args = p.parse_args(argv)

    n_songs = max(args.catalog_sizes) + args.held_out
    if args.songs == "pool":
        splits = ("validation", "test") if args.audio else None
        files = pool_midi_files(args.work / f"pool-midi-s{args.seed}-n{n_songs}{'-vt' if args.audio else ''}",
                                n_songs, args.seed, args.pool, splits=splits)
    else:
        files = sorted(Path(args.songs).glob("*.mid"))
    if len(files) < n_songs:
        print(f"{args.songs}: {len(files)} MIDI files, need {n_songs}", file=sys.stderr)
        return 2
    inside, outside = split_songs(files, args.held_out, args.seed)
    tag = f"-{args.method}" if args.method else ""
    work = args.work / f"{Path(args.songs).name}{'-audio' if args.audio else ''}-s{args.seed}-h{args.held_out}{tag}"
    args.audio_of = audio_songs(inside, work / "songs", args.seed) if args.audio else {}
    by_size: dict[str, list[dict]] = {
        f"{work.parent.name}/{work.name}/{size}": run_size(inside, outside, size, args, work)
        for size in args.catalog_sizes}
    for extra in args.also:  # earlier runs (other seeds or pools) join the choice and the report
        for log in sorted(extra.glob("queries-*.jsonl")):
            by_size[f"{extra.parent.name}/{extra.name}/{log.stem.split('-')[1]}"] = [
                json.loads(line) for line in log.open()]
    half = {k: {s: [r for r in recs if r["index"] % 2 == k] for s, recs in by_size.items()}
            for k in (0, 1)}
    if args.min_score is None:
        min_score, min_margin = choose_rule(half[0], args.fa_target)
    else:
        min_score, min_margin = args.min_score, args.min_margin or 0.0
    report = {"songs": str(args.songs), "audio": args.audio, "method": args.method, "from_start": args.from_start,
              "held_out": len(outside), "queries": args.queries,
              "seed": args.seed, "fa_target": args.fa_target,
              "min_score": min_score, "min_margin": min_margin, "by_catalog_size": {}}
    for size, recs in by_size.items():
        report["by_catalog_size"][size] = {
            "calibration_half": outcome(half[0][size], min_score, min_margin),
            "test_half": outcome(half[1][size], min_score, min_margin),
            "all": outcome(recs, min_score, min_margin),
            "score_only_rule_all": _score_only(recs, args.fa_target),
            "errors": sum("error" in r for r in recs),
        }
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    return 0


def _score_only(records: list[dict], fa_target: float) -> dict:
    """For comparison: the best score alone (no margin), its threshold set to FA <= fa_target."""
    for min_score in np.arange(0.10, 1.001, 0.005):
        row = outcome(records, float(min_score), -1.0)
        if row["false_accept"] <= fa_target:
            return {"min_score": round(float(min_score), 3), **row}
    return {}


if __name__ == "__main__":
    raise SystemExit(main())
