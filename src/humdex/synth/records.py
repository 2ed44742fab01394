"""Records: a melody arranged for a band (lead, chords, bass, drums, counter-melody) and rendered with
sampled instruments (FluidSynth + a General MIDI soundfont), mixed and produced like a release.

The lead is an instrument (voice-like GM programs, solo instruments) or the singing synthesizer.
Every record draws its tempo, key, instrumentation, arrangement style, mix levels and production;
a cover also edits the structure (phrases repeated or skipped) and has another lead. Which programs
and styles may be drawn is the record's Sound (humdex.synth.sounds): TRAIN or HELDOUT.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from humdex.synth.cover import EditConfig, edit_structure
from humdex.synth.fluid import Part, render_parts
from humdex.synth.harmony import Chord, beat_s, harmonise
from humdex.synth.performance import HOP_S, Performance, PerformanceConfig, perform
from humdex.synth.phonemes import LYRICS
from humdex.synth.production import ProductionConfig, produce
from humdex.synth.render import SINGER_PERFORMANCE, Rendition, as_score
from humdex.synth.score import NoteLike, Score
from humdex.synth.singer import sample_singer
from humdex.synth.sounds import TRAIN, Sound, check_sound
from humdex.synth.timemap import TimeMap, compose
from humdex.synth.voice import SAMPLE_RATE, VoiceConfig, sing

RECORD_PERFORMANCE = replace(  # a recorded singer (render.SINGER_PERFORMANCE), with a band
    SINGER_PERFORMANCE,
    tempo=(0.8, 1.25),
    tempo_drift_sd=0.02,  # a band keeps time
    onset_jitter_s=0.01,
    interval_error_sd_st=0.08,
    pitch_drift_sd_st=0.02,
    vibrato_depth_st=(0.2, 0.6),
    lead_s=(0.5, 4.0),  # the band's intro
    tail_s=(1.0, 3.0),  # the band's outro
)


@dataclass(frozen=True)
class RecordConfig:
    """Ranges of the arrangement and the mix."""

    performance: PerformanceConfig = field(default_factory=lambda: RECORD_PERFORMANCE)
    voice: VoiceConfig = field(default_factory=VoiceConfig)
    edits: EditConfig = field(default_factory=lambda: EditConfig(repeat_prob=0.3, skip_prob=0.15))
    production: ProductionConfig = field(default_factory=ProductionConfig)
    key_shift_st: tuple[int, int] = (-5, 6)  # an instrument lead's key, inclusive
    lead_median_midi: tuple[float, float] = (60.0, 76.0)  # where an instrument lead's median note lands
    beats_per_chord: tuple[int, ...] = (2, 4)
    chords_prob: float = 0.95
    bass_prob: float = 0.9
    counter_prob: float = 0.35
    lead_over_band_db: tuple[float, float] = (-3.0, 8.0)
    part_volume: tuple[int, int] = (60, 110)  # CC7 of each band part (relative mix levels)
    detune_sd_st: float = 0.1  # a record's tuning is not always A=440


@dataclass(frozen=True, eq=False)
class Arrangement:
    """A record before rendering: band parts in performance seconds and the lead."""

    lead: Part | None  # None: the lead is the sung vocal
    band: list[Part]
    perf: Performance
    transpose_st: int
    detune_st: float
    duration_s: float
    info: dict[str, Any]


def arrange(
    score: Score, rng: np.random.Generator, sound: Sound = TRAIN, config: RecordConfig = RecordConfig(),
    vocal: bool | None = None,
) -> Arrangement:  # fmt: skip
    """Draw a performance (tempo, timing), a key, a lead and a band for `score`."""
    singer = sample_singer(rng, str(rng.choice(["male", "female"])), (0.75, 1.0))
    perf = perform(score, singer, rng, config.performance, legato=LYRICS.legato)
    vocal = bool(rng.random() < sound.vocal_lead_prob) if vocal is None else vocal
    detune = float(np.clip(rng.normal(0.0, config.detune_sd_st), -0.4, 0.4))
    if vocal:
        shift = int(np.round(perf.transpose_st))
        detune = perf.transpose_st - shift
    else:
        shift = int(rng.integers(config.key_shift_st[0], config.key_shift_st[1] + 1))
        median = float(np.median(score.pitch_midi)) + shift
        lo, hi = config.lead_median_midi
        while median + 12 <= hi and median < lo:
            median, shift = median + 12, shift + 12
        while median - 12 >= lo and median > hi:
            median, shift = median - 12, shift - 12
    tm = perf.time_map
    duration = perf.duration_s
    beat = beat_s(score)
    chords = harmonise(score, int(rng.choice(config.beats_per_chord)))
    to_perf = _clock(tm, score, duration)
    first_perf = float(tm.perf_at(score.start_s))
    n_intro = int(np.floor(first_perf / (beat * _rate(tm, score))))
    grid = score.start_s + beat * np.arange(-n_intro, int(np.ceil((score.end_s - score.start_s) / beat)) + 4)
    chords = _extend(chords, grid[0], grid[-1])
    info: dict[str, Any] = {"sound": sound.name, "transpose_st": shift, "detune_st": round(detune, 3),
                            "tempo_factor": round(_rate(tm, score), 3)}  # fmt: skip
    band: list[Part] = []
    vol = lambda: int(rng.integers(config.part_volume[0], config.part_volume[1] + 1))
    if rng.random() < config.chords_prob:
        style = str(rng.choice(sound.chord_styles))
        program = int(rng.choice(sound.chord_programs))
        low = float(rng.uniform(50, 60))
        band.append(Part("chords", _chord_notes(chords, grid, beat, style, shift, low, to_perf, rng), program, vol(),
                         int(rng.integers(40, 90))))  # fmt: skip
        info.update(chord_style=style, chord_program=program)
    if rng.random() < config.bass_prob:
        program = int(rng.choice(sound.bass_programs))
        band.append(Part("bass", _bass_notes(chords, grid, shift, to_perf, rng), program, vol()))
        info["bass_program"] = program
    drum_style = str(rng.choice(sound.drum_styles))
    if drum_style != "none":
        kit = int(rng.choice(sound.drum_kits))
        band.append(Part("drums", _drum_notes(grid, beat, drum_style, to_perf, rng), kit, vol(), drums=True))
        info.update(drum_kit=kit)
    info["drum_style"] = drum_style
    if rng.random() < config.counter_prob:
        program = int(rng.choice(sound.counter_programs))
        band.append(Part("counter", _counter_notes(chords, shift, to_perf, rng), program, vol(),
                         int(rng.integers(20, 110))))  # fmt: skip
        info["counter_program"] = program
    lead = None
    if vocal:
        info["lead"] = f"vocal_{singer.voice_type}"
    else:
        program = int(rng.choice(sound.lead_programs))
        on = np.array([float(tm.perf_at(s)) for s in score.onset_s])
        off = np.array([float(tm.perf_at(s)) for s in score.offset_s]) - rng.uniform(0.0, 0.05)
        vel = np.clip(rng.normal(100, 8, len(score)), 60, 127)
        notes = np.stack([on, np.maximum(off, on + 0.03), np.round(score.pitch_midi) + shift, vel], axis=1)
        lead = Part("lead", notes, program, 110)
        info["lead"] = program
    return Arrangement(lead, [_within(p, duration) for p in band], perf, shift, detune, duration, info)


def _within(part: Part, duration_s: float) -> Part:
    """The part's notes that start inside the record, ended before its last 50 ms."""
    notes = part.notes[(part.notes[:, 0] >= 0) & (part.notes[:, 0] < duration_s - 0.1)].copy()
    notes[:, 1] = np.minimum(notes[:, 1], duration_s - 0.05)
    return replace(part, notes=notes)


