"""`humdex chad validate|download|ingest-hums`: CHAD's metadata, its audio, its hummings tar.

validate: the metadata CSV's columns, intervals, types and fragments, with counts and hours.
download: every source video of the wanted rows is fetched once (yt-dlp as a library, the
optional `mine` extra; any callable fetcher in tests), decoded with ffmpeg (imageio-ffmpeg) and
cut at each row's exact float interval, to the sample (the official script truncates to whole
seconds). Resumable (rows whose fragment exists and sources already fetched are skipped),
parallel (threads), rate-limited (at most one fetch start per 1/rate seconds), atomic (files
appear whole or not at all); unavailable videos are reported in OUT/availability.csv and their
rows marked is_available False. OUT/metadata.csv lists the rows present locally, so
`humdex train OUT` trains on what could be fetched.
ingest-hums: the Hugging Face hummings tar (fragments/{group}/{fragment}/{id}.ext) unpacked into
OUT, member names checked (no absolute paths or ..), existing files kept.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import tarfile
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path

from humdex.errors import HumdexError
from humdex.training.chad import (
    AUDIO_EXTENSIONS,
    AUDIO_TYPES,
    METADATA_NAME,
    FragmentRecord,
    atomic_write_bytes,
    parse_interval,
    read_metadata,
    write_metadata,
    write_wav,
)

SAMPLE_RATE = 16000
SOURCES_DIR = "sources"
_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")


class Unavailable(Exception):
    """The fetcher could not get this video (removed, private, region-locked)."""


Fetcher = Callable[[str, Path], Path]  # (youtube_id, folder) -> the downloaded file in folder


# ---- validate ------------------------------------------------------------------------------


@dataclass
class Validation:
    rows: int = 0
    problems: list[str] = field(default_factory=list)
    types: Counter = field(default_factory=Counter)
    groups: int = 0
    fragments: int = 0
    hours: dict[str, float] = field(default_factory=dict)
    videos: int = 0

    def summary(self) -> str:
        types = ", ".join(f"{n} {t}" for t, n in sorted(self.types.items()))
        hours = ", ".join(f"{t} {h:.2f} h" for t, h in sorted(self.hours.items()))
        return (f"{self.rows} rows ({types}) in {self.fragments} fragments of {self.groups} groups; "
                f"{self.videos} source videos; audio: {hours}; {len(self.problems)} problems")


def validate_metadata(path: str | Path) -> Validation:
    """Check a CHAD metadata CSV row by row (problems listed, not raised)."""
    path = Path(path)
    if not path.is_file():
        raise HumdexError(f"{path}: CHAD metadata CSV not found")
    v = Validation()
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = {c.strip() for c in reader.fieldnames or []}
        missing = {"group_id", "fragment_id", "id", "audio_type", "interval"} - fields
        if missing:
            raise HumdexError(f"{path}: not a CHAD metadata CSV (missing {sorted(missing)})")
        raw = [{(k or "").strip(): v for k, v in row.items()} for row in reader]
    seen: set[tuple[str, str, str]] = set()
    fragments: dict[tuple[str, str], set[str]] = {}
    for n, row in enumerate(raw, start=2):
        v.rows += 1
        where = f"line {n}"
        kind = (row.get("audio_type") or "").strip().lower()
        if kind not in AUDIO_TYPES:
            v.problems.append(f"{where}: audio_type {kind!r} is not one of {AUDIO_TYPES}")
            continue
        v.types[kind] += 1
        key = (row["group_id"].strip(), row["fragment_id"].strip(), row["id"].strip())
        if key in seen:
            v.problems.append(f"{where}: duplicate id {key[2]} in fragment {key[0]}/{key[1]}")
        seen.add(key)
        fragments.setdefault(key[:2], set()).add(kind)
        try:
            a, b = parse_interval(row.get("interval") or "")
        except HumdexError as err:
            v.problems.append(f"{where}: {err}")
            continue
        if not 0 <= a < b:
            v.problems.append(f"{where}: interval ({a}, {b}) is empty or negative")
            continue
        dur = (row.get("duration") or "").strip()
        if dur and dur.lower() != "nan" and abs(float(dur) - (b - a)) > 0.05:
            v.problems.append(f"{where}: duration {dur} does not match the interval ({b - a:.3f} s)")
        vid = (row.get("youtube_id") or "").strip()
        if kind != "humming" and not _YOUTUBE_ID.match(vid):
            v.problems.append(f"{where}: {kind} without a valid youtube_id ({vid!r})")
        v.hours[kind] = v.hours.get(kind, 0.0) + (b - a) / 3600
    for (g, fr), kinds in fragments.items():
        if "original" not in kinds:
            v.problems.append(f"fragment {g}/{fr}: no original")
    v.groups = len({g for g, _ in fragments})
    v.fragments = len(fragments)
    v.videos = len({(r.get("youtube_id") or "").strip() for r in raw} - {""})
    return v


# ---- download ------------------------------------------------------------------------------


class RateLimiter:
    """At most one `wait()` return per `interval_s`, across threads."""

    def __init__(self, per_second: float) -> None:
        self.interval_s = 1.0 / per_second if per_second > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval_s
        if start > now:
            time.sleep(start - now)


def yt_dlp_fetcher(youtube_id: str, folder: Path) -> Path:
    """Best audio of a YouTube video into folder, through yt-dlp used as a library."""
    try:
        import yt_dlp
    except ImportError as err:
        raise HumdexError("downloading needs yt-dlp: pip install 'humdex[mine]'") from err
    opts = {"format": "bestaudio/best", "outtmpl": str(folder / f"{youtube_id}.%(ext)s"),
            "quiet": True, "noprogress": True, "noplaylist": True, "retries": 3}
    try:
        with yt_dlp.YoutubeDL(opts) as ydl:
            ydl.download([f"https://www.youtube.com/watch?v={youtube_id}"])
    except yt_dlp.utils.DownloadError as err:
        raise Unavailable(str(err).splitlines()[0][:200]) from err
    files = [p for p in folder.iterdir() if p.stem == youtube_id and p.suffix != ".part"]
    if not files:
        raise Unavailable("yt-dlp wrote no file")
    return files[0]


def source_path(out: Path, youtube_id: str) -> Path | None:
    for ext in AUDIO_EXTENSIONS:
        p = out / SOURCES_DIR / f"{youtube_id}{ext}"
        if p.is_file():
            return p
    return None


def fetch_source(out: Path, youtube_id: str, fetcher: Fetcher, limiter: RateLimiter) -> Path:
    """The video's audio under out/sources (fetched once; a half download never lands there)."""
    have = source_path(out, youtube_id)
    if have is not None:
        return have
    (out / SOURCES_DIR).mkdir(parents=True, exist_ok=True)
    limiter.wait()
    with tempfile.TemporaryDirectory(dir=out / SOURCES_DIR, prefix=f".{youtube_id}.") as tmp:
        got = fetcher(youtube_id, Path(tmp))
        final = out / SOURCES_DIR / f"{youtube_id}{got.suffix}"
        got.replace(final)
    return final


