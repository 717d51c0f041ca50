"""Property-based tests: the numpy reference and the policies against torch, over wide ranges."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from zoo.plugins.binary import SIGMOID_BCE
from zoo.plugins.multiclass import SOFTMAX_CROSS_ENTROPY
from zoo.policies import numeric

finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False, width=64)
logit_rows = arrays(np.float64, st.tuples(st.integers(1, 16), st.integers(2, 12)), elements=finite)
logit_column = arrays(np.float64, st.tuples(st.integers(1, 32), st.just(1)), elements=finite)
SETTINGS = settings(max_examples=150, deadline=None)


@SETTINGS
@given(logit_rows)
def test_softmax_matches_torch_and_stays_a_distribution(x):
    ours = numeric.softmax(x, axis=1)
    theirs = torch.softmax(torch.from_numpy(x), dim=1).numpy()
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, theirs, atol=1e-6, rtol=0)
    np.testing.assert_allclose(ours.sum(axis=1), 1.0, atol=1e-12)


@SETTINGS
@given(logit_column)
def test_sigmoid_matches_torch(x):
    ours = numeric.sigmoid(x)
    assert np.all(np.isfinite(ours)) and np.all((ours >= 0) & (ours <= 1))
    np.testing.assert_allclose(ours, torch.sigmoid(torch.from_numpy(x)).numpy(), atol=1e-6, rtol=0)


@SETTINGS
@given(logit_rows, st.data())
def test_cross_entropy_matches_torch(x, data):
    targets = np.array(data.draw(st.lists(st.integers(0, x.shape[1] - 1), min_size=len(x), max_size=len(x))))
    for reduction in ("mean", "sum"):
        ours = numeric.cross_entropy_from_logits(x, targets, reduction=reduction)
        theirs = torch.nn.functional.cross_entropy(torch.from_numpy(x), torch.from_numpy(targets),
                                                   reduction=reduction).item()
        assert np.isfinite(ours)
        assert abs(ours - theirs) <= 1e-6 * max(1.0, abs(theirs))


@SETTINGS
@given(logit_column, st.data())
def test_binary_cross_entropy_matches_torch(x, data):
    targets = np.array(data.draw(st.lists(st.integers(0, 1), min_size=len(x), max_size=len(x))), dtype=np.float64)
    ours = numeric.binary_cross_entropy_from_logits(x, targets)
    theirs = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.from_numpy(x[:, 0]), torch.from_numpy(targets)).item()
    assert np.isfinite(ours) and abs(ours - theirs) <= 1e-6 * max(1.0, abs(theirs))


@SETTINGS
@given(logit_rows)
def test_softmax_policy_decides_the_argmax_in_torch_and_numpy(x):
    x32 = x.astype(np.float32)
    p_np = SOFTMAX_CROSS_ENTROPY.probabilities_np(x32)
    p_torch = SOFTMAX_CROSS_ENTROPY.probabilities(torch.from_numpy(x32))
    np.testing.assert_allclose(p_np, p_torch.numpy(), atol=1e-6)
    assert np.array_equal(SOFTMAX_CROSS_ENTROPY.decide_np(p_np), np.argmax(p_np, axis=1))
    assert np.array_equal(SOFTMAX_CROSS_ENTROPY.decide(p_torch).numpy(), torch.argmax(p_torch, dim=1).numpy())


@SETTINGS
@given(logit_column)
def test_sigmoid_policy_decides_by_threshold(x):
    p = SIGMOID_BCE.probabilities_np(x)
    assert np.array_equal(SIGMOID_BCE.decide_np(p), (p[:, 0] >= 0.5).astype(np.int64))
    assert np.array_equal(SIGMOID_BCE.decide(torch.from_numpy(p)).numpy(), SIGMOID_BCE.decide_np(p))
