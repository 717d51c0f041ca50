"""Test data sets: ``input_0.pb`` and one ``output_K.pb`` per output, in the ONNX Model Zoo layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import TensorProto, numpy_helper

from zoo.errors import VerifyError
from zoo.exports.bundle import reading
from zoo.exports.bundle.layout import INPUT_FILE, OUTPUT_FILE, TEST_DATA_SET
from zoo.exports.bundle.model import Deployed
from zoo.tables import Frame


def write_test_data(directory: Path, inputs: list, references: list[dict], input_name: str) -> list[str]:
    """Write ``test_data_set_N/input_K.pb`` (one per graph input: a table model's columns) and ``output_K.pb`` (the
    reference's outputs, in graph order)."""
    written = []
    for n, (x, outputs) in enumerate(zip(inputs, references)):
        folder = directory / TEST_DATA_SET.format(n)
        folder.mkdir()
        named = x.feed() if isinstance(x, Frame) else {input_name: np.ascontiguousarray(x, dtype=np.float32)}
        for k, (name, value) in enumerate(named.items()):
            (folder / INPUT_FILE.format(k)).write_bytes(numpy_helper.from_array(value, name).SerializeToString())
        for k, (name, value) in enumerate(outputs.items()):
            (folder / OUTPUT_FILE.format(k)).write_bytes(numpy_helper.from_array(value, name).SerializeToString())
        written.append(folder.name)
    return written



def load_test_data(deployed: Deployed):
    """``(name, input, expected outputs by name)`` for each test data set the manifest lists, checked."""
    bundle, manifest = deployed.bundle, deployed.manifest
    names = deployed.test_data if deployed.test_data is not None else manifest.files.test_data
    if not names:
        raise VerifyError(f"{bundle}/manifest.json lists no test data sets")
    return read_test_data(bundle, names, deployed, manifest.bytes, manifest.sha256)


def read_test_data(root: Path, names: list[str], deployed: Deployed, sizes: dict[str, int] | None = None,
                   digests: dict[str, str] | None = None):
    """The test data sets ``names`` (relative to ``root``) for ``deployed``'s model, checked; each file read
    with the bound ``sizes`` records for it (by path relative to ``root``), else protobuf's own, and checked
    against its sha256 in ``digests``."""
    sets = []
    for name in names:
        folder = reading.member(root, name, "a test data set", directory=True)
        tensors = []
        features = deployed.features
        n_inputs = 1 if features is None else len(features.columns)
        for file in [INPUT_FILE.format(k) for k in range(n_inputs)] + \
                [OUTPUT_FILE.format(k) for k in range(len(deployed.output_names))]:
            path, data = reading.read_member(root, f"{name}/{file}", f"a file of {name}", sizes or {}, digests)
            try:
                proto = TensorProto()
                proto.ParseFromString(data)
                if proto.data_location == TensorProto.EXTERNAL:
                    raise ValueError("external data")
                tensors.append(numpy_helper.to_array(proto))
            except Exception as exc:
                raise VerifyError(f"{path} is not an ONNX tensor ({type(exc).__name__})") from None
        if features is not None:
            x = _frame(folder.name, features, tensors[:n_inputs])
        else:
            x = tensors[0]
            if x.ndim != 2 or x.shape[1] != deployed.input_size or x.dtype != np.float32:
                raise VerifyError(f"{folder.name}/input_0.pb holds {x.dtype} {x.shape} but the model takes "
                                  f"float32 (batch, {deployed.input_size})")
        for out_name, out in zip(deployed.output_names, tensors[n_inputs:]):
            if out.shape[:1] != x.shape[:1]:
                raise VerifyError(f"{folder.name}: output {out_name!r} has {out.shape[0] if out.ndim else 0} rows "
                                  f"for {x.shape[0]} input rows")
        sets.append((folder.name, x, dict(zip(deployed.output_names, tensors[n_inputs:]))))
    return sets


def _frame(folder: str, features, tensors: list) -> Frame:
    """A table model's test inputs, one tensor per column, each checked against the column it must be."""
    columns = {}
    for k, (feature, value) in enumerate(zip(features.columns, tensors)):
        numeric = feature.kind == "numeric"
        if value.ndim != 2 or value.shape[1] != 1 or value.shape[0] != tensors[0].shape[0] or \
                (value.dtype != np.float32 if numeric else value.dtype != object):
            raise VerifyError(f"{folder}/{INPUT_FILE.format(k)} holds {value.dtype} {value.shape} but column "
                              f"{feature.name!r} takes {'float32' if numeric else 'strings'} (batch, 1)")
        if not numeric:
            value = np.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                              for v in value.reshape(-1)], dtype=object).reshape(-1, 1)
        columns[feature.name] = value
    return Frame(columns)
