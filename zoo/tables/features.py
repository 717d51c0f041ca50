"""A table's columns as a model's features: which ones, of what kind, and the statistics fitted on training rows.

Roles, decided once from the Arrow schema (:func:`labeled`):

- the **target** (``--target``; else the one column named ``target``, ``label``,
  ``class`` or ``y``): strings, integers or booleans; the classes are its distinct
  values in sorted order (numbers by value, ``False`` before ``True``, strings by
  code point);
- **features**: every other column, less ``--ignore`` and ``--id-column``, or
  exactly ``--features``. Numbers (integers, floats, booleans, decimals) are
  *numeric*; strings, dictionary-encoded and pandas categorical columns are
  *categorical*. Anything else (dates, times, lists, binary) is refused in one
  line naming the column, its type and the option that fixes it, as is a
  categorical column with more than ``--max-categories`` distinct values.

The statistics (:func:`fit`) come from the training rows alone: a numeric
column's gaps (null or NaN) become its median; a categorical column is one-hot
over its categories in sorted order, plus a *missing* level when the training
rows had a gap (null or the empty string) in it. A category the training rows
never had, and a gap in a column that had none, encode as all zeros: the
unknown level. :class:`Features` records all of it, for the manifest, the card,
the graph (:mod:`.graph`) and the oracle, which encodes in numpy on its own.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from zoo.errors import DataError
from zoo.tables import MAX_CATEGORIES, MISSING, is_number

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

#: Column names taken as the target when ``--target`` is not given and exactly one is present.
TARGET_NAMES = ("target", "label", "class", "y")
KINDS = ("numeric", "categorical")
#: How a gap in a categorical column is shown (the card, the encoded column names).
MISSING_LEVEL = "(missing)"
#: How pandas names the index it stores in a Parquet or Arrow file: never a feature, never a surprise at scoring.
PANDAS_INDEX = re.compile(r"^__index_level_\d+__$")
#: Bounds on a record read from a manifest someone else wrote.
MAX_COLUMNS, MAX_LEVELS = 100_000, 1_000_000


@dataclass(frozen=True)
class TableOptions:
    """What the user said about a table's columns (``zoo train/export`` options, ``zoo.train`` keywords)."""

    target: str | None = None
    features: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    id_column: str | None = None
    max_categories: int = MAX_CATEGORIES
    missing: str = "impute"
    api: bool = False  # name the Python keywords in messages, not the CLI's flags

    def flag(self, name: str) -> str:
        if self.api:
            return {"target": "target=", "ignore": "ignore=[...]", "id_column": "id_column=",
                    "features": "features=[...]", "max_categories": "max_categories=", "missing": "missing="}[name]
        return "--" + name.replace("_", "-") + {"target": " COLUMN", "ignore": " A,B", "id_column": " COLUMN",
                                                "features": " A,B,...", "max_categories": " N", "missing": ""}[name]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableOptions:
        """The options as ``dataclasses.asdict`` wrote them (a job for the worker processes, a checkpoint)."""
        features, ignore = data.get("features"), data.get("ignore") or ()
        return cls(**{**data, "features": None if features is None else tuple(features), "ignore": tuple(ignore)})

    def fix(self, name: str, value: Any) -> str:
        """The option set to ``value``, as the user would type it: ``--ignore day`` or ``ignore=['day']``."""
        if self.api:
            return f"{name}={[value] if name in ('ignore', 'features') else value!r}"
        return f"--{name.replace('_', '-')} {value}"


