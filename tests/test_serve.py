"""``zoo serve``: the Open Inference Protocol as clients no one here wrote speak it (tritonclient over REST and gRPC,
plain HTTP), checked against ``zoo predict``'s file and a bare onnxruntime session; batching bit for bit; the
bundle swapped on disk; SIGTERM; the token and the limits; a hundred malformed requests.

The servers are real ``zoo serve`` processes on free loopback ports.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_clean_error

pytest.importorskip("uvicorn")
pytest.importorskip("grpc")
ort = pytest.importorskip("onnxruntime")
th = pytest.importorskip("tritonclient.http")
tg = pytest.importorskip("tritonclient.grpc")

ZOO = [sys.executable, "-c", "from zoo.cli import main; main()"]
READY = re.compile(r"REST on https?://([\d.]+):(\d+)(?:, gRPC on ([\d.]+:\d+))?")


class Server:
    """A ``zoo serve`` process; its output goes to a file (an access log must never fill a pipe)."""

    def __init__(self, args: list, log: Path, env: dict | None = None, timeout: float = 60, any_port: bool = True,
                 cwd: Path | None = None):
        self.log = log
        self.handle = open(log, "wb")
        ports = ["--port", "0", "--grpc-port", "0"] if any_port else []
        self.process = subprocess.Popen([*ZOO, "serve", *map(str, args), *ports], stdout=self.handle,
                                        stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, cwd=cwd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = READY.search(log.read_text(errors="replace"))
            if found:
                self.host, self.port, self.grpc = found.group(1), int(found.group(2)), found.group(3)
                return
            if self.process.poll() is not None:
                raise AssertionError(f"zoo serve exited {self.process.returncode}: {log.read_text()}")
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"zoo serve did not start in {timeout} s: {log.read_text()}")

    @property
    def url(self) -> str:
        return f"{self.host}:{self.port}"

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def json(self, method: str, path: str, payload=None, headers: dict | None = None):
        body = None if payload is None else (payload if isinstance(payload, bytes) else json.dumps(payload).encode())
        status, _, data = self.request(method, path, body, headers)
        return status, json.loads(data)

    def stop(self, sig=signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self.handle.close()


def rows_of(bundle: Path, n: int, seed: int = 0) -> np.ndarray:
    """``n`` rows like the bundle's held-out ones (its test data, resampled with noise): real-looking inputs."""
    import onnx
    from onnx import numpy_helper

    tensor = onnx.TensorProto()
    tensor.ParseFromString((bundle / "test_data_set_2" / "input_0.pb").read_bytes())
    base = numpy_helper.to_array(tensor).astype(np.float32)
    rng = np.random.default_rng(seed)
    picked = base[rng.integers(0, len(base), n)]
    return (picked * rng.normal(1, 0.05, picked.shape)).astype(np.float32)


def bare(bundle: Path, x: np.ndarray) -> dict:
    """The bundle's model.onnx in a bare onnxruntime session: the reference no zoo code touches."""
    session = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    label, p = session.run(["label", "probabilities"], {session.get_inputs()[0].name: x})
    classes = json.loads((bundle / "manifest.json").read_text())["class_labels"]
    return {"class_index": label, "label": np.array(classes)[label], "probabilities": p}


@pytest.fixture(scope="module")
def bundles(exported, tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    for name in ("multiclass", "binary"):
        shutil.copytree(exported[0] / name, root / name)
    return root


@pytest.fixture(scope="module")
def server(bundles, tmp_path_factory):
    log = tmp_path_factory.mktemp("log") / "serve.log"
    running = Server([bundles / "multiclass", bundles / "binary", "--max-request-bytes", 8 << 20, "--max-rows",
                      5000], log)
    yield running
    assert running.stop() == 0, log.read_text()[-2000:]


# -- clients no one here wrote ---------------------------------------------------------------------------------


def _triton_rows(client, module, model: str, x: np.ndarray, size: int) -> dict:
    labels, index, probabilities = [], [], []
    for start in range(0, len(x), size):
        part = x[start:start + size]
        tensor = module.InferInput("input", list(part.shape), "FP32")
        tensor.set_data_from_numpy(part)
        result = client.infer(model, [tensor])
        labels.extend(v.decode() for v in result.as_numpy("label"))
        index.append(result.as_numpy("class_index"))
        probabilities.append(result.as_numpy("probabilities"))
    return {"label": np.array(labels), "class_index": np.concatenate(index),
            "probabilities": np.concatenate(probabilities)}


def _zoo_predict(bundle: Path, x: np.ndarray, tmp: Path) -> dict:
    import pyarrow.parquet as pq

    np.save(tmp / "rows.npy", x)
    subprocess.run([*ZOO, "predict", str(bundle), str(tmp / "rows.npy"), "-o", str(tmp / "out.parquet")],
                   check=True, capture_output=True)
    table = pq.read_table(tmp / "out.parquet")
    p = np.stack([table.column(c).to_numpy() for c in table.column_names if c.startswith("p_")], axis=1)
    return {"label": np.array(table.column("label").to_pylist()), "class_index": table.column("class_index")
            .to_numpy(), "probabilities": p.astype(np.float32)}


@pytest.mark.parametrize("model", ["multiclass", "binary"])
def test_tritonclient_over_rest_and_grpc_gets_what_zoo_predict_writes(server, bundles, tmp_path, model):
    """1, 64 and 4,096 rows a request, over both protocols: labels and probabilities equal ``zoo predict``'s file,
    and the labels a bare onnxruntime session's (here 10,000 rows in requests of 64 and 4,096; 300 one-row
    requests; the slow test sends all 10,000 one at a time)."""
    x = rows_of(bundles / model, 10_000)
    expected = _zoo_predict(bundles / model, x, tmp_path)
    reference = bare(bundles / model, x)
    assert (expected["label"] == reference["label"]).all()
    http_client = th.InferenceServerClient(server.url, concurrency=1)
    grpc_client = tg.InferenceServerClient(server.grpc)
    for client, module in ((http_client, th), (grpc_client, tg)):
        for size, n in ((1, 300), (64, 10_000), (4096, 10_000)):
            got = _triton_rows(client, module, model, x[:n], size)
            for name in ("label", "class_index"):
                assert (got[name] == expected[name][:n]).all(), (module.__name__, size, name)
            # zoo predict writes float32 probabilities; the server sends the runtime's float32 as they are
            np.testing.assert_array_equal(got["probabilities"], expected["probabilities"][:n])
    http_client.close()
    grpc_client.close()


@pytest.mark.slow  # 40,000 one-row requests
@pytest.mark.parametrize("model", ["multiclass", "binary"])
def test_ten_thousand_one_row_requests_over_both_protocols(server, bundles, tmp_path, model):
    x = rows_of(bundles / model, 10_000, seed=1)
    expected = _zoo_predict(bundles / model, x, tmp_path)
    local = threading.local()
    for module, where in ((th, server.url), (tg, server.grpc)):
        def one(row, module=module, where=where):  # 8 threads, a client each: 8 requests in flight
            if getattr(local, module.__name__, None) is None:
                setattr(local, module.__name__, module.InferenceServerClient(where))
            return _triton_rows(getattr(local, module.__name__), module, model, row[None, :], 1)

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(one, x))
        assert [a["label"][0] for a in answers] == expected["label"].tolist()
        np.testing.assert_array_equal(np.concatenate([a["probabilities"] for a in answers]),
                                      expected["probabilities"])


