"""``zoo train``: a core command, imported only when it is asked for (see ``ZooGroup``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from zoo.cli import echo_json, say
from zoo.options import (
    distributed_options,
    launch_from_options,
    scaled,
    split_options,
    train_from_options,
    training_options,
)


@click.command()
@click.argument("name")
@training_options
@distributed_options
@click.option("-o", "--output", type=click.Path(path_type=Path), metavar="FILE",
              help="Checkpoint to write [default: checkpoints/NAME.pt].")
@click.option("--force", is_flag=True, help="Replace an existing checkpoint.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def train(name: str, output: Path | None, force: bool, as_json: bool, **options: Any) -> None:
    """Train model NAME briefly and save a weights-only checkpoint.

    The checkpoint feeds `zoo export NAME --checkpoint FILE`.
    """
    from zoo import checkpoint, files
    from zoo.registry import default_registry

    default_registry().get("model", name)
    output = output or Path("checkpoints") / f"{name}.pt"
    files.check_target(output, force=force, directory=False)
    options, scale = split_options(options)
    if scaled(scale):
        answer = launch_from_options(name, options, scale, "zoo.checkpoint:finish_training",
                                     {"output": str(output)})
        describe, metrics = answer["describe"], answer["metrics"]
    else:
        result = train_from_options(name, options, progress=not as_json)
        checkpoint.save(result, output)
        describe, metrics = result.describe(), result.metrics
    if as_json:
        echo_json({"model": name, "checkpoint": str(output), "metrics": metrics})
        return
    say(describe)
    say(f"wrote {output}")