def cut_fragment(audio, interval: tuple[float, float], sample_rate: int = SAMPLE_RATE):
    """Samples [round(start * rate), round(end * rate)) of the decoded source."""
    a, b = (round(t * sample_rate) for t in interval)
    return audio[max(0, a):max(0, b)]


@dataclass
class DownloadReport:
    fetched: int = 0
    cached: int = 0
    written: int = 0
    skipped: int = 0  # fragments already there
    unavailable: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        return (f"{self.fetched} videos fetched, {self.cached} already there, {len(self.unavailable)} "
                f"unavailable, {len(self.errors)} failed; {self.written} fragments written, "
                f"{self.skipped} already there")


def download(metadata: str | Path, out: str | Path, fetcher: Fetcher | None = None,
             types: Sequence[str] = ("original", "cover"), workers: int = 4, rate: float = 1.0,
             keep_sources: bool = True, progress: bool = True) -> DownloadReport:
    """Fetch and cut every row of `types` (see the module docstring); OUT/metadata.csv, availability.csv."""
    from tqdm import tqdm

    from humdex.frontend.audio import load

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fetcher = fetcher or yt_dlp_fetcher
    records = read_metadata(metadata)
    wanted = [r for r in records if r.audio_type in types and r.youtube_id]
    by_video: dict[str, list[FragmentRecord]] = {}
    for r in wanted:
        by_video.setdefault(r.youtube_id, []).append(r)
    report = DownloadReport()
    limiter = RateLimiter(rate)
    lock = threading.Lock()

    def one(vid: str) -> None:
        rows = by_video[vid]
        todo = [r for r in rows if not r.audio_path(out).is_file()]
        with lock:
            report.skipped += len(rows) - len(todo)
        if not todo:
            return
        fresh = source_path(out, vid) is None
        src = fetch_source(out, vid, fetcher, limiter)
        audio = load(src, SAMPLE_RATE)
        for r in todo:
            piece = cut_fragment(audio, r.interval)
            if len(piece) == 0:
                raise HumdexError(f"interval {r.interval} lies outside the video ({len(audio) / SAMPLE_RATE:.1f} s)")
            write_wav(out / r.relative_dir() / f"{r.id}.wav", piece, SAMPLE_RATE)
        with lock:
            report.written += len(todo)
            report.fetched += fresh
            report.cached += not fresh
        if not keep_sources:
            src.unlink(missing_ok=True)

    bar = tqdm(total=len(by_video), desc="chad download", unit="video", disable=not progress)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        futures = {pool.submit(one, vid): vid for vid in by_video}
        for fut in as_completed(futures):
            vid = futures[fut]
            try:
                fut.result()
            except Unavailable as err:
                report.unavailable[vid] = str(err)
            except (HumdexError, OSError) as err:
                report.errors[vid] = str(err)
            bar.update(1)
    bar.close()
    _write_outputs(out, records, by_video, report)
    return report


