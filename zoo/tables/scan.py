"""One streaming pass over a table: what training needs before its first step.

:class:`Scan` takes record batches in any order and keeps, in bounded memory:

- the row counts, and the classes of the target;
- per numeric column, over the training rows: the count, mean and sum of squared deviations of its values (merged
  exactly, Chan's formula), its gaps; over every row, its infinite values and gaps (for the refusals);
- per categorical column: its distinct values over every row (refused past ``--max-categories``, so never many),
  and the count of each among the training rows;
- a sample of the training rows (the :data:`SAMPLE_ROWS` with the smallest :func:`~zoo.tables.stream.sample_keys`)
  and of the held-out rows (:data:`HELD_ROWS`), the same whichever process read what.

From these, :meth:`Scan.finish` gives what the in-memory path fits (:func:`zoo.tables.encoding.fit_encode`): the
features record, the classes, and each encoded column's mean and standard deviation, exact: a gap becomes the
median ``m`` in ``g`` rows, which adds ``g m`` to the sum and ``g (m - mean)^2`` to the squares; a one-hot column's
are its share ``p`` and ``sqrt(p (1 - p))``. The one statistic a stream cannot give exactly is the median: it is
the median of the sampled training rows, exact when the sample holds them all, else within a rank error whose
standard deviation is ``0.5 / sqrt(SAMPLE_ROWS)`` of the column's values (0.22 % at 50,000).

Scans of several processes, each over its own rows, merge (:meth:`Scan.merge`) into what one scan of every row gives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zoo.errors import DataError
from zoo.tables.encoding import _numbers
from zoo.tables.features import (
    Feature,
    Features,
    TableOptions,
    _as_text,
    class_index,
    class_values,
    empty_column,
    refuse_categories,
    refuse_gaps,
    refuse_infinite,
    target_column,
)
from zoo.tables.stream import held_out, keys, sample_keys

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

#: Training rows sampled for the medians (and for calibrating int8 variants); held-out rows kept for the bundle.
SAMPLE_ROWS, HELD_ROWS = 50_000, 10_000
#: A target with more distinct values than this is refused: a classifier's classes, not an id.
MAX_CLASSES = 100_000
_INDEX = "__zoo_row__"


class Scan:
    """What one pass over some of a table's rows has seen (:meth:`add`), then what training needs (:meth:`finish`)."""

    def __init__(self, name: str, target: str, kinds: dict[str, str], types: dict[str, str], options: TableOptions,
                 holdout: float, seed: int, sample_rows: int = SAMPLE_ROWS, held_rows: int = HELD_ROWS):
        self.name, self.target, self.kinds, self.types, self.options = name, target, kinds, types, options
        self.holdout, self.seed, self.limits = holdout, seed, (sample_rows, held_rows)
        self.rows = self.train_rows = 0
        self.classes: set = set()
        # numeric: [count, mean, m2, training gaps, gaps, infinite, present]
        self.numbers = {c: [0, 0.0, 0.0, 0, 0, 0, 0] for c, k in kinds.items() if k == "numeric"}
        self.seen: dict[str, dict[str, int]] = {c: {} for c, k in kinds.items() if k == "categorical"}
        self.counts: dict[str, dict[Any, int]] = {c: {} for c in self.seen}
        self.samples: list[list] = [[], []]  # (sample keys, rows) of the training rows, of the held-out ones
        self.bounds: list = [None, None]  # the largest key in each sample, once it is full

    def add(self, batch: pa.RecordBatch, first: int) -> None:
        """The rows of ``batch``, whose first row has global index ``first``."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        rows = batch.num_rows
        row_keys = keys(first, rows, self.seed)
        held = held_out(row_keys, self.holdout)
        train = ~held
        self.rows += rows
        self.train_rows += int(train.sum())
        column = target_column(batch.column(self.target), self.target, self.name, first)
        self.classes.update(pc.unique(column).to_pylist())
        if len(self.classes) > MAX_CLASSES:
            raise DataError(f"{self.name}: the target {self.target!r} has more than {MAX_CLASSES:,} distinct values: "
                            "a classifier needs classes, not ids; pass --target COLUMN")
        mask = pa.array(train)
        for name, stats in self.numbers.items():
            values = _numbers(batch.column(name))
            gaps = np.isnan(values)
            stats[4] += int(gaps.sum())
            stats[5] += int(np.isinf(values).sum())
            stats[6] += rows - int(gaps.sum())
            mine = values[train]
            present = mine[np.isfinite(mine)]  # an infinite value is refused at the end
            stats[3] += int(np.isnan(mine).sum())
            if len(present):
                _merge(stats, len(present), float(present.mean()), float(np.square(present - present.mean()).sum()))
        for name, seen in self.seen.items():
            text = _as_text(batch.column(name))
            for value, count in _value_counts(text):
                if value is not None:
                    seen[value] = seen.get(value, 0) + count
            if len(seen) - ("" in seen) > self.options.max_categories:
                listed = sorted(seen)
                refuse_categories(name, listed, _rows_of(seen), self.name, self.options, partial=True)
            for value, count in _value_counts(pc.filter(text, mask)):
                self.counts[name][value] = self.counts[name].get(value, 0) + count
        index = pa.array(np.arange(first, first + rows, dtype=np.int64))
        columns = pa.Table.from_batches([batch.select([*self.kinds, self.target])]).append_column(_INDEX, index)
        for part, (where, limit) in enumerate(((train, self.limits[0]), (held, self.limits[1]))):
            chosen = np.flatnonzero(where)
            candidates = sample_keys(row_keys[chosen])
            if self.bounds[part] is not None:  # the sample is full: only a smaller key can enter it
                keep = candidates < self.bounds[part]
                chosen, candidates = chosen[keep], candidates[keep]
            if len(chosen):
                self.samples[part].append((candidates, columns.take(pa.array(chosen))))
            if sum(len(k) for k, _ in self.samples[part]) > limit + limit // 4:
                self.samples[part] = [_smallest(self.samples[part], limit)]
                self.bounds[part] = self.samples[part][0][0].max()

    def sample_keys(self) -> list[np.ndarray]:
        """The keys each sample holds (sorted): what another process needs to bound what it sends (:meth:`state`)."""
        import numpy as np

        self.samples = [[_smallest(part, limit)] for part, limit in zip(self.samples, self.limits)]
        return [np.sort(part[0][0]) for part in self.samples]

    def state(self, bounds: list | None = None) -> dict[str, Any]:
        """What this scan has seen, as plain data and Arrow IPC bytes (to send to another process); with ``bounds``,
        only the sampled rows whose key is at most the bound (the merged sample's largest key)."""
        samples = [_smallest(part, limit) for part, limit in zip(self.samples, self.limits)]
        if bounds is not None:
            samples = [_at_most(keys, table, bound) for (keys, table), bound in zip(samples, bounds)]
        return {"rows": self.rows, "train_rows": self.train_rows, "classes": sorted(self.classes),
                "numbers": self.numbers, "seen": self.seen, "counts": self.counts,
                "samples": [_ipc(*sample) for sample in samples]}

    def merge(self, states: list[dict[str, Any]]) -> None:
        """Take the :meth:`state` of scans over other rows (in rank order: every process merges alike)."""
        for state in states:
            self.rows += state["rows"]
            self.train_rows += state["train_rows"]
            self.classes.update(state["classes"])
            for name, (n, mean, m2, *rest) in state["numbers"].items():
                stats = self.numbers[name]
                stats[3:] = [a + b for a, b in zip(stats[3:], rest)]
                if n:
                    _merge(stats, n, mean, m2)
            for mine, theirs in ((self.seen, state["seen"]), (self.counts, state["counts"])):
                for name, values in theirs.items():
                    for value, count in values.items():
                        mine[name][value] = mine[name].get(value, 0) + count
            for part, data in enumerate(state["samples"]):
                row_keys, table = _from_ipc(data)
                if table is not None:
                    self.samples[part].append((row_keys, table))

    def finish(self) -> tuple[Features, list, pa.Table, pa.Table, np.ndarray, np.ndarray]:
        """``(features, classes, training sample, held-out sample, mean, std)``: the refusals first, as the in-memory
        path makes them; the training sample in key order, the held-out one in global row order, each with the
        target's class index in ``__zoo_class__``."""
        import numpy as np
        import pyarrow as pa

        options, gaps = self.options, {}
        (train_keys, train), (_, held) = [_smallest(part, limit) for part, limit in zip(self.samples, self.limits)]
        # the training sample in key order (its first rows are a uniform sample too); the held-out rows in row order
        samples = [train.take(pa.array(np.argsort(train_keys))) if train is not None else None,
                   held.sort_by(_INDEX) if held is not None else None]
        if self.train_rows == 0 or samples[1] is None:
            raise DataError(f"{self.name}: {self.rows} rows are too few for a {self.holdout:.0%} held-out split; "
                            "give more rows, or change --holdout")
        columns = []
        mean, std = [], []
        for name, kind in self.kinds.items():
            if kind == "numeric":
                n, average, m2, train_gaps, all_gaps, infinite, present = self.numbers[name]
                if not present:
                    raise empty_column(name, self.name, options)
                refuse_infinite(name, infinite, self.name)
                gaps[name] = all_gaps
                if not n:
                    raise DataError(f"column {name!r} has no value in the training rows: nothing to impute its gaps "
                                    f"with; leave it out (--ignore {name})")
                values = _numbers(samples[0].column(name))
                values = values[~np.isnan(values)]
                median = float(np.median(values)) if len(values) else average  # no sampled row has one: the mean
                total = n + train_gaps
                center = (n * average + train_gaps * median) / total
                squares = m2 + n * (average - center) ** 2 + train_gaps * (median - center) ** 2
                mean.append(center)
                std.append(np.sqrt(squares / total))
                columns.append(Feature(name, kind, self.types[name], train_gaps, median=median))
            else:
                seen = self.seen[name]
                refuse_categories(name, sorted(seen), _rows_of(seen), self.name, options)
                counts = self.counts[name]
                gaps[name] = sum(n for v, n in seen.items() if v == "") + (self.rows - sum(seen.values()))
                train_gaps = counts.get(None, 0) + counts.get("", 0)
                categories = tuple(sorted(v for v in counts if v not in (None, "")))
                shares = [counts[c] / self.train_rows for c in categories] + \
                         ([train_gaps / self.train_rows] if train_gaps else [])
                mean.extend(shares)
                std.extend(np.sqrt(p * (1 - p)) for p in shares)
                columns.append(Feature(name, kind, self.types[name], train_gaps, categories=categories,
                                       missing_level=train_gaps > 0))
        if options.missing == "refuse":
            refuse_gaps(gaps, self.name, options)
        classes = class_values(sorted(self.classes), self.target, self.name)
        features = Features(tuple(columns), self.target, options.id_column, tuple(options.ignore), self.train_rows)
        labeled = []
        for table in samples:
            index = class_index(target_column(table.column(self.target), self.target, self.name), classes)
            labeled.append(table.append_column("__zoo_class__", pa.array(index)))
        return features, classes, labeled[0], labeled[1], np.asarray(mean), np.asarray(std)


def _rows_of(seen: dict[str, int]):
    """How many rows hold any of some values, from a column's counts."""
    return lambda words: sum(seen[w] for w in words)


def _merge(stats: list, n: int, mean: float, m2: float) -> None:
    """Chan et al.'s pairwise update of (count, mean, sum of squared deviations)."""
    count, average, squares = stats[0], stats[1], stats[2]
    total = count + n
    delta = mean - average
    stats[0], stats[1] = total, average + delta * n / total
    stats[2] = squares + m2 + delta * delta * count * n / total


def _value_counts(text) -> list[tuple[Any, int]]:
    import pyarrow.compute as pc

    counts = pc.value_counts(text)
    return list(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()))


