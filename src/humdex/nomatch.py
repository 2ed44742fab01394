"""The "no match" decision: does the best song stand out enough to call it the answer?

A query whose song is not in the catalog still gets a best song, and in a catalog of thousands
of melodies its raw score is often as high as a real match's. What separates the two is how far
the best song stands out from the next ones (a cohort of the COHORT best songs): the margin
score[0] - mean(score[1:COHORT]). A match needs both a minimum score and a minimum margin.
MIN_SCORE and MIN_MARGIN are calibrated by benchmarks/no_match_calibration.py on queries whose
song is in the catalog vs queries whose song is not; BENCHMARKS.md reports the false-accept and
false-reject rates. The classical method scores by the DTW matcher's exp(-mean DTW cost), in
[0, 1]; the learned method by a mean cosine of fingerprint sequences, in [-1, 1]; the hybrid by a
weighted sum of the two. Each has its own rule (config_for), calibrated the same way, and another
for audio catalogs of records (melodies tracked from mixes score lower; benchmarks/no_match_records.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# calibrated on the melody pool (catalogs of 2000 and 200 songs, 1600 synthesized queries):
# false accepts 1-3 %, false rejects 29-50 % on held-out queries (BENCHMARKS.md)
MIN_SCORE = 0.33
MIN_MARGIN = 0.12
COHORT = 10  # songs the margin is measured over: search at least this many
# the learned method's rule, chosen the same way on audio catalogs (100 and 500 songs rendered
# from the pool's validation and test melodies, never trained on; 200 held-out songs):
# held-out false accepts 4-7 %, false rejects 72-84 % (BENCHMARKS.md, "Learned backbone")
LEARNED_MIN_SCORE = 0.29
LEARNED_MIN_MARGIN = 0.145
# the hybrid's rule on melody catalogs (0.8 DTW + 0.2 learned score, LearnedConfig.dtw_weight),
# chosen the same way on pool-melody MIDI catalogs of 2000 and 200 songs (400 queries from
# anywhere each), fitted again with the matcher's pitch-class windows: held-out false accepts
# 3 % and 2 %, right songs accepted 65 % and 67 % (the former 0.26 / 0.11 let 8 % of the fitting
# half's absent songs through at 2000 songs; BENCHMARKS.md, "Pitch-class windows")
HYBRID_MIN_SCORE = 0.26
HYBRID_MIN_MARGIN = 0.115
# ... and on queries sung from the start (0.85 DTW + 0.15 learned, LearnedConfig.dtw_weight_from_start):
# the former rule, measured on such queries at that weight: 5 % false accepts, 25-36 % false
# rejects (BENCHMARKS.md)
HYBRID_FROM_START_MIN_SCORE = 0.58
HYBRID_FROM_START_MIN_MARGIN = 0.135
# ... and on melody catalogs above fingerprints.LARGE_CATALOG_SONGS, where the hybrid weighs the
# DTW 0.8 (LearnedConfig.dtw_weight) and the votes per window: the best song's lead over
# the next shrinks as songs are added, and the rule above let 10-13 % of absent songs through at
# 12,000-20,000 songs. Fitted by benchmarks/scale.py no-match on 100 pool-validation hums at
# 12,000, 20,000 and 50,000 songs (most right songs accepted with false accepts <= 5 % at each
# size): 5 / 4 / 5 % false accepts, 29 / 27 / 16 % right songs accepted (BENCHMARKS.md)
HYBRID_LARGE_MIN_SCORE = 0.65
HYBRID_LARGE_MIN_MARGIN = 0.18
# the rules on audio catalogs of records (songs tracked from mixes score lower: under the melody
# rules 71 % of the dev queries were rejected, though 56 % had their song first), chosen by
# benchmarks/no_match_records.py --fit: over a grid of (min score, min margin), the most right
# songs accepted with false accepts <= 5 %, the highest floor among equals. Fitted on the
# 200-record dev set (pool-validation melodies, TRAIN sound, 200 queries from anywhere) as the
# default indexes it: each song's vocal-stem melody and its mix's (frontend.stem "both"), the
# k-NN vote of fingerprints.search_store; the mix tracked by the melody net (frontend.melody_net),
# fitted again when it became the default. Dev rates (false accepts, right song accepted):
# - hybrid 0.43 / 0.09: 4.5 %, 65.0 % (the fit gave the same rule as with the salience tracker,
#   3.5 %, 57.5 % then; at the DTW weight 0.7 of LearnedConfig.dtw_weight_performed and the
#   matcher's pitch-class windows; before those 0.47 / 0.09). At the weight 0.75 it gives 3.5 %,
#   65.0 %; the fit there (0.46 / 0.085: 5.0 %, 67.5 %) sits on the 5 % limit and was not taken;
# - learned 0.56 / 0.13: 4.0 %, 37.0 % (the former 0.55 / 0.125 let 6.5 % through with the melody net);
# - classical 0.41 / 0.09: 4.5 %, 60.0 % (the former 0.40 / 0.095: 3.5 %, 57.5 %).
# Held-out records and the earlier fits: BENCHMARKS.md ("Stem and mix", "Pitch-class windows",
# "The melody net").
HYBRID_RECORDS_MIN_SCORE = 0.43
HYBRID_RECORDS_MIN_MARGIN = 0.09
LEARNED_RECORDS_MIN_SCORE = 0.56
LEARNED_RECORDS_MIN_MARGIN = 0.13
CLASSICAL_RECORDS_MIN_SCORE = 0.41
CLASSICAL_RECORDS_MIN_MARGIN = 0.09


@dataclass(frozen=True)
class NoMatchConfig:
    min_score: float = MIN_SCORE  # the best score must reach this...
    min_margin: float = MIN_MARGIN  # ...and lead the rest of the cohort by this much on average
    cohort: int = COHORT


@dataclass(frozen=True)
class Decision:
    match: bool
    score: float | None  # the best song's score (None: empty catalog)
    margin: float | None  # best score - mean of the cohort's other scores (None: < 2 songs)


def config_for(method: str, audio_catalog: bool = False, n_songs: int = 0, from_start: bool = False
               ) -> NoMatchConfig:
    """The calibrated rule for a search method's scores (classical: DTW; learned: cosine;
    hybrid: their weighted sum) and the kind of catalog: each method has its own rule for
    catalogs mostly of audio songs (records: melodies tracked from mixes; Snapshot.mostly_audio)
    and one for melody (MIDI) catalogs; the hybrid another for melody catalogs of more than
    LARGE_CATALOG_SONGS songs (n_songs), and one for queries sung from the start (from_start:
    it weighs the DTW more)."""
    from humdex.learned.fingerprints import LARGE_CATALOG_SONGS

    if method == "learned" and audio_catalog:
        return NoMatchConfig(min_score=LEARNED_RECORDS_MIN_SCORE, min_margin=LEARNED_RECORDS_MIN_MARGIN)
    if method == "learned":
        return NoMatchConfig(min_score=LEARNED_MIN_SCORE, min_margin=LEARNED_MIN_MARGIN)
    if method == "hybrid" and audio_catalog:
        return NoMatchConfig(min_score=HYBRID_RECORDS_MIN_SCORE, min_margin=HYBRID_RECORDS_MIN_MARGIN)
    if method == "hybrid" and n_songs > LARGE_CATALOG_SONGS:
        return NoMatchConfig(min_score=HYBRID_LARGE_MIN_SCORE, min_margin=HYBRID_LARGE_MIN_MARGIN)
    if method == "hybrid" and from_start:
        return NoMatchConfig(min_score=HYBRID_FROM_START_MIN_SCORE, min_margin=HYBRID_FROM_START_MIN_MARGIN)
    if method == "hybrid":
        return NoMatchConfig(min_score=HYBRID_MIN_SCORE, min_margin=HYBRID_MIN_MARGIN)
    if audio_catalog:
        return NoMatchConfig(min_score=CLASSICAL_RECORDS_MIN_SCORE, min_margin=CLASSICAL_RECORDS_MIN_MARGIN)
    return NoMatchConfig()


def margin(scores_desc: Sequence[float], cohort: int = COHORT) -> float | None:
    """scores_desc[0] - mean(scores_desc[1:cohort]); None with fewer than two scores."""
    rest = list(scores_desc[1:cohort])
    return None if not rest else float(scores_desc[0]) - sum(rest) / len(rest)


def decide(scores_desc: Sequence[float], config: NoMatchConfig = NoMatchConfig()) -> Decision:
    """The decision for a query from its best scores, best first (at least config.cohort of them
    when the catalog has that many songs). With one song only the score floor applies."""
    if not len(scores_desc):
        return Decision(False, None, None)
    best = float(scores_desc[0])
    lead = margin(scores_desc, config.cohort)
    ok = best >= config.min_score and (lead is None or lead >= config.min_margin)
    return Decision(ok, best, lead)
