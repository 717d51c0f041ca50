"""Loss policies: what they state, the targets they accept, and the seed's pairing."""

import numpy as np
import pytest
import torch
from torch import nn

from zoo import LossPolicy
from zoo.errors import PairingError, SpecError, TargetError


def test_builtin_policies_state_everything(registry):
    ce = registry.get("policy", "softmax-cross-entropy")
    assert (ce.expects, ce.head, ce.targets, ce.decision) == ("logits", "softmax", "class-index", "argmax")
    assert isinstance(ce.build_loss(), nn.CrossEntropyLoss)
    assert ce.output_width(10) == 10
    bce = registry.get("policy", "sigmoid-bce")
    assert (bce.expects, bce.head, bce.targets, bce.decision, bce.threshold) == (
        "logits", "sigmoid", "binary", "threshold", 0.5)
    assert isinstance(bce.build_loss(), nn.BCEWithLogitsLoss)
    assert bce.output_width(2) == 1
    seed = registry.get("policy", "sigmoid-in-model-bce")
    assert seed.expects == "probabilities" and isinstance(seed.build_loss(), nn.BCELoss)
    for policy in (ce, bce, seed):
        described = policy.describe()
        assert {"loss", "expects", "head", "targets", "decision", "output_width"} <= set(described)


def test_softmax_needs_two_classes_and_sigmoid_exactly_two(registry):
    with pytest.raises(PairingError, match="at least 2 classes"):
        registry.get("policy", "softmax-cross-entropy").output_width(1)
    with pytest.raises(PairingError, match="two classes, got 3"):
        registry.get("policy", "sigmoid-bce").output_width(3)


def test_class_index_targets(registry):
    ce = registry.get("policy", "softmax-cross-entropy")
    out = ce.encode_targets(np.array([2, 0, 1]), 3)
    assert out.dtype == np.int64 and out.shape == (3,)


def test_one_hot_targets_are_refused_for_cross_entropy(registry):
    ce = registry.get("policy", "softmax-cross-entropy")
    with pytest.raises(TargetError, match="one-hot"):
        ce.encode_targets(np.eye(3)[[2, 0, 1]], 3)


def test_probability_targets_are_refused(registry):
    ce = registry.get("policy", "softmax-cross-entropy")
    with pytest.raises(TargetError, match="integer class labels"):
        ce.encode_targets(np.array([0.0, 1.0, 2.0]), 3)


@pytest.mark.parametrize("labels", [[0, 1, 3], [-1, 0, 1]])
def test_out_of_range_targets_are_refused(registry, labels):
    with pytest.raises(TargetError, match="out of range for 3 classes"):
        registry.get("policy", "softmax-cross-entropy").encode_targets(np.array(labels), 3)


def test_binary_targets_are_float_columns(registry):
    bce = registry.get("policy", "sigmoid-bce")
    out = bce.encode_targets(np.array([0, 1, 1]), 2)
    assert out.dtype == np.float32 and out.shape == (3, 1)
    with pytest.raises(TargetError, match="out of range for 2 classes"):
        bce.encode_targets(np.array([0, 1, 2]), 2)


def test_head_and_decision_in_torch_and_numpy_agree(registry):
    logits = torch.tensor([[0.1, 0.2, 3.9], [1.2, 0.1, 0.3], [0.3, 2.2, 0.2]])
    ce = registry.get("policy", "softmax-cross-entropy")
    p = ce.probabilities(logits)
    np.testing.assert_allclose(p.numpy(), ce.probabilities_np(logits.numpy()), atol=1e-7)
    assert ce.decide(p).tolist() == ce.decide_np(p.numpy()).tolist() == [2, 0, 1]
    bce = registry.get("policy", "sigmoid-bce")
    z = torch.tensor([[-2.0], [0.0], [3.0]])
    q = bce.probabilities(z)
    np.testing.assert_allclose(q.numpy(), bce.probabilities_np(z.numpy()), atol=1e-7)
    assert bce.decide(q).tolist() == bce.decide_np(q.numpy()).tolist() == [0, 1, 1]


def test_inconsistent_policies_are_refused():
    with pytest.raises(SpecError, match="softmax head takes class-index"):
        LossPolicy("bad", "x", "torch.nn:CrossEntropyLoss", "logits", "softmax", "binary", "threshold")
    with pytest.raises(SpecError, match="threshold"):
        LossPolicy("bad", "x", "torch.nn:BCELoss", "logits", "sigmoid", "binary", "threshold", threshold=1.5)
    with pytest.raises(SpecError, match="invalid policy name"):
        LossPolicy("Bad Name", "x", "torch.nn:BCELoss", "logits", "sigmoid", "binary", "threshold")


def test_the_seeds_pairing_equals_sigmoid_bce(registry):
    """Sigmoid in the model + BCELoss computes what BCEWithLogitsLoss computes on the logit."""
    from zoo.registry import build

    torch.manual_seed(0)
    logits_model = build("binary", registry=registry, input_size=30, hidden_size=8).module
    seed_model = build("binary-seed", registry=registry, input_size=30, hidden_size=8).module
    seed_model.load_state_dict(logits_model.state_dict())
    x = torch.randn(64, 30) * 3
    bce = registry.get("policy", "sigmoid-bce")
    seed = registry.get("policy", "sigmoid-in-model-bce")
    y = torch.from_numpy(bce.encode_targets(np.random.default_rng(0).integers(0, 2, 64), 2))
    assert torch.equal(torch.from_numpy(seed.encode_targets(y.numpy().astype(np.int64), 2)), y)

    loss_logits = bce.build_loss()(logits_model(x), y)
    loss_seed = seed.build_loss()(seed_model(x), y)
    assert loss_seed.item() == pytest.approx(loss_logits.item(), abs=1e-6)
    loss_logits.backward()
    loss_seed.backward()
    for a, b in zip(logits_model.parameters(), seed_model.parameters()):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-6, rtol=1e-5)
    p_logits = bce.probabilities(logits_model(x))
    p_seed = seed.probabilities(seed_model(x))
    torch.testing.assert_close(p_logits, p_seed, atol=1e-7, rtol=0)
    assert torch.equal(bce.decide(p_logits), seed.decide(p_seed))
