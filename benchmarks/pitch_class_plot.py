"""Picture of one record's tracked melody and where the classical matcher places a hum on it, with
stage 1 by mean square alone and with its pitch-class windows (matcher.MatcherConfig.pitch_class_windows).

The record's melody is tracked as `humdex index --separate none` tracks a mix (the salience
tracker); the renderer's true lead, when given, is drawn under it; the query is drawn over the
span each setting's DTW matched (stretched linearly, not along the DTW's path), at the key it found.

    python benchmarks/pitch_class_plot.py --song data/melody_dev/songs/va00319.wav \
        --query data/melody_dev/queries/va00319_hum.wav --truth data/melody_dev/truth/va00319.npy \
        --out docs/pitch_class_windows.png
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--song", required=True, help="an audio record")
    p.add_argument("--query", required=True, help="a hum of it")
    p.add_argument("--truth", help="(T,) MIDI of the true lead at 10 ms frames (NaN unvoiced)")
    p.add_argument("--out", required=True, help="PNG")
    args = p.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from humdex.classical.matcher import MatcherConfig, ReferenceSet, match
    from humdex.frontend import audio, pitch

    song = pitch.contour_from_track(pitch.track(audio.load(args.song, audio.SAMPLE_RATE), audio.SAMPLE_RATE,
                                                "salience"), pitch.VOICING["salience"])
    query = pitch.query_contour(audio.load(args.query, audio.SAMPLE_RATE), audio.SAMPLE_RATE)
    refs = ReferenceSet.from_contours([song])
    fig, ax = plt.subplots(figsize=(11, 5.5))
    t = np.arange(len(song.midi)) * song.hop_s
    if args.truth:
        truth = np.load(args.truth)
        ax.plot(np.arange(len(truth)) * 0.01, truth, color="0.75", lw=5, label="true lead")
    ax.plot(t, song.midi, color="k", lw=1, label="tracked from the mix (salience)")
    for config, colour, name in ((MatcherConfig(pitch_class_windows=0), "tab:red", "mean square only"),
                                 (MatcherConfig(), "tab:blue", "with pitch-class windows")):
        best = match(query, refs, config=config, top=1)[0]
        placed = query.midi + best.key_st
        span = np.linspace(best.start_s, best.end_s, len(placed))
        ax.plot(span, placed, color=colour, lw=1.5,
                label=f"hum placed by the DTW, {name}: score {best.score:.2f}, {best.start_s:.1f}-{best.end_s:.1f} s")
    ax.set_xlabel("song time (s)")
    ax.set_ylabel("MIDI pitch")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8)
    ax.set_title("A stretch tracked an octave low: stage 1 by pitch class finds the sung window and its key")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
