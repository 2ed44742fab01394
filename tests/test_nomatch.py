"""The "no match" rule: score floor and margin over the cohort, one calibrated rule per method's scores."""

from __future__ import annotations

import pytest

from humdex import nomatch
from humdex.nomatch import Decision, NoMatchConfig, config_for, decide, margin


def test_margin_and_decision_by_hand() -> None:
    scores = [0.9, 0.5, 0.4, 0.3]
    assert abs(margin(scores) - (0.9 - 0.4)) < 1e-9
    rule = NoMatchConfig(min_score=0.8, min_margin=0.45)
    assert decide(scores, rule).match
    assert not decide([0.79, 0.1], rule).match  # below the floor
    assert not decide([0.9, 0.5, 0.6], rule).match  # lead 0.35 < 0.45
    assert decide([0.85], rule).match and decide([0.85], rule).margin is None  # one song: floor only
    assert not decide([], rule).match


CLEAR_WINNER = [0.95] + [0.1] * 11  # one song far above a flat field
FLAT = [0.95] * 12  # every song scores the same: nothing stands out


@pytest.mark.parametrize("method", ["classical", "hybrid", "learned"])
def test_every_method_takes_a_clear_winner_and_rejects_a_flat_field(method: str) -> None:
    rule = config_for(method)
    assert decide(CLEAR_WINNER, rule).match
    assert not decide(FLAT, rule).match  # a high score alone is not a match
    assert not decide([0.05] + [-0.9] * 11, rule).match  # a lead alone is not a match either
    assert not decide([], rule).match


def test_the_floor_and_the_margin_are_inclusive_and_each_one_alone_rejects() -> None:
    rule = NoMatchConfig(min_score=0.5, min_margin=0.25, cohort=4)  # binary fractions: exact sums
    at_both = [0.5, 0.25, 0.25, 0.25]
    assert decide(at_both, rule) == Decision(True, 0.5, 0.25)
    below_floor = [0.5 - 1e-9, 0.0, 0.0, 0.0]
    assert not decide(below_floor, rule).match
    below_margin = [0.5, 0.25, 0.25, 0.25 + 1e-9]
    assert not decide(below_margin, rule).match


def test_the_margin_is_taken_over_the_cohort_only() -> None:
    rule = NoMatchConfig(min_score=0.5, min_margin=0.25, cohort=4)
    close_cohort = [0.9, 0.7, 0.7, 0.7]
    assert not decide(close_cohort, rule).match
    assert not decide(close_cohort + [0.0] * 50, rule).match  # songs past the cohort do not dilute it
    assert decide([0.9, 0.5, 0.5, 0.5] + [0.89] * 50, rule).match  # nor does a crowd past it


def test_the_rules_order_the_methods_score_scales() -> None:
    """Cosine scores (learned) run lower than DTW similarities in [0, 1] (classical): a best score
    of 0.31 leading by 0.2 is a learned match, not a classical one."""
    lead = [0.31] + [0.11] * 9
    assert decide(lead, config_for("learned")).match
    assert not decide(lead, config_for("classical")).match
    assert decide(lead, NoMatchConfig()) == decide(lead, config_for("classical"))  # the default rule


def test_the_hybrid_asks_more_of_queries_sung_from_the_start() -> None:
    """From the start the hybrid weighs the DTW 0.85, not 0.8, and keeps the rule measured there
    (nomatch.HYBRID_FROM_START_*); records and large catalogs keep their own rules."""
    from humdex.learned.fingerprints import LARGE_CATALOG_SONGS

    anywhere, start = config_for("hybrid"), config_for("hybrid", from_start=True)
    assert start.min_score > anywhere.min_score and start.min_margin > anywhere.min_margin
    lead = [0.45, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]  # passes the anywhere rule only
    assert decide(lead, anywhere).match and not decide(lead, start).match
    for audio, n_songs in ((True, 0), (False, LARGE_CATALOG_SONGS + 1)):
        assert config_for("hybrid", audio, n_songs, from_start=True) == config_for("hybrid", audio, n_songs)
    for method in ("learned", "classical"):
        assert config_for(method, from_start=True) == config_for(method)


