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
    decided_answer,
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
        answer = decided_answer({"results": results, "method": method}, top=2)
        rule = config_for(method)
        assert answer["threshold"] == rule.min_score and answer["min_margin"] == rule.min_margin
        assert answer["match"] is (0.31 >= rule.min_score and 0.2 >= rule.min_margin)
        assert len(answer["results"]) == 2
    assert decided_answer({"results": results}, top=4)["threshold"] == MIN_SCORE  # no method: DTW
