"""Arrays in, a held-out split and standardization statistics out.

A data *source* is a registered dataset name (``digits``), a file (``.npz`` or
``.csv``) or ``synthetic[:ROWSxFEATURES[xCLASSES]]``. File formats:

- ``.npz``: arrays ``X`` (rows x features, numeric) and ``y`` (one integer class
  label per row, 0..C-1); optionally ``class_labels`` (C names) and
  ``feature_names`` (one per column of ``X``).
- ``.csv``: one row per sample, numeric features, the integer class label in
  the last column; a first line whose cells are all non-numeric is a header,
  and its cells before the last name the features.

Feature names travel into the bundle, so that ``zoo predict`` can pick a
table's columns by name.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.errors import DataError
from zoo.registry import default_registry

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


def fingerprint(dataset: Dataset) -> str:
    """sha256 of what training sees: the features as float32, the labels as int64, the class labels."""
    import hashlib
    import json

    digest = hashlib.sha256()
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


def load_source(source: str, registry=None) -> Dataset:
    """A dataset from a registered name, a ``.npz``/``.csv`` path or ``synthetic:RxF[xC]``."""
    match = SYNTHETIC.match(source)
    if match:
        rows, features, classes = (int(g) if g is not None else None for g in match.groups())
        return synthetic(1000 if rows is None else rows, 20 if features is None else features,
                         3 if classes is None else classes)
    path = Path(source)
    # A file is named by its suffix or a path separator; any other word is a registered dataset, even
    # where a file or directory of that name happens to sit in the working directory.
    if path.suffix.lower() in (".csv", ".npz") or "/" in source or "\\" in source:
        return load_file(path)
    registry = registry or default_registry()
    if source in registry.names("dataset") or not path.exists():
        return registry.get("dataset", source).load()
    return load_file(path)


def load_file(path: Path) -> Dataset:
    if not path.exists():
        raise DataError(f"data file {path} does not exist")
    if path.is_dir():
        raise DataError(f"data path {path} is a directory; give a .npz or .csv file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return load_npz(path)
    if suffix == ".csv":
        return load_csv(path)
    raise DataError(f"cannot read {path}: data files must end in .npz or .csv")


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


def load_csv(path: Path) -> Dataset:
    rows: list[list[float]] = []
    width = header = None
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:  # -sig: Excel's byte-order mark
            for line_no, cells in enumerate(csv.reader(handle), start=1):
                if not cells or all(not c.strip() for c in cells):
                    continue
                values = [_number(c) for c in cells]
                if line_no == 1 and all(v is None for v in values):
                    header = [c.strip() for c in cells]
                    continue
                if None in values:
                    col = values.index(None)
                    raise DataError(
                        f"{path} line {line_no}, column {col + 1}: {cells[col].strip()!r} is not a "
                        "number; features and labels must be numeric"
                    )
                if width is None:
                    width = len(values)
                    if width < 2:
                        raise DataError(f"{path}: rows need at least one feature and a label column")
                elif len(values) != width:
                    raise DataError(
                        f"{path} line {line_no}: {len(values)} cells where earlier rows have {width}"
                    )
                rows.append(values)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file (not UTF-8)") from None
    if not rows:
        raise DataError(f"{path}: no data rows")
    table = np.asarray(rows, dtype=np.float64)
    if header is not None and len(header) != table.shape[1]:
        raise DataError(f"{path}: the header has {len(header)} names, the rows {table.shape[1]} cells")
    names = header[:-1] if header is not None else None
    if names is not None and (not all(names) or len(set(names)) != len(names)):
        names = None  # blank or repeated names cannot select columns: the features stay positional
    return Dataset(path.name, table[:, :-1], table[:, -1], feature_names=names)


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


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
    """A stratified train / held-out split and the standardization fitted on the train part."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    mean: np.ndarray
    scale: np.ndarray  # 1 / std, with constant features left unscaled


def split(dataset: Dataset, holdout: float = 0.2, seed: int = 0) -> Split:
    """Hold out ``holdout`` of every class (at least one row in all), fit mean/std on the rest."""
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
        raise DataError(
            f"{dataset.name}: {len(dataset.y)} rows are too few for a {holdout:.0%} held-out split"
        )
    X_train = dataset.X[train]
    mean = X_train.mean(axis=0, dtype=np.float64)
    std = X_train.std(axis=0, dtype=np.float64)
    scale = np.where(std > 1e-12, 1.0 / np.where(std > 1e-12, std, 1.0), 1.0)
    return Split(X_train, dataset.y[train], dataset.X[test], dataset.y[test],
                 mean.astype(np.float32), scale.astype(np.float32))
