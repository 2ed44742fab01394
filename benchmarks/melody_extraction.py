"""Melody extraction from mixes: a development set of records with their true lead melody, and per-frame accuracy.

The development set (NOT evaluation): melodies of the melody pool's VALIDATION split (never the MIREX
songs, never dev_queries), rendered as records with the TRAIN sound (humdex.synth.sounds.TRAIN,
FluidR3_GM), each stored with the renderer's true lead pitch per 10 ms; plus one synthetic query
(hum, whistle or sung, 10 s from anywhere) of each melody with its true pitch. Tune front-end
parameters here only; report on the held-out records benchmark (benchmarks/records_benchmark.py).

    nice -n 10 python benchmarks/melody_extraction.py render --out data/melody_dev --songs 80
    humdex index data/melody_dev/songs --db data/melody_dev/db        # the dev records as a catalog
    humdex index data/melody_dev/midi --db data/melody_dev/db_midi    # the same melodies as MIDI
    humdex eval --db data/melody_dev/db --queries data/melody_dev/dev_queries.tsv --anywhere
    nice -n 10 python benchmarks/melody_extraction.py eval --out data/melody_dev --pitch swift salience

`eval` runs the song front end (humdex.catalog.ingest.read_song_melody) on each record with each
tracker and scores the contour against the true lead (humdex.metrics' melody metrics), and the
query front end (humdex.frontend.pitch.query_contour) on each query. `stem` scores trackers on
Spleeter's vocal stem itself (no fallback to the mix), by the record's lead, each stem separated
once and kept in OUT/stems:

    nice -n 10 python benchmarks/melody_extraction.py stem --out data/melody_dev --limit 60 --pitch swift salience pyin

`queries` writes more queries of the same melodies, of one kind and length (e.g. 25 s sung queries,
MTG-QBH's kind), to OUT/queries_KIND_SECONDS/ with their list OUT/queries_KIND_SECONDS.tsv:

    python benchmarks/melody_extraction.py queries --out data/melody_dev --songs 200 --kind sing --duration 25
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

KINDS = ("hum", "whistle", "sing")
KEYS = ("pitch_accuracy", "pitch_accuracy_1st", "chroma_accuracy", "octave_error_share", "voicing_recall",
        "voicing_false_alarm")  # fmt: skip


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
    from records_benchmark import write_score_midi

    for sub in ("songs", "truth", "info", "queries"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    lines = []
    for n, (song_id, score) in enumerate(dev_melodies(args.songs, args.seed)):
        if not (out / "midi" / f"{song_id}.mid").is_file():
            write_score_midi(score, out / "midi" / f"{song_id}.mid")
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
        lines.append(f"queries/{song_id}_{kind}.wav\t{song_id}")
        if (n + 1) % 10 == 0:
            print(f"{n + 1} songs, {time.perf_counter() - t0:.0f} s", flush=True)
    (out / "dev_queries.tsv").write_text("\n".join(lines) + "\n")
    return 0


def queries(args: argparse.Namespace) -> int:
    from humdex.synth.benchmark import QueryPlan, query_from_score
    from humdex.training.chad import write_wav

    name = f"queries_{args.kind}_{args.duration:g}"
    folder = Path(args.out) / name
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for n, (song_id, score) in enumerate(dev_melodies(args.songs, args.seed)):
        q = folder / f"{song_id}.wav"
        if not q.is_file():
            plan = QueryPlan(duration_s=args.duration, from_start=False)
            rend = query_from_score(score, args.kind, np.random.default_rng([args.query_seed, n, 3]), plan)
            write_wav(q, rend.audio, rend.sample_rate)
        lines.append(f"{name}/{q.name}\t{song_id}")
    (Path(args.out) / f"{name}.tsv").write_text("\n".join(lines) + "\n")
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
    if args.net_weights:  # a candidate melody net in place of the shipped one
        from humdex.frontend import melody_net

        melody_net.WEIGHTS_PATH = Path(args.net_weights)
        melody_net.load_shipped.cache_clear()
    songs = sorted((out / "songs").glob("*.wav"))[args.skip: args.limit]
    rows: dict[str, list[dict[str, float]]] = defaultdict(list)
    per_song: dict[str, dict[str, float]] = defaultdict(dict)
    cpu: dict[str, float] = defaultdict(float)
    seconds = 0.0
    for wav in songs:
        truth = np.load(out / "truth" / f"{wav.stem}.npy")
        seconds += audio.load(wav, audio.SAMPLE_RATE).shape[0] / audio.SAMPLE_RATE
        info = _info(out, wav.stem)
        lead = _lead(info)
        level = "lead <= 3 dB over band" if info["lead_over_band_db"] <= 3 else "lead > 3 dB over band"
        for method in args.pitch:
            t0 = time.process_time()
            try:
                contour = read_song_melody(wav, pitch_method=None if method == "default" else method,
                                           separate=args.separate)
                est = contour.midi.astype(np.float64)
            except HumdexError:
                est = np.full(len(truth), np.nan)
            cpu[method] += time.process_time() - t0
            s = _score(truth, est)
            rows[f"song/{method}"].append(s)
            for group in (lead, level):
                rows[f"song/{method} ({group})"].append(s)
            per_song[wav.stem][method] = s["pitch_accuracy_1st"]
    if args.queries:
        for q in sorted((out / "queries").glob("*.wav"))[: args.limit]:
            truth = np.load(out / "truth" / f"{q.stem}.npy")
            samples = audio.load(q, audio.SAMPLE_RATE)
            for method in args.pitch:
                try:
                    tracker = pitch.DEFAULT_METHOD if method == "default" else method
                    est = pitch.query_contour(samples, audio.SAMPLE_RATE, tracker).midi.astype(np.float64)
                except HumdexError:
                    est = np.full(len(truth), np.nan)
                rows[f"query/{method}"].append(_score(truth, est))
    print(f"\n{len(songs)} records ({seconds / 60:.1f} min of audio), separate={args.separate}\n")
    print("| input / tracker | n | " + " | ".join(KEYS) + " | CPU s per min |")
    print("|---" * (len(KEYS) + 3) + "|")
    for name, scores in rows.items():
        means = [np.mean([s[k] for s in scores]) for k in KEYS]
        method = name.split("/")[1].split(" ")[0]
        speed = f"{cpu[method] / (seconds / 60):.1f}" if name.startswith("song") else ""
        print(f"| {name} | {len(scores)} | " + " | ".join(f"{m:.3f}" for m in means) + f" | {speed} |")
    if args.per_song:
        for sid, d in per_song.items():
            print(sid, " ".join(f"{m}={v:.2f}" for m, v in d.items()))
    return 0


def stem(args: argparse.Namespace) -> int:
    from humdex.errors import HumdexError
    from humdex.frontend import audio, pitch
    from humdex.frontend.separation import separate_vocals
    from humdex.training.chad import write_wav

    out = Path(args.out)
    (out / "stems").mkdir(exist_ok=True)
    rows: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
    cpu: dict[str, float] = defaultdict(float)
    seconds = 0.0
    for wav in sorted((out / "songs").glob("*.wav"))[: args.limit]:
        lead = _lead(_info(out, wav.stem))
        if args.lead and lead != args.lead:
            continue
        cached = out / "stems" / wav.name
        if not cached.is_file():
            write_wav(cached, separate_vocals(audio.load(wav, audio.SAMPLE_RATE), audio.SAMPLE_RATE),
                      audio.SAMPLE_RATE)
        vocal = audio.load(cached, audio.SAMPLE_RATE)
        seconds += len(vocal) / audio.SAMPLE_RATE
        truth = np.load(out / "truth" / f"{wav.stem}.npy")
        for method in args.pitch:
            t0 = time.process_time()
            try:
                est = pitch.query_contour(vocal, audio.SAMPLE_RATE, method).midi.astype(np.float64)
            except HumdexError:
                est = np.full(len(truth), np.nan)
            cpu[method] += time.process_time() - t0
            rows[(method, lead)].append(_score(truth, est))
    print(f"\nvocal stems of {seconds / 60:.1f} min of audio\n")
    print("| tracker on the stem | lead | n | " + " | ".join(KEYS) + " | CPU s per min |")
    print("|---" * (len(KEYS) + 4) + "|")
    for (method, lead), scores in sorted(rows.items()):
        means = [np.mean([s[k] for s in scores]) for k in KEYS]
        print(f"| {method} | {lead} | {len(scores)} | " + " | ".join(f"{m:.3f}" for m in means)
              + f" | {cpu[method] / (seconds / 60):.1f} |")
    return 0


def _info(out: Path, song_id: str) -> dict:
    """What the renderer recorded of a dev record (its lead, levels, production)."""
    return json.loads((out / "info" / f"{song_id}.json").read_text())


def _lead(info: dict) -> str:
    """"sung lead" or "instrument lead", from a record's info."""
    return "sung lead" if str(info["lead"]).startswith("vocal") else "instrument lead"


