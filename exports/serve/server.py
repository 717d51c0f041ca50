"""The server put together: which bundles under which names, the security rules, and uvicorn running the ASGI
application with the gRPC server in the same event loop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable
from dataclasses import asdict, fields, replace
from pathlib import Path

import click
import uvicorn
from uvicorn.supervisors import Multiprocess

from zoo.errors import ZooError
from zoo.exports.serve import grpc_service
from zoo.exports.serve.core import Core, Limits
from zoo.exports.serve.metrics import AccessLog, Metrics
from zoo.exports.serve.models import Repository
from zoo.exports.serve.options import TOKEN_VARIABLE, ServeOptions
from zoo.exports.serve.rest import RestApp


def entries(bundles: list[str | os.PathLike], name: str | None) -> list[tuple[str, str, Path]]:
    """(name, version, path) per bundle: named after its folder or ``name``; a name given twice has versions 1, 2,
    ... in the order given."""
    if not bundles:
        raise ZooError("zoo serve needs at least one bundle folder (zoo export writes one)")
    counts: dict[str, int] = {}
    found = []
    for bundle in bundles:
        path = Path(bundle)
        if not path.is_dir():
            raise ZooError(f"{path} is not a bundle folder: serve what zoo export wrote (a folder with "
                           "manifest.json)")
        model = name or path.resolve().name
        if not model or "/" in model or model in (".", ".."):
            raise ZooError(f"{model!r} cannot name a model: pass --name NAME")
        counts[model] = counts.get(model, 0) + 1
        found.append((model, str(counts[model]), path))
    return found


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_security(options: ServeOptions) -> None:
    if not is_loopback(options.host) and not options.token:
        raise ZooError(f"--host {options.host} lets other machines in: pass --token TOKEN (or set "
                       f"{TOKEN_VARIABLE}) so that every request must carry it, or serve on 127.0.0.1")
    if bool(options.ssl_certfile) != bool(options.ssl_keyfile):
        raise ZooError("TLS needs both --ssl-certfile and --ssl-keyfile")
    for path in (options.ssl_certfile, options.ssl_keyfile):
        if path and not Path(path).is_file():
            raise ZooError(f"{path}: no such file (TLS needs a PEM certificate and key)")
    for label, value in (("--max-batch-rows", options.max_batch_rows), ("--max-rows", options.max_rows),
                         ("--max-request-bytes", options.max_request_bytes), ("--workers", options.workers)):
        if value < 1:
            raise ZooError(f"{label} must be at least 1, got {value}")
    if options.max_queue_delay_us < 0:
        raise ZooError(f"--max-queue-delay-us must be 0 or more, got {options.max_queue_delay_us}")


def create_app(bundles: list[str | os.PathLike], options: ServeOptions | None = None, **overrides):
    """The ASGI application serving ``bundles`` (each verified now; a bundle that fails raises ZooError).

    Run it with any ASGI server (``uvicorn.run(app)``); its lifespan starts the gRPC server when
    ``options.grpc_port`` is set and the watcher that swaps a bundle rewritten on disk.
    """
    options = _options(options, overrides)
    check_security(options)
    metrics = Metrics()
    repository = Repository(entries(bundles, options.name), options.runtime, options.variant,
                            options.max_batch_rows, options.max_queue_delay_us / 1e6, metrics.batched, metrics.event)
    access = AccessLog() if options.access_log else None
    core = Core(repository, metrics, Limits(options.max_request_bytes, options.max_rows), options.token, access)
    running: dict = {}

    async def on_start() -> None:
        if options.grpc_port is not None:
            running["grpc"], options.grpc_port = await grpc_service.start(
                core, options.host, options.grpc_port, options.max_request_bytes, _grpc_credentials(options),
                options.reuse_port)
        if access is not None:
            running["access"] = asyncio.get_running_loop().create_task(access.run())
        if options.watch_interval > 0:
            running["watch"] = asyncio.get_running_loop().create_task(repository.watch(options.watch_interval))

    async def on_stop() -> None:
        if "watch" in running:
            running.pop("watch").cancel()
        if "grpc" in running:
            await running.pop("grpc").stop(options.grace)
        repository.close()
        if "access" in running:
            running.pop("access").cancel()
            access.flush()

    app = RestApp(core, on_start, on_stop)
    app.options, app.repository = options, repository  # what serve() prints and learns the bound ports into
    return app


def serve(bundles: list[str | os.PathLike], options: ServeOptions | None = None, *,
          on_ready: Callable[[dict], None] | None = None, **overrides) -> None:
    """Serve ``bundles`` until SIGTERM or SIGINT: in-flight requests finish, then it returns.

    ``on_ready`` is called once both listen with {"http": URL, "grpc": "host:port" or None, "stop": a function
    that stops the server as SIGTERM does} (from another thread: the way to stop a server embedded in one).
    """
    app = create_app(bundles, _options(options, overrides))
    options = app.options  # the app's own copy, which learns the ports actually bound
    sock = _listen(options.host, options.port)
    options.port = sock.getsockname()[1]
    if options.grpc_port is not None and (options.grpc_port or options.workers > 1):
        # Taken: one line now, not grpc's and uvicorn's once the server is starting. Workers share one port,
        # so "any free port" is chosen here, once.
        probe = _listen(options.host, options.grpc_port, "--grpc-port")
        options.grpc_port = probe.getsockname()[1]
        probe.close()
    # access_log: zoo writes its own (AccessLog), for REST and gRPC; uvicorn's writes and flushes a line a request.
    settings = dict(lifespan="on", access_log=False, ssl_certfile=options.ssl_certfile,
                    ssl_keyfile=options.ssl_keyfile, log_level="info", timeout_keep_alive=30, server_header=False,
                    timeout_graceful_shutdown=options.grace)
    # uvicorn drains on SIGTERM/SIGINT and then raises the signal again for the handler it found; a quiet one
    # here makes the drained server's exit a clean 0, not the command line's "terminated".
    before = {}
    if _main_thread():
        before = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        if options.workers > 1:
            started = supervise(bundles, options, sock, settings, lambda stop: announce(app, on_ready, stop))
        else:
            server = _Server(uvicorn.Config(app, **settings), app, on_ready)
            server.run(sockets=[sock])
            started = server.started
    finally:
        for sig, handler in before.items():  # an embedding program's own handlers, as they were
            signal.signal(sig, handler)
    if not started:
        raise ZooError("the server did not start (see the lines above)")


class _Server(uvicorn.Server):
    """uvicorn's server, which says when it is up and turns readiness off as it starts draining."""

    def __init__(self, config, app, on_ready):
        super().__init__(config)
        self.app, self.on_ready = app, on_ready

    def handle_exit(self, sig, frame):
        self.app.core.ready = False  # /v2/health/ready says 503 (gRPC: not ready) while it drains
        super().handle_exit(sig, frame)

    async def startup(self, sockets=None):
        await super().startup(sockets)
        if self.started:
            announce(self.app, self.on_ready, self.stop)

    def stop(self) -> None:
        self.app.core.ready = False
        self.should_exit = True


