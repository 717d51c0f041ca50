"""Data in, a held-out split and standardization statistics out.

A data *source* is a registered dataset name (``digits``),
``synthetic[:ROWSxFEATURES[xCLASSES]]``, an ``.npz`` file, a table, or (from
Python) a pandas DataFrame or a pyarrow Table:

- ``.npz``: arrays ``X`` (rows x features, numeric) and ``y`` (one integer class
  label per row, 0..C-1); optionally ``class_labels`` (C names) and
  ``feature_names`` (one per column of ``X``).
- a table: Parquet (a file, a directory or a glob), Arrow IPC/Feather, or CSV
  with a header line, read by :mod:`zoo.tables.sources` (with the parsing ``zoo
  predict``'s readers use). Its target, features, categories and gaps are worked out by
  :mod:`zoo.tables.features`; the medians and vocabularies are fitted on the
  training rows of the split, and the model's graph takes the table's own
  columns.
- a CSV file without a header: numbers only, the integer class label in the last
  column, the other columns the features, in order (one ``input`` matrix).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import DataError, PredictInputError
from zoo.registry import default_registry
from zoo.tables import Frame, is_number
from zoo.tables.encoding import fit_encode, frame
from zoo.tables.features import Features, Labeled, TableOptions, labeled
from zoo.tables.sources import is_table, read_table

SYNTHETIC = re.compile(r"^synthetic(?::(\d+)x(\d+)(?:x(\d+))?)?$")


@dataclass(frozen=True)
class Dataset:
    """Features ``X`` (float32, N x F) and integer labels ``y`` (int64, N)."""

    name: str
    X: np.ndarray
    y: np.ndarray
    class_labels: tuple[str, ...] | None = None
    feature_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        X, y = np.asarray(self.X), np.asarray(self.y)
        if X.ndim != 2:
            raise DataError(f"{self.name}: X must be 2-D (rows x features), got shape {X.shape}")
        if len(X) == 0 or X.shape[1] == 0:
            raise DataError(f"{self.name}: no rows to train on (X has shape {X.shape})")
        if X.dtype.kind not in "fiub":
            raise DataError(f"{self.name}: features must be numbers, got dtype {X.dtype}")
        bad = ~np.isfinite(X)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise DataError(
                f"{self.name}: {int(bad.sum())} NaN/Inf feature values (first at row {row}, "
                f"column {col}); clean or impute them first"
            )
        y = _integer_labels(self.name, y)
        if len(y) != len(X):
            raise DataError(f"{self.name}: {len(X)} rows of features but {len(y)} labels")
        object.__setattr__(self, "X", np.ascontiguousarray(X, dtype=np.float32))
        object.__setattr__(self, "y", y)
        if self.class_labels is not None:
            labels = tuple(str(c) for c in self.class_labels)
            if len(y) and y.max() >= len(labels):
                raise DataError(
                    f"{self.name}: label {y.max()} is out of range for {len(labels)} classes "
                    f"({', '.join(labels)})"
                )
            object.__setattr__(self, "class_labels", labels)
        if self.feature_names is not None:
            names = tuple(str(n) for n in self.feature_names)
            if len(names) != X.shape[1]:
                raise DataError(f"{self.name}: {len(names)} feature names for {X.shape[1]} feature columns")
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise DataError(f"{self.name}: feature name {repeated[0]!r} appears more than once; "
                                "feature names must be unique")
            object.__setattr__(self, "feature_names", names)

    @property
    def num_classes(self) -> int:
        return len(self.class_labels) if self.class_labels else int(self.y.max()) + 1

    @property
    def labels(self) -> tuple[str, ...]:
        return self.class_labels or tuple(str(i) for i in range(self.num_classes))


@dataclass(frozen=True)
class TableDataset:
    """A table with its columns' roles worked out (:class:`zoo.tables.features.Labeled`); the features are
    encoded at :func:`split`, with statistics fitted on the training rows."""

    name: str
    table: Labeled

    @property
    def y(self) -> np.ndarray:
        return self.table.y

    @property
    def class_labels(self) -> tuple[str, ...]:
        return self.table.class_labels

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.table.feature_names

    @property
    def num_classes(self) -> int:
        return len(self.class_labels)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.class_labels


def fingerprint(dataset: Dataset | TableDataset) -> str:
    """sha256 of what training sees: the features (as float32, or a table's feature columns: their Arrow schema and
    buffers), the labels as int64, the class labels."""
    import hashlib
    import json

    digest = hashlib.sha256()
    if isinstance(dataset, TableDataset):
        table = dataset.table.table
        digest.update(str(table.schema).encode())
        for column in table.columns:
            for chunk in column.chunks:
                digest.update(f"{chunk.offset},{len(chunk)}".encode())
                for buffer in chunk.buffers():
                    if buffer is not None:
                        digest.update(buffer)
    else:
        digest.update(np.ascontiguousarray(dataset.X, dtype=np.float32).tobytes())
    digest.update(np.ascontiguousarray(dataset.y, dtype=np.int64).tobytes())
    digest.update(json.dumps(list(dataset.labels)).encode())
    return digest.hexdigest()


def _integer_labels(name: str, y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        raise DataError(
            f"{name}: labels of shape {y.shape} look one-hot; give one class index per row "
            "(y.argmax(axis=1))"
        )
    y = y.reshape(-1)
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            bad = y[~np.isfinite(y) | (y != np.round(y))][0]
            raise DataError(f"{name}: label {bad} is not an integer class index")
        y = y.astype(np.int64)
    elif y.dtype.kind not in "iub":
        raise DataError(f"{name}: labels must be integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if len(y) and y.min() < 0:
        raise DataError(f"{name}: label {y.min()} is out of range: class labels must be 0..C-1")
    return y


def load_source(source: Any, registry=None, table: TableOptions | None = None) -> Dataset | TableDataset:
    """A dataset from a registered name, an ``.npz`` path, a table (a path, a DataFrame, a pyarrow Table) or
    ``synthetic:RxF[xC]``; ``table`` says which of a table's columns are what."""
    if not isinstance(source, (str, Path)):
        return from_frame(source, table or TableOptions(api=True))
    source = str(source)
    match = SYNTHETIC.match(source)
    if match:
        rows, features, classes = (int(g) if g is not None else None for g in match.groups())
        return synthetic(1000 if rows is None else rows, 20 if features is None else features,
                         3 if classes is None else classes)
    path = Path(source)
    # A file is named by its suffix or a path separator; any other word is a registered dataset, even
    # where a file or directory of that name happens to sit in the working directory.
    if path.suffix.lower() == ".npz" or is_table(source) or "/" in source or "\\" in source:
        return load_file(source, table or TableOptions())
    registry = registry or default_registry()
    if source in registry.names("dataset") or not path.exists():
        return registry.get("dataset", source).load()
    return load_file(source, table or TableOptions())


