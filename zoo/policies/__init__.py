"""Loss policies: the seed's lesson as an object.

``nn.CrossEntropyLoss`` is LogSoftmax + NLLLoss, so a multiclass model emits
logits and its targets are class indices, never one-hot; a binary model pairs a
sigmoid with binary cross-entropy. A :class:`LossPolicy` states all of that in
one place (the loss, what it expects, the head, the target encoding, the
decision rule and the output width), so zoo can refuse a wrong pairing before
training and apply the same head and decision in torch, in the exported graph
and in numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from zoo.errors import PairingError, SpecError, TargetError
from zoo.specs import check_name, resolve

if TYPE_CHECKING:
    import numpy as np

_HEAD_RULES = {
    # head: (target encoding, decision rule)
    "softmax": ("class-index", "argmax"),
    "sigmoid": ("binary", "threshold"),
}


@dataclass(frozen=True)
class LossPolicy:
    """How a classifier's output is trained, turned into probabilities and decided.

    ``loss`` builds the torch loss module (a callable or ``"module:attr"``,
    called with ``loss_options``). ``expects`` is what that loss takes:
    ``"logits"`` (the head is applied after the model, in the exported graph)
    or ``"probabilities"`` (the model applies the head itself, as the seed's
    binary net does with ``torch.sigmoid``).
    """

    name: str
    summary: str
    loss: Callable[..., Any] | str
    expects: Literal["logits", "probabilities"]
    head: Literal["softmax", "sigmoid"]
    targets: Literal["class-index", "binary"]
    decision: Literal["argmax", "threshold"]
    threshold: float = 0.5
    loss_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name("policy", self.name)
        if self.expects not in ("logits", "probabilities"):
            raise SpecError(f"policy {self.name!r}: expects must be 'logits' or 'probabilities'")
        if self.head not in _HEAD_RULES:
            raise SpecError(f"policy {self.name!r}: head must be one of {sorted(_HEAD_RULES)}")
        if (self.targets, self.decision) != _HEAD_RULES[self.head]:
            targets, decision = _HEAD_RULES[self.head]
            raise SpecError(
                f"policy {self.name!r}: a {self.head} head takes {targets} targets "
                f"and the {decision} decision, not {self.targets}/{self.decision}"
            )
        if not 0.0 < float(self.threshold) < 1.0:
            raise SpecError(f"policy {self.name!r}: threshold must lie in (0, 1)")
        object.__setattr__(self, "loss_options", MappingProxyType(dict(self.loss_options)))

    # -- what the policy needs of a model -------------------------------------------------

    def output_width(self, num_classes: int) -> int:
        """How many outputs a model trained with this policy must have."""
        if self.head == "softmax":
            if num_classes < 2:
                raise PairingError(
                    f"{self.name} needs at least 2 classes, got {num_classes}: softmax over "
                    "one output is always 1.0; use a sigmoid policy for a yes/no task"
                )
            return num_classes
        if num_classes != 2:
            raise PairingError(
                f"{self.name} is for two classes, got {num_classes}: "
                "use a softmax policy (softmax-cross-entropy) for more"
            )
        return 1

    def build_loss(self):
        """The torch loss module."""
        return resolve(self.loss)(**self.loss_options)

    def encode_targets(self, y: np.ndarray, num_classes: int) -> np.ndarray:
        """Targets in the form the loss takes: int64 class indices (N,) or float32 0/1 (N, 1)."""
        import numpy as np

        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] > 1:
            raise TargetError(
                f"targets of shape {y.shape} look one-hot; {self.name} takes one class index "
                "per row, not one-hot: pass y.argmax(axis=1)"
            )
        y = y.reshape(-1)
        if y.dtype.kind not in "iub":
            raise TargetError(
                f"targets must be integer class labels, got dtype {y.dtype} "
                "(probabilities or one-hot vectors are not targets)"
            )
        if len(y) and (y.min() < 0 or y.max() >= num_classes):
            bad = y.min() if y.min() < 0 else y.max()
            raise TargetError(
                f"label {bad} is out of range for {num_classes} classes: "
                f"labels must be 0..{num_classes - 1}"
            )
        if self.targets == "class-index":
            return y.astype(np.int64)
        return y.astype(np.float32).reshape(-1, 1)

    # -- head and decision, in torch ------------------------------------------------------

    def probabilities(self, output):
        """Probabilities from the model's output (applies the head unless the model did)."""
        if self.expects == "probabilities":
            return output
        import torch

        return torch.softmax(output, dim=1) if self.head == "softmax" else torch.sigmoid(output)

    def decide(self, probabilities):
        """Labels (int64, shape (N,)) from probabilities."""
        import torch

        if self.decision == "argmax":
            return torch.argmax(probabilities, dim=1)
        return (probabilities[:, 0] >= self.threshold).to(torch.int64)

    # -- the numpy twin ---------------------------------------------------------------------

    def probabilities_np(self, output: np.ndarray) -> np.ndarray:
        import numpy as np

        from zoo.policies import numeric

        if self.expects == "probabilities":
            return np.asarray(output)
        if self.head == "softmax":
            return numeric.softmax(output, axis=1)
        return numeric.sigmoid(output)

    def decide_np(self, probabilities: np.ndarray) -> np.ndarray:
        from zoo.policies import numeric

        if self.decision == "argmax":
            return numeric.argmax_decision(probabilities)
        return numeric.threshold_decision(probabilities, self.threshold)

    def describe(self) -> dict[str, Any]:
        """The policy as plain data (for ``zoo info``, reports and ONNX metadata)."""
        loss = self.loss if isinstance(self.loss, str) else getattr(self.loss, "__qualname__", repr(self.loss))
        return {
            "name": self.name,
            "summary": self.summary,
            "loss": loss,
            "loss_options": dict(self.loss_options),
            "expects": self.expects,
            "head": self.head,
            "targets": self.targets,
            "decision": self.decision,
            "threshold": self.threshold if self.decision == "threshold" else None,
            "output_width": "C (one per class)" if self.head == "softmax" else "1",
        }
