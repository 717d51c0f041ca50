"""The export side's commands: ``zoo export``, ``zoo check-plugin`` and ``zoo bench``.

``zoo bench`` lives here, beside the export, because its baseline is the trained module in torch
(:mod:`.eager`); the timing loop it runs is the deployment side's (:mod:`zoo.exports.deploy.bench`), which
the variants time with too, and it measures without torch when torch is not installed.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from zoo.cli.console import echo_json, say, verbose_option, verbosity
from zoo.errors import ZooError
from zoo.exports.bundle.layout import (
    CARD_FILE,
    CHECKPOINT_FILE,
    EVALUATION_FILE,
    EXPORT_ROOT,
    MANIFEST_FILE,
    MODEL_FILE,
    VARIANTS_DIR,
)
from zoo.exports.card import INSTALL
from zoo.exports.common import runtime_option, variant_option
from zoo.exports.export.options import DEFAULTS, EXPORTERS, ExportOptions
from zoo.exports.runtimes import select
from zoo.exports.variants import VARIANTS
from zoo.exports.variants.commands import guard_options, report_variants
from zoo.exports.variants.methods import require
from zoo.manager import default_plugin_manager
from zoo.options import (
    distributed_options,
    given,
    import_torch,
    launch_from_options,
    refuse,
    scaled,
    split_options,
    train_from_options,
    training_options,
)
from zoo.registry import default_registry


def tolerance_options(function):
    function = click.option("--rtol", type=click.FloatRange(min=0), default=DEFAULTS.rtol, show_default=True,
                            help="Relative tolerance on probabilities.")(function)
    return click.option("--atol", type=click.FloatRange(min=0), default=DEFAULTS.atol, show_default=True,
                        help="Absolute tolerance on probabilities.")(function)


@click.command()
@click.argument("name")
@training_options
@distributed_options
@click.option("-o", "--output", type=click.Path(path_type=Path), metavar="DIR",
              help=f"Bundle directory to write [default: {EXPORT_ROOT}/NAME].")
@click.option("--force", is_flag=True, help="Replace an existing bundle (swapped in only once verified).")
@click.option("--checkpoint", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="Export this `zoo train` checkpoint instead of training (it holds everything needed).")
@click.option("--eval-data", metavar="SOURCE", help="With --checkpoint: measure parity and accuracy on every row "
              "of this data instead of the checkpoint's held-out rows.")
@click.option("--exporter", type=click.Choice(EXPORTERS), default=DEFAULTS.exporter,
              show_default=True, help="torch's ONNX exporter; auto takes the faster TorchScript one.")
@click.option("--opset", type=click.IntRange(min=13), default=DEFAULTS.opset, show_default=True,
              help="ONNX opset.")
@tolerance_options
@runtime_option("Check parity on this runtime (repeatable) [default: every runtime that can run here].")
@click.option("--variant", "variants", multiple=True, type=click.Choice(VARIANTS),
              help="Also write this deployment variant, measured and guarded (repeatable).")
@guard_options
@click.option("--no-card", is_flag=True, help="Leave out report.html, the model card (zoo report DIR makes it later).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@verbose_option
def export(name: str, output: Path | None, force: bool, checkpoint: Path | None, eval_data: str | None,
           exporter: str, opset: int, atol: float, rtol: float, runtimes: tuple[str, ...], variants: tuple[str, ...],
           max_accuracy_drop: float, min_agreement: float, no_card: bool, as_json: bool, verbose: bool,
           **options: Any) -> None:
    """Train model NAME briefly, export it to ONNX and check every runtime against the trained model.

    The reference is the trained module on inputs standardized in numpy, with
    the policy's numpy head and decision; each runtime's labels on the held-out
    rows must also score the trainer's accuracy on the true labels. Writes
    DIR/model.onnx, DIR/manifest.json, DIR/test_data_set_N/, DIR/checkpoint.pt
    and the model card DIR/report.html, only if every runtime that ran passed.
    Exits 1 when one failed.
    """
    # Deferred (as in every command here): these import numpy, onnx or torch; zoo --help must not pay for them.
    from zoo.exports.bundle import manifest, writing
    from zoo.exports.export import parity, pipeline
    from zoo.training import checkpoint as checkpoints

    started = time.perf_counter()
    default_registry().get("model", name)
    target = output or Path(EXPORT_ROOT) / name
    writing.check_target(target, force)
    chosen = select(list(runtimes) or None)  # resolved once: one that cannot run here is refused before training
    require(variants)
    if checkpoint is not None:
        refuse(given("policy", "epochs", "hidden_size", "lr", "batch_size", "seed", "holdout", "device",
                     "nproc_per_node", "nnodes", "node_rank", "rdzv_endpoint", "target", "features", "ignore",
                     "id_column", "max_categories", "missing", "stream", "shuffle_buffer", "threads"),
               "with --checkpoint (the model is already trained; a table's columns are as it recorded them)")
    elif eval_data is not None:
        raise click.UsageError("--eval-data measures a trained model: give it with --checkpoint FILE")
    options, scale = split_options(options)
    export_options = ExportOptions(force=force, exporter=exporter, opset=opset, atol=atol, rtol=rtol,
                                   verbose=verbose or verbosity()[0], runtimes=list(runtimes) or None,
                                   variants=list(variants), max_accuracy_drop=max_accuracy_drop,
                                   min_agreement=min_agreement, card=not no_card)
    if scaled(scale):  # rank 0 resolves the runtimes again, by name, in its own process
        answer = launch_from_options(name, options, scale, "zoo.exports.export.pipeline:export_job",
                                     {"target": str(target), **asdict(export_options)}, notes=not as_json)
        describe, report = answer["describe"], answer["report"]
        failure, refused, card = answer.get("failed"), answer.get("refused", []), answer.get("card")
    else:
        if checkpoint is not None:
            import_torch()
            result = checkpoints.load(checkpoint)
            if result.built.spec.name != name:
                raise click.UsageError(f"{checkpoint} holds model {result.built.spec.name!r}, not {name!r}")
            if options["data"] is not None:
                _check_same_data(result, options["data"], checkpoint)
            if eval_data is not None:
                result = checkpoints.on_data(result, eval_data)
        else:
            result = train_from_options(name, options, progress=not as_json)
        describe, failure, refused, card = result.describe(), None, [], None
        try:
            outcome = pipeline.export_bundle(result, target, export_options, runtimes=chosen)
            report, refused, card = outcome.report, outcome.refused, outcome.card and outcome.card.to_dict()
        except pipeline.ParityFailed as exc:
            report, failure = exc.outcome.report, str(exc)
    checked = parity.ParityReport.from_dict(report["parity"])
    if failure:
        if as_json:
            echo_json(report)
        else:
            click.echo(checked.table())
        raise ZooError(failure)
    seconds = time.perf_counter() - started
    if as_json:
        echo_json(report | {"path": str(target), "seconds": round(seconds, 3), "refused": refused, "card": card})
        if refused:
            raise click.exceptions.Exit(1)
        return
    say(describe)
    say(f"exported with the {report['versions']['exporter']} exporter, opset {opset}")
    say(checked.table())
    made = "".join(f", {VARIANTS_DIR}/{v}/" for v in report.get("variants", {}))
    made = f", {EVALUATION_FILE}" + made + (f", {CARD_FILE}" if card else "")
    say(f"verified: wrote {target}/ ({MODEL_FILE}, {MANIFEST_FILE}, "
        f"{len(report['files']['test_data'])} test data sets, {CHECKPOINT_FILE}{made}) in {seconds:.1f} s")
    if card:
        say(f"model card: {target / CARD_FILE} ({card['bytes'] / 1024:.0f} KiB, {card['seconds']:.1f} s of the "
            "export); open it in a browser")
    elif not no_card:
        say(f"zoo: no model card: matplotlib is not installed ({INSTALL}); then zoo report {target}", err=True)
    report_variants({n: manifest.Variant.from_dict(n, v) for n, v in report.get("variants", {}).items()}, refused)


def _check_same_data(result, source: str, checkpoint: Path) -> None:
    """``--data`` with ``--checkpoint`` may only name the data the checkpoint was trained on."""
    from zoo.data import fingerprint, load_source
    if result.data_sha256 is None:
        raise click.UsageError(f"{checkpoint} records no fingerprint of its data (an older checkpoint): drop "
                               "--data, or pass --eval-data to measure it on other data")
    if result.config.stream:  # streamed: its files' bytes, as the training recorded them (no scan)
        from zoo.training.streaming import fingerprint as streamed

        now = streamed(source, result.table_options, result.config.holdout, result.config.seed)
    else:
        now = fingerprint(load_source(source, table=result.table_options if result.split.features is not None
                                      else None))
    if now != result.data_sha256:
        raise ZooError(f"the data changed since training: {source} has sha256 {now[:12]}..., {checkpoint} was "
                       f"trained on {result.data_sha256[:12]}...; pass --eval-data {source} to measure the trained "
                       "model on it, or drop --data")


@click.command(name="check-plugin")
@click.argument("dist", required=False)
@click.option("--epochs", type=click.IntRange(min=1), default=2, show_default=True,
              help="Epochs to train each case.")
@click.option("--json", "as_json", is_flag=True, help="Print the cases as JSON.")
def check_plugin(dist: str | None, epochs: int, as_json: bool) -> None:
    """Put what plugin DIST registered through build, train, export and parity.

    A runtime it registered is checked with the built-in multiclass and binary
    models, on that runtime alone (skipped, with the reason, when it cannot run
    here). DIST is a distribution name (zoo-deep-mlp) or a plugin name; without it,
    every plugin that registered something is checked, the built-ins included.
    Exits 1 when any case fails. Set ZOO_STRICT_PLUGINS=1 to make load errors
    fatal too.
    """
    from zoo.exports.export import conformance  # deferred: it trains and exports

    registry = default_registry()
    cases = [case for info in conformance.select_plugins(default_plugin_manager(), dist)
             for case in conformance.cases_for(info, registry)]
    if not cases:
        raise click.ClickException(f"{dist or 'the installed plugins'} registered no model, policy or dataset")
    for case in cases:
        conformance.run_case(case, registry, epochs=epochs)
    if as_json:
        echo_json(conformance.to_dicts(cases))
    else:
        say(conformance.table(cases))
    failed = sum(case.status == "failed" for case in cases)
    skipped = sum(case.status == "skipped" for case in cases)
    passed = len(cases) - failed - skipped
    if not as_json:
        say(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    if failed:
        raise click.exceptions.Exit(1)
    if not passed:
        raise ZooError("nothing could be checked here: every case was skipped (see the reasons above); "
                       "run it where the plugin's runtime can run")


@click.command(name="bench")
@click.argument("path", type=click.Path(path_type=Path), metavar="DIR|FILE")
@runtime_option("Measure this runtime (repeatable) [default: every runtime that can run here].")
@click.option("--batch-size", "batch_sizes", multiple=True, type=click.IntRange(min=1), metavar="N",
              help="Batch size to measure (repeatable) [default: 1, 16, 1024, 65536].")
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True,
              help="Rounds; each round times every runtime at every batch size, in rotating order.")
@click.option("--no-torch", is_flag=True, help="Leave out torch eager on the bundle's checkpoint.")
@variant_option("Measure this variant of the bundle instead of model.onnx.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {\"rows\": [...]}.")
def bench(path: Path, runtimes: tuple[str, ...], batch_sizes: tuple[int, ...], repeats: int, no_torch: bool,
                  variant: str | None, as_json: bool) -> None:
    """Latency (p50/p90/p99) and rows/s of a bundle DIR (or a zoo .onnx FILE) on every runtime.

    torch eager on the bundle's checkpoint is the baseline when torch is
    installed. The rows are the bundle's held-out rows tiled to each batch size
    (standard normal rows for a bare .onnx). Warms up, then interleaves the
    runtimes round by round, so the ratios are taken within one run on the same
    machine state.
    """
    from zoo.exports.deploy import bench as timing  # deferred, as the export's own imports
    from zoo.exports.export import eager

    sizes = tuple(dict.fromkeys(batch_sizes)) or timing.DEFAULT_BATCH_SIZES
    options = {"runtimes": list(runtimes) or None, "batch_sizes": sizes, "repeats": repeats, "variant": variant,
               "baselines": {} if no_torch else {eager.NAME: eager.torch_eager}}
    if sys.stderr.isatty() and not as_json and not verbosity()[1]:
        with click.progressbar(length=0, label="benchmarking", file=sys.stderr, show_eta=False,
                               show_percent=False) as bar:
            report = timing.bench(path, on_step=lambda: bar.update(1), **options)
    else:
        report = timing.bench(path, **options)
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(report.table())