def load_file(source: str, options: TableOptions = TableOptions()) -> Dataset | TableDataset:
    path = Path(source)
    if path.suffix.lower() == ".npz":
        if not path.exists():
            raise DataError(f"data file {path} does not exist")
        return load_npz(path)
    if not is_table(source):
        if not path.exists():
            raise DataError(f"data file {path} does not exist")
        if path.is_dir():
            raise DataError(f"{source} is a directory without .parquet files")
        raise DataError(f"cannot read {path}: give a table (.parquet, .arrow, .feather, .csv, a directory or a glob "
                        "of Parquet files) or an .npz file")
    try:
        table, headed = read_table(source)
    except PredictInputError as exc:
        raise DataError(str(exc)) from None
    if not headed:
        return _headerless(table, path)
    return TableDataset(path.name or source, labeled(table, path.name or source, options))


def from_frame(data: Any, options: TableOptions) -> TableDataset:
    """A pandas DataFrame or a pyarrow Table (or RecordBatch) as a table to train on."""
    import pyarrow as pa

    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        if not all(isinstance(c, str) for c in data.columns):
            raise DataError("the DataFrame's columns are not all named with strings; name them (df.columns = [...])")
        data = pa.Table.from_pandas(data, preserve_index=False)
    elif isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if not isinstance(data, pa.Table):
        raise DataError(f"data= takes a dataset name, a path, a pandas DataFrame or a pyarrow Table, not "
                        f"{type(data).__name__}")
    name = f"{'DataFrame' if module == 'pandas' else 'Table'} ({data.num_rows} rows x {data.num_columns} columns)"
    return TableDataset(name, labeled(data, name, options))


def _headerless(table, path: Path) -> Dataset:
    """A CSV without a header: numbers only, the class label last."""
    import pyarrow.compute as pc
    import pyarrow.types as t

    fix = ("add a header line naming the columns (then words are categories, gaps are imputed, and --target picks "
           "the label)")
    for n, field in enumerate(table.schema):
        column = table.column(n)
        if not (t.is_integer(field.type) or t.is_floating(field.type) or t.is_boolean(field.type)
                or t.is_null(field.type)):
            cells = column.to_pylist()
            row = next(i for i, cell in enumerate(cells) if cell is not None and not is_number(cell))
            raise DataError(f"{path} line {row + 1}, column {n + 1}: {cells[row]!r} is not a number; a CSV "
                            f"without a header holds numbers only, its class label last; {fix}")
        if column.null_count:
            row = pc.index(pc.is_null(column), True).as_py()
            raise DataError(f"{path} line {row + 1}, column {n + 1} is empty or NaN; a CSV without a header must be "
                            f"complete; {fix}")
    if table.num_columns < 2:
        raise DataError(f"{path}: rows need at least one feature and a label column")
    columns = [table.column(i).to_numpy() for i in range(table.num_columns)]
    return Dataset(path.name, np.stack(columns[:-1], axis=1).astype(np.float64), columns[-1])


