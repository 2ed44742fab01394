"""Singers: who performs a rendition (voice type, comfortable register, skill) and the key they pick."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from humdex.synth.score import Score

VOICE_TYPES = ("male", "female", "child", "whistler")


@dataclass(frozen=True)
class RegisterConfig:
    """Comfortable median pitch (MIDI) of each voice type, and how a person picks a key."""

    center_midi: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {
            "male": (45.0, 55.0),  # A2-G3
            "female": (55.0, 66.0),  # G3-F#4
            "child": (62.0, 70.0),  # D4-A#4
            "whistler": (78.0, 88.0),  # F#5-E6: CREPE and swift-f0 stop near C7
        }
    )
    median_limits_midi: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {
            "male": (40.0, 62.0),
            "female": (51.0, 73.0),
            "child": (57.0, 77.0),
            "whistler": (74.0, 92.0),
        }
    )  # a melody's median pitch stays inside these even after an octave displacement
    key_sd_st: float = 2.5  # spread of the chosen key around the comfortable centre
    octave_displacement_prob: float = 0.12  # sings an octave away from the comfortable centre
    detune_sd_st: float = 0.3  # people are not tuned to A440
    formant_scale: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {
            "male": (0.92, 1.05),
            "female": (1.08, 1.2),
            "child": (1.2, 1.35),
            "whistler": (1.0, 1.0),
        }
    )


@dataclass(frozen=True)
class Singer:
    """One performer.

    Attributes:
        voice_type: one of VOICE_TYPES.
        center_midi: the comfortable median pitch this person sings at.
        formant_scale: vocal-tract scale (1 = adult male formants).
        skill: 0 (very approximate) .. 1 (trained singer); scales pitch and timing errors.
    """

    voice_type: str
    center_midi: float
    formant_scale: float
    skill: float


def sample_singer(
    rng: np.random.Generator,
    voice_type: str,
    skill_range: tuple[float, float] = (0.0, 1.0),
    config: RegisterConfig = RegisterConfig(),
) -> Singer:
    """A random person of the given voice type."""
    if voice_type not in VOICE_TYPES:
        raise ValueError(f"unknown voice type {voice_type!r}; expected one of {VOICE_TYPES}")
    lo, hi = config.center_midi[voice_type]
    flo, fhi = config.formant_scale[voice_type]
    return Singer(
        voice_type=voice_type,
        center_midi=float(rng.uniform(lo, hi)),
        formant_scale=float(rng.uniform(flo, fhi)),
        skill=float(rng.uniform(*skill_range)),
    )


def choose_transposition(
    score: Score, singer: Singer, rng: np.random.Generator, config: RegisterConfig = RegisterConfig()
) -> float:
    """Semitones the singer moves the score by: its duration-weighted median pitch lands near the
    singer's comfortable centre, sometimes an octave off, never exactly in tune."""
    order = np.argsort(score.pitch_midi)
    cum = np.cumsum(score.duration_s[order])
    median = float(score.pitch_midi[order][np.searchsorted(cum, cum[-1] / 2)])
    target = singer.center_midi + rng.normal(0.0, config.key_sd_st)
    if singer.voice_type != "whistler" and rng.random() < config.octave_displacement_prob:
        target += 12.0 * rng.choice([-1.0, 1.0])
    lo, hi = config.median_limits_midi[singer.voice_type]
    while target > hi:
        target -= 12.0
    while target < lo:
        target += 12.0
    shift = np.round(target - median) + rng.normal(0.0, config.detune_sd_st)
    return float(shift)
