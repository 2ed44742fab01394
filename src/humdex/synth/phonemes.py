"""Phones as formant targets, and the syllable styles people hum or sing with."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Phone:
    """A vocal-tract state (adult male values; a singer's formant scale multiplies them).

    Attributes:
        formants_hz: F1..F4.
        bandwidths_hz: B1..B4.
        tilt_db_per_oct: extra slope above 300 Hz (closed-mouth nasals are dark).
        gain: voicing amplitude in this state (consonant closures are quiet).
        noise: kind of noise at its release: "" (none), "burst", "aspiration", "frication".
    """

    formants_hz: tuple[float, float, float, float]
    bandwidths_hz: tuple[float, float, float, float] = (80.0, 100.0, 140.0, 200.0)
    tilt_db_per_oct: float = 0.0
    gain: float = 1.0
    noise: str = ""


VOWELS: dict[str, Phone] = {
    "a": Phone((730.0, 1090.0, 2440.0, 3400.0)),
    "e": Phone((530.0, 1840.0, 2480.0, 3500.0)),
    "i": Phone((300.0, 2200.0, 2950.0, 3600.0)),
    "o": Phone((570.0, 840.0, 2410.0, 3400.0)),
    "u": Phone((320.0, 870.0, 2240.0, 3300.0)),
    "@": Phone((500.0, 1400.0, 2450.0, 3400.0)),  # schwa: "duh", "uh"
    "m": Phone((260.0, 1150.0, 2300.0, 3300.0), (60.0, 250.0, 300.0, 400.0), -6.0, 0.8),
    "n": Phone((280.0, 1500.0, 2500.0, 3400.0), (70.0, 250.0, 300.0, 400.0), -5.0, 0.8),
}

CONSONANTS: dict[str, Phone] = {
    "m": Phone((260.0, 1150.0, 2300.0, 3300.0), (60.0, 250.0, 300.0, 400.0), -2.5, 0.45),
    "n": Phone((280.0, 1500.0, 2500.0, 3400.0), (70.0, 250.0, 300.0, 400.0), -2.0, 0.45),
    "l": Phone((360.0, 1050.0, 2700.0, 3400.0), gain=0.5),
    "d": Phone((250.0, 1700.0, 2600.0, 3500.0), gain=0.04, noise="burst"),
    "b": Phone((250.0, 900.0, 2300.0, 3300.0), gain=0.04, noise="burst"),
    "t": Phone((250.0, 1700.0, 2600.0, 3500.0), gain=0.0, noise="aspiration"),
    "k": Phone((250.0, 1900.0, 2500.0, 3400.0), gain=0.0, noise="aspiration"),
    "h": Phone((600.0, 1300.0, 2500.0, 3400.0), gain=0.05, noise="aspiration"),
    "s": Phone((300.0, 1700.0, 2600.0, 3500.0), gain=0.0, noise="frication"),
    "r": Phone((420.0, 1300.0, 1700.0, 3300.0), gain=0.6),
    "w": Phone((300.0, 700.0, 2200.0, 3300.0), gain=0.6),
}


@dataclass(frozen=True)
class SyllableStyle:
    """How every note starts and what it is sung on.

    Attributes:
        consonants: onset consonant choices per note ("" = none, legato).
        vowels: the vowel (or nasal) choices per note.
        per_note: True when every note draws its own syllable (lyrics), else one for all.
        legato: probability that consecutive notes connect without a gap.
    """

    consonants: tuple[str, ...]
    vowels: tuple[str, ...]
    per_note: bool = False
    legato: float = 0.5


HUM_STYLES: dict[str, SyllableStyle] = {
    "mm": SyllableStyle(("",), ("m",), legato=0.85),
    "hm": SyllableStyle(("h", ""), ("m",), per_note=True, legato=0.6),
    "nn": SyllableStyle(("",), ("n",), legato=0.85),
    "da": SyllableStyle(("d",), ("a", "@"), legato=0.2),
    "la": SyllableStyle(("l",), ("a", "@", "i"), legato=0.35),
    "na": SyllableStyle(("n",), ("a", "@"), legato=0.35),
    "doo": SyllableStyle(("d",), ("u", "o"), legato=0.25),
    "ta": SyllableStyle(("t",), ("a", "i"), legato=0.1),
    "ah": SyllableStyle(("",), ("a", "o", "u", "@"), legato=0.7),
}
HUM_STYLE_WEIGHTS: dict[str, float] = {
    "mm": 0.3, "hm": 0.08, "nn": 0.05, "da": 0.17, "la": 0.15, "na": 0.06, "doo": 0.07,
    "ta": 0.04, "ah": 0.08,
}  # fmt: skip
LYRICS = SyllableStyle(
    consonants=("", "m", "n", "l", "d", "b", "t", "k", "h", "s", "r", "w"),
    vowels=("a", "e", "i", "o", "u", "@"),
    per_note=True,
    legato=0.55,
)
