"""The commands `zoo export`, `verify`, `predict`, `runtimes`, `bench` and `check-plugin`.

They join the CLI through the command hook of :mod:`zoo.exports.commands`, which imports this module only
when click asks for a command that is not one of the core's (``zoo list`` never pays for these).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from zoo.cli import echo_json, say, verbosity
from zoo.errors import ZooError
from zoo.exports.defaults import (
    DEFAULT_ATOL,
    DEFAULT_CHUNK_ROWS,
    DEFAULT_MAX_ACCURACY_DROP,
    DEFAULT_MIN_AGREEMENT,
    DEFAULT_OPSET,
    DEFAULT_RTOL,
    EXPORTERS,
    VARIANTS,
)
from zoo.options import (
    distributed_options,
    given,
    launch_from_options,
    refuse,
    scaled,
    split_options,
    train_from_options,
    training_options,
)

DEFAULT_EXPORT_ROOT = Path("zoo-exports")


def runtime_option(help: str):
    """``--runtime NAME``, repeatable: the registered runtimes a command runs on (`zoo runtimes` lists them)."""
    return click.option("--runtime", "runtimes", multiple=True, metavar="NAME", help=help)


def variant_option(help: str):
    """``--variant NAME``: one of a bundle's variants (fp16, int8) instead of its fp32 model."""
    return click.option("--variant", metavar="NAME", help=help)


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
    from zoo.exports.variants import table

    if variants:
        say(table(variants))
    for line in refused:
        click.echo(f"Error: {line}", err=True)
    if refused:
        raise click.exceptions.Exit(1)


def tolerance_options(function):
    function = click.option("--rtol", type=click.FloatRange(min=0), default=DEFAULT_RTOL, show_default=True,
                            help="Relative tolerance on probabilities.")(function)
    return click.option("--atol", type=click.FloatRange(min=0), default=DEFAULT_ATOL, show_default=True,
                        help="Absolute tolerance on probabilities.")(function)


@click.command()
@click.argument("name")
@training_options
@distributed_options
@click.option("-o", "--output", type=click.Path(path_type=Path), metavar="DIR",
              help=f"Bundle directory to write [default: {DEFAULT_EXPORT_ROOT}/NAME].")
@click.option("--force", is_flag=True, help="Replace an existing bundle (swapped in only once verified).")
@click.option("--checkpoint", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="Export this `zoo train` checkpoint instead of training (it holds everything needed).")
@click.option("--eval-data", metavar="SOURCE", help="With --checkpoint: measure parity and accuracy on every row "
              "of this data instead of the checkpoint's held-out rows.")
@click.option("--exporter", type=click.Choice(EXPORTERS), default="auto",
              show_default=True, help="torch's ONNX exporter; auto takes the faster TorchScript one.")
@click.option("--opset", type=click.IntRange(min=13), default=DEFAULT_OPSET, show_default=True,
              help="ONNX opset.")
@tolerance_options
@runtime_option("Check parity on this runtime (repeatable) [default: every runtime that can run here].")
@click.option("--variant", "variants", multiple=True, type=click.Choice(VARIANTS),
              help="Also write this deployment variant, measured and guarded (repeatable).")
