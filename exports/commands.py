"""``zoo export`` and ``zoo verify``, added to the CLI through the public command hook."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from zoo import hookimpl
from zoo.cli import describe_training, echo_json, train_from_options, training_options
from zoo.exports.onnx import DEFAULT_OPSET, EXPORTERS
from zoo.exports.parity import DEFAULT_ATOL, DEFAULT_RTOL

DEFAULT_EXPORT_ROOT = Path("zoo-exports")


def tolerance_options(function):
    function = click.option("--rtol", type=click.FloatRange(min=0), default=DEFAULT_RTOL, show_default=True,
                            help="Relative tolerance on probabilities.")(function)
    return click.option("--atol", type=click.FloatRange(min=0), default=DEFAULT_ATOL, show_default=True,
                        help="Absolute tolerance on probabilities.")(function)


@click.command()
@click.argument("name")
@training_options
@click.option("-o", "--output", type=click.Path(path_type=Path), metavar="DIR",
              help=f"Bundle directory to write [default: {DEFAULT_EXPORT_ROOT}/NAME].")
@click.option("--force", is_flag=True, help="Replace an existing bundle (swapped in only once verified).")
@click.option("--checkpoint", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="Export this `zoo train` checkpoint instead of training.")
@click.option("--exporter", type=click.Choice(EXPORTERS), default="auto",
              show_default=True, help="torch's ONNX exporter; auto takes the faster TorchScript one.")
@click.option("--opset", type=click.IntRange(min=13), default=DEFAULT_OPSET, show_default=True,
              help="ONNX opset.")
@tolerance_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Show the exporter's own output.")
def export(name: str, output: Path | None, force: bool, checkpoint: Path | None, exporter: str,
           opset: int, atol: float, rtol: float, as_json: bool, verbose: bool, **options: Any) -> None:
    """Train model NAME briefly, export it to ONNX and check onnxruntime against torch.

    Writes DIR/model.onnx, DIR/checkpoint.pt and DIR/report.json, only if every
    parity check that ran passed. Exits 1 when one failed.
    """
    from zoo import checkpoint as checkpoints
    from zoo.exports import bundle
    from zoo.exports.pipeline import ParityFailed, export_bundle
    from zoo.registry import default_registry

    started = time.perf_counter()
    default_registry().get("model", name)
    target = output or DEFAULT_EXPORT_ROOT / name
    bundle.check_target(target, force)
    if checkpoint is not None:
        result = checkpoints.load(checkpoint)
        if result.built.spec.name != name:
            raise click.UsageError(f"{checkpoint} holds model {result.built.spec.name!r}, not {name!r}")
    else:
        result = train_from_options(name, options, progress=not as_json)
    say = (lambda *a, **k: None) if as_json else click.echo
    say(describe_training(result))
    try:
        outcome = export_bundle(result, target, force=force, exporter=exporter, opset=opset,
                                atol=atol, rtol=rtol, verbose=verbose)
    except ParityFailed as failure:
        if as_json:
            echo_json(failure.outcome.report)
        else:
            click.echo(failure.outcome.parity.table())
        raise
    seconds = time.perf_counter() - started
    if as_json:
        echo_json(outcome.report | {"path": str(target), "seconds": round(seconds, 3)})
        return
    say(f"exported with the {outcome.report['onnx']['exporter']} exporter, opset {opset}")
    say(outcome.parity.table())
    say(f"verified: wrote {target}/ ({bundle.MODEL_FILE}, {bundle.CHECKPOINT_FILE}, "
        f"{bundle.REPORT_FILE}) in {seconds:.1f} s")


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--checkpoint", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="The training checkpoint [default: checkpoint.pt beside the model].")
@tolerance_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify(path: Path, checkpoint: Path | None, atol: float, rtol: float, as_json: bool) -> None:
    """Re-run the parity check on an exported bundle DIR or its model.onnx.

    Checks the file with the full ONNX checker, rebuilds the torch model from
    the checkpoint and compares onnxruntime with it on the held-out data.
    Exits 1 when a check fails.
    """
    from zoo.exports.pipeline import verify as run_verify

    outcome = run_verify(path, checkpoint_path=checkpoint, atol=atol, rtol=rtol)
    if as_json:
        echo_json(outcome.report)
    else:
        click.echo(outcome.parity.table())
        click.echo(f"{'verified' if outcome.verified else 'NOT verified'}: {outcome.path}")
    if not outcome.verified:
        raise click.exceptions.Exit(1)


@click.command(name="check-plugin")
@click.argument("dist", required=False)
@click.option("--epochs", type=click.IntRange(min=1), default=2, show_default=True,
              help="Epochs to train each case.")
@click.option("--json", "as_json", is_flag=True, help="Print the cases as JSON.")
def check_plugin(dist: str | None, epochs: int, as_json: bool) -> None:
    """Put what plugin DIST registered through build, train, export and parity.

    DIST is a distribution name (zoo-deep-mlp) or a plugin name; without it,
    every plugin that registered something is checked, the built-ins included.
    Exits 1 when any case fails. Set ZOO_STRICT_PLUGINS=1 to make load errors
    fatal too.
    """
    from zoo.exports.conformance import cases_for, run_case, select_plugins, table, to_dicts
    from zoo.manager import default_plugin_manager
    from zoo.registry import default_registry

    registry = default_registry()
    cases = [case for info in select_plugins(default_plugin_manager(), dist) for case in cases_for(info, registry)]
    if not cases:
        raise click.ClickException(f"{dist or 'the installed plugins'} registered no model, policy or dataset")
    for case in cases:
        run_case(case, registry, epochs=epochs)
    if as_json:
        echo_json(to_dicts(cases))
    else:
        click.echo(table(cases))
    failed = sum(case.status != "passed" for case in cases)
    if not as_json:
        click.echo(f"{len(cases) - failed} passed, {failed} failed")
    if failed:
        raise click.exceptions.Exit(1)


@hookimpl
def register_commands(cli):
    cli.add_command(export)
    cli.add_command(verify)
    cli.add_command(check_plugin)
