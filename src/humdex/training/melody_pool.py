"""The melody pool: real tunes from music21's corpora, deduplicated, evaluation melodies removed, split.

The pool ships as one compressed file (assets/melody_pool.npz) built by
scripts/build_melody_pool.py. Melodies are compared by their transposition-invariant interval
sequence (semitone steps between successive notes of different pitch, so repeated notes and
ties do not matter). Two rules use it:
- duplicates: tunes whose first PREFIX_INTERVALS intervals agree share a `melody_key`;
  only the first is kept (exact and near duplicates, e.g. variants that differ at the end);
- evaluation melodies: assets/excluded_melodies.txt lists hashes of every SHINGLE_INTERVALS-long
  run of intervals of each evaluation melody (scripts/build_excluded_melodies.py, from the
  MIREX QBSH database); a tune is excluded when it shares most runs with one of them.
Splits come from the melody key's hash, so they are deterministic and melody-disjoint.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from humdex.frontend.melody import Note

ASSETS = Path(__file__).parent.parent / "assets"
POOL_PATH = ASSETS / "melody_pool.npz"
EXCLUDED_PATH = ASSETS / "excluded_melodies.txt"
PREFIX_INTERVALS = 24
SHINGLE_INTERVALS = 10
EXCLUDE_FRACTION = 0.4  # share of runs a tune must have in common with one evaluation melody
EXCLUDE_MIN_RUNS = 5
SPLITS = ("train", "validation", "test")
SPLIT_PERCENT = (90, 5, 5)
CORPUS_ORDER = ("essenFolksong", "oneills1850", "ryansMammoth", "airdsAirs", "miscFolk",
                "nottingham-dataset", "bach", "leadSheet", "liliuokalani")


@dataclass(frozen=True, eq=False)
class PoolMelody:
    """One pool tune: note arrays (N,) in seconds / MIDI semitones, with its split and key."""

    melody_id: str
    corpus: str
    title: str
    split: str
    key: str
    onset_s: np.ndarray
    duration_s: np.ndarray
    pitch_midi: np.ndarray

    @property
    def notes(self) -> list[Note]:
        return [Note(float(o), float(d), float(p))
                for o, d, p in zip(self.onset_s, self.duration_s, self.pitch_midi)]


# ---------------------------------------------------------------- melody identity


def _pitches(melody: Sequence[Note] | np.ndarray) -> np.ndarray:
    if isinstance(melody, np.ndarray):
        return melody.astype(np.float64).reshape(-1)
    return np.array([n.pitch_midi for n in melody], dtype=np.float64)


def interval_sequence(melody: Sequence[Note] | np.ndarray) -> np.ndarray:
    """(M,) int8 semitone steps between successive notes of different pitch (a list of Notes or
    a (N,) pitch array), clipped to +-127: transposition- and tempo-invariant."""
    pitch = np.round(_pitches(melody)).astype(np.int64)
    if len(pitch) == 0:
        return np.zeros(0, np.int8)
    changed = np.concatenate([[True], pitch[1:] != pitch[:-1]])
    return np.clip(np.diff(pitch[changed]), -127, 127).astype(np.int8)


def _digest(intervals: np.ndarray, n_bytes: int) -> str:
    return hashlib.blake2b(intervals.astype(np.int8).tobytes(), digest_size=n_bytes).hexdigest()


def melody_key(melody: Sequence[Note] | np.ndarray) -> str:
    """16-hex key of the first PREFIX_INTERVALS intervals: equal keys = (near-)duplicate tunes."""
    return _digest(interval_sequence(melody)[:PREFIX_INTERVALS], 8)


def shingle_hashes(melody: Sequence[Note] | np.ndarray) -> set[str]:
    """12-hex hashes of every SHINGLE_INTERVALS-long run of intervals (the whole sequence if shorter)."""
    iv = interval_sequence(melody)
    if len(iv) < SHINGLE_INTERVALS:
        return {_digest(iv, 6)} if len(iv) >= 4 else set()
    return {_digest(iv[i : i + SHINGLE_INTERVALS], 6) for i in range(len(iv) - SHINGLE_INTERVALS + 1)}


@dataclass(frozen=True)
class ExcludedMelodies:
    """Run hashes of the evaluation melodies: which melodies (0..count-1) own each run hash."""

    owners: dict[str, tuple[int, ...]]
    run_counts: tuple[int, ...]

    @classmethod
    def from_runs(cls, runs_per_melody: Sequence[set[str]]) -> ExcludedMelodies:
        owners: dict[str, list[int]] = {}
        for index, runs in enumerate(runs_per_melody):
            for h in runs:
                owners.setdefault(h, []).append(index)
        return cls({h: tuple(v) for h, v in owners.items()}, tuple(len(r) for r in runs_per_melody))


def is_excluded(melody: Sequence[Note] | np.ndarray, excluded: ExcludedMelodies) -> bool:
    """True if the melody shares most interval runs with one evaluation melody (see excluded_by)."""
    return excluded_by(melody, excluded) is not None


def excluded_by(melody: Sequence[Note] | np.ndarray, excluded: ExcludedMelodies) -> int | None:
    """The index of the evaluation melody that best matches this one (see excluding_melodies)."""
    matches = excluding_melodies(melody, excluded)
    return matches[0] if matches else None


def excluding_melodies(melody: Sequence[Note] | np.ndarray, excluded: ExcludedMelodies) -> list[int]:
    """Indices of the evaluation melodies this melody matches, best first.

    Shared runs with evaluation melody m must reach EXCLUDE_FRACTION of the smaller of the two
    run sets (so a tune containing m, or contained in m, counts), and at least
    EXCLUDE_MIN_RUNS unless one of the two has fewer runs than that (then all of them).
    """
    runs = shingle_hashes(melody)
    votes: dict[int, int] = {}
    for h in runs:
        for owner in excluded.owners.get(h, ()):
            votes[owner] = votes.get(owner, 0) + 1
    found = []
    for owner, shared in votes.items():
        smaller = min(len(runs), excluded.run_counts[owner])
        if shared >= EXCLUDE_FRACTION * smaller and shared >= min(EXCLUDE_MIN_RUNS, smaller):
            found.append((shared / smaller, owner))
    return [owner for _, owner in sorted(found, key=lambda f: (-f[0], f[1]))]


def split_of(key: str) -> str:
    """The split of a melody key: deterministic, ~90/5/5."""
    bucket = int(key[:8], 16) % 100
    edge = 0
    for name, percent in zip(SPLITS, SPLIT_PERCENT):
        edge += percent
        if bucket < edge:
            return name
    return SPLITS[-1]


@functools.lru_cache(maxsize=2)
def load_excluded(path: Path = EXCLUDED_PATH) -> ExcludedMelodies:
    """The shipped excluded melodies: one line per evaluation melody, its run hashes ('#' = comment)."""
    lines = Path(path).read_text().splitlines()
    return ExcludedMelodies.from_runs([set(line.split()) for line in lines if not line.startswith("#")])


def excluded_file_text(melodies: Iterable[Sequence[Note] | np.ndarray], source: str) -> str:
    """The excluded-melodies file for evaluation melodies: a line of sorted run hashes each."""
    lines = [" ".join(sorted(shingle_hashes(m))) for m in melodies]
    header = (f"# humdex excluded melodies: per line, blake2b-48 hashes of every {SHINGLE_INTERVALS}-interval"
              f" run of one of {len(lines)} evaluation melodies ({source}); see melody_pool.is_excluded\n")
    return header + "".join(line + "\n" for line in lines)


# ---------------------------------------------------------------- building


def _corpus_rank(corpus: str) -> int:
    return CORPUS_ORDER.index(corpus) if corpus in CORPUS_ORDER else len(CORPUS_ORDER)


def assemble_pool(tunes: list[dict], excluded: ExcludedMelodies) -> tuple[list[dict], dict]:
    """Dedup, exclude and split parsed tunes (dicts: corpus, source, number, title, onset,
    duration, pitch arrays). Returns the kept tunes (with melody_id, key, split) and counts."""
    ordered = sorted(tunes, key=lambda t: (_corpus_rank(t["corpus"]), t["source"], t["number"]))
    seen: set[str] = set()
    kept: list[dict] = []
    stats: dict = {"parsed": {}, "too_short": 0, "duplicates": 0, "excluded": {}, "kept": {}}
    for tune in ordered:
        corpus = tune["corpus"]
        stats["parsed"][corpus] = stats["parsed"].get(corpus, 0) + 1
        if len(interval_sequence(tune["pitch"])) < 4:
            stats["too_short"] += 1
            continue
        if is_excluded(tune["pitch"], excluded):
            stats["excluded"][corpus] = stats["excluded"].get(corpus, 0) + 1
            continue
        key = melody_key(tune["pitch"])
        if key in seen:
            stats["duplicates"] += 1
            continue
        seen.add(key)
        melody_id = f"{corpus}/{Path(tune['source']).stem}/{tune['number']}"
        kept.append({**tune, "melody_id": melody_id, "key": key, "split": split_of(key)})
        stats["kept"][corpus] = stats["kept"].get(corpus, 0) + 1
    stats["total_kept"] = len(kept)
    stats["splits"] = {s: sum(t["split"] == s for t in kept) for s in SPLITS}
    return kept, stats


def write_pool(kept: list[dict], path: Path = POOL_PATH) -> None:
    """Write the pool atomically as one compressed .npz of concatenated note arrays."""
    corpora = sorted({t["corpus"] for t in kept}, key=_corpus_rank)
    lengths = np.array([len(t["pitch"]) for t in kept], dtype=np.int64)
    arrays: dict[str, np.ndarray] = {
        "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        "onset_s": np.concatenate([t["onset"] for t in kept]).astype(np.float32),
        "duration_s": np.concatenate([t["duration"] for t in kept]).astype(np.float32),
        "pitch_midi": np.concatenate([t["pitch"] for t in kept]).astype(np.float32),
        "melody_id": np.array([t["melody_id"] for t in kept]),
        "title": np.array([t["title"] for t in kept]),
        "key": np.array([t["key"] for t in kept]),
        "corpus_index": np.array([corpora.index(t["corpus"]) for t in kept], dtype=np.uint8),
        "corpora": np.array(corpora),
        "split_index": np.array([SPLITS.index(t["split"]) for t in kept], dtype=np.uint8),
    }
    from humdex.files import atomic_savez

    atomic_savez(path, compressed=True, **arrays)


# ---------------------------------------------------------------- loading


def _has_c1(text: str) -> bool:
    return any(0x80 <= ord(c) < 0xA0 for c in text)


def decoded_titles(melody_ids: list[str], titles: list[str]) -> list[str]:
    """Titles as their authors wrote them. Some Essen files are in DOS code page 437 and reach
    music21 as Latin-1 ("Sch\x84fer" for "Schäfer", "Schloá" for "Schloß"): a source file any of
    whose titles holds a C1 control character (never in real text) is re-read as CP437."""
    def source(melody_id: str) -> str:
        return melody_id.rsplit("/", 1)[0]

    cp437 = {source(i) for i, t in zip(melody_ids, titles) if _has_c1(t)}
    return [t.encode("latin-1", "replace").decode("cp437") if source(i) in cp437 else t
            for i, t in zip(melody_ids, titles)]


@functools.lru_cache(maxsize=2)
def _load_all(path: Path) -> tuple[PoolMelody, ...]:
    with np.load(path, allow_pickle=False) as data:
        offsets = data["offsets"].tolist()
        onset, duration, pitch = data["onset_s"], data["duration_s"], data["pitch_midi"]
        ids, titles, keys = data["melody_id"].tolist(), data["title"].tolist(), data["key"].tolist()
        titles = decoded_titles(ids, titles)
        corpora = data["corpora"].tolist()
        corpus_index, split_index = data["corpus_index"].tolist(), data["split_index"].tolist()
    for arr in (onset, duration, pitch):
        arr.setflags(write=False)
    return tuple(
        PoolMelody(ids[i], corpora[corpus_index[i]], titles[i], SPLITS[split_index[i]], keys[i],
                   onset[offsets[i] : offsets[i + 1]], duration[offsets[i] : offsets[i + 1]],
                   pitch[offsets[i] : offsets[i + 1]])
        for i in range(len(ids))
    )


def load_pool(split: str | None = None, path: Path = POOL_PATH) -> list[PoolMelody]:
    """The pool's melodies, all or one split ('train', 'validation', 'test')."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
    melodies = _load_all(Path(path))
    return [m for m in melodies if split is None or m.split == split]
