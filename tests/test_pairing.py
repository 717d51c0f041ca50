"""A wrong model/policy pairing is refused when the model is built, before any training."""

import pytest
import torch
from torch import nn

from zoo import ModelSpec
from zoo.errors import PairingError, SpecError
from zoo.policies.pairing import check_module
from zoo.registry import build


def test_default_pairings_build(registry):
    for name in registry.names("model"):
        built = build(name, registry=registry, input_size=12, num_classes=2 if "binary" in name else 4)
        assert built.policy.name == registry.get("model", name).policy


def test_one_wide_output_with_softmax_cross_entropy(registry):
    with pytest.raises(PairingError, match="1-wide output under softmax is always 1.0"):
        build("binary", policy="softmax-cross-entropy", registry=registry, input_size=4, num_classes=2)


def test_multiclass_with_one_class(registry):
    with pytest.raises(PairingError, match="at least 2 classes"):
        build("multiclass", registry=registry, input_size=4, num_classes=1)


def test_double_activation_declared(registry):
    with pytest.raises(PairingError, match="double activation"):
        build("binary-seed", policy="sigmoid-bce", registry=registry, input_size=4)


def test_probability_loss_on_logits(registry):
    with pytest.raises(PairingError, match="expects probabilities but model 'binary' emits logits"):
        build("binary", policy="sigmoid-in-model-bce", registry=registry, input_size=4)


def test_binary_policy_on_many_classes(registry):
    with pytest.raises(PairingError, match="two classes, got 10"):
        build("multiclass", policy="sigmoid-bce", registry=registry, input_size=4, num_classes=10)


def test_double_activation_hidden_in_a_model_that_claims_logits(registry):
    """A plugin's model that ends in nn.Softmax but says it emits logits."""
    spec = ModelSpec("softmaxed", "ends in Softmax", lambda input_size, num_classes: nn.Sequential(
        nn.Linear(input_size, num_classes), nn.Softmax(dim=1)), "softmax-cross-entropy", "multiclass", "digits")
    module = spec.builder(input_size=4, num_classes=3)
    with pytest.raises(PairingError, match="ends with Softmax.*double activation"):
        check_module(module, spec, registry.get("policy", "softmax-cross-entropy"), 4, 3)


def test_a_model_that_crashes_is_reported(registry):
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    spec = ModelSpec("broken", "crashes", lambda **_: Broken(), "softmax-cross-entropy", "multiclass", "digits")
    with pytest.raises(PairingError, match="failed on a \\(2, 4\\) input: RuntimeError: boom"):
        check_module(Broken(), spec, registry.get("policy", "softmax-cross-entropy"), 4, 3)


def test_unknown_and_invalid_options(registry):
    with pytest.raises(SpecError, match="takes no option 'depth'"):
        build("multiclass", registry=registry, depth=3)
    with pytest.raises(SpecError, match="hidden_size must be a positive integer"):
        build("multiclass", registry=registry, hidden_size=0)


def test_get_model_returns_a_module_with_the_right_width():
    import zoo

    model = zoo.get_model("multiclass", input_size=784, hidden_size=5, num_classes=3)
    assert model(torch.zeros(4, 784)).shape == (4, 3)
    assert zoo.get_model("binary", input_size=784, hidden_size=5)(torch.zeros(4, 784)).shape == (4, 1)
