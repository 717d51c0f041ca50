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

import json
import os
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

import zoo
from zoo import files
from zoo.data import Split, TableDataset, load_source, split
from zoo.errors import DataError, ZooError, first_line
from zoo.registry import Registry, build, default_registry
from zoo.specs import resolve
from zoo.tables import Frame
from zoo.tables.encoding import encode, frame
from zoo.tables.features import Features, TableOptions
from zoo.training import TrainConfig, TrainResult, evaluate, require_torch

FORMAT = "zoo-checkpoint/2"
READABLE = ("zoo-checkpoint/1", FORMAT)
#: Held-out rows kept in a checkpoint at most; beyond, a seeded sample of this many.
MAX_HELD_OUT = 10_000


def save(result: TrainResult, path: str | os.PathLike) -> Path:
    """Write ``result`` to ``path`` atomically (a temporary file, fsynced, renamed into place)."""
    import torch

    path = Path(path)
    split = result.split
    keep = np.arange(len(split.y_test))
    if len(keep) > MAX_HELD_OUT:
        keep = np.sort(np.random.default_rng(result.config.seed).choice(len(keep), MAX_HELD_OUT, replace=False))
    held_out = replace(split, X_test=split.X_test[keep], y_test=split.y_test[keep],
                       raw_test=None if split.raw_test is None else split.raw_test[keep])
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
    if split.features is not None:  # a table model: what it was fitted on, and the held-out rows as its columns
        payload["features"] = json.dumps(split.features.to_dict())
        payload["table_options"] = json.dumps(asdict(result.table_options or TableOptions()))
        payload["held_out"]["columns"] = {
            name: values.reshape(-1).tolist() if values.dtype == object else torch.from_numpy(values.reshape(-1))
            for name, values in held_out.raw_test.columns.items()}
    files.atomic_write(path, lambda handle: torch.save(payload, handle))
    return path


def read(path: str | os.PathLike) -> dict:
    """The checkpoint's payload, refused with one line when it is not a zoo checkpoint."""
    require_torch()
    import torch

    path = Path(path)
    if not path.is_file():
        raise ZooError(f"checkpoint {path} does not exist" if not path.exists() else
                       f"checkpoint {path} is not a regular file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ZooError(f"cannot load checkpoint {path}: {_why(exc)}") from None
    if not isinstance(payload, dict) or payload.get("format") not in READABLE:
        raise ZooError(f"{path} is not a zoo checkpoint (expected format {' or '.join(READABLE)})")
    _check_payload(payload, path)
    return payload


def _why(exc: Exception) -> str:
    """torch's own reason, in one line: for a pickled object, the line naming what it refused to unpickle
    (its message opens with paragraphs of advice, and ends with a link)."""
    import pickle

    if isinstance(exc, pickle.UnpicklingError):
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        named = next((line for line in lines if "GLOBAL" in line or "Unsupported" in line), None)
        if named is not None:
            return (f"it holds pickled objects, which zoo never unpickles (torch: {named[:500]}); "
                    "zoo writes checkpoints of weights and plain data only")
    return f"{first_line(exc, 500)} (zoo loads weights and plain data only, never pickled code)"


#: What each field of a checkpoint must be: a malformed one is refused in one line, before any use.
_FIELDS = {"model": str, "policy": str, "model_config": dict, "state_dict": dict, "class_labels": list,
           "train_config": dict, "metrics": dict}


def _check_payload(payload: dict, path: Path) -> None:
    import torch

    for key, kind in _FIELDS.items():
        if not isinstance(payload.get(key), kind):
            raise ZooError(f"{path}: {key} is {type(payload.get(key)).__name__}, not a {kind.__name__}: "
                           "not a checkpoint zoo wrote")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in payload["state_dict"].items()):
        raise ZooError(f"{path}: state_dict must map names to tensors")
    if not all(isinstance(k, str) and (v is None or isinstance(v, (bool, int, float, str)))
               for k, v in payload["model_config"].items()):
        raise ZooError(f"{path}: model_config must map names to plain values")
    if not all(isinstance(c, str) for c in payload["class_labels"]):
        raise ZooError(f"{path}: class_labels must be strings")


def _fits(payload: dict, registry: Registry, path: Path) -> None:
    """Refuse a config that does not describe the weights, before any memory is spent on it: the model is
    built first on torch's meta device (shapes without storage), and its weights' shapes must be the
    checkpoint's (a config declaring 400M hidden units would otherwise allocate 100s of GB)."""
    import torch

    spec = registry.get("model", payload["model"])
    try:
        config = spec.config(payload["model_config"])
        with torch.device("meta"):
            probe = resolve(spec.builder)(**config)
        want = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
    except Exception:  # a builder that cannot build on the meta device: the real build and its checks apply
        return
    got = {k: tuple(v.shape) for k, v in payload["state_dict"].items()}
    if want != got:
        name = next(iter(sorted(k for k in want.keys() | got.keys() if want.get(k) != got.get(k))))
        raise ZooError(f"{path}: model_config does not describe its weights ({name}: the config makes "
                       f"{want.get(name, 'nothing')}, the checkpoint holds {got.get(name, 'nothing')}): "
                       "not a checkpoint zoo wrote, or it was edited")


