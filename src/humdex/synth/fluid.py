"""FluidSynth rendering: parts (notes in seconds, a GM program, a level) -> a MIDI file -> 16 kHz audio.

Uses the `fluidsynth` command-line program (Debian `fluidsynth`) with a General MIDI soundfont; its
own reverb and chorus are off (humdex.synth.production adds the room). Times in the MIDI file are
exact to 1/960 s (120 bpm, 480 ticks per beat).
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from humdex.errors import HumdexError

DRUM_CHANNEL = 9
TICKS_PER_S = 960  # 480 ticks per beat at 120 bpm
PITCH_BEND_RANGE_ST = 2.0  # the GM default


@dataclass(frozen=True, eq=False)
class Part:
    """One instrument of a record.

    Attributes:
        notes: (n, 4) float64 rows (start_s, end_s, midi key, velocity 1-127).
        program: GM program 0-127 (for drums: the bank-128 kit preset).
        volume: channel volume 0-127 (MIDI CC 7).
        drums: played on the percussion channel.
    """

    name: str
    notes: np.ndarray
    program: int
    volume: int = 100
    pan: int = 64
    drums: bool = False


def write_midi(parts: list[Part], path: Path, detune_st: float = 0.0) -> None:
    """A type-1 MIDI file with one track per part; detune_st (|x| < 1) bends every melodic channel."""
    import mido

    if len(parts) > 15:
        raise ValueError("at most 15 melodic parts")
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    meta = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000, time=0)])
    mid.tracks.append(meta)
    channels = iter(c for c in range(16) if c != DRUM_CHANNEL)
    bend = int(np.clip(round(detune_st / PITCH_BEND_RANGE_ST * 8192), -8192, 8191))
    for part in parts:
        ch = DRUM_CHANNEL if part.drums else next(channels)
        events: list[tuple[int, int, mido.Message]] = []
        head = [mido.Message("control_change", channel=ch, control=7, value=int(np.clip(part.volume, 0, 127))),
                mido.Message("control_change", channel=ch, control=10, value=int(np.clip(part.pan, 0, 127)))]  # fmt: skip
        if part.drums:
            head.insert(0, mido.Message("control_change", channel=ch, control=0, value=1))  # bank 128 (LSB-less)
            head.append(mido.Message("program_change", channel=ch, program=int(part.program)))
        else:
            head.append(mido.Message("program_change", channel=ch, program=int(part.program)))
            if bend:
                head.append(mido.Message("pitchwheel", channel=ch, pitch=bend))
        for start, end, key, vel in np.asarray(part.notes, dtype=np.float64).reshape(-1, 4):
            if not 0 <= key <= 127 or end <= start:
                continue
            a = round(start * TICKS_PER_S)
            b = max(round(end * TICKS_PER_S), a + 1)
            v = int(np.clip(vel, 1, 127))
            events.append((a, 1, mido.Message("note_on", channel=ch, note=int(key), velocity=v)))
            events.append((b, 0, mido.Message("note_off", channel=ch, note=int(key), velocity=0)))
        events.sort(key=lambda e: (e[0], e[1]))
        track = mido.MidiTrack(head)
        now = 0
        for tick, _, msg in events:
            track.append(msg.copy(time=tick - now))
            now = tick
        mid.tracks.append(track)
    mid.save(str(path))


def render_parts(
    parts: list[Part], soundfont: Path, n_samples: int, sample_rate: int = 16000, detune_st: float = 0.0
) -> np.ndarray:
    """(n_samples,) float32 mono render of the parts through fluidsynth (cut or zero-padded)."""
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="humdex_fluid_") as tmp:
        mid, wav = Path(tmp) / "song.mid", Path(tmp) / "song.wav"
        write_midi(parts, mid, detune_st)
        cmd = ["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.4", "-r", str(sample_rate),
               "-O", "float", "-T", "wav", "-F", str(wav), str(soundfont), str(mid)]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=600, check=False)
        except FileNotFoundError as e:
            raise HumdexError("records need the `fluidsynth` program; install it with `make system-deps`") from e
        if proc.returncode != 0 or not wav.is_file():
            err = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
            raise HumdexError(f"fluidsynth failed: {err[0]}")
        audio, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    if sr != sample_rate:
        raise HumdexError(f"fluidsynth wrote {sr} Hz, expected {sample_rate} Hz")
    mono = audio.mean(axis=1)
    out = np.zeros(n_samples, dtype=np.float32)
    m = min(n_samples, len(mono))
    out[:m] = mono[:m]
    return out
