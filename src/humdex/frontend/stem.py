"""Which audio of a song record its melody is tracked on: Spleeter's vocal stem or the whole mix.

Kept apart from the separation itself (humdex.frontend.separation, torch) so that the command
line can offer the choice without loading anything.
"""

from __future__ import annotations

SEPARATIONS = ("spleeter", "none")
# audio songs are tracked on Spleeter's vocal stem by default (on the mix where the stem carries
# little pitch: catalog.ingest._stem_or_mix). Of the audio paths measured on the 200 dev records
# (pool-validation melodies, TRAIN sound; benchmarks/records_benchmark.py paths, its decision rule
# written before the first row) it gave the default search the highest MRR, 0.651 against the
# mix's 0.604 (sung leads' top-10 0.461 -> 0.730); on the held-out records (300 songs) 0.628
# against 0.556. It costs ~10x the indexing CPU of the mix alone ("none"; BENCHMARKS.md).
DEFAULT_SEPARATE = "spleeter"
