"""Writers to kill and writers that race: the catalog crash and concurrency checks of
tests/test_integrity.py (a few rounds) and benchmarks/catalog_crash.py (many rounds).

A writer is a child process that adds (and now and then removes) songs one at a time and prints
`committed add ID` / `committed remove ID` after each change returned and `done I` after op I; with learned=True it also
fingerprints the catalog (humdex.learned stores) after each change. After a kill -9 or a race
the catalog must pass humdex.catalog.integrity.check_catalog and hold exactly what was reported
committed (the change in flight when killed may or may not have landed).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CHILD = r"""
import sys
from pathlib import Path
from humdex.catalog.catalog import Catalog
db, learned, files = sys.argv[1], sys.argv[2] == "1", sys.argv[3:]
catalog = Catalog.open(db, create=True)
if learned:
    from humdex.learned.search import sync_catalog
print("ready", flush=True)
for i, f in enumerate(files):
    if f.startswith("-"):
        song_id = f[1:]
        if song_id in {s.song_id for s in catalog.songs()}:
            catalog.remove([song_id])
            print("committed remove", song_id, flush=True)
    else:
        report = catalog.add_files([f], progress=False)
        for song_id in report.added:
            print("committed add", song_id, flush=True)
    if learned:
        sync_catalog(db, catalog.snapshot())
    print("done", i, flush=True)
"""


@dataclass
class Outcome:
    """What one round found: problems (corrupt files), lost (committed but missing), resurrected
    (committed removed but present)."""

    committed: int = 0
    killed_mid_work: bool = True  # False: the writer had finished before the kill
    problems: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    resurrected: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.problems or self.lost or self.resurrected)


def make_songs(folder: Path, n: int, seed: int = 0, prefix: str = "s") -> list[Path]:
    """n random MIDI melodies in `folder`."""
    from conftest import random_melody, write_midi

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    return [write_midi(folder / f"{prefix}{i:03d}.mid", random_melody(rng, 24)) for i in range(n)]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    return env


def start_writer(db: Path, ops: list[str], learned: bool = False) -> subprocess.Popen[str]:
    """A writer child running `ops` (song file paths to add, "-ID" to remove)."""
    return subprocess.Popen([sys.executable, "-c", CHILD, str(db), "1" if learned else "0", *ops],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def expected_state(lines: list[str]) -> tuple[set[str], set[str]]:
    """(present, absent) song ids from a writer's committed lines, in order."""
    present: set[str] = set()
    absent: set[str] = set()
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0] == "committed":
            (present if parts[1] == "add" else absent).add(parts[2])
            (absent if parts[1] == "add" else present).discard(parts[2])
    return present, absent


def verify(db: Path, present: set[str], absent: set[str], outcome: Outcome) -> Outcome:
    from humdex.catalog.catalog import Catalog
    from humdex.catalog.integrity import check_catalog
    from humdex.errors import CatalogError

    outcome.committed = len(present) + len(absent)
    try:
        outcome.problems += check_catalog(db).problems
        ids = {s.song_id for s in Catalog.open(db).songs()}
    except CatalogError as err:
        outcome.problems.append(str(err))
        return outcome
    outcome.lost += sorted(present - ids)
    outcome.resurrected += sorted(absent & ids)
    return outcome


def current_ids(db: Path) -> set[str]:
    from humdex.catalog.catalog import Catalog

    return {s.song_id for s in Catalog.open(db).songs()} if (db / "catalog.json").exists() else set()


def kill_round(db: Path, songs: list[Path], rng: np.random.Generator, learned: bool = False,
               max_delay_s: float = 1.5) -> Outcome:
    """Start a writer over `songs` in a random order (with removals mixed in), kill -9 it at a
    random moment after it is ready, check the catalog. It may hold songs of earlier rounds:
    those must stay unless a removal of them was reported committed."""
    before = current_ids(db)
    order = [songs[i] for i in rng.permutation(len(songs))]
    ops: list[str] = []
    for i, path in enumerate(order):
        ops.append(str(path))
        if i % 3 == 2:
            ops.append("-" + order[int(rng.integers(0, i))].stem)
    proc = start_writer(db, ops, learned)
    assert proc.stdout is not None
    lines = [proc.stdout.readline()]  # "ready": imports done, the catalog opened
    time.sleep(float(rng.uniform(0.0, max_delay_s)))
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    lines += out.splitlines()
    present, absent = expected_state(lines)
    present = (before - absent) | present
    done = [int(line.split()[1]) for line in lines if line.startswith("done ")]
    in_flight = ops[done[-1] + 1] if done and done[-1] + 1 < len(ops) else (ops[0] if not done else None)
    if in_flight is not None:  # killed during this change: it may or may not have landed
        song_id = in_flight[1:] if in_flight.startswith("-") else Path(in_flight).stem
        present.discard(song_id)
        absent.discard(song_id)
    return verify(db, present, absent,
                  Outcome(killed_mid_work=proc.returncode == -signal.SIGKILL))


def writers_round(db: Path, song_sets: list[list[Path]], learned: bool = False,
                  timeout_s: float = 120.0) -> Outcome:
    """Several writers at once, each adding its own songs; every song must be there after."""
    procs = [start_writer(db, [str(p) for p in songs], learned) for songs in song_sets]
    outcome = Outcome()
    present: set[str] = set()
    for proc in procs:
        out, err = proc.communicate(timeout=timeout_s)
        if proc.returncode != 0:
            outcome.problems.append(f"writer failed ({proc.returncode}): {err.strip()[-300:]}")
        present |= expected_state(out.splitlines())[0]
    return verify(db, present, set(), outcome)
