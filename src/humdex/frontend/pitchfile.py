"""Pitch files as melodies: MIR-QBSH .pv pitch vectors and two-column time,f0 CSV exports."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from humdex.errors import AudioError
from humdex.frontend.contour import Contour
from humdex.frontend.limits import MAX_PITCH_FILE_LINES, MAX_SONG_S, describe_s
from humdex.frontend.pitch import HOP_S, hz_to_midi

PV_HOP_S = 0.032  # MIR-QBSH: 256 samples at 8 kHz per frame, no overlap
PITCH_FILE_SUFFIXES = (".pv", ".csv", ".f0", ".tsv")
_SPLIT = re.compile(r"[,\t; ]+")


def is_pitch_file(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in PITCH_FILE_SUFFIXES


def read_pitch_file(path: str | os.PathLike[str]) -> Contour:
    """A .pv pitch vector or a time,f0 CSV (.csv/.tsv/.f0) as a Contour, chosen by suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".pv":
        return read_pv(path)
    if suffix in PITCH_FILE_SUFFIXES:
        return read_f0_csv(path)
    raise AudioError(f"not a pitch file (expected {', '.join(PITCH_FILE_SUFFIXES)}): {path}")


def read_pv(path: str | os.PathLike[str], hop_s: float = PV_HOP_S) -> Contour:
    """MIR-QBSH .pv: one MIDI pitch per line per 32 ms frame (`hop_s`), 0 (or less) = unvoiced."""
    rows = _numeric_rows(path)
    if any(len(row) != 1 for row in rows):
        raise AudioError(f"not a .pv pitch vector (expected one number per line): {path}")
    _check_length(len(rows) * hop_s, path)
    midi = np.array([row[0] for row in rows], dtype=np.float64)
    midi = np.where(midi > 0, midi, np.nan)
    if np.any(midi > 140):
        raise AudioError(f"not a .pv pitch vector (values above MIDI 140; Hz?): {path}")
    return _checked(Contour(midi.astype(np.float32), hop_s), path)


def read_f0_csv(path: str | os.PathLike[str], hop_s: float = HOP_S) -> Contour:
    """Two columns time_s,f0_hz (header optional; comma, tab, semicolon or space separated).

    f0 <= 0 (or NaN) means unvoiced. Times may be non-uniform: the result is sampled at `hop_s`
    by nearest frame, frame k at time k * hop_s from 0.
    """
    rows = _numeric_rows(path)
    if any(len(row) < 2 for row in rows):
        raise AudioError(f"not a time,f0 pitch file (expected two columns per line): {path}")
    table = np.array([row[:2] for row in rows], dtype=np.float64)
    times, f0 = table[:, 0], table[:, 1]
    if not np.all(np.isfinite(times)) or np.any(np.diff(times) < 0):
        raise AudioError(f"pitch file times must be finite and increasing: {path}")
    _check_length(float(times[-1]), path)
    if times[0] < 0:
        raise AudioError(f"pitch file times must not be negative: {path}")
    with np.errstate(invalid="ignore", divide="ignore"):
        midi = np.where(np.isfinite(f0) & (f0 > 0), hz_to_midi(np.where(f0 > 0, f0, 1.0)), np.nan)
    return _checked(Contour(_sample_nearest(times, midi, hop_s).astype(np.float32), hop_s), path)


def _sample_nearest(times_s: np.ndarray, values: np.ndarray, hop_s: float) -> np.ndarray:
    """Values at times k * hop_s (k = 0..end) from the nearest source row; NaN beyond gaps."""
    if len(times_s) == 1:
        return values.copy()
    step = float(np.median(np.diff(times_s))) if len(times_s) > 1 else hop_s
    grid = np.arange(int(np.floor(times_s[-1] / hop_s)) + 1) * hop_s
    right = np.clip(np.searchsorted(times_s, grid), 1, len(times_s) - 1)
    left = right - 1
    nearest = np.where(grid - times_s[left] <= times_s[right] - grid, left, right)
    out = values[nearest]
    # a grid point farther than 1.5 source steps from any row lies in a gap: unvoiced
    out[np.abs(times_s[nearest] - grid) > 1.5 * max(step, hop_s)] = np.nan
    return out


def _numeric_rows(path: str | os.PathLike[str]) -> list[list[float]]:
    """Numeric rows of a text table; a first non-numeric line is a header, later ones an error."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"pitch file not found: {path}")
    if not path.is_file():
        raise AudioError(f"not a pitch file (is a directory?): {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise AudioError(f"pitch file is not text (binary or corrupt): {path}") from None
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if len(lines) > MAX_PITCH_FILE_LINES:
        raise AudioError(f"pitch file has {len(lines)} lines; humdex reads at most "
                         f"{MAX_PITCH_FILE_LINES}: {path}")
    if not lines:
        raise AudioError(f"pitch file is empty: {path}")
    rows: list[list[float]] = []
    for i, line in enumerate(lines):
        try:
            rows.append([float(v) for v in _SPLIT.split(line) if v])
        except ValueError:
            if i == 0:
                continue  # header line
            raise AudioError(f"pitch file has a non-numeric line {line[:40]!r}: {path}") from None
    if not rows:
        raise AudioError(f"pitch file holds no numbers: {path}")
    return rows


def _check_length(seconds: float, path: str | os.PathLike[str]) -> None:
    """AudioError for a pitch file longer than any song may be, before its frames are built."""
    if seconds > MAX_SONG_S:
        raise AudioError(f"pitch file lasts {describe_s(seconds)}; humdex takes at most "
                         f"{describe_s(MAX_SONG_S)}: {path}")


def _checked(contour: Contour, path: str | os.PathLike[str]) -> Contour:
    if not contour.voiced.any():
        raise AudioError(f"pitch file has no voiced frames (all unvoiced): {path}")
    return contour
