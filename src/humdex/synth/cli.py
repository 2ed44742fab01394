"""`humdex synth`: render the synthetic CHAD corpus, or benchmark queries of given MIDI files."""

from __future__ import annotations

import argparse
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np

from humdex.errors import HumdexError

DEFAULT_OUT = "data/chad_synth"


def run_synth(args: argparse.Namespace) -> int:
    if args.synth_command == "corpus":
        return _run_corpus(args)
    return _run_queries(args)


def _run_corpus(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from humdex.synth.corpus import CorpusConfig, collect_metadata

    if args.hours <= 0 or args.workers < 1:
        raise HumdexError("--hours must be positive and --workers at least 1")
    root = Path(args.out)
    jobs = _jobs(args.split, args.seed, args.pool)
    if args.songs == "records":
        from humdex.synth.sounds import check_sound, get_sound

        check_sound(get_sound(args.sound))
    config = CorpusConfig(full_songs=args.full_songs, songs=args.songs, sound=args.sound)
    target_s = args.hours * 3600.0
    done_s, cpu_s, rendered_s, i = 0.0, 0.0, 0.0, 0
    started = time.perf_counter()
    bar = tqdm(total=round(args.hours, 3), disable=args.quiet, desc="synth corpus",
               bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} h of audio [{elapsed}<{remaining}]")
    with ProcessPoolExecutor(args.workers) as pool:
        pending: set[Future] = set()
        while done_s < target_s or pending:
            while done_s < target_s and len(pending) < 2 * args.workers:
                pending.add(pool.submit(_work, root, jobs(i), config))
                i += 1
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                seconds, cpu, fresh = fut.result()
                done_s += seconds
                if fresh:
                    cpu_s, rendered_s = cpu_s + cpu, rendered_s + seconds
                bar.update(round(seconds / 3600, 4))
            if done_s >= target_s:
                for fut in pending:
                    fut.cancel()
                pending = {f for f in pending if not f.cancelled()}
    bar.close()
    rows, songs = collect_metadata(root)
    wall = time.perf_counter() - started
    speed = f"{rendered_s / cpu_s:.0f} h of audio per CPU-hour" if cpu_s > 0 else "nothing new rendered"
    print(f"{root}: {done_s / 3600:.2f} h of fragments, {rows} rows in metadata.csv, {songs} full songs; "
          f"{i} groups, {wall:.0f} s wall; {speed}")  # fmt: skip
    return 0


def _jobs(split: str, seed: int, pool_path: str | None) -> Any:
    from humdex.synth.corpus import MelodyJob, group_id_for
    from humdex.training.melody_pool import POOL_PATH, load_pool

    path = Path(pool_path) if pool_path else POOL_PATH
    if not path.is_file():
        raise HumdexError(f"{path}: melody pool not found")
    pool = [m for m in load_pool(split, path) if len(m.onset_s) >= 8 and m.onset_s[-1] >= 4.0]
    if not pool:
        raise HumdexError(f"the melody pool has no usable melodies in split {split!r}")
    order = np.random.default_rng([seed, 7]).permutation(len(pool))

    def job(index: int) -> MelodyJob:
        m = pool[int(order[index % len(order)])]
        return MelodyJob(group_id_for(split, index), m.melody_id, m.corpus, m.split,
                         np.asarray(m.onset_s), np.asarray(m.duration_s), np.asarray(m.pitch_midi),
                         seed, index)  # fmt: skip

    return job


def _work(root: Path, job: Any, config: Any) -> tuple[float, float, bool]:
    from humdex.synth.corpus import META_DIR, write_group

    fresh = not (root / META_DIR / f"{job.group_id}.csv").is_file()
    t0 = time.process_time()
    seconds = write_group(root, job, config)
    return seconds, time.process_time() - t0, fresh


def _run_queries(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from humdex.synth.benchmark import QueryPlan, midi_files, render_benchmark_query
    from humdex.training.chad import write_wav

    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    bad = [k for k in kinds if k not in ("hum", "whistle", "sing")]
    if bad or not kinds:
        raise HumdexError(f"--kinds: unknown kind(s) {bad}; use hum, whistle, sing")
    files = midi_files([Path(p) for p in args.midi])
    out = Path(args.out)
    lines = []
    plan = QueryPlan(duration_s=args.duration, from_start=not args.anywhere, channel=not args.clean)
    for n, path in enumerate(tqdm(files, disable=args.quiet, desc="synth queries")):
        for kind in kinds:
            for k in range(args.per_song):
                rng = np.random.default_rng([args.seed, n, k, kinds.index(kind)])
                rend = render_benchmark_query(path, kind, rng, plan)
                rel = Path("queries") / f"{path.stem}_{kind}{k}.wav"
                write_wav(out / rel, rend.audio, rend.sample_rate)
                lines.append(f"{rel.as_posix()}\t{path.stem}")
    from humdex.training.chad import atomic_write_bytes

    atomic_write_bytes(out / "queries.tsv", ("\n".join(lines) + "\n").encode("utf-8"))
    print(f"{len(lines)} queries of {len(files)} songs -> {out / 'queries.tsv'}")
    return 0
