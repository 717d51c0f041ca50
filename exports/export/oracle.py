"""The independent reference every exported file is checked against.

It never goes through the export wrapper (the module that is traced into the
graph): the inputs are standardized in numpy from the stored statistics, the
trained module alone runs in torch, and the policy's *numpy* head and decision
turn its output into probabilities and labels. A wrapper that swapped its
normalization buffers, dropped or doubled the head, or decided with another
threshold therefore exports a graph that disagrees with this reference, and
with the true labels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

DESCRIPTION = "the trained module on numpy-standardized inputs, then the policy's numpy head and decision"
TABLE_DESCRIPTION = ("the table's columns encoded in numpy from the recorded medians and vocabularies, then " +
                     DESCRIPTION)


def encode(features, frame) -> np.ndarray:
    """A table's columns (a :class:`zoo.tables.Frame`) as the matrix the module was trained on, in numpy alone: a
    NaN becomes the column's median; a category its one-hot level ('' the missing level when there is one), any
    other string all zeros."""
    import numpy as np

    blocks = []
    for feature in features.columns:
        values = np.asarray(frame.columns[feature.name]).reshape(-1)
        if feature.kind == "numeric":
            values = values.astype(np.float32)
            blocks.append(np.where(np.isnan(values), np.float32(feature.median), values)[:, None])
        else:
            levels = list(feature.categories) + ([""] if feature.missing_level else [])
            position = {level: n for n, level in enumerate(levels)}
            index = np.array([position.get(v, -1) for v in values.tolist()], dtype=np.int64)
            blocks.append((index[:, None] == np.arange(len(levels))[None, :]).astype(np.float32))
    return np.concatenate(blocks, axis=1)


def reference(module, policy, mean: np.ndarray, scale: np.ndarray, X,
              names: tuple[str, ...], features=None) -> dict[str, np.ndarray]:
    """The outputs ``names`` (``logits``, ``probabilities``, ``label``) for raw rows ``X`` (a table's columns when
    ``features`` says how they were encoded)."""
    import numpy as np
    import torch

    if features is not None:
        X = encode(features, X)
    standardized = ((np.asarray(X, dtype=np.float64) - np.asarray(mean, dtype=np.float64))
                    * np.asarray(scale, dtype=np.float64)).astype(np.float32)
    parameter = next(module.parameters(), None)
    device = parameter.device if parameter is not None else "cpu"
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            output = module(torch.from_numpy(standardized).to(device)).float().cpu().numpy()
    finally:
        module.train(was_training)
    with np.errstate(invalid="ignore", over="ignore"):
        probabilities = policy.probabilities_np(output.astype(np.float64))
    label = policy.decide_np(probabilities).astype(np.int64)
    with np.errstate(over="ignore", invalid="ignore"):  # a float32 sum beyond 3e38 counts as not finite
        row_sums = np.asarray(X, dtype=np.float32).sum(axis=1, dtype=np.float32)
    valid = (np.isfinite(np.asarray(X, dtype=np.float64)).all(axis=1) & np.isfinite(row_sums)
             & np.isfinite(probabilities).all(axis=1))
    outputs = {
        "logits": output.astype(np.float32),
        "probabilities": np.asarray(probabilities, dtype=np.float32),
        "label": np.where(valid, label, -1).astype(np.int64),
    }
    return {name: outputs[name] for name in names}
