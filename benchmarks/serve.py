"""`zoo serve` against Seldon MLServer serving the same model.onnx, loaded on loopback.

    python benchmarks/serve.py [--seconds 20] [--repeats 1] [--clients 16] [--client raw|aiohttp]

One bundle (``zoo export multiclass``) is served by each server in turn, alone on the machine: ``zoo serve BUNDLE
--no-grpc --no-access-log``, and MLServer 1.7.1 with a minimal custom runtime (an ``MLModel`` whose ``load`` opens
an onnxruntime session on model.onnx and whose ``predict`` decodes the request with MLServer's numpy codec, runs the
session and encodes ``label`` and ``probabilities``). MLServer is installed once into its own virtual environment
(benchmarks/.cache/mlserver-venv by default, ignored by git) and runs inference in the server process
(``parallel_workers`` 0: its worker pool dies at start under the current uvloop), with no access log, no metrics
server and no gzip (zoo keeps its /metrics). ``--as-shipped`` leaves both servers' access logs on, and MLServer's
metrics and gzip.

The load comes from another process: ``--clients`` concurrent clients, each on its own keep-alive HTTP/1.1
connection, send Open Inference Protocol (KServe v2) requests, the same bytes to both servers, back to back for
``--seconds`` after a warm-up; first with 1 row per request, then with 64. Every response must be a 200 whose
``label`` output equals the label onnxruntime gives for those rows on model.onnx in this process (the rows are the
bundle's own held-out rows); any other counts as an error and not as a request served. With ``--repeats N`` the
servers alternate (A B, B A, ...) and each figure is the median, with min-max.

Figures: requests/s with 1 row (target: zoo at least 2x MLServer), p99 latency (target: zoo at most MLServer's),
p50, rows/s with 64 rows, and each server's CPU time per request (its whole process tree, from /proc). The client's
own CPU per request is reported beside them, so that a client-bound run shows. Rows print as JSON lines.

Then an operational phase, zoo serve alone (``--skip-ops`` leaves it out, ``--ops-only`` runs nothing else), under
the same load (``--clients`` clients, 1-row requests, every request's fate kept by the load process):

* swap: while the load runs on a copy of the bundle, ``zoo export multiclass -o COPY --force --no-card --seed 7
  --epochs 5`` writes another model over it. Every request must be a 200 whose label, class_index and
  probabilities are onnxruntime's for its row on either the old model.onnx (copied before the export) or the new
  one, and once one answer has come from the new model, no request sent after it may be answered by the old.
  Figures: failed requests (target 0), answers from each model, answers from neither (target 0), old answers
  after the first new one (target 0), seconds from the export's end to the first new answer (within
  ``--ops-settle``, the load's time after the export).
* drain: while the load runs, SIGTERM to zoo serve. A non-200, a cut or malformed response, a wrong answer, or a
  connection refused or closed without an answer before the SIGTERM is a failure (target 0); refused or closed
  without a response byte after it is "refused after stop" (each client stops there), counted apart; a response
  cut after some of its bytes came is a failure. Figures: failures, 200 answers after the SIGTERM, refused after
  stop, the exit status (target 0) and the seconds from the SIGTERM to the exit.

The operational rows' ratio is the figure's share of the baseline count; the exit status's is 1 when it is 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
_SCRIPT = Path(PY).with_name("zoo")
ZOO = [str(_SCRIPT)] if _SCRIPT.exists() else [PY, "-m", "zoo"]
CACHE = HERE / ".cache"
MLSERVER_VENV = CACHE / "mlserver-venv"
MLSERVER_PACKAGES = ("mlserver==1.7.1", "onnxruntime", "numpy")
MLSERVER = "MLServer 1.7.1"
ZOO_SERVE = "zoo serve"
BATCHES = (1, 64)
HOST = "127.0.0.1"
# Children may cache bytecode (as run.py's CHILD_ENV); MLServer reads MLSERVER_* from the environment: none pass.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith("MLSERVER")}

#: The MLServer custom runtime, written beside its settings.json (MLServer puts that folder on sys.path). Session
#: options as zoo's onnxruntime-cpu runtime opens them: defaults, errors-only log, OMP_NUM_THREADS as the thread cap.
RUNTIME = '''\
import os

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri


class OnnxClassifier(MLModel):
    async def load(self) -> bool:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        threads = os.environ.get("OMP_NUM_THREADS", "")
        if threads.isdigit() and int(threads) > 0:
            options.intra_op_num_threads = int(threads)
        path = await get_model_uri(self._settings)
        self._session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32, copy=False)
        label, probabilities = self._session.run(["label", "probabilities"], {self._input: x})
        return InferenceResponse(model_name=self.name, model_version=self.version, outputs=[
            NumpyCodec.encode_output("label", label), NumpyCodec.encode_output("probabilities", probabilities)])
'''


def _row(figure, value, unit, baseline, baseline_value, ratio, target=None, met=None, spread=None) -> dict:
    return {"figure": figure, "value": value, "unit": unit, "baseline": baseline, "baseline_value": baseline_value,
            "ratio": ratio, "target": target, "met": met, "spread": spread}


def _summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def _say(message: str) -> None:
    print(f"serve: {message}", file=sys.stderr, flush=True)


# -- the servers ------------------------------------------------------------------------------------


def free_ports(n: int) -> list[int]:
    """``n`` distinct loopback ports free right now (all held open until all are chosen)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((HOST, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def zoo_serve_help() -> tuple[str | None, str]:
    """Why ``zoo serve`` cannot run here (its ``--help`` fails), or None; and its help text."""
    try:
        out = subprocess.run([*ZOO, "serve", "--help"], capture_output=True, text=True, timeout=120, env=CHILD_ENV)
    except subprocess.TimeoutExpired:
        return "`zoo serve --help` took over 120 s", ""
    if out.returncode == 0:
        return None, out.stdout
    lines = (out.stderr or out.stdout).strip().splitlines()
    return f"`zoo serve --help` failed: {lines[-1] if lines else f'exit status {out.returncode}'}", ""


def ensure_mlserver(venv: Path) -> Path:
    """The python of a virtual environment holding MLServer, made (python -m venv, pip install) the first time."""
    python = venv / "bin" / "python"
    marker = venv / "zoo-bench-packages.txt"
    want = " ".join(MLSERVER_PACKAGES)
    if python.exists() and marker.exists() and marker.read_text() == want:
        return python
    if venv.parent == CACHE:
        CACHE.mkdir(parents=True, exist_ok=True)
        if not (CACHE / ".gitignore").exists():
            (CACHE / ".gitignore").write_text("# made by benchmarks/serve.py: nothing here is tracked\n*\n")
    if venv.exists():
        shutil.rmtree(venv)
    _say(f"installing {want} into {venv} (once; about a minute)")
    for cmd, limit in (([PY, "-m", "venv", str(venv)], 300),
                       ([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *MLSERVER_PACKAGES],
                        1200)):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, env=CHILD_ENV)
        except subprocess.TimeoutExpired:
            raise SystemExit(f"serve: `{' '.join(cmd)}` took over {limit} s") from None
        if out.returncode:
            raise SystemExit(f"serve: `{' '.join(cmd)}` failed:\n{out.stderr[-3000:]}")
    marker.write_text(want)
    return python


def mlserver_folder(work: Path, bundle: Path, ports: list[int], as_shipped: bool) -> Path:
    """MLServer's folder: settings.json, the runtime, and a model folder named as the bundle's."""
    folder = work / "mlserver"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "models" / bundle.name).mkdir(parents=True)
    (folder / "runtime.py").write_text(RUNTIME)
    settings = {"host": HOST, "http_port": ports[0], "grpc_port": ports[1], "metrics_port": ports[2],
                "parallel_workers": 0, "model_repository_root": str(folder / "models"),
                "load_models_at_startup": True}
    if not as_shipped:
        settings.update({"debug": False, "metrics_endpoint": None, "gzip_enabled": False})
    (folder / "settings.json").write_text(json.dumps(settings, indent=2))
    model = {"name": bundle.name, "implementation": "runtime.OnnxClassifier",
             "parameters": {"uri": str((bundle / "model.onnx").resolve())}}
    (folder / "models" / bundle.name / "model-settings.json").write_text(json.dumps(model, indent=2))
    return folder


