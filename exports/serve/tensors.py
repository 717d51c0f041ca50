"""Tensors as the Open Inference Protocol carries them: JSON ``data``, Triton's binary tensor data extension over
REST, and gRPC's typed contents or raw bytes. Everything here is decoding and encoding; what a model takes is
:mod:`.models`' business.

Whatever comes in is untrusted: every shape, size and offset is checked against what was actually sent before
it is used, and a wrong one is a :class:`ProtocolError` (a 400 over REST, INVALID_ARGUMENT over gRPC) with one
line saying what was wrong.
"""

from __future__ import annotations

import struct

import numpy as np

#: The protocol's datatypes and the numpy types they are (BYTES: Python bytes, in an object array).
DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_), "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"), "INT8": np.dtype("<i1"), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"), "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
_NAMES = {dtype: name for name, dtype in DTYPES.items()}
_MAX_DIMS = 8


class ProtocolError(Exception):
    """A request the protocol or the model refuses: ``status`` is the HTTP status (400, 404, 413, ...)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def shape_of(value: object, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not 0 < len(value) <= _MAX_DIMS:
        raise ProtocolError(f"{where}: 'shape' must be a list of 1 to {_MAX_DIMS} sizes, got {_short(value)}")
    if not all(type(d) is int and 0 <= d < 2**31 for d in value):
        raise ProtocolError(f"{where}: 'shape' must hold sizes 0 and up, got {_short(value)}")
    return tuple(value)


def elements(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def datatype_of(value: object, where: str) -> str:
    if value not in DTYPES:
        raise ProtocolError(f"{where}: 'datatype' {_short(value)} is not one of the protocol's "
                            f"({', '.join(DTYPES)})")
    return value  # type: ignore[return-value]


def from_json(data: object, datatype: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    """A JSON ``data`` field (flat, or nested row-major) as an array of ``shape``."""
    n = elements(shape)
    if datatype == "BYTES":
        flat = _flatten(data, where)
        if not all(isinstance(v, str) for v in flat):
            raise ProtocolError(f"{where}: BYTES data must be strings")
        array = np.empty(len(flat), dtype=object)
        array[:] = [v.encode("utf-8") for v in flat]
    else:
        if not isinstance(data, list):
            raise ProtocolError(f"{where}: 'data' must be a list, got {_short(data)}")
        try:
            found = np.asarray(data)  # as JSON gave it: a string where a number goes is refused, "1.5" too
        except (TypeError, ValueError, OverflowError):
            found = None
        if found is None or found.dtype.kind not in "biuf" or found.dtype.itemsize == 0:
            raise ProtocolError(f"{where}: 'data' is not a list of {datatype} numbers (JSON numbers, not strings; "
                                "NaN and infinity have no JSON form: send them as binary data)")
        if datatype == "BOOL" and found.dtype.kind != "b":
            raise ProtocolError(f"{where}: BOOL data must be true or false")
        try:
            array = found.astype(DTYPES[datatype], copy=False).reshape(-1)
        except (TypeError, ValueError, OverflowError):
            raise ProtocolError(f"{where}: 'data' is not a list of {datatype} numbers") from None
    if array.size != n:
        raise ProtocolError(f"{where}: 'data' holds {array.size} values; shape {list(shape)} needs {n}")
    return array.reshape(shape)


def from_bytes(raw: bytes | memoryview, datatype: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    """A binary tensor (REST's binary extension, gRPC's raw contents): little-endian values, row-major; BYTES
    as a 4-byte little-endian length before each element."""
    n = elements(shape)
    if datatype == "BYTES":
        return np.array(_split_bytes(raw, n, where), dtype=object).reshape(shape)
    dtype = DTYPES[datatype]
    if len(raw) != n * dtype.itemsize:
        raise ProtocolError(f"{where}: {len(raw)} bytes of data; shape {list(shape)} of {datatype} needs "
                            f"{n * dtype.itemsize}")
    array = np.frombuffer(raw, dtype=dtype)
    if datatype == "BOOL" and np.any(np.frombuffer(raw, dtype=np.uint8) > 1):
        raise ProtocolError(f"{where}: BOOL data must be bytes 0 or 1")
    return array.reshape(shape)


def _split_bytes(raw: bytes | memoryview, n: int, where: str) -> list[bytes]:
    view, out, at = memoryview(raw), [], 0
    for _ in range(n):
        if at + 4 > len(view):
            raise ProtocolError(f"{where}: BYTES data ends inside an element's length ({n} elements expected)")
        (size,) = struct.unpack_from("<I", view, at)
        at += 4
        if at + size > len(view):
            raise ProtocolError(f"{where}: a BYTES element of {size} bytes runs past the data's end")
        out.append(bytes(view[at:at + size]))
        at += size
    if at != len(view):
        raise ProtocolError(f"{where}: {len(view) - at} bytes follow the {n} BYTES elements the shape holds")
    return out


def to_bytes(array: np.ndarray) -> bytes:
    """An output tensor as binary data (the inverse of :func:`from_bytes`)."""
    if array.dtype == object:
        parts = []
        for value in array.reshape(-1):
            encoded = value if isinstance(value, bytes) else str(value).encode("utf-8")
            parts.append(struct.pack("<I", len(encoded)))
            parts.append(encoded)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def to_json(array: np.ndarray) -> object:
    """An output tensor as JSON ``data``: numbers, or strings for BYTES (orjson writes numeric arrays itself)."""
    if array.dtype == object:
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in array.reshape(-1)]
    return array.reshape(-1)


def datatype_for(array: np.ndarray) -> str:
    return _NAMES[array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype]


def _flatten(data: object, where: str) -> list:
    if not isinstance(data, list):
        raise ProtocolError(f"{where}: 'data' must be a list, got {_short(data)}")
    if not data or not isinstance(data[0], list):
        return data
    flat: list = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                if len(stack) > _MAX_DIMS:
                    raise ProtocolError(f"{where}: 'data' is nested more deeply than any shape")
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
