"""The Open Inference Protocol over REST, as a plain ASGI application (uvicorn runs it; so can any ASGI server).

Routes (``/versions/V`` may follow ``/v2/models/NAME`` everywhere)::

    GET  /v2/health/live            GET /v2/health/ready       GET /v2
    GET  /v2/models/NAME            GET /v2/models/NAME/ready  POST /v2/models/NAME/infer
    GET  /metrics

A request body is JSON, or JSON followed by binary tensors (Triton's binary tensor data extension: the header
``Inference-Header-Content-Length`` gives the JSON's length, each binary input has ``binary_data_size``). Every
refusal is a status with the protocol's ``{"error": "..."}``; the token guards every route but ``live``.
"""

from __future__ import annotations

import logging
import time

import orjson

from zoo import __version__
from zoo.errors import first_line
from zoo.exports.serve.core import EXTENSIONS, SERVER_NAME, Core
from zoo.exports.serve.tensors import (
    ProtocolError,
    datatype_for,
    datatype_of,
    from_bytes,
    from_json,
    shape_of,
    to_bytes,
    to_json,
)

log = logging.getLogger("zoo.serve")

_JSON = [(b"content-type", b"application/json")]
_HEADER_LENGTH = b"inference-header-content-length"


class RestApp:
    """The ASGI application; ``lifespan`` runs ``on_start`` and ``on_stop`` (the gRPC server, the watcher)."""

    def __init__(self, core: Core, on_start=None, on_stop=None):
        self.core, self.on_start, self.on_stop = core, on_start, on_stop

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.on_start is not None:
                        await self.on_start()
                except Exception as exc:  # a port taken, a certificate unreadable: the server does not start
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.core.ready = False
                if self.on_stop is not None:
                    await self.on_stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope, receive, send) -> None:
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        access = self.core.access
        if access is not None:
            status, reply = [0], send

            async def send(message):
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await reply(message)

            try:
                return await self._answer(scope, receive, send, started, method, path)
            finally:
                client = scope.get("client") or ("-", 0)
                access.add(f"{client[0]}:{client[1]}", f"{method} {path} HTTP/{scope.get('http_version', '1.1')}",
                           status[0], time.perf_counter() - started)
        return await self._answer(scope, receive, send, started, method, path)

    async def _answer(self, scope, receive, send, started, method, path) -> None:
        headers = dict(scope["headers"])
        parts = path.strip("/").split("/")
        try:
            if parts[:3] == ["v2", "health", "live"] and len(parts) == 3:
                _method(method, "GET")
                return await _reply(send, 200, {"live": True})
            given = headers.get(b"authorization")
            if not self.core.authorized(given):
                raise ProtocolError("this server needs a bearer token: send 'Authorization: Bearer TOKEN'" if not given
                                    else "the bearer token is not this server's", 401)
            if parts == ["metrics"]:
                _method(method, "GET")
                body, kind = self.core.metrics.text()
                return await _send(send, 200, body, [(b"content-type", kind.encode())])
            if parts == ["v2"]:
                _method(method, "GET")
                return await _reply(send, 200, {"name": SERVER_NAME, "version": __version__,
                                                "extensions": EXTENSIONS})
            if parts == ["v2", "health", "ready"]:
                _method(method, "GET")
                ready = self.core.ready
                return await _reply(send, 200 if ready else 503, {"ready": ready})
            if len(parts) >= 3 and parts[:2] == ["v2", "models"]:
                return await self._model(parts[2:], method, scope, headers, receive, send, started)
            raise ProtocolError(f"no route {path} (the Open Inference Protocol's routes are under /v2)", 404)
        except ProtocolError as exc:
            self.core.metrics.failed("rest", exc.status)
            extra = [(b"www-authenticate", b"Bearer")] if exc.status == 401 else []
            await _reply(send, exc.status, {"error": str(exc)}, extra)
        except Exception as exc:  # a bug or a runtime failure: the client hears it in one line, the server goes on
            log.exception("zoo serve: %s %s failed", method, path)
            self.core.metrics.failed("rest", 500)
            await _reply(send, 500, {"error": f"the server failed to answer: {first_line(exc)}"})

    async def _model(self, rest: list[str], method, scope, headers, receive, send, started) -> None:
        name, version, action = rest[0], None, rest[1:]
        if action[:1] == ["versions"]:
            if len(action) < 2:
                raise ProtocolError("/versions needs a version: /v2/models/NAME/versions/VERSION", 404)
            version, action = action[1], action[2:]
        if len(action) > 1 or (action and action[0] not in ("ready", "infer")):
            raise ProtocolError(f"no route {scope['path']} (a model has /ready, /infer and its metadata)", 404)
        if not action or action[0] == "ready":
            _method(method, "GET")
            served = self.core.model(name, version)
            if not action:
                return await _reply(send, 200, self.core.metadata(served))
            return await _reply(send, 200, {"name": name, "ready": True})
        _method(method, "POST")
        self.core.model(name, version)  # an unknown model is a 404 before its body is read
        body = await _body(headers, receive, self.core.limits.max_request_bytes)
        request, binary = _split(headers, body)
        tensors, outputs, binary_out = _decode(request, binary)
        served, got = await self.core.infer(name, version, tensors, outputs)
        answer = {"model_name": served.name, "model_version": served.version}
        if isinstance(request.get("id"), str):
            answer["id"] = request["id"]
        blobs, described = [], []
        for output, value in got.items():
            entry = {"name": output, "datatype": datatype_for(value), "shape": list(value.shape)}
            if binary_out(output):
                blob = to_bytes(value)
                entry["parameters"] = {"binary_data_size": len(blob)}
                blobs.append(blob)
            else:
                entry["data"] = to_json(value)
            described.append(entry)
        answer["outputs"] = described
        text = orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
        self.core.answered(served, "rest", started)
        if blobs:
            await _send(send, 200, b"".join([text, *blobs]),
                        [(b"content-type", b"application/octet-stream"), (_HEADER_LENGTH, str(len(text)).encode())])
        else:
            await _send(send, 200, text, _JSON)


