"""The comparison rules on their own: ties, self-consistency, NaN, the scale of a row."""

import numpy as np
import pytest

from zoo.exports.bundle.rules import compare, rules_for, ties

RULES = rules_for(["logits", "probabilities", "label"], 1e-5, 1e-5)


def test_a_label_that_differs_off_the_boundary_is_not_a_tie():
    want = {"probabilities": np.array([[0.9, 0.1], [0.2, 0.8]], np.float32), "label": np.array([0, 1])}
    got = {"label": np.array([1, 1])}  # row 0 is far from the boundary (0.9 vs 0.1): not a tie
    found = compare(got, want, rules_for(["label"], 1e-5, 1e-5), decision="argmax", threshold=None)
    assert not found.passed and found.ties == 0 and "1 of 2 labels differ" in found.problems[0]


def test_a_label_on_a_tie_may_go_either_way_and_is_counted():
    want = {"probabilities": np.array([[0.5, 0.5], [0.2, 0.8]], np.float32), "label": np.array([0, 1])}
    got = {"probabilities": np.array([[0.499999, 0.500001], [0.2, 0.8]], np.float32), "label": np.array([1, 1])}
    found = compare(got, want, RULES[1:], decision="argmax", threshold=None)
    assert found.passed and found.ties == 1 and found.label_agreement == 0.5
    assert ties(np.array([[0.5000001], [0.7]]), "threshold", 0.5, 1e-5, 1e-5).tolist() == [True, False]


def test_a_label_must_be_the_decision_of_its_own_probabilities():
    p = np.array([[0.9, 0.1], [0.2, 0.8]], np.float32)
    found = compare({"probabilities": p, "label": np.array([1, 0])}, {}, RULES, decision="argmax", threshold=None)
    assert found.problems == ["label is not the argmax of its own probabilities"]
    t = {"probabilities": np.array([[0.3], [0.7]], np.float32), "label": np.array([1, 1])}
    found = compare(t, {}, RULES, decision="threshold", threshold=0.5)
    assert found.problems == ["label is not the threshold of its own probabilities"]


def test_a_row_that_is_not_finite_is_labelled_minus_one_and_its_scores_are_not_compared():
    x = np.array([[1.0, 2.0], [np.nan, 1.0]], np.float32)
    want = {"probabilities": np.array([[0.9, 0.1], [np.nan, np.nan]], np.float32), "label": np.array([0, -1])}
    got = {"probabilities": np.array([[0.9, 0.1], [0.3, 0.7]], np.float32), "label": np.array([0, -1])}
    assert compare(got, want, RULES, decision="argmax", threshold=None, x=x).passed
    found = compare({**got, "label": np.array([0, 1])}, want, RULES, decision="argmax", threshold=None, x=x)
    assert "label is not the argmax of its own probabilities" in found.problems


@pytest.mark.parametrize("shift, ok", [(1e-5 * 1e5 * 0.5, True), (1e-5 * 1e5 * 2, False)])
def test_logits_are_compared_to_the_scale_of_their_row(shift, ok):
    want = {"logits": np.array([[1e5, 1.0]], np.float64)}
    got = {"logits": want["logits"] + [[0.0, shift]]}  # a small logit beside a large one
    assert compare(got, want, RULES, decision="argmax", threshold=None).passed is ok
