"""Options that several commands share, for the core and for plugins: training and scale-out.

A plugin's command that trains applies :func:`training_options` and calls
:func:`train_from_options`, as ``zoo train`` and ``zoo export`` do (datasette's
``publish/common.py`` is the model). Imported only by commands that train, so
``zoo list`` never pays for it.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from zoo.cli import import_without_collections
from zoo.cli.console import say, verbosity
from zoo.tables import MAX_CATEGORIES, MISSING
from zoo.training import fit, require_torch, resolve_device
from zoo.training.config import MAX_SEED, TrainConfig
from zoo.training.distributed import launch

DEFAULTS = TrainConfig()


def training_options(function):
    """The options every command that trains takes (``train``, ``export``; plugins may reuse them)."""
    options = [
        click.option("--policy", metavar="NAME", help="Loss policy [default: the model's own]."),
        click.option("--data", metavar="SOURCE",
                     help="A dataset name, a table (.parquet, a directory or glob of them, .arrow, .feather, .csv), "
                          "an .npz file, or synthetic:ROWSxFEATURES[xCLASSES] [default: the model's dataset]."),
        click.option("--target", metavar="COLUMN", help="The table's class column [default: the one column named "
                     "target, label, class or y]."),
        click.option("--features", metavar="A,B,...", help="The table's feature columns, exactly these [default: "
                     "every other column]."),
        click.option("--ignore", metavar="A,B", help="Columns of the table to leave out."),
        click.option("--id-column", metavar="COLUMN", help="The table's row id: never a feature."),
        click.option("--max-categories", type=click.IntRange(min=1), default=MAX_CATEGORIES, show_default=True,
                     help="A string column with more distinct values is refused, not one-hot encoded."),
        click.option("--missing", type=click.Choice(MISSING), default="impute", show_default=True,
                     help="A gap: imputed (numbers: the training median; categories: a level), or refused."),
        click.option("--epochs", type=click.IntRange(min=1), default=DEFAULTS.epochs, show_default=True),
        click.option("--hidden-size", type=click.IntRange(min=1), help="Hidden units [default: the model's]."),
        click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=DEFAULTS.lr,
                     show_default=True, help="Adam learning rate."),
        click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULTS.batch_size, show_default=True),
        click.option("--seed", type=click.IntRange(0, MAX_SEED), default=DEFAULTS.seed, show_default=True,
                     help="Seeds the split, the initial weights and the shuffling."),
        click.option("--holdout", type=click.FloatRange(0, 1, min_open=True, max_open=True),
                     default=DEFAULTS.holdout, show_default=True, help="Fraction of each class held out."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=DEFAULTS.device,
                     show_default=True, help="Where to train; auto takes CUDA when torch sees a GPU."),
        click.option("--stream/--no-stream", default=None,
                     help="Read a Parquet or Arrow table in pieces, or whole [default: in pieces when it would take "
                          "more than a quarter of the memory available]."),
        click.option("--shuffle-buffer", type=click.IntRange(min=1), default=DEFAULTS.shuffle_buffer,
                     show_default=True, metavar="ROWS", help="Rows a streamed epoch shuffles at once."),
        click.option("--threads", type=click.IntRange(min=1), metavar="N",
                     help="torch's intra-op threads [default: 1 for a small model, else the cores]."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def distributed_options(function):
    """Scale-out options of ``train`` and ``export`` (torch's elastic launcher, as ``torchrun``)."""
    options = [
        click.option("--nproc-per-node", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Worker processes on this machine (DistributedDataParallel; gloo on CPU, NCCL on CUDA)."),
        click.option("--nnodes", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Machines taking part; more than 1 needs --rdzv-endpoint."),
        click.option("--node-rank", type=click.IntRange(min=0), default=0, show_default=True,
                     help="This machine's rank among --nnodes (0 hosts the rendezvous)."),
        click.option("--rdzv-endpoint", metavar="HOST:PORT", help="Rendezvous address of node 0."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(training options, distributed options) from a command's keyword arguments."""
    keys = ("nproc_per_node", "nnodes", "node_rank", "rdzv_endpoint")
    return {k: v for k, v in options.items() if k not in keys}, {k: options.pop(k) for k in keys if k in options}


def import_torch() -> None:
    """Check for torch and import it for the command, without the collector's sweeps (the command owns its
    process: see :func:`zoo.cli.import_without_collections`)."""
    require_torch()
    import_without_collections("torch")


def launch_from_options(name: str, options: dict[str, Any], scale: dict[str, Any], finish: str,
                        finish_args: dict[str, Any], notes: bool = True) -> dict[str, Any]:
    """Train ``name`` on several processes through :mod:`zoo.training.distributed`; rank 0 runs ``finish``."""
    import_torch()
    check_stream_options(options)
    config = config_from_options(options)
    if config.device == "auto":
        config = TrainConfig(**{**asdict(config), "device": resolve_device("auto")})
    table = table_from_options(options)
    job = {"name": name, "policy": options["policy"], "data": options["data"], "config": asdict(config),
           "table": None if table is None else asdict(table),
           "model_config": {} if options["hidden_size"] is None else {"hidden_size": options["hidden_size"]},
           "finish": finish, "finish_args": finish_args,
           "notes": notes and not verbosity()[1]}  # rank 0 prints how it reads and trains (never under --json)
    return launch(job, **scale)


def config_from_options(options: dict[str, Any]) -> TrainConfig:
    """The :class:`TrainConfig` the values of :func:`training_options` describe."""
    return TrainConfig(epochs=options["epochs"], lr=options["lr"], batch_size=options["batch_size"],
                       seed=options["seed"], holdout=options["holdout"], device=options["device"],
                       stream=options.get("stream"), shuffle_buffer=options.get("shuffle_buffer") or
                       DEFAULTS.shuffle_buffer, threads=options.get("threads"))


TABLE_OPTIONS = ("target", "features", "ignore", "id_column", "max_categories", "missing")


def table_from_options(options: dict[str, Any]):
    """What the table options say (None when none was given), or one line when they do not apply."""
    typed = given(*(n for n in TABLE_OPTIONS if n in options))
    if not typed:
        return None
    # Deferred: the table readers are imported when a table option is given, not by zoo --help.
    from zoo.tables import features, sources

    def names(value: str | None) -> tuple[str, ...] | None:
        return None if value is None else tuple(n.strip() for n in value.split(",") if n.strip())

    source = options.get("data")
    if source is None or not (sources.is_table(source) or Path(source).is_dir()):  # a directory says what it lacks
        refuse(typed, "to data that is not a table (they pick a table's columns; --data names one)")
    return features.TableOptions(options.get("target"), names(options.get("features")),
                                 names(options.get("ignore")) or (), options.get("id_column"),
                                 options.get("max_categories") or MAX_CATEGORIES, options.get("missing") or "impute")


def scaled(scale: dict[str, Any]) -> bool:
    return scale.get("nproc_per_node", 1) > 1 or scale.get("nnodes", 1) > 1


def given(*names: str) -> list[str]:
    """The options among ``names`` (parameter names) that the user typed, as ``--flags`` (``--no-stream`` as typed)."""
    ctx = click.get_current_context()
    typed = [n for n in names if ctx.get_parameter_source(n) in (ParameterSource.COMMANDLINE,
                                                                  ParameterSource.ENVIRONMENT)]
    return ["--no-stream" if n == "stream" and ctx.params.get(n) is False else "--" + n.replace("_", "-")
            for n in typed]


def check_stream_options(options: dict[str, Any]) -> None:
    """``--shuffle-buffer`` bounds a streamed table's shuffle: refused where nothing can stream."""
    typed = given("shuffle_buffer") if "shuffle_buffer" in options else []
    if not typed:
        return
    from zoo.tables import readers, sources

    if options.get("stream") is False:
        refuse(typed, "with --no-stream (a table read whole is shuffled whole)")
    source = options.get("data")
    if source is None or not sources.is_table(source) or readers.kind(Path(source)) == "csv":
        refuse(typed, "to data that is not a Parquet or Arrow table (it bounds the shuffle of a streamed one)")


def refuse(names: list[str], why: str) -> None:
    """One line naming the options that do not apply, instead of ignoring them."""
    if names:
        verb = "does" if len(names) == 1 else "do"
        raise click.UsageError(f"{', '.join(names)} {verb} not apply {why}: drop {'it' if len(names) == 1 else 'them'}")


def train_from_options(name: str, options: dict[str, Any], *, progress: bool = True, resume=None):
    """Run :func:`zoo.training.fit` from the values of :func:`training_options`.

    ``resume``: a loaded checkpoint to continue for ``--epochs`` more epochs, with its own settings.
    """
    import_torch()
    if resume is None:
        check_stream_options(options)
        config = config_from_options(options)
        model_config = {} if options["hidden_size"] is None else {"hidden_size": options["hidden_size"]}
        policy, data = options["policy"], options["data"]
        table = table_from_options(options)
    else:
        config = replace(resume.config, epochs=options["epochs"], device=options["device"],
                         threads=options.get("threads"))
        model_config = {k: v for k, v in resume.built.config.items() if k not in ("input_size", "num_classes")}
        policy, data = resume.policy.name, options["data"] or resume.data
        table = resume.table_options
    show = progress and sys.stderr.isatty() and not verbosity()[1]
    note = say if progress else None  # informational lines on stdout (stderr is for the one line of an error)
    if not show:
        return fit(name, policy=policy, data=data, config=config, resume=resume, table=table, note=note,
                   **model_config)
    with click.progressbar(length=config.epochs, label=f"training {name}", file=sys.stderr,
                           show_pos=True, item_show_func=lambda loss: loss) as bar:
        def on_epoch(epoch: int, epochs: int, loss: float) -> None:
            bar.update(1, f"loss {loss:.4f}")

        return fit(name, policy=policy, data=data, config=config, on_epoch=on_epoch, resume=resume, table=table,
                   note=note, **model_config)
