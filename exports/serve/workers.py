"""``zoo serve --workers N``: N processes sharing the REST socket and the gRPC port, supervised by uvicorn's own
multiprocess supervisor (it restarts a worker that dies, forwards SIGTERM, and SIGHUP restarts them one by one).

Each worker verifies and opens the bundles itself, runs its own batcher and watcher, and counts its metrics in
Prometheus' multiprocess files, so that ``/metrics`` from any worker reports the whole server.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

from zoo.exports.serve.server import ServeOptions, create_app

_STATE = "ZOO_SERVE_WORKER"  # what the parent hands its workers: the bundles and the options, as JSON
_METRICS = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own variable


def supervise(bundles, options: ServeOptions, sock, settings: dict, announce) -> bool:
    """Run ``options.workers`` workers on ``sock`` until SIGTERM/SIGINT; False when they could not start."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

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
