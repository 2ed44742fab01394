"""The synthesizer: aligned renditions (songs, covers, hums, whistles) of real melodies, numpy+scipy only.

Every rendition is 16 kHz mono audio with its exact time map to the score. Randomness comes only
from the numpy Generator passed in; every range lives in a frozen config dataclass.
"""

from humdex.synth.fragments import FragmentConfig, cut, pick_fragments
from humdex.synth.render import (
                                 QUERY_KINDS,
                                 RenderConfig,
                                 Rendition,
                                 render_group,
                                 render_query,
                                 render_song,  # fmt: skip
                                 without_channel,
)
from humdex.synth.score import Score
from humdex.synth.timemap import TimeMap

__all__ = ["QUERY_KINDS", "FragmentConfig", "RenderConfig", "Rendition", "Score", "TimeMap", "cut",
           "pick_fragments", "render_group", "render_query", "render_song", "without_channel"]  # fmt: skip
