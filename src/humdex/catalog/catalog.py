"""The catalog: a user's songs and their reference melodies, persisted in one folder.

Layout of a catalog folder:
    catalog.json              manifest: format version, generation, songs (metadata), data file names,
                              the store URI its fingerprints live in (humdex.learned.store_spec)
    data-<gen>.npz            every song's reference melody, concatenated (float16 MIDI, NaN = rest),
                              and the matcher's reference arrays (ref_*), kept in step with it
    .lock                     advisory lock held by writers

Every change writes new data files for the next generation, then atomically replaces
catalog.json; readers only ever see a complete generation. The previous generation's files are
kept so a reader that loaded the old manifest a moment ago can still open them.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import zipfile
from concurrent.futures import Executor, Future
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from humdex.catalog.ingest import (
    REFERENCE_HOP_S,
    SongFile,
    find_song_files,
    joined,
    melody_duration_s,
    read_manifest,
    read_song_melodies,
    read_tags,
    song_kind,
)
from humdex.classical.references import ReferenceSet
from humdex.errors import CatalogError, HumdexError
from humdex.files import atomic_write, folder_lock, remove_stray_temp_files
from humdex.frontend.contour import Contour
from humdex.frontend.stem import DEFAULT_SEPARATE

FORMAT_VERSION = 1
MANIFEST_NAME = "catalog.json"
COMMIT_EVERY_S = 60.0  # while indexing many files, save progress at least this often
DATA_RE = re.compile(r"^data-(\d{6})\.npz$")  # the data files a catalog writes (and only deletes)
REPAIR_HINT = "`humdex check --db {db} --repair` rebuilds it from the song files"


@dataclass(frozen=True)
class Song:
    """One catalog entry. `stamp` ("size:mtime_ns" of the source, plus how a recording's melody
    was extracted) tells whether it changed since."""

    song_id: str
    title: str | None
    artist: str | None
    source: str
    kind: str
    duration_s: float  # of its melody (the longer of a `both` record's two)
    stamp: str
    # a `both` record's reference holds the vocal stem's melody, then the mix's from this time (s;
    # catalog.ingest.joined); None: one melody
    mix_at_s: float | None = None


@dataclass(frozen=True)
class Snapshot:
    """An immutable view of the catalog at one generation: songs[i] has melodies[i]."""

    generation: int
    songs: tuple[Song, ...]
    melodies: tuple[Contour, ...]
    vector_store: str = "faiss"  # where the song fingerprints live (learned.store_spec URI)
    _references: list[ReferenceSet] = field(default_factory=list, repr=False, compare=False)

    def index_of(self, song_id: str) -> int:
        for i, song in enumerate(self.songs):
            if song.song_id == song_id:
                return i
        raise CatalogError(f"no song with id {song_id!r} in the catalog")

    @property
    def mostly_audio(self) -> bool:
        """At least half the songs are recordings (not MIDI, scores or pitch files)."""
        return self._mostly(("audio",))

    @property
    def mostly_performed(self) -> bool:
        """At least half the songs are performances: recordings, or pitch files (melodies tracked
        from recordings), not MIDI files or scores written at any tempo."""
        return self._mostly(("audio", "pitch"))

    def _mostly(self, kinds: tuple[str, ...]) -> bool:
        return sum(s.kind in kinds for s in self.songs) * 2 >= max(1, len(self.songs))

    def references(self) -> ReferenceSet:
        """The classical matcher's reference set over all melodies (stored with the catalog;
        rebuilt from the melodies only when missing)."""
        if not self._references:
            self._references.append(ReferenceSet.from_contours(list(self.melodies)))
        return self._references[0]


@dataclass
class AddReport:
    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def _stamp(path: Path, kind: str, pitch_method: str | None, separate: str) -> str:
    """"size:mtime_ns" of the file; for a recording also how its melody was extracted, so that
    re-indexing it with another --separate or --pitch re-tracks it (the mix, --separate none, and
    the default tracker add nothing: songs indexed before Spleeter became the default are
    re-tracked on their vocal stem by the next `humdex index`)."""
    st = path.stat()
    parts = [str(st.st_size), str(st.st_mtime_ns)]
    if kind == "audio" and separate != "none":
        parts.append(f"sep={separate}")
    if kind == "audio" and pitch_method:
        parts.append(f"pitch={pitch_method}")
    return ":".join(parts)


def _pack_melodies(melodies: tuple[Contour, ...]) -> dict[str, np.ndarray]:
    lengths = np.array([len(m.midi) for m in melodies], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    frames = [m.midi for m in melodies]
    midi = np.concatenate(frames).astype(np.float16) if frames else np.zeros(0, np.float16)
    return {"midi": midi, "offsets": offsets, "hop_s": np.array(REFERENCE_HOP_S)}


def _unpack_melodies(arrays: Any, n_songs: int) -> tuple[Contour, ...]:
    midi, offsets, hop_s = arrays["midi"], arrays["offsets"], float(arrays["hop_s"])
    if len(offsets) != n_songs + 1 or offsets[-1] != len(midi):
        raise CatalogError("melody data does not match the song list")
    midi = midi.astype(np.float32)
    return tuple(Contour(midi[a:b], hop_s) for a, b in itertools.pairwise(offsets))


class Catalog:
    """A catalog folder. Thread-safe; several processes may read while one writes."""

    def __init__(self, db_dir: Path, snapshot: Snapshot) -> None:
        self.db_dir = db_dir
        self._snapshot = snapshot
        self._manifest_seen: tuple[int, int] | None = None  # (inode, mtime) of catalog.json read
        self._write_lock = threading.Lock()

    # ---- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, db_dir: str | Path, create: bool = False) -> Catalog:
        """Open the catalog in `db_dir`; with create=True, make an empty one if there is none."""
        db_dir = Path(db_dir)
        if db_dir.exists() and not db_dir.is_dir():
            raise CatalogError(f"{db_dir}: is a file, not a catalog folder")
        if not (db_dir / MANIFEST_NAME).exists():
            if not create:
                raise CatalogError(f"{db_dir}: no humdex catalog here (create one with `humdex index`)")
            if _foreign_files(db_dir, ignore_ours=True):  # (ours: another process creating it now)
                raise _not_a_catalog(db_dir)
            db_dir.mkdir(parents=True, exist_ok=True)
            with folder_lock(db_dir):  # another process may be creating it right now
                if not (db_dir / MANIFEST_NAME).exists():
                    if _foreign_files(db_dir, ignore_ours=False):
                        raise _not_a_catalog(db_dir)
                    catalog = cls(db_dir, Snapshot(0, (), ()))
                    catalog._commit(locked=True)  # an empty generation others can open too
                    return catalog
        return cls(db_dir, _read_snapshot(db_dir))

    def snapshot(self) -> Snapshot:
        """The current generation, re-read from disk if another process changed it.

        Cheap when nothing changed: every commit replaces catalog.json by a new file, so its
        (inode, mtime) identifies the generation without parsing it.
        """
        try:
            st = (self.db_dir / MANIFEST_NAME).stat()
        except OSError:
            return self._snapshot
        seen = (st.st_ino, st.st_mtime_ns)
        if seen != self._manifest_seen:
            try:
                generation = json.loads((self.db_dir / MANIFEST_NAME).read_text())["generation"]
            except (OSError, ValueError, KeyError):
                return self._snapshot
            if generation != self._snapshot.generation:
                self._snapshot = _read_snapshot(self.db_dir)
            self._manifest_seen = seen
        return self._snapshot

    # ---- reading -------------------------------------------------------------------------
    def songs(self) -> list[Song]:
        return list(self.snapshot().songs)

    def song(self, song_id: str) -> Song:
        snap = self.snapshot()
        return snap.songs[snap.index_of(song_id)]

    def melody(self, song_id: str) -> Contour:
        snap = self.snapshot()
        return snap.melodies[snap.index_of(song_id)]

    def __len__(self) -> int:
        return len(self.snapshot().songs)

    # ---- writing -------------------------------------------------------------------------
    def add_files(
        self,
        paths: list[str | Path],
        manifest: str | Path | None = None,
        progress: bool = True,
        pitch_method: str | None = None,
        separate: str = DEFAULT_SEPARATE,
        executor: Executor | None = None,
    ) -> AddReport:
        """Add (or update) every song file under `paths`. Unchanged files are skipped.

        A file that cannot be read is reported in `failed`; the others are still added.
        Progress is saved at least every COMMIT_EVERY_S seconds, each save atomic.
        With an `executor` (a process pool, humdex.cluster.RayExecutor) the songs' melodies are
        read there (read_song, two songs ahead per worker); this process checks, orders and
        commits them as without one, so the catalog is the same.
        """
        entries = read_manifest(Path(manifest)) if manifest else {}
        files = find_song_files([Path(p) for p in paths])
        if not files:
            raise HumdexError(f"no song files found in {', '.join(map(str, paths))}")
        report = AddReport()
        pending: list[tuple[Song, Contour]] = []
        last_commit = time.monotonic()
        claimed = {s.song_id: s.source for s in self.snapshot().songs}
        from tqdm import tqdm  # 45 ms to import: not on a search's path

        ahead = None
        if executor is not None:
            ahead = self._read_ahead(files, entries, claimed, pitch_method, separate, executor)
        for path in tqdm(files, desc="indexing", unit="song", disable=not progress):
            entry = entries.get(str(path)) or SongFile(path, path.stem)
            try:
                song, melody = self._read_song(entry, claimed, pitch_method, separate,
                                               ahead.take(path) if ahead else None)
            except HumdexError as err:
                report.failed.append((str(path), str(err).removeprefix(f"{path}: ")))
                continue
            except MemoryError:
                report.failed.append((str(path), "too large to read (out of memory)"))
                continue
            except Exception as err:  # noqa: BLE001 - one odd file must not abort the others
                reason = " ".join(str(err).split())[:200]
                report.failed.append((str(path), f"unreadable ({type(err).__name__}: {reason})"))
                continue
            if melody is None:
                report.unchanged.append(song.song_id)
                continue
            claimed[song.song_id] = song.source
            pending.append((song, melody))
            report.added.append(song.song_id)
            if time.monotonic() - last_commit > COMMIT_EVERY_S:
                self._commit(upserts=pending)
                pending, last_commit = [], time.monotonic()
        if pending:
            self._commit(upserts=pending)
        return report

    def _read_ahead(
        self, files: list[Path], entries: dict[str, SongFile], claimed: dict[str, str],
        pitch_method: str | None, separate: str, executor: Executor,
    ) -> _ReadAhead:
        """The files add_files will read, read ahead by `executor` in add_files's order (two
        songs per worker ahead)."""
        from humdex.cluster import executor_workers

        todo: list[tuple[Path, str]] = []
        for path in files:
            entry = entries.get(str(path)) or SongFile(path, path.stem)
            try:
                stamp = self._stamp_to_read(entry, claimed, pitch_method, separate)
            except (HumdexError, OSError):
                continue  # reported by add_files's own check
            if stamp is not None:
                todo.append((path, stamp))
        return _ReadAhead(executor, todo, pitch_method, separate, 2 * executor_workers(executor))

    def _stamp_to_read(self, entry: SongFile, claimed: dict[str, str], pitch_method: str | None,
                       separate: str) -> str | None:
        """The file's stamp if its melody must be read, None if the catalog has it unchanged.
        HumdexError when its song id belongs to another file."""
        path = entry.path
        kind = song_kind(path)
        owner = claimed.get(entry.song_id)
        if owner is not None and owner != str(path):
            raise HumdexError(
                f"song id {entry.song_id!r} is already used by {owner}; "
                "give this file another id in a manifest (path,song_id,title,artist)"
            )
        stamp = _stamp(path, kind, pitch_method, separate)
        snap = self._snapshot
        if owner == str(path):
            old = snap.songs[snap.index_of(entry.song_id)]
            if old.stamp == stamp and old.title == (entry.title or old.title):
                return None
        return stamp

    def _read_song(
        self, entry: SongFile, claimed: dict[str, str], pitch_method: str | None,
        separate: str = DEFAULT_SEPARATE, fetched: tuple[str, Future] | None = None,
    ) -> tuple[Song, Contour | None]:
        """The song and its melody, or (the catalog's song, None) when it is unchanged.
        `fetched`: (stamp, future of read_song) when an executor read it ahead."""
        path = entry.path
        stamp = self._stamp_to_read(entry, claimed, pitch_method, separate)
        if stamp is None:
            snap = self._snapshot
            return snap.songs[snap.index_of(entry.song_id)], None
        if fetched is not None:
            stamp, future = fetched  # the stamp of the file the executor read
            melody, (title, artist), mix_at_s = future.result()
        else:
            melody, (title, artist), mix_at_s = read_song(path, pitch_method, separate)
        song = Song(
            song_id=entry.song_id,
            title=entry.title or title or None,
            artist=entry.artist or artist,
            source=str(path),
            kind=song_kind(path),
            duration_s=round(melody_duration_s(melody, mix_at_s), 3),
            stamp=stamp,
            mix_at_s=mix_at_s,
        )
        return song, melody

    def remove(self, song_ids: list[str]) -> None:
        """Remove songs by id; CatalogError (and no change) if any id is unknown."""
        snap = self.snapshot()
        known = {s.song_id for s in snap.songs}
        unknown = [s for s in song_ids if s not in known]
        if unknown:
            raise CatalogError(f"no song with id {', '.join(map(repr, unknown))} in the catalog")
        self._commit(removals=set(song_ids))

    def set_vector_store(self, uri: str) -> None:
        """Keep the song fingerprints in the store `uri` from now on (a new generation, songs
        unchanged; the learned search fills the store at its next sync). The caller checks it."""
        if uri != self.snapshot().vector_store:
            self._commit(vector_store=uri)

    def _commit(
        self, upserts: list[tuple[Song, Contour]] = (), removals: set[str] = frozenset(),  # type: ignore[assignment]
        locked: bool = False, vector_store: str | None = None,
    ) -> None:
        """Apply changes on top of the newest generation on disk and publish the next one
        (under the catalog's folder lock, unless the caller holds it: `locked`)."""
        with self._write_lock, (nullcontext() if locked else folder_lock(self.db_dir)):
            base = self.snapshot()
            replaced = {song.song_id for song, _ in upserts} | set(removals)
            kept = [(s, m) for s, m in zip(base.songs, base.melodies) if s.song_id not in replaced]
            rows = kept + list(upserts)
            songs = tuple(s for s, _ in rows)
            melodies = tuple(m for _, m in rows)
            keep = np.array([s.song_id not in replaced for s in base.songs], dtype=bool)
            references = base.references().select(keep).append([m for _, m in upserts])
            generation = base.generation + 1
            vector_store = vector_store or base.vector_store
            data_name = _data_name(generation)
            arrays = {**_pack_melodies(melodies), **references.to_arrays()}
            atomic_write(self.db_dir / data_name, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]
            manifest = {
                "format": FORMAT_VERSION,
                "generation": generation,
                "files": {"data": data_name},
                "songs": [asdict(s) for s in songs],
                "vector_store": vector_store,
            }
            payload = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
            atomic_write(self.db_dir / MANIFEST_NAME, lambda f: f.write(payload))
            self._snapshot = Snapshot(generation, songs, melodies, vector_store, [references])
            _remove_stale_files(self.db_dir, below=base.generation)
            remove_stray_temp_files(self.db_dir)  # of a writer killed earlier (we hold the lock)


def read_song(path: Path, pitch_method: str | None, separate: str
              ) -> tuple[Contour, tuple[str | None, str | None], float | None]:
    """What indexing reads of one song file: (its reference melody at REFERENCE_HOP_S, trimmed,
    at the precision the catalog stores; (title, artist) from its tags; where the mix's melody
    starts in a `both` record's reference, else None). HumdexError when it has no melody. The
    per-song work of add_files, in this process or in an executor's."""
    melody, mix_at_s = joined(read_song_melodies(path, pitch_method, separate))
    melody = melody.resample(REFERENCE_HOP_S).trimmed()  # (a joined one is both already)
    if melody.voiced.sum() < 10:
        raise HumdexError(f"{path}: no melody found")
    # as the data file keeps it (float16): what this process fingerprints and matches is then
    # what a later one reads back (a killed `index` resumed, or the Ray path's driver)
    stored = Contour(melody.midi.astype(np.float16).astype(np.float32), melody.hop_s)
    return stored, read_tags(path), mix_at_s


class _ReadAhead:
    """(stamp, future of read_song) of the `todo` files (path, stamp), submitted in order, each
    one taken letting the next in, so that `ahead` songs are read ahead of add_files."""

    def __init__(self, executor: Executor, todo: list[tuple[Path, str]], pitch_method: str | None,
                 separate: str, ahead: int) -> None:
        self._executor, self._todo = executor, list(reversed(todo))
        self._args = (pitch_method, separate)
        self._submitted: dict[Path, tuple[str, Future]] = {}
        for _ in range(ahead):
            self._submit_next()

    def _submit_next(self) -> None:
        if self._todo:
            path, stamp = self._todo.pop()
            self._submitted[path] = (stamp, self._executor.submit(read_song, path, *self._args))

    def take(self, path: Path) -> tuple[str, Future] | None:
        found = self._submitted.pop(path, None)
        if found is not None:
            self._submit_next()
        return found


def _foreign_files(db_dir: Path, ignore_ours: bool) -> bool:
    """Whether `db_dir` holds visible files (not counting a catalog's own names if ignore_ours)."""
    if not db_dir.is_dir():
        return False
    ours = {MANIFEST_NAME, "learned", "uploads"}
    return any(not p.name.startswith(".") and not (ignore_ours and (p.name in ours or DATA_RE.match(p.name)))
               for p in db_dir.iterdir())


def _not_a_catalog(db_dir: Path) -> CatalogError:
    return CatalogError(f"{db_dir}: folder is not empty and holds no humdex catalog; "
                        "give --db a new or empty folder")


def _data_name(generation: int) -> str:
    return f"data-{generation:06d}.npz"


def _remove_stale_files(db_dir: Path, below: int) -> None:
    """Delete this catalog's data files of generations before `below` (nothing else)."""
    for path in db_dir.glob("data-*.npz"):
        found = DATA_RE.match(path.name)
        if found and int(found.group(1)) < below:
            path.unlink(missing_ok=True)


def _read_snapshot(db_dir: Path, retries: int = 3) -> Snapshot:
    """Read the newest complete generation (retrying if a writer replaces it meanwhile)."""
    for attempt in range(retries):
        try:
            manifest = json.loads((db_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
            if manifest.get("format") != FORMAT_VERSION:
                raise CatalogError(
                    f"{db_dir}: catalog format {manifest.get('format')} is not {FORMAT_VERSION}"
                )
            songs = tuple(Song(**s) for s in manifest["songs"])
            with np.load(db_dir / manifest["files"]["data"]) as arrays:
                melodies = _unpack_melodies(arrays, len(songs))
                references = ReferenceSet.from_arrays(dict(arrays))
            if len(references) != len(songs):
                raise CatalogError(f"{db_dir}: matcher references do not match the song list")
            return Snapshot(int(manifest["generation"]), songs, melodies,
                            str(manifest.get("vector_store", "faiss")), [references])
        except FileNotFoundError:
            if attempt == retries - 1:
                raise CatalogError(f"{db_dir}: catalog data file is missing; "
                                   + REPAIR_HINT.format(db=db_dir)) from None
            time.sleep(0.05)
        except CatalogError:
            raise
        except (ValueError, KeyError, TypeError, OSError, EOFError, zipfile.BadZipFile) as err:
            what = " ".join(str(err).split())[:120]
            raise CatalogError(f"{db_dir}: catalog is corrupt ({type(err).__name__}: {what}); "
                               + REPAIR_HINT.format(db=db_dir)) from None
    raise AssertionError("unreachable")