@guard_options
@click.option("--no-card", is_flag=True, help="Leave out report.html, the model card (zoo report DIR makes it later).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Show the exporter's own output.")
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
    from zoo import checkpoint as checkpoints
    from zoo.exports import bundle
    from zoo.exports.card import FILE as card_file
    from zoo.exports.card import INSTALL
    from zoo.exports.manifest import Variant
    from zoo.exports.parity import ParityReport
    from zoo.exports.pipeline import ParityFailed, export_bundle
    from zoo.exports.runtimes import select as select_runtimes
    from zoo.registry import default_registry

    started = time.perf_counter()
    default_registry().get("model", name)
    target = output or DEFAULT_EXPORT_ROOT / name
    bundle.check_target(target, force)
    select_runtimes(list(runtimes) or None)  # a named runtime that cannot run here: refused before training
    if variants:
        from zoo.exports.variants import require

        require(variants)
    if checkpoint is not None:
        refuse(given("policy", "epochs", "hidden_size", "lr", "batch_size", "seed", "holdout", "device",
                     "nproc_per_node", "nnodes", "node_rank", "rdzv_endpoint"),
               "with --checkpoint (the model is already trained)")
    elif eval_data is not None:
        raise click.UsageError("--eval-data measures a trained model: give it with --checkpoint FILE")
    options, scale = split_options(options)
    export_options = {"force": force, "exporter": exporter, "opset": opset, "atol": atol, "rtol": rtol,
                      "verbose": verbose or verbosity()[0], "runtimes": list(runtimes) or None,
                      "variants": list(variants), "max_accuracy_drop": max_accuracy_drop,
                      "min_agreement": min_agreement, "card": not no_card}
    if scaled(scale):
        answer = launch_from_options(name, options, scale, "zoo.exports.pipeline:export_job",
                                     {"target": str(target), **export_options})
        describe, report = answer["describe"], answer["report"]
        failure, refused, card = answer.get("failed"), answer.get("refused", []), answer.get("card")
    else:
        if checkpoint is not None:
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
            outcome = export_bundle(result, target, **export_options)
            report, refused, card = outcome.report, outcome.refused, outcome.card and outcome.card.to_dict()
        except ParityFailed as exc:
            report, failure = exc.outcome.report, str(exc)
    parity = ParityReport.from_dict(report["parity"])
    if failure:
        if as_json:
            echo_json(report)
        else:
            click.echo(parity.table())
        raise ZooError(failure)
    seconds = time.perf_counter() - started
    if as_json:
        echo_json(report | {"path": str(target), "seconds": round(seconds, 3), "refused": refused, "card": card})
        if refused:
            raise click.exceptions.Exit(1)
        return
    say(describe)
    say(f"exported with the {report['versions']['exporter']} exporter, opset {opset}")
    say(parity.table())
    made = "".join(f", variants/{v}/" for v in report.get("variants", {}))
    made = ", evaluation.npz" + made + (f", {card_file}" if card else "")
    say(f"verified: wrote {target}/ ({bundle.MODEL_FILE}, {bundle.MANIFEST_FILE}, "
        f"{len(report['files']['test_data'])} test data sets, {bundle.CHECKPOINT_FILE}{made}) in {seconds:.1f} s")
    if card:
        say(f"model card: {target / card_file} ({card['bytes'] / 1024:.0f} KiB, {card['seconds']:.1f} s of the "
            "export); open it in a browser")
    elif not no_card:
        say(f"zoo: no model card: matplotlib is not installed ({INSTALL}); then zoo report {target}", err=True)
    report_variants({n: Variant.from_dict(n, v) for n, v in report.get("variants", {}).items()}, refused)


def _check_same_data(result, source: str, checkpoint: Path) -> None:
    """``--data`` with ``--checkpoint`` may only name the data the checkpoint was trained on."""
    from zoo.data import fingerprint, load_source

    if result.data_sha256 is None:
        raise click.UsageError(f"{checkpoint} records no fingerprint of its data (an older checkpoint): drop "
                               "--data, or pass --eval-data to measure it on other data")
    now = fingerprint(load_source(source))
    if now != result.data_sha256:
        raise ZooError(f"the data changed since training: {source} has sha256 {now[:12]}..., {checkpoint} was "
                       f"trained on {result.data_sha256[:12]}...; pass --eval-data {source} to measure the trained "
                       "model on it, or drop --data")


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--atol", type=click.FloatRange(min=0), help="Absolute tolerance [default: the manifest's].")
@click.option("--rtol", type=click.FloatRange(min=0), help="Relative tolerance [default: the manifest's].")
@runtime_option("Replay on this runtime (repeatable) [default: every runtime that can run here].")
@variant_option("Replay only this variant (fp32: only model.onnx) [default: model.onnx and every variant].")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify(path: Path, atol: float | None, rtol: float | None, runtimes: tuple[str, ...], variant: str | None,
           as_json: bool) -> None:
    """Check an exported bundle DIR (or a zoo .onnx FILE) on this machine, without torch.

    Checks the sha256 against the manifest and runs the full ONNX checker, then
    replays every test data set on each runtime, under the comparison rules the
    manifest records; a runtime that runs at another precision than the
    bundle's fails. A bare .onnx is checked for self-consistency. Exits 1 on
    any mismatch.
    """
    from zoo import files
    from zoo.exports.verify import verify as run_verify

    files.tidy(path.parent / path.name if path.name else path.resolve())
    report = run_verify(path, atol=atol, rtol=rtol, runtimes=list(runtimes) or None, variant=variant)
    if as_json:
        from zoo.exports.deployed import read_manifest

        variants = read_manifest(path).variants if path.is_dir() else {}
        echo_json(report.to_dict() | {"variants": {name: v.to_dict() for name, v in variants.items()}})
    else:
        say(report.table())
        models = {r.model for r in report.replays}
        variants = sorted(models - {"fp32"})
        also = "" if not variants else (f" and its variant{'s' if len(variants) > 1 else ''} {', '.join(variants)}"
                                         if "fp32" in models else "")
        if report.verified:
            say(f"verified: {report.path}{also}")
    if not report.verified:  # the one line that says why, on stderr, shown under -q and --json too
        raise ZooError(f"NOT verified: {report.path}: {report.failure()}")


@click.command()
@click.argument("model", type=click.Path(path_type=Path), metavar="DIR|FILE")
@click.argument("source", metavar="INPUT")
@click.option("-o", "--output", type=click.Path(path_type=Path), metavar="FILE|DIR",
              help="Write here (whole or not at all; the format by the extension) instead of stdout. "
                   "A directory when INPUT is a glob or a directory: one output file per input file.")
@click.option("--force", is_flag=True, help="Replace an existing output file (or every file of -o DIR).")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "parquet", "npy"]),
              help="Output format: of stdout (csv or jsonl) [default: csv], or of each file in -o DIR "
                   "[default: parquet]. -o FILE takes its extension's.")