def tune(args: argparse.Namespace) -> int:
    """One-at-a-time sweep of SalienceConfig fields (and the voicing `threshold`) around the defaults,
    scored per frame against the true lead and by retrieval: each dev query (swift-f0) against the
    dev records' melodies with the classical matcher (top-1 / MRR)."""
    from dataclasses import replace

    from humdex.catalog.ingest import REFERENCE_HOP_S
    from humdex.frontend import audio, pitch
    from humdex.frontend.salience import SalienceConfig, predominant_f0

    out = Path(args.out)
    wavs = sorted((out / "songs").glob("*.wav"))[: args.limit]
    data = [(audio.load(w, audio.SAMPLE_RATE), np.load(out / "truth" / f"{w.stem}.npy")) for w in wavs]
    queries = _dev_queries(out, [w.stem for w in wavs])
    base, voicing = SalienceConfig(**_typed(SalienceConfig(), args.base)), pitch.VOICING["salience"]
    if "threshold" in args.base:
        voicing = replace(voicing, threshold=float(args.base["threshold"]))
    runs: list[tuple[str, SalienceConfig | None, pitch.VoicingConfig]] = [("swift", None, pitch.VOICING["swift"]),
                                                                        ("base", base, voicing)]  # fmt: skip
    for spec in args.grid:
        name, values = spec.split("=")
        for v in values.split(","):
            if name == "threshold":
                runs.append((f"{name}={v}", base, replace(voicing, threshold=float(v))))
            else:
                runs.append((f"{name}={v}", SalienceConfig(**{**base.__dict__, **_typed(base, {name: v})}), voicing))
    print(f"base: {base}, threshold {voicing.threshold}")
    print("| setting | pitch_accuracy | pitch_accuracy_1st | octave_error_share | voicing_recall | false_alarm | "
          "dev top-1 | dev MRR | folded top-1 | folded MRR | CPU s |\n" + "|---" * 11 + "|")  # fmt: skip
    for label, cfg, vcfg in runs:
        t0, scores, melodies = time.process_time(), [], []
        for samples, truth in data:
            if cfg is None:
                track = pitch.track(samples, audio.SAMPLE_RATE, "swift")
            else:
                f0, periodicity = predominant_f0(samples, audio.SAMPLE_RATE, pitch.HOP_SAMPLES, cfg)
                periodicity = np.where(pitch.frame_rms_db(samples) < pitch.SILENCE_DB, 0.0, periodicity)
                track = pitch.PitchTrack(f0, periodicity.astype(np.float32), pitch.HOP_S)
            contour = pitch.contour_from_track(track, vcfg)
            scores.append(_score(truth, contour.midi.astype(np.float64)))
            melodies.append(contour.resample(REFERENCE_HOP_S).trimmed())
        cpu = time.process_time() - t0
        top1, mrr = _retrieval(melodies, queries)
        f_top1, f_mrr = _retrieval([_folded(m) for m in melodies], queries)
        m = {k: np.mean([s[k] for s in scores]) for k in scores[0]}
        print(f"| {label} | {m['pitch_accuracy']:.3f} | {m['pitch_accuracy_1st']:.3f} | {m['octave_error_share']:.3f} | "
              f"{m['voicing_recall']:.3f} | {m['voicing_false_alarm']:.3f} | {top1:.3f} | {mrr:.3f} | {f_top1:.3f} | {f_mrr:.3f} | {cpu:.0f} |", flush=True)
    return 0


