"""Predictions out: Parquet, CSV, JSON lines or ``.npy``, a batch at a time.

Every format has the same columns: the ``--id-column`` passed through (when
given), ``label`` (the class name; empty/null for a row with a NaN feature under
``--allow-nan``), ``class_index`` (-1 for such a row) and one ``p_<class>`` per
probability the model outputs (every class for a softmax head; the positive
class for a sigmoid head). Parquet and CSV are written by pyarrow; the CSV
header by Python's csv module, so it is plain, valid CSV whatever the class
names hold. The ``.npy`` is one structured array (``np.load(path)["label"]``).
"""

from __future__ import annotations

import csv
import io
import json
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


class Writer:
    """Base: column names, the id column's name, and the Arrow table of one batch."""

    def __init__(self, handle: IO[bytes], class_labels: list[str], head: str, id_name: str | None = None):
        self.handle, self.class_labels, self.id_name = handle, list(class_labels), id_name
        self.classes = probability_columns(class_labels, head)
        self.names = ([id_name] if id_name is not None else []) + ["label", "class_index"] + \
            [f"p_{c}" for c in self.classes]
        clash = sorted({n for n in self.names if self.names.count(n) > 1})
        if clash:
            raise OutputError(f"the id column {id_name!r} has the name of an output column ({clash[0]!r}); "
                              "rename it in the input")
        self.rows = 0

    def table(self, ids, labels: np.ndarray, probabilities: np.ndarray) -> pa.Table:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        index = pa.array(labels.astype(np.int64, copy=False), mask=labels < 0)  # -1: no class, a null label
        arrays = ([ids] if self.id_name is not None else []) + [
            pc.take(pa.array(self.class_labels, pa.string()), index),
            pa.array(labels.astype(np.int64, copy=False)),
            *(pa.array(np.ascontiguousarray(probabilities[:, j], dtype=np.float32))
              for j in range(probabilities.shape[1]))]
        return pa.Table.from_arrays(arrays, names=self.names)

    def write(self, ids, labels: np.ndarray, probabilities: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the file (a footer, a header's row count); the handle stays open."""


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

        if not self.rows:  # the header goes out with the first batch, after its checks passed
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerow(self.names)
            self.handle.write(text.getvalue().encode("utf-8"))
            # pyarrow quotes every string when quoting is "needed"; class names that need no quotes get
            # none (3,3,... rather than "3",3,...), unless a string id column may need them.
            plain = not any(ch in c for c in self.class_labels for ch in ',"\r\n')
            text_ids = ids is not None and (pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type))
            self.options = pcsv.WriteOptions(include_header=False, batch_size=8192,
                                             quoting_style="none" if plain and not text_ids else "needed")
        pcsv.write_csv(self.table(ids, labels, probabilities), self.handle, self.options)
        self.rows += len(labels)


class JsonlOut(Writer):
    """``{"id": ..., "label": "3", "class_index": 3, "probabilities": {"0": ..., ...}}`` per line.

    Lines are assembled from pieces encoded once (the keys, every class name), not by ``json.dumps``
    of a dict per row: about three times faster, the same text (a test parses it back).
    """

    def write(self, ids, labels, probabilities) -> None:
        import math

        if not self.rows:
            self.prefix = "" if self.id_name is None else f"{json.dumps(self.id_name)}: "
            self.label_json = [json.dumps(c) for c in self.class_labels]
            self.keys = [f"{json.dumps(c)}: " for c in self.classes]
        id_values = [json.dumps(v, default=str) for v in ids.to_pylist()] if self.id_name is not None else None
        out = []
        for row, (index, p) in enumerate(zip(labels.tolist(), probabilities.tolist())):
            head = f"{{{self.prefix}{id_values[row]}, " if id_values is not None else "{"
            name = self.label_json[index] if index >= 0 else "null"
            values = ", ".join(k + (repr(v) if math.isfinite(v) else json.dumps(v)) for k, v in zip(self.keys, p))
            out.append(f'{head}"label": {name}, "class_index": {index}, "probabilities": {{{values}}}}}')
        self.handle.write(("\n".join(out) + "\n").encode("utf-8"))
        self.rows += len(labels)


class NpyOut(Writer):
    """A structured ``.npy``: the header is rewritten with the row count once the last batch is in."""

    HEADER = 4096  # bytes reserved for the header, padded with spaces as the format allows

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

        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (rows,)}
        text = repr(header).encode("latin1")
        magic = np.lib.format.magic(1, 0)
        room = self.HEADER - len(magic) - 2  # the two bytes of the header's length
        if len(text) + 1 > room:
            raise OutputError("too many output columns for an .npy output: write .parquet instead")
        return magic + room.to_bytes(2, "little") + text + b" " * (room - len(text) - 1) + b"\n"

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
                id_name: str | None = None) -> Writer:
    return WRITERS[fmt](handle, class_labels, head, id_name)
