"""Time humdex.frontend.melody.read_midi over the MIREX QBSH database (2048 MIDI files, dev data).

    .venv/bin/python benchmarks/melody_parse.py [../shared/data/mirex_qbsh_db]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from humdex.frontend.melody import notes_to_contour, read_midi

DEFAULT_DB = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mirex_qbsh_db"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", type=Path, nargs="?", default=DEFAULT_DB)
    args = parser.parse_args(argv)
    files = sorted(args.db.glob("*.mid"))
    start = time.perf_counter()
    melodies = [read_midi(f) for f in files]
    parse_s = time.perf_counter() - start
    start = time.perf_counter()
    contours = [notes_to_contour(m, 0.01) for m in melodies]
    contour_s = time.perf_counter() - start
    counts = np.array([len(m) for m in melodies])
    lengths = np.array([m[-1].end_s for m in melodies])
    print(f"{len(files)} MIDI files: read_midi {parse_s:.2f} s total ({1000 * parse_s / len(files):.2f} ms/file), "
          f"notes_to_contour(hop 10 ms) {contour_s:.2f} s, {sum(len(c.midi) for c in contours)} frames")
    print(f"notes per file: median {np.median(counts):.0f}, max {counts.max()}; "
          f"duration median {np.median(lengths):.1f} s, max {lengths.max():.1f} s")
    long_songs = [f"{f.stem} ({n:.0f} s)" for f, n in zip(files[:48], lengths[:48]) if n > 45]
    print(f"of the first 48 (MIR-QBSH songs), longer than 45 s: {', '.join(long_songs)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
