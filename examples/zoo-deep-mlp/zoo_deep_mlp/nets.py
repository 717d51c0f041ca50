"""The torch module; imported only when zoo builds the model."""

from torch import nn


class DeepMLP(nn.Module):
    """``depth`` hidden layers of ``hidden_size`` units with ReLU, then one logit per class."""

    def __init__(self, input_size: int, num_classes: int, hidden_size: int = 64, depth: int = 3):
        super().__init__()
        layers, width = [], input_size
        for _ in range(depth):
            layers += [nn.Linear(width, hidden_size), nn.ReLU()]
            width = hidden_size
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)
