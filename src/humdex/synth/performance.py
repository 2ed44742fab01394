"""Performances: how a person turns a score into a pitch curve, a loudness curve and a time map."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from humdex.synth.score import Score
from humdex.synth.singer import Singer, choose_transposition
from humdex.synth.timemap import TimeMap, perf_first, perf_last

HOP_S = 0.01  # seconds per control frame


@dataclass(frozen=True)
class PerformanceConfig:
    """Ranges of everything a performer does; errors are given for skill 0 and shrink with skill."""

    tempo: tuple[float, float] = (0.7, 1.4)  # x the melody's natural tempo
    natural_ioi_s: tuple[float, float] = (0.28, 0.55)  # median note spacing people settle on
    natural_clip: tuple[float, float] = (0.7, 1.45)  # how far the natural tempo may move the score
    tempo_drift_sd: float = 0.08  # sd of local log-tempo
    tempo_drift_corr_s: float = 2.5  # correlation time of the drift
    onset_jitter_s: float = 0.035
    interval_error_sd_st: float = 0.35  # per-note pitch error; a trained singer has ~1/6 of it
    big_error_prob: float = 0.05  # a note 1-2 semitones off
    key_slip_prob: float = 0.015  # the rest of the melody moves by a semitone or two
    interval_scale: tuple[float, float] = (0.85, 1.04)  # large intervals come out compressed
    pitch_drift_sd_st: float = 0.1  # random walk, semitones per sqrt(second)
    pitch_trend_st_per_s: tuple[float, float] = (-0.03, 0.01)  # amateurs go flat
    scoop_prob: float = 0.45
    scoop_depth_st: tuple[float, float] = (0.3, 1.8)
    scoop_time_s: tuple[float, float] = (0.025, 0.12)
    glide_prob: float = 0.45  # portamento between connected notes
    glide_s: tuple[float, float] = (0.04, 0.18)
    end_fall_prob: float = 0.3  # pitch falls off at a phrase end
    vibrato_prob: float = 0.45  # the performer uses vibrato at all
    vibrato_rate_hz: tuple[float, float] = (4.5, 7.0)
    vibrato_depth_st: tuple[float, float] = (0.08, 0.6)  # peak deviation
    vibrato_min_note_s: float = 0.3
    jitter_cents: tuple[float, float] = (3.0, 14.0)
    wander_st: float = 0.55  # slow (~0.2 s) unsteadiness within notes (amateurs: +-30-50 cents)
    wander_corr_s: float = 0.2
    drop_prob: float = 0.05  # a short note is skipped (the previous one is held)
    merge_repeat_prob: float = 0.35  # repeated notes sung as one
    fill_rest_prob: float = 0.3  # a short rest is sung through
    breath_prob: float = 0.6  # at each phrase start
    breath_s: tuple[float, float] = (0.15, 0.5)
    breath_pause_prob: float = 0.5  # the breath adds time instead of shortening the last note
    hesitation_prob: float = 0.25  # at a phrase start an amateur stops to recall the tune (x err)
    hesitation_s: tuple[float, float] = (0.4, 2.0)  # silent seconds, on top of the breath
    articulation_gap_s: tuple[float, float] = (0.02, 0.15)
    lead_s: tuple[float, float] = (0.1, 0.8)
    tail_s: tuple[float, float] = (0.1, 0.6)
    level_sd_db: float = 2.0


@dataclass(frozen=True, eq=False)
class Performance:
    """A performed melody.

    Attributes:
        f0_midi: (frames,) float32 sung pitch per HOP_S frame, NaN where silent.
        loudness: (frames,) float32 linear amplitude 0..1 per frame.
        note_on_s, note_off_s, note_midi: (m,) the sung notes (after drops and merges).
        breaths_s: (b, 2) inhalation intervals.
        time_map: rendition time -> score time.
        transpose_st: semitones the performer moved the score by.
    """

    f0_midi: np.ndarray
    loudness: np.ndarray
    note_on_s: np.ndarray
    note_off_s: np.ndarray
    note_midi: np.ndarray
    breaths_s: np.ndarray
    time_map: TimeMap
    transpose_st: float

    @property
    def duration_s(self) -> float:
        return len(self.f0_midi) * HOP_S


def perform(
    score: Score,
    singer: Singer,
    rng: np.random.Generator,
    config: PerformanceConfig = PerformanceConfig(),
    legato: float = 0.5,
) -> Performance:
    """A human performance of `score` by `singer`; legato (0..1) is how often notes connect."""
    err = 1.0 - 0.8 * singer.skill
    time_map, breaths = _time_map(score, rng, config, err)
    on = np.array([perf_last(time_map, s) for s in score.onset_s])
    off = np.array([perf_first(time_map, s) for s in score.offset_s])
    transpose = choose_transposition(score, singer, rng)
    pitch = _sung_pitches(score.pitch_midi + transpose, rng, config, err)
    notes, breaths = _sung_notes(score, on, off, pitch, breaths, rng, config, err, legato)
    n_frames = int(np.ceil(time_map.duration_s / HOP_S))
    f0, loud = _curves(notes, n_frames, rng, config, err)
    return Performance(
        f0_midi=f0,
        loudness=loud,
        note_on_s=notes[:, 0],
        note_off_s=notes[:, 1],
        note_midi=notes[:, 2],
        breaths_s=breaths.reshape(-1, 2),
        time_map=time_map,
        transpose_st=transpose,
    )


def _time_map(
    score: Score, rng: np.random.Generator, config: PerformanceConfig, err: float
) -> tuple[TimeMap, np.ndarray]:
    """Knots at every note boundary, local tempo drift, onset jitter, breath pauses, lead/tail."""
    natural = np.clip(rng.uniform(*config.natural_ioi_s) / score.median_ioi_s(), *config.natural_clip)
    factor = natural / rng.uniform(*config.tempo)
    knots = np.unique(np.concatenate([score.onset_s, score.offset_s]))
    mid = (knots[:-1] + knots[1:]) / 2
    drift = _smooth_noise(mid - knots[0], config.tempo_drift_corr_s, config.tempo_drift_sd * err, rng)
    steps = np.diff(knots) * factor * np.exp(drift)
    perf = np.concatenate([[0.0], np.cumsum(steps)])
    if len(perf) > 2:
        jit = rng.normal(0.0, config.onset_jitter_s * err, len(perf) - 2)
        perf[1:-1] += np.clip(jit, -0.3 * steps[:-1], 0.3 * steps[1:])
    score_k, perf_k, breaths = [knots[0]], [0.0], []
    pause_at: dict[float, float] = {}  # phrase start -> silence before the breath
    for j in score.phrase_starts()[1:]:
        wait = 0.0
        if config.hesitation_prob > 0 and rng.random() < config.hesitation_prob * err:
            wait = rng.uniform(*config.hesitation_s)
        if wait > 0 or (rng.random() < config.breath_prob and rng.random() < config.breath_pause_prob):
            pause_at[float(score.onset_s[j])] = wait
    shift = 0.0
    for s, p in zip(knots[1:], perf[1:]):
        if float(s) in pause_at:
            d = rng.uniform(*config.breath_s)
            wait = pause_at[float(s)]
            score_k.append(s)
            perf_k.append(p + shift)
            breaths.append((p + shift + wait, p + shift + wait + d))
            shift += wait + d
        score_k.append(s)
        perf_k.append(p + shift)
    lead, tail = rng.uniform(*config.lead_s), rng.uniform(*config.tail_s)
    perf_arr = np.concatenate([[0.0], np.asarray(perf_k) + lead, [perf_k[-1] + lead + tail]])
    score_arr = np.concatenate([[knots[0]], score_k, [knots[-1]]])
    b = np.asarray(breaths, dtype=np.float64).reshape(-1, 2) + lead
    return TimeMap(perf_arr, score_arr), b


def _smooth_noise(t: np.ndarray, corr_s: float, sd: float, rng: np.random.Generator) -> np.ndarray:
    """A stationary Ornstein-Uhlenbeck sample at sorted times t with the given sd."""
    out = np.empty(len(t))
    x = rng.normal(0.0, sd)
    prev = t[0] if len(t) else 0.0
    for i, ti in enumerate(t):
        a = np.exp(-(ti - prev) / corr_s)
        x = a * x + np.sqrt(1 - a * a) * rng.normal(0.0, sd)
        out[i], prev = x, ti
    return out


def _sung_pitches(
    target: np.ndarray, rng: np.random.Generator, config: PerformanceConfig, err: float
) -> np.ndarray:
    """Per-note sung pitch: compressed intervals, per-note error, big errors, key slips."""
    center = float(np.median(target))
    scale = rng.uniform(*config.interval_scale) if err > 0.5 else 1.0
    n = len(target)
    pitch = center + scale * (target - center)
    pitch += rng.normal(0.0, config.interval_error_sd_st * err, n)
    big = rng.random(n) < config.big_error_prob * err
    pitch[big] += rng.choice([-2.0, -1.0, 1.0, 2.0], big.sum())
    slips = (rng.random(n) < config.key_slip_prob * err) * rng.choice([-1.0, 1.0], n)
    slips[0] = 0.0
    return pitch + np.cumsum(slips)


def _sung_notes(
    score: Score,
    on: np.ndarray,
    off: np.ndarray,
    pitch: np.ndarray,
    breaths: np.ndarray,
    rng: np.random.Generator,
    config: PerformanceConfig,
    err: float,
    legato: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(m, 3) [on_s, off_s, midi] after drops, merges, filled rests, breaths and articulation."""
    med = score.median_ioi_s()
    phrase = set(score.phrase_starts()[1:].tolist())
    notes: list[list[float]] = []
    steal: list[tuple[float, float]] = []
    for i in range(len(on)):
        if notes and i not in phrase:
            last = notes[-1]
            gap = on[i] - last[1]
            short = score.duration_s[i] < 1.2 * med
            if short and rng.random() < config.drop_prob * err:
                last[1] = off[i]
                continue
            if gap < 0.05 and abs(pitch[i] - last[2]) < 0.5 and rng.random() < config.merge_repeat_prob:
                last[1] = off[i]
                continue
            if 0 < gap < 0.4 and rng.random() < config.fill_rest_prob:
                last[1] = on[i]
        elif notes and i in phrase and rng.random() < config.breath_prob * (1 - config.breath_pause_prob):
            d = rng.uniform(*config.breath_s)
            last = notes[-1]
            if last[1] - last[0] > d + 0.12 and on[i] - last[1] < 0.05:
                last[1] -= d
                steal.append((last[1], on[i]))
        notes.append([on[i], off[i], pitch[i]])
    arr = np.asarray(notes, dtype=np.float64)
    nxt = np.append(arr[1:, 0], np.inf)
    connected = nxt - arr[:, 1] < 0.02
    gaps = rng.uniform(*config.articulation_gap_s, len(arr)) * (rng.random(len(arr)) > legato)
    gaps = np.minimum(gaps, 0.3 * (arr[:, 1] - arr[:, 0]))
    arr[:, 1] -= np.where(connected, gaps, 0.0)
    all_breaths = np.concatenate([breaths.reshape(-1, 2), np.asarray(steal).reshape(-1, 2)])
    return arr, all_breaths[np.argsort(all_breaths[:, 0])] if len(all_breaths) else all_breaths