def test_metadata_health_and_json_tensors_over_plain_http(server, bundles):
    assert server.json("GET", "/v2/health/live") == (200, {"live": True})
    assert server.json("GET", "/v2/health/ready") == (200, {"ready": True})
    status, meta = server.json("GET", "/v2")
    assert status == 200 and meta["name"] == "zoo" and "binary_tensor_data" in meta["extensions"]
    status, meta = server.json("GET", "/v2/models/binary")
    assert status == 200 and meta["versions"] == ["1"] and meta["platform"] == "onnx"
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 30]}]
    assert {o["name"]: o["shape"] for o in meta["outputs"]} == {"label": [-1], "class_index": [-1],
                                                                 "probabilities": [-1, 1]}
    manifest = json.loads((bundles / "binary" / "manifest.json").read_text())
    assert json.loads(meta["parameters"]["classes"]) == manifest["class_labels"]
    assert meta["parameters"]["policy"] == manifest["policy"]["name"]
    assert server.json("GET", "/v2/models/binary/versions/1/ready") == (200, {"name": "binary", "ready": True})
    x = rows_of(bundles / "binary", 3)
    status, answer = server.json("POST", "/v2/models/binary/infer", {
        "id": "r-1", "inputs": [{"name": "input", "shape": [3, 30], "datatype": "FP32", "data": x.tolist()}],
        "outputs": [{"name": "label"}]})
    assert status == 200 and answer["id"] == "r-1" and answer["model_version"] == "1"
    assert answer["outputs"] == [{"name": "label", "datatype": "BYTES", "shape": [3],
                                  "data": bare(bundles / "binary", x)["label"].tolist()}]


# -- batching --------------------------------------------------------------------------------------------------


def test_concurrent_requests_are_coalesced_and_each_answer_is_bit_for_bit_a_single_calls(server, bundles, tmp_path):
    """A 200 ms queue delay makes 32 concurrent requests share runtime calls (the metrics count them); each
    answer's bytes equal the same request's sent alone (to the unbatched server), and a bare session's on its
    rows alone."""
    running = Server([bundles / "multiclass", "--max-queue-delay-us", 200_000, "--no-access-log"],
                     tmp_path / "serve.log")
    try:
        rng = np.random.default_rng(3)
        parts = [rows_of(bundles / "multiclass", int(n), seed=k) for k, n in enumerate(rng.integers(1, 40, 32))]

        def ask(x, where=running):
            client = th.InferenceServerClient(where.url)
            tensor = th.InferInput("input", list(x.shape), "FP32")
            tensor.set_data_from_numpy(x)
            return client.infer("multiclass", [tensor]).as_numpy("probabilities")

        with ThreadPoolExecutor(32) as pool:
            together = list(pool.map(ask, parts))
        calls = _metric(running, "zoo_serve_batch_rows_count", 'model="multiclass"')
        assert calls < len(parts) / 2, f"{calls} runtime calls for {len(parts)} concurrent requests"
        alone = [ask(x, server) for x in parts]
        for x, a, b in zip(parts, together, alone):
            assert a.tobytes() == b.tobytes()
            assert a.tobytes() == bare(bundles / "multiclass", x)["probabilities"].tobytes()
    finally:
        assert running.stop() == 0


def _metric(server: Server, name: str, labels: str = "") -> float:
    status, _, body = server.request("GET", "/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name) and labels in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} in /metrics")


