"""Development benchmark of the classical matcher on the MIREX QBSH database (2048 MIDI songs).

Synthetic sung queries are rendered from the 48 MIR-QBSH songs' own notes (8 s, from the start or
from anywhere, transposed, octave-shifted, at another tempo with local drift, with intonation
errors, pitch drift and jitter, dropped notes, breath gaps and tracker octave errors, 32 ms frames
like a .pv); plus the real MIR-QBSH query jang_toolbox/茉莉花_不詳_0.pv (song 00029).
Reads ../shared/data (development data, never shipped). Usage:

    .venv/bin/python benchmarks/matcher_bench.py [--data DIR] [--queries 100] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from humdex.classical import dtw
from humdex.classical.matcher import MatcherConfig, match
from humdex.classical.references import ReferenceSet
from humdex.frontend.contour import Contour
from humdex.frontend.melody import Note, notes_to_contour, read_midi
from humdex.frontend.pitchfile import read_pv

ROOT = Path(__file__).resolve().parents[1]
QUERY_HOP_S = 0.032  # MIR-QBSH .pv frames (256 samples at 8 kHz)
QUERY_S = 8.0
REAL_QUERY = ("dev_queries/jang_toolbox/茉莉花_不詳_0.pv", 28)  # row of 00029.mid


def load_db(db: Path) -> tuple[list[list[Note]], ReferenceSet, float]:
    paths = sorted(db.glob("*.mid"))
    t0 = time.perf_counter()
    notes = [read_midi(p) for p in tqdm(paths, desc="read MIDI", leave=False)]
    refs = ReferenceSet.from_contours([notes_to_contour(n, 0.01) for n in notes])
    return notes, refs, time.perf_counter() - t0


@dataclass(frozen=True)
class Singer:
    """How far a synthetic query strays from the song (each field 0 = perfect)."""

    tempo_spread: float = np.log(1.4)  # sung tempo ratio log-uniform in exp(+-tempo_spread)
    timing_sigma: float = 0.15  # per-note log-duration noise
    intonation_st: float = 0.3  # per-note pitch error
    drift_st_per_s: float = 0.12  # std of a linear pitch drift
    jitter_st: float = 0.15  # per-frame pitch noise
    drop_p: float = 0.05  # notes left out
    gap_p: float = 0.3  # notes whose end is unvoiced (breath, consonant)
    octave_p: float = 0.03  # notes tracked an octave off


def sung_query(
    notes: list[Note], rng: np.random.Generator, from_start: bool, singer: Singer = Singer()
) -> Contour:
    """An 8 s imperfect rendition of a passage of `notes` at QUERY_HOP_S (NaN = unvoiced)."""
    tempo = float(np.exp(rng.uniform(-singer.tempo_spread, singer.tempo_spread)))  # >1: slower
    song_end = notes[-1].end_s
    span = QUERY_S / tempo
    start = notes[0].onset_s if from_start else rng.uniform(0, max(0.0, song_end - span))
    kept = [n for n in notes if n.end_s > start and n.onset_s < start + span * 1.3]
    onsets = [max(n.onset_s, start) for n in kept] + [kept[-1].end_s]
    shift = rng.uniform(-6, 6) + 12 * rng.choice([-1, 0, 0, 1])
    t, pieces = rng.uniform(0.0, 0.4), []  # leading silence
    drift_rate = rng.normal(0, singer.drift_st_per_s)  # semitones per second
    for k, n in enumerate(kept):
        ioi = onsets[k + 1] - onsets[k]  # inter-onset interval: the note and the rest after it
        dur = max(0.06, ioi * tempo * np.exp(rng.normal(0, singer.timing_sigma)))
        pitch = n.pitch_midi + shift + rng.normal(0, singer.intonation_st) + drift_rate * t
        octave_error, sign = rng.random() < singer.octave_p, rng.choice([-1, 1])
        pitch += 12 * sign * octave_error  # tracker octave error
        voiced = min(1.0, n.duration_s / ioi) if ioi > 0 else 1.0
        if pieces and rng.random() < singer.drop_p:  # dropped note: the previous one is held
            t0, d0, p0, _ = pieces[-1]
            pieces[-1] = (t0, d0 + dur, p0, 1.0)
        else:
            pieces.append((t, dur, pitch, voiced))
        t += dur
    n_frames = int(QUERY_S / QUERY_HOP_S)
    times = np.arange(n_frames) * QUERY_HOP_S
    midi = np.full(n_frames, np.nan, np.float32)
    before = None
    for onset, dur, pitch, voiced in pieces:
        sel = np.flatnonzero((times >= onset) & (times < onset + dur * voiced))
        values = pitch + rng.normal(0, singer.jitter_st, len(sel))
        if before is not None and len(sel) > 2:  # glide from the previous note
            values[:2] = (values[:2] + before) / 2
        gap, gap_at = rng.random() < singer.gap_p, rng.uniform(0.6, 0.9)
        if gap:  # breath / articulation gap at the note's end
            values[int(len(values) * gap_at) :] = np.nan
        midi[sel] = values
        before = pitch
    return Contour(midi, QUERY_HOP_S)


def evaluate(queries, refs, from_start: bool, config: MatcherConfig) -> dict[str, float]:
    ranks, latency, cpu = [], [], []
    for q, truth in tqdm(queries, desc="from_start" if from_start else "anywhere", leave=False):
        t0, c0 = time.perf_counter(), time.process_time()
        results = match(q, refs, from_start=from_start, top=10, config=config)
        latency.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        found = [m.index for m in results]
        ranks.append(found.index(truth) + 1 if truth in found else 0)
    r = np.array(ranks)
    return {
        "queries": len(r),
        "top1": float(np.mean(r == 1)),
        "top10": float(np.mean(r >= 1)),
        "mrr": float(np.mean(np.where(r > 0, 1.0 / np.maximum(r, 1), 0.0))),
        "p50_ms": float(np.percentile(latency, 50) * 1e3),
        "p95_ms": float(np.percentile(latency, 95) * 1e3),
        "cpu_p50_ms": float(np.percentile(cpu, 50) * 1e3),  # process CPU time, all threads
        "cpu_p95_ms": float(np.percentile(cpu, 95) * 1e3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--queries", type=int, default=100, help="synthetic queries per mode")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], help="config override NAME=VALUE")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    overrides = {k: eval(v, {}) for k, v in (s.split("=", 1) for s in args.set)}  # dev tool only
    config = MatcherConfig(**overrides)

    notes, refs, build_s = load_db(args.data / "mirex_qbsh_db")
    t0 = time.perf_counter()
    dtw.warmup()
    warm_s = time.perf_counter() - t0
    print(
        f"references: {len(refs)} songs, {refs.n_frames} frames at {refs.hop_s} s, "
        f"{refs.midi.nbytes / 1e6:.1f} MB; read+build {build_s:.1f} s; dtw warmup {warm_s:.2f} s"
    )
    report: dict[str, object] = {"config": overrides}
    rng = np.random.default_rng(args.seed)
    for from_start in (True, False):
        songs = rng.integers(0, 48, args.queries)
        queries = [(sung_query(notes[s], rng, from_start), int(s)) for s in songs]
        res = evaluate(queries, refs, from_start, config)
        mode = "from_start" if from_start else "anywhere"
        report[mode] = res
        print(
            f"{mode:10s} "
            + "  ".join(
                f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in res.items()
            )
        )
    real = Contour(read_pv(args.data / REAL_QUERY[0]).midi, QUERY_HOP_S)
    for from_start in (True, False):
        found = [m.index for m in match(real, refs, from_start=from_start, top=10, config=config)]
        rank = found.index(REAL_QUERY[1]) + 1 if REAL_QUERY[1] in found else None
        report[f"real_00029_{'from_start' if from_start else 'anywhere'}_rank"] = rank
        print(
            f"real query {REAL_QUERY[0]} ({'from_start' if from_start else 'anywhere'}): "
            f"00029 at rank {rank}"
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report["peak_rss_mb"] = peak_mb
    print(f"peak RSS of this process: {peak_mb:.0f} MB")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