def announce(app, on_ready, stop) -> None:
    """The line that says the server is up, and ``on_ready``'s call."""
    options = app.options
    scheme = "https" if options.ssl_certfile else "http"
    host = f"[{options.host}]" if ":" in options.host else options.host
    where = {"http": f"{scheme}://{host}:{options.port}",
             "grpc": f"{host}:{options.grpc_port}" if options.grpc_port is not None else None, "stop": stop}
    models = ", ".join(f"{name} (version {', '.join(versions)})" for name, versions in app.repository.models.items())
    workers = f", {options.workers} worker processes" if options.workers > 1 else ""
    click.echo(f"zoo serve: {models} verified on {options.runtime}; REST on {where['http']}"
               + (f", gRPC on {where['grpc']}" if where["grpc"] else "") + workers, err=True)
    if on_ready is not None:
        on_ready(where)


def _listen(host: str, port: int, option: str = "--port") -> socket.socket:
    """The REST socket, bound here so that a taken port is one line before anything starts (port 0: any free)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ZooError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (choose another {option}, or stop "
                       "what holds it)") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


# -- --workers N: processes sharing the REST socket and the gRPC port -----------------------------------------
#
# uvicorn's own multiprocess supervisor runs them: it restarts a worker that dies, passes SIGTERM on, and SIGHUP
# replaces them one by one. Each worker verifies and opens the bundles itself, runs its own batcher and watcher,
# and counts its metrics in prometheus_client's multiprocess files, so /metrics from any worker is the server's.

_STATE = "ZOO_SERVE_WORKER"  # what the parent hands its workers: the bundles and the options, as JSON
_METRICS = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own variable


def supervise(bundles, options: ServeOptions, sock, settings: dict, announce) -> bool:
    """Run ``options.workers`` workers on ``sock`` until SIGTERM/SIGINT; False when they could not start."""
    state = {"bundles": [str(Path(b).resolve()) for b in bundles],
             "options": asdict(replace(options, workers=1, reuse_port=True, port=sock.getsockname()[1]))}
    metrics = tempfile.mkdtemp(prefix="zoo-serve-metrics-")
    saved = {name: os.environ.get(name) for name in (_STATE, _METRICS)}
    os.environ[_STATE], os.environ[_METRICS] = json.dumps(state), metrics  # spawned workers inherit them
    outcome = {"started": False}

    class Supervisor(Multiprocess):
        def init_processes(self) -> None:
            super().init_processes()
            if all(p.wait_until_ready(120, self.should_exit) for p in self.processes):
                outcome["started"] = True
                announce(self.should_exit.set)
            else:
                self.should_exit.set()

    try:
        config = uvicorn.Config(f"{__name__}:worker_app", factory=True, workers=options.workers, **settings)
        Supervisor(config, sockets=[sock]).run()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(metrics, ignore_errors=True)
    return outcome["started"]


def worker_app():
    """The application of one worker process (uvicorn calls it there, as a factory)."""
    state = json.loads(os.environ[_STATE])
    return create_app(state["bundles"], ServeOptions(**state["options"]))


def _grpc_credentials(options: ServeOptions):
    if not options.ssl_certfile:
        return None
    import grpc

    key, chain = Path(options.ssl_keyfile).read_bytes(), Path(options.ssl_certfile).read_bytes()
    return grpc.ssl_server_credentials([(key, chain)])


def _options(options: ServeOptions | None, overrides: dict) -> ServeOptions:
    options = options or ServeOptions()
    known = {f.name for f in fields(ServeOptions)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown serve option {unknown[0]!r} (options: {', '.join(sorted(known))})")
    options = replace(options, **overrides)
    if options.token is None:
        options.token = os.environ.get(TOKEN_VARIABLE) or None
    return options


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