@click.option("--id-column", metavar="NAME", help="Carry this input column through to the output, first.")
@click.option("--columns", metavar="A,B,...", help="The input columns that are the model's features, in order "
              "[default: the feature names recorded at training, else every numeric column].")
@click.option("--scheduler", metavar="local:N|tcp://HOST:PORT",
              help="Score the files of INPUT on Dask: N worker processes here, or a running scheduler "
                   "(pip install 'zoo-onnx[dask]').")
@click.option("--runtime", metavar="NAME", help="The runtime to run on (zoo runtimes lists them) "
              "[default: onnxruntime-cpu].")
@variant_option("Predict with this variant of the bundle (zoo variants DIR lists them).")
@click.option("--provider", metavar="NAME", help="Deprecated alias of --runtime: cpu -> onnxruntime-cpu, "
              "cuda -> onnxruntime-cuda.")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULT_CHUNK_ROWS, show_default=True,
              help="Rows read and run at a time (bounds memory).")
@click.option("--allow-nan", is_flag=True, help="Run rows holding NaN/Inf instead of refusing them.")
@click.option("--csv-safe", is_flag=True, help="Prefix ' to CSV text cells (labels, ids, header) that begin with = + - "
              "@ or a tab: a spreadsheet then shows them as text instead of running them as formulas. "
              "Changes the data: off by default.")
