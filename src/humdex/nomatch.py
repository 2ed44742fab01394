"""The "no match" decision: is the best song's score high enough to call it a match?

MATCH_THRESHOLD is calibrated by benchmarks/no_match_calibration.py (queries whose song is in
the catalog vs queries whose song is not); BENCHMARKS.md reports its false-accept and
false-reject rates. Scores are the classical matcher's exp(-mean DTW cost), in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MATCH_THRESHOLD = 0.5  # placeholder until calibrated


@dataclass(frozen=True)
class NoMatchConfig:
    threshold: float = MATCH_THRESHOLD  # best score >= threshold -> a match


def is_match(best_score: float | None, config: NoMatchConfig = NoMatchConfig()) -> bool:
    """True when there is a best song and its score reaches the threshold."""
    return best_score is not None and best_score >= config.threshold


def decision_fields(result_json: dict[str, Any], config: NoMatchConfig = NoMatchConfig()
                    ) -> dict[str, Any]:
    """The fields the search answer adds to its JSON contract: {"match": bool, "threshold": float}."""
    results = result_json.get("results") or []
    best = results[0]["score"] if results else None
    return {"match": is_match(best, config), "threshold": config.threshold}
