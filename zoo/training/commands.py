"""``zoo train``: a core command, joined to the CLI through the command hook like any plugin's.

Listed among the default plugins, so the hook's first user is zoo itself; its module is imported with the
plugin manager, so it is light (click and zoo's options); the training runs inside the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from zoo import files, hookimpl
from zoo import options as shared
from zoo.cli.console import echo_json, say
from zoo.registry import default_registry


@click.command()
@click.argument("name")
@shared.training_options
@shared.distributed_options
@click.option("-o", "--output", type=click.Path(path_type=Path), metavar="FILE",
              help="Checkpoint to write [default: checkpoints/NAME.pt].")
@click.option("--force", is_flag=True, help="Replace an existing checkpoint.")
@click.option("--resume", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="Go on training this checkpoint for --epochs more epochs (same data, settings and state).")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def train(name: str, output: Path | None, force: bool, resume: Path | None, as_json: bool, **options: Any) -> None:
    """Train model NAME briefly and save a self-contained, weights-only checkpoint.

    The checkpoint holds the weights, the standardization, the held-out rows,
    the data's sha256 and the optimizer state: `zoo export NAME --checkpoint
    FILE` needs nothing else, and `zoo train NAME --resume FILE` goes on.
    """
    from zoo.training import checkpoint  # deferred: it imports numpy and the data readers; zoo --help must not
    default_registry().get("model", name)
    output = output or Path("checkpoints") / f"{name}.pt"
    files.check_target(output, force=force, directory=False)
    previous = None
    if resume is not None:
        shared.refuse(shared.given("policy", "hidden_size", "lr", "batch_size", "seed", "holdout", "stream",
                                   "shuffle_buffer", "nproc_per_node",
                                   "nnodes", "node_rank", "rdzv_endpoint"),
                      "with --resume (training goes on with the checkpoint's own)")
        shared.import_torch()
        previous = checkpoint.load(resume)
        if previous.built.spec.name != name:
            raise click.UsageError(f"{resume} holds model {previous.built.spec.name!r}, not {name!r}")
        if not previous.state:
            raise click.UsageError(f"{resume} has no training state to resume (an older checkpoint): train anew")
    options, scale = shared.split_options(options)
    if previous is not None:
        result = shared.train_from_options(name, options, progress=not as_json, resume=previous)
        checkpoint.save(result, output)
        describe, metrics = result.describe(), result.metrics
    elif shared.scaled(scale):
        answer = shared.launch_from_options(name, options, scale, "zoo.training.checkpoint:finish_training",
                                     {"output": str(output)}, notes=not as_json)
        describe, metrics = answer["describe"], answer["metrics"]
    else:
        result = shared.train_from_options(name, options, progress=not as_json)
        checkpoint.save(result, output)
        describe, metrics = result.describe(), result.metrics
    if as_json:
        echo_json({"model": name, "checkpoint": str(output), "metrics": metrics})
        return
    say(describe)
    say(f"wrote {output}")


@hookimpl
def register_commands(cli):
    cli.add_command(train)
