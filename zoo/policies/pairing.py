"""Refuse a model/policy pairing that would train the wrong thing, before any training.

The bugs this catches are the seed's: a double activation (softmax or sigmoid
inside the model, then a loss that applies it again), a loss that needs
probabilities fed raw logits, and an output width the policy cannot use (a
1-wide output under softmax cross-entropy is always 1.0 and learns nothing).
"""

from __future__ import annotations

from zoo.errors import PairingError
from zoo.policies import LossPolicy
from zoo.specs import ModelSpec

_ACTIVATIONS = ("Softmax", "LogSoftmax", "Sigmoid", "Softmax2d")


def check_declared(spec: ModelSpec, policy: LossPolicy, num_classes: int) -> int:
    """Check what the spec and policy declare; return the output width the model needs."""
    width = policy.output_width(num_classes)
    if spec.emits == "probabilities" and policy.expects == "logits":
        raise PairingError(
            f"model {spec.name!r} already emits probabilities and {policy.name} applies "
            f"{policy.head} again (double activation): pair it with a policy that expects "
            "probabilities, or remove the activation from the model"
        )
    if spec.emits == "logits" and policy.expects == "probabilities":
        raise PairingError(
            f"{policy.name} expects probabilities but model {spec.name!r} emits logits: "
            f"use the logits form of the loss (for example sigmoid-bce), not a loss on raw scores"
        )
    return width


def check_module(module, spec: ModelSpec, policy: LossPolicy, input_size: int, num_classes: int) -> None:
    """Check a built module: no stray final activation, and the output width the policy needs."""
    import torch

    width = check_declared(spec, policy, num_classes)
    last = _last_leaf(module)
    if spec.emits == "logits" and last is not None and type(last).__name__ in _ACTIVATIONS:
        raise PairingError(
            f"model {spec.name!r} says it emits logits but ends with {type(last).__name__}; "
            f"{policy.name} would apply {policy.head} on top of it (double activation): "
            "drop the final activation"
        )
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(torch.zeros(2, input_size))
    except Exception as exc:  # a plugin's model: report, don't crash
        raise PairingError(
            f"model {spec.name!r} failed on a (2, {input_size}) input: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        module.train(was_training)
    shape = tuple(getattr(out, "shape", ()))
    if shape != (2, width):
        need = f"{width} output{'s' if width > 1 else ''}"
        raise PairingError(
            f"model {spec.name!r} emits shape {shape} per batch of 2 but {policy.name} needs "
            f"{need} for {num_classes} classes"
            + (
                ": a 1-wide output under softmax is always 1.0; use sigmoid-bce for two classes"
                if policy.head == "softmax" and shape[-1:] == (1,)
                else ""
            )
        )


def _last_leaf(module):
    leaves = [m for m in module.modules() if not list(m.children())]
    return leaves[-1] if leaves else None
