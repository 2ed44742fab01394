"""Write tests/data/evaluation_melodies.json: what tests/test_melody_pool.py checks the shipped pool against.

The MIREX QBSH database (2048 MIDI files, dev data in ../shared, never shipped) is evaluation data:
no pool tune may copy one of its melodies. This records, without storing any melody:
- "digests": the digest of each database melody's interval sequence (test_melody_pool.melody_digest, written
  independently of humdex.training.melody_pool so that the test does not check the rule with itself);
- "corpus_copies": music21 corpus tunes (pool ids) whose interval sequence equals a database
  melody's, from the parsed-corpus pickles of scripts/build_melody_pool.py (optional).

    PYTHONPATH=src:tests .venv/bin/python tests/data/make_evaluation_digests.py \
        --db ../shared/data/mirex_qbsh_db [--parsed build/melody_pool]
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

from humdex.frontend.melody import read_midi
from test_melody_pool import melody_digest

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--parsed", type=Path, default=None)
    parser.add_argument("--copies", type=int, default=12, help="corpus copies to record")
    parser.add_argument("--out", type=Path, default=HERE / "evaluation_melodies.json")
    args = parser.parse_args(argv)
    by_digest: dict[str, str] = {}
    for path in sorted(args.db.glob("*.mid")):
        by_digest.setdefault(melody_digest([n.pitch_midi for n in read_midi(path)]), path.stem)
    copies: dict[str, str] = {}
    for pkl in sorted(args.parsed.glob("*.pkl")) if args.parsed else []:
        corpus, stem = pkl.stem.split("__", 1)
        for number, _title, _onset, _duration, pitch in pickle.loads(pkl.read_bytes()):
            found = by_digest.get(melody_digest(pitch))
            if found and len(copies) < args.copies:
                copies[f"{corpus}/{Path(stem).stem}/{number}"] = found
    data = {"source": f"{len(list(args.db.glob('*.mid')))} MIDI files of {args.db.name}",
            "digests": sorted(by_digest), "corpus_copies": copies}
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{args.out}: {len(by_digest)} digests, {len(copies)} corpus copies")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