@dataclass(frozen=True)
class Feature:
    """One feature column: its kind, the Arrow type it had, its gaps, and what was fitted on it."""

    name: str
    kind: str  # numeric | categorical
    type: str  # the Arrow type at training
    missing: int = 0  # training rows with a gap
    median: float | None = None  # numeric: what a gap becomes
    categories: tuple[str, ...] = ()  # categorical: the levels, sorted
    missing_level: bool = False  # categorical: a gap has a level of its own (the training rows had one)

    @property
    def width(self) -> int:
        return 1 if self.kind == "numeric" else len(self.categories) + self.missing_level

    @property
    def encoded_names(self) -> list[str]:
        if self.kind == "numeric":
            return [self.name]
        return [f"{self.name}={c}" for c in self.categories] + ([f"{self.name}={MISSING_LEVEL}"]
                                                                  if self.missing_level else [])

    @property
    def encoding(self) -> str:
        if self.kind == "numeric":
            return f"number; a gap becomes the median {self.median:.6g}"
        gap = "a gap has its own level" if self.missing_level else "a gap encodes as an unseen category"
        return f"one-hot over {len(self.categories)} categories; {gap}; an unseen category is all zeros"


@dataclass(frozen=True)
class Features:
    """The preprocessing a table model was trained with, in the order of its inputs."""

    columns: tuple[Feature, ...]
    target: str | None = None
    id_column: str | None = None
    ignored: tuple[str, ...] = ()
    rows: int = 0  # training rows the statistics were fitted on

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.columns)

    @property
    def width(self) -> int:
        return sum(f.width for f in self.columns)

    @property
    def offsets(self) -> tuple[int, ...]:
        """Where each column's block starts in the encoded matrix (its mean and scale are at that index)."""
        starts, at = [], 0
        for feature in self.columns:
            starts.append(at)
            at += feature.width
        return tuple(starts)

    @property
    def strings(self) -> bool:
        """Whether the graph takes string inputs (any categorical column)."""
        return any(f.kind == "categorical" for f in self.columns)

    @property
    def encoded_names(self) -> list[str]:
        return [n for f in self.columns for n in f.encoded_names]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["columns"] = [{**column, "categories": list(column["categories"])} for column in data["columns"]]
        data["ignored"] = list(self.ignored)
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Features:
        """The record as a manifest or a model's metadata holds it, refused in one line unless well formed."""
        def wrong(problem: str) -> DataError:
            return DataError(f"{where}: the features record {problem}")

        if not isinstance(data, dict) or not isinstance(data.get("columns"), list):
            raise wrong("is not an object with a list of columns")
        if not 0 < len(data["columns"]) <= MAX_COLUMNS:
            raise wrong(f"has {len(data['columns'])} columns")
        columns, seen = [], set()
        for entry in data["columns"]:
            if not isinstance(entry, dict):
                raise wrong("holds a column that is not an object")
            name, kind = entry.get("name"), entry.get("kind")
            if not isinstance(name, str) or not name or name in seen:
                raise wrong(f"names a column {name!r:.40} that is empty, not a string or repeated")
            seen.add(name)
            if kind not in KINDS:
                raise wrong(f"gives column {name!r:.40} the kind {kind!r:.20}, not one of {', '.join(KINDS)}")
            missing, median = entry.get("missing", 0), entry.get("median")
            categories, level = entry.get("categories", []), entry.get("missing_level", False)
            if isinstance(missing, bool) or not isinstance(missing, int) or missing < 0 or not isinstance(level, bool):
                raise wrong(f"gives column {name!r:.40} a bad gap count or missing level")
            if kind == "numeric" and (isinstance(median, bool) or not isinstance(median, (int, float))
                                      or not math.isfinite(median)):
                raise wrong(f"gives numeric column {name!r:.40} no finite median")
            if kind == "categorical" and (not isinstance(categories, list) or len(categories) > MAX_LEVELS
                                          or not all(isinstance(c, str) and c for c in categories)
                                          or len(set(categories)) != len(categories)
                                          or not (categories or level)):
                raise wrong(f"gives categorical column {name!r:.40} categories that are not distinct, non-empty "
                            "strings")
            columns.append(Feature(name, kind, str(entry.get("type", ""))[:200], missing,
                                   float(median) if kind == "numeric" else None,
                                   tuple(categories) if kind == "categorical" else (),
                                   level if kind == "categorical" else False))
        target, id_column = data.get("target"), data.get("id_column")
        ignored, rows = data.get("ignored", []), data.get("rows", 0)
        if not all(v is None or isinstance(v, str) for v in (target, id_column)) or \
                not (isinstance(ignored, list) and all(isinstance(v, str) for v in ignored)) or \
                isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            raise wrong("has a target, id column, ignored list or row count of the wrong type")
        return cls(tuple(columns), target, id_column, tuple(ignored), rows)


