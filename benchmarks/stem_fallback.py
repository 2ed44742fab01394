"""Choose `--separate spleeter`'s fallback threshold (ingest.STEM_MIN_VOICED) on the DEV records.

For each record of benchmarks/melody_extraction.py's development set (pool VALIDATION melodies,
TRAIN sound, with the renderer's true lead melody): the melody of Spleeter's vocal stem (swift-f0,
as `humdex index --separate spleeter` tracks it) and of the mix (the salience tracker), each scored
against the true lead (metrics.melody_accuracy, within 50 cents), and the share of the song the
stem is voiced. Then, for each threshold t, the ingest rule (catalog.ingest.keeps_stem: the stem
when voiced for >= t of the song, else the mix when it is voiced at least twice as long) is applied and the mean accuracy of
what it keeps is reported, with each record's figures in the JSON.

    python benchmarks/stem_fallback.py --dev data/melody_dev [--limit N] --out R.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from humdex.catalog.ingest import keeps_stem
from humdex.errors import AudioError
from humdex.frontend import audio, pitch
from humdex.frontend.separation import separate_vocals
from humdex.metrics import melody_accuracy

THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.0, 0.65, 0.05))


def accuracy(truth: np.ndarray, contour) -> float:
    if contour is None:
        return 0.0
    est = contour.midi.astype(np.float64)
    n = min(len(truth), len(est))
    return melody_accuracy(truth[:n], est[:n])["pitch_accuracy"]


def stem_kept(stem, whole, song_s: float, threshold: float) -> bool:
    """What read_song_melody keeps at this threshold: the stem if it has pitch and the rule keeps it
    (or the mix has none), else the mix."""
    return stem is not None and (whole is None or keeps_stem(stem, whole, song_s, min_voiced=threshold))


def contour_or_none(samples: np.ndarray, method: str):
    try:
        return pitch.query_contour(samples, audio.SAMPLE_RATE, method)
    except AudioError:  # no pitch at all
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dev", required=True, help="melody_extraction.py render --out folder")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    dev = Path(args.dev)
    rows, melodies = [], []  # melodies[i]: record i's (stem, mix) contours and length in seconds
    for wav in tqdm(sorted((dev / "songs").glob("*.wav"))[: args.limit], desc="records"):
        truth = np.load(dev / "truth" / f"{wav.stem}.npy").astype(np.float64)
        mix = audio.load(wav, audio.SAMPLE_RATE)
        stem = contour_or_none(separate_vocals(mix, audio.SAMPLE_RATE), pitch.DEFAULT_METHOD)
        whole = contour_or_none(mix, pitch.DEFAULT_SONG_METHOD)
        song_s = len(mix) / audio.SAMPLE_RATE
        melodies.append((stem, whole, song_s))
        rows.append({"record": wav.stem, "stem_voiced_share": 0.0 if stem is None else
                     float(stem.voiced.sum() * stem.hop_s / song_s),
                     "stem_accuracy": accuracy(truth, stem), "mix_accuracy": accuracy(truth, whole)})
    sweep = {str(t): float(np.mean([r["stem_accuracy"] if stem_kept(*m, t) else r["mix_accuracy"]
                                    for r, m in zip(rows, melodies)])) for t in THRESHOLDS}
    report = {"records": len(rows), "mean_stem_accuracy": float(np.mean([r["stem_accuracy"] for r in rows])),
              "mean_mix_accuracy": float(np.mean([r["mix_accuracy"] for r in rows])),
              "accuracy_by_threshold": sweep, "rows": rows}
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
