"""Retrieval metrics on hand-computed cases (mir_eval style)."""

import pytest

from humdex.metrics import mean_reciprocal_rank, percentile_ms, top_k_hit_rate


def test_hand_computed() -> None:
    ranks = [1, 3, None, 12]
    assert top_k_hit_rate(ranks, 1) == 0.25
    assert top_k_hit_rate(ranks, 10) == 0.5
    assert top_k_hit_rate(ranks, 12) == 0.75
    assert mean_reciprocal_rank(ranks) == pytest.approx((1 + 1 / 3 + 0 + 1 / 12) / 4)


def test_validation_and_empty() -> None:
    with pytest.raises(ValueError):
        top_k_hit_rate([0, 1], 1)
    with pytest.raises(ValueError):
        mean_reciprocal_rank([1.5])
    with pytest.raises(ValueError):
        top_k_hit_rate([1], 0)
    with pytest.warns(UserWarning):
        assert mean_reciprocal_rank([]) == 0.0
    assert percentile_ms([10, 20, 30], 50) == 20
