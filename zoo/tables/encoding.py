"""Fitting and encoding a table's feature columns: the trainer's path (pyarrow and numpy), and the graph's inputs.

:func:`fit_encode` converts each column once (numbers to float64, categories to dictionary codes), takes the
statistics from the training rows alone and encodes every part of the split with them. :func:`frame` gives the
columns as the deployed graph takes them (what ``zoo predict`` feeds it); :func:`sample` makes columns up from a
record alone. The oracle encodes apart from all of this, in numpy (:mod:`zoo.exports.export.oracle`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo.errors import DataError
from zoo.tables import Frame
from zoo.tables.features import Feature, Features, _as_text

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


def _numbers(values) -> np.ndarray:
    """A numeric column as float64, a null as NaN (no copy when it has neither nulls nor another type)."""
    import numpy as np
    import pyarrow.compute as pc

    column = pc.cast(values, "float64")
    if column.null_count:
        column = pc.fill_null(column, float("nan"))
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)


def _codes(values) -> tuple[np.ndarray, list[str]]:
    """A categorical column as (a code per row, -1 for a null; the distinct strings the codes index)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if not pa.types.is_dictionary(values.type) or not pa.types.is_string(values.type.value_type):
        values = pc.dictionary_encode(_as_text(values))
    codes = pc.fill_null(values.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return codes, values.dictionary.to_pylist()


def fit_encode(table: pa.Table, kinds: dict[str, str], parts: list[np.ndarray], *, target: str | None = None,
               id_column: str | None = None, ignored: tuple[str, ...] = ()
               ) -> tuple[Features, list[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The statistics of the rows ``parts[0]`` (the training rows: medians, vocabularies, gap counts), each part's
    rows encoded with them as float32 (rows, width) blocks, and the mean and standard deviation of each encoded
    column over the training rows (float64). Each column is converted once, then gathered per part."""
    import numpy as np

    train = parts[0]
    columns, converted = [], []
    for name, kind in kinds.items():
        values = table.column(name)
        if kind == "numeric":
            numbers = _numbers(values)
            seen = numbers[train]
            present = seen[~np.isnan(seen)]
            if len(present) == 0:
                raise DataError(f"column {name!r} has no value in the training rows: nothing to impute its gaps "
                                f"with; leave it out (--ignore {name})")
            feature = Feature(name, kind, str(values.type), len(seen) - len(present), median=float(np.median(present)))
            converted.append(_filled(numbers, feature.median))
        else:
            codes, dictionary = _codes(values)
            counts = np.bincount(codes[train] + 1, minlength=len(dictionary) + 1)  # slot 0: a null
            gap_codes = [n for n, text in enumerate(dictionary) if text == ""]
            gaps = int(counts[0] + sum(counts[c + 1] for c in gap_codes))
            categories = tuple(sorted(dictionary[c] for c in np.flatnonzero(counts[1:]) if c not in gap_codes))
            feature = Feature(name, kind, str(values.type), gaps, categories=categories, missing_level=gaps > 0)
            converted.append(_levels(feature, codes, dictionary))
        columns.append(feature)
    features = Features(tuple(columns), target, id_column, tuple(ignored), len(train))
    first, moments = _encoded(features, converted, train, moments=True)
    return features, [first] + [_encoded(features, converted, rows) for rows in parts[1:]], moments


def _filled(numbers: np.ndarray, median: float) -> np.ndarray:
    """A numeric column as float32, the median in every gap."""
    import numpy as np

    values = numbers.astype(np.float32)
    values[np.isnan(values)] = np.float32(median)
    return values


def _levels(feature: Feature, codes: np.ndarray, dictionary: list[str]) -> np.ndarray:
    """A categorical column as each row's level (an index into the feature's one-hot block; -1: all zeros)."""
    import numpy as np

    level = {c: n for n, c in enumerate(feature.categories)}
    gap_level = len(feature.categories) if feature.missing_level else -1
    # code -> level, with one slot more at the end for a null (code -1)
    lookup = np.array([gap_level if text == "" else level.get(text, -1) for text in dictionary] + [gap_level],
                      dtype=np.int64)
    return lookup[codes]


def _encoded(features: Features, converted: list[np.ndarray], rows: np.ndarray, moments: bool = False):
    """Rows ``rows`` of the converted columns as the float32 matrix the model takes; with ``moments``, also each
    encoded column's mean and standard deviation over those rows (float64), from the columns as they are gathered:
    a one-hot column's are its share ``p`` and ``sqrt(p (1 - p))``, exactly what the 0/1 column gives."""
    import numpy as np

    out = np.zeros((len(rows), features.width), dtype=np.float32)
    mean, std = np.zeros(features.width), np.zeros(features.width)
    at = 0
    for feature, values in zip(features.columns, converted):
        if feature.kind == "numeric":
            column = values[rows]
            out[:, at] = column
            if moments:
                wide = column.astype(np.float64)
                mean[at] = wide.mean()
                std[at] = np.sqrt(np.square(wide - mean[at]).mean())
        else:
            levels = values[rows]
            hit = np.flatnonzero(levels >= 0)
            out[hit, at + levels[hit]] = 1.0
            if moments:
                share = np.bincount(levels[hit], minlength=feature.width)[:feature.width] / max(len(rows), 1)
                mean[at:at + feature.width] = share
                std[at:at + feature.width] = np.sqrt(share * (1 - share))
        at += feature.width
    return (out, (mean, std)) if moments else out


def fit(table: pa.Table, kinds: dict[str, str], *, target: str | None = None, id_column: str | None = None,
        ignored: tuple[str, ...] = ()) -> Features:
    """The statistics of the training rows ``table``: medians, vocabularies, gap counts."""
    import numpy as np

    return fit_encode(table, kinds, [np.arange(table.num_rows)], target=target, id_column=id_column,
                      ignored=ignored)[0]


def encode(features: Features, table: pa.Table | pa.RecordBatch) -> np.ndarray:
    """The float32 (rows, width) block the model takes for ``table``'s rows: gaps imputed, categories one-hot."""
    import numpy as np

    converted = [_filled(_numbers(table.column(f.name)), f.median) if f.kind == "numeric"
                 else _levels(f, *_codes(table.column(f.name))) for f in features.columns]
    return _encoded(features, converted, np.arange(table.num_rows))


def frame(features: Features, table: pa.Table | pa.RecordBatch) -> Frame:
    """The graph's inputs for ``table``'s rows: a number as float32 (NaN for a gap), a category as ``str`` ('' for a
    gap). The scorers' path, and the held-out rows' at export."""
    import numpy as np
    import pyarrow.compute as pc

    columns = {}
    for feature in features.columns:
        values = table.column(feature.name)
        if feature.kind == "numeric":
            column = pc.cast(values, "float64")
            if column.null_count:
                column = pc.fill_null(column, float("nan"))
            columns[feature.name] = column.to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, 1)
        else:
            text = pc.fill_null(_as_text(values), "")
            columns[feature.name] = np.asarray(text.to_numpy(zero_copy_only=False), dtype=object).reshape(-1, 1)
    return Frame(columns)


def sample(features: Features, rows: int, seed: int = 0) -> Frame:
    """Columns made up from the record alone (for a bare ``.onnx``, or a bench without test data): numbers around
    the median, some far out and some gaps; every category, a gap and one never seen, in turn."""
    import numpy as np

    rng = np.random.default_rng(seed)
    columns = {}
    for feature in features.columns:
        if feature.kind == "numeric":
            values = feature.median + rng.normal(0, 1, rows) * np.where(np.arange(rows) % 5 == 4, 1e4, 1.0)
            values[np.arange(rows) % 7 == 6] = np.nan
            columns[feature.name] = values.astype(np.float32).reshape(-1, 1)
        else:
            levels = [*feature.categories, "", "zoo: never seen"]
            cells = [levels[i % len(levels)] for i in range(rows)]
            columns[feature.name] = np.array(cells, dtype=object).reshape(-1, 1)
    return Frame(columns)
