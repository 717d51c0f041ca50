"""The seed's two networks. Imported only when a model is built (it imports torch)."""

from __future__ import annotations

import torch
from torch import nn


class MulticlassNet(nn.Module):
    """The seed's NeuralNet2: Linear -> ReLU -> Linear(C). Emits logits, no softmax."""

    def __init__(self, input_size: int, hidden_size: int, num_classes: int):
        super().__init__()
        self.linear1 = nn.Linear(input_size, hidden_size)
        self.relu = nn.ReLU()
        self.linear2 = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.relu(self.linear1(x)))


class BinaryNet(nn.Module):
    """The seed's NeuralNet1 without its final sigmoid: one logit per row."""

    def __init__(self, input_size: int, hidden_size: int, num_classes: int = 2):
        super().__init__()
        self.linear1 = nn.Linear(input_size, hidden_size)
        self.relu = nn.ReLU()
        self.linear2 = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.relu(self.linear1(x)))


class SeedBinaryNet(BinaryNet):
    """The seed's NeuralNet1 as written: the sigmoid inside ``forward`` (emits probabilities)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(super().forward(x))
