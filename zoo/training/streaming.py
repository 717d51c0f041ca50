"""Training on a table read in pieces: one scan, then epochs streamed through a bounded shuffle buffer.

:func:`plan` decides between the in-memory path and this one (``--stream``/``--no-stream`` force it);
:func:`prepare` scans the table once (:class:`zoo.tables.scan.Scan`; each rank of a distributed job scans its own
rows and the scans merge) and builds the model; :class:`StreamFeed` gives each epoch's batches.

An epoch reads the rank's row range (:func:`zoo.tables.stream.rank_rows`) piece by piece, in an order shuffled per
epoch, keeps the training rows, encodes and standardizes them, and passes them through a shuffle buffer of
``--shuffle-buffer`` rows: whenever the buffer holds more, it is permuted and all but that many rows go out as
batches. Every random draw of epoch ``e`` comes from a generator seeded with ``(seed, e, rank)``, so an epoch is the
same whether it runs straight on or after ``--resume`` (a checkpoint is written between epochs, with the buffer
empty: the epoch number is the whole stream position).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from zoo.data import Split
from zoo.errors import DataError, PredictInputError
from zoo.registry import build
from zoo.tables.encoding import encode, frame
from zoo.tables.features import Features, TableOptions, class_index, roles, target_column
from zoo.tables.readers import kind
from zoo.tables.scan import Scan, bound_of
from zoo.tables.sources import is_table
from zoo.tables.stream import Pieces, file_digest, held_out, keys, open_pieces, overlapping, rank_rows, read

#: The in-memory path holds about this many bytes per cell of a table (the Arrow column, its float64 conversion,
#: the encoded float32 matrix and its standardized copy).
BYTES_PER_CELL = 24
#: A table streams when the in-memory path would take more than this share of the memory available.
MEMORY_SHARE = 0.25
#: Training rows a streamed split keeps (as ``Split.X_train``) for what needs some: calibrating int8 variants.
CALIBRATION_ROWS = 10_000


def available_memory() -> int:
    """Bytes of memory available to a new allocation (Linux's MemAvailable; else the physical memory)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def plan(data: Any, stream: bool | None, processes: int = 1) -> tuple[bool, str]:
    """``(stream?, why)`` for training on ``data``: a Parquet or Arrow IPC table streams when its in-memory
    footprint, times the processes on this machine, would pass :data:`MEMORY_SHARE` of the memory available."""
    table = isinstance(data, str) and (is_table(data) or _path(data).is_dir()) and kind(_path(data)) != "csv"
    if stream is False:
        return False, "whole (--no-stream)"
    if not table:
        csv = isinstance(data, str) and kind(_path(data)) == "csv"
        if stream:
            what = "a CSV file" if csv else f"{data!r}"
            raise DataError(f"--stream reads Parquet or Arrow IPC files in pieces, not {what}: write it as Parquet "
                            "(pandas: df.to_parquet), or leave out --stream")
        if csv:
            return False, "whole (a CSV file is read whole; Parquet and Arrow IPC files can be read in pieces)"
        return False, "in memory"
    if stream:
        return True, "--stream"
    try:
        pieces = open_pieces(data)
    except PredictInputError:
        return False, "in memory (the table cannot be read in pieces)"
    need = pieces.rows * len(pieces.schema) * BYTES_PER_CELL * processes
    have = available_memory()
    each = f" in each of {processes} processes" if processes > 1 else ""
    if need > MEMORY_SHARE * have:
        return True, (f"{pieces.rows:,} rows x {len(pieces.schema)} columns would take about "
                      f"{_size(need // processes)}{each} in memory, more than {MEMORY_SHARE:.0%} of the "
                      f"{_size(have)} available (--no-stream loads it anyway)")
    return False, (f"whole: {pieces.rows:,} rows x {len(pieces.schema)} columns take about "
                   f"{_size(need // processes)}{each}, within {MEMORY_SHARE:.0%} of the {_size(have)} available "
                   "(--stream reads it in pieces)")


def _path(data: str):
    from pathlib import Path

    return Path(data)


def _size(n: int) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GiB"
    return f"{n / (1 << 20):.0f} MiB" if n >= 1 << 20 else f"{max(1, n >> 10)} KiB"


@dataclass
class Streamed:
    """What :func:`prepare` found: the pieces, the fitted features, the classes and the samples."""

    pieces: Pieces
    features: Features
    classes: list
    split: Split
    fingerprint: str
    lo: int
    hi: int
    rows: int  # training rows this rank trains on per epoch
    held_rows: int  # held-out rows in the whole table


def prepare(source: str, options: TableOptions | None, holdout: float, seed: int, rank: int, world: int) -> Streamed:
    """Scan the table once (each rank its share of the rows, the scans then merged), sample, fingerprint."""
    options = options or TableOptions()
    try:
        pieces = open_pieces(source)
    except PredictInputError as exc:
        raise DataError(str(exc)) from None
    target, kinds = roles(pieces.schema, pieces.name, options)
    types = {name: str(pieces.schema.field(name).type) for name in kinds}
    scan = Scan(pieces.name, target, kinds, types, options, holdout, seed)
    lo, hi = pieces.rows * rank // world, pieces.rows * (rank + 1) // world
    columns = [*kinds, target]
    for piece in overlapping(pieces, lo, hi):
        for batch, first in read(piece, columns, lo, hi, pieces.schema):
            scan.add(batch, first)
    digests = [file_digest(p) for n, p in enumerate(pieces.paths) if n % world == rank]  # each file by one rank
    if world > 1:
        import torch.distributed as dist

        # Two rounds: every rank's sampled keys (8 bytes a row), then only the rows the merged samples keep.
        keys: list = [None] * world
        dist.all_gather_object(keys, scan.sample_keys())
        bounds = [bound_of([k[part] for k in keys], limit) for part, limit in enumerate(scan.limits)]
        del keys
        gathered: list = [None] * world
        dist.all_gather_object(gathered, (scan.state(bounds), digests))
        scan = Scan(pieces.name, target, kinds, types, options, holdout, seed)
        scan.merge([state for state, _ in gathered])
        digests = [None] * len(pieces.paths)
        for r, (_, mine) in enumerate(gathered):
            digests[r::world] = mine
    features, classes, train, held, mean, std = scan.finish()
    scale = np.where(std > 1e-12, 1.0 / np.where(std > 1e-12, std, 1.0), 1.0)
    calibration = train.slice(0, CALIBRATION_ROWS)  # the sample's smallest keys: uniform over the training rows
    parts = Split(encode(features, calibration), _classes_of(calibration), encode(features, held), _classes_of(held),
                  mean.astype(np.float32), scale.astype(np.float32), features, frame(features, held))
    train_lo, train_hi, rows = rank_rows(pieces.rows, holdout, seed, rank, world)
    if rows == 0:
        raise DataError(f"{pieces.name}: {scan.train_rows} training rows are too few for {world} processes")
    return Streamed(pieces, features, classes, parts, _fingerprint(digests, target, kinds, holdout, seed), train_lo,
                    train_hi, rows,
                    scan.rows - scan.train_rows)


def build_streamed(name: str, policy: str | None, source: str, config, registry, table: TableOptions | None,
                   rank: int, world: int, model_config: dict) -> tuple[Any, Streamed]:
    """:func:`zoo.training.prepare` for a streamed table: the spec and policy checked before any row is read, the
    scan, then the model built for the encoded width and the classes found."""
    import torch

    spec = registry.get("model", name)
    registry.get("policy", policy or spec.policy)
    stream = prepare(source, table, config.holdout, config.seed, rank, world)
    if spec.task == "binary" and len(stream.classes) > 2:
        raise DataError(f"{stream.pieces.name}: the target has {len(stream.classes)} classes; model {name!r} is "
                        "binary: train a multiclass model")
    torch.manual_seed(config.seed)
    built = build(name, policy=policy, registry=registry, input_size=stream.features.width,
                  num_classes=2 if spec.task == "binary" else len(stream.classes), **model_config)
    return built, stream


def fingerprint(source: str, options: TableOptions | None, holdout: float, seed: int) -> str:
    """What :func:`prepare` records as the data's sha256, without the scan: every file's bytes, the roles, the split."""
    try:
        pieces = open_pieces(source)
    except PredictInputError as exc:
        raise DataError(str(exc)) from None
    target, kinds = roles(pieces.schema, pieces.name, options or TableOptions())
    return _fingerprint([file_digest(p) for p in pieces.paths], target, kinds, holdout, seed)


def _fingerprint(digests: list[bytes], target: str, kinds: dict, holdout: float, seed: int) -> str:
    import hashlib

    digest = hashlib.sha256(b"".join(digests))
    digest.update(repr((target, list(kinds), holdout, seed)).encode())
    return digest.hexdigest()


def _classes_of(table) -> np.ndarray:
    return np.array(table.column("__zoo_class__").to_numpy(), dtype=np.int64)


class StreamFeed:
    """Each epoch's batches of one rank, as tensors on ``device``, through a bounded shuffle buffer."""

    def __init__(self, streamed: Streamed, policy, num_classes: int, batch_size: int, buffer_rows: int, seed: int,
                 holdout: float, rank: int, device: str):
        self.streamed, self.policy, self.num_classes = streamed, policy, num_classes
        self.batch_size, self.buffer_rows, self.seed, self.holdout = batch_size, buffer_rows, seed, holdout
        self.rank, self.device = rank, device
        self.rows = streamed.rows

    def state(self) -> dict[str, Any]:
        """The stream's position between epochs: nothing but the epoch count is needed, and the settings to check."""
        s = self.streamed
        return {"stream": {"rows": s.pieces.rows, "lo": s.lo, "hi": s.hi, "shuffle_buffer": self.buffer_rows}}

    def load(self, state: dict[str, Any]) -> None:
        saved = state.get("stream")
        if saved is None:
            raise DataError("the checkpoint's training state is the in-memory path's, not a stream's: train anew")
        if saved["rows"] != self.streamed.pieces.rows or saved["shuffle_buffer"] != self.buffer_rows:
            raise DataError("the checkpoint streamed other rows or another --shuffle-buffer; train anew")

    def batches(self, epoch: int) -> Iterator[tuple[Any, Any]]:
        """The epoch's batches; its blocks are read, encoded and shuffled a block ahead, on a thread of their own
        (pyarrow and numpy release the GIL), while the training loop steps through the block before."""
        import torch

        for X, y in ahead(self.blocks(epoch)):
            X = torch.from_numpy(X).to(self.device)
            Y = torch.from_numpy(self.policy.encode_targets(y, self.num_classes)).to(self.device)
            for start in range(0, len(y), self.batch_size):
                yield X[start:start + self.batch_size], Y[start:start + self.batch_size]

    def blocks(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Shuffled blocks of whole batches (the last one of the epoch may end with a short batch)."""

        s = self.streamed
        rng = np.random.default_rng([self.seed, epoch, self.rank])
        mine = overlapping(s.pieces, s.lo, s.hi)
        columns = [*s.features.names, s.features.target]
        pool_X = np.zeros((0, s.features.width), np.float32)
        pool_y = np.zeros(0, np.int64)
        mean, scale = s.split.mean, s.split.scale
        for n in rng.permutation(len(mine)):
            for batch, first in read(mine[n], columns, s.lo, s.hi, s.pieces.schema):
                train = np.flatnonzero(~held_out(keys(first, batch.num_rows, self.seed), self.holdout))
                if not len(train):
                    continue
                rows = batch.take(train)
                X = encode(s.features, rows)
                X -= mean
                X *= scale
                y = class_index(target_column(rows.column(s.features.target), s.features.target, s.pieces.name),
                                s.classes)
                if (y < 0).any():
                    raise DataError(f"{s.pieces.name} changed while training: a row has a class the scan did not "
                                    "see; train anew")
                pool_X = np.concatenate([pool_X, X]) if len(pool_X) else X
                pool_y = np.concatenate([pool_y, y]) if len(pool_y) else y
                out = (len(pool_y) - self.buffer_rows) // self.batch_size * self.batch_size
                if out > 0:
                    order = rng.permutation(len(pool_y))
                    yield pool_X[order[:out]], pool_y[order[:out]]
                    pool_X, pool_y = pool_X[order[out:]], pool_y[order[out:]]
        if len(pool_y):
            order = rng.permutation(len(pool_y))
            yield pool_X[order], pool_y[order]


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


def ahead(items: Iterator, depth: int = 2) -> Iterator:
    """``items``, produced on a thread of their own at most ``depth`` ahead of the consumer, in the same order; an
    exception there is raised here; a consumer that stops early stops the thread."""
    import queue
    import threading

    box: queue.Queue = queue.Queue(depth)
    stop, end = threading.Event(), object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(end)
        except BaseException as error:  # handed to the consumer, raised there
            put(_Failed(error))

    thread = threading.Thread(target=work, name="zoo-stream-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = box.get()
            if item is end:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()


def describe_stream(streamed: Streamed, buffer_rows: int, world: int) -> str:
    s = streamed
    where = f"each of {world} processes reads its own rows, " if world > 1 else ""
    pieces, files = len(s.pieces.pieces), len(s.pieces.paths)
    return (f"streaming {s.pieces.name}: {pieces} piece{'s' * (pieces != 1)} in {files} file{'s' * (files != 1)}, "
            f"{s.pieces.rows:,} rows; {where}{s.rows:,} training rows per epoch through a {buffer_rows:,}-row shuffle "
            f"buffer; {len(s.split.y_test):,} held-out rows kept")
