"""Is a catalog folder whole, and mend what can be rebuilt (`humdex check --db X [--repair]`).

What is checked: the manifest reads, its data file loads and matches the song list, every
fingerprint store under learned/ loads; temporary files a killed writer left are listed (they
change nothing; the next writer of that folder, or --repair, removes them).
What repair rebuilds: the data file from the songs' source files (songs whose file is gone are
dropped and named), a corrupt fingerprint store (deleted, then fingerprinted again), stray
temporary files (deleted). A manifest that does not read cannot be repaired: index again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from humdex.catalog.catalog import (
    MANIFEST_NAME,
    Catalog,
    Snapshot,
    Song,
    _read_snapshot,
)
from humdex.errors import CatalogError, HumdexError
from humdex.files import folder_lock, stray_temp_files


@dataclass
class IntegrityReport:
    songs: int = 0
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    leftovers: list[Path] = field(default_factory=list)  # a killed writer's temporary files: harmless

    @property
    def ok(self) -> bool:
        return not self.problems


def check_catalog(db_dir: str | Path) -> IntegrityReport:
    """What is wrong with the catalog in `db_dir` (nothing changes)."""
    db_dir = Path(db_dir)
    report = IntegrityReport()
    if not (db_dir / MANIFEST_NAME).is_file():
        raise CatalogError(f"{db_dir}: no humdex catalog here")
    try:
        report.songs = len(_read_snapshot(db_dir).songs)
    except CatalogError as err:
        report.problems.append(f"data: {err}")
    for folder in _store_folders(db_dir):
        from humdex.learned.stores import FaissStore

        if not (folder / "vectors.npz").exists():
            continue  # nothing saved yet (fingerprinting stopped before its first checkpoint)
        try:
            FaissStore.load(folder)
        except CatalogError as err:
            report.problems.append(f"fingerprints: {err}")
    for folder in [db_dir, *_store_folders(db_dir)]:
        report.leftovers += stray_temp_files(folder)
    return report


def repair_catalog(db_dir: str | Path, progress: bool = True) -> IntegrityReport:
    """Rebuild what check_catalog finds broken; the report lists what was done and what is left."""
    db_dir = Path(db_dir)
    found = check_catalog(db_dir)
    report = IntegrityReport(songs=found.songs)
    for folder in [db_dir, *_store_folders(db_dir)]:
        with folder_lock(folder):
            for path in stray_temp_files(folder):
                path.unlink(missing_ok=True)
                report.repaired.append(f"removed leftover {path.name}")
    if any(p.startswith("data:") for p in found.problems):
        report.songs = _rebuild_data(db_dir, report, progress)
    for folder in _store_folders(db_dir):
        from humdex.learned.stores import FaissStore

        if not (folder / "vectors.npz").exists():
            continue
        try:
            FaissStore.load(folder)
        except CatalogError:
            with folder_lock(folder):
                (folder / "vectors.npz").unlink(missing_ok=True)
            report.repaired.append(f"removed corrupt fingerprint store {folder.name}")
    if report.songs and any(line.startswith("removed corrupt") for line in report.repaired):
        from humdex.search import prepare_default_search

        prepare_default_search(Catalog.open(db_dir), progress=progress)  # fingerprints again
    report.problems = check_catalog(db_dir).problems
    return report


def _rebuild_data(db_dir: Path, report: IntegrityReport, progress: bool) -> int:
    """A new generation whose melodies are read again from the songs' files; returns its size."""
    from tqdm import tqdm

    from humdex.catalog.ingest import REFERENCE_HOP_S, read_song_melody

    try:
        manifest = json.loads((db_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
        songs = [Song(**s) for s in manifest["songs"]]
        generation = int(manifest["generation"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        report.problems.append(f"{db_dir / MANIFEST_NAME} is unreadable ({type(err).__name__}); "
                               "index the song files again into a new folder")
        return 0
    rows = []
    for song in tqdm(songs, desc="re-reading songs", unit="song", disable=not progress):
        parts = dict(p.split("=", 1) for p in song.stamp.split(":") if "=" in p)
        try:
            melody = read_song_melody(Path(song.source), parts.get("pitch"), parts.get("sep", "none"))
            rows.append((song, melody.resample(REFERENCE_HOP_S).trimmed()))
        except (HumdexError, OSError) as err:
            report.repaired.append(f"dropped {song.song_id}: its file cannot be read again ({err})")
    catalog = Catalog(db_dir, Snapshot(generation, (), (), str(manifest.get("vector_store", "faiss"))))
    catalog._commit(upserts=rows)  # replaces every song the manifest lists
    report.repaired.append(f"rebuilt the melody data of {len(rows)} songs")
    return len(rows)


def _store_folders(db_dir: Path) -> list[Path]:
    from humdex.learned.search import LEARNED_DIR

    learned = db_dir / LEARNED_DIR
    return sorted(p for p in learned.iterdir() if p.is_dir()) if learned.is_dir() else []


def cmd_check(args) -> int:  # type: ignore[no-untyped-def]
    """`humdex check --db X [--repair]`: exit 0 when whole (after repair), 2 otherwise."""
    from humdex.errors import EXIT_USER_ERROR

    report = repair_catalog(args.db, progress=not args.quiet) if args.repair else check_catalog(args.db)
    for line in report.repaired:
        print(f"repaired: {line}")
    for line in report.problems:
        print(f"problem: {line}")
    if report.leftovers and not args.repair:
        print(f"note: {len(report.leftovers)} temporary files of an interrupted writer (harmless)")
    if report.ok:
        print(f"catalog {args.db}: {report.songs} songs, consistent")
        return 0
    if not args.repair:
        print(f"run `humdex check --db {args.db} --repair` to rebuild what can be rebuilt")
    return EXIT_USER_ERROR
