"""`humdex index` in one process against `humdex index --ray` (issue 18): wall time, same catalog.

Writes --midi pool melodies (validation split) as MIDI files and --audio of them as sung-like
recordings (a harmonic voice with vibrato, 30 s; tracked by salience at indexing, the default for
songs), then indexes the folder twice, each in a fresh `humdex` process: once as is, once with
`--ray` (a local Ray instance on every core, which the command starts and stops: its start-up is
part of the time), and checks that the two catalogs hold the same songs, melodies and
fingerprints.

    python benchmarks/ray_index.py --midi 150 --audio 50 --out out/ray_index.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000


def voice(notes, seconds: float = 30.0) -> np.ndarray:
    """(n,) float32: the notes sung as a harmonic tone with vibrato and a dip between notes."""
    n = int(seconds * SAMPLE_RATE)
    f0 = np.zeros(n)
    for note in notes:
        a, b = int(note.onset_s * SAMPLE_RATE), int((note.onset_s + note.duration_s) * SAMPLE_RATE)
        f0[a:min(b, n) - 200] = 440.0 * 2 ** ((note.pitch_midi - 69) / 12)
    t = np.arange(n) / SAMPLE_RATE
    f0 = f0 * 2 ** (0.3 * np.sin(2 * np.pi * 5.5 * t) / 12)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    tone = sum(np.sin(k * phase) / k for k in range(1, 6)) * (f0 > 0)
    rng = np.random.default_rng(0)
    return (0.3 * tone + 0.003 * rng.standard_normal(n)).astype(np.float32)


def write_songs(folder: Path, n_midi: int, n_audio: int) -> None:
    import soundfile as sf

    from humdex.frontend.melody import write_midi
    from humdex.training.melody_pool import load_pool

    pool = load_pool("validation")
    folder.mkdir(parents=True, exist_ok=True)
    for i, melody in enumerate(pool[:n_midi]):
        write_midi(melody.notes, folder / f"m{i:04d}.mid")
    for i, melody in enumerate(pool[n_midi:n_midi + n_audio]):
        sf.write(folder / f"a{i:04d}.wav", voice(melody.notes), SAMPLE_RATE)


def index(songs: Path, db: Path, ray: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "humdex", "index", str(songs), "--db", str(db), "--quiet", *ray],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def same_catalog(a: Path, b: Path) -> bool:
    from humdex.learned.stores import FaissStore

    ma, mb = (json.loads((d / "catalog.json").read_text()) for d in (a, b))
    if ma["songs"] != mb["songs"]:
        return False
    with np.load(a / ma["files"]["data"]) as da, np.load(b / mb["files"]["data"]) as db:
        if da.files != db.files or not all(np.array_equal(da[k], db[k], equal_nan=True) for k in da.files):
            return False
    for folder in sorted((a / "learned").iterdir()):
        sa, sb = FaissStore.load(folder), FaissStore.load(b / "learned" / folder.name)
        keys = sa.keys()  # a list, in the order the songs were added
        if keys != sb.keys() or not all(np.array_equal(sa.sequence(k), sb.sequence(k)) for k in keys):
            return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--midi", type=int, default=150)
    ap.add_argument("--audio", type=int, default=50)
    ap.add_argument("--out", default=None, help="also write the results here (JSON)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_songs(work / "songs", args.midi, args.audio)
        load_before = os.getloadavg()
        single_s = index(work / "songs", work / "one", [])
        ray_s = index(work / "songs", work / "ray", ["--ray"])
        load_after = os.getloadavg()
        result = {"midi_songs": args.midi, "audio_songs": args.audio, "cpus": os.cpu_count(),
                  "single_process_s": round(single_s, 1), "ray_local_s": round(ray_s, 1),
                  "same_catalog": same_catalog(work / "one", work / "ray"),
                  "load_1min_before_after": [round(load_before[0], 1), round(load_after[0], 1)]}
    print(json.dumps(result))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