def load_npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {"X", "y"} - set(archive.files)
            if missing:
                raise DataError(
                    f"{path}: missing array {' and '.join(sorted(missing))}; an .npz needs X "
                    f"(rows x features) and y (labels), found {', '.join(archive.files) or 'nothing'}"
                )
            labels = archive["class_labels"] if "class_labels" in archive.files else None
            names = archive["feature_names"] if "feature_names" in archive.files else None
            return Dataset(path.name, archive["X"], archive["y"],
                           None if labels is None else tuple(labels.tolist()),
                           None if names is None else tuple(names.tolist()))
    except DataError:
        raise
    except Exception as exc:  # zipfile, pickle refusal, bad header ...
        raise DataError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})") from None


def synthetic(rows: int = 1000, features: int = 20, classes: int = 3, seed: int = 0) -> Dataset:
    """Gaussian blobs, one per class, linearly separable with some overlap."""
    if rows < 2 or features < 1 or classes < 2:
        raise DataError(f"synthetic:{rows}x{features}x{classes}: synthetic data needs at least 2 rows, "
                        "1 feature and 2 classes")
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 2.0, size=(classes, features))
    y = np.arange(rows) % classes
    X = centers[y] + rng.normal(size=(rows, features))
    return Dataset(f"synthetic:{rows}x{features}x{classes}", X.astype(np.float32), y)


@dataclass(frozen=True)
class Split:
    """A stratified train / held-out split and the standardization fitted on the train part.

    From a table, also what was fitted on its training rows (``features``) and the held-out rows as the graph takes
    them (``raw_test``: the table's own columns, gaps and all).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    mean: np.ndarray
    scale: np.ndarray  # 1 / std, with constant features left unscaled
    features: Features | None = None
    raw_test: Frame | None = None


def moments(X: np.ndarray, rows: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """Each column's mean and (population) standard deviation, in float64, two passes over row blocks: numpy's
    ``X.std(axis=0)`` makes a float64 copy of the whole matrix (measured: 1.9 s and 860 MB for 800,000 x 134)."""
    total = np.zeros(X.shape[1], np.float64)
    for start in range(0, len(X), rows):
        total += X[start:start + rows].sum(axis=0, dtype=np.float64)
    mean = total / max(len(X), 1)
    squares = np.zeros(X.shape[1], np.float64)
    for start in range(0, len(X), rows):
        squares += np.square(X[start:start + rows] - mean).sum(axis=0)
    return mean, np.sqrt(squares / max(len(X), 1))


def split(dataset: Dataset | TableDataset, holdout: float = 0.2, seed: int = 0) -> Split:
    """Hold out ``holdout`` of every class (at least one row in all), fit mean/std on the rest (and a table's
    medians and vocabularies)."""
    if not 0.0 < holdout < 1.0:
        raise DataError(f"holdout must lie in (0, 1), got {holdout}")
    rng = np.random.default_rng(seed)
    test_idx, train_idx = [], []
    for label in np.unique(dataset.y):
        idx = rng.permutation(np.flatnonzero(dataset.y == label))
        n_test = int(math.floor(len(idx) * holdout + 0.5))
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    test = np.sort(np.concatenate(test_idx))
    train = np.sort(np.concatenate(train_idx))
    if len(test) == 0 or len(train) == 0:
        largest = int(np.bincount(dataset.y).max())
        if largest == 1 and len(dataset.y) > 1:
            raise DataError(f"{dataset.name}: each of its {len(dataset.y)} classes has a single row: nothing to "
                            "learn a class from (is the target an id?)")
        raise DataError(f"{dataset.name}: {len(dataset.y)} rows are too few for a {holdout:.0%} held-out split of "
                        f"each class (the largest has {largest} rows); raise --holdout, or give more rows")
    features = raw_test = None
    if isinstance(dataset, TableDataset):
        table, options = dataset.table.table, dataset.table.options
        features, (X_train, X_test), (mean, std) = fit_encode(
            table, dataset.table.kinds, [train, test], target=dataset.table.target, id_column=options.id_column,
            ignored=options.ignore)
        raw_test = Frame.deferred(lambda: frame(features, table.take(test)).columns)  # built when an export asks
    else:
        X_train, X_test = dataset.X[train], dataset.X[test]
        mean, std = moments(X_train)
    scale = np.where(std > 1e-12, 1.0 / np.where(std > 1e-12, std, 1.0), 1.0)
    return Split(X_train, dataset.y[train], X_test, dataset.y[test],
                 mean.astype(np.float32), scale.astype(np.float32), features, raw_test)
