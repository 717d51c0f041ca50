"""``zoo predict``: labels and probabilities for rows of features, streamed in bounded memory.

Inputs: ``.parquet``, ``.arrow``/``.feather`` and ``.csv`` (or ``-``, CSV on
stdin), read by pyarrow's streaming readers (:mod:`zoo.tables.readers`), and
``.npy``/``.npz`` (array ``X``, or its only array), read here a chunk at a
time. Each chunk is checked against what the model takes (features, numeric,
finite) before it runs. Outputs (:mod:`zoo.exports.deploy.writers`): Parquet, CSV,
JSON lines or ``.npy``, chosen by the extension of ``-o``, written whole or not
at all; CSV (or JSON lines) on stdout.
"""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import numpy as np

from zoo import files
from zoo.errors import PredictInputError
from zoo.exports.deploy import DEFAULT_CHUNK_ROWS
from zoo.exports.deploy.predictor import Predictor
from zoo.exports.deploy.writers import FORMATS, open_writer
from zoo.tables import readers
from zoo.tables.readers import Columns, Rows

NUMPY = (".npy", ".npz")


def read_rows(source: str | Path, spec: Columns, chunk_rows: int = DEFAULT_CHUNK_ROWS,
              stdin: IO[bytes] | None = None) -> Iterator[Rows]:
    """:class:`Rows` of ``source`` (``-`` for CSV on stdin), ``chunk_rows`` at a time."""
    if str(source) == "-":
        yield from readers.csv_rows(stdin or sys.stdin.buffer, spec, chunk_rows, "<stdin>")
        return
    path = Path(source)
    if not path.exists():
        raise PredictInputError(f"input {path} does not exist")
    if path.is_dir():
        raise PredictInputError(f"input {path} is a directory: give a file, or -o DIR to score every file in it")
    suffix = path.suffix.lower()
    if suffix in NUMPY:
        if spec.columns is not None or spec.id_column is not None:
            flag = "--columns" if spec.columns is not None else "--id-column"
            raise PredictInputError(f"{path} is an array without column names: {flag} applies to Parquet, "
                                    "Arrow and CSV inputs")
        for chunk in _array_chunks(path, spec.n_features, chunk_rows):
            yield Rows(chunk)
    elif readers.kind(path):
        yield from readers.read(path, spec, chunk_rows)
    else:
        raise PredictInputError(f"cannot read {path}: give a .parquet, .arrow/.feather, .csv, .npy or .npz file, "
                                "or - for CSV on stdin")


def _array_chunks(path: Path, n_features: int, chunk_rows: int) -> Iterator:
    """``.npy`` and ``.npz`` read a chunk at a time, never whole: a memory map would keep every page it
    touched resident, and ``np.load`` of an ``.npz`` member reads it all (1M x 64: 380 MiB)."""
    if path.suffix.lower() == ".npy":
        with open(path, "rb") as handle:
            yield from _npy_stream(handle, path, n_features, chunk_rows)
        return
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise PredictInputError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})") from None
    with archive:
        names = [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
        if "X" not in names and len(names) != 1:
            raise PredictInputError(f"{path}: no array 'X' among {', '.join(names) or 'nothing'}; "
                                    "name the features X")
        member = "X" if "X" in names else names[0]
        try:
            with archive.open(f"{member}.npy") as handle:  # decompresses as it goes (np.savez_compressed)
                yield from _npy_stream(handle, path, n_features, chunk_rows)
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise PredictInputError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})") from None


def _npy_stream(handle, path: Path, n_features: int, chunk_rows: int) -> Iterator:
    try:
        version = np.lib.format.read_magic(handle)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran_order, dtype = read_header(handle)
    except Exception as exc:
        raise PredictInputError(f"{path}: not a readable .npy file ({type(exc).__name__}: {exc})") from None
    _check_array(path, dtype, shape, n_features)
    if fortran_order and len(shape) == 2 and shape[0] > 1:
        raise PredictInputError(f"{path}: a Fortran-ordered array cannot be streamed by rows; "
                                "save it with np.save(path, np.ascontiguousarray(X))")
    remaining = int(np.prod(shape)) // n_features
    while remaining:
        rows = min(chunk_rows, remaining)
        chunk = np.empty((rows, n_features), dtype=dtype)  # read straight into it: one buffer per chunk
        view = memoryview(chunk).cast("B")
        got = 0
        while got < len(view):
            n = handle.readinto(view[got:])
            if not n:
                raise PredictInputError(f"{path}: the file ends early (truncated)")
            got += n
        remaining -= rows
        yield chunk.astype(np.float32, copy=False)


def _check_array(path: Path, dtype, shape: tuple, n_features: int) -> None:
    if dtype.kind not in "fiub":
        raise PredictInputError(f"{path}: features must be numbers, got dtype {dtype}")
    if not (len(shape) == 2 and shape[1] == n_features) and shape != (n_features,):
        raise PredictInputError(f"{path}: the model takes rows of {n_features} features, got an array of "
                                f"shape {shape}")
    if 0 in shape:
        raise PredictInputError(f"{path}: no rows")


def predict(predictor: Predictor, rows: Iterator[Rows], writer, *,
            on_rows: Callable[[int], None] | None = None) -> int:
    """Run every chunk through ``predictor`` and hand the results to ``writer``; return the row count."""
    total = 0
    names = predictor.feature_names
    for chunk in rows:
        predictor.check(chunk.X, total, names)
        outputs = predictor.outputs(chunk.X, ["probabilities", "label"])
        writer.write(chunk.ids, outputs["label"], outputs["probabilities"])
        total += len(chunk.X)
        if on_rows:
            on_rows(len(chunk.X))
    writer.close()
    return total


def output_format(output: Path | None, fmt: str | None) -> str:
    """The format of ``-o`` (by its extension), or of stdout (``--format``, CSV by default)."""
    if output is None:
        if fmt in ("parquet", "npy"):
            raise PredictInputError(f"{fmt} is binary: write it to a file with -o FILE.{fmt}")
        return fmt or "csv"
    found = FORMATS.get(output.suffix.lower())
    if found is None:
        raise PredictInputError(f"cannot tell the format of {output}: end -o in "
                                f"{', '.join(sorted(set(FORMATS)))}")
    if fmt is not None and fmt != found:
        raise PredictInputError(f"--format {fmt} contradicts -o {output} ({found}): drop --format")
    return found


def score(predictor: Predictor, source: str | Path, output: Path | None, *, fmt: str,
          columns: tuple[str, ...] | None = None, id_column: str | None = None,
          chunk_rows: int = DEFAULT_CHUNK_ROWS, on_rows: Callable[[int], None] | None = None,
          csv_safe: bool = False) -> int:
    """Score ``source`` into ``output`` (atomically: whole or not at all) or stdout; return the row count."""
    spec = predictor.columns(columns, id_column)
    rows = read_rows(source, spec, chunk_rows)
    model = predictor.model

    def run(handle) -> int:
        writer = open_writer(fmt, handle, model.class_labels, model.head, id_column, csv_safe=csv_safe)
        return predict(predictor, rows, writer, on_rows=on_rows)

    if output is None:
        sys.stdout.flush()
        count = run(sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return count
    counted = []
    files.atomic_write(output, lambda handle: counted.append(run(handle)))
    return counted[0]
