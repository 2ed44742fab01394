"""Which audio of a song record its melody is tracked on: Spleeter's vocal stem, the mix, or both.

Kept apart from the separation itself (humdex.frontend.separation, torch) so that the command
line can offer the choice without loading anything.

- "spleeter": the vocal stem's melody, the mix's where the stem carries little pitch (an
  instrument lead; catalog.ingest._stem_melodies);
- "both": as "spleeter", and where the stem's melody is kept the mix's follows it in the same
  reference (catalog.ingest.joined), so that a hum finds the song by either;
- "none": the mix's melody alone (the predominant-melody tracker), ~10x cheaper to index.
"""

from __future__ import annotations

SEPARATIONS = ("both", "spleeter", "none")
# The default was chosen on the 200 dev records (pool-validation melodies, TRAIN sound, 200 queries
# from anywhere; a path replaces another only with a dev MRR of the default search more than
# 0.010 higher, a rule written before the first row; BENCHMARKS.md "The audio paths" and "Stem
# and mix"): the mix 0.604, the stem ("spleeter") 0.651, both 0.700. On the held-out records
# (300 songs): 0.556, 0.628, 0.661; on 2,000 of them 0.448, 0.513, 0.555.
DEFAULT_SEPARATE = "both"
