"""A small mined folder (humdex mine's layout) with uncertain pairs, made without a model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from humdex.training.chad import FragmentRecord, write_metadata, write_wav
from humdex.training.mining import collect


def tones(pitches, note_s: float = 0.4, sr: int = 16000) -> np.ndarray:
    t = np.arange(round(note_s * sr)) / sr
    return (0.3 * np.concatenate([np.sin(2 * np.pi * 440 * 2 ** ((p - 69) / 12) * t) for p in pitches])).astype(np.float32)


def mined_folder(root: Path) -> Path:
    """Group g1, fragment 0: an original, two uncertain covers (c1: same tune, c2: another) and an
    accepted one; meta/g1.csv + metadata.csv + WAVs."""
    tune = [60, 62, 64, 65, 67, 65, 64, 62, 60, 67]
    other = [70, 66, 71, 63, 68, 61, 72, 64, 69, 62]
    rows = []
    for vid, kind, status, corr, pitches in (("o", "original", "", 1.0, tune),
                                             ("c1", "cover", "uncertain", 0.55, [p + 3 for p in tune]),
                                             ("c2", "cover", "uncertain", 0.48, other),
                                             ("c3", "cover", "accepted", 0.8, tune)):
        audio = tones(pitches)
        rec = FragmentRecord("g1", "0", vid, kind, (1.0, 1.0 + len(audio) / 16000), correlation=corr,
                             check_by_crowdsource=False, is_available=True,
                             extra={"status": status, "source": f"/songs/{vid}.wav"})
        write_wav(rec.audio_path(root), audio, 16000)
        rows.append(rec)
    write_metadata(root / "meta" / "g1.csv", rows)
    collect(root)
    return root
