"""Small files that ask for a lot (the probes of issue 17), for tests/test_bad_inputs.py and
benchmarks/bomb_inputs.py. Each is a few bytes to a few KB."""

from __future__ import annotations

import io
import struct

import numpy as np


def _midi(ticks_per_beat: int, tempo_us: int | None, note_ticks: int) -> bytes:
    """One track, one note lasting note_ticks (written by hand: mido refuses some of these)."""
    def vlq(n: int) -> bytes:
        out = [n & 0x7F]
        n >>= 7
        while n:
            out.append(0x80 | (n & 0x7F))
            n >>= 7
        return bytes(reversed(out))

    events = b""
    if tempo_us is not None:
        events += b"\x00\xff\x51\x03" + tempo_us.to_bytes(3, "big")
    events += b"\x00\x90\x3c\x50" + vlq(note_ticks) + b"\x80\x3c\x00" + b"\x00\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, ticks_per_beat)
    return header + b"MTrk" + struct.pack(">I", len(events)) + events


def midi_long_note() -> bytes:
    """One 2-hour note at 120 bpm (the issue's 74-byte MIDI)."""
    return _midi(480, None, 2 * 3600 * 2 * 480)


def midi_slow_tempo() -> bytes:
    """1 tick per beat at the slowest tempo (16.7 s per tick), a note of 2**27 ticks: 71 years."""
    return _midi(1, 0xFFFFFF, 2**27)


def wav_1hz() -> bytes:
    """20 KB of 16-bit PCM declaring a 1 Hz sample rate (5.6 hours)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.zeros(10_000, np.float32), 1, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def flac_4h() -> bytes:
    """A FLAC whose STREAMINFO declares 4 hours at 8 kHz (the frames hold 1 s of silence)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.zeros(8000, np.float32), 8000, format="FLAC", subtype="PCM_16")
    data = bytearray(buf.getvalue())
    assert data[:4] == b"fLaC"
    info = 8  # "fLaC" + metadata block header; STREAMINFO bytes 10..17 hold rate/ch/bps/total
    packed = int.from_bytes(data[info + 10: info + 18], "big")
    total = 4 * 3600 * 8000
    packed = (packed & ~((1 << 36) - 1)) | total
    data[info + 10: info + 18] = packed.to_bytes(8, "big")
    return bytes(data)


def csv_far_times() -> bytes:
    """39 bytes whose times run to 300000 s."""
    return b"time_s,f0_hz\n0,220\n0.01,220\n300000,220\n"


def csv_huge_time() -> bytes:
    return b"0,220\n0.01,220\n1e12,220\n"


def pv_200s() -> bytes:
    """A 200 s MIR-QBSH pitch vector (6250 frames of 32 ms): over the service's 60 s."""
    return b"".join(b"%.2f\n" % (60 + (i // 20) % 5) for i in range(6250))


def midi_oversized() -> bytes:
    """17 MB of a MIDI file's padding (over the 16 MB cap for melody files)."""
    return _midi(480, None, 480) + b"\x00" * (17 * 2**20)


# name -> (file name, maker, where it applies: "query", "song" or both)
BOMBS = {
    "midi_long_note": ("long.mid", midi_long_note, ("song",)),
    "midi_slow_tempo": ("slow.mid", midi_slow_tempo, ("song",)),
    "midi_oversized": ("big.mid", midi_oversized, ("song",)),
    "wav_1hz": ("onehz.wav", wav_1hz, ("query", "song")),
    "flac_4h": ("silence4h.flac", flac_4h, ("query", "song")),
    "csv_300000s": ("far.csv", csv_far_times, ("query", "song")),
    "csv_1e12": ("huge.csv", csv_huge_time, ("query", "song")),
}
