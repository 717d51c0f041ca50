"""Predictions out: Parquet, CSV, JSON lines or ``.npy``, a batch at a time.

Every format has the same columns: the ``--id-column`` passed through (when
given), ``label`` (the class name; empty/null for a row with a NaN feature under
``--allow-nan``), ``class_index`` (-1 for such a row) and one ``p_<class>`` per
probability the model outputs (every class for a softmax head; the positive
class for a sigmoid head). Parquet and CSV are written by pyarrow; the CSV
header by Python's csv module, so it is plain, valid CSV whatever the class
names hold. JSON lines are written by the json module: a non-finite number (a
probability of a NaN row under ``--allow-nan``) is ``null``, never a bare
``NaN`` token, which is not JSON. The ``.npy`` is one structured array
(``np.load(path)["label"]``) whose header numpy itself writes.

CSV cells are written as they are: a label or an id that begins with ``=``, ``+``,
``-`` or ``@`` is a formula to a spreadsheet that opens the file. ``csv_safe``
(``zoo predict --csv-safe``) prefixes such text cells, and such a header, with a
``'``, as OWASP advises for files meant for spreadsheets; it changes the data,
so it is off unless asked for.
"""

from __future__ import annotations

import io
import math
import warnings
from typing import IO, TYPE_CHECKING

from zoo.errors import ZooError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

#: -o suffix -> format.
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".npy": "npy"}
SUFFIX = {"parquet": ".parquet", "csv": ".csv", "jsonl": ".jsonl", "npy": ".npy"}


class OutputError(ZooError):
    """Predictions that cannot be written as asked."""


def probability_columns(class_labels: list[str], head: str) -> list[str]:
    """The classes that have a probability column: all of them for softmax, the positive one for sigmoid."""
    return list(class_labels) if head == "softmax" else list(class_labels[1:2]) or ["1"]


#: What starts a formula in a spreadsheet (OWASP, "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def defuse(text: str) -> str:
    """A text cell a spreadsheet shows as text: ``'`` before one that would start a formula."""
    return "'" + text if text.startswith(FORMULA_START) else text


class Writer:
    """Base: column names, the id column's name, and the Arrow table of one batch."""

    def __init__(self, handle: IO[bytes], class_labels: list[str], head: str, id_name: str | None = None, *,
                 csv_safe: bool = False):
        self.handle, self.class_labels, self.id_name = handle, list(class_labels), id_name
        self.csv_safe = csv_safe
        self.classes = probability_columns(class_labels, head)
        self.names = ([id_name] if id_name is not None else []) + ["label", "class_index"] + \
            [f"p_{c}" for c in self.classes]
        clash = sorted({n for n in self.names if self.names.count(n) > 1})
        if clash:
            raise OutputError(f"the id column {id_name!r} has the name of an output column ({clash[0]!r}); "
                              "rename it in the input")
        self.rows = 0
        self._labels = None  # the class labels as an Arrow array, made with the first batch

    def table(self, ids, labels: np.ndarray, probabilities: np.ndarray) -> pa.Table:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        labels = labels.astype(np.int64, copy=False)
        if self._labels is None:
            self._labels = texts(self.class_labels)
        index = numbers(labels, valid=labels >= 0)  # -1: no class, a null label
        arrays = ([ids] if self.id_name is not None else []) + [
            pc.take(self._labels, index), numbers(labels),
            *(numbers(np.ascontiguousarray(probabilities[:, j], dtype=np.float32))
              for j in range(probabilities.shape[1]))]
        return pa.Table.from_arrays(arrays, names=self.names)

    def write(self, ids, labels: np.ndarray, probabilities: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the file (a footer, a header's row count); the handle stays open."""


def numbers(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """A 1-D numpy array of numbers as an Arrow array over the same memory (``valid``: False for a null).

    Built from its buffers rather than with ``pa.array``, whose first call on a numpy array (or a list)
    imports pandas when it is installed: 0.2 s, a sixth of scoring a million rows.
    """
    import numpy as np
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    if valid is None or valid.all():
        return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)],
                                     null_count=0)
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [bitmap, pa.py_buffer(values)],
                                 null_count=int(len(valid) - np.count_nonzero(valid)))


def texts(values: list[str]) -> pa.Array:
    """Python strings as an Arrow string array, without ``pa.array`` (see :func:`numbers`)."""
    import numpy as np
    import pyarrow as pa

    encoded = [v.encode("utf-8") for v in values]
    offsets = np.cumsum([0] + [len(e) for e in encoded], dtype=np.int64).astype(np.int32)
    return pa.Array.from_buffers(pa.string(), len(values), [None, pa.py_buffer(offsets),
                                                            pa.py_buffer(b"".join(encoded))], null_count=0)


class ParquetOut(Writer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.writer = None

    def write(self, ids, labels, probabilities) -> None:
        import pyarrow.parquet as pq

        table = self.table(ids, labels, probabilities)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.handle, table.schema, compression="snappy")
        self.writer.write_table(table)
        self.rows += len(labels)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class CsvOut(Writer):
    def write(self, ids, labels, probabilities) -> None:
        import pyarrow as pa
        import pyarrow.csv as pcsv

        text_ids = ids is not None and (pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type))
        if not self.rows:  # the header goes out with the first batch, after its checks passed
            import csv  # here, as json below: zoo --help imports this module for the formats' names

            names = [defuse(n) for n in self.names] if self.csv_safe else self.names
            if self.csv_safe:
                self.class_labels = [defuse(c) for c in self.class_labels]
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerow(names)
            self.handle.write(text.getvalue().encode("utf-8"))
            # pyarrow quotes every string when quoting is "needed"; class names that need no quotes get
            # none (3,3,... rather than "3",3,...), unless a string id column may need them.
            plain = not any(ch in c for c in self.class_labels for ch in ',"\r\n')
            self.options = pcsv.WriteOptions(include_header=False, batch_size=8192,
                                             quoting_style="none" if plain and not text_ids else "needed")
        if self.csv_safe and text_ids:
            ids = _defused(ids)
        pcsv.write_csv(self.table(ids, labels, probabilities), self.handle, self.options)
        self.rows += len(labels)