def test_a_search_result_decides_over_the_cohort_whatever_top_it_lists(tmp_path, song_dir, melodies) -> None:
    """The decision belongs to the result: a top-1 answer still takes its margin over the cohort."""
    from humdex.catalog.catalog import Catalog
    from humdex.search import load_query, search
    from test_learned import write_f0_csv

    catalog = Catalog.open(tmp_path / "db", create=True)
    catalog.add_files([song_dir], progress=False)
    query = load_query(write_f0_csv(tmp_path / "q.csv", melodies[5], 2, 16))
    wide = search(query, catalog, top=12, method="classical")
    one = search(query, catalog, top=1, method="classical")
    assert len(one.hits) == 1 and one.hits[0].song_id == wide.hits[0].song_id == "song05"
    assert one.decision == decide([h.score for h in wide.hits], config_for("classical"))
    assert one.decision.margin == margin([h.score for h in wide.hits])
    strict = search(query, catalog, top=1, method="classical", no_match=NoMatchConfig(min_score=0.999))
    answer = strict.to_json()
    assert not strict.decision.match and answer["match"] is False and answer["threshold"] == 0.999
    assert one.to_json()["match"] is one.decision.match and len(one.to_json()["results"]) == 1


def test_the_hybrid_rule_on_records_is_its_own_and_the_search_applies_it() -> None:
    """Songs tracked from mixes score lower: an audio catalog's hybrid search decides by the
    records rule, a melody catalog's by the MIDI one (both calibrated; nomatch constants)."""
    records, melodies = config_for("hybrid", audio_catalog=True), config_for("hybrid")
    assert records != melodies
    high_but_close = [0.50] + [0.40] * 9  # a records score with a lead too small for a melody
    assert decide(high_but_close, records).match and not decide(high_but_close, melodies).match
    low_but_clear = [0.40] + [0.25] * 9  # a clear lead at a score too low for a record
    assert decide(low_but_clear, melodies).match and not decide(low_but_clear, records).match


@pytest.mark.parametrize("method", ["learned", "classical"])
def test_learned_and_classical_take_their_records_rules_on_audio_catalogs_only(method: str) -> None:
    """Issue 15: each method has a rule fitted on records (nomatch.*_RECORDS_*); MIDI catalogs
    keep the rules calibrated on melodies."""
    prefix = method.upper()
    records = NoMatchConfig(min_score=getattr(nomatch, f"{prefix}_RECORDS_MIN_SCORE"),
                            min_margin=getattr(nomatch, f"{prefix}_RECORDS_MIN_MARGIN"))
    assert config_for(method, audio_catalog=True) == records
    midi = {"learned": NoMatchConfig(min_score=nomatch.LEARNED_MIN_SCORE, min_margin=nomatch.LEARNED_MIN_MARGIN),
            "classical": NoMatchConfig(min_score=nomatch.MIN_SCORE, min_margin=nomatch.MIN_MARGIN)}[method]
    assert config_for(method) == config_for(method, audio_catalog=False) == midi
    assert records != midi


def test_a_large_melody_catalog_takes_the_hybrids_stricter_rule() -> None:
    """Above LARGE_CATALOG_SONGS the best song's lead shrinks: the hybrid on a melody catalog
    asks more of it there (nomatch.HYBRID_LARGE_*); other methods and records keep theirs."""
    from humdex.learned.fingerprints import LARGE_CATALOG_SONGS

    small, large = config_for("hybrid", n_songs=LARGE_CATALOG_SONGS), config_for("hybrid", n_songs=LARGE_CATALOG_SONGS + 1)
    assert small == config_for("hybrid") and large.min_score > small.min_score and large.min_margin > small.min_margin
    lead = [0.62, 0.47, 0.47, 0.46, 0.46, 0.45, 0.45, 0.44, 0.44, 0.43]  # passes the small rule only
    assert decide(lead, small).match and not decide(lead, large).match
    for method, audio in (("learned", False), ("classical", False), ("hybrid", True)):
        assert config_for(method, audio, LARGE_CATALOG_SONGS + 1) == config_for(method, audio)