def _curves(
    notes: np.ndarray, n_frames: int, rng: np.random.Generator, config: PerformanceConfig, err: float
) -> tuple[np.ndarray, np.ndarray]:
    """Frame-level pitch (scoops, glides, vibrato, falls, drift, jitter) and loudness."""
    t = np.arange(n_frames) * HOP_S
    f0 = np.full(n_frames, np.nan)
    loud = np.zeros(n_frames)
    use_vib = rng.random() < config.vibrato_prob
    vib_rate = rng.uniform(*config.vibrato_rate_hz)
    vib_depth = rng.uniform(*config.vibrato_depth_st)
    attack, release = rng.uniform(0.015, 0.06), rng.uniform(0.03, 0.09)
    levels = 10 ** (rng.normal(0.0, config.level_sd_db, len(notes)) / 20)
    for j, (on, off, midi) in enumerate(notes):
        i0, i1 = round(on / HOP_S), min(n_frames, round(off / HOP_S))
        if i1 <= i0:
            continue
        tt = t[i0:i1] - on
        dur = off - on
        curve = np.full(i1 - i0, midi)
        prev_end = notes[j - 1, 1] if j else -1.0
        if j and on - prev_end < 0.03 and rng.random() < config.glide_prob:
            g = rng.uniform(*config.glide_s)
            w = 0.5 * (1 + np.cos(np.pi * np.minimum(tt / g, 1.0)))
            curve += (notes[j - 1, 2] - midi) * w
        elif rng.random() < config.scoop_prob * (0.4 + 0.6 * err):
            curve -= rng.uniform(*config.scoop_depth_st) * np.exp(-tt / rng.uniform(*config.scoop_time_s))
        if use_vib and dur > config.vibrato_min_note_s:
            ramp = np.clip((tt - 0.15) / 0.25, 0.0, 1.0)
            rate = vib_rate * rng.uniform(0.93, 1.07)
            curve += vib_depth * ramp * np.sin(2 * np.pi * rate * tt + rng.uniform(0, 2 * np.pi))
        next_on = notes[j + 1, 0] if j + 1 < len(notes) else np.inf
        if next_on - off > 0.1 and rng.random() < config.end_fall_prob:
            tail = np.clip((tt - (dur - 0.12)) / 0.12, 0.0, 1.0)
            curve -= rng.uniform(0.3, 2.0) * tail**2
        f0[i0:i1] = curve
        env = np.minimum(1.0, tt / attack) * np.clip((dur - tt) / release, 0.0, 1.0)
        loud[i0:i1] = np.maximum(loud[i0:i1], levels[j] * env)
    drift = np.cumsum(rng.normal(0.0, config.pitch_drift_sd_st * err * np.sqrt(HOP_S), n_frames))
    drift += rng.uniform(*config.pitch_trend_st_per_s) * err * t
    jitter = _lowpass_noise(n_frames, rng) * rng.uniform(*config.jitter_cents) / 100
    wander = _ar1(n_frames, np.exp(-HOP_S / config.wander_corr_s), config.wander_st * err, rng)
    f0 = f0 + drift + jitter + wander
    f0[loud <= 0] = np.nan
    return f0.astype(np.float32), np.clip(loud, 0.0, None).astype(np.float32)


def _ar1(n: int, a: float, sd: float, rng: np.random.Generator) -> np.ndarray:
    """(n,) stationary AR(1) noise with coefficient a and standard deviation sd."""
    w = rng.normal(0.0, sd * np.sqrt(1 - a * a), n)
    if n:
        w[0] = rng.normal(0.0, sd)
    return lfilter([1.0], [1.0, -a], w)


def _lowpass_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-sd noise smoothed over ~50 ms (pitch jitter and shimmer)."""
    x = rng.normal(0.0, 1.0, n + 8)
    y = np.convolve(x, np.hanning(7), mode="same")[4 : n + 4]
    return y / (y.std() + 1e-9)
