"""The card's statistics in numpy (the tests check them against scikit-learn)."""

from __future__ import annotations

from typing import Any

import numpy as np

#: Equal-width confidence bins of the reliability diagram and the expected calibration error.
BINS = 10


def confusion(y, predicted, classes: int):
    """Counts, true class by row and predicted class by column."""

    keep = (predicted >= 0) & (predicted < classes)
    return np.bincount(y[keep] * classes + predicted[keep], minlength=classes * classes).reshape(classes, classes)


def per_class(matrix) -> dict[str, Any]:
    """Precision, recall, F1 and support per class (0 where undefined, as scikit-learn's zero_division=0)."""

    tp = np.diag(matrix).astype(np.float64)
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def reliability(confidence, hit, bins: int = BINS) -> dict[str, Any]:
    """Per equal-width bin of ``confidence``: rows, mean confidence, observed frequency of ``hit``; and the ECE.

    A value on an inner edge falls in the bin below it (as ``sklearn.calibration.calibration_curve``).
    """

    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.searchsorted(edges[1:-1], confidence)
    count = np.bincount(index, minlength=bins)
    mean = np.bincount(index, weights=confidence, minlength=bins)
    observed = np.bincount(index, weights=hit.astype(np.float64), minlength=bins)
    filled = count > 0
    mean[filled] /= count[filled]
    observed[filled] /= count[filled]
    ece = float(np.sum(count[filled] * np.abs(observed[filled] - mean[filled])) / max(1, count.sum()))
    return {"edges": edges, "count": count, "confidence": mean, "observed": observed, "filled": filled, "ece": ece}


def roc(y, score) -> dict[str, Any] | None:
    """False and true positive rates at every distinct threshold, and the area under the curve (None: one class)."""

    positives = int(y.sum())
    if positives in (0, len(y)):
        return None
    order = np.argsort(-score, kind="mergesort")
    ranked, truth = score[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]
    tps = np.cumsum(truth)[last]
    fps = last + 1 - tps
    tpr = np.r_[0.0, tps / positives]
    fpr = np.r_[0.0, fps / (len(y) - positives)]
    return {"fpr": fpr, "tpr": tpr, "auc": float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))}

