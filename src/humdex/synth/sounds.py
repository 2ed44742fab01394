"""Sounds of records: which soundfont, General MIDI programs and arrangement styles a record may use.

Two disjoint sounds: TRAIN (FluidR3_GM and one set of programs/styles) for training data, and
HELDOUT (TimGM6mb and programs/styles never used in training) for evaluation only, so a benchmark
on held-out records measures transfer to unheard instruments, not memory of them.

Two more for the melody net, which must follow leads it never heard: WIDE (training: FluidR3_GM
with every fitting GM program outside HELDOUT's and PROXY's) and PROXY (development only: a third
soundfont, csound's GM bank, and programs of no other sound; the stand-in for unheard instruments
on which choices are made, so that HELDOUT stays unread until the report).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from humdex.errors import HumdexError

SOUNDFONT_DIR = Path("/usr/share/sounds/sf2")
INSTALL_HINT = ("install it with `make system-deps` (apt-get install fluidsynth fluid-soundfont-gm "
                "timgm6mb-soundfont csound-soundfont)")

CHORD_STYLES = ("block", "arpeggio", "strum", "oompah", "offbeat", "broken")
DRUM_STYLES = ("rock", "four_on_floor", "shuffle", "halftime", "none")


@dataclass(frozen=True)
class Sound:
    """Everything a record's sound is drawn from (GM program numbers are 0-based)."""

    name: str
    soundfont: str  # file name under SOUNDFONT_DIR, or an absolute path
    lead_programs: tuple[int, ...]  # instrument leads (voice-like and solo instruments)
    chord_programs: tuple[int, ...]
    bass_programs: tuple[int, ...]
    counter_programs: tuple[int, ...]
    drum_kits: tuple[int, ...]  # bank-128 presets
    chord_styles: tuple[str, ...]
    drum_styles: tuple[str, ...]
    vocal_lead_prob: float = 0.4  # the lead is the singing synthesizer instead of an instrument

    @property
    def soundfont_path(self) -> Path:
        p = Path(self.soundfont)
        return p if p.is_absolute() else SOUNDFONT_DIR / p

    def programs(self) -> set[int]:
        return {*self.lead_programs, *self.chord_programs, *self.bass_programs, *self.counter_programs}


TRAIN = Sound(
    name="train",
    soundfont="FluidR3_GM.sf2",
    # 53 voice oohs, 54 synth voice, 73 flute, 40 violin, 65 alto sax, 71 clarinet, 80 square lead,
    # 22 harmonica, 0 piano, 11 vibraphone
    lead_programs=(53, 54, 73, 40, 65, 71, 80, 22, 0, 11),
    # 0 piano, 4 e-piano, 24 nylon guitar, 48 strings, 88 new-age pad, 19 church organ
    chord_programs=(0, 4, 24, 48, 88, 19),
    bass_programs=(32, 33, 38),  # acoustic, finger, synth bass 1
    counter_programs=(42, 60, 46),  # cello, french horn, harp
    drum_kits=(0, 16),  # standard, power
    chord_styles=("block", "arpeggio", "strum"),
    drum_styles=("rock", "four_on_floor", "none"),
)

HELDOUT = Sound(
    name="heldout",
    soundfont="TimGM6mb.sf2",
    # 52 choir aahs, 56 trumpet, 66 tenor sax, 68 oboe, 85 voice lead, 41 viola, 74 recorder, 81 saw lead
    lead_programs=(52, 56, 66, 68, 85, 41, 74, 81),
    # 1 bright piano, 25 steel guitar, 16 drawbar organ, 49 slow strings, 89 warm pad, 6 harpsichord
    chord_programs=(1, 25, 16, 49, 89, 6),
    bass_programs=(34, 35, 39),  # pick, fretless, synth bass 2
    counter_programs=(43, 61, 70),  # contrabass, brass section, bassoon
    drum_kits=(8, 25, 40),  # room, TR-808-ish, brush (a soundfont without them falls back to standard)
    chord_styles=("oompah", "offbeat", "broken"),
    drum_styles=("shuffle", "halftime", "none"),
)

WIDE = Sound(
    name="wide",
    soundfont="FluidR3_GM.sf2",
    # pianos, chromatic percussion, organs, guitars, strings, voices, brass, reeds, pipes, synth
    # leads and ethnic instruments: all but HELDOUT's and PROXY's and those without a clear pitch
    lead_programs=(0, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 17, 18, 19, 20, 21, 22, 23, 24, 27, 28, 29, 30,
                   40, 42, 45, 46, 48, 51, 53, 54, 59, 60, 63, 65, 67, 71, 73, 76, 77, 78, 80, 83, 84, 87,
                   104, 105, 107, 108, 109, 110, 111),
    chord_programs=(0, 3, 4, 11, 12, 17, 18, 19, 21, 24, 27, 28, 29, 30, 46, 48, 51, 88, 91, 92, 94),
    bass_programs=(32, 33, 38),
    counter_programs=(40, 42, 46, 48, 60, 63, 65, 71, 73),
    drum_kits=(0, 16, 48),  # standard, power, orchestra
    chord_styles=TRAIN.chord_styles,
    drum_styles=TRAIN.drum_styles,
)

PROXY = Sound(
    name="proxy",
    soundfont="sf_GMbank.sf2",  # csound's GM bank
    # 26 jazz guitar, 57 trombone, 64 soprano sax, 69 english horn, 72 piccolo, 75 pan flute,
    # 79 ocarina, 82 calliope lead
    lead_programs=(26, 57, 64, 69, 72, 75, 79, 82),
    chord_programs=(2, 5, 7, 50, 90),  # electric grand, e-piano 2, clavinet, synth strings, polysynth
    bass_programs=(36, 37),  # slap basses
    counter_programs=(44, 58, 62),  # tremolo strings, tuba, synth brass
    drum_kits=(0, 32),  # standard, jazz
    chord_styles=TRAIN.chord_styles,
    drum_styles=TRAIN.drum_styles,
)

SOUNDS = {"train": TRAIN, "heldout": HELDOUT, "wide": WIDE, "proxy": PROXY}


def get_sound(name: str) -> Sound:
    if name not in SOUNDS:
        raise HumdexError(f"unknown record sound {name!r}; use one of {sorted(SOUNDS)}")
    return SOUNDS[name]


def check_sound(sound: Sound) -> None:
    """One clear line when the renderer or the soundfont is missing."""
    import shutil

    if shutil.which("fluidsynth") is None:
        raise HumdexError(f"records need the `fluidsynth` program; {INSTALL_HINT}")
    if not sound.soundfont_path.is_file():
        raise HumdexError(f"{sound.soundfont_path}: soundfont not found; {INSTALL_HINT}")
