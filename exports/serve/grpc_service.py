"""The Open Inference Protocol over gRPC (``inference.GRPCInferenceService``), on ``grpc.aio`` in the server's
event loop, beside REST: one batcher per model serves both.

The messages come from ``grpc_predict_v2.proto`` beside this file, compiled once and embedded below, and are
built in a descriptor pool of zoo's own: a process that also imports a client's copy of the same protocol
(``tritonclient.grpc`` defines the same ``inference.*`` names) has no clash, and no protobuf code generator
version is tied to the installed protobuf runtime.
"""

from __future__ import annotations

import base64
import time
from functools import cache

import numpy as np

from zoo import __version__
from zoo.exports.serve.core import EXTENSIONS, SERVER_NAME, Core
from zoo.exports.serve.tensors import (
    DTYPES,
    ProtocolError,
    datatype_for,
    datatype_of,
    elements,
    from_bytes,
    shape_of,
    to_bytes,
)

SERVICE = "inference.GRPCInferenceService"

# python -m grpc_tools.protoc -I exports/serve --descriptor_set_out=/dev/stdout \
#     exports/serve/grpc_predict_v2.proto | base64 -w 100
_DESCRIPTOR_SET = (
    "CoEeChVncnBjX3ByZWRpY3RfdjIucHJvdG8SCWluZmVyZW5jZSITChFTZXJ2ZXJMaXZlUmVxdWVzdCIoChJTZXJ2ZXJMaXZlUmVz"
    "cG9uc2USEgoEbGl2ZRgBIAEoCFIEbGl2ZSIUChJTZXJ2ZXJSZWFkeVJlcXVlc3QiKwoTU2VydmVyUmVhZHlSZXNwb25zZRIUCgVy"
    "ZWFkeRgBIAEoCFIFcmVhZHkiQQoRTW9kZWxSZWFkeVJlcXVlc3QSEgoEbmFtZRgBIAEoCVIEbmFtZRIYCgd2ZXJzaW9uGAIgASgJ"
    "Ugd2ZXJzaW9uIioKEk1vZGVsUmVhZHlSZXNwb25zZRIUCgVyZWFkeRgBIAEoCFIFcmVhZHkiFwoVU2VydmVyTWV0YWRhdGFSZXF1"
    "ZXN0ImYKFlNlcnZlck1ldGFkYXRhUmVzcG9uc2USEgoEbmFtZRgBIAEoCVIEbmFtZRIYCgd2ZXJzaW9uGAIgASgJUgd2ZXJzaW9u"
    "Eh4KCmV4dGVuc2lvbnMYAyADKAlSCmV4dGVuc2lvbnMiRAoUTW9kZWxNZXRhZGF0YVJlcXVlc3QSEgoEbmFtZRgBIAEoCVIEbmFt"
    "ZRIYCgd2ZXJzaW9uGAIgASgJUgd2ZXJzaW9uIvsDChVNb2RlbE1ldGFkYXRhUmVzcG9uc2USEgoEbmFtZRgBIAEoCVIEbmFtZRIa"
    "Cgh2ZXJzaW9ucxgCIAMoCVIIdmVyc2lvbnMSGgoIcGxhdGZvcm0YAyABKAlSCHBsYXRmb3JtEkcKBmlucHV0cxgEIAMoCzIvLmlu"
    "ZmVyZW5jZS5Nb2RlbE1ldGFkYXRhUmVzcG9uc2UuVGVuc29yTWV0YWRhdGFSBmlucHV0cxJJCgdvdXRwdXRzGAUgAygLMi8uaW5m"
    "ZXJlbmNlLk1vZGVsTWV0YWRhdGFSZXNwb25zZS5UZW5zb3JNZXRhZGF0YVIHb3V0cHV0cxJQCgpwYXJhbWV0ZXJzGAYgAygLMjAu"
    "aW5mZXJlbmNlLk1vZGVsTWV0YWRhdGFSZXNwb25zZS5QYXJhbWV0ZXJzRW50cnlSCnBhcmFtZXRlcnMaVgoOVGVuc29yTWV0YWRh"
    "dGESEgoEbmFtZRgBIAEoCVIEbmFtZRIaCghkYXRhdHlwZRgCIAEoCVIIZGF0YXR5cGUSFAoFc2hhcGUYAyADKANSBXNoYXBlGlgK"
    "D1BhcmFtZXRlcnNFbnRyeRIQCgNrZXkYASABKAlSA2tleRIvCgV2YWx1ZRgCIAEoCzIZLmluZmVyZW5jZS5JbmZlclBhcmFtZXRl"
    "clIFdmFsdWU6AjgBIp0IChFNb2RlbEluZmVyUmVxdWVzdBIdCgptb2RlbF9uYW1lGAEgASgJUgltb2RlbE5hbWUSIwoNbW9kZWxf"
    "dmVyc2lvbhgCIAEoCVIMbW9kZWxWZXJzaW9uEg4KAmlkGAMgASgJUgJpZBJMCgpwYXJhbWV0ZXJzGAQgAygLMiwuaW5mZXJlbmNl"
    "Lk1vZGVsSW5mZXJSZXF1ZXN0LlBhcmFtZXRlcnNFbnRyeVIKcGFyYW1ldGVycxJFCgZpbnB1dHMYBSADKAsyLS5pbmZlcmVuY2Uu"
    "TW9kZWxJbmZlclJlcXVlc3QuSW5mZXJJbnB1dFRlbnNvclIGaW5wdXRzElEKB291dHB1dHMYBiADKAsyNy5pbmZlcmVuY2UuTW9k"
    "ZWxJbmZlclJlcXVlc3QuSW5mZXJSZXF1ZXN0ZWRPdXRwdXRUZW5zb3JSB291dHB1dHMSLAoScmF3X2lucHV0X2NvbnRlbnRzGAcg"
    "AygMUhByYXdJbnB1dENvbnRlbnRzGs0CChBJbmZlcklucHV0VGVuc29yEhIKBG5hbWUYASABKAlSBG5hbWUSGgoIZGF0YXR5cGUY"
    "AiABKAlSCGRhdGF0eXBlEhQKBXNoYXBlGAMgAygDUgVzaGFwZRJdCgpwYXJhbWV0ZXJzGAQgAygLMj0uaW5mZXJlbmNlLk1vZGVs"
    "SW5mZXJSZXF1ZXN0LkluZmVySW5wdXRUZW5zb3IuUGFyYW1ldGVyc0VudHJ5UgpwYXJhbWV0ZXJzEjoKCGNvbnRlbnRzGAUgASgL"
    "Mh4uaW5mZXJlbmNlLkluZmVyVGVuc29yQ29udGVudHNSCGNvbnRlbnRzGlgKD1BhcmFtZXRlcnNFbnRyeRIQCgNrZXkYASABKAlS"
    "A2tleRIvCgV2YWx1ZRgCIAEoCzIZLmluZmVyZW5jZS5JbmZlclBhcmFtZXRlclIFdmFsdWU6AjgBGvMBChpJbmZlclJlcXVlc3Rl"
    "ZE91dHB1dFRlbnNvchISCgRuYW1lGAEgASgJUgRuYW1lEmcKCnBhcmFtZXRlcnMYAiADKAsyRy5pbmZlcmVuY2UuTW9kZWxJbmZl"
    "clJlcXVlc3QuSW5mZXJSZXF1ZXN0ZWRPdXRwdXRUZW5zb3IuUGFyYW1ldGVyc0VudHJ5UgpwYXJhbWV0ZXJzGlgKD1BhcmFtZXRl"
    "cnNFbnRyeRIQCgNrZXkYASABKAlSA2tleRIvCgV2YWx1ZRgCIAEoCzIZLmluZmVyZW5jZS5JbmZlclBhcmFtZXRlclIFdmFsdWU6"
    "AjgBGlgKD1BhcmFtZXRlcnNFbnRyeRIQCgNrZXkYASABKAlSA2tleRIvCgV2YWx1ZRgCIAEoCzIZLmluZmVyZW5jZS5JbmZlclBh"
    "cmFtZXRlclIFdmFsdWU6AjgBIt8FChJNb2RlbEluZmVyUmVzcG9uc2USHQoKbW9kZWxfbmFtZRgBIAEoCVIJbW9kZWxOYW1lEiMK"
    "DW1vZGVsX3ZlcnNpb24YAiABKAlSDG1vZGVsVmVyc2lvbhIOCgJpZBgDIAEoCVICaWQSTQoKcGFyYW1ldGVycxgEIAMoCzItLmlu"
    "ZmVyZW5jZS5Nb2RlbEluZmVyUmVzcG9uc2UuUGFyYW1ldGVyc0VudHJ5UgpwYXJhbWV0ZXJzEkkKB291dHB1dHMYBSADKAsyLy5p"
    "bmZlcmVuY2UuTW9kZWxJbmZlclJlc3BvbnNlLkluZmVyT3V0cHV0VGVuc29yUgdvdXRwdXRzEi4KE3Jhd19vdXRwdXRfY29udGVu"
    "dHMYBiADKAxSEXJhd091dHB1dENvbnRlbnRzGtACChFJbmZlck91dHB1dFRlbnNvchISCgRuYW1lGAEgASgJUgRuYW1lEhoKCGRh"
    "dGF0eXBlGAIgASgJUghkYXRhdHlwZRIUCgVzaGFwZRgDIAMoA1IFc2hhcGUSXwoKcGFyYW1ldGVycxgEIAMoCzI/LmluZmVyZW5j"
    "ZS5Nb2RlbEluZmVyUmVzcG9uc2UuSW5mZXJPdXRwdXRUZW5zb3IuUGFyYW1ldGVyc0VudHJ5UgpwYXJhbWV0ZXJzEjoKCGNvbnRl"
    "bnRzGAUgASgLMh4uaW5mZXJlbmNlLkluZmVyVGVuc29yQ29udGVudHNSCGNvbnRlbnRzGlgKD1BhcmFtZXRlcnNFbnRyeRIQCgNr"
    "ZXkYASABKAlSA2tleRIvCgV2YWx1ZRgCIAEoCzIZLmluZmVyZW5jZS5JbmZlclBhcmFtZXRlclIFdmFsdWU6AjgBGlgKD1BhcmFt"
    "ZXRlcnNFbnRyeRIQCgNrZXkYASABKAlSA2tleRIvCgV2YWx1ZRgCIAEoCzIZLmluZmVyZW5jZS5JbmZlclBhcmFtZXRlclIFdmFs"
    "dWU6AjgBItcBCg5JbmZlclBhcmFtZXRlchIfCgpib29sX3BhcmFtGAEgASgISABSCWJvb2xQYXJhbRIhCgtpbnQ2NF9wYXJhbRgC"
    "IAEoA0gAUgppbnQ2NFBhcmFtEiMKDHN0cmluZ19wYXJhbRgDIAEoCUgAUgtzdHJpbmdQYXJhbRIjCgxkb3VibGVfcGFyYW0YBCAB"
    "KAFIAFILZG91YmxlUGFyYW0SIwoMdWludDY0X3BhcmFtGAUgASgESABSC3VpbnQ2NFBhcmFtQhIKEHBhcmFtZXRlcl9jaG9pY2Ui"
    "wwIKE0luZmVyVGVuc29yQ29udGVudHMSIwoNYm9vbF9jb250ZW50cxgBIAMoCFIMYm9vbENvbnRlbnRzEiEKDGludF9jb250ZW50"
    "cxgCIAMoBVILaW50Q29udGVudHMSJQoOaW50NjRfY29udGVudHMYAyADKANSDWludDY0Q29udGVudHMSIwoNdWludF9jb250ZW50"
    "cxgEIAMoDVIMdWludENvbnRlbnRzEicKD3VpbnQ2NF9jb250ZW50cxgFIAMoBFIOdWludDY0Q29udGVudHMSIwoNZnAzMl9jb250"
    "ZW50cxgGIAMoAlIMZnAzMkNvbnRlbnRzEiMKDWZwNjRfY29udGVudHMYByADKAFSDGZwNjRDb250ZW50cxIlCg5ieXRlc19jb250"
    "ZW50cxgIIAMoDFINYnl0ZXNDb250ZW50czL8AwoUR1JQQ0luZmVyZW5jZVNlcnZpY2USSwoKU2VydmVyTGl2ZRIcLmluZmVyZW5j"
    "ZS5TZXJ2ZXJMaXZlUmVxdWVzdBodLmluZmVyZW5jZS5TZXJ2ZXJMaXZlUmVzcG9uc2UiABJOCgtTZXJ2ZXJSZWFkeRIdLmluZmVy"
    "ZW5jZS5TZXJ2ZXJSZWFkeVJlcXVlc3QaHi5pbmZlcmVuY2UuU2VydmVyUmVhZHlSZXNwb25zZSIAEksKCk1vZGVsUmVhZHkSHC5p"
    "bmZlcmVuY2UuTW9kZWxSZWFkeVJlcXVlc3QaHS5pbmZlcmVuY2UuTW9kZWxSZWFkeVJlc3BvbnNlIgASVwoOU2VydmVyTWV0YWRh"
    "dGESIC5pbmZlcmVuY2UuU2VydmVyTWV0YWRhdGFSZXF1ZXN0GiEuaW5mZXJlbmNlLlNlcnZlck1ldGFkYXRhUmVzcG9uc2UiABJU"
    "Cg1Nb2RlbE1ldGFkYXRhEh8uaW5mZXJlbmNlLk1vZGVsTWV0YWRhdGFSZXF1ZXN0GiAuaW5mZXJlbmNlLk1vZGVsTWV0YWRhdGFS"
    "ZXNwb25zZSIAEksKCk1vZGVsSW5mZXISHC5pbmZlcmVuY2UuTW9kZWxJbmZlclJlcXVlc3QaHS5pbmZlcmVuY2UuTW9kZWxJbmZl"
    "clJlc3BvbnNlIgBiBnByb3RvMw=="
)

