"""Tables through pyarrow: Parquet, Arrow/Feather and CSV, streamed for scoring (whole for training, in
:mod:`.sources`, with the same parsing).

Scoring streams the formats training reads whole. Each streaming reader yields :class:`Rows`: the model's
features (a float32 block, or for a model trained on a table a
:class:`~zoo.tables.Frame` of its columns, typed as they were at training) and,
when ``--id-column`` names one, that column as it was (any Arrow type), to be
written beside the predictions. Memory stays bounded by the batch size, not by
the file: Parquet is read a batch at a time, Arrow IPC a record batch at a time
(not memory-mapped: mapped pages would stay resident), CSV a block at a time.

Which columns are features:

1. ``--columns a,b,...``: exactly those, in that order;
2. else the feature names the bundle recorded at training (a CSV header,
   scikit-learn's names): every one must be there, and a column that is neither
   a feature nor the id column is refused, since it would be silently dropped;
3. else every numeric column in order, less the id column.

A model trained on a table takes its feature columns by name, whatever the
order; the target and the columns left out at training may be there too.

A headerless CSV has no names: its columns are the features, in order.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from zoo.errors import PredictInputError, first_line
from zoo.tables import is_number
from zoo.tables.encoding import frame
from zoo.tables.features import PANDAS_INDEX, kind_of, listing

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from zoo.tables import Frame
    from zoo.tables.features import Features

#: Input suffixes read by pyarrow (``.npy``/``.npz`` are read in :mod:`zoo.exports.deploy.scoring`).
PARQUET, ARROW, CSV = (".parquet", ".pq"), (".arrow", ".feather", ".ipc"), (".csv",)
SUFFIXES = PARQUET + ARROW + CSV


@dataclass(frozen=True)
class Columns:
    """What the user said about the columns, and what the bundle knows."""

    n_features: int
    feature_names: tuple[str, ...] | None = None  # recorded at training
    columns: tuple[str, ...] | None = None  # --columns
    id_column: str | None = None  # --id-column
    api: bool = False  # name the Python API's argument in messages, not the CLI's flags
    features: Features | None = None  # a model trained on a table: its columns, kinds and what it left out

    def flag(self, name: str) -> str:
        return {"columns": "columns=[...]", "id_column": "id_column="}[name] if self.api else \
            {"columns": "--columns A,B,...", "id_column": "--id-column NAME"}[name]


@dataclass
class Rows:
    X: np.ndarray | Frame  # float32 (rows, n_features), or a table model's columns
    ids: pa.Array | None = None


def kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    for name, suffixes in (("parquet", PARQUET), ("arrow", ARROW), ("csv", CSV)):
        if suffix in suffixes:
            return name
    return None


def _numeric(type_: pa.DataType) -> bool:
    import pyarrow.types as t

    return t.is_integer(type_) or t.is_floating(type_) or t.is_boolean(type_) or t.is_decimal(type_) \
        or t.is_null(type_)


def resolve(schema: pa.Schema, spec: Columns, where: str) -> list[str]:
    """The feature columns of ``schema``, in model order; one line naming what is wrong otherwise."""
    names = list(schema.names)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise PredictInputError(f"{where}: column {repeated[0]!r} appears more than once")
    if spec.id_column is not None and spec.id_column not in names:
        raise PredictInputError(f"{where} has no column {spec.id_column!r} ({spec.flag('id_column')}); "
                                f"its columns: {listing(names)}")
    if spec.features is not None and spec.columns is None:
        return _resolve_table(schema, spec, where)
    if spec.columns is not None:
        missing = [c for c in spec.columns if c not in names]
        if missing:
            raise PredictInputError(f"{where} has no column {listing(missing)} ({spec.flag('columns')}); "
                                    f"its columns: {listing(names)}")
        chosen = list(spec.columns)
        if len(chosen) != spec.n_features:
            raise PredictInputError(f"{spec.flag('columns')} names {len(chosen)} columns, but the model takes "
                                    f"{spec.n_features} features")
    elif spec.feature_names is not None:
        chosen = list(spec.feature_names)
        missing = [c for c in chosen if c not in names]
        if missing:
            raise PredictInputError(
                f"{where} lacks the feature column{'s' if len(missing) > 1 else ''} {listing(missing)} the "
                f"model was trained on; rename the columns, or pass {spec.flag('columns')} naming the "
                f"columns that hold the model's {spec.n_features} features, in order")
        extra = [c for c in names if c not in chosen and c != spec.id_column]
        if extra:
            raise PredictInputError(
                f"{where} has column{'s' if len(extra) > 1 else ''} {listing(extra)} that the model does not "
                f"take: {'drop it' if spec.api else 'pass --id-column NAME to carry one through'}, or pass "
                f"{spec.flag('columns')} to pick the features")
    else:
        chosen = [n for n in names if n != spec.id_column and _numeric(schema.field(n).type)]
        if len(chosen) != spec.n_features:
            skipped = [n for n in names if n != spec.id_column and n not in chosen]
            why = f" (not numeric: {listing(skipped)})" if skipped else ""
            raise PredictInputError(
                f"{where} has {len(chosen)} numeric columns{why}, but the model takes {spec.n_features} "
                f"features; pass {spec.flag('columns')} to pick them")
    for name in chosen:
        type_ = schema.field(name).type
        if not _numeric(type_):
            raise PredictInputError(f"{where}: column {name!r} holds {type_} values, not numbers")
    return chosen


def _resolve_table(schema: pa.Schema, spec: Columns, where: str) -> list[str]:
    """A table model's feature columns, by name; each of the kind it was at training."""
    names, features = list(schema.names), spec.features
    missing = [c for c in features.names if c not in names]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise PredictInputError(f"{where} lacks the feature column{plural} {listing(missing)} the model was trained "
                                "on; rename the columns to match")
    known = {*features.names, features.target, features.id_column, spec.id_column, *features.ignored}
    extra = [c for c in names if c not in known and not PANDAS_INDEX.match(c)]
    if extra:
        raise PredictInputError(
            f"{where} has column{'s' if len(extra) > 1 else ''} {listing(extra)} that the model does not take: "
            f"{'drop it' if spec.api else 'pass --id-column NAME to carry one through, or drop it'}")
    for feature in features.columns:
        type_ = schema.field(feature.name).type
        kind = kind_of(type_)
        if feature.kind == "numeric" and kind != "numeric":
            raise PredictInputError(f"{where}: column {feature.name!r} holds {type_} values; the model was trained on "
                                    "it as numbers")
        if feature.kind == "categorical" and kind is None:
            raise PredictInputError(f"{where}: column {feature.name!r} holds {type_} values; the model was trained on "
                                    "it as categories (strings)")
    return list(features.names)


