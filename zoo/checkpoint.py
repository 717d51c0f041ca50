"""Checkpoints: weights and plain data only, loaded with ``torch.load(weights_only=True)``.

A checkpoint never pickles code, so loading one cannot run anything. It holds
what ``zoo export --checkpoint`` and ``zoo verify`` need to rebuild the model
through the registry and recompute the same held-out split.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

from zoo import files
from zoo.errors import ZooError, first_line
from zoo.registry import Registry, build, default_registry
from zoo.training import TrainConfig, TrainResult, require_torch

FORMAT = "zoo-checkpoint/1"


def save(result: TrainResult, path: str | os.PathLike) -> Path:
    """Write ``result`` to ``path`` atomically (a temporary file renamed into place)."""
    import torch

    import zoo

    path = Path(path)
    payload = {
        "format": FORMAT,
        "zoo_version": zoo.__version__,
        "model": result.built.spec.name,
        "policy": result.policy.name,
        "model_config": dict(result.built.config),
        "state_dict": {k: v.detach().cpu() for k, v in result.module.state_dict().items()},
        "data": result.data,
        "class_labels": list(result.class_labels),
        "train_config": asdict(result.config),
        "metrics": result.metrics,
    }
    files.atomic_write(path, lambda handle: torch.save(payload, handle))
    return path


def load(path: str | os.PathLike, registry: Registry | None = None) -> TrainResult:
    """Rebuild a trained model from a checkpoint: registry, weights, and the same data split."""
    require_torch()
    import torch

    from zoo.data import load_source, split

    path = Path(path)
    if not path.is_file():
        raise ZooError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ZooError(
            f"cannot load checkpoint {path}: {first_line(exc, 200)} (zoo loads weights only, never pickled code)"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ZooError(f"{path} is not a zoo checkpoint (expected format {FORMAT})")
    registry = registry or default_registry()
    config = TrainConfig(**payload["train_config"])
    built = build(payload["model"], policy=payload["policy"], registry=registry,
                  **payload["model_config"])
    try:
        built.module.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ZooError(f"{path}: weights do not fit model {payload['model']!r}: {exc}") from None
    built.module.eval()
    dataset = load_source(payload["data"], registry)
    result = TrainResult(built, payload["data"], tuple(payload["class_labels"]),
                         split(dataset, config.holdout, config.seed), config, payload["metrics"])
    return result


def finish_training(result: TrainResult, output: str) -> dict:
    """Rank 0's last step of a distributed ``zoo train``: write the checkpoint, report back."""
    save(result, output)
    return {"describe": result.describe(), "metrics": result.metrics, "checkpoint": str(output)}