# -- which column is what -------------------------------------------------------------------------


def kind_of(type_: pa.DataType) -> str | None:
    """``numeric``, ``categorical``, or None for a type zoo cannot use as a feature."""
    import pyarrow.types as t

    if t.is_integer(type_) or t.is_floating(type_) or t.is_boolean(type_) or t.is_decimal(type_) or t.is_null(type_):
        return "numeric"
    if t.is_string(type_) or t.is_large_string(type_) or t.is_dictionary(type_) or \
            (hasattr(t, "is_string_view") and t.is_string_view(type_)):
        return "categorical"
    return None


def listing(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


@dataclass
class Labeled:
    """A table split into its roles: the feature columns (Arrow), the class of each row, the kinds."""

    name: str
    table: pa.Table  # the feature columns, in order
    y: np.ndarray  # int64 class indices
    class_labels: tuple[str, ...]
    kinds: dict[str, str]
    options: TableOptions = field(default_factory=TableOptions)
    ids: pa.ChunkedArray | None = None
    target: str | None = None

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self.table.column_names)


def roles(schema: pa.Schema, name: str, options: TableOptions = TableOptions()) -> tuple[str, dict[str, str]]:
    """``(target, {feature: kind})`` from a table's schema alone (the streaming reader has nothing more before it
    reads): one line naming the column and the fix for each refusal."""
    names = list(schema.names)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataError(f"{name}: column {repeated[0]!r} appears more than once; rename one")
    target = _target_name(names, name, options)
    for flag, given in (("ignore", list(options.ignore)), ("features", list(options.features or ())),
                        ("id_column", [options.id_column] if options.id_column else [])):
        unknown = [c for c in given if c not in names]
        if unknown:
            raise DataError(f"{name} has no column {listing(unknown)} ({options.flag(flag)}); its columns: "
                            f"{listing(names)}")
    if options.id_column == target:
        raise DataError(f"{name}: {target!r} is the target; it cannot be the id column too "
                        f"({options.flag('id_column')})")
    if options.features is not None:
        chosen = list(dict.fromkeys(options.features))
        if target in chosen:
            raise DataError(f"{name}: {target!r} is the target; it cannot be a feature too "
                            f"({options.flag('features')})")
    else:
        left_out = {target, options.id_column, *options.ignore}
        chosen = [n for n in names if n not in left_out and not PANDAS_INDEX.match(n)]
    if not chosen:
        raise DataError(f"{name}: no feature columns are left besides the target {target!r}")
    if options.missing not in MISSING:
        raise DataError(f"{options.flag('missing') or 'missing='} takes {' or '.join(MISSING)}, "
                        f"not {options.missing!r}")
    kinds: dict[str, str] = {}
    for column in chosen:
        type_ = schema.field(column).type
        kind = kind_of(type_)
        if kind is None:
            raise DataError(f"{name}: column {column!r} holds {type_} values, which zoo cannot use as a feature; "
                            f"pass {options.fix('ignore', column)}"
                            + ("" if options.id_column else f" (or {options.fix('id_column', column)} to carry it "
                               "through)"))
        kinds[column] = kind
    return target, kinds


def labeled(table: pa.Table, name: str, options: TableOptions = TableOptions()) -> Labeled:
    """The roles of ``table``'s columns, checked: one line naming the column and the fix for each refusal."""
    if table.num_rows == 0:
        raise DataError(f"{name}: no rows to train on")
    target, kinds = roles(table.schema, name, options)
    chosen = list(kinds)
    features = table.select(chosen)
    _check_features(features, kinds, name, options)
    y, labels = _classes(table.column(target), target, name)
    ids = table.column(options.id_column) if options.id_column else None
    return Labeled(name, features, y, labels, kinds, options, ids, target)


