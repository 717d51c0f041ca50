"""The bundle ``zoo export`` writes, and how it gets onto disk without losing anything.

``DIR/`` holds:

- ``model.onnx``: raw features in; ``logits``, ``probabilities``, ``label`` out;
- ``manifest.json``: what the model expects and outputs, class labels, the
  normalization baked in, training data and metrics, the sha256 of
  ``model.onnx``, the tolerances and the parity report;
- ``test_data_set_N/``: ``input_0.pb`` and one ``output_K.pb`` per output, in the
  ONNX Model Zoo layout: the independent reference's outputs
  (:mod:`zoo.exports.oracle`) for batch 1, an odd batch, every held-out row and
  edge inputs, for ``zoo verify`` to replay without torch;
- ``checkpoint.pt``: weights only, for re-export.

Everything is written into a staging directory beside the target, with the
target locked; only when every runtime that ran passed is it fsynced and
swapped in by one atomic exchange. A failed, interrupted or killed run leaves
the target as it was (see :mod:`zoo.files`).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from zoo import files
from zoo.exports.manifest import FILE as MANIFEST_FILE  # noqa: F401 (re-exported)
from zoo.exports.manifest import Files, Manifest, Output

if TYPE_CHECKING:
    import numpy as np

    from zoo.exports.compare import Rule

MODEL_FILE = "model.onnx"
CHECKPOINT_FILE = "checkpoint.pt"
CARD_FILE = "report.html"  # made from the bundle, after the manifest; zoo never reads it


def check_target(target: Path, force: bool) -> None:
    """Refuse a bundle directory that cannot or must not be written, before any work is done."""
    files.check_target(target, force=force, directory=True)


def staging(target: Path):
    """The target locked and a fresh directory beside it to fill (see :func:`zoo.files.staged_directory`)."""
    return files.staged_directory(target)


def commit(staged: Path, target: Path) -> None:
    """Swap ``staged`` in at ``target`` in one step, durably; the old ``target`` survives until then."""
    files.replace_directory(staged, target)


def write_manifest(path: Path, manifest: Manifest) -> None:
    """``manifest.json`` beside the bundle's other files, whose sizes and sha256 it records: each read of one is
    bounded by its size and checked against its hash."""
    import json

    from zoo.exports.reading import inventory

    manifest.bytes, digests = inventory(path.parent, leave_out=(path.name, CARD_FILE))
    manifest.sha256.update(digests)
    path.write_text(json.dumps(manifest.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")


def onnx_metadata(result, *, exporter: str, opset: int) -> dict[str, str]:
    """The metadata props every zoo export carries (read back by ``zoo verify``)."""
    import json

    import onnx
    import torch

    import zoo

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
        **({"zoo.feature_names": json.dumps(list(result.feature_names))} if result.feature_names else {}),
        "zoo.dataset": result.data,
        "zoo.holdout_accuracy": f"{result.metrics.get('holdout_accuracy', float('nan')):.6f}",
        "zoo.precision": "fp32",
        "zoo.seed": str(result.config.seed),
        "zoo.opset": str(opset),
        "zoo.exporter": exporter,
        "torch.version": torch.__version__,
        "onnx.version": onnx.__version__,
    }


def sha256(path: Path) -> str:
    from zoo.exports.reading import file_sha256

    return file_sha256(path)


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
    import numpy as np

    std = 1.0 / split.scale
    first = split.X_test[0]
    nan, inf = first.copy(), first.copy()
    nan[0], inf[-1] = np.nan, np.inf
    return np.stack([
        np.zeros_like(split.mean), split.mean,
        split.mean + 1e4 * std, split.mean - 1e4 * std,
        first * 1e4, first * -1e4, nan, inf,
    ]).astype(np.float32)


def test_inputs(split) -> list:
    """The test data sets' inputs: batch 1, an odd batch, every held-out row, edge inputs."""
    X = split.X_test
    return [X[:1], X[:min(7, len(X))], X, edge_inputs(split)]


def write_test_data(directory: Path, inputs: list, references: list[dict], input_name: str) -> list[str]:
    """Write ``test_data_set_N/input_0.pb`` and ``output_K.pb`` (the reference's outputs, in graph order)."""
    import numpy as np
    from onnx import numpy_helper

    written = []
    for n, (x, outputs) in enumerate(zip(inputs, references)):
        folder = directory / f"test_data_set_{n}"
        folder.mkdir()
        x = np.ascontiguousarray(x, dtype=np.float32)
        (folder / "input_0.pb").write_bytes(numpy_helper.from_array(x, input_name).SerializeToString())
        for k, (name, value) in enumerate(outputs.items()):
            (folder / f"output_{k}.pb").write_bytes(numpy_helper.from_array(value, name).SerializeToString())
        written.append(folder.name)
    return written


def build_manifest(result, parity, rules: list[Rule], *, model_path: Path, test_data: list[str], exporter: str,
                   opset: int) -> Manifest:
    """Everything a deployer needs to know about ``model.onnx``, how to re-check it, and the proof it was."""
    import onnx
    import onnxruntime
    import torch

    import zoo
    from zoo.exports.onnx import INPUT_NAME

    config, policy, labels = result.built.config, result.policy, list(result.class_labels)
    meanings = output_meanings(policy, labels)
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
               "feature_names": None if result.feature_names is None else list(result.feature_names)},
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
        sha256={model_path.name: sha256(model_path)},
        tolerance={"atol": parity.atol, "rtol": parity.rtol},
        parity=parity.to_dict(),
        verified=parity.passed,
    )
