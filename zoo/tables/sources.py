"""Whole tables, for training: a Parquet file, directory or glob, an Arrow IPC file or stream, a CSV file.

The CSV header rule, the messages and the file kinds are :mod:`.readers`' own, so that training and scoring parse a
file alike; the columns are then typed by :mod:`.features` and, at scoring, converted to the kinds recorded at
training.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import PredictInputError
from zoo.tables.readers import _arrow_message, _csv_problem, _header, first_row, kind

if TYPE_CHECKING:
    import pyarrow as pa


GLOB = set("*?[")


def is_table(source: str) -> bool:
    """Whether ``source`` names a table file, a directory of Parquet files (or of folders of them, refused when read)
    or a glob of them."""
    path = Path(source)
    return kind(path) is not None or bool(GLOB & set(source)) or (path.is_dir() and any(
        kind(p) == "parquet" or (p.is_dir() and any(kind(q) == "parquet" for q in p.iterdir()))
        for p in path.iterdir()))


def directory_files(path: Path, source: str) -> list[Path]:
    """The Parquet files directly in the directory ``path``, in name order; one line for a directory without any,
    for Parquet files in a subdirectory (a partitioned layout, which zoo does not read as one table), and for a
    symlink that leads out of the directory."""
    found, nested = [], None
    inside = path.resolve()
    for child in sorted(path.iterdir()):
        if kind(child) == "parquet":
            if child.is_symlink() and inside not in child.resolve().parents:
                raise PredictInputError(f"{child} is a symlink out of {source}; zoo does not follow it: copy the file "
                                        "in")
            if child.is_file():
                found.append(child)
        elif nested is None and child.is_dir() and not child.is_symlink() and any(
                kind(p) == "parquet" for p in child.iterdir()):
            nested = child
    if nested is not None:
        raise PredictInputError(f"{nested} holds Parquet files, which zoo does not read as part of {source} (a "
                                f"partitioned layout's folder names are not columns here): give a glob such as "
                                f"'{path}/*/*.parquet', or write the table as files directly in {source}")
    if not found:
        raise PredictInputError(f"{source} is a directory without .parquet files")
    return found


def read_table(source: str) -> tuple[pa.Table, bool]:
    """``(table, headed)`` for training: a Parquet file, a directory or glob of Parquet files, an Arrow IPC file or
    stream, or a CSV file (``headed`` is False for a CSV without a header line: its columns are named
    ``column 1``, ``column 2``, ...). One line naming the file for anything unreadable."""
    import glob

    import pyarrow as pa

    path = Path(source)
    if GLOB & set(source) and not path.exists():
        found = sorted(glob.glob(source))
        if not found:
            raise PredictInputError(f"{source}: no file matches")
        return _parquet_files([Path(p) for p in found], source), True
    if path.is_dir():
        return _parquet_files(directory_files(path, source), source), True
    if not path.exists():
        raise PredictInputError(f"data file {source} does not exist")
    name = kind(path)
    if name == "parquet":
        return _parquet_files([path], source), True
    if name == "arrow":
        with pa.OSFile(str(path)) as handle:
            try:
                return pa.ipc.open_file(handle).read_all(), True
            except pa.ArrowInvalid:
                handle.seek(0)
                try:
                    return pa.ipc.open_stream(handle).read_all(), True
                except pa.ArrowException as exc:
                    raise PredictInputError(f"{path}: not an Arrow IPC (Feather v2) file ({_arrow_message(exc)})") \
                        from None
    return _csv_table(path)


def _parquet_files(paths: list[Path], where: str) -> pa.Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for path in paths:
        try:
            tables.append(pq.read_table(path))
        except (pa.ArrowException, OSError) as exc:
            raise PredictInputError(f"{path}: not a readable Parquet file ({_arrow_message(exc)})") from None
    try:
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")
    except pa.ArrowException as exc:
        raise PredictInputError(f"{where}: the files' columns do not agree ({_arrow_message(exc)})") from None


def _csv_table(path: Path) -> tuple[pa.Table, bool]:
    """A CSV file whole. pyarrow infers each column's type from the first block; a column that turns out to hold
    words later on is read again as strings."""
    import re

    import pyarrow as pa
    import pyarrow.csv as pcsv

    with open(path, "rb") as handle:
        first = first_row(handle)
    if not first:
        raise PredictInputError(f"{path}: no rows")
    header = _header(first, str(path), ())
    names = header
    if header is None:
        width = len(next(csv.reader([first.decode("utf-8-sig")])))
        names = [f"column {i + 1}" for i in range(width)]
    elif len(set(header)) != len(header) or not all(header):
        raise PredictInputError(f"{path}: the header names a column more than once, or leaves one unnamed")
    if header is not None and len(header) == 1 and any(s in header[0] for s in ";\t|"):
        separator = next(s for s in ";\t|" if s in header[0])
        raise PredictInputError(f"{path}: its header is one column, {header[0][:60]!r}: zoo reads comma-separated "
                                f"files, and this one looks separated by {separator!r}; save it with commas, or as "
                                "Parquet")
    strings: dict[str, Any] = {}
    for _ in range(len(names) + 1):
        try:
            reading = pcsv.ReadOptions(column_names=names, skip_rows=int(header is not None))
            table = pcsv.read_csv(path, read_options=reading,
                                  convert_options=pcsv.ConvertOptions(column_types=strings, strings_can_be_null=True))
            break
        except pa.ArrowInvalid as exc:
            found = re.search(r"CSV column #(\d+): CSV conversion error", str(exc))
            if not found or names[int(found.group(1))] in strings:
                raise PredictInputError(_csv_problem(exc, names, header is not None, str(path), path, True)) from None
            strings[names[int(found.group(1))]] = pa.string()
    if table.num_rows == 0:
        raise PredictInputError(f"{path}: no data rows")
    return table, header is not None