def _target_name(names: list[str], name: str, options: TableOptions) -> str:
    if options.target is not None:
        if options.target not in names:
            raise DataError(f"{name} has no column {options.target!r} ({options.flag('target')}); its columns: "
                            f"{listing(names)}")
        return options.target
    found = [n for n in names if n.strip().lower() in TARGET_NAMES]
    if len(found) == 1:
        return found[0]
    why = f"several columns could be it ({listing(found)})" if found else \
        f"none is named {', '.join(TARGET_NAMES[:-1])} or {TARGET_NAMES[-1]}"
    raise DataError(f"{name}: which column is the target? {why}; pass {options.flag('target')} (its columns: "
                    f"{listing(names)})")


def _check_features(table: pa.Table, kinds: dict[str, str], name: str, options: TableOptions) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    refuse = options.missing == "refuse"  # the gaps are counted here only then; fitting counts them anyway
    gaps = {}
    for column, kind in kinds.items():
        values = table.column(column)
        if kind == "numeric":
            if values.type.id == 0 or values.null_count == len(values):  # pa.null(), or every cell empty
                raise empty_column(column, name, options)
            as_float = pc.cast(values, "float64")
            refuse_infinite(column, pc.sum(pc.is_inf(as_float)).as_py() or 0, name)
            if refuse:
                gaps[column] = values.null_count + (pc.sum(pc.is_nan(as_float)).as_py() or 0)
        else:
            text = _as_text(values)
            seen = pc.unique(pc.drop_null(text)).to_pylist()
            refuse_categories(column, seen, lambda words, text=text: int(pc.sum(pc.is_in(
                text, value_set=pa.array(words, pa.string()))).as_py() or 0), name, options)
            if refuse:
                gaps[column] = text.null_count + (pc.sum(pc.equal(text, "")).as_py() or 0)
    refuse_gaps(gaps, name, options)


def empty_column(column: str, name: str, options: TableOptions) -> DataError:
    return DataError(f"{name}: column {column!r} is empty in every row; pass {options.fix('ignore', column)}")


def refuse_infinite(column: str, infinite: int, name: str) -> None:
    if infinite:
        plural = "s" if infinite > 1 else ""
        raise DataError(f"{name}: column {column!r} holds {infinite} infinite value{plural}; "
                        "replace them with a number or leave the cell empty (a gap is imputed)")


def refuse_categories(column: str, seen: list[str], rows_of, name: str, options: TableOptions,
                      partial: bool = False) -> None:
    """A categorical column's distinct values ``seen`` (the empty string among them is a gap): refused when they are
    numbers with a few placeholder words (``rows_of(words)``: the rows holding them), or too many. ``partial``: the
    values of the rows read so far (a stream stops counting there)."""
    _numbers_with_placeholders(seen, rows_of, column, name, options)
    distinct = len(seen) - ("" in seen)
    if distinct > options.max_categories:
        raise DataError(
            f"{name}: column {column!r} has {'at least ' if partial else ''}{distinct} distinct values, more than "
            f"{options.fix('max_categories', options.max_categories)} allows for a category; "
            f"pass {options.fix('ignore', column)}"
            + ("" if options.id_column else f", {options.fix('id_column', column)}")
            + (" or a larger --max-categories" if partial and not options.api else " or a larger max_categories="
               if partial else f" or {options.fix('max_categories', distinct)}"))


