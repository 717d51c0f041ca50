"""``zoo predict``: labels and probabilities for rows of features, streamed in bounded memory.

Inputs: ``.npy`` and ``.npz`` (array ``X``, or its only array), both read a
chunk at a time, ``.csv`` or ``-`` (CSV on stdin; a first line of
non-numeric cells is a header), one row of raw features per sample. Each chunk
is checked against what the model takes (feature count, numeric, finite) before
it runs; output is CSV or JSON lines, written whole or not at all.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from zoo.errors import ZooError
from zoo.exports.deployed import Deployed

DEFAULT_CHUNK_ROWS = 65536


class PredictInputError(ZooError):
    """Input rows that the model cannot take."""


def read_chunks(source: str, n_features: int, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                stdin: IO[str] | None = None) -> Iterator:
    """Float32 chunks of shape (rows, n_features) from ``source`` (``-`` for CSV on stdin)."""
    if source == "-":
        yield from _csv_chunks(stdin or sys.stdin, "<stdin>", n_features, chunk_rows)
        return
    path = Path(source)
    if not path.exists():
        raise PredictInputError(f"input {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as handle:  # -sig: Excel's byte-order mark
            yield from _csv_chunks(handle, str(path), n_features, chunk_rows)
    elif suffix in (".npy", ".npz"):
        yield from _array_chunks(path, n_features, chunk_rows)
    else:
        raise PredictInputError(f"cannot read {path}: give a .npy, .npz or .csv file, or - for CSV on stdin")


def _array_chunks(path: Path, n_features: int, chunk_rows: int) -> Iterator:
    """``.npy`` and ``.npz`` read a chunk at a time, never whole: a memory map would keep every page it
    touched resident, and ``np.load`` of an ``.npz`` member reads it all (1M x 64: 380 MiB)."""
    import zipfile

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
    import numpy as np

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


def _csv_chunks(handle: IO[str], name: str, n_features: int, chunk_rows: int) -> Iterator:
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    seen = 0
    try:
        for line_no, cells in enumerate(csv.reader(handle), start=1):
            if line_no == 1 and cells and cells[0].startswith("\ufeff"):  # a byte-order mark on stdin
                cells[0] = cells[0][1:]
            if not cells or all(not c.strip() for c in cells):
                continue
            if line_no == 1 and not any(_is_number(c) for c in cells):
                continue  # header
            if len(cells) != n_features:
                raise PredictInputError(f"{name} line {line_no}: {len(cells)} values, but the model takes "
                                        f"{n_features} features per row")
            rows.append(cells)
            line_numbers.append(line_no)
            if len(rows) == chunk_rows:
                yield _parse(rows, line_numbers, name)
                seen += len(rows)
                rows, line_numbers = [], []
    except UnicodeDecodeError:
        raise PredictInputError(f"{name}: not a text CSV file (not UTF-8)") from None
    except csv.Error as exc:
        raise PredictInputError(f"{name}: not a readable CSV file ({exc})") from None
    if rows:
        yield _parse(rows, line_numbers, name)
    elif not seen:
        raise PredictInputError(f"{name}: no rows")


def _parse(rows: list[list[str]], line_numbers: list[int], name: str):
    import numpy as np

    try:
        return np.array(rows, dtype=np.float32)
    except ValueError:
        for row, line_no in zip(rows, line_numbers):
            for col, cell in enumerate(row, start=1):
                if not _is_number(cell):
                    raise PredictInputError(f"{name} line {line_no}, column {col}: {cell.strip()!r} is not a "
                                            "number") from None
        raise


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def check_finite(chunk, first_row: int, allow_nan: bool) -> None:
    import numpy as np

    if allow_nan:
        return
    bad = ~np.isfinite(chunk)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise PredictInputError(f"row {first_row + row + 1}, feature {col + 1} is {chunk[row, col]}: "
                                "NaN/Inf inputs give meaningless probabilities; clean them, or pass --allow-nan")


class Writer:
    """CSV (``label,class_index,p_<class>...``) or JSON lines, one row per input row."""

    def __init__(self, handle: IO[str], deployed: Deployed, fmt: str):
        self.handle, self.fmt = handle, fmt
        self.labels = list(deployed.class_labels)
        self.columns = self.labels if deployed.head == "softmax" else self.labels[1:2] or ["1"]
        self.started = False

    def write(self, labels, probabilities) -> None:
        # -1: a row with a NaN/Inf feature (with --allow-nan) has no class
        names = [self.labels[i] if 0 <= i < len(self.labels) else None for i in labels.tolist()]
        rows = probabilities.tolist()
        out = io.StringIO()
        if self.fmt == "csv" and not self.started:  # after the first chunk passed its checks
            out.write(",".join(["label", "class_index", *(_csv_cell(f"p_{c}") for c in self.columns)]) + "\n")
        self.started = True
        if self.fmt == "csv":
            for name, index, p in zip(names, labels.tolist(), rows):
                out.write(f"{'' if name is None else _csv_cell(name)},{index},{','.join(f'{v:.9g}' for v in p)}\n")
        else:
            for name, index, p in zip(names, labels.tolist(), rows):
                out.write(json.dumps({"label": name, "class_index": index,
                                      "probabilities": dict(zip(self.columns, p))}) + "\n")
        self.handle.write(out.getvalue())


def _csv_cell(text: str) -> str:
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ',"\n') else text


def predict(deployed: Deployed, chunks: Iterator, handle: IO[str], *, fmt: str = "csv",
            runtime: str = "onnxruntime-cpu", allow_nan: bool = False, on_rows=None) -> int:
    """Run every chunk on the named runtime and write the results; return the number of rows."""
    import numpy as np

    from zoo.exports.runtimes import open_session, run, select

    [(chosen, _)] = select([runtime])
    session = open_session(chosen, deployed.model_path)
    step = chosen.max_rows or DEFAULT_CHUNK_ROWS
    writer = Writer(handle, deployed, fmt)
    total = 0
    for chunk in chunks:
        check_finite(chunk, total, allow_nan)
        for start in range(0, len(chunk), step):
            part = chunk[start:start + step]
            outputs = run(session, np.ascontiguousarray(part, dtype=np.float32), ["probabilities", "label"])
            writer.write(outputs["label"], outputs["probabilities"])
        total += len(chunk)
        if on_rows:
            on_rows(len(chunk))
    return total