def render_record(
    notes: Score | list[NoteLike],
    rng: np.random.Generator,
    sound: Sound = TRAIN,
    kind: str = "original",
    config: RecordConfig = RecordConfig(),
    vocal: bool | None = None,
    produced: bool = True,
) -> Rendition:
    """A record of the melody (kind "original" or "cover"; a cover edits the structure), with the
    exact time map to the melody's score clock and the lead's pitch per 10 ms frame."""
    check_sound(sound)
    score = as_score(notes)
    sung, structure = edit_structure(score, rng, config.edits) if kind == "cover" else (score, None)
    arr = arrange(sung, rng, sound, config, vocal)
    sr = SAMPLE_RATE
    n = round(arr.duration_s * sr)
    band = render_parts(arr.band, sound.soundfont_path, n, sr, arr.detune_st) if arr.band else np.zeros(n, np.float32)
    if arr.lead is None:
        singer = sample_singer(rng, "female" if "female" in arr.info["lead"] else "male", (0.75, 1.0))
        lead = sing(arr.perf, singer, LYRICS, rng, config.voice, sr)[:n]
        lead = np.pad(lead, (0, n - len(lead)))
        f0 = arr.perf.f0_midi.copy()
    else:
        lead = render_parts([arr.lead], sound.soundfont_path, n, sr, arr.detune_st)
        f0 = lead_f0(arr.lead.notes, arr.detune_st, len(arr.perf.f0_midi))
    lead_db = float(rng.uniform(*config.lead_over_band_db))
    mix = mix_stems(lead, band, lead_db)
    info = {**arr.info, "kind": kind, "lead_over_band_db": round(lead_db, 1)}
    if produced:
        mix, prod = produce(mix, rng, config.production, sr)
        info.update(prod)
    tm = arr.perf.time_map if structure is None else compose(structure, arr.perf.time_map)
    info["edited"] = structure is not None and not tm.is_monotonic
    return Rendition(kind, np.asarray(mix, dtype=np.float32), tm, f0.astype(np.float32), sr, info)


