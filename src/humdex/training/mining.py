"""`humdex mine`: aligned-fragment mining of cover groups into a CHAD-layout training folder.

GROUPS.csv lists cover groups, one song file a row: group_id, role (original | cover), path
(relative to the CSV's folder), and optionally id (the version's id; default the file stem) and,
on original rows, interval "(start, end)": a fragment of the original to look for (without
one, the original is cut into fragments of MineConfig.fragment_s).

For each group: (optionally) separate the vocals, fingerprint the original and every cover with
the model, align each original fragment to each cover (training.alignment) and sort the pair by
its score: accepted (>= accept), uncertain (>= review: a person decides, `humdex review`) or
rejected. Output, in CHAD's layout: fragments/{group}/{fragment}/{id}.wav for the original
fragment and the accepted and uncertain cover stretches, cut at the exact float interval;
meta/{group}.csv (written last: a group with it is done and skipped on resume) and
metadata.csv (all groups' rows; columns: CHAD's plus status, tempo_ratio, source).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import hashlib
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from humdex.errors import HumdexError
from humdex.frontend.audio import AUDIO_SUFFIXES
from humdex.training.alignment import (
    AlignConfig,
    CoverSpectrum,
    align_fragment,
    max_fragment_windows,
)
from humdex.training.chad import (
    METADATA_NAME,
    FragmentRecord,
    parse_interval,
    read_metadata,
    write_metadata,
    write_wav,
)

SAMPLE_RATE = 16000
META_DIR = "meta"
ROLES = ("original", "cover")


@dataclass(frozen=True)
class MineConfig:
    """Thresholds and fragmenting. accept/review: CHAD's correlation bands (paper: an uncertain
    band of about 0.3-0.5 goes to people); defaults chosen on the synthetic covers
    (benchmarks/mining_quality.py, BENCHMARKS.md)."""

    accept: float = 0.6
    review: float = 0.45
    fragment_s: float = 8.0  # automatic fragments of the original: length
    fragment_hop_s: float = 8.0  # and spacing
    min_voiced: float = 0.3  # automatic fragments with less of their frames voiced are skipped (CREPE models)
    separate: str = "none"  # none | spleeter: fingerprint the vocal stem
    # what a CREPE model is fed: "model" its own input (CREPE activations), "contour" the melody
    # humdex's front end tracks (the song tracker on songs, the query tracker on hums) as a
    # pseudo-activation: the default search's path, for models trained with `--feature contour`
    frames: str = "model"

    min_margin: float = 0.0  # accepted pairs' peak must stand this far above the fragment's median score
    # > 0: accept and review come from this model's scores of unrelated pairs (null_scores) instead:
    # accept lets this share of them through, review five times as many (thresholds that follow
    # the model: a weak one scores everything high)
    calibrate: float = 0.0

    def status(self, score: float, margin: float = 1.0) -> str:
        if score >= self.accept and margin >= self.min_margin:
            return "accepted"
        return "uncertain" if score >= self.review else "rejected"


@dataclass(frozen=True)
class Version:
    id: str
    path: Path
    intervals: tuple[tuple[float, float], ...] = ()  # originals: fragments given in GROUPS.csv


@dataclass(frozen=True)
class CoverGroup:
    group_id: str
    original: Version
    covers: tuple[Version, ...]


@dataclass
class MineReport:
    groups: int = 0
    skipped: int = 0  # already mined (resume)
    failed: list[tuple[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # status -> cover rows
    accept: float = MineConfig.accept  # the thresholds used (calibrated ones, when asked for)
    review: float = MineConfig.review

    def summary(self) -> str:
        c = ", ".join(f"{self.counts.get(s, 0)} {s}" for s in ("accepted", "uncertain", "rejected"))
        return (f"{self.groups} groups mined, {self.skipped} already done, {len(self.failed)} failed; "
                f"cover fragments: {c} (accept >= {self.accept:.3f}, review >= {self.review:.3f})")


def read_groups(path: str | Path) -> list[CoverGroup]:
    """Cover groups from GROUPS.csv (see the module docstring); HumdexError on a bad file."""
    path = Path(path)
    if not path.is_file():
        raise HumdexError(f"{path}: groups CSV not found")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = [c.strip() for c in reader.fieldnames or []]
        reader.fieldnames = fields
        if not {"group_id", "role", "path"} <= set(fields):
            raise HumdexError(f"{path}: needs columns group_id, role, path (has {fields})")
        originals: dict[str, Version] = {}
        covers: dict[str, list[Version]] = {}
        order: list[str] = []
        for n, row in enumerate(reader, start=2):
            gid, role = (row.get("group_id") or "").strip(), (row.get("role") or "").strip().lower()
            rel = (row.get("path") or "").strip()
            if not gid or role not in ROLES or not rel:
                raise HumdexError(f"{path}:{n}: needs a group_id, role original|cover and a path")
            file = (path.parent / rel).resolve() if not Path(rel).is_absolute() else Path(rel)
            vid = (row.get("id") or "").strip() or file.stem
            if gid not in order:
                order.append(gid)
            if role == "original":
                interval = (row.get("interval") or "").strip()
                old = originals.get(gid)
                if old is not None and old.path != file:
                    raise HumdexError(f"{path}:{n}: group {gid} has two originals")
                given = old.intervals if old else ()
                originals[gid] = Version(vid, file, given + ((parse_interval(interval),) if interval else ()))
            else:
                covers.setdefault(gid, []).append(Version(vid, file))
    out = []
    for gid in order:
        if gid not in originals:
            raise HumdexError(f"{path}: group {gid} has no original")
        if not covers.get(gid):
            raise HumdexError(f"{path}: group {gid} has no cover")
        out.append(CoverGroup(gid, originals[gid], tuple(covers[gid])))
    return out


# ---- features ----------------------------------------------------------------------------


def _cache_path(cache: Path, path: Path, what: str) -> Path:
    st = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{what}".encode()).hexdigest()[:20]
    return cache / f"{path.stem}_{key}.npy"


FRAME_SOURCES = ("model", "contour")


def input_feature(model_feature: str, config: MineConfig) -> str:
    """The features mining computes for a model: its own ("crepe", "cqt") or "contour"."""
    if config.frames not in FRAME_SOURCES:
        raise HumdexError(f"unknown frames {config.frames!r}; expected one of {FRAME_SOURCES}")
    if config.frames == "contour":
        if model_feature != "crepe":
            raise HumdexError(f"a {model_feature} model cannot be fed tracked contours (CREPE models only)")
        return "contour"
    return model_feature


def version_frames(audio: np.ndarray, feature: str, audio_type: str) -> np.ndarray:
    """(T, B) frames at 10 ms: `feature` "crepe"/"cqt" of the audio, or ("contour") the melody
    the front end tracks in it as (T,) MIDI (training.data.rendition_contour; `audio_type`
    picks the song or the query tracker), to be expanded by training.data.model_input."""
    from humdex.learned.features import audio_frames
    from humdex.training.data import rendition_contour

    if feature == "contour":
        return rendition_contour(audio, audio_type)
    return audio_frames(audio, SAMPLE_RATE, feature)


def song_frames(path: Path, feature: str, separate: str, cache: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """(audio (n,) float32 at 16 kHz, (T, B) model input at 10 ms of its vocals or mix: `feature`
    frames, or the song tracker's contour as a pseudo-activation ("contour"); with a `cache`,
    at the precision it keeps them in (float16 features, float32 contours), read from it or not)."""
    from humdex.frontend.audio import load
    from humdex.training.data import model_input

    audio = load(path, SAMPLE_RATE)
    cached = _cache_path(cache, path, f"{feature}|{separate}") if cache else None
    if cached is not None and cached.is_file():
        return audio, model_input(np.load(cached).astype(np.float32))
    voice = audio
    if separate == "spleeter":
        from humdex.frontend.separation import separate_vocals

        voice = separate_vocals(audio, SAMPLE_RATE)
    frames = version_frames(voice, feature, "original").astype(np.float32)
    if cached is not None:
        from humdex.files import atomic_write

        kept = frames if feature == "contour" else frames.astype(np.float16)
        atomic_write(cached, lambda f: np.save(f, kept), fsync=False)
        frames = kept.astype(np.float32)  # as a later run reads them back: the same results
    return audio, model_input(frames)


def original_fragments(version: Version, duration_s: float, frames: np.ndarray, feature: str,
                       align: AlignConfig, config: MineConfig) -> list[tuple[int, int]]:
    """Fragments of the original as (first window, window count) on the fingerprint hop grid.

    Given intervals snap to the grid (start rounded, windows that fit); otherwise fragments of
    config.fragment_s every config.fragment_hop_s, skipping mostly unvoiced ones (CREPE).
    """
    hop, win = align.hop_s, align.window_s
    spans: list[tuple[float, float]] = list(version.intervals)
    if not spans:
        t = 0.0
        while t + config.fragment_s <= duration_s + 1e-9:
            spans.append((t, t + config.fragment_s))
            t += config.fragment_hop_s
    out = []
    for a, b in spans:
        first = round(a / hop)
        count = int(np.floor((b - first * hop - win) / hop + 1e-9)) + 1
        if count < 2:
            continue
        if not version.intervals and feature in ("crepe", "contour") and config.min_voiced > 0:
            seg = frames[int(first * hop / 0.01):int((first * hop + (count - 1) * hop + win) / 0.01)]
            if len(seg) == 0 or np.mean(seg.max(axis=1) >= 0.5) < config.min_voiced:
                continue
        out.append((first, count))
    return out


# ---- thresholds from unrelated pairs -----------------------------------------------------

CALIBRATION_NAME = "calibration.json"
NULL_GROUPS = 30  # groups whose fragments meet another group's cover


def null_scores(groups: Sequence[CoverGroup], model_path: str | None, config: MineConfig,
                cache: Path | None = None, max_groups: int = NULL_GROUPS) -> np.ndarray:
    """What unrelated pairs score with this model: every fragment of group i's original aligned
    to the first cover of group i + 1 (the first max_groups groups, in a ring), as mining
    aligns a fragment to its own covers."""
    from humdex.learned.fingerprints import fingerprint_frames
    from humdex.learned.model import load_model

    picked = list(groups)[:max_groups]
    if len(picked) < 2:
        raise HumdexError("calibrated thresholds need two or more cover groups (unrelated pairs)")
    model = load_model(model_path)
    feature = input_feature(model.config.feature, config)
    align = AlignConfig(hop_s=model.config.hop_s, window_s=model.config.window_s)
    scores: list[float] = []
    for i, group in enumerate(picked):
        _, fp, frags = _original(group.original, model, feature, align, config, cache)
        if not frags:
            continue
        decoy = picked[(i + 1) % len(picked)].covers[0]
        _, frames = song_frames(decoy.path, feature, config.separate, cache)
        spectrum = CoverSpectrum(fingerprint_frames(model, frames), max(max_fragment_windows(c, align) for _, c in frags))
        scores += [align_fragment(fp[f:f + c], spectrum, align).score for f, c in frags]
    if not scores:
        raise HumdexError("calibrated thresholds: no fragment of the originals could be aligned")
    return np.asarray(scores)


def calibrated(config: MineConfig, null: np.ndarray) -> MineConfig:
    """accept at the null's (1 - calibrate) quantile, review at its (1 - 5 calibrate) one."""
    accept = float(np.quantile(null, 1.0 - config.calibrate))
    review = float(np.quantile(null, max(0.0, 1.0 - 5.0 * config.calibrate)))
    return dataclasses.replace(config, accept=round(accept, 4), review=round(min(review, accept), 4))


