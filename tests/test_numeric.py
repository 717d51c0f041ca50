"""The numpy reference reproduces every number the seed prints, and stays finite where it overflows."""

import numpy as np
import pytest
import torch
from torch import nn

from zoo.policies import numeric


def seed_softmax(x):  # the seed's version, verbatim
    return np.exp(x) / np.sum(np.exp(x), axis=0)


def test_softmax_of_the_seed():
    np.testing.assert_allclose(numeric.softmax([2.0, 1.0, 0.1]),
                               [0.65900114, 0.24243297, 0.09856589], atol=1e-8)


def test_torch_softmax_agrees():
    x = [2.0, 1.0, 0.1]
    np.testing.assert_allclose(torch.softmax(torch.tensor(x), dim=0).numpy(), numeric.softmax(x), atol=1e-7)


def test_numpy_cross_entropy_of_the_seed():
    y = np.array([[1, 0, 0]])
    assert numeric.cross_entropy(y, [0.7, 0.2, 0.1]) == pytest.approx(0.35667494393873245, abs=1e-12)
    assert numeric.cross_entropy(y, [0.1, 0.3, 0.6]) == pytest.approx(2.3025850929940455, abs=1e-12)


def test_cross_entropy_sum_and_mean():
    actual = np.eye(3)[[2, 0, 1]]
    predicted = np.array([[0.1, 0.2, 0.7], [0.8, 0.1, 0.1], [0.2, 0.6, 0.2]])
    total = numeric.cross_entropy(actual, predicted, reduction="sum")
    assert total == pytest.approx(-(np.log(0.7) + np.log(0.8) + np.log(0.6)))
    assert numeric.cross_entropy(actual, predicted, reduction="mean") == pytest.approx(total / 3)
    with pytest.raises(ValueError, match="reduction"):
        numeric.cross_entropy(actual, predicted, reduction="max")


def test_torch_cross_entropy_of_the_seed():
    assert numeric.cross_entropy_from_logits([[2.0, 1.0, 0.1]], [0]) == pytest.approx(0.4170299470424652, abs=1e-7)
    assert numeric.cross_entropy_from_logits([[0.5, 2.0, 0.3]], [0]) == pytest.approx(1.840616226196289, abs=1e-6)
    loss = nn.CrossEntropyLoss()
    assert loss(torch.tensor([[2.0, 1.0, 0.1]]), torch.tensor([0])).item() == pytest.approx(0.4170299470424652)


def test_batch_loss_and_predictions_of_the_seed():
    y = [2, 0, 1]
    good = [[0.1, 0.2, 3.9], [1.2, 0.1, 0.3], [0.3, 2.2, 0.2]]
    bad = [[0.9, 0.2, 0.1], [0.1, 0.3, 1.5], [1.2, 0.2, 0.5]]
    assert f"{numeric.cross_entropy_from_logits(good, y):.4f}" == "0.2834"
    assert f"{numeric.cross_entropy_from_logits(bad, y):.4f}" == "1.6418"
    assert numeric.argmax_decision(good).tolist() == [2, 0, 1]
    assert numeric.argmax_decision(bad).tolist() == [0, 2, 0]
    assert numeric.argmax_decision([[2.0, 1.0, 0.1]]).tolist() == [0]
    assert numeric.argmax_decision([[0.5, 2.0, 0.3]]).tolist() == [1]
    torch_loss = nn.CrossEntropyLoss()(torch.tensor(good), torch.tensor(y)).item()
    assert torch_loss == pytest.approx(numeric.cross_entropy_from_logits(good, y), abs=1e-6)


@pytest.mark.parametrize("big", [1e4, -1e4])
def test_finite_at_extreme_logits_where_the_seed_overflows(big):
    x = np.array([big, 0.0, -big / 2])
    with np.errstate(over="ignore", invalid="ignore"):
        assert not np.all(np.isfinite(seed_softmax(x)))
    p = numeric.softmax(x)
    assert np.all(np.isfinite(p)) and p.sum() == pytest.approx(1.0)
    rows = numeric.softmax(np.array([[big, -big, 0.0], [0.0, 1.0, 2.0]]), axis=1)
    np.testing.assert_allclose(rows.sum(axis=1), 1.0)
    assert np.all(np.isfinite(numeric.log_softmax(x)))
    s = numeric.sigmoid(np.array([big, -big]))
    assert np.all(np.isfinite(s)) and s.tolist() == ([1.0, 0.0] if big > 0 else [0.0, 1.0])
    ce = numeric.cross_entropy_from_logits([[big, 0.0, -big]], [2])
    assert np.isfinite(ce) and ce == pytest.approx(max(2 * big, 0.0), abs=1e-6)
    bce = numeric.binary_cross_entropy_from_logits([big], [0])
    assert np.isfinite(bce) and bce == pytest.approx(max(big, 0), abs=1e-6)


def test_binary_cross_entropy_matches_torch():
    z = torch.tensor([[-3.0], [0.5], [2.0], [40.0]])
    t = torch.tensor([[0.0], [1.0], [1.0], [0.0]])
    expected = nn.BCEWithLogitsLoss()(z, t).item()
    assert numeric.binary_cross_entropy_from_logits(z.numpy(), t.numpy()) == pytest.approx(expected, rel=1e-6)


def test_threshold_decision():
    assert numeric.threshold_decision(np.array([[0.2], [0.5], [0.9]])).tolist() == [0, 1, 1]
    assert numeric.threshold_decision(np.array([[0.2], [0.5], [0.9]]), 0.6).tolist() == [0, 0, 1]
