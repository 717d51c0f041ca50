"""``zoo variants``: a bundle's deployment variants listed, or added from the bundle alone, without torch."""

from __future__ import annotations

from pathlib import Path

import click

from zoo.cli.console import echo_json, say
from zoo.exports.common import runtime_option
from zoo.exports.variants import DEFAULT_MAX_ACCURACY_DROP, DEFAULT_MIN_AGREEMENT, VARIANTS


def guard_options(function):
    function = click.option("--min-agreement", type=click.FloatRange(0, 100), default=DEFAULT_MIN_AGREEMENT,
                            show_default=True,
                            metavar="PERCENT", help="Refuse a variant whose labels agree with fp32 on fewer "
                            "held-out rows.")(function)
    return click.option("--max-accuracy-drop", type=click.FloatRange(0, 100), default=DEFAULT_MAX_ACCURACY_DROP,
                        show_default=True,
                        metavar="POINTS", help="Refuse a variant that loses more held-out accuracy.")(function)


def report_variants(variants: dict, refused: list[str]) -> None:
    """The variants table, then one line per refused variant (exit 1 when any was refused)."""
    from zoo.exports.variants.measure import table  # deferred, as in the command below: it imports numpy

    if variants:
        say(table(variants))
    for line in refused:
        click.echo(f"Error: {line}", err=True)
    if refused:
        raise click.exceptions.Exit(1)


@click.command(name="variants")
@click.argument("path", type=click.Path(path_type=Path), metavar="DIR")
@click.option("--add", "names", multiple=True, type=click.Choice(VARIANTS),
              help="Make this variant from the bundle alone (repeatable); no torch needed.")
@guard_options
@runtime_option("Replay and time the variant on this runtime (repeatable) [default: every one that can run here].")
@click.option("--json", "as_json", is_flag=True, help="Print the variants as JSON.")
def variants(path: Path, names: tuple[str, ...], max_accuracy_drop: float, min_agreement: float,
                     runtimes: tuple[str, ...], as_json: bool) -> None:
    """List a bundle's deployment variants, or add some (--add int8) without torch.

    A variant keeps fp32 inputs and outputs. It is measured on the held-out rows
    the bundle keeps (accuracy and its delta, agreement with fp32, max abs
    probability difference), sized and timed. It is refused, with nothing
    written, when it loses more than --max-accuracy-drop points or agrees on less
    than --min-agreement percent. Its own test data is replayed on every runtime.
    """
    # Deferred: these import numpy and onnx; zoo --help must not pay for them.
    from zoo.exports.bundle.model import read_manifest
    from zoo.exports.variants.build import add

    refused: list[str] = []
    if names:
        built = add(path, list(names), max_accuracy_drop=max_accuracy_drop, min_agreement=min_agreement,
                    runtimes=list(runtimes) or None)
        refused = built.refused
        if built.card is not None and not as_json:
            say(f"model card remade with the variants: {built.card.describe()}", err=True)
    found = read_manifest(path).variants
    if as_json:
        echo_json({"variants": {name: v.to_dict() for name, v in found.items()}, "refused": refused})
        if refused:
            raise click.exceptions.Exit(1)
        return
    if not found and not refused:
        say(f"{path} has no variants: zoo variants {path} --add fp16 --add int8 makes them")
        return
    report_variants(found, refused)
