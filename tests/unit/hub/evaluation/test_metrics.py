"""Pairwise and B-cubed scores on hand-computed examples."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.evaluation.metrics import bcubed, pairwise

TRUTH = {"a": 1, "b": 1, "c": 1, "d": 2, "e": 2}


def test_perfect_clustering_scores_one() -> None:
    assert pairwise(TRUTH, TRUTH).f1 == 1.0 and bcubed(TRUTH, TRUTH).f1 == 1.0


def test_hand_computed_example() -> None:
    predicted = {"a": "x", "b": "x", "c": "y", "d": "y", "e": "z"}
    pw = pairwise(predicted, TRUTH)
    # predicted pairs: ab, cd → 1 right (ab); true pairs: ab ac bc de → 4
    assert (pw.precision, pw.recall) == (0.5, 0.25)
    bc = bcubed(predicted, TRUTH)
    # precision per item: a 1, b 1, c 1/2, d 1/2, e 1 → 4/5; recall: a 2/3, b 2/3, c 1/3, d 1/2, e 1/2
    assert bc.precision == pytest.approx(0.8)
    assert bc.recall == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 / 2 + 1 / 2) / 5)


def test_all_singletons_have_full_precision_and_low_recall() -> None:
    singletons = {k: k for k in TRUTH}
    assert pairwise(singletons, TRUTH).precision == 1.0 and pairwise(singletons, TRUTH).recall == 0.0
    assert bcubed(singletons, TRUTH).precision == 1.0 and bcubed(singletons, TRUTH).recall < 1.0


@given(st.dictionaries(st.integers(0, 30), st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1))
def test_scores_stay_in_range_and_swap_roles(assignment: dict[int, tuple[int, int]]) -> None:
    predicted = {k: v[0] for k, v in assignment.items()}
    truth = {k: v[1] for k, v in assignment.items()}
    for score in (pairwise(predicted, truth), bcubed(predicted, truth)):
        assert 0.0 <= score.precision <= 1.0 and 0.0 <= score.recall <= 1.0
    # swapping prediction and truth swaps precision and recall
    assert bcubed(predicted, truth).precision == pytest.approx(bcubed(truth, predicted).recall)
    assert pairwise(predicted, truth).precision == pytest.approx(pairwise(truth, predicted).recall)
