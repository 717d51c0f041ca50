"""A Parquet or Arrow table read in pieces: training on more rows than memory holds.

A table is cut into *pieces*: a Parquet file's row groups, an Arrow IPC file's record batches, the files in name
order. Every row has a *global index*, its place in that order, known from the files' metadata before any row is
read; everything random about a row is a function of its index and the seed (:func:`keys`), never of the order it
was read in:

- whether it is held out (:func:`held_out`): the same rows every epoch, on every rank, after ``--resume``;
- its key among the held-out or training rows that a bounded sample keeps (:func:`sample_keys`): the smallest keys
  win, so the sample is the same whichever process read which piece.

A process reads the rows ``[lo, hi)`` of the table as record batches of at most :data:`BATCH_ROWS` rows
(:func:`read`), opening only the pieces that overlap them (:func:`overlapping`): a rank of a distributed job reads
its own row range (:func:`rank_rows`), never the whole table.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zoo import files
from zoo.errors import PredictInputError
from zoo.tables.readers import _arrow_message, kind
from zoo.tables.sources import GLOB, directory_files

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

#: Rows per record batch read (a piece longer than this is read in several).
BATCH_ROWS = 65_536
#: Rows hashed at once when counting the training rows of a range.
_HASH_ROWS = 1 << 20


@dataclass(frozen=True)
class Piece:
    """A row group of a Parquet file, or a record batch of an Arrow IPC file, and where its rows sit in the table."""

    path: str
    kind: str  # parquet | arrow
    index: int
    start: int  # the global index of its first row
    rows: int

    @property
    def stop(self) -> int:
        return self.start + self.rows


@dataclass(frozen=True)
class Pieces:
    """A table as pieces: its files, its schema (every file's, its types widened where files differ) and its pieces
    in order."""

    name: str
    schema: pa.Schema
    paths: tuple[str, ...]
    pieces: tuple[Piece, ...]

    @property
    def rows(self) -> int:
        return self.pieces[-1].stop if self.pieces else 0

    @property
    def size(self) -> int:
        """The files' size on disk, in bytes."""
        return sum(Path(p).stat().st_size for p in self.paths)


def files_of(source: str) -> tuple[list[Path], str]:
    """The files a table source names, in order, and their kind (``parquet`` or ``arrow``); one line for a source
    that cannot be read in pieces (a CSV file, a directory without Parquet files, a symlink leading out of the
    directory, a glob that matches nothing)."""
    import glob

    path = Path(source)
    if GLOB & set(source) and not path.exists():
        found = [Path(p) for p in sorted(glob.glob(source))]
        if not found:
            raise PredictInputError(f"{source}: no file matches")
    elif path.is_dir():
        found = directory_files(path, source)
    elif not path.exists():
        raise PredictInputError(f"data file {source} does not exist")
    else:
        found = [path]
    kinds = {kind(p) for p in found}
    if kinds - {"parquet", "arrow"} or len(kinds) > 1:
        raise PredictInputError(f"{source}: training reads Parquet or Arrow IPC files in pieces, not "
                                f"{', '.join(sorted(str(k or p.suffix) for k in kinds for p in found[:1]))}; "
                                "write the table as Parquet, or load it whole (--no-stream)")
    return found, kinds.pop()


def open_pieces(source: str) -> Pieces:
    """The pieces of a Parquet file, directory or glob, or of an Arrow IPC file, from metadata alone."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths, what = files_of(source)
    pieces, schema, start = [], None, 0
    for path in paths:
        try:
            if what == "parquet":
                meta = pq.ParquetFile(path).metadata
                here = meta.schema.to_arrow_schema()
                counts = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
            else:
                with pa.memory_map(str(path)) as source_file:
                    reader = pa.ipc.open_file(source_file)
                    here = reader.schema
                    counts = [reader.get_batch(i).num_rows for i in range(reader.num_record_batches)]
        except (pa.ArrowException, OSError) as exc:
            what_file = "Parquet file" if what == "parquet" else "Arrow IPC file (an IPC stream cannot be read in " \
                                                                  "pieces: --no-stream)"
            raise PredictInputError(f"{path}: not a readable {what_file} ({_arrow_message(exc)})") from None
        here = here.remove_metadata()
        if schema is None:
            schema = here
        elif not here.equals(schema):
            # The same columns, in any order, of types one can hold the other's values (int32 and int64, a column
            # empty in one file: null): the wider type, as the in-memory path's concatenation promotes them.
            try:
                if set(here.names) != set(schema.names):
                    raise pa.ArrowInvalid("")
                schema = pa.unify_schemas([schema, here], promote_options="permissive")
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                raise PredictInputError(f"{path}: its columns differ from {paths[0].name}'s "
                                        f"({_difference(schema, here)}); every file of a table needs the same columns "
                                        "and types") from None
        for index, rows in enumerate(counts):
            if rows:
                pieces.append(Piece(str(path), what, index, start, rows))
                start += rows
    if not pieces:
        raise PredictInputError(f"{source}: no rows to train on")
    name = Path(source).name or source
    return Pieces(name, schema, tuple(str(p) for p in paths), tuple(pieces))


def _difference(first: pa.Schema, other: pa.Schema) -> str:
    for field in other:
        if field.name not in first.names:
            return f"{field.name!r} is new"
        if not first.field(field.name).type.equals(field.type):
            return f"{field.name!r} is {field.type}, not {first.field(field.name).type}"
    missing = [n for n in first.names if n not in other.names]
    return f"{missing[0]!r} is missing" if missing else "their order differs"


def overlapping(pieces: Pieces, lo: int, hi: int) -> list[Piece]:
    """The pieces holding any of the rows ``[lo, hi)``."""
    return [p for p in pieces.pieces if p.start < hi and p.stop > lo]


def read(piece: Piece, columns: list[str], lo: int = 0, hi: int | None = None,
         schema: pa.Schema | None = None) -> Iterator[tuple[pa.RecordBatch, int]]:
    """``(batch, global index of its first row)`` for the rows of ``piece`` within ``[lo, hi)``, ``columns`` only,
    at most :data:`BATCH_ROWS` rows a batch, cast to ``schema``'s types where the file's differ."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    first, last = max(lo, piece.start), min(piece.stop if hi is None else hi, piece.stop)
    if first >= last:
        return
    try:
        if piece.kind == "parquet":
            batches = pq.ParquetFile(piece.path).iter_batches(BATCH_ROWS, row_groups=[piece.index], columns=columns,
                                                              use_threads=False)
        else:
            source = pa.memory_map(piece.path)
            batches = iter([pa.ipc.open_file(source).get_batch(piece.index).select(columns)])
        at = piece.start
        for batch in batches:
            if batch.num_rows > BATCH_ROWS:  # an Arrow record batch: in slices
                parts = [batch.slice(s, BATCH_ROWS) for s in range(0, batch.num_rows, BATCH_ROWS)]
            else:
                parts = [batch]
            for part in parts:
                begin, end = max(first, at), min(last, at + part.num_rows)
                if begin < end:
                    yield _as(part.slice(begin - at, end - begin), schema), begin
                at += part.num_rows
                if at >= last:
                    return
    except (pa.ArrowException, OSError) as exc:
        raise PredictInputError(f"{piece.path}: cannot read its rows {first}..{last - 1} "
                                f"({_arrow_message(exc)})") from None


def _as(batch: pa.RecordBatch, schema: pa.Schema | None) -> pa.RecordBatch:
    """``batch`` with its columns cast to ``schema``'s types (a no-op where they agree)."""
    import pyarrow as pa

    if schema is None or all(f.type.equals(schema.field(f.name).type) for f in batch.schema):
        return batch
    arrays = [c if c.type.equals(schema.field(f.name).type) else c.cast(schema.field(f.name).type)
              for f, c in zip(batch.schema, batch.columns)]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


# -- what is random about a row: a function of its global index and the seed ---------------------------------------


def keys(first: int, rows: int, seed: int) -> np.ndarray:
    """A 64-bit key for each of the rows ``first .. first + rows - 1`` (splitmix64 of the index, offset by the seed:
    a bijection, so two rows never share a key)."""
    import numpy as np

    z = np.arange(first, first + rows, dtype=np.uint64)
    z += np.uint64((seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & 0xFFFFFFFFFFFFFFFF)
    return _mix(z)


def _mix(z: np.ndarray) -> np.ndarray:
    import numpy as np

    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def held_out(row_keys: np.ndarray, fraction: float) -> np.ndarray:
    """Whether each row is held out: its key's top 53 bits, as a number in [0, 1), below ``fraction``."""
    import numpy as np

    return (row_keys >> np.uint64(11)) < np.uint64(int(fraction * (1 << 53)))


def sample_keys(row_keys: np.ndarray) -> np.ndarray:
    """A second key per row, independent of :func:`held_out`'s: the smallest of these make a sample."""
    import numpy as np

    return _mix(row_keys ^ np.uint64(0xD1B54A32D192ED03))


def training_rows(lo: int, hi: int, fraction: float, seed: int) -> np.ndarray:
    """The cumulative count of training rows in ``[lo, hi)``, one entry per :data:`_HASH_ROWS` rows."""
    import numpy as np

    counts = [int((~held_out(keys(s, min(_HASH_ROWS, hi - s), seed), fraction)).sum())
              for s in range(lo, hi, _HASH_ROWS)]
    return np.cumsum(counts, dtype=np.int64)


def rank_rows(rows: int, fraction: float, seed: int, rank: int, world: int) -> tuple[int, int, int]:
    """``(lo, hi, n)``: the rows ``[lo, hi)`` rank ``rank`` of ``world`` trains on, holding exactly ``n`` training
    rows, the same ``n`` on every rank (distributed training takes the same number of steps everywhere); the
    ``total mod world`` last training rows are left out, as the in-memory path does."""
    import numpy as np

    if world == 1:
        return 0, rows, int(training_rows(0, rows, fraction, seed)[-1])
    cumulative = training_rows(0, rows, fraction, seed)
    per_rank = int(cumulative[-1]) // world

    def row_of(count: int) -> int:  # the global index just past the count-th training row
        if count == 0:
            return 0
        block = int(np.searchsorted(cumulative, count))
        start = block * _HASH_ROWS
        before = int(cumulative[block - 1]) if block else 0
        train = np.flatnonzero(~held_out(keys(start, min(_HASH_ROWS, rows - start), seed), fraction))
        return start + int(train[count - before - 1]) + 1

    return row_of(rank * per_rank), row_of((rank + 1) * per_rank), per_rank


def file_digest(path: str) -> bytes:
    """sha256 of one file's bytes."""
    return files.sha256(path).digest()