def mix_stems(lead: np.ndarray, band: np.ndarray, lead_over_band_db: float) -> np.ndarray:
    """lead + band with the lead's active rms lead_over_band_db above the band's, peak-normalised."""
    from humdex.synth.channel import active_power

    p_lead, p_band = active_power(lead), active_power(band)
    mix = lead / np.sqrt(p_lead) * 10 ** (lead_over_band_db / 20)
    if np.any(band) and p_band > 1e-12:
        mix = mix + band / np.sqrt(p_band)
    return (0.7 * mix / (np.abs(mix).max() + 1e-9)).astype(np.float32)


def lead_f0(notes: np.ndarray, detune_st: float, n_frames: int) -> np.ndarray:
    """(n_frames,) MIDI pitch per HOP_S frame of an instrument lead, NaN where no note sounds."""
    f0 = np.full(n_frames, np.nan)
    for start, end, key, _ in notes:
        a, b = round(start / HOP_S), round(end / HOP_S)
        f0[max(a, 0) : min(b, n_frames)] = key + detune_st
    return f0


def _rate(tm: TimeMap, score: Score) -> float:
    """Performance seconds per score second over the melody."""
    a, b = (float(x) for x in tm.perf_at(np.array([score.start_s, score.end_s])))
    return max((b - a) / max(score.end_s - score.start_s, 1e-3), 1e-3)


def _clock(tm: TimeMap, score: Score, duration_s: float) -> Any:
    """score seconds -> performance seconds, extended linearly before and after the melody."""
    rate = _rate(tm, score)
    p0, p1 = (float(x) for x in tm.perf_at(np.array([score.start_s, score.end_s])))

    def to_perf(s: np.ndarray | float) -> np.ndarray:
        s = np.asarray(s, dtype=np.float64)
        inside = tm.perf_at(np.clip(s, score.start_s, score.end_s))
        return np.where(s < score.start_s, p0 + (s - score.start_s) * rate,
                        np.where(s > score.end_s, p1 + (s - score.end_s) * rate, inside))  # fmt: skip

    return to_perf


def _extend(chords: list[Chord], start_s: float, end_s: float) -> list[Chord]:
    """The first chord starts at start_s (the intro) and the last holds to end_s (the outro)."""
    first, last = chords[0], chords[-1]
    out = [Chord(min(start_s, first.start_s), first.end_s, first.root_pc, first.minor), *chords[1:]]
    if len(out) == 1:
        return [Chord(out[0].start_s, max(end_s, last.end_s), last.root_pc, last.minor)]
    out[-1] = Chord(last.start_s, max(end_s, last.end_s), last.root_pc, last.minor)
    return out


def _chord_at(chords: list[Chord], s: float) -> Chord:
    starts = np.array([c.start_s for c in chords])
    return chords[int(np.clip(np.searchsorted(starts, s, side="right") - 1, 0, len(chords) - 1))]


def _tones(chord: Chord, shift: int, low: float) -> list[int]:
    return sorted(int(low + ((pc + shift - low) % 12)) for pc in chord.pitch_classes())


