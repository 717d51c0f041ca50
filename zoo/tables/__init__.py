"""The user's own tables: one reader for training and scoring, the fitted preprocessing, and its ONNX graph.

- :mod:`.readers`: Parquet, Arrow IPC/Feather and CSV through pyarrow, for
  training (a whole table) and for scoring (a batch at a time), so that a
  column is typed the same way at both ends;
- :mod:`.features`: which columns are features and of what kind, and the record
  of what was fitted on the training rows (medians, vocabularies);
- :mod:`.encoding`: the fitting, and the encoding the trainer uses (pyarrow and
  numpy; the oracle encodes apart, in numpy alone);
- :mod:`.graph`: the same preprocessing as ONNX nodes in front of the model,
  so that ``model.onnx`` takes the table's own columns.

A :class:`Frame` is what such a model takes: one ``(rows, 1)`` array per
column, float32 for a number (NaN for a gap) and ``str`` for a category (an
empty string for a gap).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

#: A categorical column with more distinct values than this is refused (``--max-categories``). The option
#: defaults live here, in a module ``zoo --help`` may import at no cost; the rest of the package is imported when
#: a table is read.
MAX_CATEGORIES = 100
#: What a gap in a feature becomes (``--missing``): imputed, or the table refused.
MISSING = ("impute", "refuse")


def is_number(cell: str) -> bool:
    """Whether a cell of text reads as a number (as Python's float does: ``nan`` and ``inf`` included)."""
    try:
        float(cell)
    except ValueError:
        return False
    return True


class Frame:
    """Rows of a table, one ``(rows, 1)`` array per column, as a graph with one input per column takes them.

    It slices like an array of rows (``frame[:7]``, ``frame[indices]``), and ``len`` is its row count.
    :meth:`deferred` makes one whose columns are built on first use (the held-out rows of a split, which
    ``zoo train`` never needs).
    """

    __slots__ = ("_columns", "_make")

    def __init__(self, columns: dict[str, np.ndarray] | None = None, *, make: Any = None):
        self._columns, self._make = None, make
        if columns is not None:
            self._set(columns)

    def _set(self, columns: dict[str, np.ndarray]) -> None:
        self._columns, self._make = dict(columns), None
        lengths = {len(v) for v in self._columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"the columns of a frame differ in length: {sorted(lengths)}")

    @classmethod
    def deferred(cls, make: Any) -> Frame:
        """A frame whose columns ``make()`` returns, called once, when they are first asked for."""
        return cls(make=make)

    @property
    def columns(self) -> dict[str, np.ndarray]:
        if self._columns is None:
            self._set(self._make())
        return self._columns

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    @property
    def shape(self) -> tuple[int, int]:
        return len(self), len(self.columns)

    def __getitem__(self, index: Any) -> Frame:
        return Frame({name: value[index] for name, value in self.columns.items()})

    def feed(self) -> dict[str, np.ndarray]:
        """The inputs of a session run, by name."""
        return self.columns

    def __repr__(self) -> str:
        return f"<Frame {len(self)} rows: {', '.join(self.columns)}>"

    @staticmethod
    def concat(frames: list[Frame]) -> Frame:
        import numpy as np

        return Frame({name: np.concatenate([f.columns[name] for f in frames]) for name in frames[0].columns})


def feed(x: Any, input_name: str) -> dict[str, Any]:
    """A session's inputs by name: a :class:`Frame`'s columns, or a matrix as the graph's one input."""
    return x.feed() if isinstance(x, Frame) else {input_name: x}
