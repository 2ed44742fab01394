"""Melody extraction from mixes: a development set of records with their true lead melody, and per-frame accuracy.

The development set (NOT evaluation): melodies of the melody pool's VALIDATION split (never the MIREX
songs, never dev_queries), rendered as records with the TRAIN sound (humdex.synth.sounds.TRAIN,
FluidR3_GM), each stored with the renderer's true lead pitch per 10 ms; plus one synthetic query
(hum, whistle or sung, 10 s from anywhere) of each melody with its true pitch. Tune front-end
parameters here only; report on the held-out records benchmark (benchmarks/records_benchmark.py).

    nice -n 10 python benchmarks/melody_extraction.py render --out data/melody_dev --songs 80
    nice -n 10 python benchmarks/melody_extraction.py eval --out data/melody_dev --pitch swift salience

`eval` runs the song front end (humdex.catalog.ingest.read_song_melody) on each record with each
tracker and scores the contour against the true lead (humdex.metrics' melody metrics), and the
query front end (humdex.frontend.pitch.query_contour) on each query.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

KINDS = ("hum", "whistle", "sing")


def dev_melodies(n_songs: int, seed: int) -> list[tuple[str, object]]:
    """[(id, Score)]: validation-split pool melodies of >= 15 s and >= 12 notes, in a fixed order."""
    from humdex.synth.score import Score
    from humdex.training.melody_pool import load_pool

    pool = load_pool("validation")
    out: list[tuple[str, object]] = []
    for i in np.random.default_rng([seed, 99]).permutation(len(pool)):
        m = pool[int(i)]
        if len(m.onset_s) < 12 or m.onset_s[-1] < 15.0:
            continue
        out.append((f"va{int(i):05d}", Score(np.asarray(m.onset_s), np.asarray(m.duration_s), np.asarray(m.pitch_midi))))
        if len(out) >= n_songs:
            break
    return out


def render(args: argparse.Namespace) -> int:
    from humdex.synth.benchmark import QueryPlan, query_from_score
    from humdex.synth.records import render_record
    from humdex.synth.sounds import get_sound
    from humdex.training.chad import write_wav

    sound = get_sound(args.sound)
    out = Path(args.out)
    for sub in ("songs", "truth", "info", "queries"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for n, (song_id, score) in enumerate(dev_melodies(args.songs, args.seed)):
        if not (out / "songs" / f"{song_id}.wav").is_file():
            rec = render_record(score, np.random.default_rng([args.seed, n, 1]), sound, "original")
            np.save(out / "truth" / f"{song_id}.npy", rec.f0_midi.astype(np.float32))
            (out / "info" / f"{song_id}.json").write_text(json.dumps(rec.info))
            write_wav(out / "songs" / f"{song_id}.wav", rec.audio, rec.sample_rate)  # last: marks done
        kind = KINDS[n % len(KINDS)]
        q = out / "queries" / f"{song_id}_{kind}.wav"
        if not q.is_file():
            plan = QueryPlan(duration_s=10.0, from_start=False)
            rend = query_from_score(score, kind, np.random.default_rng([args.seed, n, 2]), plan)
            np.save(out / "truth" / f"{song_id}_{kind}.npy", rend.f0_midi.astype(np.float32))
            write_wav(q, rend.audio, rend.sample_rate)
        if (n + 1) % 10 == 0:
            print(f"{n + 1} songs, {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


def _score(truth: np.ndarray, est_midi: np.ndarray) -> dict[str, float]:
    from humdex.metrics import melody_accuracy

    n = min(len(truth), len(est_midi))
    return melody_accuracy(truth[:n], est_midi[:n])


def evaluate(args: argparse.Namespace) -> int:
    from humdex.catalog.ingest import read_song_melody
    from humdex.errors import HumdexError
    from humdex.frontend import audio, pitch

    out = Path(args.out)
    songs = sorted((out / "songs").glob("*.wav"))[: args.limit]
    rows: dict[str, list[dict[str, float]]] = defaultdict(list)
    per_song: dict[str, dict[str, float]] = defaultdict(dict)
    cpu: dict[str, float] = defaultdict(float)
    seconds = 0.0
    for wav in songs:
        truth = np.load(out / "truth" / f"{wav.stem}.npy")
        seconds += audio.load(wav, audio.SAMPLE_RATE).shape[0] / audio.SAMPLE_RATE
        for method in args.pitch:
            t0 = time.process_time()
            try:
                contour = read_song_melody(wav, pitch_method=method, separate=args.separate)
                est = contour.midi.astype(np.float64)
            except HumdexError:
                est = np.full(len(truth), np.nan)
            cpu[method] += time.process_time() - t0
            s = _score(truth, est)
            rows[f"song/{method}"].append(s)
            per_song[wav.stem][method] = s["pitch_accuracy_1st"]
    if args.queries:
        for q in sorted((out / "queries").glob("*.wav"))[: args.limit]:
            truth = np.load(out / "truth" / f"{q.stem}.npy")
            samples = audio.load(q, audio.SAMPLE_RATE)
            for method in args.pitch:
                try:
                    est = pitch.query_contour(samples, audio.SAMPLE_RATE, method).midi.astype(np.float64)
                except HumdexError:
                    est = np.full(len(truth), np.nan)
                rows[f"query/{method}"].append(_score(truth, est))
    keys = ("pitch_accuracy", "pitch_accuracy_1st", "chroma_accuracy", "octave_error_share", "voicing_recall",
            "voicing_false_alarm")  # fmt: skip
    print(f"\n{len(songs)} records ({seconds / 60:.1f} min of audio), separate={args.separate}\n")
    print("| input / tracker | n | " + " | ".join(keys) + " | CPU s per min |")
    print("|---" * (len(keys) + 3) + "|")
    for name, scores in rows.items():
        means = [np.mean([s[k] for s in scores]) for k in keys]
        method = name.split("/")[1]
        speed = f"{cpu[method] / (seconds / 60):.1f}" if name.startswith("song") else ""
        print(f"| {name} | {len(scores)} | " + " | ".join(f"{m:.3f}" for m in means) + f" | {speed} |")
    if args.per_song:
        for sid, d in per_song.items():
            print(sid, " ".join(f"{m}={v:.2f}" for m, v in d.items()))
    return 0


def tune(args: argparse.Namespace) -> int:
    """One-at-a-time sweep of SalienceConfig fields (and the voicing `threshold`) around the defaults."""
    from dataclasses import replace

    from humdex.frontend import audio, pitch
    from humdex.frontend.salience import SalienceConfig, predominant_f0

    out = Path(args.out)
    data = [(audio.load(w, audio.SAMPLE_RATE), np.load(out / "truth" / f"{w.stem}.npy"))
            for w in sorted((out / "songs").glob("*.wav"))[: args.limit]]  # fmt: skip
    base, voicing = SalienceConfig(), pitch.VOICING["salience"]
    runs = [("default", base, voicing)]
    for spec in args.grid:
        name, values = spec.split("=")
        for v in values.split(","):
            if name == "threshold":
                runs.append((f"{name}={v}", base, replace(voicing, threshold=float(v))))
            else:
                typed = type(getattr(base, name))(float(v))
                runs.append((f"{name}={v}", replace(base, **{name: typed}), voicing))
    print("| setting | pitch_accuracy | pitch_accuracy_1st | octave_error_share | voicing_recall | false_alarm | CPU s |")
    print("|---|---|---|---|---|---|---|")
    for label, cfg, vcfg in runs:
        t0, scores = time.process_time(), []
        for samples, truth in data:
            f0, periodicity = predominant_f0(samples, audio.SAMPLE_RATE, pitch.HOP_SAMPLES, cfg)
            periodicity = np.where(pitch.frame_rms_db(samples) < pitch.SILENCE_DB, 0.0, periodicity)
            track = pitch.PitchTrack(f0, periodicity.astype(np.float32), pitch.HOP_S)
            scores.append(_score(truth, pitch.contour_from_track(track, vcfg).midi.astype(np.float64)))
        m = {k: np.mean([s[k] for s in scores]) for k in scores[0]}
        print(f"| {label} | {m['pitch_accuracy']:.3f} | {m['pitch_accuracy_1st']:.3f} | {m['octave_error_share']:.3f} | "
              f"{m['voicing_recall']:.3f} | {m['voicing_false_alarm']:.3f} | {time.process_time() - t0:.0f} |", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = p.add_subparsers(dest="stage", required=True)
    r = sub.add_parser("render")
    r.add_argument("--out", required=True)
    r.add_argument("--songs", type=int, default=80)
    r.add_argument("--seed", type=int, default=1515)
    r.add_argument("--sound", default="train")
    e = sub.add_parser("eval")
    e.add_argument("--out", required=True)
    e.add_argument("--pitch", nargs="+", default=["swift"])
    e.add_argument("--separate", default="none", choices=("none", "spleeter"))
    e.add_argument("--limit", type=int, default=None, help="first N records only")
    e.add_argument("--queries", action="store_true", help="also score the query front end on the dev queries")
    e.add_argument("--per-song", action="store_true")
    t = sub.add_parser("tune")
    t.add_argument("--out", required=True)
    t.add_argument("--limit", type=int, default=None)
    t.add_argument("--grid", nargs="*", default=[], help="field=v1,v2 (SalienceConfig field or threshold)")
    args = p.parse_args(argv)
    return {"render": render, "eval": evaluate, "tune": tune}[args.stage](args)


if __name__ == "__main__":
    raise SystemExit(main())
