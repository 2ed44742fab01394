"""Benchmark queries: hums and whistles of given MIDI songs, cut like a recording (MIR-QBSH style)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from humdex.errors import HumdexError
from humdex.synth.render import RenderConfig, Rendition, render_query
from humdex.synth.score import Score

MELODY_SUFFIXES = (".mid", ".midi", ".kar", ".abc", ".xml", ".musicxml", ".mxl", ".krn")


@dataclass(frozen=True)
class QueryPlan:
    """How a benchmark query is taken from a song."""

    duration_s: float = 8.0  # the recording stops here (MIR-QBSH: 8 s)
    from_start: bool = True  # MIREX protocol: sung from the song's start
    channel: bool = True
    render: RenderConfig = field(default_factory=RenderConfig)


def midi_files(paths: list[Path]) -> list[Path]:
    """Melody files given directly or found (sorted) in folders."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in MELODY_SUFFIXES)
        elif p.is_file():
            out.append(p)
        else:
            raise HumdexError(f"{p}: no such file or folder")
    if not out:
        raise HumdexError("no MIDI or score files given")
    return out


def render_benchmark_query(path: Path, kind: str, rng: np.random.Generator, plan: QueryPlan) -> Rendition:
    """A query of the song at path (read with humdex.frontend.melody), plan.duration_s long."""
    from humdex.frontend.melody import read_melody

    score = Score.from_notes(read_melody(path))
    return query_from_score(score, kind, rng, plan)


def query_from_score(score: Score, kind: str, rng: np.random.Generator, plan: QueryPlan) -> Rendition:
    """Sing a passage that outlasts the recording, then stop the recording at duration_s."""
    span = 2.0 * plan.duration_s  # score seconds; the performer's tempo may stretch them 2x
    start = score.start_s
    if not plan.from_start and score.end_s - span > score.start_s:
        onsets = score.onset_s[score.onset_s <= score.end_s - span]
        start = float(rng.choice(onsets))
    passage = score.passage(start, start + span)
    render = plan.render
    if plan.from_start:  # a recording starts just before the singer does
        render = replace(
            render,
            query_performance=replace(render.query_performance, lead_s=(0.2, 1.0)),
            whistle_performance=replace(render.whistle_performance, lead_s=(0.2, 1.0)),
        )
    rend = render_query(passage, rng, render, kind=kind, channel=plan.channel)
    n = min(len(rend.audio), int(plan.duration_s * rend.sample_rate))
    end_s = n / rend.sample_rate
    f0 = rend.f0_midi[: int(end_s / 0.01)]
    return Rendition(rend.kind, rend.audio[:n], rend.time_map.cropped(0.0, end_s), f0,
                     rend.sample_rate, rend.info)  # fmt: skip
