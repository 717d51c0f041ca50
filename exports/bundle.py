"""The bundle ``zoo export`` writes, and how it gets onto disk without losing anything.

``DIR/`` holds ``model.onnx`` (raw features in, ``probabilities`` and ``label``
out), ``checkpoint.pt`` (weights only, for ``zoo verify`` and re-export) and
``report.json`` (model, policy, data, training metrics, parity). Everything is
written into a staging directory beside the target; only when every executed
parity check passed is it swapped in by renames, the previous bundle kept
until the new one is in place. A failed or interrupted run leaves the target
as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from zoo import files

MODEL_FILE = "model.onnx"
CHECKPOINT_FILE = "checkpoint.pt"
REPORT_FILE = "report.json"


def check_target(target: Path, force: bool) -> None:
    """Refuse a bundle directory that cannot or must not be written, before any work is done."""
    files.check_target(target, force=force, directory=True)


def _existing_ancestor(path: Path) -> Path:
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path(".")


@contextmanager
def staging(target: Path):
    """A fresh directory on the target's file system; removed if the block raises."""
    directory = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=_existing_ancestor(target)))
    try:
        yield directory
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def commit(staged: Path, target: Path) -> None:
    """Swap ``staged`` in at ``target``; the old ``target`` survives until the new one is there."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        os.replace(staged, target)
        return
    backup = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(target, backup)
    try:
        os.replace(staged, target)
    except BaseException:
        os.replace(backup, target)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")


def onnx_metadata(result, *, exporter: str, opset: int) -> dict[str, str]:
    """The metadata props every zoo export carries (read back by ``zoo verify``)."""
    import onnx
    import torch

    import zoo

    return {
        "zoo.version": zoo.__version__,
        "zoo.model": result.built.spec.name,
        "zoo.policy": result.policy.name,
        "zoo.head": result.policy.head,
        "zoo.decision": result.policy.decision,
        "zoo.threshold": str(result.policy.threshold),
        "zoo.num_classes": str(len(result.class_labels)),
        "zoo.class_labels": json.dumps(list(result.class_labels)),
        "zoo.input_size": str(result.built.config["input_size"]),
        "zoo.dataset": result.data,
        "zoo.holdout_accuracy": f"{result.metrics.get('holdout_accuracy', float('nan')):.6f}",
        "zoo.seed": str(result.config.seed),
        "zoo.opset": str(opset),
        "zoo.exporter": exporter,
        "torch.version": torch.__version__,
        "onnx.version": onnx.__version__,
    }


def build_report(result, parity, *, exporter: str, opset: int) -> dict[str, Any]:
    import zoo
    from zoo.exports.onnx import INPUT_NAME, output_names

    metrics = {k: v for k, v in result.metrics.items() if k != "loss_history"}
    return {
        "zoo_version": zoo.__version__,
        "verified": parity.passed,
        "model": result.built.spec.name,
        "model_config": dict(result.built.config),
        "policy": result.policy.describe(),
        "data": result.data,
        "class_labels": list(result.class_labels),
        "training": {"config": asdict(result.config), "metrics": metrics},
        "onnx": {
            "file": MODEL_FILE,
            "exporter": exporter,
            "opset": opset,
            "input": {"name": INPUT_NAME, "shape": ["batch", result.built.config["input_size"]],
                      "dtype": "float32"},
            "outputs": list(output_names(result.policy)),
        },
        "parity": parity.to_dict(),
    }