def predict(model: Path, source: str, output: Path | None, force: bool, fmt: str | None, id_column: str | None,
            columns: str | None, scheduler: str | None, runtime: str | None, variant: str | None,
            provider: str | None, batch_size: int, allow_nan: bool, csv_safe: bool) -> None:
    """Predict labels and probabilities for the rows of INPUT with an exported model.

    INPUT is a .parquet, .arrow/.feather, .csv, .npy or .npz file of raw
    features (one row per sample), - for CSV on stdin, or a glob ('data/*.parquet')
    or directory of such files with -o DIR. Columns are matched to the model's
    features by the names recorded at training. Rows are streamed in batches, so
    memory stays bounded whatever the size of INPUT. Output columns: the id
    column, label, class_index, p_<class>.
    """
    import contextlib
    import sys

    from zoo import files
    from zoo.exports import batch
    from zoo.exports.predict import output_format, score
    from zoo.exports.predictor import Predictor
    from zoo.exports.writers import FORMATS

    if provider is not None:
        from zoo.exports.runtimes import by_alias

        if runtime is not None:
            raise click.UsageError("--provider is the deprecated name of --runtime: give only --runtime")
        runtime = by_alias(provider).name
        say(f"zoo: warning: --provider is deprecated; use --runtime {runtime}", err=True)
    runtime = runtime or "onnxruntime-cpu"
    picked = tuple(c.strip() for c in columns.split(",")) if columns is not None else None
    if picked is not None and not all(picked):
        raise click.UsageError(f"--columns {columns!r} has an empty name; give A,B,...")
    many = source != "-" and batch.is_many(source)
    if scheduler is not None:
        batch.parse_scheduler(scheduler)
        batch.require_dask()
    if many or scheduler is not None:
        if output is None:
            raise click.UsageError("scoring several files writes one output file each: give -o DIR")
        if output.suffix.lower() in FORMATS:  # a .csv target is a file, never a directory
            why = "INPUT names several files" if many else "--scheduler scores files"
            raise click.UsageError(f"-o {output} names a {FORMATS[output.suffix.lower()]} file, but {why} into a "
                                   f"directory, one output file each: give -o DIR (without {output.suffix})")
        settings = batch.Settings(fmt or "parquet", picked, id_column, allow_nan, batch_size, csv_safe)
        if csv_safe and settings.fmt != "csv":
            raise click.UsageError(f"--csv-safe guards CSV cells; the outputs here are {settings.fmt}: drop it")
        files.check_target(output, force=True, directory=True)
        sources = batch.inputs(source) if many else [Path(source)]
        parts = batch.plan(sources, output, settings.fmt)
        predictor = Predictor(model, runtime, allow_nan=allow_nan, variant=variant)
        todo = batch.to_do(predictor, parts, output, settings, force=force)
        skipped = len(parts) - len(todo)
        started = time.perf_counter()
        # The scheduler first: one it cannot reach leaves nothing behind. No work: no cluster to start.
        with batch.connected(scheduler) if scheduler is not None and todo else contextlib.nullcontext() as client:
            batch.begin(predictor, parts, todo, output, settings)
            if skipped:
                say(f"{skipped} of {len(parts)} inputs already scored in {output}: skipped", err=True)
            if client is None:
                done = batch.run_here(predictor, todo, settings)
            else:
                done = batch.run_dask(predictor, todo, settings, client)
        rows = sum(d["rows"] for d in done)
        say(f"wrote {len(done)} files ({rows:,} rows) to {output} in {time.perf_counter() - started:.1f} s", err=True)
        return
    fmt = output_format(output, fmt)
    if csv_safe and fmt != "csv":
        raise click.UsageError(f"--csv-safe guards CSV cells; the output here is {fmt}: drop it")
    if output is not None:
        files.check_target(output, force=force, directory=False)
    predictor = Predictor(model, runtime, allow_nan=allow_nan, variant=variant)
    progress = sys.stderr.isatty() and output is not None and not verbosity()[1]
    options = {"fmt": fmt, "columns": picked, "id_column": id_column, "chunk_rows": batch_size, "csv_safe": csv_safe}
    if progress:
        with click.progressbar(length=0, label="predicting", file=sys.stderr,
                               show_eta=False, show_percent=False) as bar:
            rows = score(predictor, source, output, on_rows=bar.update, **options)
    else:
        rows = score(predictor, source, output, **options)
    if output is not None:
        say(f"wrote {rows} rows to {output}", err=True)


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
        say(table(cases))
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


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def runtimes(as_json: bool) -> None:
    """List every registered runtime: whether it can run here (and why not), its version, what it needs."""
    from zoo import table
    from zoo.exports.runtimes import statuses

    found = statuses()
    if as_json:
        echo_json([s.to_dict() for s in found])
        return
    click.echo(table.render(("name", "available", "version", "requires", "registered by", "summary / why not"), [
        (s.name, "yes" if s.available else "no", s.version or ("?" if s.version_error else None), s.requires,
         s.registered_by, (s.summary if s.available else f"unavailable: {s.reason}")
         + (f" ({s.version_error})" if s.version_error else "")) for s in found]))


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
def bench_command(path: Path, runtimes: tuple[str, ...], batch_sizes: tuple[int, ...], repeats: int, no_torch: bool,
                  variant: str | None, as_json: bool) -> None:
    """Latency (p50/p90/p99) and rows/s of a bundle DIR (or a zoo .onnx FILE) on every runtime.

    torch eager on the bundle's checkpoint is the baseline when torch is
    installed. The rows are the bundle's held-out rows tiled to each batch size
    (standard normal rows for a bare .onnx). Warms up, then interleaves the
    runtimes round by round, so the ratios are taken within one run on the same
    machine state.
    """
    import sys

    from zoo.exports.bench import DEFAULT_BATCH_SIZES, bench

    sizes = tuple(dict.fromkeys(batch_sizes)) or DEFAULT_BATCH_SIZES
    options = {"runtimes": list(runtimes) or None, "batch_sizes": sizes, "repeats": repeats,
               "torch_eager": not no_torch, "variant": variant}
    if sys.stderr.isatty() and not as_json and not verbosity()[1]:
        with click.progressbar(length=0, label="benchmarking", file=sys.stderr, show_eta=False,
                               show_percent=False) as bar:
            report = bench(path, on_step=lambda: bar.update(1), **options)
    else:
        report = bench(path, **options)
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(report.table())


