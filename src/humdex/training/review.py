"""The review queue: people decide the mined pairs the aligner was unsure of (`humdex review DIR`).

A mined folder's uncertain cover fragments (status "uncertain", training.mining) wait here. For
each, a person plays the original fragment and the candidate (the web page draws both pitch
contours), and answers same, different or skip. The answer goes into the group's
meta/{group}.csv and metadata.csv: status same | different, check_by_crowdsource True (CHAD's
column for a person's check); skip leaves the pair in the queue. `humdex train` uses "same" pairs
like accepted ones and never "different" ones.
"""

from __future__ import annotations

import argparse
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from humdex.errors import HumdexError
from humdex.training.chad import FragmentRecord, read_metadata, write_metadata
from humdex.training.mining import META_DIR, collect

ANSWERS = ("same", "different", "skip")
_LOCK = threading.Lock()  # one writer per process (the server's threads, the CLI)


@dataclass(frozen=True)
class ReviewItem:
    original: FragmentRecord
    candidate: FragmentRecord

    def to_json(self) -> dict:
        c, o = self.candidate, self.original
        return {"group_id": c.group_id, "fragment_id": c.fragment_id, "id": c.id, "original_id": o.id,
                "correlation": c.correlation, "interval": list(c.interval),
                "original_interval": list(o.interval), "tempo_ratio": c.extra.get("tempo_ratio", ""),
                "source": Path(c.extra.get("source", "")).name,
                "original_source": Path(o.extra.get("source", "")).name}


def _check_folder(folder: Path) -> None:
    if not (folder / META_DIR).is_dir():
        raise HumdexError(f"{folder}: not a mined folder (no {META_DIR}/; see humdex mine)")


def review_queue(folder: str | Path) -> list[ReviewItem]:
    """The uncertain, unchecked pairs, most promising first (highest correlation)."""
    folder = Path(folder)
    _check_folder(folder)
    items = []
    for path in sorted((folder / META_DIR).glob("*.csv")):
        rows = read_metadata(path)
        originals = {r.fragment_id: r for r in rows if r.audio_type == "original"}
        for r in rows:
            if (r.audio_type == "cover" and r.extra.get("status") == "uncertain"
                    and not r.check_by_crowdsource and r.fragment_id in originals):
                items.append(ReviewItem(originals[r.fragment_id], r))
    return sorted(items, key=lambda it: -(it.candidate.correlation or 0.0))


def record_answer(folder: str | Path, group_id: str, fragment_id: str, version_id: str, answer: str) -> FragmentRecord:
    """Store a person's answer on one candidate (atomically); the updated row."""
    folder = Path(folder)
    _check_folder(folder)
    if answer not in ANSWERS:
        raise HumdexError(f"answer must be one of {', '.join(ANSWERS)}, not {answer!r}")
    meta = folder / META_DIR / f"{group_id}.csv"
    if "/" in group_id or "\\" in group_id or group_id.startswith(".") or not meta.is_file():
        raise HumdexError(f"no mined group {group_id!r}")
    with _LOCK:
        rows = read_metadata(meta)
        hits = [i for i, r in enumerate(rows) if r.fragment_id == fragment_id and r.id == version_id
                and r.audio_type == "cover"]
        if not hits:
            raise HumdexError(f"no candidate {version_id!r} in fragment {group_id}/{fragment_id}")
        row = rows[hits[0]]
        if answer == "skip":
            return row
        row = replace(row, check_by_crowdsource=True, extra={**row.extra, "status": answer})
        rows[hits[0]] = row
        write_metadata(meta, rows)
        collect(folder)
    return row


def find_version(folder: str | Path, group_id: str, fragment_id: str, version_id: str) -> FragmentRecord:
    """A row of the mined folder by its ids (what the page may ask to play or draw)."""
    folder = Path(folder)
    meta = folder / META_DIR / f"{group_id}.csv"
    if "/" in group_id or "\\" in group_id or group_id.startswith(".") or not meta.is_file():
        raise HumdexError(f"no mined group {group_id!r}")
    for r in read_metadata(meta):
        if r.fragment_id == fragment_id and r.id == version_id:
            return r
    raise HumdexError(f"no version {version_id!r} in fragment {group_id}/{fragment_id}")


def contour_json(folder: str | Path, rec: FragmentRecord) -> dict:
    """The version's pitch contour for drawing: {hop_s, midi: [... null where unvoiced]}."""
    import numpy as np

    from humdex.frontend.pitch import track
    from humdex.training.chad import load_fragment_audio

    audio = load_fragment_audio(rec, folder)
    pt = track(audio, 16000, "swift")
    f0 = np.asarray(pt.f0_hz, dtype=np.float64)
    voiced = (np.asarray(pt.periodicity) >= 0.5) & (f0 > 0)
    midi = np.where(voiced, 69.0 + 12.0 * np.log2(np.maximum(f0, 1e-9) / 440.0), np.nan)
    return {"hop_s": float(pt.hop_s),
            "midi": [None if not np.isfinite(m) else round(float(m), 2) for m in midi]}


# ---- CLI -------------------------------------------------------------------------------------


def run_review(args: argparse.Namespace) -> int:
    if args.serve:
        import uvicorn

        from humdex.service.access import access_from_args
        from humdex.service.review import create_review_app
        from humdex.settings import settings

        _check_folder(Path(args.folder))
        access, _ = access_from_args(args, settings().token)
        link = f"?token={access.token}" if access.token else ""
        print(f"review page: http://{args.host}:{args.port}/review{link}")
        uvicorn.run(create_review_app(args.folder, access), host=args.host, port=args.port,
                    log_level=args.log_level)
        return 0
    items = review_queue(args.folder)
    print(f"{len(items)} pairs to review (s = same, d = different, k = skip, q = quit)")
    keys = {"s": "same", "d": "different", "k": "skip"}
    done = 0
    for n, it in enumerate(items, start=1):
        j = it.to_json()
        print(f"[{n}/{len(items)}] {j['group_id']}/{j['fragment_id']}: original {j['original_source']} "
              f"{j['original_interval'][0]:.2f}-{j['original_interval'][1]:.2f} s vs {j['source']} "
              f"{j['interval'][0]:.2f}-{j['interval'][1]:.2f} s (correlation {j['correlation']:.2f})")
        print(f"  files: {it.original.audio_path(args.folder)}  {it.candidate.audio_path(args.folder)}")
        while True:
            line = sys.stdin.readline()
            key = line.strip().lower()[:1]
            if not line or key == "q":
                print(f"{done} answers stored")
                return 0
            if key in keys:
                break
            print("  s = same, d = different, k = skip, q = quit")
        record_answer(args.folder, it.candidate.group_id, it.candidate.fragment_id, it.candidate.id, keys[key])
        done += keys[key] != "skip"
    print(f"{done} answers stored; queue done")
    return 0
