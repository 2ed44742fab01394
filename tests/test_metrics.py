"""Retrieval metrics on hand-computed cases (mir_eval style)."""

import numpy as np
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


def test_melody_accuracy_on_a_hand_counted_case():
    from humdex.metrics import melody_accuracy

    nan = np.nan
    ref = np.array([60.0, 60.0, 62.0, 64.0, 65.0, nan, nan, 67.0])
    est = np.array([60.3, 72.1, 62.8, nan, 53.0, 60.0, nan, 67.0])
    # voiced reference frames: 6; within 50 cents: 0, 7; within a semitone: + 2; octave off: 1 (+12.1), 4 (-12)
    scores = melody_accuracy(ref, est)
    assert scores["pitch_accuracy"] == pytest.approx(2 / 6)
    assert scores["pitch_accuracy_1st"] == pytest.approx(3 / 6)
    assert scores["chroma_accuracy"] == pytest.approx(4 / 6)
    assert scores["octave_error_share"] == pytest.approx(2 / 6)
    assert scores["voicing_recall"] == pytest.approx(5 / 6)
    assert scores["voicing_false_alarm"] == pytest.approx(1 / 2)


def test_melody_accuracy_validates_its_input():
    from humdex.metrics import melody_accuracy

    with pytest.raises(ValueError, match="one length"):
        melody_accuracy(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="tolerance"):
        melody_accuracy(np.zeros(3), np.zeros(3), tolerance_st=0)
    with pytest.warns(UserWarning, match="no voiced or no unvoiced"):
        assert melody_accuracy(np.full(3, np.nan), np.zeros(3))["voicing_false_alarm"] == 1.0
