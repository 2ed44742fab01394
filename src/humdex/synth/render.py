"""Renditions: compose performer, voice, accompaniment and channel into audio with its time map."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from humdex.synth.accompaniment import STYLES, AccompanimentConfig, accompany
from humdex.synth.channel import STUDIO, ChannelConfig, apply_channel
from humdex.synth.cover import EditConfig, edit_structure
from humdex.synth.performance import PerformanceConfig, perform
from humdex.synth.phonemes import HUM_STYLE_WEIGHTS, HUM_STYLES, LYRICS
from humdex.synth.score import NoteLike, Score
from humdex.synth.singer import sample_singer
from humdex.synth.timemap import TimeMap, compose
from humdex.synth.voice import SAMPLE_RATE, VoiceConfig, sing
from humdex.synth.whistle import WhistleConfig, whistle

QUERY_KINDS = ("hum", "whistle", "sing")  # what people record as a query (CHAD: "humming")
SONG_KINDS = ("original", "cover")
SINGER_PERFORMANCE = PerformanceConfig(
    tempo=(0.85, 1.2),
    onset_jitter_s=0.02,
    interval_error_sd_st=0.12,
    big_error_prob=0.0,
    key_slip_prob=0.0,
    pitch_drift_sd_st=0.03,
    pitch_trend_st_per_s=(0.0, 0.0),
    scoop_prob=0.3,
    vibrato_prob=0.85,
    vibrato_depth_st=(0.2, 0.7),
    drop_prob=0.0,
    breath_prob=0.7,
    hesitation_prob=0.0,
    lead_s=(0.5, 2.0),
    tail_s=(0.5, 2.0),
)  # recorded singers: in tune, steady, expressive
# People humming into a phone phonate softly: low vocal effort steepens the source's spectral slope
# (several dB per octave against full voice), and the voice is breathier.
QUERY_VOICE = VoiceConfig(tilt_db_per_oct=(-9.0, -1.0), breathiness=(0.02, 0.25))
WHISTLE_PERFORMANCE = PerformanceConfig(vibrato_prob=0.3, vibrato_depth_st=(0.05, 0.3), scoop_prob=0.25)


@dataclass(frozen=True)
class RenderConfig:
    """Every range of the renderer, grouped by stage."""

    sample_rate: int = SAMPLE_RATE
    query_performance: PerformanceConfig = field(default_factory=PerformanceConfig)
    whistle_performance: PerformanceConfig = field(default_factory=lambda: WHISTLE_PERFORMANCE)
    song_performance: PerformanceConfig = field(default_factory=lambda: SINGER_PERFORMANCE)
    voice: VoiceConfig = field(default_factory=VoiceConfig)  # recorded singers
    query_voice: VoiceConfig = field(default_factory=lambda: QUERY_VOICE)
    whistle: WhistleConfig = field(default_factory=WhistleConfig)
    query_channel: ChannelConfig = field(default_factory=ChannelConfig)
    song_channel: ChannelConfig = field(default_factory=lambda: STUDIO)
    accompaniment: AccompanimentConfig = field(default_factory=AccompanimentConfig)
    edits: EditConfig = field(default_factory=EditConfig)
    query_kind_weights: dict[str, float] = field(
        default_factory=lambda: {"hum": 0.55, "sing": 0.3, "whistle": 0.15}
    )
    voice_type_weights: dict[str, float] = field(
        default_factory=lambda: {"male": 0.45, "female": 0.45, "child": 0.1}
    )
    query_skill: tuple[float, float] = (0.0, 0.85)
    song_skill: tuple[float, float] = (0.75, 1.0)
    vocal_to_accompaniment_db: tuple[float, float] = (-4.0, 10.0)
    a_cappella_prob: float = 0.04


@dataclass(frozen=True, eq=False)
class Rendition:
    """One rendition of a melody passage.

    Attributes:
        kind: "original", "cover", "hum", "whistle" or "sing".
        audio: (n,) float32 mono at sample_rate, in [-1, 1].
        time_map: rendition seconds -> score seconds (the score's own clock).
        f0_midi: (frames,) float32 the performed vocal pitch per 10 ms, NaN where silent.
        info: what was drawn (singer, syllables, style, transposition, ...), JSON-friendly.
    """

    kind: str
    audio: np.ndarray
    time_map: TimeMap
    f0_midi: np.ndarray
    sample_rate: int = SAMPLE_RATE
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate


def as_score(notes: Score | Sequence[NoteLike]) -> Score:
    return notes if isinstance(notes, Score) else Score.from_notes(notes)


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    p = np.asarray([weights[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def render_query(
    notes: Score | Sequence[NoteLike],
    rng: np.random.Generator,
    config: RenderConfig = RenderConfig(),
    kind: str | None = None,
    channel: bool = True,
) -> Rendition:
    """A person humming, whistling or singing the notes into a phone or laptop."""
    score = as_score(notes)
    kind = kind or _pick(rng, config.query_kind_weights)
    if kind not in QUERY_KINDS:
        raise ValueError(f"unknown query kind {kind!r}; expected one of {QUERY_KINDS}")
    sr = config.sample_rate
    if kind == "whistle":
        singer = sample_singer(rng, "whistler", config.query_skill)
        perf = perform(score, singer, rng, config.whistle_performance, legato=0.5)
        audio = whistle(perf, rng, config.whistle, sr)
        style = "whistle"
    else:
        singer = sample_singer(rng, _pick(rng, config.voice_type_weights), config.query_skill)
        style = _pick(rng, HUM_STYLE_WEIGHTS) if kind == "hum" else "lyrics"
        syllables = HUM_STYLES[style] if kind == "hum" else LYRICS
        perf = perform(score, singer, rng, config.query_performance, legato=syllables.legato)
        audio = sing(perf, singer, syllables, rng, config.query_voice, sr)
    if channel:
        audio = apply_channel(audio, rng, config.query_channel, sr)
    else:
        audio = (0.5 * audio / (np.abs(audio).max() + 1e-9)).astype(np.float32)
    info = {"voice_type": singer.voice_type, "skill": round(singer.skill, 3), "style": style,
            "transpose_st": round(perf.transpose_st, 3)}  # fmt: skip
    return Rendition(kind, audio, perf.time_map, perf.f0_midi, sr, info)


def render_song(
    notes: Score | Sequence[NoteLike],
    rng: np.random.Generator,
    config: RenderConfig = RenderConfig(),
    kind: str = "original",
    style: str | None = None,
    edits: bool = False,
) -> Rendition:
    """A recorded song: a singer with lyrics over an accompaniment; a cover may edit the structure."""
    score = as_score(notes)
    if kind not in SONG_KINDS:
        raise ValueError(f"unknown song kind {kind!r}; expected one of {SONG_KINDS}")
    sr = config.sample_rate
    sung, structure = edit_structure(score, rng, config.edits) if edits else (score, None)
    singer = sample_singer(rng, _pick(rng, {"male": 0.5, "female": 0.5}), config.song_skill)
    perf = perform(sung, singer, rng, config.song_performance, legato=LYRICS.legato)
    vocal = sing(perf, singer, LYRICS, rng, config.voice, sr)
    style = style or str(rng.choice(STYLES))
    if rng.random() >= config.a_cappella_prob:
        band = accompany(sung, perf.time_map, perf.transpose_st, style, len(vocal), rng,
                         config.accompaniment, sr)  # fmt: skip
        vac = 10 ** (rng.uniform(*config.vocal_to_accompaniment_db) / 20)
        band_rms = np.sqrt(np.mean(band**2)) + 1e-9
        mix = vocal + band / band_rms * np.sqrt(np.mean(vocal**2)) / vac
    else:
        mix, style = vocal, "a_cappella"
    audio = apply_channel(mix, rng, config.song_channel, sr)
    time_map = perf.time_map if structure is None else compose(structure, perf.time_map)
    info = {"voice_type": singer.voice_type, "style": style, "transpose_st": round(perf.transpose_st, 3),
            "edited": structure is not None and not time_map.is_monotonic}  # fmt: skip
    return Rendition(kind, audio, time_map, perf.f0_midi, sr, info)


def render_group(
    notes: Score | Sequence[NoteLike],
    rng: np.random.Generator,
    config: RenderConfig = RenderConfig(),
    n_queries: int = 3,
    n_covers: int = 1,
) -> list[Rendition]:
    """One CHAD fragment group in memory: an original, n_queries queries and n_covers covers of a
    passage, every time map on the passage's own score clock (no structural edits inside)."""
    score = as_score(notes)
    group = [render_song(score, rng, config, "original")]
    group += [render_query(score, rng, config) for _ in range(n_queries)]
    group += [render_song(score, rng, config, "cover") for _ in range(n_covers)]
    return group


def without_channel(config: RenderConfig) -> RenderConfig:
    """The same renderer with clean queries (no noise, reverb, band limit, clipping)."""
    clean = ChannelConfig(snr_db=(80.0, 80.0), narrowband_prob=0.0, lowpass_hz=(7900.0, 7900.0),
                          highpass_hz=(20.0, 20.0), reverb_prob=0.0, clip_prob=0.0,
                          eight_bit_prob=0.0)  # fmt: skip
    return replace(config, query_channel=clean)