def start(cmd: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:  # the child keeps its own descriptor; nothing here reads a pipe it could fill
        return subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=CHILD_ENV, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (it leads its own session), then SIGKILL after 15 s."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_ready(proc: subprocess.Popen, port: int, log: Path, timeout: float) -> float:
    """Seconds until GET /v2/health/ready answers 200; SystemExit with the log's tail if the server dies or is
    not ready within ``timeout``."""
    started = time.perf_counter()
    url = f"http://{HOST}:{port}/v2/health/ready"
    while time.perf_counter() - started < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"serve: the server exited ({proc.returncode}) before it was ready:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"serve: not ready within {timeout:.0f} s ({url}):\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# -- the load (run in its own process: `serve.py _client SPEC`) --------------------------------------------


def _tree_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of ``pid`` and its live descendants, from /proc; None where there is none."""
    try:
        tick = os.sysconf("SC_CLK_TCK")
        stats = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    with open(f"/proc/{entry.name}/stat", "rb") as f:
                        fields = f.read().rsplit(b")", 1)[1].split()
                except OSError:
                    continue
                stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    except OSError:
        return None
    tree, total = {pid}, 0
    for _ in range(8):  # descendants, a generation per pass
        tree |= {p for p, (parent, _) in stats.items() if parent in tree}
    for p in tree:
        total += stats.get(p, (0, 0))[1]
    return total / tick if pid in stats else None


class _BadResponse(Exception):
    pass


def _parse(buffer: bytearray) -> tuple[int, bytes, bool, int] | None:
    """The first whole HTTP/1.1 response in ``buffer`` (Content-Length or chunked) as status, body, whether the
    server closes, and its length; None while it is incomplete."""
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        if len(buffer) > 65536:
            raise _BadResponse("a response head over 64 KiB")
        return None
    head = bytes(buffer[:head_end + 2]).lower()
    status = int(head[9:12])
    close = b"\r\nconnection: close\r\n" in head
    at = head.find(b"\r\ncontent-length:")
    if at >= 0:
        end = head_end + 4 + int(head[at + 17:head.index(b"\r\n", at + 2)])
        return (status, bytes(buffer[head_end + 4:end]), close, end) if len(buffer) >= end else None
    if b"\r\ntransfer-encoding: chunked\r\n" not in head:
        raise _BadResponse(f"a response without a length: {head[:200]!r}")
    parts, at = [], head_end + 4
    while (line_end := buffer.find(b"\r\n", at)) >= 0:
        size = int(bytes(buffer[at:line_end]).split(b";")[0], 16)
        if size == 0:
            end = buffer.find(b"\r\n\r\n", line_end - 2)  # past any trailers
            return (status, b"".join(parts), close, end + 4) if end >= 0 else None
        if len(buffer) < line_end + 2 + size + 2:
            return None
        parts.append(bytes(buffer[line_end + 2:line_end + 2 + size]))
        at = line_end + 2 + size + 2
    return None


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time: an asyncio protocol on uvloop, about a third of
    aiohttp's CPU per request here (and a little under asyncio streams')."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.transport = None
        self.lost: BaseException | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is not None and not self.waiter.done():
            try:
                parsed = _parse(self.buffer)
            except (ValueError, _BadResponse) as e:
                self.waiter.set_exception(_BadResponse(str(e)))
                return
            if parsed is not None:
                del self.buffer[:parsed[3]]
                self.waiter.set_result(parsed[:3])

    def connection_lost(self, exc) -> None:
        self.lost = exc or ConnectionResetError("the server closed the connection")
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(self.lost)

    def request(self, data: bytes) -> asyncio.Future:
        if self.lost is not None:
            raise self.lost
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter


try:  # the check's JSON parse, a tenth of the stdlib's CPU on a 64-row response (orjson comes with zoo[serve])
    from orjson import loads as _loads
except ImportError:
    _loads = json.loads


def _labels(body: bytes, index_of: dict[str, int]) -> list[int] | None:
    """The response's ``label`` output as class indices: the graph's int64 as it is (MLServer), or a class label
    mapped back through the bundle's labels (zoo serve answers BYTES labels, and the indices as ``class_index``)."""
    for output in _loads(body).get("outputs", ()):
        if output.get("name") == "label":
            return [v if type(v) is int else index_of[v] for v in output["data"]]
    return None


async def _load(spec: dict) -> dict:
    host, port, path = spec["host"], spec["port"], spec["path"]
    bodies = [b.encode() for b in spec["bodies"]]
    expected, index_of = spec["expected"], {label: i for i, label in enumerate(spec["class_labels"])}
    clients, client = spec["clients"], spec["client"]
    begin = time.perf_counter()
    count_from, stop_at = begin + spec["warmup"], begin + spec["warmup"] + spec["seconds"]
    latencies: list[float] = []
    errors = {"count": 0, "first": None}

    def record(started: float, status: int, body: bytes, want: list[int]) -> None:
        took = time.perf_counter() - started
        try:
            ok = status == 200 and _labels(body, index_of) == want
        except (ValueError, TypeError, KeyError, AttributeError):  # orjson's error is a ValueError
            ok = False
        if started < count_from:
            return
        if ok:
            latencies.append(took)
        else:
            errors["count"] += 1
            errors["first"] = errors["first"] or f"{status}: {body[:300].decode(errors='replace')}"

    def failed(started: float, error: BaseException) -> None:
        if started >= count_from:
            errors["count"] += 1
            errors["first"] = errors["first"] or f"{type(error).__name__}: {error}"

    async def raw(k: int) -> None:
        requests = [f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(b)}\r\n\r\n".encode() + b for b in bodies]
        loop = asyncio.get_running_loop()
        connection = None
        while (started := time.perf_counter()) < stop_at:
            j = k % len(bodies)
            k += clients
            try:
                if connection is None:
                    _, connection = await loop.create_connection(_Connection, host, port)
                status, body, close = await connection.request(requests[j])
            except (OSError, ValueError, _BadResponse) as e:
                failed(started, e)
                if connection is not None:
                    connection.transport.close()
                connection = None
                await asyncio.sleep(0.01)
                continue
            record(started, status, body, expected[j])
            if close:
                connection.transport.close()
                connection = None
        if connection is not None:
            connection.transport.close()

    async def with_aiohttp(k: int, session) -> None:
        url = f"http://{host}:{port}{path}"
        headers = {"Content-Type": "application/json"}
        while (started := time.perf_counter()) < stop_at:
            j = k % len(bodies)
            k += clients
            try:
                async with session.post(url, data=bodies[j], headers=headers) as response:
                    status, body = response.status, await response.read()
            except (OSError, aiohttp.ClientError, asyncio.TimeoutError) as e:
                failed(started, e)
                await asyncio.sleep(0.01)
                continue
            record(started, status, body, expected[j])

    server_cpu, client_cpu = [], []

    async def sample_cpu() -> None:
        await asyncio.sleep(max(0.0, count_from - time.perf_counter()))
        server_cpu.append(_tree_cpu(spec["server_pid"]))
        client_cpu.append(time.process_time())

    sampler = asyncio.ensure_future(sample_cpu())
    if client == "aiohttp":
        import aiohttp

        connector = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(connector=connector, skip_auto_headers=("Accept-Encoding",)) as session:
            workers = [with_aiohttp(k, session) for k in range(clients)]
            done = await _bounded(workers, spec["seconds"] + spec["warmup"] + 30)
    else:
        done = await _bounded([raw(k) for k in range(clients)], spec["seconds"] + spec["warmup"] + 30)
    window = time.perf_counter() - count_from
    await sampler
    server_cpu.append(_tree_cpu(spec["server_pid"]))
    client_cpu.append(time.process_time())
    if not done:
        errors["count"] += 1
        errors["first"] = errors["first"] or "a client still waited on its response 30 s after the end"
    latencies.sort()
    n = len(latencies)
    served = None if None in server_cpu else server_cpu[1] - server_cpu[0]
    return {"requests": n, "window_s": window, "requests_per_s": n / window, "errors": errors["count"],
            "first_error": errors["first"],
            "p50_ms": latencies[n // 2] * 1e3 if n else None,
            "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1e3 if n else None,
            "client_cpu_s": client_cpu[1] - client_cpu[0],
            "client_cpu_us_per_request": (client_cpu[1] - client_cpu[0]) / max(n, 1) * 1e6,
            "server_cpu_s": served, "server_cpu_us_per_request": served / max(n, 1) * 1e6 if served else None}


async def _bounded(workers: list, timeout: float) -> bool:
    tasks = [asyncio.ensure_future(w) for w in workers]
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    for task in tasks:
        if not task.cancelled() and task.done() and task.exception():
            raise task.exception()
    return not pending


def client_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    try:
        import uvloop

        result = uvloop.run(_load(spec))
    except ImportError:
        result = asyncio.run(_load(spec))
    print(json.dumps(result))


# -- the load for the operational phase (`serve.py _ops SPEC`): every request's fate, kept ----------------------

#: What became of one request. REFUSED and CLOSED are "refused after stop" once the server was sent SIGTERM (a
#: connection refused, or closed by the server before the request went out or before any byte of its response),
#: failures before; every other code but OK is a failure.
OK, NON_200, MALFORMED, CUT, REFUSED, CLOSED, TIMED_OUT = range(7)
FATES = ("ok", "non-200", "malformed", "closed after part of the response", "connection refused",
         "closed before a response byte", "timed out")


async def _ops_load(spec: dict) -> None:
    """Load as ``_load`` does (``clients`` keep-alive connections, requests back to back), until SIGUSR1 or
    ``max_seconds``; every request's send and answer times (CLOCK_MONOTONIC, which the parent shares), its row,
    its fate, and for a 200 its label, class_index and probabilities go to ``out_file`` (.npz). ``running_file``
    is made once every client has had an answer. With ``stop_after_refusal`` a client stops at its first
    REFUSED or CLOSED (the drain: nothing more to learn from it)."""
    import numpy as np

    host, port, path, clients = spec["host"], spec["port"], spec["path"], spec["clients"]
    requests = [f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(b.encode())}\r\n\r\n{b}".encode() for b in spec["bodies"]]
    width, timeout = spec["classes"], spec["timeout_s"]
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, stop.set)
    deadline = time.monotonic() + spec["max_seconds"]
    got = {"t0": [], "t1": [], "j": [], "fate": [], "status": [], "class_index": [], "label": [], "reused": []}
    probabilities: list[list[float]] = []
    notes: dict[str, str] = {}
    nan_row = [float("nan")] * width
    answered: set[int] = set()

    def check(status: int, body: bytes) -> tuple[int, int, str, list[float], str | None]:
        if status != 200:
            return NON_200, -1, "", nan_row, f"{status}: {body[:300].decode(errors='replace')}"
        try:
            outputs = {o["name"]: o for o in _loads(body)["outputs"]}
            (label,) = outputs["label"]["data"]
            (class_index,) = outputs["class_index"]["data"]
            p = [float(v) for v in outputs["probabilities"]["data"]]
            if len(p) != width or type(class_index) is not int or type(label) is not str:
                raise ValueError(f"{len(p)} probabilities, class_index {class_index!r}, label {label!r}")
        except (ValueError, TypeError, KeyError, AttributeError) as e:  # orjson's error is a ValueError
            return MALFORMED, -1, "", nan_row, f"{type(e).__name__}: {e}; body {body[:300]!r}"
        return OK, class_index, label, p, None

    async def client(k: int) -> None:
        me, connection = k, None
        while not stop.is_set() and time.monotonic() < deadline:
            j = k % len(requests)
            k += clients
            t0 = time.monotonic()
            fate, status, class_index, label, p, note, close = OK, 0, -1, "", nan_row, None, True
            reused = connection is not None
            if connection is None:
                try:
                    _, connection = await asyncio.wait_for(loop.create_connection(_Connection, host, port), timeout)
                except TimeoutError:  # before OSError: it is one
                    fate, note = TIMED_OUT, f"connect took over {timeout} s"
                except OSError as e:
                    fate, note = REFUSED, f"{type(e).__name__}: {e}"
            if fate == OK:
                try:
                    status, body, close = await asyncio.wait_for(connection.request(requests[j]), timeout)
                    fate, class_index, label, p, note = check(status, body)
                except TimeoutError:
                    fate, note = TIMED_OUT, f"no whole response in {timeout} s"
                except _BadResponse as e:
                    fate, note = MALFORMED, str(e)
                except (OSError, RuntimeError) as e:
                    fate = CUT if connection.buffer else CLOSED
                    note = f"{type(e).__name__}: {e}" + (f" after {bytes(connection.buffer[:200])!r}"
                                                         if connection.buffer else "")
            t1 = time.monotonic()
            for key, value in zip(got, (t0, t1, j, fate, status, class_index, label, reused)):
                got[key].append(value)
            probabilities.append(p)
            if note:
                notes.setdefault(FATES[fate], note)
            if fate == OK:
                answered.add(me)
                if len(answered) == clients and not os.path.exists(spec["running_file"]):
                    Path(spec["running_file"]).touch()
            if (fate != OK or close) and connection is not None:
                connection.transport.close()
                connection = None
            if fate in (REFUSED, CLOSED) and spec["stop_after_refusal"]:
                break
            if fate != OK:
                await asyncio.sleep(0.01)
        if connection is not None:
            connection.transport.close()

    done = await _bounded([client(k) for k in range(clients)], spec["max_seconds"] + 2 * timeout)
    if not done:
        notes["unfinished"] = f"a client was still waiting {2 * timeout:.0f} s after the load's end"
    np.savez(spec["out_file"], **{key: np.array(values, dtype=np.str_ if key == "label" else np.float64)
                                  for key, values in got.items()},
             probabilities=np.array(probabilities, dtype=np.float64).reshape(-1, width),
             notes=np.array(json.dumps(notes)))


def ops_client_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    try:
        from uvloop import run
    except ImportError:
        run = asyncio.run
    run(_ops_load(spec))


def run_load(spec: dict, work: Path) -> dict:
    path = work / "load-spec.json"
    path.write_text(json.dumps(spec))
    limit = spec["seconds"] + spec["warmup"] + 120
    try:
        out = subprocess.run([PY, str(Path(__file__).resolve()), "_client", str(path)], capture_output=True,
                             text=True, timeout=limit, env=CHILD_ENV)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"serve: the load generator ran over {limit} s") from None
    if out.returncode:
        raise SystemExit(f"serve: the load generator failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout)


# -- the benchmark ------------------------------------------------------------------------------------


def make_bundle(work: Path) -> Path:
    bundle = work / "multiclass"
    try:
        out = subprocess.run([*ZOO, "export", "multiclass", "-o", str(bundle), "--force", "--no-card"], cwd=work,
                             capture_output=True, text=True, timeout=600, env=CHILD_ENV)
    except subprocess.TimeoutExpired:
        raise SystemExit("serve: `zoo export multiclass` took over 600 s") from None
    if out.returncode:
        raise SystemExit(f"serve: `zoo export multiclass` failed:\n{out.stderr[-3000:]}")
    return bundle


def requests_for(bundle: Path) -> tuple[list[str], dict[int, tuple[list[str], list[list[int]]]]]:
    """The bundle's class labels, and for each batch size the request bodies and the label onnxruntime gives each
    row of them on model.onnx (the bundle's held-out rows; random digits-like rows where it has none)."""
    import numpy as np
    import onnxruntime as ort

    sess = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    (model_input,) = sess.get_inputs()
    width = model_input.shape[1]
    try:
        with np.load(bundle / "evaluation.npz") as saved:
            rows = saved["X"].astype(np.float32)
    except (OSError, KeyError):
        rows = np.random.default_rng(0).integers(0, 17, (359, width)).astype(np.float32)
    class_labels = json.loads(sess.get_modelmeta().custom_metadata_map.get("zoo.class_labels", "[]"))
    made = {}
    for batch in BATCHES:
        count = max(1, len(rows) // batch)
        xs = np.resize(rows, (count * batch, width)).reshape(count, batch, width)
        bodies, labels = [], []
        for x in xs:
            request = {"inputs": [{"name": model_input.name, "shape": [batch, width], "datatype": "FP32",
                                   "data": x.ravel().tolist()}]}
            bodies.append(json.dumps(request, separators=(",", ":")))
            labels.append(sess.run(["label"], {model_input.name: x})[0].astype(int).tolist())
        made[batch] = (bodies, labels)
    return class_labels, made


def measure(name: str, cmd: list[str], cwd: Path, port: int, bundle: Path, made: tuple, args, work: Path,
            ready_timeout: float) -> dict[int, dict]:
    log = work / f"{name.split()[0].lower()}.log"
    proc = start(cmd, cwd, log)
    try:
        ready = wait_ready(proc, port, log, ready_timeout)
        got = {}
        for batch in BATCHES:
            bodies, labels = made[1][batch]
            spec = {"host": HOST, "port": port, "path": f"/v2/models/{bundle.name}/infer", "bodies": bodies,
                    "expected": labels, "class_labels": made[0], "clients": args.clients, "client": args.client,
                    "seconds": args.seconds, "warmup": args.warmup, "server_pid": proc.pid}
            got[batch] = run_load(spec, work)
            got[batch]["ready_s"] = ready
            r = got[batch]
            p99 = f"{r['p99_ms']:.2f}" if r["p99_ms"] is not None else "-"
            _say(f"{name}, {batch} row(s): {r['requests_per_s']:,.0f} requests/s, p99 {p99} ms, {r['errors']} "
                 f"errors, client {r['client_cpu_us_per_request']:.0f} us CPU/request"
                 + (f" (first: {r['first_error']})" if r["first_error"] else ""))
        if proc.poll() is not None:
            raise SystemExit(f"serve: {name} exited ({proc.returncode}) during the load:\n{_tail(log)}")
        return got
    finally:
        stop(proc)


def bench(repeats: int, work: Path, args=None) -> list[dict]:
    args = args or parse([])
    bundle = make_bundle(work)
    missing, zoo_help = zoo_serve_help()
    if args.ops_only:
        if missing:
            raise SystemExit(f"serve: --ops-only needs zoo serve: {missing}")
        return ops(bundle, zoo_help, args, work)
    if missing:
        _say(f"zoo serve is not available, so MLServer is measured alone ({missing})")
    python = ensure_mlserver(args.mlserver_venv)
    made = requests_for(bundle)
    servers = {}
    if not missing:
        quiet = [] if args.as_shipped or "--no-access-log" not in zoo_help else ["--no-access-log"]
        servers[ZOO_SERVE] = lambda port: ([*ZOO, "serve", str(bundle), "--host", HOST, "--port", str(port),
                                            "--no-grpc", *quiet], work, 120)

    def mlserver(port):
        ports = [port, *free_ports(3)[:2]]
        folder = mlserver_folder(work, bundle, ports, args.as_shipped)
        return [str(python.with_name("mlserver")), "start", str(folder)], folder, 180

    servers[MLSERVER] = mlserver
    samples: dict[str, list[dict[int, dict]]] = {name: [] for name in servers}
    for repeat in range(repeats):
        order = list(servers) if repeat % 2 == 0 else list(reversed(servers))
        for name in order:
            port = free_ports(1)[0]
            cmd, cwd, ready_timeout = servers[name](port)
            samples[name].append(measure(name, cmd, cwd, port, bundle, made, args, work, ready_timeout))
    out = rows(samples, args, missing)
    if not missing and not args.skip_ops:
        out += ops(bundle, zoo_help, args, work)
    return out


def rows(samples: dict, args, missing: str | None) -> list[dict]:
    def figure(name, batch, key):
        values = [s[batch][key] for s in samples[name] if s[batch][key] is not None]
        return _summary(values) if values else None

    def errors(batch):
        return {name: sum(s[batch]["errors"] for s in runs) for name, runs in samples.items()}

    def client_cpu(batch):
        return {name: statistics.median(s[batch]["client_cpu_us_per_request"] for s in runs)
                for name, runs in samples.items()}

    lean = "as shipped" if args.as_shipped else "no access log, metrics or gzip"
    base = f"{MLSERVER}, same model.onnx, custom onnxruntime runtime, in-process inference ({lean})"
    load = f"{args.clients} keep-alive clients, loopback" + (", both as shipped" if args.as_shipped else "")
    if missing:
        measured = {f"{batch} row(s)": {key: figure(MLSERVER, batch, key) for key in
                                        ("requests_per_s", "p50_ms", "p99_ms", "server_cpu_us_per_request")}
                    for batch in BATCHES}
        return [{"figure": "zoo serve against MLServer", "skipped": f"zoo serve is not available: {missing}",
                 "mlserver": measured, "errors": {f"{b} row(s)": errors(b) for b in BATCHES},
                 "client_cpu_us_per_request": {f"{b} row(s)": client_cpu(b) for b in BATCHES}}]
    out = []

    def add(title, batch, key, unit, scale, target=None, check=None):
        z, m = figure(ZOO_SERVE, batch, key), figure(MLSERVER, batch, key)
        if z is None or m is None:
            out.append({"figure": title, "skipped": "no successful request to measure"})
            return
        if scale != 1:
            z = {k: v * scale if k != "n" else v for k, v in z.items()}
            m = {k: v * scale if k != "n" else v for k, v in m.items()}
        ratio = z["median"] / m["median"]
        met = None if check is None else bool(check(ratio)) and errors(batch)[ZOO_SERVE] == 0
        r = _row(title, z["median"], unit, base, m["median"], ratio, target, met, z)
        r["errors"] = errors(batch)
        r["client_cpu_us_per_request"] = client_cpu(batch)
        out.append(r)

    add(f"`zoo serve` infer requests/s, 1 row each, {load}", 1, "requests_per_s", "requests/s", 1, ">= 2x",
        lambda r: r >= 2)
    add(f"`zoo serve` p99 latency, 1 row, {load}", 1, "p99_ms", "ms", 1, "<= 1x", lambda r: r <= 1)
    add(f"`zoo serve` p50 latency, 1 row, {load}", 1, "p50_ms", "ms", 1)
    add(f"`zoo serve` rows/s, 64 rows a request, {load}", 64, "requests_per_s", "rows/s", 64)
    add(f"`zoo serve` p99 latency, 64 rows, {load}", 64, "p99_ms", "ms", 1)
    add("`zoo serve` CPU per 1-row request (its process tree)", 1, "server_cpu_us_per_request", "us", 1)
    return out


# -- the operational promises under the same load: a swap of the served bundle, and a drain --------------------

#: The bundle written over the served one during the load: another model (another seed and split, fewer epochs).
EXPORT_NEW = ("--force", "--no-card", "--seed", "7", "--epochs", "5")
#: An answer is a model's for its row when its label and class_index are that model's and each probability is
#: within this relative distance of onnxruntime's on that model.onnx (the two models' probabilities of a row
#: differ by far more, and the server's batching does not change them here).
RTOL = 1e-3
REQUEST_TIMEOUT = 30.0  # seconds a request (or a connect) may take; past it, it is a failure


def one_row_requests(bundle: Path) -> tuple[str, object, list[str]]:
    """The model's input name, the bundle's held-out rows, and a 1-row request body for each (as requests_for)."""
    import numpy as np
    import onnxruntime as ort

    (model_input,) = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"]).get_inputs()
    width = model_input.shape[1]
    try:
        with np.load(bundle / "evaluation.npz") as saved:
            rows = saved["X"].astype(np.float32)
    except (OSError, KeyError):
        rows = np.random.default_rng(0).integers(0, 17, (359, width)).astype(np.float32)
    bodies = [json.dumps({"inputs": [{"name": model_input.name, "shape": [1, width], "datatype": "FP32",
                                      "data": x.tolist()}]}, separators=(",", ":")) for x in rows]
    return model_input.name, rows, bodies


def expected_answers(model: Path, input_name: str, rows) -> dict:
    """What onnxruntime gives for each row alone on ``model``: its class label (the name zoo serve answers),
    class index and probabilities."""
    import numpy as np
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    class_labels = json.loads(sess.get_modelmeta().custom_metadata_map.get("zoo.class_labels", "[]"))
    indices, probabilities = [], []
    for x in rows:
        label, p = sess.run(["label", "probabilities"], {input_name: x[None]})
        indices.append(int(label[0]))
        probabilities.append(p[0])
    return {"label": np.array([class_labels[i] if class_labels else str(i) for i in indices], dtype=np.str_),
            "class_index": np.array(indices), "probabilities": np.array(probabilities, dtype=np.float64)}


def matches(got: dict, want: dict):
    """Which of the requests in ``got`` were answered 200 with ``want``'s answer for their row."""
    import numpy as np

    j = got["j"].astype(int)
    p, q = got["probabilities"], want["probabilities"][j]
    with np.errstate(invalid="ignore", divide="ignore"):
        distance = np.nan_to_num(np.abs(p - q) / np.maximum(np.maximum(np.abs(p), np.abs(q)), 1e-30), nan=np.inf)
    return ((got["fate"] == OK) & (got["label"] == want["label"][j]) & (got["class_index"] == want["class_index"][j])
            & (distance.max(axis=1, initial=0.0) <= RTOL))


def _share(part, whole) -> float:
    return float(part) / whole if whole else 0.0


def _fates(got: dict, mask) -> dict[str, int]:
    return {fate: int(((got["fate"] == code) & mask).sum()) for code, fate in enumerate(FATES)
            if ((got["fate"] == code) & mask).any()}


class _OpsLoad:
    """The operational phase's load generator (``serve.py _ops SPEC``), in its own process and session."""

    def __init__(self, spec: dict, work: Path, phase: str):
        self.running, self.out = work / f"ops-{phase}.running", work / f"ops-{phase}.npz"
        self.log, path = work / f"ops-{phase}-load.log", work / f"ops-{phase}-spec.json"
        for stale in (self.running, self.out):
            stale.unlink(missing_ok=True)
        path.write_text(json.dumps({**spec, "running_file": str(self.running), "out_file": str(self.out)}))
        self.proc = start([PY, str(Path(__file__).resolve()), "_ops", str(path)], work, self.log)

    def wait_running(self, server: subprocess.Popen, server_log: Path, timeout: float = 60) -> None:
        """Until every client has had an answer; SystemExit if the load or the server dies, or after ``timeout``."""
        limit = time.monotonic() + timeout
        while not self.running.exists():
            if self.proc.poll() is not None:
                raise SystemExit(f"serve: the operational load exited ({self.proc.returncode}) before it ran:\n"
                                 f"{_tail(self.log)}\n{_tail(server_log)}")
            if server.poll() is not None:
                raise SystemExit(f"serve: zoo serve exited ({server.returncode}) before the load ran:\n"
                                 f"{_tail(server_log)}")
            if time.monotonic() > limit:
                raise SystemExit(f"serve: not every client had an answer within {timeout:.0f} s:\n{_tail(self.log)}")
            time.sleep(0.02)

    def finish(self, wait_first: float = 0.0) -> dict:
        """Every request's record, once the load has stopped (by itself within ``wait_first`` s, else told)."""
        import numpy as np

        try:
            self.proc.wait(wait_first)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGUSR1)
            try:
                self.proc.wait(2 * REQUEST_TIMEOUT + 30)
            except subprocess.TimeoutExpired:
                stop(self.proc)
                raise SystemExit(f"serve: the operational load did not stop:\n{_tail(self.log)}") from None
        if self.proc.returncode or not self.out.exists():
            raise SystemExit(f"serve: the operational load failed ({self.proc.returncode}):\n{_tail(self.log)}")
        with np.load(self.out) as saved:
            got = {key: saved[key] for key in saved.files}
        got["notes"] = json.loads(str(got["notes"]))
        return got

    def kill(self) -> None:
        stop(self.proc)


def ops(bundle: Path, zoo_help: str, args, work: Path) -> list[dict]:
    """The promises zoo serve makes about a bundle rewritten on disk and about SIGTERM, each kept under the
    benchmark's own load (``--clients`` clients, 1-row requests): rows in the format of ``rows``."""
    folder = work / "ops"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    served = folder / bundle.name  # a copy, so that the export rewrites no bundle the comparison serves
    shutil.copytree(bundle, served)
    old_model = folder / "old-model.onnx"
    shutil.copy2(served / "model.onnx", old_model)
    input_name, rows_, bodies = one_row_requests(served)
    old = expected_answers(old_model, input_name, rows_)
    quiet = [] if args.as_shipped or "--no-access-log" not in zoo_help else ["--no-access-log"]
    spec = {"host": HOST, "path": f"/v2/models/{bundle.name}/infer", "bodies": bodies,
            "classes": old["probabilities"].shape[1], "clients": args.clients, "timeout_s": REQUEST_TIMEOUT,
            "max_seconds": 600.0}

    def server(phase: str) -> tuple[subprocess.Popen, int, Path]:
        port, log = free_ports(1)[0], folder / f"ops-{phase}-server.log"
        proc = start([*ZOO, "serve", str(served), "--host", HOST, "--port", str(port), "--no-grpc", *quiet],
                     folder, log)
        return proc, port, log

    out = swap_phase(served, folder, server, spec, old, input_name, rows_, args)
    out += drain_phase(folder, server, spec, expected_answers(served / "model.onnx", input_name, rows_), args)
    return out


def swap_phase(served: Path, folder: Path, server, spec: dict, old: dict, input_name: str, rows_, args) -> list:
    proc, port, log = server("swap")
    load = None
    try:
        wait_ready(proc, port, log, 120)
        load = _OpsLoad({**spec, "port": port, "stop_after_refusal": False}, folder, "swap")
        load.wait_running(proc, log)
        time.sleep(args.ops_lead)
        cmd = [*ZOO, "export", "multiclass", "-o", str(served), *EXPORT_NEW]
        _say(f"swap: `{' '.join(cmd[len(ZOO) - 1:])}` while {args.clients} clients send 1-row requests")
        began = time.monotonic()
        try:
            export = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=600, env=CHILD_ENV)
        except subprocess.TimeoutExpired:
            raise SystemExit("serve: the swap's `zoo export` took over 600 s") from None
        ended = time.monotonic()
        if export.returncode:
            raise SystemExit(f"serve: the swap's `zoo export` failed:\n{export.stderr[-3000:]}")
        time.sleep(args.ops_settle)
        got = load.finish()
        exited = proc.poll()
    finally:
        if load is not None:
            load.kill()
        stop(proc)
    new = expected_answers(served / "model.onnx", input_name, rows_)
    ok = got["fate"] == OK
    is_old, is_new = matches(got, old), matches(got, new)
    only_old, only_new, neither = is_old & ~is_new, is_new & ~is_old, ok & ~is_old & ~is_new
    sent, answered, failed = len(ok), int(ok.sum()), int((~ok).sum())
    first_new = float(got["t1"][only_new].min()) if only_new.any() else None
    after = ok & (got["t0"] > first_new) if first_new is not None else ok & False
    old_after = int((only_old & after).sum())
    seen = first_new is not None and first_new - ended <= args.ops_settle
    latency = (first_new if first_new is not None else time.monotonic()) - ended
    detail = {"export_s": ended - began, "load_s": float(got["t1"].max() - got["t0"].min()) if sent else 0.0,
              "both_models": int((is_old & is_new).sum()),
              "last_old_answer_after_export_end_s": float(got["t1"][only_old].max() - ended) if only_old.any()
              else None, "failures": _fates(got, ~ok), "first_failures": got["notes"],
              "server_exited_during_phase": exited}
    if failed or int(neither.sum()) or old_after or exited is not None:
        detail["server_log_tail"] = _tail(log)
    _say(f"swap: {sent} requests, {failed} failed, {int(only_old.sum())} old answers, {int(only_new.sum())} new, "
         f"{int(neither.sum())} neither, {old_after} old after the first new; first new answer "
         + (f"{latency:.2f} s after the export's end" if first_new is not None else "never seen")
         + (f"; failures {detail['failures']}, first {got['notes']}" if failed else ""))
    s = f"(`zoo export --force` of the served bundle under load, {args.clients} clients, 1 row each)"
    whole = "requests sent during the phase"
    answers = "200 answers during the phase"
    return [
        {**_row(f"failed requests {s}", failed, "requests", whole, sent, _share(failed, sent), "0", failed == 0),
         **detail},
        _row(f"answers from the old model {s}", int(only_old.sum()), "answers", answers, answered,
             _share(only_old.sum(), answered)),
        _row(f"answers from the new model {s}", int(only_new.sum()), "answers", answers, answered,
             _share(only_new.sum(), answered)),
        _row(f"answers that matched neither model (label, class_index, probabilities) {s}", int(neither.sum()),
             "answers", answers, answered, _share(neither.sum(), answered), "0", int(neither.sum()) == 0),
        _row(f"old-model answers to requests sent after the first new-model answer {s}", old_after, "answers",
             "answers to requests sent after it", int(after.sum()), _share(old_after, after.sum()), "0",
             old_after == 0 and first_new is not None),
        {**_row(f"seconds from the export's end to the first new-model answer {s}", latency, "s",
                "zoo serve's --watch-interval (default)", 1.0, latency, f"<= {args.ops_settle:g}", seen),
         "seen": first_new is not None},
    ]


