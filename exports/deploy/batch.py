"""Many input files scored into a directory, one output file per input, in this process or on Dask.

``zoo predict DIR 'data/*.parquet' -o out/`` plans one *part* per input file
(``data/a.parquet`` -> ``out/a.parquet``). Each part is written atomically, so
an output that exists is complete: a re-run skips it, and a killed job resumes
where it stopped. ``out/.zoo-predict.json`` records the model's sha256 and the
settings; a re-run with another model or other settings is refused (``--force``
redoes every part) rather than mixing two models' predictions in one directory.

``--scheduler local:N`` starts a Dask LocalCluster of N single-threaded worker
processes; ``--scheduler tcp://HOST:PORT`` joins a running Dask scheduler, whose
workers need zoo installed and the input and output paths visible at the same
names (a shared filesystem). Each task gets the :class:`~zoo.exports.deploy.predictor.Predictor`
pickled (a path and a runtime name) and opens the session once per worker
process. A worker that dies is replaced and its part re-run by Dask.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from zoo import files
from zoo.errors import PredictInputError, VerifyError, ZooError, first_line
from zoo.exports.bundle import reading
from zoo.exports.bundle.reading import file_sha256
from zoo.exports.deploy.predictor import Predictor
from zoo.exports.deploy.scoring import NUMPY, score
from zoo.exports.deploy.writers import SUFFIX
from zoo.tables import readers

RECORD = ".zoo-predict.json"
RECORD_FORMAT = "zoo-predictions/1"
RECORD_LIMIT = 1 << 20  # a record is a few hundred bytes


@dataclass(frozen=True)
class Settings:
    """What decides the content of every output file (recorded in ``out/.zoo-predict.json``)."""

    fmt: str
    columns: tuple[str, ...] | None
    id_column: str | None
    allow_nan: bool
    chunk_rows: int
    csv_safe: bool = False


@dataclass(frozen=True)
class Part:
    source: Path
    output: Path


def is_many(source: str) -> bool:
    """A glob pattern or a directory: score each file it holds into ``-o DIR``."""
    return any(c in source for c in "*?[") or Path(source).is_dir()


def inputs(source: str) -> list[Path]:
    """The files a glob pattern or a directory names, sorted; one line when there are none."""
    if Path(source).is_dir():
        found = sorted(p for p in Path(source).iterdir()
                       if p.is_file() and (readers.kind(p) or p.suffix.lower() in NUMPY))
        if not found:
            raise PredictInputError(f"{source} holds no .parquet, .arrow, .feather, .csv, .npy or .npz file")
        return found
    found = sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file())
    if not found:
        raise PredictInputError(f"no file matches {source!r}")
    return found


def plan(sources: list[Path], out_dir: Path, fmt: str) -> list[Part]:
    # Absolute paths: a worker of a running cluster has its own working directory.
    parts = [Part(s.absolute(), out_dir.absolute() / (s.stem + SUFFIX[fmt])) for s in sources]
    seen: dict[Path, Path] = {}
    for part in parts:
        if part.output in seen:
            raise PredictInputError(f"{seen[part.output]} and {part.source} would both write {part.output}: "
                                    "rename one, or score them separately")
        seen[part.output] = part.source
    return parts


def record_for(predictor: Predictor, settings: Settings) -> dict[str, Any]:
    return {"format": RECORD_FORMAT, "model_sha256": _model_sha256(predictor), "runtime": predictor.runtime,
            "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()
                         if k != "chunk_rows"}}


def _model_sha256(predictor: Predictor) -> str:
    return file_sha256(predictor.model.model_path)


def to_do(predictor: Predictor, parts: list[Part], out_dir: Path, settings: Settings, *, force: bool) -> list[Part]:
    """The parts still to score, found without writing anything; refuses a directory made otherwise."""
    if out_dir.exists() and not out_dir.is_dir():
        raise PredictInputError(f"{out_dir} is a file: -o names a directory when scoring several inputs")
    record = record_for(predictor, settings)
    path = out_dir / RECORD
    if os.path.lexists(path) and not force:
        try:  # a directory others may write: never followed out of, never read without a bound
            before = json.loads(reading.read(path, limit=RECORD_LIMIT).decode("utf-8"))
        except (VerifyError, ValueError, RecursionError):
            before = None
        if before != record:
            what = ("another model" if not isinstance(before, dict) or before.get("model_sha256") !=
                    record["model_sha256"] else "other settings")
            raise ZooError(f"{out_dir} holds predictions made with {what}: choose another -o, or pass --force "
                           "to score every input again")
    return [p for p in parts if force or not p.output.exists()]


def begin(predictor: Predictor, parts: list[Part], todo: list[Part], out_dir: Path, settings: Settings) -> None:
    """Make ``out_dir`` and write its record, once everything the run needs (a scheduler) is at hand."""
    out_dir.mkdir(parents=True, exist_ok=True)
    record = json.dumps(record_for(predictor, settings), indent=2) + "\n"
    files.atomic_write(out_dir / RECORD, lambda handle: handle.write(record.encode()))
    for part in parts:
        if part not in todo:
            files.tidy(part.output)  # a run killed after its rename, before it removed its lock


def score_part(predictor: Predictor, source: str, output: str, settings: Settings) -> dict[str, Any]:
    """Score one input file into one output file, atomically (a Dask task; also run in-process)."""
    started = time.perf_counter()
    rows = score(predictor, Path(source), Path(output), fmt=settings.fmt, columns=settings.columns,
                 id_column=settings.id_column, chunk_rows=settings.chunk_rows, csv_safe=settings.csv_safe)
    return {"source": source, "output": output, "rows": rows, "seconds": time.perf_counter() - started}


def run_here(predictor: Predictor, parts: list[Part], settings: Settings,
             on_done: Callable[[dict], None] | None = None) -> list[dict[str, Any]]:
    done = []
    for part in parts:
        done.append(score_part(predictor, str(part.source), str(part.output), settings))
        if on_done:
            on_done(done[-1])
    return done


def parse_scheduler(scheduler: str) -> tuple[str, int | str]:
    """``local:N`` -> ("local", N); ``tcp://HOST:PORT`` -> ("remote", address); one line otherwise."""
    if scheduler.startswith("local:"):
        count = scheduler.split(":", 1)[1]
        if not count.isdigit() or int(count) < 1:
            raise PredictInputError(f"--scheduler {scheduler}: give the number of worker processes, e.g. local:2")
        return "local", int(count)
    usage = (f"--scheduler {scheduler!r}: give local:N (N worker processes here) or tcp://HOST:PORT (a running Dask "
             "scheduler)")
    if not scheduler.startswith(("tcp://", "tls://")):
        raise PredictInputError(usage)
    try:
        address = urlsplit(scheduler)
        host, port = address.hostname, address.port
    except ValueError as exc:  # an unclosed IPv6 bracket, a port that is not a number or out of range
        raise PredictInputError(f"{usage}; {exc}") from None
    if not host or port is None or address.path not in ("", "/") or address.query or address.fragment:
        raise PredictInputError(usage)
    return "remote", scheduler


