"""An MTG-QBH-style catalog: the melodies humdex tracked from an audio catalog's records, as f0 files.

Writes each song's melody as `humdex index` tracked it from the record (its stored Contour) to
OUT/SONG_ID.csv (time_s,f0_hz; 0 = unvoiced), so a catalog can hold only the pitch tracks of the
records, as MTG-QBH's does; then index and evaluate it like any catalog:

    python benchmarks/f0_file_catalog.py --from-db data/records_db_300 --out data/records_f0
    humdex index data/records_f0 --db data/records_f0_db --quiet
    humdex eval --db data/records_f0_db --queries Q.tsv --anywhere --method classical|auto
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from humdex.catalog.catalog import Catalog
from humdex.frontend.pitch import midi_to_hz


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from-db", required=True, help="an audio catalog (humdex index of records)")
    ap.add_argument("--out", required=True, help="folder for SONG_ID.csv f0 files")
    args = ap.parse_args()
    snap = Catalog.open(args.from_db).snapshot()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for song, melody in zip(snap.songs, snap.melodies):
        times = np.arange(len(melody.midi)) * melody.hop_s
        f0 = np.where(np.isfinite(melody.midi), midi_to_hz(np.nan_to_num(melody.midi)), 0.0)
        rows = "\n".join(f"{t:.3f},{f:.2f}" for t, f in zip(times, f0))
        (out / f"{song.song_id}.csv").write_text("time_s,f0_hz\n" + rows + "\n")
    print(f"{len(snap.songs)} f0 files in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