def _write_outputs(out: Path, records: list[FragmentRecord], by_video: dict[str, list[FragmentRecord]],
                   report: DownloadReport) -> None:
    present = []
    for r in records:
        if r.youtube_id in report.unavailable:
            r = replace(r, is_available=False)
        if r.audio_path(out).is_file():
            present.append(replace(r, is_available=True))
    write_metadata(out / METADATA_NAME, present)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["youtube_id", "status", "rows", "reason"])
    for vid, rows in sorted(by_video.items()):
        if vid in report.unavailable:
            w.writerow([vid, "unavailable", len(rows), report.unavailable[vid]])
        elif vid in report.errors:
            w.writerow([vid, "error", len(rows), report.errors[vid]])
        else:
            w.writerow([vid, "ok", len(rows), ""])
    atomic_write_bytes(out / "availability.csv", buf.getvalue().encode("utf-8"))


# ---- hummings tar ----------------------------------------------------------------------------


def ingest_hums(tar_path: str | Path, out: str | Path, metadata: str | Path | None = None) -> int:
    """Unpack the hummings tar's fragments into out (existing files kept); with `metadata`, out's
    metadata.csv gains the humming rows whose file is now there. Returns files written."""
    tar_path, out = Path(tar_path), Path(out)
    if not tar_path.is_file():
        raise HumdexError(f"{tar_path}: tar file not found")
    written = 0
    try:
        with tarfile.open(tar_path) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                parts = Path(member.name).parts
                if member.name.startswith("/") or ".." in parts:
                    raise HumdexError(f"{tar_path}: unsafe member name {member.name!r}")
                if "fragments" not in parts:
                    continue
                rel = Path(*parts[parts.index("fragments"):])
                if rel.suffix.lower() not in AUDIO_EXTENSIONS:
                    continue
                dest = out / rel
                if dest.is_file():
                    continue
                src = tar.extractfile(member)
                if src is None:
                    continue
                atomic_write_bytes(dest, src.read())
                written += 1
    except tarfile.TarError as err:
        raise HumdexError(f"{tar_path}: not a readable tar ({err})") from err
    if metadata is not None:
        have = read_metadata(out / METADATA_NAME) if (out / METADATA_NAME).is_file() else []
        ids = {(r.group_id, r.fragment_id, r.id) for r in have}
        hums = [r for r in read_metadata(metadata) if r.audio_type == "humming"
                and r.audio_path(out).is_file() and (r.group_id, r.fragment_id, r.id) not in ids]
        write_metadata(out / METADATA_NAME, have + hums)
    return written


# ---- CLI -------------------------------------------------------------------------------------


def run_chad(args: argparse.Namespace) -> int:
    if args.chad_command == "validate":
        v = validate_metadata(args.metadata)
        print(v.summary())
        for line in v.problems[:20]:
            print(f"  {line}")
        if len(v.problems) > 20:
            print(f"  ... and {len(v.problems) - 20} more")
        return 2 if v.problems else 0
    if args.chad_command == "download":
        types = [t.strip() for t in args.types.split(",") if t.strip()]
        if not types or set(types) - {"original", "cover"}:
            raise HumdexError("--types: a comma list of original, cover")
        if args.workers < 1 or args.rate <= 0:
            raise HumdexError("--workers must be >= 1 and --rate > 0")
        report = download(args.metadata, args.out, None, types, args.workers, args.rate,
                          not args.drop_sources, not args.quiet)
        print(f"{report.summary()} -> {Path(args.out) / METADATA_NAME}, {Path(args.out) / 'availability.csv'}")
        return 0
    n = ingest_hums(args.tar, args.out, args.metadata)
    print(f"{n} humming files unpacked into {args.out}")
    return 0


__all__ = ["Unavailable", "download", "ingest_hums", "validate_metadata", "yt_dlp_fetcher"]