def _calibrate_once(groups: Sequence[CoverGroup], model_path: str | None, out: Path, config: MineConfig,
                    cache: Path, log: Callable[[str], None]) -> MineConfig:
    """The run's calibrated thresholds, computed once and kept in out/calibration.json (a resumed
    run sorts its remaining groups by the same ones)."""
    import json

    from humdex.files import atomic_write_bytes

    path = out / CALIBRATION_NAME
    if path.is_file():
        kept = json.loads(path.read_text())
        return dataclasses.replace(config, accept=kept["accept"], review=kept["review"])
    null = null_scores(groups, model_path, config, cache)
    tuned = calibrated(config, null)
    facts = {"accept": tuned.accept, "review": tuned.review, "calibrate": config.calibrate,
             "null_pairs": len(null), "null_median": round(float(np.median(null)), 4),
             "null_max": round(float(null.max()), 4), "model": str(model_path)}
    atomic_write_bytes(path, json.dumps(facts, indent=1).encode())
    log(f"thresholds from {len(null)} unrelated pairs: accept >= {tuned.accept:.3f}, review >= {tuned.review:.3f}")
    return tuned


# ---- one group ---------------------------------------------------------------------------


def _cut(audio: np.ndarray, interval: tuple[float, float]) -> np.ndarray:
    """The samples of [start, end) seconds: sample-accurate (round(t * rate))."""
    a, b = (round(t * SAMPLE_RATE) for t in interval)
    return audio[max(0, a):max(0, b)]


