"""Scale-out training on torch's own engine: the elastic launcher (torchrun) and DistributedDataParallel.

``zoo train/export NAME --nproc-per-node N`` starts N workers through
``torch.distributed.launcher`` (the engine behind ``torchrun``), gloo on the CPU
and NCCL on CUDA. Every worker builds the same registered model and loss policy
with the same seed, trains on its equal shard of the data inside DDP
(:func:`zoo.training.fit` does this whenever a process group is up), and only
rank 0 runs the ``finish`` step (write the checkpoint, or export and check
parity) and reports back. A worker that dies stops the whole job.
"""

from __future__ import annotations

import socket
import uuid
from typing import Any

from zoo.errors import ZooError
from zoo.specs import resolve
from zoo.training import fit
from zoo.training.config import TrainConfig


def worker(job: dict[str, Any]) -> dict[str, Any] | None:
    """One rank's work. Module-level so that the launcher can start it in a fresh process."""
    import os

    import torch
    import torch.distributed as dist

    from zoo.tables.features import TableOptions  # deferred: zoo --help imports this module, not the table code


    config = TrainConfig(**job["config"])
    # fit() chooses the threads: at most the cores over LOCAL_WORLD_SIZE (N workers with torch's default pools
    # would oversubscribe the cores, as torchrun warns).
    if config.device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if config.device == "cuda" else "gloo")
    try:
        table = TableOptions.from_dict(job["table"]) if job.get("table") else None
        note = (lambda line: print(line, flush=True)) if job.get("notes") else None
        result = fit(job["name"], policy=job["policy"], data=job["data"], config=config, table=table, note=note,
                     **job["model_config"])
        if dist.get_rank() != 0:
            return None
        return resolve(job["finish"])(result, **job["finish_args"])
    except ZooError as exc:
        return {"error": str(exc)} if dist.get_rank() == 0 else None
    finally:
        dist.destroy_process_group()


def check_endpoint(endpoint: str) -> tuple[str, int]:
    """``HOST:PORT``; a local port already taken is refused before any worker starts."""
    host, _, port_text = endpoint.rpartition(":")
    if not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ZooError(f"--rdzv-endpoint {endpoint!r} must look like HOST:PORT, e.g. 10.0.0.1:29500")
    port = int(port_text)
    if port and host in ("127.0.0.1", "localhost", "0.0.0.0", socket.gethostname()):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("0.0.0.0" if host == "0.0.0.0" else "127.0.0.1", port))
            except OSError:
                raise ZooError(f"rendezvous port {port} on {host} is already in use: "
                               "pick another --rdzv-endpoint HOST:PORT") from None
    return host, port


def launch(job: dict[str, Any], *, nproc_per_node: int, nnodes: int = 1, node_rank: int = 0,
           rdzv_endpoint: str | None = None) -> dict[str, Any] | None:
    """Run ``job`` on ``nnodes x nproc_per_node`` workers; return rank 0's answer."""
    import logging

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if nnodes > 1 and not rdzv_endpoint:
        raise ZooError("training on several machines needs --rdzv-endpoint HOST:PORT (the same on every node)")
    endpoint = rdzv_endpoint or "127.0.0.1:0"
    check_endpoint(endpoint)
    config = LaunchConfig(
        min_nodes=nnodes, max_nodes=nnodes, nproc_per_node=nproc_per_node,
        rdzv_backend="c10d" if nnodes == 1 else "static", rdzv_endpoint=endpoint,
        rdzv_configs={"rank": node_rank} if nnodes > 1 else {},
        run_id=f"zoo-{job['name']}" if nnodes > 1 else f"zoo-{uuid.uuid4().hex[:8]}",
        max_restarts=0, monitor_interval=0.1, start_method="spawn",
    )
    # The launcher logs each step, and a worker's death as a page of traceback: zoo says it in one line.
    loggers = [logging.getLogger(name) for name in _LAUNCHER_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        results = elastic_launch(config, worker)(job)
    except ChildFailedError as exc:
        raise ZooError(f"the job stopped: {_describe_failures(exc)}; nothing was written") from None
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
    answer = results.get(0)
    if isinstance(answer, dict) and "error" in answer and len(answer) == 1:
        raise ZooError(answer["error"])
    return answer


_LAUNCHER_LOGGERS = (
    "torch.distributed", "torch.distributed.elastic", "torch.distributed.elastic.multiprocessing.api",
    "torch.distributed.elastic.agent.server.api", "torch.distributed.elastic.agent.server.local_elastic_agent",
    "torch.distributed.launcher.api", "torch.distributed.elastic.rendezvous", "torch.multiprocessing",
    "torch.multiprocessing.spawn",
)


def _describe_failures(exc) -> str:
    import signal

    parts = []
    for rank, failure in sorted(exc.failures.items()):
        code = failure.exitcode
        if code is not None and code < 0:
            try:
                how = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
        else:
            how = f"exit code {code}"
        parts.append(f"worker rank {rank} failed ({how})")
    return "; ".join(parts) or str(exc)