def require_dask() -> None:
    """One line naming the extra, before any work, when Dask's distributed scheduler is not installed."""
    try:
        import distributed  # noqa: F401  (needed next anyway)
    except ImportError:
        raise ZooError("--scheduler needs Dask: pip install 'zoo-onnx[dask]'") from None


@contextlib.contextmanager
def connected(scheduler: str) -> Iterator[Any]:
    """A Dask client on ``scheduler`` (a LocalCluster started here, or a running scheduler), closed after."""
    kind, where = parse_scheduler(scheduler)
    require_dask()
    import logging

    from distributed import Client, LocalCluster

    if kind == "local":
        cluster = LocalCluster(n_workers=where, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
        client = Client(cluster)
    else:
        cluster = None
        try:
            client = Client(where)  # waits Dask's distributed.comm.timeouts.connect (30 s unless configured)
        except (OSError, ValueError, TypeError) as exc:
            raise ZooError(f"cannot reach the Dask scheduler at {where}: {first_line(exc)}; nothing was "
                           "written") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_dask(predictor: Predictor, parts: list[Part], settings: Settings, client,
             on_done: Callable[[dict], None] | None = None) -> list[dict[str, Any]]:
    """Each part a Dask task on ``client``; results as they finish. A dead worker's part is re-run by Dask."""
    from distributed import as_completed

    run_id, done = uuid.uuid4().hex[:12], []
    futures = [client.submit(score_part, predictor, str(p.source), str(p.output), settings,
                             key=f"zoo-predict-{run_id}-{i}", pure=False) for i, p in enumerate(parts)]
    for future in as_completed(futures):
        try:
            done.append(future.result())
        except ZooError:
            raise
        except Exception as exc:  # KilledWorker after Dask's retries, a lost connection, ...
            raise ZooError(f"a part failed on Dask ({type(exc).__name__}: {first_line(exc)}); "
                           "re-run the same command to resume") from None
        if on_done:
            on_done(done[-1])
    return done
