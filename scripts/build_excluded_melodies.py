"""Write src/humdex/assets/excluded_melodies.txt: run hashes of the evaluation melodies.

The evaluation melodies are the MIREX QBSH database (48 MIR-QBSH songs + 2000 Essen distractors);
only hashes of their interval runs are shipped, never the melodies.

    .venv/bin/python scripts/build_excluded_melodies.py [../shared/data/mirex_qbsh_db]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tqdm import tqdm

from humdex.frontend.melody import read_midi
from humdex.training import melody_pool

DEFAULT_DB = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mirex_qbsh_db"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", type=Path, nargs="?", default=DEFAULT_DB)
    parser.add_argument("--out", type=Path, default=melody_pool.EXCLUDED_PATH)
    args = parser.parse_args(argv)
    files = sorted(args.db.glob("*.mid"))
    if not files:
        raise SystemExit(f"no .mid files in {args.db}")
    melodies = [read_midi(f) for f in tqdm(files, desc="reading MIDI")]
    text = melody_pool.excluded_file_text(melodies, f"MIREX QBSH database, {len(files)} MIDI files")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, args.out)
    print(f"{args.out}: {text.count(chr(10)) - 1} hashes from {len(files)} melodies")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
