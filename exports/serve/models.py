"""What the server serves: each bundle verified when it is loaded, its requests batched, and a bundle swapped on
disk taken over atomically once the new one verifies.

A :class:`Served` is one verified bundle on one runtime: it knows the tensors the model takes and gives, turns a
request's tensors into the rows :class:`~zoo.exports.deploy.predictor.Predictor` takes, and owns the
:class:`Batcher` that coalesces concurrent requests into one runtime call. A :class:`Repository` holds every
model by name and version and watches their folders.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.errors import PredictInputError, ZooError
from zoo.exports.bundle.layout import MANIFEST_FILE, MODEL_FILE
from zoo.exports.deploy.predictor import Predictor
from zoo.exports.deploy.verify import verify
from zoo.exports.serve.tensors import DTYPES, ProtocolError
from zoo.tables import Frame

log = logging.getLogger("zoo.serve")

#: The outputs every served model gives, as ``zoo predict`` writes them.
OUTPUTS = ("label", "class_index", "probabilities")


def identity(bundle: Path) -> tuple:
    """What changes when a bundle is written again: the folder, its manifest and its model file."""
    found = []
    for path in (bundle, bundle / MANIFEST_FILE, bundle / MODEL_FILE):
        try:
            st = os.stat(path)
            found.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            found.append(None)
    return tuple(found)


@dataclass
class Served:
    """One bundle, verified on one runtime, ready to answer."""

    name: str
    version: str
    path: Path
    predictor: Predictor
    identity: tuple
    inputs: list[dict]  # name, datatype, shape (-1 for rows): the model metadata's
    outputs: list[dict]
    parameters: dict
    batcher: Batcher | None = field(default=None, repr=False)

    @property
    def table(self) -> bool:
        return self.predictor.model.features is not None

    def rows(self, tensors: dict[str, np.ndarray]) -> np.ndarray | Frame:
        """A request's input tensors as the checked rows the runtime takes (a 400 for anything else)."""
        wanted = [i["name"] for i in self.inputs]
        missing = [n for n in wanted if n not in tensors]
        extra = [n for n in tensors if n not in wanted]
        if missing or extra:
            raise ProtocolError(f"model {self.name!r} takes the input{'s' if len(wanted) > 1 else ''} "
                                f"{', '.join(wanted[:8])}{', ...' if len(wanted) > 8 else ''}"
                                + (f"; missing {', '.join(missing[:4])}" if missing else "")
                                + (f"; unknown {', '.join(extra[:4])}" if extra else ""))
        for spec in self.inputs:
            value = tensors[spec["name"]]
            if value.dtype != DTYPES[spec["datatype"]]:  # as declared: FP64 for an FP32 input is refused too
                raise ProtocolError(f"input {spec['name']!r} must be {spec['datatype']}, shape "
                                    f"{spec['shape']} (see GET /v2/models/{self.name})")
            if not _fits(value.shape, spec["shape"]):
                raise ProtocolError(f"input {spec['name']!r} has shape {list(value.shape)}; model {self.name!r} "
                                    f"takes {spec['shape']} (-1: any number of rows)")
        counts = {len(tensors[n]) for n in wanted}
        if len(counts) != 1:
            raise ProtocolError(f"the inputs hold different numbers of rows: {sorted(counts)}")
        try:
            if not self.table:
                x = np.ascontiguousarray(tensors[wanted[0]], dtype=np.float32)
            else:
                columns = {}
                for spec in self.inputs:
                    value = tensors[spec["name"]].reshape(-1)
                    if value.dtype == object:
                        value = np.array([v.decode("utf-8", "replace") for v in value], dtype=object)
                    columns[spec["name"]] = value
                x = self.predictor.rows(columns)
            self.predictor.check(x)
        except PredictInputError as exc:
            raise ProtocolError(str(exc).replace(", or pass --allow-nan (allow_nan=True)", "")) from None
        return x

    def answer(self, got: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The runtime's outputs as the protocol's: ``label`` as the class names, as ``zoo predict`` writes."""
        index = got["label"]
        labels = self._labels[np.where(index < 0, len(self._labels) - 1, index)]
        return {"label": labels, "class_index": index.astype(np.int64, copy=False),
                "probabilities": got["probabilities"]}

    def __post_init__(self):
        self._labels = np.array([c.encode("utf-8") for c in self.predictor.model.class_labels] + [b""], dtype=object)


def _fits(shape: tuple, declared: list[int]) -> bool:
    if len(shape) == len(declared):
        return all(d == -1 or d == s for s, d in zip(shape, declared))
    # a table model's column may come as [rows] as well as [rows, 1]
    return len(declared) == 2 and declared[1] == 1 and len(shape) == 1


def load(path: Path, name: str, version: str, runtime: str, variant: str | None) -> Served:
    """A bundle verified on ``runtime`` (checksums, then its own test data) and opened there; one line otherwise."""
    before = identity(path)
    try:
        report = verify(path, runtimes=[runtime], variant=variant or "fp32")
    except ZooError as exc:
        raise ZooError(f"{path} does not verify: {exc}") from None
    if not report.verified:
        raise ZooError(f"{path} does not verify on {runtime}: {report.failure()}")
    predictor = Predictor(path, runtime, variant=variant)
    if identity(path) != before:
        raise ZooError(f"{path} changed while it was being verified; it is tried again when it settles")
    deployed = predictor.model
    manifest = deployed.manifest
    rows = -1
    if deployed.features is None:
        inputs = [{"name": deployed.input_name, "datatype": "FP32", "shape": [rows, deployed.input_size]}]
    else:
        inputs = [{"name": f.name, "datatype": "FP32" if f.kind == "numeric" else "BYTES", "shape": [rows, 1]}
                  for f in deployed.features.columns]
    width = len(deployed.class_labels) if deployed.head == "softmax" else 1
    outputs = [{"name": "label", "datatype": "BYTES", "shape": [rows]},
               {"name": "class_index", "datatype": "INT64", "shape": [rows]},
               {"name": "probabilities", "datatype": "FP32", "shape": [rows, width]}]
    parameters = {"classes": json.dumps(list(deployed.class_labels)), "head": deployed.head,
                  "decision": deployed.decision, "runtime": runtime, "variant": variant or "fp32",
                  "model": deployed.metadata.get("zoo.model", ""),
                  "policy": deployed.metadata.get("zoo.policy", "")}
    if manifest is not None and deployed.threshold is not None:
        parameters["threshold"] = str(deployed.threshold)
    return Served(name, version, path, predictor, before, inputs, outputs, parameters)


class Batcher:
    """Concurrent requests for one model coalesced into one runtime call.

    A request joins the queue; the runner takes everything queued, up to ``max_rows`` rows, waiting at most
    ``max_delay`` seconds after the first for more to arrive, and runs it on one thread while the event loop
    goes on reading requests (onnxruntime releases the GIL). Each request gets back exactly its own rows of the
    outputs. A request larger than ``max_rows`` runs alone.
    """

    def __init__(self, served: Served, max_rows: int, max_delay: float, observe=None):
        self.served, self.max_rows, self.max_delay, self.observe = served, max_rows, max_delay, observe
        self._queue: deque[tuple[object, int, asyncio.Future, float]] = deque()
        self._rows = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"zoo-serve-{served.name}")
        self.in_flight = 0

    async def submit(self, x) -> dict[str, np.ndarray]:
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run())
        future = loop.create_future()
        self._queue.append((x, len(x), future, time.perf_counter()))
        self._rows += len(x)
        self.in_flight += 1
        self._wake.set()
        try:
            return await future
        finally:
            self.in_flight -= 1

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._queue:
                continue
            if self.max_delay > 0 and self._rows < self.max_rows:
                deadline = self._queue[0][3] + self.max_delay
                while self._rows < self.max_rows and (left := deadline - time.perf_counter()) > 0:
                    try:
                        await asyncio.wait_for(self._wake.wait(), left)
                    except asyncio.TimeoutError:
                        break
                    self._wake.clear()
            batch, rows = [], 0
            while self._queue and (not batch or rows + self._queue[0][1] <= self.max_rows):
                item = self._queue.popleft()
                batch.append(item)
                rows += item[1]
            self._rows -= rows
            if self._queue:
                self._wake.set()
            started = time.perf_counter()
            try:
                got = await loop.run_in_executor(self._pool, self._call, [item[0] for item in batch])
            except Exception as exc:  # the runtime failed: every request of the batch hears why
                for item in batch:
                    if not item[2].done():
                        item[2].set_exception(exc)
                continue
            if self.observe is not None:
                self.observe(self.served.name, rows, [started - item[3] for item in batch])
            at = 0
            for _, n, future, _ in batch:
                if not future.done():
                    future.set_result({k: v[at:at + n] for k, v in got.items()})
                at += n

    def _call(self, parts: list) -> dict[str, np.ndarray]:
        x = parts[0] if len(parts) == 1 else _concatenate(parts)
        return self.served.answer(self.served.predictor.outputs(x))

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._pool.shutdown(wait=False)


def _concatenate(parts: list):
    if isinstance(parts[0], Frame):
        return Frame({name: np.concatenate([p.columns[name] for p in parts]) for name in parts[0].columns})
    return np.concatenate(parts)


class Repository:
    """Every served model by name, its versions in the order given (the last one answers unversioned requests).

    ``watch`` polls each bundle's folder; when its files change (``zoo export --force``, ``zoo variants
    --add``), the new bundle is verified off the event loop and swapped in atomically: requests already
    queued finish on the old model, new ones go to the new. A new bundle that fails verification is logged
    and not taken; the old one keeps serving.
    """

    def __init__(self, entries: list[tuple[str, str, Path]], runtime: str, variant: str | None,
                 max_rows: int, max_delay: float, observe=None, events=None):
        self.runtime, self.variant, self.max_rows, self.max_delay = runtime, variant, max_rows, max_delay
        self.observe, self.events = observe, events or (lambda kind, name: None)
        self.models: dict[str, dict[str, Served]] = {}
        self._failed: dict[Path, tuple] = {}
        for name, version, path in entries:
            served = self._load(path, name, version)
            self.models.setdefault(name, {})[version] = served

    def _load(self, path: Path, name: str, version: str) -> Served:
        served = load(path, name, version, self.runtime, self.variant)
        served.batcher = Batcher(served, self.max_rows, self.max_delay, self.observe)
        return served

    def get(self, name: str, version: str | None = None) -> Served:
        versions = self.models.get(name)
        if versions is None:
            raise ProtocolError(f"no model named {name!r} here (models: {', '.join(sorted(self.models))})", 404)
        if not version:
            return versions[next(reversed(versions))]
        served = versions.get(version)
        if served is None:
            raise ProtocolError(f"model {name!r} has no version {version!r} (versions: {', '.join(versions)})", 404)
        return served

    async def watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            for name, versions in list(self.models.items()):
                for version, served in list(versions.items()):
                    now = identity(served.path)
                    if now == served.identity or now == self._failed.get(served.path) or None in now:
                        continue
                    await self._swap(name, version, served, now)

    async def _swap(self, name: str, version: str, old: Served, now: tuple) -> None:
        try:
            new = await asyncio.get_running_loop().run_in_executor(None, self._load, old.path, name, version)
        except ZooError as exc:
            self._failed[old.path] = now
            log.warning("zoo serve: kept %s version %s: the bundle on disk was not taken: %s", name, version, exc)
            self.events("swap_refused", name)
            return
        self.models[name][version] = new  # one assignment: a request sees the old model or the new, never both
        self._failed.pop(old.path, None)
        log.warning("zoo serve: now serving the new %s (version %s) from %s", name, version, old.path)
        self.events("swapped", name)
        while old.batcher.in_flight:
            await asyncio.sleep(0.01)
        old.batcher.close()

    def close(self) -> None:
        for versions in self.models.values():
            for served in versions.values():
                served.batcher.close()
