"""Checkpoints: weights and plain data only, loaded with ``torch.load(weights_only=True)``.

A checkpoint never pickles code, so loading one cannot run anything. It is
self-contained (format ``zoo-checkpoint/2``): the weights, the model's config
and policy, the class labels, the standardization fitted at training, the
held-out rows (up to :data:`MAX_HELD_OUT` of them, a seeded sample beyond) and
the trainer's accuracy on exactly those rows, the sha256 of the training data,
and the epoch, optimizer and shuffling state for ``zoo train --resume``.
``zoo export --checkpoint`` reads nothing else. Format 1 checkpoints (which
kept none of the data) are still read, by recomputing the split from the data
source, whose changes the accuracy check at export then catches.
"""

from __future__ import annotations

import os
from dataclasses import asdict, replace
from pathlib import Path

from zoo import files
from zoo.errors import ZooError, first_line
from zoo.registry import Registry, build, default_registry
from zoo.training import TrainConfig, TrainResult, require_torch

FORMAT = "zoo-checkpoint/2"
READABLE = ("zoo-checkpoint/1", FORMAT)
#: Held-out rows kept in a checkpoint at most; beyond, a seeded sample of this many.
MAX_HELD_OUT = 10_000


def save(result: TrainResult, path: str | os.PathLike) -> Path:
    """Write ``result`` to ``path`` atomically (a temporary file, fsynced, renamed into place)."""
    import numpy as np
    import torch

    import zoo
    from zoo.training import evaluate

    path = Path(path)
    split = result.split
    keep = np.arange(len(split.y_test))
    if len(keep) > MAX_HELD_OUT:
        keep = np.sort(np.random.default_rng(result.config.seed).choice(len(keep), MAX_HELD_OUT, replace=False))
    held_out = replace(split, X_test=split.X_test[keep], y_test=split.y_test[keep])
    accuracy = evaluate(replace(result, split=held_out))["holdout_accuracy"]
    payload = {
        "format": FORMAT,
        "zoo_version": zoo.__version__,
        "model": result.built.spec.name,
        "policy": result.policy.name,
        "model_config": dict(result.built.config),
        "state_dict": {k: v.detach().cpu() for k, v in result.module.state_dict().items()},
        "data": result.data,
        "data_sha256": result.data_sha256,
        "class_labels": list(result.class_labels),
        "feature_names": None if result.feature_names is None else list(result.feature_names),
        "train_config": asdict(result.config),
        "metrics": result.metrics,
        "normalization": {"mean": torch.from_numpy(np.asarray(split.mean, np.float32).copy()),
                          "scale": torch.from_numpy(np.asarray(split.scale, np.float32).copy())},
        "held_out": {"X": torch.from_numpy(np.ascontiguousarray(held_out.X_test, np.float32)),
                     "y": torch.from_numpy(np.ascontiguousarray(held_out.y_test, np.int64)),
                     "rows_at_training": len(split.y_test), "accuracy": accuracy},
        "state": result.state,
    }
    files.atomic_write(path, lambda handle: torch.save(payload, handle))
    return path


def read(path: str | os.PathLike) -> dict:
    """The checkpoint's payload, refused with one line when it is not a zoo checkpoint."""
    require_torch()
    import torch

    path = Path(path)
    if not path.is_file():
        raise ZooError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ZooError(
            f"cannot load checkpoint {path}: {first_line(exc, 200)} (zoo loads weights only, never pickled code)"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") not in READABLE:
        raise ZooError(f"{path} is not a zoo checkpoint (expected format {' or '.join(READABLE)})")
    return payload


def load(path: str | os.PathLike, registry: Registry | None = None) -> TrainResult:
    """Rebuild a trained model from a checkpoint alone: the registry's builder, the weights, the held-out rows."""
    import numpy as np

    from zoo.data import Split

    path = Path(path)
    payload = read(path)
    registry = registry or default_registry()
    config = TrainConfig(**payload["train_config"])
    built = build(payload["model"], policy=payload["policy"], registry=registry, **payload["model_config"])
    try:
        built.module.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ZooError(f"{path}: weights do not fit model {payload['model']!r}: {first_line(exc)}") from None
    built.module.eval()
    metrics = dict(payload["metrics"])
    if payload["format"] == "zoo-checkpoint/1":
        from zoo.data import load_source, split

        parts = split(load_source(payload["data"], registry), config.holdout, config.seed)
    else:
        held = payload["held_out"]
        X, y = held["X"].numpy(), held["y"].numpy()
        mean, scale = payload["normalization"]["mean"].numpy(), payload["normalization"]["scale"].numpy()
        parts = Split(np.zeros((0, X.shape[1]), np.float32), np.zeros(0, np.int64), X, y, mean, scale)
        if len(y) != held["rows_at_training"]:  # a sample: the claim is the accuracy on the rows kept
            metrics.update(holdout_accuracy=held["accuracy"], holdout_rows=len(y),
                           holdout_rows_at_training=held["rows_at_training"])
    return TrainResult(built, payload["data"], tuple(payload["class_labels"]), parts, config, metrics,
                       data_sha256=payload.get("data_sha256"), state=dict(payload.get("state") or {}),
                       feature_names=None if payload.get("feature_names") is None
                       else tuple(payload["feature_names"]))


def on_data(result: TrainResult, source: str, registry: Registry | None = None) -> TrainResult:
    """``result`` measured on other data: every row of ``source`` is held out, standardized with the
    statistics fitted at training; the trainer's accuracy is re-measured there, in torch."""
    import numpy as np

    from zoo.data import Split, load_source
    from zoo.training import evaluate

    dataset = load_source(source, registry)
    width = result.built.config["input_size"]
    if dataset.X.shape[1] != width:
        raise ZooError(f"{source} has {dataset.X.shape[1]} features; the model takes {width}")
    classes = len(result.class_labels)
    if dataset.y.max() >= classes:
        raise ZooError(f"{source} has label {dataset.y.max()}; the model knows {classes} classes")
    parts = Split(np.zeros((0, width), np.float32), np.zeros(0, np.int64), dataset.X, dataset.y,
                  result.split.mean, result.split.scale)
    evaluated = replace(result, split=parts)  # ``data`` stays the training data: what the model learned from
    evaluated.metrics = {**result.metrics, **evaluate(evaluated), "evaluated_on": source}
    return evaluated


def finish_training(result: TrainResult, output: str) -> dict:
    """Rank 0's last step of a distributed ``zoo train``: write the checkpoint, report back."""
    save(result, output)
    return {"describe": result.describe(), "metrics": result.metrics, "checkpoint": str(output)}
