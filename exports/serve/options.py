"""What ``zoo serve`` can be told, and its defaults: the command line's options and ``zoo.serve``'s keywords both
read them from here (a module with no imports of weight: ``zoo --help`` loads it)."""

from __future__ import annotations

from dataclasses import dataclass

from zoo.exports.runtimes import DEFAULT_RUNTIME

TOKEN_VARIABLE = "ZOO_SERVE_TOKEN"


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    grpc_port: int | None = 8001  # None: no gRPC
    runtime: str = DEFAULT_RUNTIME
    variant: str | None = None
    name: str | None = None
    token: str | None = None
    max_request_bytes: int = 64 << 20
    max_rows: int = 65536
    max_batch_rows: int = 4096
    max_queue_delay_us: int = 0
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    access_log: bool = True
    watch_interval: float = 1.0  # seconds between looks at the bundles on disk; 0: never
    workers: int = 1  # processes sharing the ports (each its own models, batcher and watcher)
    reuse_port: bool = False  # gRPC's port shared between worker processes (set for them)
    grace: float = 10.0  # seconds in-flight requests get to finish at shutdown; a stalled connection is then cut
