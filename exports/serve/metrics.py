"""The server's operations: Prometheus metrics, with the standard ``prometheus_client``, in a registry of the
server's own (two servers in one process, as tests run them, do not mix their counts); and the access log."""

from __future__ import annotations

import asyncio
import sys
import time

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ROWS = tuple(float(2**k) for k in range(17))


class Metrics:
    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("zoo_serve_requests", "Inference requests answered", ["model", "protocol"],
                                registry=self.registry)
        self.failures = Counter("zoo_serve_request_failures", "Requests refused or failed, by status",
                                ["protocol", "status"], registry=self.registry)
        self.latency = Histogram("zoo_serve_request_seconds", "Inference request latency, read to written",
                                 ["protocol"], buckets=_LATENCY, registry=self.registry)
        self.batch_rows = Histogram("zoo_serve_batch_rows", "Rows per runtime call (coalesced requests)",
                                    ["model"], buckets=_ROWS, registry=self.registry)
        self.queue = Histogram("zoo_serve_queue_seconds", "Time a request waited for its runtime call",
                               ["model"], buckets=_LATENCY, registry=self.registry)
        self.swaps = Counter("zoo_serve_model_swaps", "Bundles changed on disk: swapped in, or refused",
                             ["model", "outcome"], registry=self.registry)
        self._children: dict = {}

    def _child(self, metric, *labels):
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def answered(self, model: str, protocol: str, seconds: float) -> None:
        self._child(self.requests, model, protocol).inc()
        self._child(self.latency, protocol).observe(seconds)

    def failed(self, protocol: str, status: int | str) -> None:
        self._child(self.failures, protocol, str(status)).inc()

    def batched(self, model: str, rows: int, waits: list[float]) -> None:
        self._child(self.batch_rows, model).observe(rows)
        queue = self._child(self.queue, model)
        for wait in waits:
            queue.observe(wait)

    def event(self, kind: str, model: str) -> None:
        self._child(self.swaps, model, kind).inc()

    def text(self) -> tuple[bytes, str]:
        import os

        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # zoo serve --workers N: every worker's counts, summed
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class AccessLog:
    """One line per request (REST and gRPC), written in batches off the request's path.

    uvicorn's access log writes and flushes a line per request, which cost a third of the server's 1-row
    throughput; here a request appends its line, and :meth:`run` writes what gathered every ``interval``
    seconds (at most that much of the log is lost to a SIGKILL), or at once past ``limit`` lines.
    """

    def __init__(self, stream=None, interval: float = 0.2, limit: int = 4096):
        self.stream, self.interval, self.limit = stream or sys.stdout, interval, limit
        self.lines: list[str] = []

    def add(self, client: str, what: str, status: int | str, seconds: float) -> None:
        self.lines.append(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {client} \"{what}\" {status} "
                          f"{seconds * 1e3:.2f}ms\n")
        if len(self.lines) >= self.limit:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            lines, self.lines = self.lines, []
            try:
                self.stream.write("".join(lines))
                self.stream.flush()
            except (OSError, ValueError):  # a closed or broken stdout never takes the server down
                pass

    async def run(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.interval)
                self.flush()
        finally:
            self.flush()
