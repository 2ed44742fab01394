"""Shared test fixtures: melodies, MIDI files and sung-like audio that the tests make themselves."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SAMPLE_RATE = 16_000

# Under CI=true a test skipped for a missing dependency (Chromium, Spleeter, a shipped model ...)
# fails instead: CI must run every test. A test marked may_skip skips for a reason that is no
# missing dependency.
_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "may_skip: skips for a reason CI accepts (no missing dependency)")


def _fail_skip_under_ci(report: pytest.TestReport | pytest.CollectReport, may_skip: bool) -> None:
    if _CI and report.skipped and not may_skip:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true ({reason}): install what it needs (make system-deps)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[no-untyped-def]
    outcome = yield
    _fail_skip_under_ci(outcome.get_result(), item.get_closest_marker("may_skip") is not None)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):  # type: ignore[no-untyped-def]
    outcome = yield
    _fail_skip_under_ci(outcome.get_result(), False)


def random_melody(rng: np.random.Generator, n_notes: int = 40) -> list[tuple[int, float]]:
    """(MIDI pitch, beats) pairs: a random walk in a major-ish scale, so melodies differ clearly."""
    pitch, pitches = 64, []
    for step in rng.choice([-4, -3, -2, -1, 1, 2, 3, 4, 5, -5, 0], size=n_notes):
        pitch = pitch + step if 52 <= pitch + step <= 78 else pitch - step  # bounce off the range
        pitches.append(pitch)
    beats = rng.choice([0.5, 1.0, 1.0, 1.5, 2.0], size=n_notes)
    return [(int(p), float(b)) for p, b in zip(pitches, beats)]


def write_midi(path: Path, melody: list[tuple[int, float]], bpm: float = 120.0) -> Path:
    """A one-track MIDI file of the melody (no rests)."""
    import mido

    ticks = 480
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0)])
    for pitch, beats in melody:
        track.append(mido.Message("note_on", note=pitch, velocity=80, time=0))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=int(beats * ticks)))
    mid = mido.MidiFile(ticks_per_beat=ticks)
    mid.tracks.append(track)
    mid.save(path)
    return path


def sing(
    melody: list[tuple[int, float]],
    bpm: float = 120.0,
    transpose_st: float = 0.0,
    tempo: float = 1.0,
    sample_rate: int = SAMPLE_RATE,
    seed: int = 0,
) -> np.ndarray:
    """A crude sung rendition: harmonic voice with vibrato, note gaps and a little noise.

    Returns (n,) float32 at sample_rate.
    """
    rng = np.random.default_rng(seed)
    beat_s = 60.0 / bpm / tempo
    f0 = np.concatenate([
        np.full(int(b * beat_s * sample_rate), 440.0 * 2 ** ((p + transpose_st - 69) / 12))
        for p, b in melody
    ])
    t = np.arange(len(f0)) / sample_rate
    f0 = f0 * 2 ** (0.3 * np.sin(2 * np.pi * 5.5 * t) / 12)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = np.ones_like(t)
    edges = np.cumsum([int(b * beat_s * sample_rate) for _, b in melody])[:-1]
    for e in edges:  # short dips between notes, like articulation
        envelope[max(0, e - 300) : e + 100] *= 0.2
    audio = 0.3 * voice * envelope + 0.003 * rng.standard_normal(len(t))
    return audio.astype(np.float32)


@pytest.fixture(scope="session")
def melodies() -> list[list[tuple[int, float]]]:
    rng = np.random.default_rng(1234)
    return [random_melody(rng) for _ in range(12)]


@pytest.fixture
def song_dir(tmp_path: Path, melodies: list[list[tuple[int, float]]]) -> Path:
    """A folder of 12 MIDI songs song00.mid .. song11.mid."""
    folder = tmp_path / "songs"
    folder.mkdir()
    for i, melody in enumerate(melodies):
        write_midi(folder / f"song{i:02d}.mid", melody)
    return folder