#: The typed contents field for each datatype (gRPC requests without raw_input_contents).
_CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
             "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
             "UINT32": "uint_contents", "UINT64": "uint64_contents", "FP32": "fp32_contents",
             "FP64": "fp64_contents", "BYTES": "bytes_contents"}
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND", 405: "UNIMPLEMENTED",
           413: "RESOURCE_EXHAUSTED", 415: "INVALID_ARGUMENT", 503: "UNAVAILABLE"}


@cache
def messages() -> dict[str, type]:
    """The protocol's message classes, by their short names."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    files = descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode("".join(_DESCRIPTOR_SET)))
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return {m.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"inference.{m.name}"))
            for m in files.file[0].message_type}


class Service:
    """The six methods, each a coroutine taking the request message and the call's context."""

    def __init__(self, core: Core):
        self.core, self.m = core, messages()

    async def _guard(self, context) -> None:
        import grpc

        header = dict(context.invocation_metadata() or ()).get("authorization")
        if not self.core.authorized(header):
            self.core.metrics.failed("grpc", 401)
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "this server needs a bearer token: send the "
                                "metadata 'authorization: Bearer TOKEN'")

    async def _refuse(self, context, exc: ProtocolError) -> None:
        import grpc

        self.core.metrics.failed("grpc", exc.status)
        await context.abort(getattr(grpc.StatusCode, _STATUS.get(exc.status, "INVALID_ARGUMENT")), str(exc))

    async def ServerLive(self, request, context):
        return self.m["ServerLiveResponse"](live=True)

    async def ServerReady(self, request, context):
        await self._guard(context)
        return self.m["ServerReadyResponse"](ready=self.core.ready)

    async def ServerMetadata(self, request, context):
        await self._guard(context)
        return self.m["ServerMetadataResponse"](name=SERVER_NAME, version=__version__, extensions=EXTENSIONS)

    async def ModelReady(self, request, context):
        await self._guard(context)
        try:
            self.core.model(request.name, request.version or None)
        except ProtocolError as exc:
            await self._refuse(context, exc)
        return self.m["ModelReadyResponse"](ready=True)

    async def ModelMetadata(self, request, context):
        await self._guard(context)
        try:
            served = self.core.model(request.name, request.version or None)
        except ProtocolError as exc:
            await self._refuse(context, exc)
        meta = self.core.metadata(served)
        tensor = self.m["ModelMetadataResponse"].TensorMetadata
        answer = self.m["ModelMetadataResponse"](
            name=meta["name"], versions=meta["versions"], platform=meta["platform"],
            inputs=[tensor(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in meta["inputs"]],
            outputs=[tensor(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in meta["outputs"]])
        for key, value in meta["parameters"].items():
            answer.parameters[key].string_param = value
        return answer

    async def ModelInfer(self, request, context):
        started = time.perf_counter()
        await self._guard(context)
        try:
            tensors = _inputs(request)
            outputs = [o.name for o in request.outputs] or None
            served, got = await self.core.infer(request.model_name, request.model_version or None, tensors,
                                                outputs)
        except ProtocolError as exc:
            await self._refuse(context, exc)
        answer = self.m["ModelInferResponse"](model_name=served.name, model_version=served.version, id=request.id)
        for name, value in got.items():
            answer.outputs.add(name=name, datatype=datatype_for(value), shape=list(value.shape))
            answer.raw_output_contents.append(to_bytes(value))
        self.core.answered(served, "grpc", started)
        return answer


def _inputs(request) -> dict[str, np.ndarray]:
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise ProtocolError(f"raw_input_contents holds {len(raw)} tensors for {len(request.inputs)} inputs")
    if not request.inputs:
        raise ProtocolError("the request needs inputs")
    tensors = {}
    for k, tensor in enumerate(request.inputs):
        where = f"input {tensor.name[:60]!r}"
        if tensor.name in tensors:
            raise ProtocolError(f"{where} is given twice")
        shape = shape_of(list(tensor.shape), where)
        datatype = datatype_of(tensor.datatype, where)
        if raw:
            tensors[tensor.name] = from_bytes(raw[k], datatype, shape, where)
            continue
        if datatype not in _CONTENTS:
            raise ProtocolError(f"{where}: {datatype} needs raw_input_contents")
        values = getattr(tensor.contents, _CONTENTS[datatype])
        if len(values) != elements(shape):
            raise ProtocolError(f"{where}: contents hold {len(values)} values; shape {list(shape)} needs "
                                f"{elements(shape)}")
        array = np.array(list(values), dtype=DTYPES[datatype])
        tensors[tensor.name] = array.reshape(shape)
    return tensors


def handlers(service: Service):
    """The generic handler grpc.aio servers take, for the six methods."""
    import grpc

    m = service.m

    def logged(name: str, method):
        if service.core.access is None:
            return method

        async def call(request, context):
            started = time.perf_counter()
            try:
                return await method(request, context)
            finally:
                code = context.code()
                model = getattr(request, "model_name", "") or getattr(request, "name", "")
                service.core.access.add(context.peer(), f"gRPC {name}{' ' + model if model else ''}",
                                        code.name if code is not None else "OK", time.perf_counter() - started)

        return call

    names = ("ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer")
    methods = {
        name: grpc.unary_unary_rpc_method_handler(logged(name, getattr(service, name)),
                                                  request_deserializer=m[f"{name}Request"].FromString,
                                                  response_serializer=m[f"{name}Response"].SerializeToString)
        for name in names
    }
    return grpc.method_handlers_generic_handler(SERVICE, methods)


async def start(core: Core, host: str, port: int, max_request_bytes: int, credentials=None, reuse_port=False):
    """A grpc.aio server on ``host:port``, started; the caller stops it (``await server.stop(grace)``).

    The port is shared (SO_REUSEPORT) only between zoo's own worker processes: otherwise a second server on
    a taken port would quietly split its traffic."""
    import grpc

    options = [("grpc.max_receive_message_length", max_request_bytes), ("grpc.so_reuseport", int(reuse_port))]
    server = grpc.aio.server(options=options)
    server.add_generic_rpc_handlers((handlers(Service(core)),))
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    bound = (server.add_secure_port(address, credentials) if credentials is not None
             else server.add_insecure_port(address))
    if not bound:
        raise OSError(f"cannot listen for gRPC on {address}: the port is taken or the address is not this machine's")
    await server.start()
    return server, bound
