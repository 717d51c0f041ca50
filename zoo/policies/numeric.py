"""A numpy reference for the seed's maths: softmax, sigmoid and cross-entropy.

These reproduce every number the seed notebook prints, and unlike the seed's
``np.exp(x) / np.sum(np.exp(x))`` they stay finite at logits of +-1e4 (the max
is subtracted before exponentiating). They are the torch-free twin of the loss
policies' heads, used where torch is not installed.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def softmax(x: ArrayLike, axis: int = -1) -> np.ndarray:
    """exp(x_i) / sum_j exp(x_j) along ``axis``, computed without overflow."""
    x = np.asarray(x, dtype=np.float64 if np.asarray(x).dtype.kind in "iub" else None)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x: ArrayLike, axis: int = -1) -> np.ndarray:
    """log(softmax(x)), computed as ``x - logsumexp(x)`` so it never takes log(0)."""
    x = np.asarray(x, dtype=np.float64 if np.asarray(x).dtype.kind in "iub" else None)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def sigmoid(x: ArrayLike) -> np.ndarray:
    """1 / (1 + exp(-x)), split by sign so neither branch overflows."""
    x = np.asarray(x, dtype=np.float64 if np.asarray(x).dtype.kind in "iub" else None)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def cross_entropy(actual: ArrayLike, predicted: ArrayLike, reduction: str = "sum") -> float:
    """The seed's cross-entropy: one-hot ``actual`` against probabilities ``predicted``.

    ``reduction="sum"`` is the seed's ``-sum(actual * log(predicted))``;
    ``"mean"`` divides by the number of samples (rows).
    """
    actual = np.atleast_2d(np.asarray(actual, dtype=np.float64))
    predicted = np.atleast_2d(np.asarray(predicted, dtype=np.float64))
    tiny = np.finfo(np.float64).tiny  # log(0) -> a large finite loss, not inf
    loss = -np.sum(actual * np.log(np.maximum(predicted, tiny)))
    return _reduce(loss, len(predicted), reduction)


def cross_entropy_from_logits(logits: ArrayLike, targets: ArrayLike, reduction: str = "mean") -> float:
    """What ``nn.CrossEntropyLoss`` computes: LogSoftmax + NLLLoss on class indices."""
    logp = log_softmax(np.atleast_2d(logits), axis=1)
    targets = np.asarray(targets, dtype=np.int64).reshape(-1)
    loss = -np.sum(logp[np.arange(len(targets)), targets])
    return _reduce(loss, len(targets), reduction)


def binary_cross_entropy_from_logits(logits: ArrayLike, targets: ArrayLike, reduction: str = "mean") -> float:
    """What ``nn.BCEWithLogitsLoss`` computes, in the overflow-free form max(x,0) - x*t + log1p(e^-|x|)."""
    x = np.asarray(logits, dtype=np.float64).reshape(-1)
    t = np.asarray(targets, dtype=np.float64).reshape(-1)
    loss = np.sum(np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x))))
    return _reduce(loss, len(x), reduction)


def argmax_decision(probabilities: ArrayLike) -> np.ndarray:
    """Class index of the largest probability per row (the seed's ``torch.max(y, 1)``)."""
    return np.argmax(np.asarray(probabilities), axis=1).astype(np.int64)


def threshold_decision(probabilities: ArrayLike, threshold: float = 0.5) -> np.ndarray:
    """1 where the positive-class probability is at least ``threshold``, else 0."""
    p = np.asarray(probabilities).reshape(len(probabilities), -1)[:, 0]
    return (p >= threshold).astype(np.int64)


def _reduce(total: float, n: int, reduction: str) -> float:
    if reduction == "sum":
        return float(total)
    if reduction == "mean":
        return float(total) / n
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