def refuse_gaps(gaps: dict[str, int], name: str, options: TableOptions) -> None:
    """Under ``--missing refuse``: one line naming the columns with gaps (``gaps``: the count per column)."""
    holed = {c: n for c, n in gaps.items() if n}
    if holed:
        listed = ", ".join(f"{c!r} ({n} row{'s' if n > 1 else ''})" for c, n in list(holed.items())[:6])
        more = f" and {len(holed) - 6} more columns" if len(holed) > 6 else ""
        raise DataError(f"{name} has gaps in {listed}{more}; fill them, or leave out "
                        f"{options.fix('missing', 'refuse')} to impute them (a numeric gap becomes the median, a "
                        "categorical one a level)")


#: A text column whose distinct values are numbers but for a few words (at most this many) is taken for a numeric
#: column with placeholders such as '?' or '-', and refused, rather than one-hot encoded.
PLACEHOLDERS, NUMBERS_SEEN = 3, 20


def _numbers_with_placeholders(distinct: list[str], rows_of, column: str, name: str, options: TableOptions) -> None:
    """Refuse a column of numbers written as text with a few words among them ('?', '-', 'missing'): one-hot
    encoding every number in it is never what was meant. ``distinct``: the column's distinct values."""
    if len(distinct) < NUMBERS_SEEN:
        return
    words = []
    for value in distinct:  # stops at the fourth word: a column of words costs a few values
        if value.strip() and not is_number(value):
            words.append(value)
            if len(words) > PLACEHOLDERS:
                return
    if words and len(distinct) - len(words) >= NUMBERS_SEEN:
        rows = rows_of(words)
        raise DataError(f"{name}: column {column!r} holds numbers, and {', '.join(repr(w) for w in words)} in {rows} "
                        f"row{'s' if rows > 1 else ''}: if that marks a gap, leave those cells empty (a gap is "
                        f"imputed); else pass {options.fix('ignore', column)}")


def _as_text(values):
    """A categorical column as strings (a dictionary decoded, numbers written out); nulls stay null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(values.type):
        values = pc.cast(values, values.type.value_type)
    return values if pa.types.is_string(values.type) else pc.cast(values, pa.string())


def _classes(column, target: str, name: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """The class index of each row and the class labels, in sorted order of the target's values."""
    import pyarrow.compute as pc

    column = target_column(column, target, name)
    values = class_values(pc.unique(column).to_pylist(), target, name)
    return class_index(column, values), tuple(str(v) for v in values)


def target_column(column, target: str, name: str, first_row: int = 0):
    """The target's cells as integers, booleans or strings; one line for a gap, a fraction or a type that is no
    class (``first_row``: the global row number of the column's first cell, for the message)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if column.null_count:
        first = pc.index(pc.is_null(column), True).as_py()
        raise DataError(f"{name}: the target {target!r} is empty in {column.null_count} rows (first at row "
                        f"{first_row + first + 1}); drop those rows or fill them in")
    type_ = column.type
    if pa.types.is_floating(type_):
        values = column.to_numpy()
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise DataError(f"{name}: the target {target!r} holds numbers that are not whole ({type_}); a classifier "
                            "needs classes: integers, words or booleans")
        return pc.cast(column, pa.int64())
    if not (pa.types.is_integer(type_) or pa.types.is_boolean(type_) or kind_of(type_) == "categorical"):
        raise DataError(f"{name}: the target {target!r} holds {type_} values; a classifier needs classes: integers, "
                        "words or booleans")
    if kind_of(type_) == "categorical":
        return _as_text(column)
    return pc.cast(column, pa.int64()) if pa.types.is_integer(type_) else column


def class_values(distinct: list, target: str, name: str) -> list:
    """The classes in their order (numbers by value, False before True, strings by code point): at least two."""
    values = sorted(distinct)
    if len(values) < 2:
        raise DataError(f"{name}: the target {target!r} has one class ({str(values[0])!r}) in every row; a classifier "
                        "needs at least two")
    return values


def class_index(column, values: list):
    """Each cell's index among the classes ``values`` (a cell of no class is -1)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    index = pc.index_in(column, value_set=pa.array(values, type=column.type))
    return np.asarray(pc.fill_null(index, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
