"""CHAD's layout and schema: fragments/{group_id}/{fragment_id}/{id}.wav plus a metadata CSV.

Reads a real CHAD download (CHAD's ten columns, intervals as "(12.5, 18.0)") and the synthetic
corpus, which adds columns (rendition kind, melody id, split, exact time map). Depends only on
numpy and scipy for WAV files, so it runs wherever the renderer runs.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.io import wavfile

from humdex.errors import HumdexError
from humdex.files import atomic_write_bytes
from humdex.frontend.audio import SAMPLE_RATE, load
from humdex.synth.timemap import TimeMap

CHAD_COLUMNS = ("group_id", "fragment_id", "id", "audio_type", "youtube_id", "interval",
                "correlation", "check_by_crowdsource", "is_available", "duration")  # fmt: skip
EXTRA_COLUMNS = ("kind", "melody_id", "corpus", "split", "score_interval", "sample_rate",
                 "voice_type", "style", "transpose_st", "edited", "skill", "time_map",
                 "status", "tempo_ratio", "margin", "source")  # fmt: skip
# mined rows (humdex mine): status accepted | uncertain | rejected, and after a person's review
# same | different (check_by_crowdsource True); rows a trainer may use:
USABLE_STATUS = ("", "accepted", "same")
COLUMNS = CHAD_COLUMNS + EXTRA_COLUMNS
AUDIO_TYPES = ("original", "cover", "humming")
METADATA_NAME = "metadata.csv"
AUDIO_EXTENSIONS = (".wav", ".mp3", ".m4a", ".flac", ".ogg", ".webm", ".opus", ".aac")
_INTERVAL = re.compile(r"^\s*[\(\[]?\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*[\)\]]?\s*$")


@dataclass(frozen=True)
class FragmentRecord:
    """One row: a version (original, cover or humming) of one fragment.

    interval is (start_s, end_s) of the fragment in its full source audio; kind is "song" for
    originals/covers and "hum"/"whistle"/"sing" for hummings ("hum" when a real CHAD row says
    nothing more); time_map maps the fragment's own seconds to score seconds when known.
    """

    group_id: str
    fragment_id: str
    id: str
    audio_type: str
    interval: tuple[float, float]
    youtube_id: str = ""
    correlation: float | None = None
    check_by_crowdsource: bool | None = None
    is_available: bool | None = None
    duration: float | None = None
    kind: str = ""
    melody_id: str = ""
    split: str = ""
    time_map: TimeMap | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def relative_dir(self) -> Path:
        return Path("fragments") / self.group_id / self.fragment_id

    def audio_path(self, root: str | Path) -> Path:
        """The file of this version under root (any audio extension a download may use)."""
        folder = Path(root) / self.relative_dir()
        for ext in AUDIO_EXTENSIONS:
            path = folder / f"{self.id}{ext}"
            if path.is_file():
                return path
        return folder / f"{self.id}.wav"


def parse_interval(text: str) -> tuple[float, float]:
    """'(12.5, 18.0)' -> (12.5, 18.0)."""
    m = _INTERVAL.match(str(text))
    if not m:
        raise HumdexError(f"bad interval {text!r}; expected '(start, end)' in seconds")
    return float(m.group(1)), float(m.group(2))


def format_interval(interval: tuple[float, float]) -> str:
    """(12.5, 18.0) -> '(12.5, 18.0)': the shortest text that reads back as the same floats
    (cut points stay exact; the official CHAD tooling truncates them to whole seconds)."""
    return f"({float(interval[0])!r}, {float(interval[1])!r})"


def _opt_float(text: str | None) -> float | None:
    if text is None or str(text).strip() in ("", "nan", "None", "NaN"):
        return None
    return float(text)


def _opt_bool(text: str | None) -> bool | None:
    value = "" if text is None else str(text).strip().lower()
    if value in ("true", "1", "1.0", "yes", "t"):
        return True
    if value in ("false", "0", "0.0", "no", "f"):
        return False
    return None


def _row_to_record(row: dict[str, str], where: str) -> FragmentRecord:
    missing = [c for c in ("group_id", "fragment_id", "id", "audio_type") if not row.get(c, "").strip()]
    if missing:
        raise HumdexError(f"{where}: missing {', '.join(missing)}")
    audio_type = row["audio_type"].strip().lower()
    kind = (row.get("kind") or "").strip() or ("hum" if audio_type == "humming" else "song")
    tm_text = (row.get("time_map") or "").strip()
    interval = parse_interval(row["interval"]) if (row.get("interval") or "").strip() else (0.0, 0.0)
    known = set(CHAD_COLUMNS) | {"kind", "melody_id", "split", "time_map"}
    return FragmentRecord(
        group_id=_clean_id(row["group_id"]),
        fragment_id=_clean_id(row["fragment_id"]),
        id=_clean_id(row["id"]),
        audio_type=audio_type,
        interval=interval,
        youtube_id=(row.get("youtube_id") or "").strip(),
        correlation=_opt_float(row.get("correlation")),
        check_by_crowdsource=_opt_bool(row.get("check_by_crowdsource")),
        is_available=_opt_bool(row.get("is_available")),
        duration=_opt_float(row.get("duration")),
        kind=kind,
        melody_id=(row.get("melody_id") or "").strip(),
        split=(row.get("split") or "").strip(),
        time_map=TimeMap.from_json(tm_text) if tm_text else None,
        extra={k: v for k, v in row.items() if k and k not in known and v is not None},
    )


def _clean_id(text: str) -> str:
    """Ids as strings; '12.0' (a float-typed column written by pandas) becomes '12'."""
    text = str(text).strip()
    return text[:-2] if re.fullmatch(r"-?\d+\.0", text) else text


def read_metadata(path: str | Path) -> list[FragmentRecord]:
    """Rows of a CHAD metadata CSV (real or synthetic); extra columns may be absent."""
    path = Path(path)
    if not path.is_file():
        raise HumdexError(f"{path}: CHAD metadata CSV not found")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None:
            raise HumdexError(f"{path}: empty metadata CSV")
        fields = [c.strip() for c in reader.fieldnames]
        reader.fieldnames = fields
        need = {"group_id", "fragment_id", "id", "audio_type"}
        if not need <= set(fields):
            raise HumdexError(f"{path}: not a CHAD metadata CSV (needs columns {sorted(need)})")
        return [_row_to_record(row, f"{path}:{n}") for n, row in enumerate(reader, start=2)]


def record_row(rec: FragmentRecord) -> dict[str, str]:
    row = {
        "group_id": rec.group_id, "fragment_id": rec.fragment_id, "id": rec.id,
        "audio_type": rec.audio_type, "youtube_id": rec.youtube_id,
        "interval": format_interval(rec.interval),
        "correlation": "" if rec.correlation is None else f"{rec.correlation:.4f}",
        "check_by_crowdsource": "" if rec.check_by_crowdsource is None else str(rec.check_by_crowdsource),
        "is_available": "" if rec.is_available is None else str(rec.is_available),
        "duration": "" if rec.duration is None else f"{rec.duration:.3f}",
        "kind": rec.kind, "melody_id": rec.melody_id, "split": rec.split,
        "time_map": rec.time_map.to_json() if rec.time_map is not None else "",
    }  # fmt: skip
    for k in EXTRA_COLUMNS:
        row.setdefault(k, rec.extra.get(k, ""))
    return row


def metadata_text(records: Iterable[FragmentRecord]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for rec in records:
        writer.writerow(record_row(rec))
    return buf.getvalue()


def write_metadata(path: str | Path, records: Iterable[FragmentRecord]) -> None:
    atomic_write_bytes(Path(path), metadata_text(records).encode("utf-8"))


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM WAV, atomically."""
    pcm = (np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0) * 32767.0).astype("<i2")
    buf = io.BytesIO()
    wavfile.write(buf, sample_rate, pcm)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_fragment_audio(rec: FragmentRecord, root: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The version's audio as (n,) float32 at sample_rate."""
    path = rec.audio_path(root)
    if not path.is_file():
        raise HumdexError(f"{path}: fragment audio not found")
    return load(path, sample_rate=sample_rate)


def records_by_fragment(records: Sequence[FragmentRecord]) -> dict[tuple[str, str], list[FragmentRecord]]:
    """Rows grouped into fragments (the aligned versions of one passage), originals first."""
    out: dict[tuple[str, str], list[FragmentRecord]] = {}
    for rec in records:
        out.setdefault((rec.group_id, rec.fragment_id), []).append(rec)
    order = {t: i for i, t in enumerate(AUDIO_TYPES)}
    for recs in out.values():
        recs.sort(key=lambda r: order.get(r.audio_type, 3))
    return out
