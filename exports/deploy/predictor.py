"""The Python API for deployment: ``zoo.load_bundle(path)`` returns a :class:`Predictor`.

::

    import zoo
    model = zoo.load_bundle("zoo-exports/multiclass")   # onnxruntime-cpu unless runtime= says otherwise
    model.predict(X)          # class labels, one per row
    model.predict_proba(X)    # (rows, classes) probabilities; a binary model gives [1 - p, p]
    model.run(X)              # every output the ONNX model has, by name

``X`` is a numpy array (rows x features, or one row), a pandas DataFrame or a
pyarrow Table/RecordBatch; tables are matched to the model's features by the
names recorded at training, exactly as ``zoo predict`` matches a file's columns.
Like ``zoo predict``, it needs neither torch nor scikit-learn.

A Predictor pickles as its path and runtime and opens its session again in the
process that unpickles it (a Dask or multiprocessing worker), once per process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import PredictInputError, RuntimeFailure, first_line
from zoo.exports.bundle.model import Deployed, open_model
from zoo.exports.runtimes import DEFAULT_RUNTIME, cannot_take, open_session, precision_problem, run, select
from zoo.specs import FP32
from zoo.tables import Frame
from zoo.tables.readers import Columns, table_rows

#: Rows run at a time when a runtime states no limit of its own.
DEFAULT_STEP = 65536

#: Sessions already opened in this process: (path, runtime, file identity) -> (deployed, session, step).
_OPENED: dict[tuple, tuple] = {}


def _identity(path: Path) -> tuple:
    stat = path.stat()
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


class Predictor:
    """An exported model opened on one runtime, ready to score rows."""

    def __init__(self, path: str | os.PathLike, runtime: str = DEFAULT_RUNTIME, *, allow_nan: bool = False,
                 variant: str | None = None):
        self.path, self.runtime, self.allow_nan, self.variant = Path(path), runtime, allow_nan, variant
        self._opened: tuple | None = None
        self._open()  # here, so that a bad path or runtime fails at once

    def _open(self) -> tuple:
        """(deployed, session, step): opened once per Predictor, which keeps what it opened. A new Predictor of
        the same path and runtime in this process reuses that session only while the file is unchanged: one
        made after an in-place re-export opens the new file."""
        if self._opened is not None:
            return self._opened
        key = (str(self.path.resolve()), self.runtime, self.variant)
        cached = _OPENED.get(key)
        if cached is not None and cached[0] == _identity(cached[1].model_path):
            self._opened = cached[1:]
            return self._opened
        # The sha256 against the manifest; the full ONNX checker is zoo verify's job.
        model = open_model(self.path, check=False, variant=self.variant)
        [(chosen, _)] = select([self.runtime])
        why_not = cannot_take(chosen, model.features)
        if why_not:
            raise RuntimeFailure(f"{chosen.name} cannot run {self.path}: {why_not}; predict on another runtime "
                                 "(zoo runtimes lists them)")
        session = open_session(chosen, model.model_path)
        lowered = (model.manifest.variants[self.variant].precision,) if self.variant else ()
        problem = precision_problem(session, model.manifest.precision if model.manifest else FP32, lowered)
        if problem:  # what zoo verify would fail: never predict with it either
            raise RuntimeFailure(f"{chosen.name} {problem}; predict on another runtime (zoo runtimes lists them)")
        _OPENED[key] = (_identity(model.model_path), model, session, chosen.max_rows or DEFAULT_STEP)
        self._opened = _OPENED[key][1:]
        return self._opened

    @property
    def model(self) -> Deployed:
        """What the exported model says about itself (:class:`zoo.exports.bundle.model.Deployed`)."""
        return self._open()[0]

    # -- what the model is ----------------------------------------------------------------------------

    @property
    def classes_(self) -> np.ndarray:
        """The class labels, in the order of ``predict_proba``'s columns (scikit-learn's name)."""
        return np.array(self.model.class_labels)

    @property
    def feature_names(self) -> tuple[str, ...] | None:
        """The training data's column names, when it had them; tables are matched on them."""
        return self.model.feature_names

    @property
    def n_features(self) -> int:
        return self.model.input_size

    @property
    def device(self) -> str:
        return self._open()[1].device

    def __repr__(self) -> str:
        variant = f", variant={self.variant!r}" if self.variant else ""
        return (f"Predictor({str(self.path)!r}, runtime={self.runtime!r}{variant}: {self.model.metadata['zoo.model']}, "
                f"{self.n_features} features -> {len(self.model.class_labels)} classes)")

    def __getstate__(self) -> dict[str, Any]:
        # An absolute path: the receiving process (a Dask worker) may run in another directory.
        return {"path": str(self.path.resolve()), "runtime": self.runtime, "allow_nan": self.allow_nan,
                "variant": self.variant}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Opened on first use, not here: a Dask scheduler unpickles tasks it never runs.
        self.path, self.runtime = Path(state["path"]), state["runtime"]
        self.allow_nan, self.variant, self._opened = state.get("allow_nan", False), state.get("variant"), None

    # -- scoring --------------------------------------------------------------------------------------

    def columns(self, columns: list[str] | tuple[str, ...] | None = None, id_column: str | None = None, *,
                api: bool = False) -> Columns:
        """How a table's columns map to this model's features (see :mod:`zoo.tables.readers`)."""
        if columns is not None and self.model.features is not None:
            raise PredictInputError("this model takes its table's columns by name: rename the columns instead of "
                                    + ("passing columns=[...]" if api else "passing --columns"))
        return Columns(self.n_features, self.feature_names, None if columns is None else tuple(columns), id_column,
                       api, self.model.features)

    def _api_columns(self, columns: list[str] | None) -> Columns:
        return self.columns(columns, api=True)

    def rows(self, X: Any, columns: list[str] | None = None) -> np.ndarray | Frame:
        """``X`` as the float32 (rows, features) block the model takes (a table model: its columns, as a
        :class:`~zoo.tables.Frame`); one clear error otherwise."""
        if isinstance(X, dict):
            X = _table_of(X)
        module = type(X).__module__.split(".")[0]
        if module == "pandas":
            import pyarrow as pa

            if not all(isinstance(c, str) for c in X.columns):
                if self.feature_names is None and columns is None:
                    X = X.to_numpy()
                else:
                    raise PredictInputError("the DataFrame's columns are not named (0, 1, ...), but the model "
                                            f"takes named features ({', '.join(self.feature_names[:3])}, ...): "
                                            "name the columns, or pass X.to_numpy()")
            else:
                X = pa.Table.from_pandas(X, preserve_index=False)
        if type(X).__module__.split(".")[0] == "pyarrow":  # a table, or a DataFrame made one above
            return table_rows(X, self._api_columns(columns), "X").X
        if self.model.features is not None:
            raise PredictInputError(f"this model takes a table's columns ({', '.join(self.model.features.names[:4])}"
                                    f"{', ...' if len(self.model.features.columns) > 4 else ''}): pass a pandas "
                                    "DataFrame, a pyarrow Table or a dict of columns, not an array")
        if columns is not None:
            raise PredictInputError("columns= picks columns of a table; a numpy array has none")
        try:
            array = np.asarray(X)
        except (TypeError, ValueError) as exc:
            raise PredictInputError(f"X is not an array of numbers ({exc})") from None
        if array.ndim == 1 and array.shape[0] == self.n_features:
            array = array[None, :]
        if array.ndim != 2 or array.shape[1] != self.n_features:
            raise PredictInputError(f"the model takes rows of {self.n_features} features, got an array of "
                                    f"shape {array.shape}")
        if array.dtype.kind not in "fiub":
            raise PredictInputError(f"features must be numbers, got dtype {array.dtype}")
        return np.ascontiguousarray(array, dtype=np.float32)

    def check(self, X: np.ndarray | Frame, first_row: int = 0, names: tuple[str, ...] | None = None) -> None:
        """Refuse NaN/Inf features (unless ``allow_nan``): they give meaningless probabilities. In a table model's
        columns a NaN is a gap, which the model fills; an infinite number is refused."""
        if self.allow_nan:
            return
        if isinstance(X, Frame):
            for name, values in X.columns.items():
                if values.dtype != object and np.isinf(values).any():
                    row = int(np.flatnonzero(np.isinf(values.reshape(-1)))[0])
                    raise PredictInputError(f"row {first_row + row + 1}, column {name!r} is {values[row, 0]}: an "
                                            "infinite number gives meaningless probabilities; leave the cell empty "
                                            "(a gap is imputed), or pass --allow-nan (allow_nan=True)")
            return
        bad = ~np.isfinite(X)
        if bad.any():
            row, col = (int(i) for i in np.argwhere(bad)[0])
            names = names or self.feature_names
            feature = f"feature {col + 1}" + (f" ({names[col]!r})" if names else "")
            raise PredictInputError(f"row {first_row + row + 1}, {feature} is {X[row, col]}: NaN/Inf inputs give "
                                    "meaningless probabilities; clean them, or pass --allow-nan "
                                    "(allow_nan=True)")

    def outputs(self, X: np.ndarray, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """The runtime's outputs for a checked float32 block, run in slices the runtime can take."""
        _, session, step = self._open()
        if len(X) <= step:
            return run(session, X, names)
        parts = [run(session, X[start:start + step], names) for start in range(0, len(X), step)]
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}

    def run(self, X: Any, outputs: list[str] | None = None, *,
            columns: list[str] | None = None) -> dict[str, np.ndarray]:
        """Every output of the model (or those named) for the rows of ``X``, by name.

        ``columns``: the columns of a table ``X`` that hold the features, in order (default: the
        feature names recorded at training, else every numeric column).
        """
        rows = self.rows(X, columns)
        self.check(rows)
        return self.outputs(rows, outputs)

    def predict(self, X: Any, *, columns: list[str] | None = None) -> np.ndarray:
        """The class label of each row (an empty string for a NaN row under ``allow_nan``)."""
        index = self.run(X, ["label"], columns=columns)["label"]
        labels = np.array(list(self.model.class_labels) + [""])
        return labels[np.where(index < 0, len(labels) - 1, index)]

    def predict_proba(self, X: Any, *, columns: list[str] | None = None) -> np.ndarray:
        """(rows, classes) probabilities in ``classes_`` order; each row sums to 1."""
        p = self.run(X, ["probabilities"], columns=columns)["probabilities"]
        if self.model.head == "softmax":
            return p
        return np.concatenate([1.0 - p, p], axis=1)  # a sigmoid head outputs P(positive class) alone


def _table_of(columns: dict) -> Any:
    """A dict of columns (name -> a list or 1-D array of values; None or NaN for a gap) as a pyarrow Table."""
    import pyarrow as pa

    try:
        return pa.table({str(k): pa.array(np.asarray(v, dtype=object if not isinstance(v, np.ndarray) else None)
                                          .reshape(-1), from_pandas=True) for k, v in columns.items()})
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise PredictInputError(f"the dict of columns is not a table: {first_line(exc, 200)}") from None