def _folded(melody: object) -> object:
    """The melody at the matcher's hop with isolated octave jumps folded back (matcher.fix_octave_jumps)."""
    from humdex.classical.matcher import fix_octave_jumps
    from humdex.classical.references import DEFAULT_HOP_S, to_hop
    from humdex.frontend.contour import Contour

    coarse = to_hop(melody, DEFAULT_HOP_S)  # type: ignore[arg-type]
    return Contour(fix_octave_jumps(coarse.midi), DEFAULT_HOP_S)


def _typed(base: object, values: dict[str, str]) -> dict[str, object]:
    return {k: type(getattr(base, k))(float(v)) for k, v in values.items() if k != "threshold"}


def _dev_queries(out: Path, song_ids: list[str]) -> list[tuple[int, object]]:
    """[(row of the right song, swift-f0 query Contour)] for the dev queries of these songs."""
    from humdex.errors import HumdexError
    from humdex.frontend import audio, pitch

    found = []
    for row, sid in enumerate(song_ids):
        for q in (out / "queries").glob(f"{sid}_*.wav"):
            try:
                found.append((row, pitch.query_contour(audio.load(q, audio.SAMPLE_RATE), audio.SAMPLE_RATE)))
            except HumdexError:
                found.append((row, None))
    return found


def _retrieval(melodies: list, queries: list[tuple[int, object]]) -> tuple[float, float]:
    from humdex.classical.matcher import ReferenceSet, match
    from humdex.errors import HumdexError

    refs = ReferenceSet.from_contours(melodies)
    ranks = []
    for row, q in queries:
        rank = None
        if q is not None:
            try:
                hits = [m.index for m in match(q, refs, top=len(melodies))]
                rank = hits.index(row) + 1 if row in hits else None
            except HumdexError:
                pass
        ranks.append(rank)
    return float(np.mean([r == 1 for r in ranks])), float(np.mean([1.0 / r if r else 0.0 for r in ranks]))


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
    e.add_argument("--pitch", nargs="+", default=["swift"], help="trackers; 'default': the song front end's own")
    e.add_argument("--separate", default="none", choices=("none", "spleeter"))
    e.add_argument("--limit", type=int, default=None, help="first N records only")
    e.add_argument("--skip", type=int, default=0, help="not the first N records (e.g. a model's validation)")
    e.add_argument("--queries", action="store_true", help="also score the query front end on the dev queries")
    e.add_argument("--per-song", action="store_true")
    e.add_argument("--net-weights", default=None, help="melody net weights to use instead of the shipped ones")
    q = sub.add_parser("queries")
    q.add_argument("--out", required=True)
    q.add_argument("--songs", type=int, default=80)
    q.add_argument("--seed", type=int, default=1515, help="render's seed: which melodies")
    q.add_argument("--query-seed", type=int, default=77)
    q.add_argument("--kind", choices=KINDS, default="sing")
    q.add_argument("--duration", type=float, default=25.0)
    st = sub.add_parser("stem")
    st.add_argument("--out", required=True)
    st.add_argument("--pitch", nargs="+", default=["swift"])
    st.add_argument("--limit", type=int, default=None, help="first N records only")
    st.add_argument("--lead", choices=("sung lead", "instrument lead"), default=None, help="these records only")
    t = sub.add_parser("tune")
    t.add_argument("--out", required=True)
    t.add_argument("--limit", type=int, default=None)
    t.add_argument("--grid", nargs="*", default=[], help="field=v1,v2 (SalienceConfig field or threshold)")
    t.add_argument("--base", nargs="*", default=[], help="field=v: the sweep's centre instead of the defaults")
    args = p.parse_args(argv)
    if args.stage == "tune":
        args.base = dict(kv.split("=") for kv in args.base)
    return {"render": render, "eval": evaluate, "queries": queries, "stem": stem,
            "tune": tune}[args.stage](args)


if __name__ == "__main__":
    raise SystemExit(main())