def _original(version: Version, model, feature: str, align: AlignConfig, config: MineConfig,
              cache: Path | None) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """An original's audio, (n, D) fingerprints of its `feature` frames (input_feature) and
    fragments (original_fragments)."""
    from humdex.learned.fingerprints import fingerprint_frames

    audio, frames = song_frames(version.path, feature, config.separate, cache)
    frags = original_fragments(version, len(audio) / SAMPLE_RATE, frames, feature, align, config)
    return audio, fingerprint_frames(model, frames), frags


def mine_group(group: CoverGroup, model_path: str | None, out: Path, config: MineConfig,
               cache: Path | None = None) -> list[FragmentRecord]:
    """Align every fragment of the group's original to every cover; write its audio and meta."""
    from humdex.learned.fingerprints import fingerprint_frames
    from humdex.learned.model import load_model

    meta = out / META_DIR / f"{group.group_id}.csv"
    if meta.is_file():
        return read_metadata(meta)
    model = load_model(model_path)
    feature = input_feature(model.config.feature, config)
    align = AlignConfig(hop_s=model.config.hop_s, window_s=model.config.window_s)
    orig_audio, orig_fp, frags = _original(group.original, model, feature, align, config, cache)
    records: list[FragmentRecord] = []
    if not frags:
        write_metadata(meta, records)
        return records
    longest = max(max_fragment_windows(c, align) for _, c in frags)
    spans = {}
    for k, (first, count) in enumerate(frags):
        start = first * align.hop_s
        spans[k] = (start, start + (count - 1) * align.hop_s + align.window_s)
    covers = []
    for cover in group.covers:
        audio, frames = song_frames(cover.path, feature, config.separate, cache)
        covers.append((cover, audio, CoverSpectrum(fingerprint_frames(model, frames), longest)))
    for k, (first, count) in enumerate(frags):
        fid = str(k)
        interval = spans[k]
        orig_id = f"{group.group_id}_{k}_{group.original.id}"
        base: dict[str, Any] = {"group_id": group.group_id, "fragment_id": fid, "kind": "song",
                                "melody_id": group.group_id}
        rec = FragmentRecord(id=orig_id, audio_type="original", interval=interval, correlation=1.0,
                             check_by_crowdsource=False, is_available=True,
                             duration=interval[1] - interval[0],
                             extra={"status": "", "source": str(group.original.path)}, **base)
        write_wav(rec.audio_path(out), _cut(orig_audio, interval), SAMPLE_RATE)
        records.append(rec)
        for cover, audio, spectrum in covers:
            al = align_fragment(orig_fp[first:first + count], spectrum, align)
            dur = len(audio) / SAMPLE_RATE
            span = (max(0.0, al.start_s), min(dur, al.end_s))
            status = config.status(al.score, al.margin)
            keep = status != "rejected" and span[1] - span[0] > 0.5
            crec = FragmentRecord(id=f"{group.group_id}_{k}_{cover.id}", audio_type="cover",
                                  interval=span, correlation=round(al.score, 4),
                                  check_by_crowdsource=False, is_available=keep,
                                  duration=span[1] - span[0],
                                  extra={"status": status, "tempo_ratio": f"{al.ratio:.4f}",
                                         "margin": f"{al.margin:.4f}", "source": str(cover.path)},
                                  **base)
            if keep:
                write_wav(crec.audio_path(out), _cut(audio, span), SAMPLE_RATE)
            records.append(crec)
    write_metadata(meta, records)  # last: marks the group done
    return records


