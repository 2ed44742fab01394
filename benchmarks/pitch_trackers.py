"""Pitch tracker benchmark: accuracy and CPU cost of each humdex.frontend.pitch method on real voices.

Vocadito (solo singing, ground-truth F0 at 5.8 ms): raw pitch accuracy within 50 cents on
ground-truth-voiced frames, voicing recall / false alarm of query_contour's voicing decision, and
CPU seconds per second of audio (time.process_time, all threads). MIR-QBSH toolbox recordings:
agreement of the tracked pitch with their hand-labelled .pv files.

Usage: .venv/bin/python benchmarks/pitch_trackers.py [--data ../shared/data] [--methods ...]
Tracks are cached (npz) in --cache, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from humdex.frontend import audio, pitch
from humdex.frontend.pitchfile import read_pv
from humdex.settings import settings

REPO = Path(__file__).resolve().parents[1]
PV_FRAME_S = 0.032  # .pv frames are 32 ms long (hop 32 ms in MIR-QBSH files, 10 ms in some toolbox ones)
THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def cached_track(cache: Path, key: str, x: np.ndarray, sr: int, method: str) -> dict:
    """Track once per (audio content, method); return f0_hz, periodicity and cpu/wall seconds."""
    digest = hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest()[:12]
    path = cache / f"{key}.{digest}.{method}.npz"
    if path.exists():
        d = np.load(path)
        return {k: d[k] for k in d.files}
    pitch.track(x[: sr // 2], sr, method)  # warm-up: model load / session start not timed
    cpu0, wall0 = time.process_time(), time.perf_counter()
    tr = pitch.track(x, sr, method)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    out = {"f0_hz": tr.f0_hz, "periodicity": tr.periodicity, "cpu_s": np.array(cpu),
           "wall_s": np.array(wall), "audio_s": np.array(len(x) / sr)}
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **out)
    os.replace(tmp, path)  # a killed run leaves no half-written cache entry
    return out


def voiced_mask(tr: dict, method: str, threshold: float) -> np.ndarray:
    cfg = replace(pitch.VOICING[method], threshold=threshold)
    track = pitch.PitchTrack(tr["f0_hz"], tr["periodicity"], pitch.HOP_S)
    return pitch.contour_from_track(track, cfg).voiced


def vocadito_truth(root: Path, n_frames: int) -> np.ndarray:
    """Ground-truth f0 (Hz, 0 = unvoiced) at the HOP_S frame times, nearest annotation row."""
    table = np.loadtxt(root / "Annotations/F0/vocadito_1_f0.csv", delimiter=",")
    t = np.arange(n_frames) * pitch.HOP_S
    idx = np.clip(np.searchsorted(table[:, 0], t), 1, len(table) - 1)
    idx = np.where(t - table[idx - 1, 0] < table[idx, 0] - t, idx - 1, idx)
    return np.where(np.abs(table[idx, 0] - t) < 0.006, table[idx, 1], 0.0)


def vocadito(data: Path, methods: list[str], cache: Path) -> dict:
    root = data / "dev_queries/vocadito"
    x = audio.load(root / "Audio/vocadito_1.wav")
    rows = {}
    for method in methods:
        tr = cached_track(cache, "vocadito_1", x, audio.SAMPLE_RATE, method)
        truth = vocadito_truth(root, len(tr["f0_hz"]))
        gt_voiced = truth > 0
        err = np.abs(1200 * np.log2(tr["f0_hz"][gt_voiced] / truth[gt_voiced]))
        row = {"rpa50": float(np.mean(err < 50)), "cpu_per_audio_s": float(tr["cpu_s"] / tr["audio_s"]),
               "wall_per_audio_s": float(tr["wall_s"] / tr["audio_s"]), "voicing": {}}
        for th in THRESHOLDS:
            est = voiced_mask(tr, method, th)
            row["voicing"][th] = {"recall": float(est[gt_voiced].mean()),
                                  "false_alarm": float(est[~gt_voiced].mean()),
                                  "vrpa50": float(np.mean(est[gt_voiced] & (
                                      np.abs(1200 * np.log2(tr["f0_hz"][gt_voiced] / truth[gt_voiced])) < 50)))}
        rows[method] = row
        print(f"vocadito {method}: {json.dumps(row['rpa50'])} rpa, {row['cpu_per_audio_s']:.3f} cpu-s/s", flush=True)
    return rows


def jang(data: Path, methods: list[str], cache: Path) -> dict:
    """Per recording with a .pv: fraction of .pv-voiced frames where the tracker is within 50 cents."""
    root = data / "dev_queries/jang_toolbox"
    rows: dict = {m: {} for m in methods}
    for wav in sorted(root.glob("*.wav")):
        pv_path = wav.with_suffix(".pv")
        if not pv_path.exists():
            continue
        x = audio.load(wav)
        n_pv = len(read_pv(pv_path).midi)
        pv_hop = len(x) / audio.SAMPLE_RATE / n_pv  # 32 ms for MIR-QBSH files, 10 ms for some
        pv = read_pv(pv_path, hop_s=round(pv_hop, 3))
        for method in methods:
            tr = cached_track(cache, wav.stem, x, audio.SAMPLE_RATE, method)
            centre = np.arange(n_pv) * pv.hop_s + PV_FRAME_S / 2
            k = np.clip(np.round(centre / pitch.HOP_S).astype(int), 0, len(tr["f0_hz"]) - 1)
            ok = pv.voiced
            midi = pitch.hz_to_midi(tr["f0_hz"][k][ok])
            est_voiced = voiced_mask(tr, method, pitch.VOICING[method].threshold)[k]
            rows[method][wav.name] = {
                "pv_hop_s": pv.hop_s,
                "rpa50": float(np.mean(np.abs(midi - pv.midi[ok]) < 0.5)),
                "voicing_recall": float(est_voiced[ok].mean()),
                "voicing_false_alarm": float(est_voiced[~ok].mean()) if (~ok).any() else None,
                "cpu_per_audio_s": float(tr["cpu_s"] / tr["audio_s"]),
            }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data")
    parser.add_argument("--methods", nargs="+", default=list(pitch.METHODS))
    parser.add_argument("--jang-methods", nargs="+", default=None,
                        help="methods for the MIR-QBSH toolbox recordings (default: --methods)")
    parser.add_argument("--synth", type=int, default=0, metavar="N",
                        help="also N synthetic queries per kind (hum, whistle, sing) from humdex.synth")
    parser.add_argument("--synth-methods", nargs="+", default=None)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/humdex_pitch_bench"))
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    jang_methods = args.jang_methods or args.methods
    results = {"threads": settings().threads,
               "vocadito": vocadito(args.data, args.methods, args.cache),
               "jang_toolbox": jang(args.data, jang_methods, args.cache)}
    print_tables(results, args.methods, jang_methods)
    if args.synth:
        synth_methods = args.synth_methods or args.methods
        results["synth"] = synthetic(args.synth, synth_methods, args.cache)
        print_synth(results["synth"], synth_methods)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


def print_tables(results: dict, methods: list[str], jang_methods: list[str]) -> None:
    print(f"\nVocadito (33 s solo singing), torch/onnx threads = {results['threads']}")
    print("| tracker | RPA50 (GT-voiced) | CPU s / audio s | wall s / audio s | "
          "voicing recall / false alarm (default threshold) | best threshold (recall - FA) |")
    print("|---|---|---|---|---|---|")
    for m in methods:
        r = results["vocadito"][m]
        th = pitch.VOICING[m].threshold
        v = r["voicing"][th]
        best = max(r["voicing"], key=lambda t: r["voicing"][t]["recall"] - r["voicing"][t]["false_alarm"])
        b = r["voicing"][best]
        print(f"| {m} | {r['rpa50']:.3f} | {r['cpu_per_audio_s']:.3f} | {r['wall_per_audio_s']:.3f} | "
              f"{v['recall']:.3f} / {v['false_alarm']:.3f} (th {th}) | "
              f"{best}: {b['recall']:.3f} / {b['false_alarm']:.3f} |")
    print("\nMIR-QBSH toolbox recordings vs hand-labelled .pv: RPA50 on .pv-voiced frames (voicing recall)")
    methods = jang_methods
    names = sorted(next(iter(results["jang_toolbox"].values())))
    print("| recording | .pv hop | " + " | ".join(methods) + " |")
    print("|---|---|" + "---|" * len(methods))
    for name in names:
        cells = [f"{results['jang_toolbox'][m][name]['rpa50']:.3f} "
                 f"({results['jang_toolbox'][m][name]['voicing_recall']:.2f})" for m in methods]
        hop = results["jang_toolbox"][methods[0]][name]["pv_hop_s"]
        print(f"| {name} | {hop * 1000:.0f} ms | " + " | ".join(cells) + " |")
    means = [np.mean([results["jang_toolbox"][m][n]["rpa50"] for n in names]) for m in methods]
    print("| mean | | " + " | ".join(f"{v:.3f}" for v in means) + " |")


def synth_melody(rng: np.random.Generator, n_notes: int = 18) -> list:
    from humdex.frontend.melody import Note

    notes, onset, midi = [], 0.0, 62
    for _ in range(n_notes):
        dur = float(rng.choice([0.25, 0.5, 0.5, 0.75, 1.0]))
        notes.append(Note(onset, dur, float(midi)))
        onset += dur
        midi = int(np.clip(midi + rng.integers(-4, 5), 50, 78))
    return notes


def synthetic(n: int, methods: list[str], cache: Path) -> dict:
    """Synthetic queries with known f0 (humdex.synth): RPA50 and voicing per kind and threshold."""
    from humdex.synth.render import QUERY_KINDS, render_query

    stats: dict = {m: {k: {"err": [], "est": [], "gt": []} for k in QUERY_KINDS} for m in methods}
    for kind in QUERY_KINDS:
        for i in range(n):
            seed = 1000 * QUERY_KINDS.index(kind) + i
            r = render_query(synth_melody(np.random.default_rng(seed)), np.random.default_rng(seed),
                             kind=kind)
            for m in methods:
                tr = cached_track(cache, f"synth_{kind}_{i}", r.audio, r.sample_rate, m)
                frames = min(len(r.f0_midi), len(tr["f0_hz"]))
                gt = r.f0_midi[:frames]
                tr = {k: v[:frames] if np.ndim(v) else v for k, v in tr.items()}
                s = stats[m][kind]
                s["err"].append(np.abs(pitch.hz_to_midi(tr["f0_hz"]) - gt))
                s["gt"].append(np.isfinite(gt))
                s["est"].append(np.stack([voiced_mask(tr, m, th) for th in THRESHOLDS]))
    out: dict = {}
    for m in methods:
        out[m] = {}
        for kind in QUERY_KINDS:
            s = stats[m][kind]
            err, gt, est = (np.concatenate(s[k], axis=-1) for k in ("err", "gt", "est"))
            out[m][kind] = {"rpa50": float(np.mean(err[gt] < 0.5)), "voicing": {
                th: {"recall": float(e[gt].mean()), "false_alarm": float(e[~gt].mean()),
                     "vrpa50": float(np.mean(e[gt] & (err[gt] < 0.5)))}
                for th, e in zip(THRESHOLDS, est)}}
    return out


def print_synth(res: dict, methods: list[str]) -> None:
    kinds = list(next(iter(res.values())))
    print("\nSynthetic queries (humdex.synth, known f0): RPA50 / voiced-and-right at threshold "
          + ", ".join(str(t) for t in THRESHOLDS))
    print("| tracker | kind | RPA50 | recall, FA, voiced&right per threshold |")
    print("|---|---|---|---|")
    for m in methods:
        for k in kinds:
            r = res[m][k]
            cells = "; ".join(f"{th}: {v['recall']:.2f} {v['false_alarm']:.2f} {v['vrpa50']:.2f}"
                              for th, v in r["voicing"].items())
            print(f"| {m} | {k} | {r['rpa50']:.3f} | {cells} |")


if __name__ == "__main__":
    main()
