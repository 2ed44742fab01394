"""Render a held-out audio catalog + hummed queries from the melody pool's test split (never trained on).

Each test melody becomes a full song (singer over an accompaniment, humdex.synth) written as WAV;
one or more hums/whistles/sung queries of a random passage of it go to queries.tsv. Then index
and evaluate with the product's own commands, e.g.:

    python benchmarks/synth_audio_catalog.py --songs 60 --out data/synth_test_audio
    humdex index data/synth_test_audio/songs --db DB
    humdex eval --db DB --queries data/synth_test_audio/queries.tsv --method learned
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--songs", type=int, default=60)
    p.add_argument("--queries-per-song", type=int, default=2)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    from humdex.synth.fragments import pick_fragments
    from humdex.synth.render import RenderConfig, render_query, render_song
    from humdex.synth.score import Score
    from humdex.training.chad import write_wav
    from humdex.training.melody_pool import load_pool

    rng = np.random.default_rng(args.seed)
    pool = load_pool("test")
    out = Path(args.out)
    (out / "songs").mkdir(parents=True, exist_ok=True)
    (out / "queries").mkdir(parents=True, exist_ok=True)
    lines, n = [], 0
    for i in rng.permutation(len(pool)):
        if n >= args.songs:
            break
        m = pool[int(i)]
        score = Score.from_notes(m.notes)
        spans = pick_fragments(score, rng)
        if not spans or score.end_s < 15:
            continue
        song_id = f"test{n:03d}"
        song = render_song(score, rng, RenderConfig(), "original")
        write_wav(out / "songs" / f"{song_id}.wav", song.audio, song.sample_rate)
        for k in range(args.queries_per_song):
            a, b = spans[int(rng.integers(len(spans)))]
            q = render_query(score.passage(a, b), rng, RenderConfig())
            name = f"queries/{song_id}_{k}_{q.kind}.wav"
            write_wav(out / name, q.audio, q.sample_rate)
            lines.append(f"{name}\t{song_id}")
        n += 1
    (out / "queries.tsv").write_text("\n".join(lines) + "\n")
    print(f"{n} songs, {len(lines)} queries -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
