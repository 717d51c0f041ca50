"""What the export side records of a trained model: the ONNX metadata props and the manifest."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

import zoo
from zoo.exports.bundle.layout import CHECKPOINT_FILE
from zoo.exports.bundle.manifest import Files, Manifest, Output
from zoo.exports.bundle.reading import file_sha256
from zoo.exports.bundle.rules import Rule
from zoo.exports.export.exporter import INPUT_NAME
from zoo.tables import Frame


def onnx_metadata(result, *, exporter: str, opset: int) -> dict[str, str]:
    """The metadata props every zoo export carries (read back by ``zoo verify``)."""
    import onnx
    import torch

    threshold = {"zoo.threshold": str(result.policy.threshold)} if result.policy.decision == "threshold" else {}
    return {
        "zoo.version": zoo.__version__,
        "zoo.model": result.built.spec.name,
        "zoo.policy": result.policy.name,
        "zoo.head": result.policy.head,
        "zoo.decision": result.policy.decision,
        **threshold,
        "zoo.num_classes": str(len(result.class_labels)),
        "zoo.class_labels": json.dumps(list(result.class_labels)),
        "zoo.input_size": str(result.built.config["input_size"]),
        **({"zoo.features": json.dumps(result.split.features.to_dict())} if result.split.features is not None else
           {"zoo.feature_names": json.dumps(list(result.feature_names))} if result.feature_names else {}),
        "zoo.dataset": result.data,
        "zoo.holdout_accuracy": f"{result.metrics.get('holdout_accuracy', float('nan')):.6f}",
        "zoo.precision": "fp32",
        "zoo.seed": str(result.config.seed),
        "zoo.opset": str(opset),
        "zoo.exporter": exporter,
        "torch.version": torch.__version__,
        "onnx.version": onnx.__version__,
    }


def output_meanings(policy, class_labels) -> dict[str, str]:
    if policy.head == "softmax":
        return {
            "logits": "raw scores, one per class (before the softmax)",
            "probabilities": "softmax over the classes, in class_labels order; each row sums to 1",
            "label": "argmax of probabilities: an index into class_labels; -1 for a row with a NaN or infinite "
                     "feature",
        }
    positive = class_labels[1] if len(class_labels) > 1 else "1"
    return {
        "logits": f"one raw score (logit) for class {positive!r}",
        "probabilities": f"sigmoid of the logit: the probability of class {positive!r}",
        "label": f"1 ({positive!r}) where probabilities >= threshold, else 0; -1 for a row with a NaN or "
                 "infinite feature",
    }


def edge_inputs(split) -> np.ndarray:
    """Inputs at the edges: zeros, the training mean, rows pushed to +-1e4 standard deviations, and rows
    with a NaN and an infinite feature (whose label must be -1)."""
    std = 1.0 / split.scale
    first = split.X_test[0]
    nan, inf = first.copy(), first.copy()
    nan[0], inf[-1] = np.nan, np.inf
    return np.stack([
        np.zeros_like(split.mean), split.mean,
        split.mean + 1e4 * std, split.mean - 1e4 * std,
        first * 1e4, first * -1e4, nan, inf,
    ]).astype(np.float32)


#: A category no table is expected to hold: an edge input's unseen category.
UNSEEN = "zoo: a category not seen in training"


def edge_frame(split):
    """A table model's edge inputs, as its columns: the first held-out row; every cell a gap; every category one
    the training rows never had; numbers pushed to +-1e4 standard deviations of the training rows, and to zero;
    and an infinite number (whose label must be -1)."""
    first = split.raw_test[:1]
    features, std = split.features, 1.0 / split.scale.astype(np.float64)
    rows = 7
    columns, infinite = {}, False  # the last row: an infinity in the first numeric column
    for feature, at in zip(features.columns, features.offsets):
        value = first.columns[feature.name][0, 0]
        if feature.kind == "numeric":
            spread, median = float(std[at]), feature.median
            last = value if infinite else np.inf
            infinite = True
            column = np.array([value, np.nan, value, median + 1e4 * spread, median - 1e4 * spread, 0.0, last],
                              dtype=np.float64)
            columns[feature.name] = column.astype(np.float32).reshape(-1, 1)
        else:
            cells = [value, "", UNSEEN, value, value, feature.categories[0] if feature.categories else "", value]
            columns[feature.name] = np.array(cells, dtype=object).reshape(rows, 1)
    return Frame(columns)


def test_inputs(split) -> list:
    """The test data sets' inputs: batch 1, an odd batch, every held-out row, edge inputs (a table model's as its
    columns)."""
    if split.features is not None:
        X = split.raw_test
        return [X[:1], X[:min(7, len(X))], X, edge_frame(split)]
    X = split.X_test
    return [X[:1], X[:min(7, len(X))], X, edge_inputs(split)]


def build_manifest(result, parity, rules: list[Rule], *, model_path: Path, test_data: list[str], exporter: str,
                   opset: int) -> Manifest:
    """Everything a deployer needs to know about ``model.onnx``, how to re-check it, and the proof it was."""
    import onnx
    import onnxruntime
    import torch

    config, policy, labels = result.built.config, result.policy, list(result.class_labels)
    features = result.split.features
    meanings = output_meanings(policy, labels)
    if features is not None:  # a gap is filled in the graph: only an infinite number leaves a row without a class
        meanings["label"] = meanings["label"].replace("a NaN or infinite feature", "an infinite number")
    width = policy.output_width(len(labels))
    shapes = {"logits": ["batch", width], "probabilities": ["batch", width], "label": ["batch"]}
    metrics = {k: v for k, v in result.metrics.items() if k not in ("loss_history", "history")}
    runtimes = {c.runtime: c.version for c in parity.cells if c.status != "skipped"}  # those that ran parity
    return Manifest(
        versions={"zoo": zoo.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
                  "torch": torch.__version__, "opset": opset, "exporter": exporter, "runtimes": runtimes},
        model={"name": result.built.spec.name, "config": dict(config)},
        policy=policy.describe(),
        input={"name": INPUT_NAME, "shape": ["batch", config["input_size"]], "dtype": "float32",
               "meaning": "raw features, one row per sample; the normalization below is applied inside",
               "feature_names": None if result.feature_names is None or features is not None else
               list(result.feature_names)},
        features=None if features is None else features.to_dict(),
        outputs=[Output(r.output, shapes[r.output], "int64" if r.output == "label" else "float32",
                        meanings[r.output], r) for r in rules],
        class_labels=labels,
        decision=policy.decision,
        threshold=policy.threshold if policy.decision == "threshold" else None,
        normalization={"baked_in": True, "formula": "(x - mean) * scale",
                       "mean": [float(v) for v in result.split.mean],
                       "scale": [float(v) for v in result.split.scale]},
        training={"data": result.data, "seed": result.config.seed, "config": asdict(result.config),
                  "metrics": metrics, "history": result.metrics.get("history")},
        files=Files(model_path.name, CHECKPOINT_FILE, test_data),
        sha256={model_path.name: file_sha256(model_path)},
        tolerance={"atol": parity.atol, "rtol": parity.rtol},
        parity=parity.to_dict(),
        verified=parity.passed,
    )
