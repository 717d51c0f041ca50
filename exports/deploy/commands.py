"""The deployment side's commands: ``zoo verify``, ``zoo predict`` and ``zoo runtimes``, without torch."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import click

from zoo import files, table
from zoo.cli.console import echo_json, say, verbosity
from zoo.errors import ZooError
from zoo.exports.common import runtime_option, variant_option
from zoo.exports.deploy import DEFAULT_CHUNK_ROWS
from zoo.exports.deploy.writers import FORMATS, SUFFIX
from zoo.exports.runtimes import DEFAULT_RUNTIME, by_alias, statuses


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
    # Deferred (as in every command here): these import numpy and onnx; zoo --help must not pay for them.
    from zoo.exports.bundle.model import read_manifest
    from zoo.exports.deploy.verify import verify as run_verify

    files.tidy(path.parent / path.name if path.name else path.resolve())
    report = run_verify(path, atol=atol, rtol=rtol, runtimes=list(runtimes) or None, variant=variant)
    if as_json:
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
@click.option("--format", "fmt", type=click.Choice(list(SUFFIX)),
              help="Output format: of stdout (csv or jsonl) [default: csv], or of each file in -o DIR "
                   "[default: parquet]. -o FILE takes its extension's.")
@click.option("--id-column", metavar="NAME", help="Carry this input column through to the output, first.")
@click.option("--columns", metavar="A,B,...", help="The input columns that are the model's features, in order "
              "[default: the feature names recorded at training, else every numeric column].")
@click.option("--scheduler", metavar="local:N|tcp://HOST:PORT",
              help="Score the files of INPUT on Dask: N worker processes here, or a running scheduler "
                   "(pip install 'zoo-onnx[dask]').")
@click.option("--runtime", metavar="NAME", help="The runtime to run on (zoo runtimes lists them) "
              f"[default: {DEFAULT_RUNTIME}].")
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
    from zoo.exports.deploy import batch, scoring
    from zoo.exports.deploy.predictor import Predictor

    if provider is not None:
        if runtime is not None:
            raise click.UsageError("--provider is the deprecated name of --runtime: give only --runtime")
        runtime = by_alias(provider).name
        say(f"zoo: warning: --provider is deprecated; use --runtime {runtime}", err=True)
    runtime = runtime or DEFAULT_RUNTIME
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
    fmt = scoring.output_format(output, fmt)
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
            rows = scoring.score(predictor, source, output, on_rows=bar.update, **options)
    else:
        rows = scoring.score(predictor, source, output, **options)
    if output is not None:
        say(f"wrote {rows} rows to {output}", err=True)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def runtimes(as_json: bool) -> None:
    """List every registered runtime: whether it can run here (and why not), its version, what it needs."""
    found = statuses()
    if as_json:
        echo_json([s.to_dict() for s in found])
        return
    click.echo(table.render(("name", "available", "version", "requires", "registered by", "summary / why not"), [
        (s.name, "yes" if s.available else "no", s.version or ("?" if s.version_error else None), s.requires,
         s.registered_by, (s.summary if s.available else f"unavailable: {s.reason}")
         + (f" ({s.version_error})" if s.version_error else "")) for s in found]))