def drain_phase(folder: Path, server, spec: dict, want: dict, args) -> list:
    proc, port, log = server("drain")
    load = None
    try:
        wait_ready(proc, port, log, 120)
        load = _OpsLoad({**spec, "port": port, "stop_after_refusal": True}, folder, "drain")
        load.wait_running(proc, log)
        time.sleep(args.ops_lead)
        _say(f"drain: SIGTERM to zoo serve while {args.clients} clients send 1-row requests")
        term = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        killed = False
        while proc.poll() is None:  # polled, not Popen.wait(timeout): its sleeps grow to 50 ms
            if time.monotonic() - term > args.ops_exit_timeout:
                stop(proc)  # SIGTERM again, then SIGKILL
                killed = True
                break
            time.sleep(0.002)
        exited = time.monotonic()
        code = proc.returncode
        got = load.finish(wait_first=5.0)  # the clients stop at their first refusal
    finally:
        if load is not None:
            load.kill()
        stop(proc)
    fate, t0, t1 = got["fate"], got["t0"], got["t1"]
    ok = fate == OK
    right = matches(got, want)
    refusal = (fate == REFUSED) | (fate == CLOSED)
    after_stop = refusal & (t1 >= term)
    bad = (~ok & ~after_stop) | (ok & ~right)  # refused before the SIGTERM, or anything else but a right answer
    sent, answered = len(fate), int(ok.sum())
    failures, ok_after, refused = int(bad.sum()), int((ok & (t1 >= term)).sum()), int(after_stop.sum())
    seconds = exited - term
    detail = {"failures": {**_fates(got, bad & ~ok), **({"wrong answer": int((ok & ~right).sum())}
                                                       if (ok & ~right).any() else {})},
              "first_notes": got["notes"], "answers_to_requests_sent_after_sigterm": int((ok & (t0 >= term)).sum()),
              "last_answer_after_sigterm_s": float(t1[ok].max() - term) if answered else None}
    if failures or code != 0 or killed:
        detail["server_log_tail"] = _tail(log)
    _say(f"drain: {sent} requests, {failures} failed, {ok_after} answered 200 after the SIGTERM, {refused} refused "
         f"after stop ({_fates(got, after_stop)}); exit status {code}{' (killed)' if killed else ''} "
         f"{seconds:.3f} s after the SIGTERM" + (f"; failures {detail['failures']}, notes {got['notes']}"
                                                 if failures else ""))
    s = f"(SIGTERM to zoo serve under load, {args.clients} clients, 1 row each)"
    reused = got["reused"] > 0
    return [
        {**_row(f"failed responses: non-200, truncated, malformed or wrong {s}", failures, "responses",
                "requests sent during the phase", sent, _share(failures, sent), "0", failures == 0), **detail},
        _row(f"complete 200 answers received after the SIGTERM {s}", ok_after, "answers",
             "200 answers during the phase", answered, _share(ok_after, answered)),
        {**_row(f"connections refused, or closed before a response byte, after the SIGTERM (refused after stop, "
                f"not failures) {s}", refused, "connections", "clients", args.clients, _share(refused, args.clients)),
         "by_kind": _fates(got, after_stop), "on_kept_alive_connections": _fates(got, after_stop & reused),
         "on_new_connections": _fates(got, after_stop & ~reused)},
        {**_row(f"zoo serve's exit status {s} (ratio 1: the promised 0)", code, "exit status",
                "the exit status a drain promises", 0, 1.0 if code == 0 else 0.0, "0", code == 0 and not killed),
         "killed_after_s": args.ops_exit_timeout if killed else None},
        _row(f"seconds from the SIGTERM to zoo serve's exit {s}", seconds, "s",
             "zoo serve's drain grace (ServeOptions.grace)", 10.0, seconds / 10.0),
    ]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="zoo serve against MLServer, loaded on loopback")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per server and batch size")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring")
    parser.add_argument("--repeats", type=int, default=1, help="alternate the servers N times; medians")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--client", choices=("raw", "aiohttp"), default="raw",
                        help="raw: a minimal asyncio HTTP/1.1 client (the cheaper); aiohttp")
    parser.add_argument("--mlserver-venv", type=Path, default=MLSERVER_VENV)
    parser.add_argument("--as-shipped", action="store_true",
                        help="both servers as they ship: access logs on, MLServer's metrics server and gzip on")
    ops = parser.add_mutually_exclusive_group()
    ops.add_argument("--skip-ops", action="store_true",
                     help="leave out the operational phase (zoo serve alone: a bundle swap and a drain under load)")
    ops.add_argument("--ops-only", action="store_true", help="only the operational phase (no MLServer)")
    parser.add_argument("--ops-lead", type=float, default=2.0,
                        help="seconds of load in the operational phase before the export or the SIGTERM")
    parser.add_argument("--ops-settle", type=float, default=8.0,
                        help="seconds of load after the export's end: the new model must answer within them")
    parser.add_argument("--ops-exit-timeout", type=float, default=30.0,
                        help="seconds zoo serve gets to exit after the SIGTERM before it is killed")
    return parser.parse_args(argv)


def main() -> None:
    if sys.argv[1:2] == ["_client"]:
        client_main(sys.argv[2])
        return
    if sys.argv[1:2] == ["_ops"]:
        ops_client_main(sys.argv[2])
        return
    args = parse()
    with tempfile.TemporaryDirectory(prefix="zoo-serve-bench-") as tmp:
        for r in bench(args.repeats, Path(tmp), args):
            print(json.dumps(r))


if __name__ == "__main__":
    main()
