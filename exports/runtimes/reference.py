"""``onnx-reference``: ONNX's own reference evaluator, the specification's implementation in numpy.

It shares no kernel with onnxruntime or OpenVINO, so agreement with it is
evidence about the file, not about one vendor's reading of it. It evaluates in
the dtypes the graph declares; the precision it reports is read from those.
Fast enough for zoo's test sets and small batches; not meant for throughput.
"""

from __future__ import annotations

from pathlib import Path

from zoo import hookimpl
from zoo.exports.runtimes import installed
from zoo.specs import FP32, Runtime, Session
from zoo.tables import feed

_FLOAT_NAMES = {1: FP32, 10: "fp16", 11: "fp64", 16: "bf16"}  # onnx.TensorProto element types


class ReferenceSession(Session):
    def __init__(self, runtime: str, evaluator, input_name: str, output_names: list[str], precision: str):
        super().__init__(runtime, "cpu (numpy)", precision, input_name, output_names)
        self.evaluator = evaluator

    def run(self, x, outputs=None):
        import numpy as np

        names = list(outputs or self.output_names)
        # Its Sigmoid evaluates both branches of a np.where, overflowing in the one it discards.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return dict(zip(names, self.evaluator.run(names, feed(x, self.input_name))))


class OnnxReference(Runtime):
    name = "onnx-reference"
    summary = "onnx.reference.ReferenceEvaluator: the ONNX specification's reference implementation (numpy)"
    requires = "onnx"
    max_rows = 65536
    columns = strings = True

    def unavailable(self) -> str | None:
        folder = installed.package_folder("onnx")  # read from the files: see zoo.exports.runtimes.installed
        if folder is None:
            return "onnx is not installed"
        if not installed.has(folder / "reference", "reference_evaluator.py"):
            return "this onnx has no reference evaluator (onnx.reference)"
        return None

    def version(self) -> str | None:
        return installed.version("onnx")

    def open(self, model_path: Path) -> Session:
        import onnx
        from onnx.reference import ReferenceEvaluator

        model = onnx.load(str(model_path))
        evaluator = ReferenceEvaluator(model)
        types = {t.data_type for t in model.graph.initializer} | {
            v.type.tensor_type.elem_type for v in model.graph.input}
        floats = sorted({_FLOAT_NAMES[t] for t in types if t in _FLOAT_NAMES})
        precision = "+".join(floats) if floats else FP32
        initializers = {t.name for t in model.graph.initializer}
        inputs = [i.name for i in model.graph.input if i.name not in initializers]
        return ReferenceSession(self.name, evaluator, inputs[0], list(evaluator.output_names), precision)


@hookimpl
def register_runtimes(register):
    register(OnnxReference())
