"""How much any one input may ask for: checked from headers and counts before the expensive work.

A tiny file can declare hours of audio, a 1 Hz sample rate or a MIDI note of a day; each is
refused (AudioError / MelodyError, one line) before it is decoded, resampled or rendered, so a
rejected input costs milliseconds and a few MB (benchmarks/bomb_inputs.py, BENCHMARKS.md).
"""

from __future__ import annotations

MAX_SONG_S = 30 * 60.0  # longest song of any kind (audio, MIDI, score, pitch file), seconds
MAX_NOTE_S = 60.0  # a longer MIDI/score note is cut to this (a drone, or a forgotten note-off)
MIN_SAMPLE_RATE = 1000  # Hz: below this a file's rate is a lie (or not audio)
MAX_SAMPLE_RATE = 768_000
MAX_CHANNELS = 64
MAX_MELODY_FILE_BYTES = 16 * 2**20  # MIDI and score files: real ones are far smaller
MAX_PITCH_FILE_LINES = 2_000_000  # .pv / f0 CSV: 30 min at 1 ms per line
DECODE_BLOCK_S = 10.0  # audio is decoded and mixed to mono in blocks of this many seconds


def describe_s(seconds: float) -> str:
    """'12.3 s', '45 min', '3.0 h' for messages."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 3 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