def test_metrics_count_requests_failures_latency_and_batches(server):
    before = _metric(server, "zoo_serve_requests_total", 'protocol="rest"')
    x = np.zeros((2, 64), np.float32)
    payload = {"inputs": [{"name": "input", "shape": [2, 64], "datatype": "FP32", "data": x.ravel().tolist()}]}
    assert server.json("POST", "/v2/models/multiclass/infer", payload)[0] == 200
    assert server.json("POST", "/v2/models/multiclass/infer", b"{nope")[0] == 400
    from prometheus_client.parser import text_string_to_metric_families

    _, _, body = server.request("GET", "/metrics")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert {"zoo_serve_requests", "zoo_serve_request_failures", "zoo_serve_request_seconds",
            "zoo_serve_batch_rows", "zoo_serve_queue_seconds"} <= set(families)
    assert _metric(server, "zoo_serve_requests_total", 'protocol="rest"') == before + 1
    assert _metric(server, "zoo_serve_request_failures_total", 'status="400"') >= 1


# -- refusals --------------------------------------------------------------------------------------------------


def _infer(shape=(1, 64), datatype="FP32", data=None, name="input", **extra) -> dict:
    values = [0.5] * int(np.prod(shape)) if data is None else data
    return {"inputs": [{"name": name, "shape": list(shape), "datatype": datatype, "data": values}], **extra}


MALFORMED = {
    "not JSON": (b"{not json", {}, 400),
    "JSON but a list": (b"[1, 2]", {}, 400),
    "no inputs": ({"outputs": []}, {}, 400),
    "inputs not a list": ({"inputs": {"name": "input"}}, {}, 400),
    "input without a name": ({"inputs": [{"shape": [1, 64], "datatype": "FP32", "data": [0] * 64}]}, {}, 400),
    "unknown input": (_infer(name="pixels"), {}, 400),
    "wrong datatype": (_infer(datatype="INT64", data=[1] * 64), {}, 400),
    "FP64 for FP32": (_infer(datatype="FP64"), {}, 400),
    "unknown datatype": (_infer(datatype="FLOAT"), {}, 400),
    "wrong width": (_infer(shape=(1, 63)), {}, 400),
    "shape and data disagree": (_infer(shape=(2, 64), data=[0.5] * 64), {}, 400),
    "negative shape": (_infer(shape=(-1, 64), data=[0.5] * 64), {}, 400),
    "strings as numbers": (_infer(data=["a"] * 64), {}, 400),
    "numbers in strings": (_infer(data=["1.5"] * 64), {}, 400),
    "NaN in binary": (None, {"nan": True}, 400),
    "binary size past the end": (None, {"overrun": True}, 400),
    "header length past the body": (None, {"header": True}, 400),
    "unknown output": (_infer(outputs=[{"name": "logits"}]), {}, 400),
    "too many rows": (_infer(shape=(5001, 64)), {}, 413),
    "body too large": (b"x" * (9 << 20), {}, 413),
    "unknown model": ("/v2/models/nothere/infer", {}, 404),
    "unknown version": ("/v2/models/multiclass/versions/7/infer", {}, 404),
    "wrong method": ("GET /v2/models/multiclass/infer", {}, 405),
    "unknown route": ("/v3/anything", {}, 404),
}


def _send_malformed(server: Server, kind: str):
    body, how, _ = MALFORMED[kind]
    method, path, headers = "POST", "/v2/models/multiclass/infer", {}
    if isinstance(body, str):
        method, path = ("GET", body.split(" ")[1]) if body.startswith("GET ") else ("POST", body)
        body = json.dumps(_infer()).encode() if method == "POST" else None
    elif body is None:  # the binary extension, built by hand
        raw = np.zeros((1, 64), np.float32)
        if how.get("nan"):
            raw[0, 3] = np.nan
        blob = raw.tobytes()
        size = len(blob) + (8 if how.get("overrun") else 0)
        header = json.dumps({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32",
                                         "parameters": {"binary_data_size": size}}]}).encode()
        length = len(header) + (10_000 if how.get("header") else 0)
        body, headers = header + blob, {"Inference-Header-Content-Length": str(length)}
    elif isinstance(body, dict):
        body = json.dumps(body).encode()
    return server.request(method, path, body, headers)


def test_a_hundred_malformed_requests_of_twenty_kinds_get_4xx_and_the_server_keeps_answering(server, bundles):
    """Under load: 4 clients keep asking while the malformed requests come, and every one of theirs is answered
    right."""
    assert len(MALFORMED) >= 20
    kinds = [k for k in MALFORMED for _ in range(5)]  # 5 of each: 120 requests
    x = rows_of(bundles / "multiclass", 2)
    stop, results = threading.Event(), []
    workers = [threading.Thread(target=_load, args=(server, "multiclass", x, stop, results)) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        for kind in kinds:
            status, headers, body = _send_malformed(server, kind)
            assert status == MALFORMED[kind][2], (kind, status, body[:200])
            error = json.loads(body)["error"]
            assert error and "\n" not in error and "Traceback" not in error, (kind, error)
    finally:
        stop.set()
        for w in workers:
            w.join()
    expected = bare(bundles / "multiclass", x)["probabilities"]
    assert len(results) > 10 and all(isinstance(r, np.ndarray) and np.array_equal(r, expected) for r in results)
    x = rows_of(bundles / "multiclass", 5)
    tensor = th.InferInput("input", [5, 64], "FP32")
    tensor.set_data_from_numpy(x)
    labels = th.InferenceServerClient(server.url).infer("multiclass", [tensor]).as_numpy("label")
    assert [v.decode() for v in labels] == bare(bundles / "multiclass", x)["label"].tolist()


def test_grpc_refusals_carry_their_status(server):
    import grpc

    client = tg.InferenceServerClient(server.grpc)
    tensor = tg.InferInput("input", [1, 63], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 63), np.float32))
    with pytest.raises(Exception) as caught:
        client.infer("multiclass", [tensor])
    assert caught.value.status() == f"StatusCode.{grpc.StatusCode.INVALID_ARGUMENT.name}"
    assert "[-1, 64]" in caught.value.message()
    with pytest.raises(Exception) as caught:
        client.get_model_metadata("nothere")
    assert caught.value.status() == f"StatusCode.{grpc.StatusCode.NOT_FOUND.name}"