def _chord_notes(
    chords: list[Chord], grid: np.ndarray, beat: float, style: str, shift: int, low: float, to_perf: Any,
    rng: np.random.Generator,
) -> np.ndarray:  # fmt: skip
    rows: list[tuple[float, float, float, float]] = []
    vel = float(rng.uniform(55, 85))

    def add(a_s: float, b_s: float, key: int, v: float = vel) -> None:
        a, b = float(to_perf(a_s)), float(to_perf(b_s))
        rows.append((a, b, key, v + rng.normal(0, 4)))

    if style == "block":
        for c in chords:
            for k in _tones(c, shift, low):
                add(c.start_s, c.end_s, k)
    elif style in ("arpeggio", "broken"):
        order = (0, 1, 2, 3, 2, 1) if style == "arpeggio" else (0, 2, 1, 2)
        for k, t in enumerate(np.arange(grid[0], grid[-1], beat / 2)):
            tones = _tones(_chord_at(chords, t), shift, low)
            tones = tones + [tones[0] + 12]
            add(t, t + (beat / 2 if style == "broken" else beat), tones[order[k % len(order)]])
    elif style == "strum":
        for t in grid[:-1]:
            for j, k in enumerate(_tones(_chord_at(chords, t), shift, low)):
                add(t + 0.012 * j, t + 0.9 * beat, k)
    elif style == "oompah":
        for i, t in enumerate(grid[:-1]):
            tones = _tones(_chord_at(chords, t), shift, low)
            if i % 2 == 0:
                add(t, t + 0.5 * beat, tones[0] - 12, vel + 10)
            else:
                for k in tones:
                    add(t, t + 0.4 * beat, k)
    elif style == "offbeat":
        for t in grid[:-1]:
            for k in _tones(_chord_at(chords, t + beat / 2), shift, low):
                add(t + beat / 2, t + 0.85 * beat, k)
    else:
        raise ValueError(f"unknown chord style {style!r}")
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def _bass_notes(chords: list[Chord], grid: np.ndarray, shift: int, to_perf: Any, rng: np.random.Generator) -> np.ndarray:
    pattern = str(rng.choice(["half", "beat", "root_fifth"]))
    rows = []
    low = float(rng.uniform(33, 42))
    step = 2 if pattern == "half" else 1
    for i in range(0, len(grid) - 1, step):
        t = grid[i]
        c = _chord_at(chords, t)
        root = int(low + ((c.root_pc + shift - low) % 12))
        key = root + 7 if pattern == "root_fifth" and i % 2 == 1 else root
        end = grid[min(i + step, len(grid) - 1)]
        rows.append((float(to_perf(t)), float(to_perf(end)) - 0.02, key, rng.uniform(80, 105)))
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


KICK, SNARE, HAT, OPEN_HAT, CRASH, CLAP, RIDE = 36, 38, 42, 46, 49, 39, 51


def _drum_notes(grid: np.ndarray, beat: float, style: str, to_perf: Any, rng: np.random.Generator) -> np.ndarray:
    hits: list[tuple[float, int, float]] = [(grid[0], CRASH, 90)]
    cymbal = HAT if rng.random() < 0.7 else RIDE
    for i, t in enumerate(grid[:-1]):
        if style == "rock":
            hits += [(t, cymbal, 70), (t + beat / 2, cymbal, 55)]
            hits.append((t, KICK if i % 2 == 0 else SNARE, 100))
        elif style == "four_on_floor":
            hits += [(t, KICK, 105), (t + beat / 2, OPEN_HAT, 60)]
            if i % 2 == 1:
                hits.append((t, CLAP, 90))
        elif style == "shuffle":
            hits += [(t, cymbal, 70), (t + 2 * beat / 3, cymbal, 50)]
            hits.append((t, KICK if i % 2 == 0 else SNARE, 95))
        elif style == "halftime":
            hits += [(t, cymbal, 60), (t + beat / 2, cymbal, 45)]
            if i % 4 == 0:
                hits.append((t, KICK, 105))
            elif i % 4 == 2:
                hits.append((t, SNARE, 105))
        else:
            raise ValueError(f"unknown drum style {style!r}")
    rows = [(float(to_perf(t)), float(to_perf(t)) + 0.1, key, v + rng.normal(0, 6)) for t, key, v in hits]
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def _counter_notes(chords: list[Chord], shift: int, to_perf: Any, rng: np.random.Generator) -> np.ndarray:
    """A slow line on chord tones (third or fifth), moving to the nearest tone at each chord change."""
    prev = float(rng.uniform(50, 62))
    rows = []
    for c in chords:
        cands = [k + o for k in _tones(c, shift, 48.0)[1:] for o in (0, 12)]
        key = min(cands, key=lambda k: abs(k - prev))
        rows.append((float(to_perf(c.start_s)), float(to_perf(c.end_s)) - 0.03, key, rng.uniform(50, 80)))
        prev = key
    return np.array(rows, dtype=np.float64).reshape(-1, 4)