def _mine_worker(group: CoverGroup, model_path: str | None, out: Path, config: MineConfig,
                 cache: Path | None, threads: int) -> list[FragmentRecord]:
    os.environ["HUMDEX_THREADS"] = str(threads)
    return mine_group(group, model_path, out, config, cache)


def collect(out: Path) -> list[FragmentRecord]:
    """Rebuild out/metadata.csv from out/meta/*.csv (groups in name order); the rows."""
    rows: list[FragmentRecord] = []
    for path in sorted((out / META_DIR).glob("*.csv")):
        rows += read_metadata(path)
    write_metadata(out / METADATA_NAME, rows)
    return rows


def mine(groups: Sequence[CoverGroup], model_path: str | None, out: str | Path,
         config: MineConfig = MineConfig(), workers: int = 1, cache: str | Path | None = None,
         progress: bool = True, log: Callable[[str], None] = print,
         executor: Executor | None = None) -> MineReport:
    """Mine every group (resumable: groups with meta/{group}.csv are skipped), in `workers`
    processes or in `executor`'s workers (humdex.cluster.RayExecutor: one thread each; they
    write the group's files into `out`, as the processes do); rebuilds metadata.csv. A group that
    fails (unreadable file, its worker lost) is reported, not fatal."""
    from tqdm import tqdm

    out = Path(out)
    (out / META_DIR).mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cache) if cache else out / ".cache"
    if config.calibrate > 0:
        config = _calibrate_once(groups, model_path, out, config, cache_dir, log)
    report = MineReport(accept=config.accept, review=config.review)
    todo = []
    for g in groups:
        if (out / META_DIR / f"{g.group_id}.csv").is_file():
            report.skipped += 1
        else:
            todo.append(g)
    bar = tqdm(total=len(todo), desc="mine", unit="group", disable=not progress)

    def done(gid: str, fn: Callable[[], list[FragmentRecord]]) -> None:
        try:
            fn()
            report.groups += 1
        except HumdexError as err:
            report.failed.append((gid, str(err)))
            log(f"  group {gid} failed: {err}")
        bar.update(1)

    if workers <= 1 and executor is None:
        for g in todo:
            done(g.group_id, functools.partial(mine_group, g, model_path, out, config, cache_dir))
    else:
        from humdex.cluster import executor_workers

        threads = 1 if executor is not None else max(1, (os.cpu_count() or 1) // workers)
        with nullcontext(executor) if executor is not None else ProcessPoolExecutor(workers) as pool:
            workers = executor_workers(pool)
            pending: dict[Future, str] = {}
            queue = list(todo)
            while queue or pending:
                while queue and len(pending) < 2 * workers:
                    g = queue.pop(0)
                    pending[pool.submit(_mine_worker, g, model_path, out, config, cache_dir, threads)] = g.group_id
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    done(pending.pop(fut), fut.result)
    bar.close()
    for rec in collect(out):
        if rec.audio_type == "cover":
            status = rec.extra.get("status", "")
            report.counts[status] = report.counts.get(status, 0) + 1
    return report


# ---- a user's own labelled hums -------------------------------------------------------------

HUM_RATIOS = tuple(float(x) for x in np.geomspace(0.5, 2.0, 13))  # people hum at their own tempo


def _song_file(songs: Path, song_id: str) -> Path:
    hits = [p for p in songs.glob(f"{song_id}.*") if p.suffix.lower() in AUDIO_SUFFIXES]
    if "/" in song_id or not hits:
        raise HumdexError(f"{songs}: no audio file for song id {song_id!r} (expected {song_id}.wav or the like)")
    return min(hits)


def mine_hums(pairs: Sequence[tuple[Path, str]], songs: str | Path, model_path: str | None,
              out: str | Path, config: MineConfig = MineConfig(), cache: str | Path | None = None,
              progress: bool = True) -> MineReport:
    """A user's labelled hums (query file, song id) -> CHAD-layout training pairs: each whole
    query is aligned to its song (the query slides over the song's fingerprints, tempo
    0.5-2x), and the song's stretch is cut out as the fragment's original. Resumable per query."""
    from tqdm import tqdm

    from humdex.frontend.audio import load
    from humdex.learned.fingerprints import fingerprint_frames
    from humdex.learned.model import load_model
    from humdex.training.data import model_input

    out, songs = Path(out), Path(songs)
    (out / META_DIR).mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cache) if cache else out / ".cache"
    model = load_model(model_path)
    feature = input_feature(model.config.feature, config)
    align = AlignConfig(hop_s=model.config.hop_s, window_s=model.config.window_s, ratios=HUM_RATIOS)
    report = MineReport()
    song_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for query, song_id in tqdm(pairs, desc="mine hums", disable=not progress):
        gid = song_id
        fid = query.stem
        meta = out / META_DIR / f"{gid}__{fid}.csv"
        if meta.is_file():
            report.skipped += 1
            continue
        try:
            if song_id not in song_cache:
                audio, frames = song_frames(_song_file(songs, song_id), feature, config.separate, cache_dir)
                song_cache[song_id] = (audio, fingerprint_frames(model, frames))
            song_audio, song_fp = song_cache[song_id]
            hum = load(query, SAMPLE_RATE)
            hum_fp = fingerprint_frames(model, model_input(version_frames(hum, feature, "humming")))
        except HumdexError as err:
            report.failed.append((str(query), str(err)))
            continue
        al = align_fragment(hum_fp, CoverSpectrum(song_fp, max_fragment_windows(len(hum_fp), align)), align)
        dur = len(song_audio) / SAMPLE_RATE
        span = (max(0.0, al.start_s), min(dur, al.end_s))
        status = config.status(al.score)
        base: dict[str, Any] = {"group_id": gid, "fragment_id": fid, "melody_id": song_id}
        orig = FragmentRecord(id=f"{song_id}__{fid}", audio_type="original", interval=span,
                              correlation=round(al.score, 4), check_by_crowdsource=False,
                              is_available=True, duration=span[1] - span[0], kind="song",
                              extra={"status": status, "tempo_ratio": f"{al.ratio:.4f}",
                                     "source": str(_song_file(songs, song_id))}, **base)
        hum_rec = FragmentRecord(id=fid, audio_type="humming", interval=(0.0, len(hum) / SAMPLE_RATE),
                                 correlation=round(al.score, 4), check_by_crowdsource=False,
                                 is_available=True, duration=len(hum) / SAMPLE_RATE, kind="hum",
                                 extra={"status": status, "source": str(query)}, **base)
        write_wav(orig.audio_path(out), _cut(song_audio, span), SAMPLE_RATE)
        write_wav(hum_rec.audio_path(out), hum, SAMPLE_RATE)
        write_metadata(meta, [orig, hum_rec])
        report.groups += 1
        report.counts[status] = report.counts.get(status, 0) + 1
    collect(out)
    return report