def load(path: str | os.PathLike, registry: Registry | None = None) -> TrainResult:
    """Rebuild a trained model from a checkpoint alone: the registry's builder, the weights, the held-out rows."""

    path = Path(path)
    payload = read(path)
    registry = registry or default_registry()
    try:
        config = TrainConfig(**payload["train_config"])
    except TypeError as exc:
        raise ZooError(f"{path}: train_config is invalid ({exc})") from None
    _fits(payload, registry, path)
    built = build(payload["model"], policy=payload["policy"], registry=registry, **payload["model_config"])
    try:
        built.module.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ZooError(f"{path}: weights do not fit model {payload['model']!r}: {first_line(exc)}") from None
    built.module.eval()
    metrics = dict(payload["metrics"])
    if payload["format"] == "zoo-checkpoint/1":
            parts = split(load_source(payload["data"], registry), config.holdout, config.seed)
    else:
        held = payload["held_out"]
        X, y = held["X"].numpy(), held["y"].numpy()
        mean, scale = payload["normalization"]["mean"].numpy(), payload["normalization"]["scale"].numpy()
        features, raw = _table(payload, path, len(y))
        parts = Split(np.zeros((0, X.shape[1]), np.float32), np.zeros(0, np.int64), X, y, mean, scale, features, raw)
        if len(y) != held["rows_at_training"]:  # a sample: the claim is the accuracy on the rows kept
            metrics.update(holdout_accuracy=held["accuracy"], holdout_rows=len(y),
                           holdout_rows_at_training=held["rows_at_training"])
    return TrainResult(built, payload["data"], tuple(payload["class_labels"]), parts, config, metrics,
                       data_sha256=payload.get("data_sha256"), state=dict(payload.get("state") or {}),
                       feature_names=None if payload.get("feature_names") is None
                       else tuple(payload["feature_names"]), table_options=_table_options(payload, path))


def _table(payload: dict, path: Path, rows: int) -> tuple[Features | None, Frame | None]:
    """A table model's features record and held-out columns, each checked; (None, None) for a matrix model."""
    import torch

    if "features" not in payload:
        return None, None
    try:
        features = Features.from_dict(json.loads(payload["features"]), f"{path}")
    except (TypeError, ValueError, RecursionError, DataError) as exc:
        raise ZooError(f"{path}: its features record is not valid ({first_line(exc, 200)})") from None
    stored = payload["held_out"].get("columns")
    if not isinstance(stored, dict) or set(stored) != set(features.names):
        raise ZooError(f"{path}: its held-out columns are not the features' columns: not a checkpoint zoo wrote")
    columns = {}
    for feature in features.columns:
        values = stored[feature.name]
        if feature.kind == "numeric" and isinstance(values, torch.Tensor):
            values = values.numpy().astype(np.float32)
        elif feature.kind == "categorical" and isinstance(values, list) and all(isinstance(v, str) for v in values):
            values = np.array(values, dtype=object)
        else:
            raise ZooError(f"{path}: held-out column {feature.name!r} is not {feature.kind}: not a checkpoint zoo "
                           "wrote")
        if len(values) != rows:
            raise ZooError(f"{path}: held-out column {feature.name!r} has {len(values)} rows for {rows} labels")
        columns[feature.name] = values.reshape(-1, 1)
    return features, Frame(columns)


def _table_options(payload: dict, path: Path) -> TableOptions | None:
    if "table_options" not in payload:
        return None
    try:
        return TableOptions.from_dict(json.loads(payload["table_options"]))
    except (TypeError, ValueError, RecursionError) as exc:
        raise ZooError(f"{path}: its table options are not valid ({first_line(exc, 200)})") from None


def on_data(result: TrainResult, source: str, registry: Registry | None = None) -> TrainResult:
    """``result`` measured on other data: every row of ``source`` is held out, standardized with the
    statistics fitted at training; the trainer's accuracy is re-measured there, in torch."""

    dataset = load_source(source, registry, result.table_options if result.split.features is not None else None)
    width = result.built.config["input_size"]
    if isinstance(dataset, TableDataset) != (result.split.features is not None):
        raise ZooError(f"{source} is {'a table' if isinstance(dataset, TableDataset) else 'no table'}, but the model "
                       f"was trained on {'one' if result.split.features is not None else 'a matrix'}")
    if isinstance(dataset, TableDataset):
        return _on_table(result, dataset, source)
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


def _on_table(result: TrainResult, dataset: TableDataset, source: str) -> TrainResult:
    """A table model measured on every row of another table: encoded with the statistics fitted at training, its
    classes mapped to the model's by name."""
    features = result.split.features
    missing = [n for n in features.names if n not in dataset.table.table.column_names]
    if missing:
        raise ZooError(f"{source} lacks the feature column {missing[0]!r} the model was trained on")
    known = {label: n for n, label in enumerate(result.class_labels)}
    unknown = [c for c in dataset.class_labels if c not in known]
    if unknown:
        raise ZooError(f"{source} has class {unknown[0]!r}, which the model does not know (its classes: "
                       f"{', '.join(result.class_labels)})")
    y = np.array([known[c] for c in dataset.class_labels], np.int64)[dataset.y]
    table = dataset.table.table
    width = result.built.config["input_size"]
    parts = Split(np.zeros((0, width), np.float32), np.zeros(0, np.int64), encode(features, table), y,
                  result.split.mean, result.split.scale, features, frame(features, table))
    evaluated = replace(result, split=parts)
    evaluated.metrics = {**result.metrics, **evaluate(evaluated), "evaluated_on": source}
    return evaluated


def finish_training(result: TrainResult, output: str) -> dict:
    """Rank 0's last step of a distributed ``zoo train``: write the checkpoint, report back."""
    save(result, output)
    return {"describe": result.describe(), "metrics": result.metrics, "checkpoint": str(output)}
