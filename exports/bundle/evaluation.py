"""``evaluation.npz``: the held-out rows every bundle keeps, with their true labels, and rows to calibrate on.

The model card scores the held-out rows against their labels; a variant is
measured on them and an int8 one calibrated on the calibration rows. Written
at export (:func:`write`), read back (:func:`read`) from a bundle that may
come from anyone: each array's header is checked (name, dtype, shape, row
bound) before a byte of it is read, so a malformed or oversized file is one
line naming the file and the array, never a traceback or an allocation the
header asked for.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.errors import ZooError, first_line
from zoo.exports.bundle import reading
from zoo.exports.bundle.manifest import Manifest
from zoo.tables import Frame

#: Held-out rows kept in the bundle (a seeded sample beyond).
EVALUATION_ROWS = 10_000
#: Training rows kept in the bundle to calibrate an int8 variant.
CALIBRATION_ROWS = 1000
#: Where the calibration rows came from, as the record says.
SOURCES = ("training rows", "held-out rows")


@dataclass(frozen=True)
class Evaluation:
    X: np.ndarray | Frame  # float32 (rows, features): held-out rows; a table model's: their columns
    y: np.ndarray  # int64 (rows,): their true class indices
    calibration: np.ndarray  # float32 (rows, features)
    calibration_source: str  # one of SOURCES


def column_key(k: int) -> str:
    """The array holding a table model's k-th feature column (numbers as float32, categories as text)."""
    return f"column_{k}"


def write(path: Path, split, seed: int) -> None:
    """Held-out rows and labels, and training rows to calibrate on (seeded samples)."""
    rng = np.random.default_rng(seed)
    held = np.arange(len(split.y_test))
    if len(held) > EVALUATION_ROWS:
        held = np.sort(rng.choice(len(held), EVALUATION_ROWS, replace=False))
    # A model exported from a checkpoint has no training rows at hand (a checkpoint keeps the held-out
    # ones): it is calibrated on those, and the record says so.
    source, pool = ("training rows", split.X_train) if len(split.X_train) else ("held-out rows", split.X_test)
    train = np.arange(len(pool))
    if len(train) > CALIBRATION_ROWS:
        train = np.sort(rng.choice(len(train), CALIBRATION_ROWS, replace=False))
    columns = {}
    if split.features is not None:  # the raw columns the deployed graph takes; text as fixed-width unicode (no pickle)
        for k, values in enumerate(split.raw_test[held].columns.values()):
            columns[column_key(k)] = values.astype(str) if values.dtype == object else values
    with open(path, "wb") as handle:
        np.savez(handle, X=np.asarray(split.X_test[held], np.float32), y=np.asarray(split.y_test[held], np.int64),
                 calibration=np.asarray(pool[train], np.float32), calibration_source=np.array(source), **columns)


def read(bundle: Path, manifest: Manifest) -> Evaluation:
    """The bundle's evaluation rows, checked against its manifest (checksum, size, features, classes)."""
    name = manifest.files.evaluation
    if not name:
        raise ZooError(f"{bundle} keeps no evaluation rows (exported by an older zoo): re-export it; variants and the "
                       "model card are measured on those rows")
    if name not in manifest.sha256:
        raise ZooError(f"{bundle}/manifest.json records no sha256 for {name}: it cannot be checked; export it again")
    path, data = reading.read_member(bundle, name, "the evaluation rows", manifest.bytes, manifest.sha256)
    return parse(data, path, manifest.input["shape"][1], len(manifest.class_labels), manifest.table)


def parse(data: bytes, path: Path, width: int, classes: int, features=None) -> Evaluation:
    """The arrays of an ``evaluation.npz``'s bytes, each refused in one line unless it is what it must be."""
    def wrong(problem: str) -> ZooError:
        return ZooError(f"{path}: {problem}; export the bundle again")

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise wrong(f"not an .npz archive ({_first(exc)})") from None
    with archive:
        def array(key: str, kinds: str, ndim: int, max_rows: int, columns: int | None = None):
            if f"{key}.npy" not in members:
                raise wrong(f"no array {key!r}")
            try:
                with archive.open(f"{key}.npy") as handle:
                    version = np.lib.format.read_magic(handle)
                    header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                              else np.lib.format.read_array_header_2_0)
                    shape, fortran, dtype = header(handle)
                    if dtype.kind not in kinds or dtype.hasobject or len(shape) != ndim or \
                            (ndim and not 0 < shape[0] <= max_rows) or (columns is not None and shape[1] != columns):
                        expected = {0: "()", 1: f"(rows <= {max_rows},)", 2: f"(rows <= {max_rows}, {columns})"}[ndim]
                        raise wrong(f"array {key!r} is {dtype} {shape}, expected {_kinds_name(kinds)} {expected}")
                    count = int(np.prod(shape))
                    if count * dtype.itemsize > len(data):  # zoo stores arrays uncompressed: none outgrows the file
                        raise wrong(f"array {key!r} claims {count * dtype.itemsize:,} bytes, more than the file holds")
                    raw = handle.read(count * dtype.itemsize + 1)
            except ZooError:
                raise
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError) as exc:
                raise wrong(f"array {key!r} cannot be read ({_first(exc)})") from None
            if len(raw) != count * dtype.itemsize:
                raise wrong(f"array {key!r} holds {len(raw):,} bytes, its header says {count * dtype.itemsize:,}")
            return np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")

        X = array("X", "f", 2, EVALUATION_ROWS, width).astype(np.float32)
        y = array("y", "iu", 1, EVALUATION_ROWS).astype(np.int64)
        calibration = array("calibration", "f", 2, CALIBRATION_ROWS, width).astype(np.float32)
        source = array("calibration_source", "U", 0, 1)
        if features is not None:  # the model takes the table's columns: score those
            columns = {}
            for k, feature in enumerate(features.columns):
                numeric = feature.kind == "numeric"
                values = array(column_key(k), "f" if numeric else "U", 2, EVALUATION_ROWS, 1)
                if len(values) != len(X):
                    raise wrong(f"array {column_key(k)!r} has {len(values)} rows for {len(X)} of 'X'")
                columns[feature.name] = values.astype(np.float32) if numeric else values.astype(object)
            X = Frame(columns)
    if len(y) != len(X):
        raise wrong(f"array 'y' has {len(y)} labels for {len(X)} rows of 'X'")
    if y.min() < 0 or y.max() >= classes:
        raise wrong(f"array 'y' holds class {int(y.min() if y.min() < 0 else y.max())}; the model has {classes} "
                    "classes")
    if str(source) not in SOURCES:
        raise wrong(f"calibration_source is {str(source)!r:.60}, not one of {', '.join(SOURCES)}")
    return Evaluation(X, y, calibration, str(source))


def _kinds_name(kinds: str) -> str:
    return {"f": "floats", "iu": "integers", "U": "text"}[kinds]


def _first(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {first_line(exc, 120)}"
