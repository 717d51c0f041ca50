"""``zoo info``: a registered model, policy or dataset described, or an exported bundle in brief."""

from __future__ import annotations

from pathlib import Path

import click

from zoo.cli.console import echo_json
from zoo.errors import UnknownNameError
from zoo.exports.bundle.layout import CARD_FILE, MANIFEST_FILE
from zoo.registry import default_registry


def _bundle_info(path, as_json: bool) -> None:
    """A bundle's manifest in brief: what it is, how well it did, its variants and their deltas."""
    # Deferred: these import numpy and onnx; zoo --help and zoo info NAME must not pay for them.
    from zoo.exports.bundle.model import read_manifest
    from zoo.exports.variants.measure import table as variants_table

    manifest = read_manifest(path)
    metrics = manifest.training.get("metrics", {})
    names, table = manifest.input.get("feature_names"), manifest.table
    features = f"{manifest.input['shape'][1]}" + (f" named ({', '.join(names[:3])}, ...)" if names else "")
    if table is not None:
        kinds = [f.kind for f in table.columns]
        features = (f"{len(kinds)} columns ({kinds.count('numeric')} numeric, {kinds.count('categorical')} "
                    f"categorical: {', '.join(table.names[:3])}{', ...' if len(kinds) > 3 else ''}), "
                    f"{table.width} model inputs; target {table.target!r}")
    data = {"bundle": str(path), "model": manifest.model.get("name"), "policy": manifest.policy.get("name"),
            "data": manifest.training.get("data"), "classes": manifest.class_labels, "features": features,
            "held-out accuracy": metrics.get("holdout_accuracy"), "verified": manifest.verified,
            "card": str(path / CARD_FILE) if (path / CARD_FILE).is_file() else f"none (zoo report {path})",
            "variants": {name: v.to_dict() for name, v in manifest.variants.items()}}
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        if key != "variants":
            click.echo(f"{key}: {f'{value:.4f}' if isinstance(value, float) else value}")
    if manifest.variants:
        click.echo("variants:\n" + variants_table(manifest.variants))


@click.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(name: str, as_json: bool) -> None:
    """Describe a model, a loss policy or a dataset, or an exported bundle DIR (with its variants)."""
    if (Path(name) / MANIFEST_FILE).is_file():
        return _bundle_info(Path(name), as_json)
    registry = default_registry()
    for kind in ("model", "policy", "dataset"):
        if name in registry.names(kind):
            break
    else:
        raise UnknownNameError("model, policy or dataset", name, registry.names("model")
                               + registry.names("policy") + registry.names("dataset"))
    obj, owner = registry.get(kind, name), registry.owner(kind, name)
    if kind == "model":
        data = {"model": obj.name, "summary": obj.summary, "task": obj.task, "emits": obj.emits,
                "builder": obj.builder if isinstance(obj.builder, str) else repr(obj.builder),
                "hyperparameters": {k: ("from the data" if k in ("input_size", "num_classes") else v)
                                    for k, v in obj.hyperparameters.items()}, "dataset": obj.dataset,
                "registered by": owner, "policy": registry.get("policy", obj.policy).describe()}
    elif kind == "policy":
        data = {"policy": obj.name, **obj.describe(), "registered by": owner}
        data.pop("name")
    else:
        data = {"dataset": obj.name, "summary": obj.summary, "task": obj.task, "registered by": owner}
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        if isinstance(value, dict):
            click.echo(f"{key}:")
            for k, v in value.items():
                click.echo(f"  {k}: {v}")
        else:
            click.echo(f"{key}: {value}")