def test_a_bundle_that_does_not_verify_is_refused_and_the_server_does_not_start(bundle_copy, tmp_path):
    bundle = bundle_copy("multiclass")
    data = bytearray((bundle / "model.onnx").read_bytes())
    data[-20] ^= 0xFF
    (bundle / "model.onnx").write_bytes(bytes(data))
    done = subprocess.run([*ZOO, "serve", str(bundle), "--port", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "sha256" in lines[0] and str(bundle) in lines[0], done.stderr


def test_a_non_loopback_bind_needs_a_token_and_a_token_guards_every_route_but_live(bundles, tmp_path):
    # A subprocess with a timeout: were the check gone, it would serve on 0.0.0.0 and never return.
    done = subprocess.run([*ZOO, "serve", str(bundles / "multiclass"), "--host", "0.0.0.0", "--port", "0"],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "ZOO_SERVE_TOKEN": ""})
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert "--token" in done.stderr and "0.0.0.0" in done.stderr
    running = Server([bundles / "multiclass", "--no-access-log"], tmp_path / "serve.log",
                     env={"ZOO_SERVE_TOKEN": "s3cret"})
    try:
        assert running.json("GET", "/v2/health/live")[0] == 200
        for path in ("/v2/health/ready", "/v2", "/v2/models/multiclass", "/metrics"):
            status, headers, body = running.request("GET", path)
            assert status == 401 and headers.get("www-authenticate") == "Bearer", path
            assert running.request("GET", path, headers={"Authorization": "Bearer s3cre"})[0] == 401
            assert running.request("GET", path, headers={"Authorization": "Bearer s3cret"})[0] == 200
        assert running.json("POST", "/v2/models/multiclass/infer", _infer())[0] == 401
        client = tg.InferenceServerClient(running.grpc)
        with pytest.raises(Exception, match="UNAUTHENTICATED"):
            client.is_model_ready("multiclass")
        assert client.is_model_ready("multiclass", headers={"authorization": "Bearer s3cret"})
    finally:
        assert running.stop() == 0


# -- on disk and at the end ------------------------------------------------------------------------------------


def _load(server: Server, model: str, x: np.ndarray, stop: threading.Event, results: list) -> None:
    client = th.InferenceServerClient(server.url)
    while not stop.is_set():
        tensor = th.InferInput("input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        try:
            results.append(client.infer(model, [tensor]).as_numpy("probabilities"))
        except Exception as exc:  # counted: the promise is that there are none
            results.append(exc)


def test_a_bundle_rewritten_on_disk_is_swapped_in_under_load_and_a_broken_one_is_not(bundles, tmp_path):
    served = tmp_path / "multiclass"
    shutil.copytree(bundles / "multiclass", served)
    running = Server([served, "--watch-interval", 0.2, "--no-access-log"], tmp_path / "serve.log")
    x = rows_of(served, 4)
    old = bare(served, x)["probabilities"]
    stop, results = threading.Event(), []
    workers = [threading.Thread(target=_load, args=(running, "multiclass", x, stop, results)) for _ in range(4)]
    try:
        for w in workers:
            w.start()
        subprocess.run([*ZOO, "-q", "export", "multiclass", "-o", str(served), "--force", "--no-card", "--seed", "7",
                        "--epochs", "2"], check=True, capture_output=True)
        new = bare(served, x)["probabilities"]
        assert not np.array_equal(new, old)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (results and np.array_equal(results[-1], new)):
            time.sleep(0.1)
        stop.set()
        for w in workers:
            w.join()
        failures = [r for r in results if isinstance(r, Exception)]
        assert not failures, failures[:3]
        assert np.array_equal(results[-1], new), "the new bundle was not served"
        assert all(np.array_equal(r, old) or np.array_equal(r, new) for r in results)
        # A broken bundle written over it is verified, refused, and the new one keeps serving.
        manifest = json.loads((served / "manifest.json").read_text())
        manifest["sha256"]["model.onnx"] = "0" * 64
        (served / "manifest.json").write_text(json.dumps(manifest))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "not taken" not in (tmp_path / "serve.log").read_text():
            time.sleep(0.1)
        assert "not taken" in (tmp_path / "serve.log").read_text()
        tensor = th.InferInput("input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        got = th.InferenceServerClient(running.url).infer("multiclass", [tensor]).as_numpy("probabilities")
        assert np.array_equal(got, new)
        assert _metric(running, "zoo_serve_model_swaps_total", 'outcome="swap_refused"') == 1
    finally:
        stop.set()
        assert running.stop() == 0


def test_sigterm_under_load_finishes_what_was_asked_and_exits_0(bundles, tmp_path):
    running = Server([bundles / "multiclass", "--no-access-log"], tmp_path / "serve.log")
    x = rows_of(bundles / "multiclass", 64)
    stop, results = threading.Event(), []
    workers = [threading.Thread(target=_load, args=(running, "multiclass", x, stop, results)) for _ in range(8)]
    for w in workers:
        w.start()
    time.sleep(1.0)
    answered = len(results)
    code = running.stop()
    stop.set()
    for w in workers:
        w.join()
    assert code == 0, (tmp_path / "serve.log").read_text()[-2000:]
    assert answered > 8
    refused = [r for r in results if isinstance(r, Exception)]
    # After SIGTERM the port closes: a request may find no server (refused), never a broken or wrong answer.
    assert all(isinstance(r, np.ndarray) or "refused" in str(r).lower() or "connect" in str(r).lower()
               for r in results), refused[:3]
    expected = bare(bundles / "multiclass", x)["probabilities"]
    assert all(np.array_equal(r, expected) for r in results if isinstance(r, np.ndarray))


# -- the protocol's pieces --------------------------------------------------------------------------------------


def test_the_grpc_messages_match_tritons_field_for_field():
    """zoo's descriptors against tritonclient's (an independent copy of the protocol): names, numbers, types."""
    from tritonclient.grpc import service_pb2

    from zoo.exports.serve.grpc_service import messages

    def fields(descriptor, prefix=""):
        found = {f"{prefix}{descriptor.name}.{f.name}": (f.number, f.type) for f in descriptor.fields}
        for nested in descriptor.nested_types:
            found.update(fields(nested, f"{prefix}{descriptor.name}."))
        return found

    compared = 0
    for name, message in messages().items():
        mine, theirs = fields(message.DESCRIPTOR), fields(service_pb2.DESCRIPTOR.message_types_by_name[name])
        for key, value in mine.items():
            if key.startswith("ModelMetadataResponse.Parameters") or key == "ModelMetadataResponse.parameters":
                continue  # zoo's addition (MLServer's too): the classes over gRPC; clients ignore unknown fields
            assert theirs.get(key) == value, key
            compared += 1
    assert compared > 50


# -- a table model: one input per column, strings as BYTES -------------------------------------------------------


@pytest.fixture(scope="module")
def wine(tmp_path_factory):
    """Wine with word labels, categories and gaps as Parquet, and its bundle ``wine``: (frame, folder)."""
    from test_tables import WINE_ARGS, wine_frame

    root = tmp_path_factory.mktemp("wine")
    frame = wine_frame()
    frame.to_parquet(root / "wine.parquet")
    subprocess.run([*ZOO, "-q", "export", "multiclass", "--data", str(root / "wine.parquet"), *WINE_ARGS, "-o",
                    str(root / "wine"), "--no-card"], check=True, capture_output=True)
    return frame, root


def test_a_table_model_takes_its_columns_with_categories_as_bytes_and_gaps_as_nan(wine):
    """Wine with word labels, categories and gaps: each column an input (numbers FP32 with NaN for a gap,
    categories BYTES with "" for a gap) over REST and gRPC; the labels are ``zoo predict``'s on the same file."""
    import pyarrow.parquet as pq
    frame, root = wine
    subprocess.run([*ZOO, "predict", str(root / "wine"), str(root / "wine.parquet"), "-o",
                    str(root / "out.parquet"), "--id-column", "bottle_id"], check=True, capture_output=True)
    expected = pq.read_table(root / "out.parquet").column("label").to_pylist()
    running = Server([root / "wine", "--no-access-log"], root / "serve.log")
    try:
        status, meta = running.json("GET", "/v2/models/wine")
        kinds = {i["name"]: i["datatype"] for i in meta["inputs"]}
        assert kinds["region"] == "BYTES" and kinds["alcohol"] == "FP32" and "bottle_id" not in kinds
        for client, module in ((th.InferenceServerClient(running.url), th),
                               (tg.InferenceServerClient(running.grpc), tg)):
            tensors = []
            for name, datatype in kinds.items():
                column = frame[name]
                if datatype == "BYTES":
                    values = np.array([b"" if v is None or v != v else str(v).encode() for v in column], dtype=object)
                else:
                    values = column.to_numpy(dtype=np.float32, na_value=np.nan)
                tensor = module.InferInput(name, [len(frame), 1], datatype)
                tensor.set_data_from_numpy(values.reshape(-1, 1))
                tensors.append(tensor)
            got = client.infer("wine", tensors).as_numpy("label")
            assert [v.decode() for v in got] == expected, module.__name__
    finally:
        assert running.stop() == 0


# -- from Python ---------------------------------------------------------------------------------------------------


def test_zoo_serve_runs_embedded_in_a_thread_and_stops_when_asked(bundles):
    import zoo

    ready, done = {}, threading.Event()

    def run():
        zoo.serve(bundles / "binary", port=0, grpc_port=0, access_log=False, on_ready=ready.update)
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while "stop" not in ready and time.monotonic() < deadline:
        time.sleep(0.05)
    x = rows_of(bundles / "binary", 3)
    tensor = tg.InferInput("input", [3, 30], "FP32")
    tensor.set_data_from_numpy(x)
    got = tg.InferenceServerClient(ready["grpc"]).infer("binary", [tensor]).as_numpy("class_index")
    assert got.tolist() == bare(bundles / "binary", x)["class_index"].tolist()
    ready["stop"]()
    assert done.wait(30)


def test_the_asgi_app_answers_without_a_server_of_ours(bundles):
    """``zoo.serve_app`` driven as any ASGI server drives an app: one scope, the body, the messages sent back."""
    import asyncio

    import zoo

    app = zoo.serve_app([bundles / "multiclass"])
    x = rows_of(bundles / "multiclass", 2)
    body = json.dumps(_infer(shape=(2, 64), data=x.ravel().tolist())).encode()

    async def call(method, path, body=b""):
        sent = []

        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            sent.append(message)

        await app({"type": "http", "method": method, "path": path, "headers": [], "query_string": b""},
                  receive, send)
        return sent[0]["status"], json.loads(sent[1]["body"])

    status, answer = asyncio.run(call("POST", "/v2/models/multiclass/infer", body))
    assert status == 200
    labels = next(o for o in answer["outputs"] if o["name"] == "label")["data"]
    assert labels == bare(bundles / "multiclass", x)["label"].tolist()
    assert asyncio.run(call("GET", "/v2/models/nothere"))[0] == 404


def test_without_the_serve_extra_zoo_serve_says_what_to_install(bundles, python):
    from conftest import zoo_without

    done = subprocess.run([python, "-c", zoo_without("uvicorn"), "serve", str(bundles / "multiclass")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "pip install 'zoo-onnx[serve]'" in done.stderr and "uvicorn" in done.stderr


def test_tls_serves_rest_and_grpc_with_the_given_certificate(bundles, tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    running = Server([bundles / "binary", "--ssl-certfile", cert, "--ssl-keyfile", key, "--no-access-log"],
                     tmp_path / "serve.log")
    try:
        assert "REST on https://" in (tmp_path / "serve.log").read_text()
        import ssl

        context = ssl.create_default_context(cafile=str(cert))
        connection = http.client.HTTPSConnection(running.host, running.port, context=context, timeout=30)
        connection.request("GET", "/v2/models/binary/ready")
        assert connection.getresponse().status == 200
        connection.close()
        untrusting = http.client.HTTPSConnection(running.host, running.port, timeout=30)
        with pytest.raises(ssl.SSLError):  # a client that does not trust it is refused by TLS, not served
            untrusting.request("GET", "/v2/health/live")
        untrusting.close()
        client = tg.InferenceServerClient(running.grpc, ssl=True, root_certificates=str(cert))
        assert client.is_model_ready("binary")
    finally:
        assert running.stop() == 0


def test_a_slow_or_vanished_client_does_not_hold_up_the_others(server, bundles):
    import socket

    stalled = socket.create_connection((server.host, server.port))
    stalled.sendall(b"POST /v2/models/multiclass/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{\"in")
    vanished = socket.create_connection((server.host, server.port))
    vanished.sendall(b"POST /v2/models/multiclass/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{")
    vanished.close()
    try:
        started = time.monotonic()
        for _ in range(20):
            assert server.json("GET", "/v2/health/ready")[0] == 200
        x = rows_of(bundles / "multiclass", 1)
        assert server.json("POST", "/v2/models/multiclass/infer", _infer(data=x.ravel().tolist()))[0] == 200
        assert time.monotonic() - started < 10
    finally:
        stalled.close()


def test_the_readme_serves_and_its_tritonclient_block_runs_as_written(exported, tmp_path):
    """README's "Serve it": its command (on the ports it names) and its Python block, verbatim; the labels it
    prints are a bare onnxruntime session's on the same rows."""
    section = (Path(__file__).resolve().parents[1] / "README.md").read_text().split("## Serve it")[1].split("\n## ")[0]
    [command] = re.findall(r"```bash\n(.*?)\n```", section, re.S)
    [code] = re.findall(r"```python\n(.*?)```", section, re.S)
    args = re.sub(r"\s+#.*$", "", command).split()
    assert args[:2] == ["zoo", "serve"]
    shutil.copytree(exported[0] / "multiclass", tmp_path / "zoo-exports" / "multiclass")
    running = Server(args[2:], tmp_path / "serve.log", any_port=False, cwd=tmp_path)
    try:
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        rows = np.random.default_rng(0).integers(0, 17, (4, 64)).astype(np.float32)
        expected = bare(tmp_path / "zoo-exports" / "multiclass", rows)["label"].tolist()
        assert re.findall(r"b'([^']*)'", done.stdout) == expected and "(4, 10)" in done.stdout, done.stdout
    finally:
        assert running.stop() == 0


@pytest.mark.parametrize("option", ["--port", "--grpc-port"])
def test_a_taken_port_is_one_line_before_anything_starts(zoo_cli, bundles, option):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        other = "--grpc-port" if option == "--port" else "--port"
        assert_clean_error(zoo_cli("serve", bundles / "multiclass", option, port, other, 0),
                           f"cannot listen on 127.0.0.1:{port}", option)


@pytest.mark.slow  # 10 s: two worker processes start, each verifying its bundle
def test_workers_share_both_ports_and_the_metrics_count_every_worker(bundles, tmp_path):
    running = Server([bundles / "multiclass", "--workers", 2, "--no-access-log"], tmp_path / "serve.log")
    try:
        assert "2 worker processes" in (tmp_path / "serve.log").read_text()
        x = rows_of(bundles / "multiclass", 8)
        expected = bare(bundles / "multiclass", x)["label"].tolist()
        for _ in range(20):  # fresh connections: the kernel spreads them over the workers
            for client, module in ((th.InferenceServerClient(running.url), th),
                                   (tg.InferenceServerClient(running.grpc), tg)):
                tensor = module.InferInput("input", [8, 64], "FP32")
                tensor.set_data_from_numpy(x)
                assert [v.decode() for v in client.infer("multiclass", [tensor]).as_numpy("label")] == expected
        assert _metric(running, "zoo_serve_requests_total", 'protocol="rest"') == 20
        assert _metric(running, "zoo_serve_requests_total", 'protocol="grpc"') == 20
        pids = set(re.findall(r"Started server process \[(\d+)\]", (tmp_path / "serve.log").read_text()))
        assert len(pids) == 2
    finally:
        assert running.stop() == 0


def test_the_access_log_has_a_line_per_request_over_both_protocols(server, bundles):
    before = server.log.read_text().count('"POST /v2/models/binary/infer HTTP/1.1" 200')
    x = rows_of(bundles / "binary", 2)
    for module, where in ((th, server.url), (tg, server.grpc)):
        tensor = module.InferInput("input", [2, 30], "FP32")
        tensor.set_data_from_numpy(x)
        module.InferenceServerClient(where).infer("binary", [tensor])
    assert server.json("GET", "/v2/models/nothere")[0] == 404
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        text = server.log.read_text()
        if (text.count('"POST /v2/models/binary/infer HTTP/1.1" 200') > before and '"gRPC ModelInfer binary" OK'
                in text and '"GET /v2/models/nothere HTTP/1.1" 404' in text):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(text[-1500:])
    line = next(x for x in text.splitlines() if '"gRPC ModelInfer binary" OK' in x)
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d \S+ \"gRPC ModelInfer binary\" OK \d+\.\d\dms$", line), line


# -- found by breaking the server on purpose ----------------------------------------------------------------------


def _partial(running, body: bytes, sent: int, headers: str = "Content-Type: application/json\r\n") -> socket.socket:
    """A connection that has sent the headers and the first ``sent`` bytes of ``body``."""
    sock = socket.create_connection((running.host, running.port), timeout=15)
    sock.sendall(f"POST /v2/models/multiclass/infer HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {len(body)}"
                 "\r\n\r\n".encode() + body[:sent])
    return sock


def _finish(sock: socket.socket, rest: bytes) -> tuple[int, bytes]:
    sock.sendall(rest)
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, response.read()


def _wait_for(log, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and text not in log.read_text():
        time.sleep(0.05)
    assert text in log.read_text(), log.read_text()[-2000:]


# 16: the model is looked up where the request joins the batcher, not before its body is read
def test_a_request_whose_body_arrives_during_a_swap_is_answered_by_the_new_model(bundles, tmp_path):
    served = tmp_path / "multiclass"
    shutil.copytree(bundles / "multiclass", served)
    running = Server([served, "--watch-interval", 0.1, "--no-access-log"], tmp_path / "serve.log")
    try:
        x = rows_of(served, 2)
        body = json.dumps(_infer(shape=(2, 64), data=x.ravel().tolist())).encode()
        assert running.json("POST", "/v2/models/multiclass/infer", body)[0] == 200  # the old batcher runs
        slow = _partial(running, body, 10)
        time.sleep(0.3)  # the server has the headers and waits for the body
        for name in ("manifest.json", "model.onnx"):  # the same bundle written again: a swap
            (served / name).write_bytes((served / name).read_bytes())
        _wait_for(tmp_path / "serve.log", "now serving the new")
        status, answer = _finish(slow, body[10:])
        assert status == 200, answer[:300]
        labels = next(o for o in json.loads(answer)["outputs"] if o["name"] == "label")["data"]
        assert labels == bare(served, x)["label"].tolist()
    finally:
        assert running.stop() == 0


# 13b + Q: SIGTERM drains: a request still sending its body is answered; gRPC says not ready meanwhile
def test_sigterm_drains_a_request_still_sending_its_body_and_says_not_ready_meanwhile(bundles, tmp_path):
    running = Server([bundles / "multiclass", "--no-access-log"], tmp_path / "serve.log")
    try:
        x = rows_of(bundles / "multiclass", 2)
        body = json.dumps(_infer(shape=(2, 64), data=x.ravel().tolist())).encode()
        client = tg.InferenceServerClient(running.grpc)
        assert client.is_server_ready()
        slow = _partial(running, body, 10)
        time.sleep(0.3)
        running.process.send_signal(signal.SIGTERM)
        time.sleep(1.0)  # past uvicorn's 0.1 s: with no grace the request would be cut here
        assert not client.is_server_ready()  # draining: ready no more
        status, answer = _finish(slow, body[10:])
        assert status == 200, answer[:300]
    finally:
        assert running.stop() == 0


# 7b: a declared Content-Length over the limit is refused before any of the body is read
def test_a_declared_content_length_over_the_limit_is_refused_at_once(server):
    sock = socket.create_connection((server.host, server.port), timeout=10)
    try:
        sock.sendall(b"POST /v2/models/multiclass/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n{")
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 413
    finally:
        sock.close()


# 7c: a chunked body (no Content-Length) over the limit is refused as it streams in
def test_a_chunked_body_over_the_limit_is_refused(server):
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        chunks = (b"x" * (1 << 20) for _ in range(9))  # 9 MiB; the server takes 8
        connection.request("POST", "/v2/models/multiclass/infer", body=chunks, encode_chunked=True,
                           headers={"Transfer-Encoding": "chunked"})
        assert connection.getresponse().status == 413
    finally:
        connection.close()


# A: a shape of no dimensions is a 400, not a 500
def test_an_empty_shape_is_a_400(server):
    status, answer = server.json("POST", "/v2/models/multiclass/infer", _infer(shape=()))
    assert status == 400 and "shape" in answer["error"], (status, answer)


# C1 + C2: the binary extension's output choices, per output and for all
def test_binary_outputs_are_chosen_per_output_and_for_all(server, bundles):
    x = rows_of(bundles / "multiclass", 3)
    inputs = [{"name": "input", "shape": [3, 64], "datatype": "FP32", "data": x.ravel().tolist()}]
    reference = bare(bundles / "multiclass", x)

    def ask(payload):
        status, headers, body = server.request("POST", "/v2/models/multiclass/infer", json.dumps(payload).encode())
        assert status == 200, body[:300]
        length = int(headers.get("inference-header-content-length", len(body)))
        return json.loads(body[:length]), body[length:]

    answer, blob = ask({"inputs": inputs, "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}},
                                                      {"name": "class_index"}]})
    p, c = answer["outputs"]
    assert "data" not in p and p["parameters"]["binary_data_size"] == len(blob) == 3 * 10 * 4
    assert np.frombuffer(blob, "<f4").reshape(3, 10).tobytes() == reference["probabilities"].tobytes()
    assert c["data"] == reference["class_index"].tolist()
    answer, blob = ask({"inputs": inputs, "parameters": {"binary_data_output": True}})
    assert all("data" not in o for o in answer["outputs"])
    assert len(blob) == sum(o["parameters"]["binary_data_size"] for o in answer["outputs"])


# G: binary bytes that no input claims are a 400
def test_binary_data_no_input_claims_is_a_400(server):
    blob = np.zeros((1, 64), np.float32).tobytes()
    header = json.dumps({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32",
                                     "parameters": {"binary_data_size": len(blob)}}]}).encode()
    status, _, body = server.request("POST", "/v2/models/multiclass/infer", header + blob + b"\0" * 8,
                                     {"Inference-Header-Content-Length": str(len(header))})
    assert status == 400 and b"no input claims" in body, body[:300]


# J: a compressed body is refused (415), not decoded as garbage
def test_a_compressed_body_is_a_415(server):
    body = gzip.compress(json.dumps(_infer()).encode())
    status, _, _ = server.request("POST", "/v2/models/multiclass/infer", body, {"Content-Encoding": "gzip"})
    assert status == 415


# I + 5: only 'Bearer' carries the token
def test_the_token_must_come_as_a_bearer_token(bundles, tmp_path):
    running = Server([bundles / "multiclass", "--no-access-log"], tmp_path / "serve.log",
                     env={"ZOO_SERVE_TOKEN": "s3cret"})
    try:
        for value in ("Basic s3cret", "s3cret", "Bearer s3cretX", "Bearer s3c"):
            assert running.request("GET", "/v2", headers={"Authorization": value})[0] == 401, value
        assert running.request("GET", "/v2", headers={"Authorization": "bearer s3cret"})[0] == 200
    finally:
        assert running.stop() == 0


# M + 15c: no runtime call takes more than --max-batch-rows rows, and the metric counts every row
def test_coalesced_batches_keep_to_max_batch_rows_and_the_metric_counts_every_row(bundles, tmp_path):
    running = Server([bundles / "multiclass", "--max-queue-delay-us", 200_000, "--max-batch-rows", 8,
                      "--no-access-log"], tmp_path / "serve.log")
    try:
        x = rows_of(bundles / "multiclass", 4)

        def ask(_):
            tensor = th.InferInput("input", [4, 64], "FP32")
            tensor.set_data_from_numpy(x)
            return th.InferenceServerClient(running.url).infer("multiclass", [tensor]).as_numpy("label")

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(ask, range(16)))
        model = 'model="multiclass"'
        calls = _metric(running, "zoo_serve_batch_rows_count", model)
        assert _metric(running, "zoo_serve_batch_rows_sum", model) == 64
        assert 8 <= calls < 16  # coalesced, two requests a call at most
        assert _metric(running, "zoo_serve_batch_rows_bucket", 'le="8.0"') == calls
    finally:
        assert running.stop() == 0


# R: gRPC raw_input_contents must hold one tensor per input
def test_grpc_raw_contents_for_more_tensors_than_inputs_is_invalid_argument(server):
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    request = service_pb2.ModelInferRequest(model_name="multiclass")
    request.inputs.add(name="input", datatype="FP32", shape=[1, 64])
    request.raw_input_contents.extend([np.zeros(64, np.float32).tobytes()] * 2)
    with grpc.insecure_channel(server.grpc) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# T: a bundle refused once is not verified (and counted) again until it changes again
def test_a_refused_bundle_is_refused_once_not_at_every_look(bundles, tmp_path):
    served = tmp_path / "multiclass"
    shutil.copytree(bundles / "multiclass", served)
    running = Server([served, "--watch-interval", 0.1, "--no-access-log"], tmp_path / "serve.log")
    try:
        manifest = json.loads((served / "manifest.json").read_text())
        manifest["sha256"]["model.onnx"] = "0" * 64
        (served / "manifest.json").write_text(json.dumps(manifest))
        _wait_for(tmp_path / "serve.log", "not taken")
        time.sleep(1.5)  # fifteen more looks at the folder
        assert (tmp_path / "serve.log").read_text().count("not taken") == 1
        assert _metric(running, "zoo_serve_model_swaps_total", 'outcome="swap_refused"') == 1
    finally:
        assert running.stop() == 0


# B: a table model's column comes as [rows] or [rows, 1], never [rows, k]
def test_a_table_models_columns_of_two_values_a_row_are_a_400(wine):
    _, root = wine
    running = Server([root / "wine", "--no-access-log"], root / "serve-shapes.log")
    try:
        _, meta = running.json("GET", "/v2/models/wine")
        for shape in ([2, 2], [2, 1, 2], [2, 2, 1]):  # every column with four values where there are two rows
            inputs = []
            for spec in meta["inputs"]:
                data = ["a"] * 4 if spec["datatype"] == "BYTES" else [1.0] * 4
                inputs.append({"name": spec["name"], "shape": shape, "datatype": spec["datatype"], "data": data})
            status, answer = running.json("POST", "/v2/models/wine/infer", {"inputs": inputs})
            assert status == 400 and "shape" in answer["error"], (shape, status, answer)
    finally:
        assert running.stop() == 0
