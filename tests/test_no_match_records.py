"""benchmarks/no_match_records.py's rule fit: the most right songs accepted under the false-accept
cap, the highest floor among equals, never a rule over the cap."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from humdex.nomatch import NoMatchConfig

_SPEC = importlib.util.spec_from_file_location(
    "no_match_records", Path(__file__).resolve().parents[1] / "benchmarks" / "no_match_records.py")
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)

BASE = NoMatchConfig(cohort=3)
ROWS = [
    # a clear right answer: best 0.9, lead 0.45; without its song the field is flat
    {"truth": "a", "ids": ["a", "p", "q", "r"], "scores": [0.9, 0.45, 0.45, 0.45]},
    # a weak right answer: best 0.6, lead ~0.1
    {"truth": "b", "ids": ["b", "p", "q", "r"], "scores": [0.6, 0.5, 0.5, 0.5]},
    # a song that stands out but is not the query's: best 0.8, lead 0.4, with or without the truth
    {"truth": "c", "ids": ["x", "p", "q", "c"], "scores": [0.8, 0.4, 0.4, 0.3]},
]


def test_the_fit_picks_the_most_right_songs_under_the_cap_and_the_highest_floor() -> None:
    rule, got = bench.fit_rule(ROWS, BASE, max_false_accept=0.05)
    # accepting b would accept the unrelated 0.8 / 0.4 too (a false accept): only a is right, and
    # of the floors that keep it (0.81-0.90) the highest is chosen
    assert rule.min_score == pytest.approx(0.90) and rule.cohort == 3
    assert got["false_accept"] == 0 and got["right_and_accepted"] == pytest.approx(1 / 3)
    assert got == bench.rates(ROWS, rule)
    # a looser cap allows that false accept and buys the weak right answer: floor 0.60
    loose, got_loose = bench.fit_rule(ROWS, BASE, max_false_accept=0.5)
    assert loose.min_score == pytest.approx(0.60)
    assert got_loose["false_accept"] == pytest.approx(1 / 3) and got_loose["right_and_accepted"] == pytest.approx(2 / 3)


def test_the_fit_never_exceeds_the_cap_and_matches_a_full_grid_search() -> None:
    rng = np.random.default_rng(7)
    rows = []
    for n in range(40):
        scores = sorted(rng.uniform(0.2, 0.9, 6), reverse=True)
        ids = [f"s{n}_{k}" for k in range(6)]
        truth = ids[int(rng.integers(0, 3))] if rng.random() < 0.8 else "elsewhere"
        rows.append({"truth": truth, "ids": ids, "scores": [float(s) for s in scores]})
    for cap in (0.0, 0.05, 0.2):
        _rule, got = bench.fit_rule(rows, BASE, max_false_accept=cap, score_step=0.02, margin_step=0.01)
        assert got["false_accept"] <= cap
        full = [bench.rates(rows, dataclasses.replace(BASE, min_score=s, min_margin=m))
                for s in np.arange(0.0, 1.0, 0.02) for m in np.arange(0.0, 0.7, 0.01)]
        assert got["right_and_accepted"] == max(r["right_and_accepted"] for r in full if r["false_accept"] <= cap)