# ---- CLI -----------------------------------------------------------------------------------


def run_mine_hums(args: argparse.Namespace) -> int:
    from humdex.evaluate import read_query_list

    if not 0.0 <= args.review <= args.accept <= 1.0:
        raise HumdexError("--review and --accept must satisfy 0 <= review <= accept <= 1")
    if not Path(args.songs).is_dir():
        raise HumdexError(f"{args.songs}: songs folder not found")
    config = dataclasses.replace(MineConfig(), accept=args.accept, review=args.review, frames=args.frames)
    report = mine_hums(read_query_list(Path(args.queries)), args.songs, args.model, args.out, config,
                       progress=not args.quiet)
    print(f"{report.groups} hums aligned, {report.skipped} already done, {len(report.failed)} failed: "
          f"{report.counts} -> {Path(args.out) / METADATA_NAME}")
    for path, err in report.failed:
        print(f"  {path}: {err}")
    return 2 if report.failed and not (report.groups or report.skipped) else 0


def run_mine(args: argparse.Namespace) -> int:
    if not 0.0 <= args.review <= args.accept <= 1.0:
        raise HumdexError("--review and --accept must satisfy 0 <= review <= accept <= 1")
    if args.workers < 1 or args.fragment_s <= 0 or args.fragment_hop_s <= 0:
        raise HumdexError("--workers, --fragment-s and --fragment-hop-s must be positive")
    if not 0.0 <= args.calibrate < 0.2:
        raise HumdexError("--calibrate is a share of unrelated pairs to let through: 0 (off) up to 0.2")
    config = dataclasses.replace(MineConfig(), accept=args.accept, review=args.review,
                                 fragment_s=args.fragment_s, fragment_hop_s=args.fragment_hop_s,
                                 separate=args.separate, frames=args.frames, calibrate=args.calibrate)
    from humdex.learned.model import load_model

    input_feature(load_model(args.model).config.feature, config)  # a bad checkpoint or --frames: one line
    groups = read_groups(args.groups)
    t0 = time.perf_counter()
    from humdex.cluster import executor_for

    with executor_for(args.ray) as executor:
        report = mine(groups, args.model, args.out, config, args.workers, args.cache, not args.quiet,
                      executor=executor)
    print(f"{report.summary()} ({time.perf_counter() - t0:.0f} s) -> {Path(args.out) / METADATA_NAME}")
    return 2 if report.failed and not (report.groups or report.skipped) else 0