def _defused(texts):
    """``defuse`` over an Arrow string array, in Arrow."""
    import pyarrow.compute as pc

    pattern = "^[" + "".join("\\" + c if c in "-" else c for c in FORMULA_START) + "]"
    return pc.if_else(pc.match_substring_regex(texts, pattern), pc.binary_join_element_wise("'", texts, ""), texts)


class JsonlOut(Writer):
    """``{"id": ..., "label": "3", "class_index": 3, "probabilities": {"0": ..., ...}}`` per line.

    Encoded by the json module with ``allow_nan=False``: a number that is not finite is ``null`` (a NaN
    row's probabilities under ``--allow-nan``), and anything else that JSON cannot carry raises rather than
    writing a line a JSON parser rejects. Measured on 16,384 rows of 10 classes: 141 ms against 118 ms
    for the lines assembled by hand that this replaced.
    """

    def write(self, ids, labels, probabilities) -> None:
        import numpy as np

        if not self.rows:
            import json

            self.encode = json.JSONEncoder(allow_nan=False, default=str).encode
        rows = probabilities.tolist()
        if not np.isfinite(probabilities).all():
            rows = [[v if math.isfinite(v) else None for v in row] for row in rows]
        id_values = None if self.id_name is None else [
            None if isinstance(v, float) and not math.isfinite(v) else v for v in ids.to_pylist()]
        lines = []
        for n, (index, row) in enumerate(zip(labels.tolist(), rows)):
            line = {} if id_values is None else {self.id_name: id_values[n]}
            line.update(label=self.class_labels[index] if index >= 0 else None, class_index=index,
                        probabilities=dict(zip(self.classes, row)))
            lines.append(self.encode(line))
        self.handle.write(("\n".join(lines) + "\n").encode("utf-8"))
        self.rows += len(labels)


class NpyOut(Writer):
    """A structured ``.npy`` written as it streams: numpy writes the header for zero rows, leaving room to
    grow the row count in place (``numpy.lib.format.GROWTH_AXIS_MAX_DIGITS``), and the count is written
    into that room once the last batch is in."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.dtype = None

    def _dtype(self, ids):
        import numpy as np

        fields = []
        if self.id_name is not None:
            kind = ids.type
            try:
                id_dtype = np.dtype(kind.to_pandas_dtype())
            except (NotImplementedError, TypeError):
                id_dtype = np.dtype(object)
            if id_dtype.kind not in "iufb":
                raise OutputError(f"an .npy output holds numbers only, and the id column {self.id_name!r} holds "
                                  f"{kind}: write .parquet or .csv instead")
            fields.append((self.id_name, id_dtype))
        width = max([len(c) for c in self.class_labels] + [1])
        fields += [("label", f"<U{width}"), ("class_index", "<i8")] + [(f"p_{c}", "<f4") for c in self.classes]
        return np.dtype(fields)

    def _header(self, rows: int) -> bytes:
        import numpy as np

        empty = io.BytesIO()
        with warnings.catch_warnings():  # "format 3.0 ... NumPy >= 1.17": the format of a non-Latin-1 class name
            warnings.simplefilter("ignore", UserWarning)
            np.lib.format.write_array(empty, np.empty(0, self.dtype), allow_pickle=False)  # the header alone
        header = empty.getvalue()
        if not rows:
            return header
        zero, count = b"'shape': (0,), ", f"'shape': ({rows},), ".encode()
        grown = header.replace(zero, count, 1)
        end = len(grown) - 1  # the header ends in spaces and a newline: the growth takes spaces from its end
        grown = grown[:end - (len(count) - len(zero))] + grown[end:]
        if len(grown) != len(header) or not grown[:-1].endswith(b" "):
            raise OutputError("the .npy header has no room for the row count: write .parquet instead")
        return grown

    def write(self, ids, labels, probabilities) -> None:
        import numpy as np

        if self.dtype is None:
            self.dtype = self._dtype(ids)
            self.start = self.handle.tell()
            self.handle.write(self._header(0))
        block = np.empty(len(labels), dtype=self.dtype)
        if self.id_name is not None:
            block[self.id_name] = ids.to_numpy(zero_copy_only=False)
        names = np.array(self.class_labels + [""])
        block["label"] = names[np.where(labels < 0, len(self.class_labels), labels)]
        block["class_index"] = labels
        for j, c in enumerate(self.classes):
            block[f"p_{c}"] = probabilities[:, j]
        self.handle.write(block.tobytes())
        self.rows += len(labels)

    def close(self) -> None:
        if self.dtype is None:
            return
        end = self.handle.tell()
        self.handle.seek(self.start)
        self.handle.write(self._header(self.rows))
        self.handle.seek(end)


WRITERS = {"parquet": ParquetOut, "csv": CsvOut, "jsonl": JsonlOut, "npy": NpyOut}


def open_writer(fmt: str, handle: IO[bytes], class_labels: list[str], head: str,
                id_name: str | None = None, *, csv_safe: bool = False) -> Writer:
    return WRITERS[fmt](handle, class_labels, head, id_name, csv_safe=csv_safe)