def convert(batch: pa.Table | pa.RecordBatch, chosen: list[str], spec: Columns) -> np.ndarray | Frame:
    """A batch's features as the model takes them: a float32 block, or a table model's frame."""
    if spec.features is not None and spec.columns is None:
        return frame(spec.features, batch)
    return matrix([batch.column(c) for c in chosen], batch.num_rows)


def matrix(columns: Sequence[Any], rows: int) -> np.ndarray:
    """Arrow columns (arrays or chunked arrays) into one C-ordered float32 block; nulls become NaN."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    out = np.empty((rows, len(columns)), dtype=np.float32)
    for j, column in enumerate(columns):
        type_ = column.type
        if column.null_count or not (pa.types.is_integer(type_) or pa.types.is_floating(type_)):
            column = pc.fill_null(pc.cast(column, pa.float64()), float("nan"))  # bool, decimal; a null is NaN
        out[:, j] = column.to_numpy(zero_copy_only=False)
    return out


def table_rows(table: pa.Table | pa.RecordBatch, spec: Columns, where: str) -> Rows:
    """One in-memory table (from pandas, pyarrow or a reader's batch) as :class:`Rows`."""
    chosen = resolve(table.schema, spec, where)
    ids = table.column(spec.id_column) if spec.id_column is not None else None
    return Rows(convert(table, chosen, spec), ids)


def read(path: Path, spec: Columns, batch_rows: int) -> Iterator[Rows]:
    """:class:`Rows` from a Parquet, Arrow/Feather or CSV file, ``batch_rows`` at a time."""
    name = kind(path)
    if name == "parquet":
        yield from _parquet(path, spec, batch_rows)
    elif name == "arrow":
        yield from _arrow(path, spec, batch_rows)
    else:
        yield from csv_rows(path, spec, batch_rows)


def _batches_of(batches: Iterator[pa.RecordBatch], spec: Columns, where: str, batch_rows: int,
                chosen: list[str] | None = None) -> Iterator[Rows]:
    """Record batches sliced to ``batch_rows``, as :class:`Rows` of the ``chosen`` feature columns (resolved on
    the first batch's schema when not given)."""
    seen = 0
    for batch in batches:
        if chosen is None:
            chosen = resolve(batch.schema, spec, where)
        for start in range(0, batch.num_rows, batch_rows):
            part = batch.slice(start, batch_rows)
            ids = part.column(spec.id_column) if spec.id_column is not None else None
            yield Rows(convert(part, chosen, spec), ids)
            seen += part.num_rows
    if not seen:
        raise PredictInputError(f"{where}: no rows")


def _parquet(path: Path, spec: Columns, batch_rows: int) -> Iterator[Rows]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # buffer_size: column chunks are streamed a buffer at a time instead of read whole, which bounds
        # memory by the batch, not by the row group (pandas writes a whole frame as one).
        handle = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
    except (pa.ArrowException, OSError) as exc:
        raise PredictInputError(f"{path}: not a readable Parquet file ({_arrow_message(exc)})") from None
    with handle:
        chosen = resolve(handle.schema_arrow, spec, str(path))
        wanted = chosen + ([spec.id_column] if spec.id_column is not None and spec.id_column not in chosen
                           else [])
        try:
            yield from _batches_of(handle.iter_batches(batch_size=batch_rows, columns=wanted), spec, str(path),
                                   batch_rows, chosen)
        except pa.ArrowException as exc:
            raise PredictInputError(f"{path}: cannot read it ({_arrow_message(exc)})") from None


def _arrow(path: Path, spec: Columns, batch_rows: int) -> Iterator[Rows]:
    import pyarrow as pa

    with pa.OSFile(str(path)) as handle:
        try:
            reader = pa.ipc.open_file(handle)
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        except pa.ArrowInvalid:  # not the file format: perhaps the stream format
            handle.seek(0)
            try:
                batches = iter(pa.ipc.open_stream(handle))
            except pa.ArrowException as exc:
                raise PredictInputError(f"{path}: not an Arrow IPC (Feather v2) file ({_arrow_message(exc)})") \
                    from None
        try:
            yield from _batches_of(batches, spec, str(path), batch_rows)
        except pa.ArrowException as exc:
            raise PredictInputError(f"{path}: cannot read it ({_arrow_message(exc)})") from None


# -- CSV -------------------------------------------------------------------------------------------


class _Rejoined(io.RawIOBase):
    """A binary stream whose first bytes were already read (to look at the header), put back in front."""

    def __init__(self, head: bytes, rest: IO[bytes]):
        self.head, self.rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.rest.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def first_row(stream: IO[bytes]) -> bytes:
    """The first line of a CSV stream that holds something (blank lines and a lone byte-order mark skipped), or
    b"" when there is none."""
    first = stream.readline()
    while first and not first.strip(b"\r\n\t ,\xef\xbb\xbf"):
        first = stream.readline()
    return first


def _header(first_line: bytes, where: str, names: Sequence[str] | None = None) -> list[str] | None:
    """The column names a first line gives, or None when it is a row of data.

    ``names`` None (a matrix model's rows): a header has no number in it. Otherwise (a table: training, or a
    model trained on one, whose column ``names`` are known) it is a header when it names all of ``names``, or
    when a cell is a word, so that a column named ``2021`` is still a name.
    """
    try:
        text = first_line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PredictInputError(f"{where}: not a text CSV file (not UTF-8)") from None
    cells = next(csv.reader([text]), [])
    if not cells or all(not c.strip() for c in cells):
        return None
    stripped = [c.strip() for c in cells]
    if names is None:
        return None if any(is_number(c) for c in cells) else stripped
    if (names and set(names) <= set(stripped)) or any(c and not is_number(c) for c in stripped):
        return stripped
    return None


def csv_rows(source: Path | IO[bytes], spec: Columns, batch_rows: int, where: str | None = None) -> Iterator[Rows]:
    """CSV from a path or a binary stream (stdin), a pyarrow block at a time."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    where = where or str(source)
    stream = open(source, "rb") if isinstance(source, Path) else source
    try:
        first = first_row(stream)
        if not first:
            raise PredictInputError(f"{where}: no rows")
        table = spec.features is not None and spec.columns is None
        names = _header(first, where, spec.features.names if table else None)
        if names is None and table:
            raise PredictInputError(f"{where} has no header line; a model trained on a table takes its columns by "
                                    f"name ({', '.join(spec.features.names[:4])}, ...): add the header")
        if names is None:  # no header: every column is a feature, in order
            width = len(next(csv.reader([first.decode("utf-8-sig")])))
            if spec.id_column is not None or spec.columns is not None:
                flag = "--id-column" if spec.id_column is not None else "--columns"
                raise PredictInputError(f"{where} has no header line to pick {flag} from; add one")
            if width != spec.n_features:
                raise PredictInputError(f"{where} line 1: {width} values, but the model takes {spec.n_features} "
                                        "features per row")
            names = chosen = [f"column {i + 1}" for i in range(width)]
            body = first  # a row: read it as data
        else:
            if len(set(names)) != len(names):
                raise PredictInputError(f"{where}: the header names a column more than once")
            # Every column may hold numbers until a cell says otherwise (then: one line naming it).
            chosen = resolve(pa.schema([(n, pa.float64()) for n in names]), spec, where)
            body = b""
        types = {n: pa.float32() for n in chosen}
        if table:  # typed as at training: a category stays a string, a boolean a boolean
            types = {f.name: pa.string() if f.kind == "categorical" else pa.bool_() if f.type == "bool" else
                     pa.float64() for f in spec.features.columns}
        # 1 MiB blocks (pyarrow's default is 16): its reader keeps several in flight, and larger ones buy
        # no speed here while they cost memory. A block must hold whole rows: wide rows get larger ones.
        read_options = pcsv.ReadOptions(column_names=names, block_size=max(1 << 20, 64 * len(first)))
        # A table model reads gaps as training did (pyarrow's null spellings, NA and n/a among them, are gaps in a
        # text column too); a matrix model's id column is carried through as written.
        convert = pcsv.ConvertOptions(column_types=types, include_columns=chosen + (
            [spec.id_column] if spec.id_column is not None else []), strings_can_be_null=table,
            quoted_strings_can_be_null=table)
        try:
            reader = pcsv.open_csv(_Rejoined(body, stream), read_options=read_options, convert_options=convert)
            yield from _batches_of(iter(reader), spec, where, batch_rows, chosen)
        except pa.ArrowInvalid as exc:
            raise PredictInputError(_csv_problem(exc, names, body == b"", where, source)) from None
    finally:
        if isinstance(source, Path):
            stream.close()


def _csv_problem(exc: Exception, names: list[str], headed: bool, where: str, source, training: bool = False) -> str:
    """pyarrow's CSV error as one line naming the column, and the line when the file can be read again."""
    import re

    message = _arrow_message(exc)
    if "Empty CSV file" in message:
        return f"{where}: no rows"
    found = re.search(r"CSV column #(\d+).*invalid value '(.*)'", message)
    if found:
        column, value = int(found.group(1)), found.group(2)
        line = _find_line(source, lambda cells: len(cells) > column and cells[column] == value, headed)
        at = f" line {line}," if line else ""
        named = f" ({names[column]!r})" if headed else ""
        return f"{where}{at} column {column + 1}{named}: {value!r} is not a number"
    counted = re.search(r"Expected (\d+) columns, got (\d+)", message)
    if counted:
        expected, got = int(counted.group(1)), int(counted.group(2))
        line = _find_line(source, lambda cells: len(cells) == got, headed)
        at = f" line {line}:" if line else ":"
        return (f"{where}{at} {got} values, but " + (f"the header has {expected}" if headed else
                f"earlier rows have {expected}" if training else f"the model takes {expected} features per row"))
    return f"{where}: not a readable CSV file ({message})"


def _find_line(source, matches, headed: bool) -> int | None:
    """The first line of a CSV file whose cells ``matches`` (None for stdin, which cannot be read again)."""
    if not isinstance(source, Path):
        return None
    with open(source, newline="", encoding="utf-8-sig", errors="replace") as handle:
        for line_no, cells in enumerate(csv.reader(handle), start=1):
            if cells and not (headed and line_no == 1) and matches(cells):
                return line_no
    return None


def _arrow_message(exc: Exception) -> str:
    return first_line(exc, 200)