def _smallest(parts: list, limit: int) -> tuple[np.ndarray, pa.Table]:
    """The ``limit`` rows with the smallest keys among ``parts`` (a list of (keys, table))."""
    import numpy as np
    import pyarrow as pa

    parts = [(k, t) for k, t in parts if t is not None]  # a process that read none of these rows sends none
    if not parts:
        return np.zeros(0, np.uint64), None
    row_keys = np.concatenate([k for k, _ in parts])
    table = pa.concat_tables([t for _, t in parts])
    if len(row_keys) > limit:
        keep = np.sort(np.argpartition(row_keys, limit - 1)[:limit])
        row_keys, table = row_keys[keep], table.take(pa.array(keep))
    return row_keys, table


def _at_most(row_keys: np.ndarray, table, bound) -> tuple[np.ndarray, pa.Table | None]:
    import numpy as np
    import pyarrow as pa

    if table is None or bound is None:
        return row_keys, table
    keep = np.flatnonzero(row_keys <= bound)
    return row_keys[keep], table.take(pa.array(keep))


def bound_of(keys: list, limit: int):
    """The largest key of the merged sample: the ``limit``-th smallest among every process's keys (None: all)."""
    import numpy as np

    merged = np.concatenate(keys) if keys else np.zeros(0, np.uint64)
    return None if len(merged) <= limit else np.partition(merged, limit - 1)[limit - 1]


def _ipc(row_keys: np.ndarray, table: pa.Table | None) -> tuple[bytes, bytes]:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    if table is not None:
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    return row_keys.tobytes(), sink.getvalue().to_pybytes()


def _from_ipc(data: tuple[bytes, bytes]) -> tuple[np.ndarray, pa.Table]:
    import numpy as np
    import pyarrow as pa

    row_keys = np.frombuffer(data[0], dtype=np.uint64)
    table = pa.ipc.open_stream(data[1]).read_all() if data[1] else None
    return row_keys, table