@click.command(name="variants")
@click.argument("path", type=click.Path(path_type=Path), metavar="DIR")
@click.option("--add", "names", multiple=True, type=click.Choice(VARIANTS),
              help="Make this variant from the bundle alone (repeatable); no torch needed.")
@guard_options
@runtime_option("Replay and time the variant on this runtime (repeatable) [default: every one that can run here].")
@click.option("--json", "as_json", is_flag=True, help="Print the variants as JSON.")
def variants_command(path: Path, names: tuple[str, ...], max_accuracy_drop: float, min_agreement: float,
                     runtimes: tuple[str, ...], as_json: bool) -> None:
    """List a bundle's deployment variants, or add some (--add int8) without torch.

    A variant keeps fp32 inputs and outputs. It is measured on the held-out rows
    the bundle keeps (accuracy and its delta, agreement with fp32, max abs
    probability difference), sized and timed. It is refused, with nothing
    written, when it loses more than --max-accuracy-drop points or agrees on less
    than --min-agreement percent. Its own test data is replayed on every runtime.
    """
    from zoo.exports.deployed import read_manifest
    from zoo.exports.variants import add

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


@click.command(name="report")
@click.argument("path", type=click.Path(path_type=Path), metavar="DIR")
@click.option("-o", "--output", type=click.Path(path_type=Path), metavar="FILE",
              help="Write the card here instead of DIR/report.html.")
@click.option("--force", is_flag=True, help="Replace an existing -o FILE (DIR/report.html is always remade).")
def report_command(path: Path, output: Path | None, force: bool) -> None:
    """Make the model card DIR/report.html of a bundle, from the bundle alone, without torch.

    One self-contained HTML file (figures inline, nothing fetched; it opens
    offline): summary, training curve, confusion matrix and per-class
    precision/recall/F1, reliability diagram and ECE (and ROC for a binary
    model), probability histogram, parity per runtime and test set with the
    distribution of |onnx - torch|, variants, and how to use the model. The
    held-out rows the bundle keeps are scored by model.onnx; the test data is
    replayed on every runtime that can run here. Needs matplotlib
    (zoo-onnx[report]). Exits 1 when the replay did not verify (the card is
    written and shows why).
    """
    from zoo import files
    from zoo.errors import VerifyError
    from zoo.exports import card

    card.require_matplotlib()
    if not path.exists():
        raise VerifyError(f"{path} does not exist: give the directory zoo export wrote")
    if not path.is_dir():
        raise VerifyError(f"{path} is not a bundle directory: a card is made from the directory zoo export wrote "
                          f"({path.parent}, for {path.name})" if path.name == "model.onnx" else
                          f"{path} is not a bundle directory: a card is made from the directory zoo export wrote")
    if not (path / "manifest.json").is_file():
        inside = sorted(str(p.parent) for p in path.glob("*/manifest.json"))
        found = f"; the bundles in it: {', '.join(inside[:5])}" if inside else ": give the directory zoo export wrote"
        raise VerifyError(f"{path} has no manifest.json, so it is not a bundle{found}")
    if output is not None and output.resolve() == (path / card.FILE).resolve():
        output = None  # the bundle's own card: remade, as without -o
    if output is not None:
        if output.is_dir():
            raise VerifyError(f"-o {output} is a directory: give the card's file name, e.g. {output / card.FILE}")
        files.check_target(output, force=force, directory=False)
    written = card.write(path, output, shown_as=str(path))
    say(f"wrote {written.describe()}")
    if not written.verified:
        raise ZooError(f"{path} did NOT verify on this machine: the card shows which replay failed "
                       f"(zoo verify {path} too)")


COMMANDS = (export, verify, predict, runtimes, bench_command, check_plugin, variants_command, report_command)
