"""Vocal separation's effect on pitch accuracy, its speed and memory, on rendered songs with known vocal f0.

Renders songs (singer + accompaniment, humdex.synth) from the melody pool's test split, whose
performed vocal f0 is known per 10 ms, and measures raw pitch accuracy (voiced frames within 50
cents, octave errors counted wrong) of CREPE-tiny on the mix vs on Spleeter's vocals.

    HUMDEX_THREADS=1 python benchmarks/separation_pitch.py --songs 6 --out out/separation.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import numpy as np


def rpa(f0_hz: np.ndarray, truth_midi: np.ndarray) -> float:
    """Share of frames with a true vocal pitch where the estimate is within 50 cents."""
    n = min(len(f0_hz), len(truth_midi))
    est, ref = f0_hz[:n], truth_midi[:n]
    voiced = np.isfinite(ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        cents = 100 * (69 + 12 * np.log2(est / 440.0) - ref)
    return float(np.mean(np.abs(cents[voiced]) < 50)) if voiced.any() else float("nan")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--songs", type=int, default=6)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--chunk-s", type=float, default=30.0)
    p.add_argument("--pool", default=None, help="melody pool .npz (default: the shipped one)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("HUMDEX_THREADS", "1")))
    from humdex.frontend.pitch import crepe_activation, decode_activation
    from humdex.frontend.separation import separate_vocals
    from humdex.synth.render import RenderConfig, render_song
    from humdex.training.melody_pool import load_pool

    rng = np.random.default_rng(args.seed)
    pool = load_pool("test", **({"path": Path(args.pool)} if args.pool else {}))
    picks = [pool[i] for i in rng.permutation(len(pool))[: args.songs]]
    rows = []
    for m in picks:
        song = render_song(m.notes, rng, RenderConfig(), "original")
        audio, sr = song.audio, song.sample_rate
        t0 = time.perf_counter()
        vocals = separate_vocals(audio, sr, chunk_s=args.chunk_s)
        sep_s = time.perf_counter() - t0
        row = {"melody": m.melody_id, "seconds": round(len(audio) / sr, 1), "style": song.info["style"],
               "separate_s": round(sep_s, 2)}
        for name, x in (("mix", audio), ("vocals", vocals)):
            f0, _ = decode_activation(crepe_activation(x, sr, model="tiny"))
            row[f"rpa_{name}"] = round(rpa(f0, song.f0_midi), 4)
        rows.append(row)
        print(json.dumps(row), flush=True)
    audio_s = sum(r["seconds"] for r in rows)
    report = {
        "songs": rows,
        "rpa_mix_mean": round(float(np.mean([r["rpa_mix"] for r in rows])), 4),
        "rpa_vocals_mean": round(float(np.mean([r["rpa_vocals"] for r in rows])), 4),
        "separation_s_per_audio_s": round(sum(r["separate_s"] for r in rows) / audio_s, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "chunk_s": args.chunk_s,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(report, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
