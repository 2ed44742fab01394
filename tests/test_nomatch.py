"""The "no match" rule: score floor and margin over the cohort, one calibrated rule per method's scores."""

from __future__ import annotations

from humdex.nomatch import (
    HYBRID_MIN_MARGIN,
    HYBRID_MIN_SCORE,
    LEARNED_MIN_MARGIN,
    LEARNED_MIN_SCORE,
    MIN_MARGIN,
    MIN_SCORE,
    NoMatchConfig,
    config_for,
    decide,
    margin,
)


def test_margin_and_decision_by_hand() -> None:
    scores = [0.9, 0.5, 0.4, 0.3]
    assert abs(margin(scores) - (0.9 - 0.4)) < 1e-9
    rule = NoMatchConfig(min_score=0.8, min_margin=0.45)
    assert decide(scores, rule).match
    assert not decide([0.79, 0.1], rule).match  # below the floor
    assert not decide([0.9, 0.5, 0.6], rule).match  # lead 0.35 < 0.45
    assert decide([0.85], rule).match and decide([0.85], rule).margin is None  # one song: floor only
    assert not decide([], rule).match


def test_each_method_gets_its_own_calibrated_rule() -> None:
    assert config_for("classical") == NoMatchConfig(MIN_SCORE, MIN_MARGIN)
    assert config_for("hybrid") == NoMatchConfig(HYBRID_MIN_SCORE, HYBRID_MIN_MARGIN)
    assert config_for("learned") == NoMatchConfig(LEARNED_MIN_SCORE, LEARNED_MIN_MARGIN)
    results = [{"rank": i + 1, "score": s} for i, s in enumerate([0.31, 0.11, 0.11, 0.11])]
    # best 0.31, lead 0.2: under the classical rule's floor (0.33), a match under the learned rule
    assert config_for("classical").min_score > 0.31 >= config_for("learned").min_score
    for method in ("classical", "hybrid", "learned"):
        rule = config_for(method)
        assert decide([r["score"] for r in results], rule).match is (0.31 >= rule.min_score and 0.2 >= rule.min_margin)


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