def _method(method: str, allowed: str) -> None:
    if method != allowed:
        raise ProtocolError(f"{method} is not allowed here: use {allowed}", 405)


async def _body(headers: dict, receive, limit: int) -> bytes:
    declared = headers.get(b"content-length")
    if declared is not None and not declared.isdigit():
        raise ProtocolError(f"Content-Length is {declared.decode(errors='replace')[:20]}, not a number of bytes")
    if declared is not None and int(declared) > limit:
        raise ProtocolError(f"the request body is {declared.decode(errors='replace')[:20]} bytes; at most {limit} "
                            "(--max-request-bytes)", 413)
    if headers.get(b"content-encoding", b"identity") != b"identity":
        raise ProtocolError("compressed request bodies are not accepted: send the body uncompressed", 415)
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ProtocolError("the client went away before the body ended", 400)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ProtocolError(f"the request body passes {limit} bytes (--max-request-bytes)", 413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _split(headers: dict, body: bytes) -> tuple[dict, memoryview | None]:
    length = headers.get(_HEADER_LENGTH)
    binary = None
    if length is not None:
        if not length.isdigit() or int(length) > len(body):
            raise ProtocolError(f"Inference-Header-Content-Length is {length.decode(errors='replace')[:20]}, but the "
                                f"body has {len(body)} bytes")
        binary, body = memoryview(body)[int(length):], body[:int(length)]
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"the request is not JSON ({exc})") from None
    if not isinstance(request, dict):
        raise ProtocolError("the request must be a JSON object with 'inputs'")
    return request, binary


def _decode(request: dict, binary: memoryview | None):
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ProtocolError("the request needs 'inputs': a list of tensors with name, shape, datatype and data")
    tensors, at = {}, 0
    for k, tensor in enumerate(inputs):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise ProtocolError(f"inputs[{k}] must be an object with a 'name'")
        name = tensor["name"]
        where = f"input {name[:60]!r}"
        if name in tensors:
            raise ProtocolError(f"{where} is given twice")
        shape = shape_of(tensor.get("shape"), where)
        datatype = datatype_of(tensor.get("datatype"), where)
        parameters = tensor.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise ProtocolError(f"{where}: 'parameters' must be an object")
        size = parameters.get("binary_data_size")
        if size is not None:
            if binary is None:
                raise ProtocolError(f"{where} has binary_data_size but the request has no "
                                    "Inference-Header-Content-Length header")
            if type(size) is not int or size < 0 or at + size > len(binary):
                raise ProtocolError(f"{where}: binary_data_size {str(size)[:20]} runs past the body's binary data "
                                    f"({len(binary)} bytes)")
            tensors[name] = from_bytes(binary[at:at + size], datatype, shape, where)
            at += size
        elif "data" in tensor:
            tensors[name] = from_json(tensor["data"], datatype, shape, where)
        else:
            raise ProtocolError(f"{where} has neither 'data' nor parameters.binary_data_size")
    if binary is not None and at != len(binary):
        raise ProtocolError(f"the body has {len(binary) - at} bytes of binary data that no input claims")
    parameters = request.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ProtocolError("the request's 'parameters' must be an object")
    everything_binary = parameters.get("binary_data_output") is True
    requested = request.get("outputs")
    if requested is None:
        return tensors, None, lambda name: everything_binary
    if not isinstance(requested, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                  for o in requested):
        raise ProtocolError("'outputs' must be a list of objects with a 'name'")
    binary_of = {}
    for o in requested:
        chosen = o.get("parameters") or {}
        if not isinstance(chosen, dict):
            raise ProtocolError(f"output {o['name'][:60]!r}: 'parameters' must be an object")
        binary_of[o["name"]] = chosen.get("binary_data", everything_binary) is True
    return tensors, list(binary_of), binary_of.__getitem__


async def _reply(send, status: int, payload: dict, extra: list | None = None) -> None:
    await _send(send, status, orjson.dumps(payload), _JSON + (extra or []))


async def _send(send, status: int, body: bytes, headers: list) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
